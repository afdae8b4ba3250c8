//! The checks against the test PKI: both card generations verify; forged, swapped and copied
//! data is refused with its own error.

use chrono::{TimeZone, Utc};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384};

use busloket_hardware::eid::verify::{
    verify_authentication_certificate, verify_basic_key, verify_chip_challenge,
    verify_holder_signature,
};
use busloket_hardware::eid::{
    CardFiles, CertificateError, VerifyError, parse_identity, verify_card,
};

use super::fixtures::{
    Key, NATIONAL_NUMBER, PHOTO, PKI, address_file, address_message, anchors, card_files, encode,
    identity_fields, now, padded, signed_files,
};

#[test]
fn both_card_generations_verify() {
    for ec in [false, true] {
        let files = card_files(ec);
        let identity_sha256: [u8; 32] = Sha256::digest(&files.identity).into();
        let verified = verify_card(files, &anchors(), now()).unwrap();
        assert_eq!(verified.identity_file_sha256, identity_sha256);
        assert_eq!(verified.identity.basic_key_hash.is_some(), ec);
        let debug = format!("{verified:?}");
        assert!(
            !debug.contains(NATIONAL_NUMBER) && !debug.contains("Korenmarkt"),
            "{debug}"
        );
        let card = verified.into_card_identity();
        assert_eq!(card.national_number, NATIONAL_NUMBER);
        assert_eq!(card.address.street_and_number, "Korenmarkt 1 bus 2");
        assert_eq!(card.photo_jpeg, PHOTO);
    }
}

#[test]
fn sha1_cards_verify_whether_signed_with_sha1_or_re_signed_with_sha256() {
    let pki = &*PKI;
    let identity = encode(&identity_fields(&Sha1::digest(PHOTO), None));
    let files = signed_files(
        &pki.rsa_rrn_key,
        &pki.rsa_rrn,
        identity.clone(),
        address_file("Markt 1"),
        false,
    );
    verify_card(files, &anchors(), now()).unwrap();

    let Key::Rsa(rrn_key) = &pki.rsa_rrn_key else {
        unreachable!()
    };
    let sign_sha1 = |message: &[u8]| {
        rrn_key
            .sign(rsa::Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(message))
            .unwrap()
    };
    let mut files = signed_files(
        &pki.rsa_rrn_key,
        &pki.rsa_rrn,
        identity,
        address_file("Markt 1"),
        false,
    );
    files.identity_signature = sign_sha1(&files.identity);
    files.address_signature =
        sign_sha1(&address_message(&files.address, &files.identity_signature));
    verify_card(files, &anchors(), now()).unwrap();
}

fn refusal(files: CardFiles) -> VerifyError {
    verify_card(files, &anchors(), now()).unwrap_err()
}

#[test]
fn a_forged_identity_is_refused() {
    for ec in [false, true] {
        let mut files = card_files(ec);
        let at = files
            .identity
            .windows(4)
            .position(|w| w == b"Gent")
            .unwrap();
        files.identity[at..at + 4].copy_from_slice(b"Genk");
        let error = refusal(files);
        assert!(matches!(error, VerifyError::IdentityNotSigned), "{error:?}");
        assert_eq!(
            error.to_string(),
            "the identity file is not signed by the national register"
        );
    }
    // Signed by a key with the national register's name that no trusted root vouches for.
    let pki = &*PKI;
    let genuine = card_files(false);
    let forged = signed_files(
        &pki.rogue_rrn_key,
        &pki.rsa_rrn,
        genuine.identity,
        genuine.address,
        false,
    );
    assert!(matches!(refusal(forged), VerifyError::IdentityNotSigned));
}

