//! The vpcd side: framing, control codes, inserting and pulling, against a fake vpcd (a
//! TcpListener on 127.0.0.1:0 that speaks like pcscd's vpcd driver).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use busloket_virtual_eid::{InsertedCard, Profile, Removal, VpcdError, insert, render_transcript};

use crate::support::{TOM, card, verify_apdu};

const PATIENCE: Duration = Duration::from_secs(5);

/// The driver's end of one connection.
struct FakeVpcd {
    stream: TcpStream,
}

impl FakeVpcd {
    fn accept(listener: &TcpListener) -> FakeVpcd {
        let (stream, _) = listener.accept().expect("the card connects");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        FakeVpcd { stream }
    }

    /// One frame in one write (upstream vpcd since 2023).
    fn send(&mut self, payload: &[u8]) {
        let frame = [&(payload.len() as u16).to_be_bytes()[..], payload].concat();
        self.stream.write_all(&frame).expect("write");
    }

    /// Length and payload in two writes, as Debian 12's vpcd 3.3 does.
    fn send_split(&mut self, payload: &[u8]) {
        self.stream
            .write_all(&(payload.len() as u16).to_be_bytes())
            .expect("write length");
        self.stream.write_all(payload).expect("write payload");
    }

    /// The next frame, or `None` when the card closed the connection.
    fn receive(&mut self) -> Option<Vec<u8>> {
        let mut length = [0u8; 2];
        self.stream.read_exact(&mut length).ok()?;
        let mut payload = vec![0u8; usize::from(u16::from_be_bytes(length))];
        self.stream.read_exact(&mut payload).expect("payload");
        Some(payload)
    }

    fn exchange(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.send(apdu);
        self.receive().expect("a response")
    }

    /// pcscd's sequence when a card appears: ATR, power on, ATR.
    fn power_up(&mut self, expected_atr: &[u8]) {
        self.send(&[0x04]);
        assert_eq!(self.receive().as_deref(), Some(expected_atr));
        self.send(&[0x01]);
        self.send(&[0x04]);
        assert_eq!(self.receive().as_deref(), Some(expected_atr));
    }
}

fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    (listener, address)
}

fn insert_card(profile: Profile, address: SocketAddr) -> InsertedCard {
    insert(card(profile, TOM), address, PATIENCE).expect("inserted")
}

#[test]
fn the_card_answers_control_codes_and_apdus_in_frames() {
    let (listener, address) = listener();
    let inserted = insert_card(Profile::Applet17, address);
    let mut vpcd = FakeVpcd::accept(&listener);
    vpcd.power_up(Profile::Applet17.atr());

    let card_data = vpcd.exchange(&[0x80, 0xE4, 0x00, 0x00, 0x1C]);
    assert_eq!(
        (card_data.len(), card_data[21], &card_data[28..]),
        (30, 0x17, &[0x90, 0x00][..])
    );
    assert_eq!(vpcd.exchange(&verify_apdu("1234")), [0x90, 0x00]);
    assert_eq!(vpcd.exchange(&[0x00, 0x20, 0x00, 0x01]), [0x90, 0x00]);
    vpcd.send(&[0x02]);
    assert_eq!(
        vpcd.exchange(&[0x00, 0x20, 0x00, 0x01]),
        [0x63, 0xC3],
        "a reset drops the PIN right"
    );
    vpcd.send(&[0x00]);
    vpcd.send(&[0x07]);
    assert_eq!(
        vpcd.exchange(&[0x00, 0xA4, 0x08, 0x0C, 0x04, 0xDF, 0x01, 0x40, 0x31]),
        [0x90, 0x00]
    );
    drop(vpcd);

    let (card, removal) = inserted.wait_until_removed().expect("served");
    assert_eq!(removal, Removal::ClosedByVpcd);
    assert_eq!(
        render_transcript(card.transcript()),
        "> 80 E4 00 00 1C\n< [28 bytes] 90 00\n\
         > 00 20 00 01 08 ** ** ** ** ** ** ** **\n< 90 00\n\
         > 00 20 00 01\n< 90 00\n\
         > 00 20 00 01\n< 63 C3\n\
         > 00 A4 08 0C 04 DF 01 40 31\n< 90 00\n"
    );
}

#[test]
fn pulling_the_card_closes_the_connection_and_the_card_keeps_its_counter() {
    let (listener, address) = listener();
    let inserted = insert_card(Profile::Applet18, address);
    let mut vpcd = FakeVpcd::accept(&listener);
    vpcd.power_up(Profile::Applet18.atr());
    assert_eq!(vpcd.exchange(&verify_apdu("0000")), [0x63, 0xC2]);
    assert!(!inserted.is_removed());

    let card = inserted.pull().expect("pulled");
    assert_eq!(vpcd.receive(), None, "vpcd sees the connection close");
    assert_eq!(card.pin_tries_left(), 2);

    let inserted = insert(card, address, PATIENCE).expect("inserted again");
    let mut vpcd = FakeVpcd::accept(&listener);
    vpcd.power_up(Profile::Applet18.atr());
    assert_eq!(vpcd.exchange(&[0x00, 0x20, 0x00, 0x01]), [0x63, 0xC2]);
    let card = inserted.pull().expect("pulled");
    assert_eq!(card.transcript().len(), 2);
}

#[test]
fn split_frames_are_answered_without_delayed_ack_stalls() {
    let (listener, address) = listener();
    let inserted = insert_card(Profile::Applet18, address);
    let mut vpcd = FakeVpcd::accept(&listener);
    vpcd.power_up(Profile::Applet18.atr());
    assert_eq!(
        vpcd.exchange(&[0x00, 0xA4, 0x08, 0x0C, 0x04, 0xDF, 0x01, 0x40, 0x35]),
        [0x90, 0x00]
    );

    const APDUS: usize = 50;
    let started = Instant::now();
    for _ in 0..APDUS {
        vpcd.send_split(&[0x00, 0xB0, 0x00, 0x00, 0xFC]);
        let response = vpcd.receive().expect("response");
        assert_eq!((response.len(), &response[252..]), (254, &[0x90, 0x00][..]));
    }
    let elapsed = started.elapsed();
    eprintln!("{APDUS} split-frame READ BINARY round trips: {elapsed:?}");
    // Delayed ACKs would cost about 40 ms each (two seconds in all); quick ACKs keep the
    // whole loop far below that even on a busy machine.
    assert!(elapsed < Duration::from_millis(1000), "{elapsed:?}");
    inserted.pull().expect("pulled");
}

#[test]
fn inserting_without_a_reader_fails_after_the_patience() {
    let (listener, address) = listener();
    drop(listener);
    let started = Instant::now();
    let error = insert(
        card(Profile::Applet18, TOM),
        address,
        Duration::from_millis(200),
    )
    .expect_err("nobody listens");
    assert!(
        matches!(error, VpcdError::Connect { address: failed, .. } if failed == address),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}
