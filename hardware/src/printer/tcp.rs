//! The driver for network thermal printers: raw ESC/POS over TCP (port 9100 on most models).
//!
//! One connection per job: connect (with a timeout), ask the paper sensor (`DLE EOT 4`), send the
//! receipt, close. It must never wait on the network without a timeout, and it must not hold a
//! lock across an `.await`.

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::{PrintError, PrintJob, PrinterStatus, ReceiptPrinter, lock};
use crate::receipt::{Receipt, encode_escpos};

/// `DLE EOT 4`: transmit the paper roll sensor status (a real-time command, answered at once
/// even while the printer is busy, one byte back).
const PAPER_STATUS_QUERY: [u8; 3] = [0x10, 0x04, 0x04];

/// How long each step of a job may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPrinterTimeouts {
    /// To open the connection.
    pub connect: Duration,
    /// For the answer to the paper query. Printers that do not support the query never answer;
    /// after this the job is sent anyway.
    pub status_reply: Duration,
    /// To hand all the bytes of a job to the printer.
    pub write: Duration,
    /// After sending, for the printer to close its side. Closing while the printer's late
    /// replies sit unread would reset the connection and could cut the job short.
    pub drain: Duration,
}

impl Default for TcpPrinterTimeouts {
    fn default() -> TcpPrinterTimeouts {
        TcpPrinterTimeouts {
            connect: Duration::from_secs(3),
            status_reply: Duration::from_millis(500),
            write: Duration::from_secs(10),
            drain: Duration::from_millis(500),
        }
    }
}

/// A thermal printer reached over TCP.
pub struct TcpReceiptPrinter {
    name: String,
    address: SocketAddr,
    columns: usize,
    timeouts: TcpPrinterTimeouts,
    jobs: AtomicU32,
    // A std mutex: held only to read or replace the status, never across an `.await`.
    last_status: Mutex<PrinterStatus>,
}

/// What the paper sensor said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Paper {
    Present,
    NearEnd,
    Out,
}

impl TcpReceiptPrinter {
    /// A printer at `address` (usually port 9100) with paper `columns` characters wide.
    pub fn new(name: impl Into<String>, address: SocketAddr, columns: usize) -> TcpReceiptPrinter {
        TcpReceiptPrinter {
            name: name.into(),
            address,
            columns,
            timeouts: TcpPrinterTimeouts::default(),
            jobs: AtomicU32::new(0),
            last_status: Mutex::new(PrinterStatus::Unknown),
        }
    }