#[test]
fn a_swapped_address_is_refused() {
    for ec in [false, true] {
        let mut files = card_files(ec);
        let other = {
            let pki = &*PKI;
            let (key, certificate) = if ec {
                (&pki.ec_rrn_key, &pki.ec_rrn)
            } else {
                (&pki.rsa_rrn_key, &pki.rsa_rrn)
            };
            let mut fields = identity_fields(&Sha384::digest(PHOTO), None);
            fields[6].1 = b"90010112345".to_vec();
            signed_files(
                key,
                certificate,
                encode(&fields),
                address_file("Elders 9"),
                ec,
            )
        };
        files.address = other.address;
        files.address_signature = other.address_signature;
        let error = refusal(files);
        assert!(matches!(error, VerifyError::AddressNotSigned), "{error:?}");
        assert_eq!(
            error.to_string(),
            "the address file is not signed by the national register for this card"
        );
    }
}

#[test]
fn a_bad_photo_is_refused() {
    for ec in [false, true] {
        let mut files = card_files(ec);
        files.photo[10] ^= 1;
        let error = refusal(files);
        assert!(matches!(error, VerifyError::PhotoMismatch), "{error:?}");
        assert_eq!(
            error.to_string(),
            "the photo does not match the card's data"
        );
    }
}

#[test]
fn signature_files_must_be_padded_with_zeros_only() {
    let mut files = card_files(true);
    let last = files.identity_signature.len() - 1;
    files.identity_signature[last] = 1;
    assert!(matches!(refusal(files), VerifyError::IdentityNotSigned));

    let mut files = card_files(false);
    files.identity_signature.push(1);
    assert!(matches!(refusal(files), VerifyError::IdentityNotSigned));
}

#[test]
fn the_national_register_certificate_must_chain_to_a_configured_root() {
    let mut files = card_files(false);
    files.rrn_certificate = padded(&PKI.rogue_rrn, 30);
    let error = refusal(files);
    assert_eq!(
        error.to_string(),
        "the national register's certificate on the card is not trusted"
    );
    assert!(
        matches!(&error, VerifyError::RrnCertificate { source: CertificateError::BadSignature { subject } } if subject == "CN=RRN,O=RRN,C=BE"),
        "{error:?}"
    );

    let only_ec_root =
        busloket_hardware::eid::TrustAnchors::from_der([PKI.ec_root.as_slice()]).unwrap();
    let error = verify_card(card_files(false), &only_ec_root, now()).unwrap_err();
    assert!(
        matches!(
            error,
            VerifyError::RrnCertificate {
                source: CertificateError::UntrustedIssuer { .. }
            }
        ),
        "{error:?}"
    );

    let later = Utc.with_ymd_and_hms(2041, 1, 1, 0, 0, 0).unwrap();
    let error = verify_card(card_files(true), &anchors(), later).unwrap_err();
    assert!(
        matches!(
            error,
            VerifyError::RrnCertificate {
                source: CertificateError::NotValidAt { .. }
            }
        ),
        "{error:?}"
    );

    let mut files = card_files(true);
    files.rrn_certificate = vec![0; 1300];
    let error = refusal(files);
    assert!(
        matches!(
            error,
            VerifyError::RrnCertificate {
                source: CertificateError::Absent
            }
        ),
        "{error:?}"
    );

    let mut files = card_files(true);
    files.rrn_certificate.truncate(100);
    let error = refusal(files);
    assert!(
        matches!(
            error,
            VerifyError::RrnCertificate {
                source: CertificateError::BadPadding
            }
        ),
        "{error:?}"
    );
}

#[test]
fn the_chip_proves_it_is_genuine_and_a_copy_does_not() {
    let pki = &*PKI;
    let files = card_files(true);
    let identity = parse_identity(&files.identity).unwrap();
    let basic_key_file = pki.basic_key.spki_der();
    assert_eq!(basic_key_file.len(), 120);
    let chip_key = verify_basic_key(&identity, &basic_key_file).unwrap();
    let challenge = [0x42; 48];
    verify_chip_challenge(
        &chip_key,
        &challenge,
        &pki.basic_key.sign_digest(&challenge),
    )
    .unwrap();

    // The same files on another chip: that chip signs with its own key.
    let copied = pki.ec_authentication_key.sign_digest(&challenge);
    let error = verify_chip_challenge(&chip_key, &challenge, &copied).unwrap_err();
    assert!(matches!(error, VerifyError::ChipNotGenuine));
    assert_eq!(error.to_string(), "the chip did not prove it is genuine");
    // An answer to an older challenge.
    let replayed = pki.basic_key.sign_digest(&[0x41; 48]);
    assert!(matches!(
        verify_chip_challenge(&chip_key, &challenge, &replayed),
        Err(VerifyError::ChipNotGenuine)
    ));
    assert!(matches!(
        verify_chip_challenge(&chip_key, &challenge, &[0; 95]),
        Err(VerifyError::ChipNotGenuine)
    ));

    // The other chip's key file does not match the identity file.
    let other_key_file = pki.ec_authentication_key.spki_der();
    assert!(matches!(
        verify_basic_key(&identity, &other_key_file),
        Err(VerifyError::BasicKeyMismatch)
    ));
    let rsa_identity = parse_identity(&card_files(false).identity).unwrap();
    assert!(matches!(
        verify_basic_key(&rsa_identity, &basic_key_file),
        Err(VerifyError::BasicKeyMissing)
    ));
}

