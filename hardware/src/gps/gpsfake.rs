//! Test support (feature `test-support`): [`Gpsfake`] plays an NMEA log through gpsfake, which
//! starts its own gpsd on a port of its own, so tests watch a real gpsd. Used by this crate's
//! tests and by the end-to-end tests; never by the node.
//!
//! gpsfake runs as `gpsfake -P PORT -c 0.1 LOG` (`-c`: seconds between sentences; the log
//! loops until it is stopped; `-S` would mean "slow", not the port) in a process group of its
//! own, started as user `gpsd` by gpsfake itself. It says "log cycle of LOG begins" once its gpsd
//! has taken the fake receiver — which gpsd answers from its main loop, after it bound its port
//! — so the start awaits that line. It is stopped by signalling that group: on SIGTERM gpsfake
//! stops its gpsd; whatever is left is killed; the exits are awaited through pidfds, and the stop
//! checks that no process of the group is left. Without gpsfake on the machine, starting fails with the
//! command that installs it: the tests fail, they never skip.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, PidfdFlags, Signal, kill_process_group, pidfd_open};
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
        let (reader, writer) = std::io::pipe().map_err(files)?;
        let errors = writer.try_clone().map_err(files)?;
        let mut command = Command::new("gpsfake");
        command
            .args(["-P", &port.to_string(), "-c", "0.1"])
            .arg(&log)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(errors)
            // Its own group, so that the stop reaches gpsd too.
            .process_group(0);
        let child = command.spawn().map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => GpsfakeError::NotFound,
            _ => GpsfakeError::Spawn { source },
        })?;
        // The pipe's write ends live in the child only now: the reader sees its end.
        drop(command);
        let lines = copy_output(reader, dir.path().join("gpsfake.out")).map_err(files)?;
        let mut gpsfake = Gpsfake {
            child: Some(child),
            port,
            dir,
        };
        gpsfake.wait_until_listening(&lines)?;
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

    /// Awaits gpsfake's "log cycle … begins", then checks the port once.
    fn wait_until_listening(&mut self, lines: &Receiver<String>) -> Result<(), GpsfakeError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.contains("log cycle") && line.contains("begins") => break,
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    // Its output ended: it exited.
                    let status = self.child.as_mut().and_then(|child| child.wait().ok());
                    self.child = None;
                    if let Some(status) = status {
                        return Err(GpsfakeError::Exited {
                            port: self.port,
                            status,
                            output: self.output(),
                        });
                    }
                    break;
                }
                Err(RecvTimeoutError::Timeout) => break,
            }
        }
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        if TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok() {
            return Ok(());
        }
        let output = self.output();
        // Best effort: the error to report is that it did not listen.
        let _ = self.stop_group();
        Err(GpsfakeError::NotListening {
            port: self.port,
            seconds: START_TIMEOUT.as_secs(),
            output,
        })
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
        let members = || {
            let mut pids = live_members(group);
            pids.push(group.as_raw_pid());
            pids
        };
        // An error here means the group is already gone.
        let _ = kill_process_group(group, Signal::TERM);
        let ended = await_exits(&members(), STOP_TIMEOUT);
        if !ended {
            let _ = kill_process_group(group, Signal::KILL);
            await_exits(&members(), STOP_TIMEOUT);
        }
        // gpsfake is this process's child: reap it (it has exited, or was killed).
        let _ = child.wait();
        let left = live_members(group);
        if left.is_empty() {
            return Ok(());
        }
        Err(GpsfakeError::Left {
            group: group.as_raw_pid(),
            left,
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

/// Copies gpsfake's output line by line into `path` (kept for the error messages) and hands
/// each line on; the channel closes when the output ends.
fn copy_output(reader: std::io::PipeReader, path: PathBuf) -> std::io::Result<Receiver<String>> {
    let mut file = File::create(path)?;
    let (sender, receiver) = mpsc::channel();
    std::thread::Builder::new()
        .name("gpsfake-output".into())
        .spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(file, "{line}");
                // The start stops listening once gpsd is up; the copy goes on.
                let _ = sender.send(line);
            }
        })?;
    Ok(receiver)
}

/// Awaits the exit of every process in `pids` (a pidfd becomes readable when its process
/// exits, child or not); whether they all exited within `timeout`. One already gone counts as
/// exited.
fn await_exits(pids: &[i32], timeout: Duration) -> bool {
    let fds: Vec<_> = pids
        .iter()
        .filter_map(|pid| Pid::from_raw(*pid))
        .filter_map(|pid| pidfd_open(pid, PidfdFlags::empty()).ok())
        .collect();
    let mut waiting: Vec<_> = fds.iter().collect();
    let deadline = Instant::now() + timeout;
    while !waiting.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut polled: Vec<PollFd<'_>> = waiting
            .iter()
            .map(|fd| PollFd::new(*fd, PollFlags::IN))
            .collect();
        let timespec = Timespec::try_from(left).unwrap_or(Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        });
        if poll(&mut polled, Some(&timespec)).is_err() {
            return false;
        }
        let exited: Vec<bool> = polled.iter().map(|fd| !fd.revents().is_empty()).collect();
        drop(polled);
        let mut index = 0;
        waiting.retain(|_| {
            let keep = !exited[index];
            index += 1;
            keep
        });
    }
    true
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
