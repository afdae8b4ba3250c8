//! Test helpers: a minimal T=0 "reader" over a `VirtualCard` (what the middleware does:
//! GET RESPONSE after `61xx`, resend after `6Cxx`, chunked reads), shared PKIs, and signature
//! checks written directly against the `rsa` and `p384` crates.

use std::sync::OnceLock;

use busloket_hardware::{CardIdentity, demo_citizens};
use busloket_virtual_eid::{CardSpec, FileId, Profile, TestPki, VirtualCard, personalise};
use p384::ecdsa::signature::Verifier;
use p384::ecdsa::signature::hazmat::PrehashVerifier;
use rsa::Pkcs1v15Sign;
use sha2::{Digest, Sha256};
use x509_cert::der::{Decode, Encode};

pub const CHUNK: usize = 252;

/// The PKI of each profile, built once per test binary (1.7 generates RSA keys).
pub fn pki(profile: Profile) -> &'static TestPki {
    static APPLET_17: OnceLock<TestPki> = OnceLock::new();
    static APPLET_18: OnceLock<TestPki> = OnceLock::new();
    let slot = match profile {
        Profile::Applet17 => &APPLET_17,
        Profile::Applet18 => &APPLET_18,
    };
    slot.get_or_init(|| {
        TestPki::generate(profile, busloket_virtual_eid::DEFAULT_SEED).expect("test PKI")
    })
}

pub fn citizen(national_number: &str) -> CardIdentity {
    demo_citizens()
        .into_iter()
        .find(|citizen| citizen.card.national_number == national_number)
        .expect("demo citizen")
        .card
}

/// Tom Janssens: adult, Dutch-language Belgian eID.
pub const TOM: &str = "78031203701";
/// Lucas Dubois-style kids card from the demo set (document type 6).
pub const KID: &str = "17100321158";
/// The EU citizen's card of the demo set (document type 31).
pub const FOREIGNER: &str = "90051723318";

pub fn card(profile: Profile, national_number: &str) -> VirtualCard {
    personalise(&CardSpec::new(citizen(national_number)), pki(profile)).expect("personalised")
}

pub fn card_from(profile: Profile, spec: &CardSpec) -> VirtualCard {
    personalise(spec, pki(profile)).expect("personalised")
}

/// Sends one APDU; splits the answer into data and status word.
pub fn send(card: &mut VirtualCard, apdu: &[u8]) -> (Vec<u8>, [u8; 2]) {
    let mut response = card.respond(apdu);
    assert!(response.len() >= 2, "a response has a status word");
    let sw2 = response.pop().expect("sw2");
    let sw1 = response.pop().expect("sw1");
    (response, [sw1, sw2])
}

/// Sends an APDU the way the eID middleware does under T=0: `61xx` → GET RESPONSE (repeated
/// while more is available), `6Cxx` → the same command again with Le = xx.
pub fn transmit(card: &mut VirtualCard, apdu: &[u8]) -> (Vec<u8>, [u8; 2]) {
    let (mut data, mut status) = send(card, apdu);
    if status[0] == 0x6C {
        let mut again = apdu[..4].to_vec();
        again.push(status[1]);
        (data, status) = send(card, &again);
    }
    while status[0] == 0x61 {
        let (more, next) = send(card, &[0x00, 0xC0, 0x00, 0x00, status[1]]);
        data.extend_from_slice(&more);
        status = next;
    }
    (data, status)
}

pub fn select(card: &mut VirtualCard, id: FileId) -> [u8; 2] {
    let [df_high, df_low] = id.df.to_be_bytes();
    let [ef_high, ef_low] = id.ef.to_be_bytes();
    send(
        card,
        &[
            0x00, 0xA4, 0x08, 0x0C, 0x04, df_high, df_low, ef_high, ef_low,
        ],
    )
    .1
}

/// Selects `id` and reads it in 252-byte chunks until a short chunk or `6B00`.
pub fn read_file(card: &mut VirtualCard, id: FileId) -> Vec<u8> {
    assert_eq!(select(card, id), [0x90, 0x00], "select {id:?}");
    let mut content = Vec::new();
    loop {
        let [high, low] = u16::try_from(content.len()).expect("offset").to_be_bytes();
        let (chunk, status) = transmit(card, &[0x00, 0xB0, high, low, CHUNK as u8]);
        match status {
            [0x90, 0x00] => {
                let last = chunk.len() < CHUNK;
                content.extend_from_slice(&chunk);
                if last {
                    return content;
                }
            }
            [0x6B, 0x00] if !content.is_empty() => return content,
            other => panic!("reading {id:?} at {}: status {other:02X?}", content.len()),
        }
    }
}

