//! Signing on the card: PSO:CDS with the authentication key after a PIN (verified with the
//! authentication certificate's key, the certificate chained to the test root), the
//! non-repudiation key's stricter PIN rule, INTERNAL AUTHENTICATE with the 1.8 basic key, and
//! the kids card without authentication key.

use busloket_virtual_eid::{Profile, file};
use sha2::{Digest, Sha256, Sha384};
use x509_cert::der::asn1::PrintableStringRef;

use crate::support::{
    KID, TOM, card, card_signature_valid, certificate, issued_by, pki, public_key_der, read_file,
    send, transmit, trim_certificate, verify_apdu,
};

const SELECT_BELPIC: [u8; 9] = [0x00, 0xA4, 0x08, 0x0C, 0x04, 0x3F, 0x00, 0xDF, 0x00];

fn mse_set(algorithm: u8, key: u8) -> Vec<u8> {
    vec![
        0x00, 0x22, 0x41, 0xB6, 0x05, 0x04, 0x80, algorithm, 0x84, key,
    ]
}

fn pso(digest: &[u8]) -> Vec<u8> {
    [&[0x00, 0x2A, 0x9E, 0x9A, digest.len() as u8][..], digest].concat()
}

/// The algorithm reference and digest a holder-presence proof uses on each profile.
fn algorithm_and_digest(profile: Profile, nonce: &[u8]) -> (u8, Vec<u8>) {
    match profile {
        Profile::Applet17 => (0x08, Sha256::digest(nonce).to_vec()),
        Profile::Applet18 => (0x02, Sha384::digest(nonce).to_vec()),
    }
}

#[test]
fn authentication_signature_verifies_with_the_authentication_certificate() {
    for profile in [Profile::Applet17, Profile::Applet18] {
        let mut card = card(profile, TOM);
        let (algorithm, digest) = algorithm_and_digest(profile, b"session 42 at 2026-11-23T10:00Z");
        assert_eq!(send(&mut card, &SELECT_BELPIC).1, [0x90, 0x00]);
        assert_eq!(send(&mut card, &mse_set(algorithm, 0x82)).1, [0x90, 0x00]);
        assert_eq!(send(&mut card, &verify_apdu("1234")).1, [0x90, 0x00]);
        let (nothing, status) = send(&mut card, &pso(&digest));
        let expected_length = match profile {
            Profile::Applet17 => 0x00,
            Profile::Applet18 => 0x60,
        };
        assert_eq!(
            (nothing.len(), status),
            (0, [0x61, expected_length]),
            "{profile}"
        );
        let (signature, status) = send(&mut card, &[0x00, 0xC0, 0x00, 0x00, expected_length]);
        assert_eq!(status, [0x90, 0x00]);

        let certificate_file = read_file(&mut card, file::AUTHENTICATION_CERTIFICATE);
        let authentication = trim_certificate(&certificate_file);
        assert!(
            card_signature_valid(
                &public_key_der(&certificate(authentication)),
                &digest,
                &signature
            ),
            "{profile}"
        );
        let mut other_digest = digest.clone();
        other_digest[0] ^= 1;
        assert!(!card_signature_valid(
            &public_key_der(&certificate(authentication)),
            &other_digest,
            &signature
        ));

        let ca_file = read_file(&mut card, file::CA_CERTIFICATE);
        let root_file = read_file(&mut card, file::ROOT_CERTIFICATE);
        assert!(issued_by(authentication, trim_certificate(&ca_file)));
        assert!(issued_by(
            trim_certificate(&ca_file),
            trim_certificate(&root_file)
        ));
        assert_eq!(
            trim_certificate(&root_file),
            pki(profile).root_certificate_der()
        );

        let subject = &certificate(authentication).tbs_certificate.subject;
        let serial_number: Vec<String> = subject
            .0
            .iter()
            .flat_map(|name| name.0.iter())
            .filter(|attribute| attribute.oid.to_string() == "2.5.4.5")
            .map(|attribute| {
                attribute
                    .value
                    .decode_as::<PrintableStringRef<'_>>()
                    .expect("printable")
                    .to_string()
            })
            .collect();
        assert_eq!(serial_number, vec![TOM.to_owned()]);
        assert!(
            subject
                .to_string()
                .contains("CN=Tom Janssens (Authentication)"),
            "{subject}"
        );
    }
}