    pub fn with_timeouts(mut self, timeouts: TcpPrinterTimeouts) -> TcpReceiptPrinter {
        self.timeouts = timeouts;
        self
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Connects and asks the paper sensor, without printing; updates [`ReceiptPrinter::status`].
    pub async fn query_status(&self) -> PrinterStatus {
        let status = match self.connect().await {
            Err(error) => offline_status(&error),
            Ok(mut stream) => match self.ask_paper(&mut stream).await {
                Ok(Some(paper)) => paper_status(paper),
                Ok(None) => PrinterStatus::Unknown,
                Err(error) => PrinterStatus::Offline {
                    reason: error.to_string(),
                },
            },
        };
        self.remember(status.clone());
        status
    }

    async fn print_bytes(&self, bytes: Vec<u8>) -> Result<PrintJob, PrintError> {
        let mut stream = self.connect().await.inspect_err(|error| {
            self.remember(offline_status(error));
        })?;
        let paper = self
            .ask_paper(&mut stream)
            .await
            .map_err(|source| self.io_error(source))?;
        if paper == Some(Paper::Out) {
            self.remember(PrinterStatus::OutOfPaper);
            return Err(PrintError::OutOfPaper {
                printer: self.name.clone(),
            });
        }
        self.send(&mut stream, &bytes)
            .await
            .map_err(|source| self.io_error(source))?;
        // A printer that does not report its paper still took the job: it is there and working.
        self.remember(paper.map_or(PrinterStatus::Ready, paper_status));
        let number = self.jobs.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(PrintJob {
            id: format!("receipt-{number:04}"),
            printer: self.name.clone(),
        })
    }

    async fn connect(&self) -> Result<TcpStream, PrintError> {
        let offline = |reason: String| PrintError::Offline {
            printer: self.name.clone(),
            reason,
        };
        let stream = timeout(self.timeouts.connect, TcpStream::connect(self.address))
            .await
            .map_err(|_| {
                offline(format!(
                    "no connection to {} within {:?}",
                    self.address, self.timeouts.connect
                ))
            })?
            .map_err(|error| offline(format!("cannot connect to {}: {error}", self.address)))?;
        stream
            .set_nodelay(true)
            .map_err(|source| self.io_error(source))?;
        Ok(stream)
    }

    /// Sends `DLE EOT 4` and reads the one-byte answer; `None` when the printer does not answer
    /// in time or answers something that is not a paper status.
    async fn ask_paper(&self, stream: &mut TcpStream) -> io::Result<Option<Paper>> {
        stream.write_all(&PAPER_STATUS_QUERY).await?;
        let mut reply = [0u8; 1];
        match timeout(self.timeouts.status_reply, stream.read(&mut reply)).await {
            Ok(Ok(1)) => Ok(parse_paper_status(reply[0])),
            Ok(Ok(_)) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the printer closed the connection",
            )),
            Ok(Err(error)) => Err(error),
            Err(_elapsed) => Ok(None),
        }
    }

    async fn send(&self, stream: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
        let write = async {
            stream.write_all(bytes).await?;
            stream.flush().await?;
            stream.shutdown().await
        };
        timeout(self.timeouts.write, write).await.map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                "the printer did not take the job in time",
            )
        })??;
        // Read (and ignore) whatever the printer still says until it closes, so that closing
        // our side does not reset the connection under data it has not printed yet.
        let mut sink = [0u8; 64];
        let drain = async {
            while stream.read(&mut sink).await? > 0 {}
            io::Result::Ok(())
        };
        match timeout(self.timeouts.drain, drain).await {
            Ok(result) => result,
            Err(_still_open) => Ok(()),
        }
    }

    fn io_error(&self, source: io::Error) -> PrintError {
        self.remember(PrinterStatus::Offline {
            reason: source.to_string(),
        });
        PrintError::Io {
            printer: self.name.clone(),
            source,
        }
    }

    fn remember(&self, status: PrinterStatus) {
        *lock(&self.last_status) = status;
    }
}

impl ReceiptPrinter for TcpReceiptPrinter {
    fn name(&self) -> &str {
        &self.name
    }

    fn status(&self) -> PrinterStatus {
        lock(&self.last_status).clone()
    }

    fn print(&self, receipt: &Receipt) -> BoxFuture<'_, Result<PrintJob, PrintError>> {
        let bytes = encode_escpos(receipt, self.columns);
        Box::pin(self.print_bytes(bytes))
    }
}

/// Reads the answer to `DLE EOT 4`: bits 1 and 4 are always set and bits 0 and 7 always clear;
/// bits 2–3 mean "near end", bits 5–6 "paper end".
fn parse_paper_status(byte: u8) -> Option<Paper> {
    if byte & 0b1001_0011 != 0b0001_0010 {
        return None;
    }
    Some(if byte & 0b0110_0000 != 0 {
        Paper::Out
    } else if byte & 0b0000_1100 != 0 {
        Paper::NearEnd
    } else {
        Paper::Present
    })
}

fn paper_status(paper: Paper) -> PrinterStatus {
    match paper {
        Paper::Present => PrinterStatus::Ready,
        Paper::NearEnd => PrinterStatus::PaperNearEnd,
        Paper::Out => PrinterStatus::OutOfPaper,
    }
}

fn offline_status(error: &PrintError) -> PrinterStatus {
    match error {
        PrintError::Offline { reason, .. } => PrinterStatus::Offline {
            reason: reason.clone(),
        },
        other => PrinterStatus::Offline {
            reason: other.to_string(),
        },
    }
}
