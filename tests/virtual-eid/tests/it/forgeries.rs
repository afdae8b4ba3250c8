//! Every forged card fails exactly the check it should, and a genuine card passes them all,
//! verified with the `rsa` and `p384` crates directly as a reader of the card would.

use busloket_hardware::CardIdentity;
use busloket_virtual_eid::files::{address_signature_message, tag};
use busloket_virtual_eid::{CardSpec, Forgery, Profile, VirtualCard, file};
use sha2::{Digest, Sha256, Sha384};

use crate::support::{
    TOM, card_from, card_signature_valid, certificate, citizen, issued_by, parse_tlv,
    public_key_der, read_file, rrn_signature_valid, send, tlv_value, trim_certificate,
};

/// The outcome of each check a reader makes.
#[derive(Debug, PartialEq, Eq)]
struct Checks {
    rrn_certificate_chains_to_root: bool,
    identity_signature: bool,
    address_signature: bool,
    photo_hash: bool,
    /// Applet 1.8 only (`true` on 1.7).
    basic_key_hash: bool,
    /// Applet 1.8 only (`true` on 1.7).
    chip_authentication: bool,
}

const ALL_PASS: Checks = Checks {
    rrn_certificate_chains_to_root: true,
    identity_signature: true,
    address_signature: true,
    photo_hash: true,
    basic_key_hash: true,
    chip_authentication: true,
};

fn check(card: &mut VirtualCard, root_der: &[u8]) -> Checks {
    let identity = read_file(card, file::IDENTITY);
    let identity_signature = read_file(card, file::IDENTITY_SIGNATURE);
    let address = read_file(card, file::ADDRESS);
    let address_signature = read_file(card, file::ADDRESS_SIGNATURE);
    let photo = read_file(card, file::PHOTO);
    let rrn_file = read_file(card, file::RRN_CERTIFICATE);
    let rrn = trim_certificate(&rrn_file);
    let rrn_key = public_key_der(&certificate(rrn));
    let elements = parse_tlv(&identity);
    let photo_hash = tlv_value(&elements, tag::PHOTO_HASH).expect("photo hash");
    let photo_hash_matches = match photo_hash.len() {
        32 => photo_hash == Sha256::digest(&photo).as_slice(),
        48 => photo_hash == Sha384::digest(&photo).as_slice(),
        other => panic!("unexpected photo hash length {other}"),
    };
    let (basic_key_hash, chip_authentication) = match tlv_value(&elements, tag::BASIC_KEY_HASH) {
        None => (true, true),
        Some(expected) => {
            let basic_key = read_file(card, file::BASIC_PUBLIC_KEY);
            let challenge = Sha384::digest(b"fresh challenge from the reader");
            let command = [
                &[0x00, 0x88, 0x02, 0x81, 0x32, 0x94, 0x30][..],
                challenge.as_slice(),
            ]
            .concat();
            assert_eq!(send(card, &command).1, [0x61, 0x60]);
            let (signature, _) = send(card, &[0x00, 0xC0, 0x00, 0x00, 0x60]);
            (
                expected == Sha384::digest(&basic_key).as_slice(),
                card_signature_valid(&basic_key, &challenge, &signature),
            )
        }
    };
    Checks {
        rrn_certificate_chains_to_root: issued_by(rrn, root_der),
        identity_signature: rrn_signature_valid(&rrn_key, &identity, &identity_signature),
        address_signature: rrn_signature_valid(
            &rrn_key,
            &address_signature_message(&address, &identity_signature),
            &address_signature,
        ),
        photo_hash: photo_hash_matches,
        basic_key_hash,
        chip_authentication,
    }
}

fn checks_of(profile: Profile, spec: &CardSpec) -> Checks {
    let mut card = card_from(profile, spec);
    check(
        &mut card,
        crate::support::pki(profile).root_certificate_der(),
    )
}

fn neighbour() -> CardIdentity {
    citizen("72110514335")
}

#[test]
fn genuine_cards_pass_every_check() {
    for profile in [Profile::Applet17, Profile::Applet18] {
        for national_number in [TOM, "48031210579", "17100321158", "90051723318"] {
            let spec = CardSpec::new(citizen(national_number));
            assert_eq!(
                checks_of(profile, &spec),
                ALL_PASS,
                "{profile} {national_number}"
            );
        }
    }
}

#[test]
fn an_altered_identity_fails_only_the_identity_signature() {
    for profile in [Profile::Applet17, Profile::Applet18] {
        let spec = CardSpec::new(citizen(TOM)).with_forgery(Forgery::AlteredIdentity);
        let expected = Checks {
            identity_signature: false,
            ..ALL_PASS
        };
        assert_eq!(checks_of(profile, &spec), expected, "{profile}");
    }
}

#[test]
fn a_swapped_address_fails_only_the_address_signature() {
    for profile in [Profile::Applet17, Profile::Applet18] {
        let spec = CardSpec::new(citizen(TOM))
            .with_forgery(Forgery::SwappedAddress(Box::new(neighbour())));
        let mut card = card_from(profile, &spec);
        let address = read_file(&mut card, file::ADDRESS);
        assert_eq!(
            tlv_value(&parse_tlv(&address), tag::ADDRESS_STREET_AND_NUMBER),
            Some(neighbour().address.street_and_number.as_bytes())
        );
        let expected = Checks {
            address_signature: false,
            ..ALL_PASS
        };
        assert_eq!(
            check(
                &mut card,
                crate::support::pki(profile).root_certificate_der()
            ),
            expected,
            "{profile}"
        );
    }
}

#[test]
fn a_replaced_photo_fails_only_the_photo_hash() {
    for profile in [Profile::Applet17, Profile::Applet18] {
        let spec = CardSpec::new(citizen(TOM)).with_forgery(Forgery::ReplacedPhoto);
        let expected = Checks {
            photo_hash: false,
            ..ALL_PASS
        };
        assert_eq!(checks_of(profile, &spec), expected, "{profile}");
    }
}

#[test]
fn a_file_set_copied_to_another_chip_fails_only_chip_authentication() {
    let other_chip_number = neighbour().chip_number;
    let spec = CardSpec::new(citizen(TOM))
        .with_forgery(Forgery::CopiedToAnotherChip { other_chip_number });
    let expected = Checks {
        chip_authentication: false,
        ..ALL_PASS
    };
    assert_eq!(checks_of(Profile::Applet18, &spec), expected);
}

#[test]
fn cards_of_another_pki_do_not_chain_to_this_root() {
    let other = busloket_virtual_eid::TestPki::generate(Profile::Applet18, 7).expect("pki");
    let mut card =
        busloket_virtual_eid::personalise(&CardSpec::new(citizen(TOM)), &other).expect("card");
    let checks = check(
        &mut card,
        crate::support::pki(Profile::Applet18).root_certificate_der(),
    );
    assert_eq!(
        checks,
        Checks {
            rrn_certificate_chains_to_root: false,
            ..ALL_PASS
        }
    );
}
