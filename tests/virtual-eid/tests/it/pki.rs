//! The test PKI: deterministic from its seed, chained as the real one, exportable as PEM.

use busloket_virtual_eid::{CardSpec, Profile, TestPki, file, personalise};

use crate::support::{TOM, certificate, citizen, issued_by, pki};

#[test]
fn the_same_seed_gives_the_same_certificates() {
    let first = TestPki::generate(Profile::Applet18, 99).expect("pki");
    let second = TestPki::generate(Profile::Applet18, 99).expect("pki");
    let other = TestPki::generate(Profile::Applet18, 100).expect("pki");
    assert_eq!(first.root_certificate_der(), second.root_certificate_der());
    assert_eq!(first.rrn_certificate_der(), second.rrn_certificate_der());
    assert_ne!(first.root_certificate_der(), other.root_certificate_der());
    let spec = CardSpec::new(citizen(TOM));
    let card_a = personalise(&spec, &first).expect("card");
    let card_b = personalise(&spec, &second).expect("card");
    for id in [
        file::IDENTITY_SIGNATURE,
        file::ADDRESS_SIGNATURE,
        file::AUTHENTICATION_CERTIFICATE,
        file::PHOTO,
    ] {
        assert_eq!(card_a.file(id), card_b.file(id), "{id:?}");
    }
}

#[test]
fn the_chain_is_root_to_rrn_and_root_to_card_cas() {
    for profile in [Profile::Applet17, Profile::Applet18] {
        let pki = pki(profile);
        let root = pki.root_certificate_der();
        assert!(issued_by(root, root), "self-signed");
        assert!(issued_by(pki.rrn_certificate_der(), root));
        assert!(issued_by(pki.citizen_ca_certificate_der(), root));
        assert!(issued_by(pki.foreigner_ca_certificate_der(), root));
        assert!(!issued_by(
            pki.rrn_certificate_der(),
            pki.citizen_ca_certificate_der()
        ));
        let rrn = certificate(pki.rrn_certificate_der());
        assert_eq!(rrn.tbs_certificate.subject.to_string(), "CN=RRN,O=RRN,C=BE");
        let root_subject = certificate(root).tbs_certificate.subject.to_string();
        assert!(
            root_subject.contains("TEST"),
            "the root says it is a test root: {root_subject}"
        );
    }
}

#[test]
fn the_root_exports_as_pem() {
    let pki = pki(Profile::Applet18);
    let pem = pem::parse(pki.root_certificate_pem()).expect("pem");
    assert_eq!(pem.tag(), "CERTIFICATE");
    assert_eq!(pem.contents(), pki.root_certificate_der());
}

#[test]
fn profiles_parse_and_print() {
    assert_eq!("1.7".parse::<Profile>().ok(), Some(Profile::Applet17));
    assert_eq!("1.8".parse::<Profile>().ok(), Some(Profile::Applet18));
    assert!("1.9".parse::<Profile>().is_err());
    assert_eq!(Profile::Applet17.to_string(), "1.7");
    assert_eq!(Profile::Applet18.atr()[..2], [0x3B, 0x7F]);
}
