//! The virtual card's side of pcscd's vpcd driver (vsmartcard): a TCP client of the driver's
//! port (35963 for reader "Virtual PCD 00 00"). Connecting inserts the card, closing the socket
//! pulls it; [`insert_pulled_after`] has the card pull itself out after a number of APDUs, as a
//! citizen who takes the card back half-way through a read.
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
    /// The card closed the connection itself right after answering this many APDUs
    /// ([`insert_pulled_after`]).
    PulledAfterApdus(usize),
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
    serve_until(card, stream, None).map(drop)
}

/// How serving a card ended (without an IO error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Served {
    /// The connection was closed by the other end, or shut down by [`InsertedCard::pull`].
    Closed,
    /// The card closed the connection after answering this many APDUs.
    PulledAfterApdus(usize),
}

/// [`serve`], and with `pull_after` set, closes the connection right after answering that many
/// APDUs (control codes do not count; 0 closes it before anything is exchanged).
fn serve_until(
    card: &mut VirtualCard,
    stream: &mut TcpStream,
    pull_after: Option<usize>,
) -> io::Result<Served> {
    stream.set_nodelay(true)?;
    let mut length = [0u8; 2];
    let mut apdus = 0;
    loop {
        if pull_after == Some(apdus) {
            // The answer just written still goes out before the FIN; vpcd sends nothing
            // unasked, so no unread data turns the close into a reset that could drop it.
            let _ = stream.shutdown(Shutdown::Both);
            tracing::debug!(apdus, "virtual card pulled half-way");
            return Ok(Served::PulledAfterApdus(apdus));
        }
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
                return Ok(Served::Closed);
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
                apdus += 1;
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
    thread: JoinHandle<(VirtualCard, io::Result<Served>)>,
}

/// Inserts `card` into the vpcd reader at `address` (connecting with the given `patience`)
/// and serves it on a thread named `virtual-eid` until it is pulled or vpcd closes.
pub fn insert(
    card: VirtualCard,
    address: SocketAddr,
    patience: Duration,
) -> Result<InsertedCard, VpcdError> {
    insert_with(card, address, patience, None)
}

/// Like [`insert`], but the card leaves the reader on its own right after answering its
/// `apdus`-th command APDU (control codes do not count): a card pulled in the middle of a read.
/// The next command finds no card; [`InsertedCard::wait_until_removed`] then says
/// [`Removal::PulledAfterApdus`].
pub fn insert_pulled_after(
    card: VirtualCard,
    address: SocketAddr,
    patience: Duration,
    apdus: usize,
) -> Result<InsertedCard, VpcdError> {
    insert_with(card, address, patience, Some(apdus))
}

fn insert_with(
    mut card: VirtualCard,
    address: SocketAddr,
    patience: Duration,
    pull_after: Option<usize>,
) -> Result<InsertedCard, VpcdError> {
    let mut stream = connect(address, patience)?;
    let control = stream
        .try_clone()
        .map_err(|source| VpcdError::Connection { address, source })?;
    let pulled = Arc::new(AtomicBool::new(false));
    let thread = std::thread::Builder::new()
        .name("virtual-eid".to_owned())
        .spawn(move || {
            let outcome = serve_until(&mut card, &mut stream, pull_after);
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

    /// Whether the card has left the reader (pulled, by hand or by itself, or closed by vpcd).
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
        let removal = match &outcome {
            Ok(Served::PulledAfterApdus(apdus)) => Removal::PulledAfterApdus(*apdus),
            _ if self.pulled.load(Ordering::SeqCst) => Removal::Pulled,
            _ => Removal::ClosedByVpcd,
        };
        match (outcome, removal) {
            (Ok(_), _) => Ok((card, removal)),
            // Shutting the socket down under a blocked read can surface as a reset.
            (Err(_), Removal::Pulled) => Ok((card, removal)),
            (Err(source), _) => Err(VpcdError::Connection { address, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::TcpListener;

    use super::*;
    use crate::card::CardContents;
    use crate::profile::Profile;

    /// A card with no files: enough to answer GET CARD DATA.
    fn blank_card() -> VirtualCard {
        VirtualCard::new(CardContents {
            profile: Profile::Applet18,
            serial: vec![0x42; 16],
            pin: "1234".into(),
            files: BTreeMap::new(),
            authentication_key: None,
            non_repudiation_key: None,
            basic_key: None,
        })
    }

    fn send(stream: &mut TcpStream, payload: &[u8]) {
        write_message(stream, payload).expect("vpcd writes");
    }

    /// The next frame from the card, or `None` once it closed the connection.
    fn receive(stream: &mut TcpStream) -> Option<Vec<u8>> {
        let mut length = [0u8; 2];
        stream.read_exact(&mut length).ok()?;
        let mut payload = vec![0u8; usize::from(u16::from_be_bytes(length))];
        stream.read_exact(&mut payload).ok()?;
        Some(payload)
    }

    #[test]
    fn a_card_pulled_after_n_apdus_answers_them_then_closes() {
        const GET_CARD_DATA: [u8; 5] = [0x80, 0xE4, 0x00, 0x00, 0x1C];
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let inserted = insert_pulled_after(blank_card(), address, Duration::from_secs(5), 2)
            .expect("inserted");
        let (mut vpcd, _) = listener.accept().expect("the card connects");
        vpcd.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");

        // Control codes do not count; the second APDU is answered in full, then the card goes.
        send(&mut vpcd, &[GET_ATR]);
        assert_eq!(receive(&mut vpcd).as_deref(), Some(Profile::Applet18.atr()));
        send(&mut vpcd, &[POWER_ON]);
        for _ in 0..2 {
            send(&mut vpcd, &GET_CARD_DATA);
            let answer = receive(&mut vpcd).expect("an answer");
            assert_eq!((answer.len(), &answer[28..]), (30, &[0x90, 0x00][..]));
        }
        assert_eq!(receive(&mut vpcd), None, "the card left after two APDUs");

        let (card, removal) = inserted.wait_until_removed().expect("removed");
        assert_eq!(removal, Removal::PulledAfterApdus(2));
        assert_eq!(card.transcript().len(), 2);
    }

    #[test]
    fn a_card_pulled_after_zero_apdus_leaves_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let inserted = insert_pulled_after(blank_card(), address, Duration::from_secs(5), 0)
            .expect("inserted");
        let (mut vpcd, _) = listener.accept().expect("the card connects");
        vpcd.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        assert_eq!(receive(&mut vpcd), None);
        let (card, removal) = inserted.wait_until_removed().expect("removed");
        assert_eq!(removal, Removal::PulledAfterApdus(0));
        assert!(card.transcript().is_empty());
    }
}