/// A VERIFY PIN APDU with the PIN block of `pin`.
pub fn verify_apdu(pin: &str) -> Vec<u8> {
    let digits: Vec<u8> = pin.bytes().map(|digit| digit - b'0').collect();
    let mut block = vec![0x20 | digits.len() as u8];
    for pair in digits.chunks(2) {
        block.push((pair[0] << 4) | pair.get(1).copied().unwrap_or(0x0F));
    }
    block.resize(8, 0xFF);
    let mut apdu = vec![0x00, 0x20, 0x00, 0x01, 0x08];
    apdu.extend_from_slice(&block);
    apdu
}

/// A certificate file without its zero padding (`30 82 LL LL` → LLLL + 4 bytes).
pub fn trim_certificate(file: &[u8]) -> &[u8] {
    assert_eq!(&file[..2], &[0x30, 0x82], "a DER certificate");
    let length = usize::from(u16::from_be_bytes([file[2], file[3]])) + 4;
    &file[..length]
}

pub fn certificate(der: &[u8]) -> x509_cert::Certificate {
    x509_cert::Certificate::from_der(der).expect("certificate parses")
}

pub fn public_key_der(certificate: &x509_cert::Certificate) -> Vec<u8> {
    certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .expect("spki")
}

/// Checks a signature as a verifier of the register's signatures would: RSA PKCS#1 v1.5 with
/// SHA-256, or DER ECDSA P-384/SHA-384 (trailing zeros of the file ignored).
pub fn rrn_signature_valid(public_key_der: &[u8], message: &[u8], signature_file: &[u8]) -> bool {
    use p384::pkcs8::DecodePublicKey as _;
    if let Ok(key) = rsa::RsaPublicKey::from_public_key_der(public_key_der) {
        return key
            .verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(message),
                signature_file,
            )
            .is_ok();
    }
    let key = p384::ecdsa::VerifyingKey::from_public_key_der(public_key_der).expect("a P-384 key");
    let der_length = 2 + usize::from(signature_file[1]);
    let Ok(signature) = p384::ecdsa::Signature::from_der(&signature_file[..der_length]) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}

/// Checks a card's PSO / INTERNAL AUTHENTICATE output over `digest`: raw `r‖s` ECDSA, or RSA
/// PKCS#1 v1.5 with the SHA-256 DigestInfo.
pub fn card_signature_valid(public_key_der: &[u8], digest: &[u8], signature: &[u8]) -> bool {
    use p384::pkcs8::DecodePublicKey as _;
    if let Ok(key) = rsa::RsaPublicKey::from_public_key_der(public_key_der) {
        return key
            .verify(Pkcs1v15Sign::new::<Sha256>(), digest, signature)
            .is_ok();
    }
    let key = p384::ecdsa::VerifyingKey::from_public_key_der(public_key_der).expect("a P-384 key");
    let Ok(signature) = p384::ecdsa::Signature::from_slice(signature) else {
        return false;
    };
    key.verify_prehash(digest, &signature).is_ok()
}

/// Whether `issuer_der` signed `certificate_der` (RSA SHA-256 or ECDSA SHA-384).
pub fn issued_by(certificate_der: &[u8], issuer_der: &[u8]) -> bool {
    let subject = certificate(certificate_der);
    let issuer = certificate(issuer_der);
    let tbs = subject.tbs_certificate.to_der().expect("tbs");
    let signature = subject.signature.raw_bytes();
    rrn_signature_valid(&public_key_der(&issuer), &tbs, signature)
}

/// Parses a simple-TLV file into (tag, value) pairs, stopping at trailing zero padding.
pub fn parse_tlv(file: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut elements = Vec::new();
    let mut position = 0;
    while position < file.len() {
        let tag = file[position];
        if tag == 0 && !elements.is_empty() {
            break;
        }
        position += 1;
        let mut length = 0usize;
        loop {
            let byte = file[position];
            position += 1;
            length += usize::from(byte);
            if byte != 0xFF {
                break;
            }
        }
        elements.push((tag, file[position..position + length].to_vec()));
        position += length;
    }
    elements
}

pub fn tlv_value(elements: &[(u8, Vec<u8>)], tag: u8) -> Option<&[u8]> {
    elements
        .iter()
        .find(|(candidate, _)| *candidate == tag)
        .map(|(_, value)| value.as_slice())
}