#[test]
fn rsa_card_also_signs_a_caller_made_digest_info() {
    let mut card = card(Profile::Applet17, TOM);
    let digest = Sha256::digest(b"nonce");
    let digest_info = [
        &[
            0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ][..],
        digest.as_slice(),
    ]
    .concat();
    send(&mut card, &mse_set(0x01, 0x82));
    send(&mut card, &verify_apdu("1234"));
    let (signature, status) = transmit(&mut card, &pso(&digest_info));
    assert_eq!((signature.len(), status), (256, [0x90, 0x00]));
    let certificate_file = read_file(&mut card, file::AUTHENTICATION_CERTIFICATE);
    let key = public_key_der(&certificate(trim_certificate(&certificate_file)));
    assert!(card_signature_valid(&key, &digest, &signature));
}

#[test]
fn pso_needs_an_environment_a_pin_and_the_right_digest_length() {
    let mut card = card(Profile::Applet18, TOM);
    let digest = Sha384::digest(b"nonce").to_vec();
    assert_eq!(send(&mut card, &pso(&digest)).1, [0x69, 0x85], "no MSE SET");
    assert_eq!(send(&mut card, &mse_set(0x02, 0x82)).1, [0x90, 0x00]);
    assert_eq!(send(&mut card, &pso(&digest)).1, [0x69, 0x82], "no PIN");
    assert_eq!(send(&mut card, &verify_apdu("1234")).1, [0x90, 0x00]);
    assert_eq!(
        send(&mut card, &pso(&digest[..32])).1,
        [0x67, 0x00],
        "SHA-384 wants 48 bytes"
    );
    assert_eq!(send(&mut card, &pso(&digest)).1, [0x61, 0x60]);
    assert_eq!(send(&mut card, &[0x80, 0xE6, 0x00, 0x00]).1, [0x90, 0x00]);
    assert_eq!(send(&mut card, &pso(&digest)).1, [0x69, 0x82], "logged off");
    assert_eq!(send(&mut card, &verify_apdu("1234")).1, [0x90, 0x00]);
    assert_eq!(send(&mut card, &verify_apdu("0000")).1, [0x63, 0xC2]);
    assert_eq!(
        send(&mut card, &pso(&digest)).1,
        [0x69, 0x82],
        "a wrong PIN withdraws the right"
    );
    assert_eq!(
        send(&mut card, &mse_set(0x08, 0x82)).1,
        [0x90, 0x00],
        "SHA3-256 is an EC algorithm"
    );
    assert_eq!(
        send(&mut card, &mse_set(0x80, 0x82)).1,
        [0x6A, 0x80],
        "unknown algorithm"
    );
    assert_eq!(
        send(&mut card, &mse_set(0x02, 0x81)).1,
        [0x6A, 0x88],
        "the basic key does not sign PSO"
    );
    assert_eq!(
        send(
            &mut card,
            &[0x00, 0x22, 0x41, 0xB8, 0x05, 0x04, 0x80, 0x02, 0x84, 0x82]
        )
        .1,
        [0x6A, 0x86]
    );
}

#[test]
fn the_non_repudiation_key_wants_the_pin_right_before() {
    let mut card = card(Profile::Applet18, TOM);
    let digest = Sha384::digest(b"a contract").to_vec();
    assert_eq!(send(&mut card, &mse_set(0x02, 0x83)).1, [0x90, 0x00]);
    assert_eq!(send(&mut card, &verify_apdu("1234")).1, [0x90, 0x00]);
    let (signature, status) = transmit(&mut card, &pso(&digest));
    assert_eq!((signature.len(), status), (96, [0x90, 0x00]));
    let certificate_file = read_file(&mut card, file::NON_REPUDIATION_CERTIFICATE);
    let key = public_key_der(&certificate(trim_certificate(&certificate_file)));
    assert!(card_signature_valid(&key, &digest, &signature));

    assert_eq!(
        send(&mut card, &pso(&digest)).1,
        [0x69, 0x82],
        "one signature per PIN"
    );
    assert_eq!(send(&mut card, &verify_apdu("1234")).1, [0x90, 0x00]);
    assert_eq!(send(&mut card, &mse_set(0x02, 0x83)).1, [0x90, 0x00]);
    assert_eq!(
        send(&mut card, &pso(&digest)).1,
        [0x69, 0x82],
        "a command came in between"
    );
}