#[test]
fn the_holder_signs_with_the_authentication_key() {
    let pki = &*PKI;
    let citizen_ca = padded(&pki.citizen_ca, 50);
    for (certificate, key, digest) in [
        (
            &pki.rsa_authentication,
            &pki.rsa_authentication_key,
            Sha256::digest(b"request 17").to_vec(),
        ),
        (
            &pki.ec_authentication,
            &pki.ec_authentication_key,
            Sha384::digest(b"request 17").to_vec(),
        ),
    ] {
        let authentication = verify_authentication_certificate(
            &padded(certificate, 1100),
            &citizen_ca,
            &anchors(),
            now(),
        )
        .unwrap();
        assert_eq!(
            authentication.subject_serial_number().as_deref(),
            Some(NATIONAL_NUMBER)
        );
        let signature = key.sign_digest(&digest);
        verify_holder_signature(&authentication, NATIONAL_NUMBER, &digest, &signature).unwrap();

        let error = verify_holder_signature(&authentication, "90010112345", &digest, &signature)
            .unwrap_err();
        assert!(matches!(error, VerifyError::HolderMismatch));
        let mut other_digest = digest.clone();
        other_digest[0] ^= 1;
        let error =
            verify_holder_signature(&authentication, NATIONAL_NUMBER, &other_digest, &signature)
                .unwrap_err();
        assert!(matches!(error, VerifyError::HolderSignatureInvalid));
        assert_eq!(
            error.to_string(),
            "the PIN signature of the card does not verify"
        );
    }

    let error =
        verify_authentication_certificate(&[0; 1300], &citizen_ca, &anchors(), now()).unwrap_err();
    assert!(matches!(
        error,
        VerifyError::AuthenticationCertificateMissing
    ));
    assert_eq!(
        error.to_string(),
        "the card has no authentication certificate (Kids-ID cards have none)"
    );

    // The citizen CA file replaced by the RRN certificate: the chain breaks.
    let error =
        verify_authentication_certificate(&pki.rsa_authentication, &pki.rsa_rrn, &anchors(), now())
            .unwrap_err();
    assert!(
        matches!(
            error,
            VerifyError::AuthenticationCertificateUntrusted {
                source: CertificateError::UntrustedIssuer { .. }
            }
        ),
        "{error:?}"
    );
}

#[test]
fn a_certificate_signed_with_someone_elses_authentication_key_is_refused() {
    let pki = &*PKI;
    // The impostor's own certificate is genuine...
    verify_authentication_certificate(
        &pki.impostor_authentication,
        &pki.citizen_ca,
        &anchors(),
        now(),
    )
    .unwrap();
    // ...but it is no certificate authority, so what its key signed proves nothing.
    let error = verify_authentication_certificate(
        &pki.forged_authentication,
        &pki.impostor_authentication,
        &anchors(),
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(&error, VerifyError::AuthenticationCertificateUntrusted { source: CertificateError::NotAnAuthority { subject } } if subject.contains("Impostor")),
        "{error:?}"
    );
    let chain = format!("{error:?} {}", std::error::Error::source(&error).unwrap());
    assert!(!chain.contains("90010112345"), "{chain}");
}
