//! Test support (feature `test-support`): [`Gpsfake`] plays an NMEA log through gpsfake, which
//! starts its own gpsd on a port of its own, so tests watch a real gpsd. Used by this crate's
//! tests and by the end-to-end tests; never by the node.
//!
//! gpsfake runs as `gpsfake -q -P PORT -c 0.1 LOG` (`-c`: seconds between sentences; the log
//! loops until it is stopped; `-S` would mean "slow", not the port) in a process group of its
//! own, started as user `gpsd` by gpsfake itself. It is stopped by signalling that group: on
//! SIGTERM gpsfake stops its gpsd; whatever is left is killed, and the stop checks that no
//! process of the group is left. Without gpsfake on the machine, starting fails with the
//! command that installs it: the tests fail, they never skip.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};
use thiserror::Error;

/// What a missing gpsfake says.
pub const NOT_FOUND: &str =
    "gpsfake not found: run `cargo xtask deps` (apt-get install gpsd gpsd-clients)";

/// How long gpsfake's gpsd may take to accept connections, and its group to go away.
const START_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum GpsfakeError {
    #[error("{NOT_FOUND}")]
    NotFound,
    #[error("cannot write gpsfake's files in {path}")]
    Files {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start gpsfake")]
    Spawn {
        #[source]
        source: std::io::Error,
    },
    #[error(
        "gpsfake exited ({status}) before port {port} accepted connections; its output: {output}"
    )]
    Exited {
        port: u16,
        status: std::process::ExitStatus,
        output: String,
    },
    #[error(
        "gpsfake's gpsd did not accept connections on port {port} within {seconds} s; its output: {output}"
    )]
    NotListening {
        port: u16,
        seconds: u64,
        output: String,
    },
    #[error("gpsfake's process group {group} still has processes {left:?} after SIGKILL")]
    Left { group: i32, left: Vec<i32> },
}

/// A running gpsfake with its gpsd. Dropping it stops both (errors then go to stderr).
pub struct Gpsfake {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Gpsfake {
    /// Writes `nmea_log` and plays it on a free port, 0.1 s between sentences, in a loop.
    /// Returns once gpsd accepts connections.
    pub fn start(nmea_log: &str) -> Result<Gpsfake, GpsfakeError> {
        Gpsfake::start_on_port(nmea_log, free_port())
    }

    /// As [`Gpsfake::start`], on the given port (to restart gpsd where a client expects it).
    pub fn start_on_port(nmea_log: &str, port: u16) -> Result<Gpsfake, GpsfakeError> {
        let dir = tempfile::Builder::new()
            .prefix("busloket-gpsfake-")
            .tempdir()
            .map_err(|source| GpsfakeError::Files {
                path: std::env::temp_dir(),
                source,
            })?;
        let files = |source| GpsfakeError::Files {
            path: dir.path().to_owned(),
            source,
        };
        let log = dir.path().join("route.nmea");
        std::fs::write(&log, nmea_log).map_err(files)?;
        let output = File::create(dir.path().join("gpsfake.out")).map_err(files)?;
        let errors = output.try_clone().map_err(files)?;
        let child = Command::new("gpsfake")
            .args(["-q", "-P", &port.to_string(), "-c", "0.1"])
            .arg(&log)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            // Its own group, so that the stop reaches gpsd too.
            .process_group(0)
            .spawn()
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => GpsfakeError::NotFound,
                _ => GpsfakeError::Spawn { source },
            })?;
        let mut gpsfake = Gpsfake {
            child: Some(child),
            port,
            dir,
        };
        gpsfake.wait_until_listening()?;
        Ok(gpsfake)
    }

    /// The port its gpsd listens on (127.0.0.1 and ::1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, as `GpsdSource::start` takes it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The log being played.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("route.nmea")
    }

    /// Stops gpsfake and its gpsd, and checks nothing of them is left.
    pub fn stop(mut self) -> Result<(), GpsfakeError> {
        self.stop_group()
    }

    fn wait_until_listening(&mut self) -> Result<(), GpsfakeError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(GpsfakeError::Exited {
                    port: self.port,
                    status,
                    output: self.output(),
                });
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let output = self.output();
                // Best effort: the error to report is that it did not listen.
                let _ = self.stop_group();
                return Err(GpsfakeError::NotListening {
                    port: self.port,
                    seconds: START_TIMEOUT.as_secs(),
                    output,
                });
            }
            // Nothing to await: a refused connection says nothing about when gpsd binds.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gpsfake.out"))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    fn stop_group(&mut self) -> Result<(), GpsfakeError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let group = Pid::from_child(&child);
        // An error here means the group is already gone.
        let _ = kill_process_group(group, Signal::TERM);
        let gpsfake_ended = wait_for(STOP_TIMEOUT, || matches!(child.try_wait(), Ok(Some(_))));
        if gpsfake_ended && wait_for(STOP_TIMEOUT, || live_members(group).is_empty()) {
            return Ok(());
        }
        let _ = kill_process_group(group, Signal::KILL);
        let _ = child.wait();
        if wait_for(STOP_TIMEOUT, || live_members(group).is_empty()) {
            return Ok(());
        }
        Err(GpsfakeError::Left {
            group: group.as_raw_pid(),
            left: live_members(group),
        })
    }
}

impl Drop for Gpsfake {
    fn drop(&mut self) {
        if let Err(error) = self.stop_group() {
            eprintln!("stopping gpsfake on port {}: {error}", self.port);
        }
    }
}

/// A port nothing listens on now (the kernel's pick; another process may take it before
/// gpsfake does, which the start then reports).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("the loopback interface gives out a free port")
}

/// Polls `done` until it holds or `timeout` passes: process exits of another parent's
/// children have no event to await here.
fn wait_for(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The processes of the group that are not zombies (a zombie is gone, only not yet reaped).
fn live_members(group: Pid) -> Vec<i32> {
    let group = group.as_raw_pid();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses, so read
            // after the last ')'.
            let mut fields = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest)
                .unwrap_or("")
                .split_whitespace();
            let state = fields.next();
            let process_group = fields.nth(1).and_then(|field| field.parse::<i32>().ok());
            process_group == Some(group) && state != Some("Z")
        })
        .collect()
}