#[test]
fn get_response_hands_out_data_in_parts_and_only_right_after() {
    let mut card = card(Profile::Applet18, TOM);
    let digest = Sha384::digest(b"nonce").to_vec();
    send(&mut card, &mse_set(0x02, 0x82));
    send(&mut card, &verify_apdu("1234"));
    assert_eq!(send(&mut card, &pso(&digest)).1, [0x61, 0x60]);
    assert_eq!(
        send(&mut card, &[0x00, 0xC0, 0x00, 0x00, 0x00]).1,
        [0x6C, 0x60],
        "256 is too many"
    );
    let (first, status) = send(&mut card, &[0x00, 0xC0, 0x00, 0x00, 0x40]);
    assert_eq!((first.len(), status), (64, [0x61, 0x20]));
    let (rest, status) = send(&mut card, &[0x00, 0xC0, 0x00, 0x00, 0x20]);
    assert_eq!((rest.len(), status), (32, [0x90, 0x00]));
    assert_eq!(
        send(&mut card, &[0x00, 0xC0, 0x00, 0x00, 0x20]).1,
        [0x69, 0x85],
        "nothing left"
    );

    assert_eq!(send(&mut card, &pso(&digest)).1, [0x61, 0x60]);
    assert_eq!(
        send(&mut card, &[0x80, 0xE4, 0x00, 0x00, 0x1C]).1,
        [0x90, 0x00]
    );
    assert_eq!(
        send(&mut card, &[0x00, 0xC0, 0x00, 0x00, 0x60]).1,
        [0x69, 0x85],
        "another command came first"
    );
}

#[test]
fn internal_authenticate_proves_the_chip_holds_the_basic_key() {
    let mut card = card(Profile::Applet18, TOM);
    let basic_key = read_file(&mut card, file::BASIC_PUBLIC_KEY);
    let challenge: Vec<u8> = (0u8..48).map(|index| index.wrapping_mul(37)).collect();
    let command = [&[0x00, 0x88, 0x02, 0x81, 0x32, 0x94, 0x30][..], &challenge].concat();
    assert_eq!(send(&mut card, &command).1, [0x61, 0x60], "no PIN needed");
    let (signature, status) = send(&mut card, &[0x00, 0xC0, 0x00, 0x00, 0x60]);
    assert_eq!((signature.len(), status), (96, [0x90, 0x00]));
    assert!(card_signature_valid(&basic_key, &challenge, &signature));
    assert_eq!(
        send(&mut card, &[&command[..4], &[0x02, 0x94, 0x00]].concat()).1,
        [0x6A, 0x80]
    );
    assert_eq!(
        send(
            &mut card,
            &[&[0x00, 0x88, 0x02, 0x82][..], &command[4..]].concat()
        )
        .1,
        [0x6A, 0x88]
    );

    let mut rsa_card = crate::support::card(Profile::Applet17, TOM);
    assert_eq!(
        send(&mut rsa_card, &command).1,
        [0x6D, 0x00],
        "applet 1.7 has no basic key"
    );
}

#[test]
fn kids_card_has_no_authentication_key_or_certificate() {
    for profile in [Profile::Applet17, Profile::Applet18] {
        let mut card = card(profile, KID);
        let certificate_file = read_file(&mut card, file::AUTHENTICATION_CERTIFICATE);
        assert!(certificate_file.iter().all(|&byte| byte == 0), "all zeros");
        let expected_length = match profile {
            Profile::Applet17 => 1300,
            Profile::Applet18 => 2500,
        };
        assert_eq!(certificate_file.len(), expected_length);
        let (algorithm, _) = algorithm_and_digest(profile, b"");
        assert_eq!(send(&mut card, &mse_set(algorithm, 0x82)).1, [0x6A, 0x88]);
        assert_eq!(send(&mut card, &mse_set(algorithm, 0x83)).1, [0x6A, 0x88]);
        assert_eq!(
            send(&mut card, &verify_apdu("1234")).1,
            [0x90, 0x00],
            "the PIN still works"
        );
    }
}
