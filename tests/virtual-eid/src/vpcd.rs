//! The virtual card's side of pcscd's vpcd driver (vsmartcard): a TCP client of the driver's
//! port (35963 for reader "Virtual PCD 00 00"). Connecting inserts the card, closing the socket
//! pulls it.
//!
//! Framing, both ways: a big-endian u16 length, then the payload. A 1-byte message from vpcd is
//! a control code (00 power off, 01 power on, 02 reset, 04 get ATR; only 04 is answered); any
//! longer message is a command APDU, answered with one response APDU.
//!
//! Blocking std IO on a dedicated thread: the card is a device simulator, and a thread per
//! inserted card keeps it usable from sync tests, async tests and the binary alike.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::SockRef;

use crate::apdu::render_transcript;
use crate::card::VirtualCard;

/// The vpcd port of the first virtual reader ("Virtual PCD 00 00").
pub const DEFAULT_VPCD_PORT: u16 = 35963;

const POWER_OFF: u8 = 0x00;
const POWER_ON: u8 = 0x01;
const RESET: u8 = 0x02;
const GET_ATR: u8 = 0x04;

/// Why talking to vpcd failed.
#[derive(Debug, thiserror::Error)]
pub enum VpcdError {
    #[error("could not connect to vpcd at {address}")]
    Connect {
        address: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("the connection to vpcd at {address} failed")]
    Connection {
        address: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("the card thread for vpcd at {address} panicked")]
    CardThreadPanicked { address: SocketAddr },
}

/// How a card left the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// [`InsertedCard::pull`] closed the connection.
    Pulled,
    /// vpcd (pcscd) closed the connection.
    ClosedByVpcd,
}

/// Connects to vpcd, retrying while nothing listens yet (pcscd starting up) until `patience`
/// has passed. Retrying is polling, but there is no event to wait for: a port that nobody
/// listens on cannot be watched.
pub fn connect(address: SocketAddr, patience: Duration) -> Result<TcpStream, VpcdError> {
    let deadline = Instant::now() + patience;
    let mut pause = Duration::from_millis(20);
    loop {
        match TcpStream::connect(address) {
            Ok(stream) => return Ok(stream),
            Err(error) if Instant::now() + pause < deadline => {
                tracing::debug!(%address, %error, "vpcd not reachable yet, retrying");
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            Err(source) => return Err(VpcdError::Connect { address, source }),
        }
    }
}

/// Serves `card` on `stream` until the connection closes (cleanly: `Ok`).
///
/// TCP_QUICKACK is re-armed after every read: vpcd in Debian 12 (vsmartcard 3.3) writes the
/// length and the payload of a message in two writes. Without quick ACKs the second small
/// write waits for our delayed ACK of the first (Nagle on vpcd's side meets delayed ACK on
/// ours), about 44 ms per APDU; with them an APDU round trip is well under a millisecond. Linux
/// clears the flag again on its own, hence after *every* read.
pub fn serve(card: &mut VirtualCard, stream: &mut TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut length = [0u8; 2];
    loop {
        match stream.read_exact(&mut length) {
            Ok(()) => {}
            // Closed between messages: the card was pulled, or pcscd went away.
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                ) =>
            {
                return Ok(());
            }
            Err(error) => return Err(error),
        }
        quick_ack(stream);
        let mut message = vec![0u8; usize::from(u16::from_be_bytes(length))];
        stream.read_exact(&mut message)?;
        quick_ack(stream);
        let answer = match message.as_slice() {
            [] => None,
            [GET_ATR] => Some(card.atr().to_vec()),
            [POWER_OFF | POWER_ON | RESET] => {
                tracing::debug!(control = message[0], "vpcd power event, card state reset");
                card.reset();
                None
            }
            [other] => {
                tracing::debug!(control = other, "unknown vpcd control code ignored");
                None
            }
            apdu => {
                let response = card.respond(apdu);
                if let Some(last) = card.transcript().last() {
                    // The transcript masks VERIFY data: no PIN reaches the log.
                    tracing::trace!(exchange = %render_transcript(std::slice::from_ref(last)));
                }
                Some(response)
            }
        };
        if let Some(answer) = answer {
            write_message(stream, &answer)?;
        }
    }
}

fn quick_ack(stream: &TcpStream) {
    if let Err(error) = SockRef::from(stream).set_tcp_quickack(true) {
        tracing::debug!(%error, "TCP_QUICKACK could not be set");
    }
}

/// One length-prefixed message in a single write, so the peer gets it in one segment.
fn write_message(stream: &mut TcpStream, payload: &[u8]) -> io::Result<()> {
    let length = u16::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message over 65535 bytes"))?;
    let mut frame = Vec::with_capacity(payload.len() + 2);
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(payload);
    stream.write_all(&frame)
}

/// A card in a vpcd reader, served by its own thread until pulled or closed by vpcd.
#[derive(Debug)]
pub struct InsertedCard {
    address: SocketAddr,
    stream: TcpStream,
    pulled: Arc<AtomicBool>,
    thread: JoinHandle<(VirtualCard, io::Result<()>)>,
}

/// Inserts `card` into the vpcd reader at `address` (connecting with the given `patience`)
/// and serves it on a thread named `virtual-eid`.
pub fn insert(
    mut card: VirtualCard,
    address: SocketAddr,
    patience: Duration,
) -> Result<InsertedCard, VpcdError> {
    let mut stream = connect(address, patience)?;
    let control = stream
        .try_clone()
        .map_err(|source| VpcdError::Connection { address, source })?;
    let pulled = Arc::new(AtomicBool::new(false));
    let thread = std::thread::Builder::new()
        .name("virtual-eid".to_owned())
        .spawn(move || {
            let outcome = serve(&mut card, &mut stream);
            (card, outcome)
        })
        .map_err(|source| VpcdError::Connection { address, source })?;
    tracing::debug!(%address, "virtual card inserted");
    Ok(InsertedCard {
        address,
        stream: control,
        pulled,
        thread,
    })
}

impl InsertedCard {
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Whether the card has left the reader (pulled or closed by vpcd).
    pub fn is_removed(&self) -> bool {
        self.thread.is_finished()
    }

    /// Pulls the card out of the reader (closes the connection) and gives it back, with its
    /// PIN counter and transcript, to be inserted again or inspected.
    pub fn pull(self) -> Result<VirtualCard, VpcdError> {
        self.pulled.store(true, Ordering::SeqCst);
        // The peer may have closed first; then there is nothing left to shut down.
        let _ = self.stream.shutdown(Shutdown::Both);
        self.wait_until_removed().map(|(card, _)| card)
    }

    /// Blocks until the card leaves the reader, and says how it left.
    pub fn wait_until_removed(self) -> Result<(VirtualCard, Removal), VpcdError> {
        let address = self.address;
        let (card, outcome) = self
            .thread
            .join()
            .map_err(|_| VpcdError::CardThreadPanicked { address })?;
        let removal = if self.pulled.load(Ordering::SeqCst) {
            Removal::Pulled
        } else {
            Removal::ClosedByVpcd
        };
        match (outcome, removal) {
            (Ok(()), _) => Ok((card, removal)),
            // Shutting the socket down under a blocked read can surface as a reset.
            (Err(_), Removal::Pulled) => Ok((card, removal)),
            (Err(source), Removal::ClosedByVpcd) => Err(VpcdError::Connection { address, source }),
        }
    }
}
