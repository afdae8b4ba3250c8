//! The city's trust end to end through the library: `ca init` → `device request` → `device
//! enroll` → `load_bundle`, and every way a bundle, a request or a revocation list is refused,
//! each with a message that names the file and the problem.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use busloket_provisioning::bundle::BundleError;
use busloket_provisioning::enroll::{DEFAULT_DAYS, RequestFiles};
use busloket_provisioning::pki::Serial;
use busloket_provisioning::pki::files::FileError;
use busloket_provisioning::{
    TrustError, enroll_device, init_ca, load_bundle, load_crl, request_device, revoke_device,
};
use busloket_sync::terms::DeviceId;
use ed25519_dalek::Signer;
use ed25519_dalek::pkcs8::DecodePublicKey;
use rustls_pki_types::CertificateDer;
use tempfile::TempDir;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const HUB_URL: &str = "https://hub.kortrijk.be:8443";

/// A CA, one bus's key directory and its bundle, in one temporary directory.
struct City {
    root: TempDir,
    ca: PathBuf,
    keys: PathBuf,
    bundle: PathBuf,
}

fn hosts(hosts: &[&str]) -> Vec<String> {
    hosts.iter().map(|host| (*host).to_owned()).collect()
}

fn new_ca(dir: &Path, name: &str) {
    init_ca(
        dir,
        name,
        &hosts(&["hub.kortrijk.be", "10.20.0.1"]),
        SystemTime::now(),
    )
    .unwrap();
}

fn request(keys: &Path, device: &str) -> RequestFiles {
    request_device(keys, device, &hosts(&["bus.local", "192.168.4.1"])).unwrap();
    requests_in(keys)
}

fn requests_in(dir: &Path) -> RequestFiles {
    RequestFiles::from_paths(&[dir.to_owned()]).unwrap()
}

fn enrolled_city() -> City {
    let root = tempfile::tempdir().unwrap();
    let ca = root.path().join("ca");
    let keys = root.path().join("keys");
    let bundle = root.path().join("bundle");
    new_ca(&ca, "City of Kortrijk");
    let requests = request(&keys, "bus-1");
    enroll_device(
        &ca,
        &requests,
        HUB_URL,
        &bundle,
        DEFAULT_DAYS,
        SystemTime::now(),
    )
    .unwrap();
    City {
        root,
        ca,
        keys,
        bundle,
    }
}

fn refused(city: &City, now: SystemTime) -> (BundleError, String) {
    let err = load_bundle(&city.bundle, &city.keys, now).unwrap_err();
    let message = err.to_string();
    (err, message)
}

fn certificate_der(path: &Path) -> Vec<u8> {
    pem::parse(fs::read(path).unwrap()).unwrap().into_contents()
}

#[test]
fn an_enrolled_bus_loads_its_bundle() {
    let city = enrolled_city();
    let bundle = load_bundle(&city.bundle, &city.keys, SystemTime::now()).unwrap();
    assert_eq!(bundle.device_id().as_str(), "bus-1");
    assert_eq!(bundle.hub_url(), HUB_URL);
    assert_eq!(
        bundle.ca_certificate().as_ref(),
        certificate_der(&city.ca.join("ca.pem"))
    );

    // The identity key signs, and the certificate's key verifies.
    let device = certificate_der(&city.bundle.join("device.pem"));
    let (_, parsed) = x509_parser::parse_x509_certificate(&device).unwrap();
    let verifying =
        ed25519_dalek::VerifyingKey::from_public_key_der(parsed.public_key().raw).unwrap();
    let signature = bundle.device_signing_key().sign(b"manifest");
    verifying.verify_strict(b"manifest", &signature).unwrap();
    assert_eq!(bundle.device_serial().as_bytes(), parsed.raw_serial());

    // rcgen (ring) reads both keys as rustls will.
    let device_key = bundle.device_key_der();
    assert!(rcgen::KeyPair::try_from(device_key.secret_pkcs8_der()).is_ok());
    let wifi_key = bundle.wifi_key_der();
    assert!(rcgen::KeyPair::try_from(wifi_key.secret_pkcs8_der()).is_ok());

    // The bundle holds public material only.
    let mut names: Vec<String> = fs::read_dir(&city.bundle)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["bundle.toml", "ca.pem", "device.pem", "wifi.pem"]);

    // The Debug output shows no key.
    let debug = format!("{bundle:?}");
    assert!(debug.contains("bus-1") && !debug.contains("key"), "{debug}");
}

#[test]
fn the_ca_directory_has_private_keys_and_a_signed_empty_crl() {
    let city = enrolled_city();
    for key in ["ca.key", "hub.key", "issuing.key"] {
        let mode = fs::metadata(city.ca.join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    for key in ["device.key", "wifi.key"] {
        let mode = fs::metadata(city.keys.join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    let ca = CertificateDer::from(certificate_der(&city.ca.join("ca.pem")));
    let crl = load_crl(&city.ca.join("revoked.crl.pem"), &ca).unwrap();
    assert_eq!(crl.number, 1);
    assert!(crl.revoked.is_empty());

    // The CA is a CA for end-entity certificates only; the hub's certificate chains to it.
    let (_, parsed) = x509_parser::parse_x509_certificate(&ca).unwrap();
    let constraints = parsed.basic_constraints().unwrap().unwrap().value;
    assert!(constraints.ca);
    assert_eq!(constraints.path_len_constraint, Some(0));
    assert_eq!(
        parsed.subject().to_string(),
        "CN=City of Kortrijk busloket CA, O=City of Kortrijk"
    );
    let hub = CertificateDer::from(certificate_der(&city.ca.join("hub.pem")));
    let anchors = [webpki::anchor_from_trusted_cert(&ca).unwrap()];
    let hub = webpki::EndEntityCert::try_from(&hub).unwrap();
    hub.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &[],
        rustls_pki_types::UnixTime::now(),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .unwrap();
    let name = rustls_pki_types::ServerName::try_from("hub.kortrijk.be").unwrap();
    hub.verify_is_valid_for_subject_name(&name).unwrap();
}

#[test]
fn an_expired_or_not_yet_valid_certificate_is_refused_with_its_date() {
    let city = enrolled_city();
    let (err, message) = refused(&city, SystemTime::now() + 900 * DAY);
    assert!(matches!(err, BundleError::Expired { .. }), "{err:?}");
    assert!(
        message.contains("device.pem") && message.contains("expired on 20"),
        "{message}"
    );

    // Issued for one day: expired two days later, while the CA still is valid.
    let short = city.root.path().join("short");
    let requests = requests_in(&city.keys);
    enroll_device(&city.ca, &requests, HUB_URL, &short, 1, SystemTime::now()).unwrap();
    let err = load_bundle(&short, &city.keys, SystemTime::now() + 2 * DAY).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, BundleError::Expired { .. }), "{err:?}");
    assert!(message.contains("short/device.pem"), "{message}");

    // Before the CA exists, the CA is the first thing wrong.
    let (err, message) = refused(&city, SystemTime::now() - 2 * DAY);
    assert!(matches!(err, BundleError::NotYetValid { .. }), "{err:?}");
    assert!(
        message.contains("ca.pem") && message.contains("not valid yet"),
        "{message}"
    );
}

#[test]
fn a_certificate_from_another_ca_is_refused_naming_its_issuer() {
    let city = enrolled_city();
    let own_device_pem = fs::read(city.bundle.join("device.pem")).unwrap();
    let gent = city.root.path().join("gent");
    new_ca(&gent, "City of Gent");
    let foreign = city.root.path().join("foreign");
    let requests = requests_in(&city.keys);
    enroll_device(&gent, &requests, HUB_URL, &foreign, 30, SystemTime::now()).unwrap();
    fs::copy(foreign.join("device.pem"), city.bundle.join("device.pem")).unwrap();

    let (err, message) = refused(&city, SystemTime::now());
    assert!(matches!(err, BundleError::OtherCa { .. }), "{err:?}");
    assert!(message.contains("device.pem"), "{message}");
    assert!(message.contains("City of Gent busloket CA"), "{message}");
    assert!(
        message.contains("City of Kortrijk busloket CA"),
        "{message}"
    );

    // Another CA with the very same name: only the signature tells them apart.
    fs::write(city.bundle.join("device.pem"), own_device_pem).unwrap();
    let twin = city.root.path().join("twin");
    new_ca(&twin, "City of Kortrijk");
    let forged = city.root.path().join("forged");
    enroll_device(&twin, &requests, HUB_URL, &forged, 30, SystemTime::now()).unwrap();
    fs::copy(forged.join("wifi.pem"), city.bundle.join("wifi.pem")).unwrap();
    let (err, message) = refused(&city, SystemTime::now());
    assert!(matches!(err, BundleError::BadSignature { .. }), "{err:?}");
    assert!(
        message.contains("wifi.pem") && message.contains("signature"),
        "{message}"
    );
}

#[test]
fn a_tampered_certificate_is_refused() {
    let city = enrolled_city();
    let path = city.bundle.join("device.pem");
    let mut der = certificate_der(&path);
    // Rename the device inside the signed part: "bus-1" → "bus-7".
    let at = der
        .windows(5)
        .position(|window| window == b"bus-1")
        .unwrap();
    der[at + 4] = b'7';
    fs::write(&path, pem::encode(&pem::Pem::new("CERTIFICATE", der))).unwrap();
    let (err, message) = refused(&city, SystemTime::now());
    assert!(matches!(err, BundleError::BadSignature { .. }), "{err:?}");
    assert!(
        message.contains("device.pem") && message.contains("altered"),
        "{message}"
    );

    fs::write(&path, "this is not a certificate\n").unwrap();
    let (err, message) = refused(&city, SystemTime::now());
    assert!(
        matches!(err, BundleError::File(FileError::NotPem { .. })),
        "{err:?}"
    );
    assert!(
        message.contains("device.pem: is not a PEM file"),
        "{message}"
    );

    fs::write(
        &path,
        pem::encode(&pem::Pem::new("CERTIFICATE", vec![0x30, 3, 1, 2, 3])),
    )
    .unwrap();
    let (err, message) = refused(&city, SystemTime::now());
    assert!(matches!(err, BundleError::NotCertificate { .. }), "{err:?}");
    assert!(
        message.contains("device.pem: is not a certificate"),
        "{message}"
    );
}

#[test]
fn another_devices_key_or_bundle_is_refused() {
    let city = enrolled_city();
    let other_keys = city.root.path().join("bus-2");
    request(&other_keys, "bus-2");
    let err = load_bundle(&city.bundle, &other_keys, SystemTime::now()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, BundleError::KeyMismatch { .. }), "{err:?}");
    assert!(
        message.contains("bus-2/device.key: the key does not match the certificate")
            && message.contains("device.pem"),
        "{message}"
    );

    // The bundle's description names another device than its certificate.
    let description = city.bundle.join("bundle.toml");
    let text = fs::read_to_string(&description).unwrap();
    fs::write(&description, text.replace("\"bus-1\"", "\"bus-2\"")).unwrap();
    let (err, message) = refused(&city, SystemTime::now());
    assert!(matches!(err, BundleError::OtherDevice { .. }), "{err:?}");
    assert!(
        message.contains("device.pem: the certificate is for device \"bus-1\"")
            && message.contains("\"bus-2\""),
        "{message}"
    );
}

#[test]
fn a_key_readable_by_others_is_refused_with_its_mode() {
    let city = enrolled_city();
    let key = city.keys.join("wifi.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let (err, message) = refused(&city, SystemTime::now());
    assert!(
        matches!(
            err,
            BundleError::File(FileError::KeyReadableByOthers { mode: 0o644, .. })
        ),
        "{err:?}"
    );
    assert!(
        message.contains("wifi.key") && message.contains("mode 0644"),
        "{message}"
    );

    // The CA refuses to work with a CA key others can read.
    fs::set_permissions(city.ca.join("ca.key"), fs::Permissions::from_mode(0o640)).unwrap();
    let device: DeviceId = "bus-1".parse().unwrap();
    let message = revoke_device(&city.ca, &device, SystemTime::now())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("ca.key") && message.contains("mode 0640"),
        "{message}"
    );
}

#[test]
fn an_identity_request_without_an_ed25519_key_is_refused() {
    let city = enrolled_city();
    let requests = city.root.path().join("p256");
    fs::create_dir(&requests).unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "bus-9");
    params.subject_alt_names = vec![rcgen::SanType::URI(
        "busloket:device:bus-9".try_into().unwrap(),
    )];
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    fs::write(requests.join("device.csr.pem"), csr).unwrap();
    fs::copy(
        city.keys.join("wifi.csr.pem"),
        requests.join("wifi.csr.pem"),
    )
    .unwrap();

    let files = requests_in(&requests);
    let out = city.root.path().join("never");
    let err = enroll_device(&city.ca, &files, HUB_URL, &out, 30, SystemTime::now()).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, TrustError::IdentityKeyNotEd25519 { .. }),
        "{err:?}"
    );
    assert!(
        message.contains("p256/device.csr.pem") && message.contains("ECDSA P-256"),
        "{message}"
    );
    assert!(!out.join("device.pem").exists());
}

#[test]
fn a_tampered_or_mismatched_request_is_refused() {
    let city = enrolled_city();
    let tampered = city.root.path().join("tampered");
    fs::create_dir(&tampered).unwrap();
    let mut der = certificate_der(&city.keys.join("device.csr.pem"));
    let at = der
        .windows(5)
        .position(|window| window == b"bus-1")
        .unwrap();
    der[at + 4] = b'8';
    fs::write(
        tampered.join("device.csr.pem"),
        pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der)),
    )
    .unwrap();
    fs::copy(
        city.keys.join("wifi.csr.pem"),
        tampered.join("wifi.csr.pem"),
    )
    .unwrap();
    let files = requests_in(&tampered);
    let out = city.root.path().join("never");
    let err = enroll_device(&city.ca, &files, HUB_URL, &out, 30, SystemTime::now()).unwrap_err();
    assert!(
        matches!(err, TrustError::RequestSignature { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("tampered/device.csr.pem"), "{err}");

    // The Wi-Fi request of another bus does not go with this bus's identity.
    let other = city.root.path().join("bus-2");
    request(&other, "bus-2");
    let files =
        RequestFiles::from_paths(&[city.keys.join("device.csr.pem"), other.join("wifi.csr.pem")])
            .unwrap();
    let err = enroll_device(&city.ca, &files, HUB_URL, &out, 30, SystemTime::now()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, TrustError::BadRequest { .. }), "{err:?}");
    assert!(
        message.contains("bus-2/wifi.csr.pem") && message.contains("\"bus-2\""),
        "{message}"
    );

    // Invalid device ids and hub URLs are refused before anything is made.
    let message = request_device(&city.root.path().join("x"), "Bus 1", &hosts(&["bus.local"]))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("\"Bus 1\" is not a valid device id"),
        "{message}"
    );
    let files = requests_in(&city.keys);
    let message = enroll_device(&city.ca, &files, "http://hub", &out, 30, SystemTime::now())
        .unwrap_err()
        .to_string();
    assert!(message.contains("https://"), "{message}");
}

#[test]
fn revoking_lists_every_serial_in_a_signed_crl_and_blocks_enrolment() {
    let city = enrolled_city();
    let requests = requests_in(&city.keys);
    let renewed = city.root.path().join("renewed");
    enroll_device(
        &city.ca,
        &requests,
        HUB_URL,
        &renewed,
        30,
        SystemTime::now(),
    )
    .unwrap();
    let first = load_bundle(&city.bundle, &city.keys, SystemTime::now()).unwrap();
    let second = load_bundle(&renewed, &city.keys, SystemTime::now()).unwrap();

    let device: DeviceId = "bus-1".parse().unwrap();
    let revocation = revoke_device(&city.ca, &device, SystemTime::now()).unwrap();
    assert_eq!(
        revocation.serials.len(),
        4,
        "two enrolments, two certificates each"
    );
    assert_eq!(revocation.newly_listed, revocation.serials);
    assert_eq!(revocation.crl_number, 2);

    let ca = first.ca_certificate().clone();
    let crl = load_crl(&city.ca.join("revoked.crl.pem"), &ca).unwrap();
    assert_eq!(crl.number, 2);
    let listed: Vec<&Serial> = crl.revoked.iter().map(|revoked| &revoked.serial).collect();
    for serial in &revocation.serials {
        assert!(listed.contains(&serial), "{serial} not on the CRL");
    }
    for bundle in [&first, &second] {
        let err = bundle.check_not_revoked(&crl).unwrap_err();
        assert!(matches!(err, BundleError::Revoked { .. }), "{err:?}");
        assert!(err.to_string().contains("device.pem"), "{err}");
        assert!(err.to_string().contains("revoked by the city on"), "{err}");
    }
    // The issued list says so too.
    let issued = fs::read_to_string(city.ca.join("issued.toml")).unwrap();
    assert!(issued.contains("revoked_at"), "{issued}");

    // Revoking again changes nothing.
    let again = revoke_device(&city.ca, &device, SystemTime::now()).unwrap();
    assert!(again.newly_listed.is_empty());
    assert_eq!(again.crl_number, 2);

    // A revoked device is not enrolled again.
    let out = city.root.path().join("again");
    let err = enroll_device(&city.ca, &requests, HUB_URL, &out, 30, SystemTime::now()).unwrap_err();
    assert!(matches!(err, TrustError::DeviceRevoked { .. }), "{err:?}");
    assert!(
        err.to_string().contains("\"bus-1\" has been revoked"),
        "{err}"
    );

    // Another bus is not affected; an unknown device cannot be revoked.
    let other = city.root.path().join("bus-2");
    let bundle_2 = city.root.path().join("bundle-2");
    enroll_device(
        &city.ca,
        &request(&other, "bus-2"),
        HUB_URL,
        &bundle_2,
        30,
        SystemTime::now(),
    )
    .unwrap();
    let bus_2 = load_bundle(&bundle_2, &other, SystemTime::now()).unwrap();
    bus_2.check_not_revoked(&crl).unwrap();
    let unknown: DeviceId = "bus-404".parse().unwrap();
    let err = revoke_device(&city.ca, &unknown, SystemTime::now()).unwrap_err();
    assert!(matches!(err, TrustError::UnknownDevice { .. }), "{err:?}");
}

#[test]
fn a_crl_from_another_ca_or_altered_is_refused() {
    let city = enrolled_city();
    let gent = city.root.path().join("gent");
    new_ca(&gent, "City of Gent");
    let ca = CertificateDer::from(certificate_der(&city.ca.join("ca.pem")));
    let err = load_crl(&gent.join("revoked.crl.pem"), &ca).unwrap_err();
    assert!(matches!(err, BundleError::CrlSignature { .. }), "{err:?}");
    assert!(
        err.to_string().contains("gent/revoked.crl.pem")
            && err.to_string().contains("City of Gent"),
        "{err}"
    );

    let path = city.ca.join("revoked.crl.pem");
    let mut der = certificate_der(&path);
    let last = der.len() - 1;
    der[last] ^= 0x01;
    fs::write(&path, pem::encode(&pem::Pem::new("X509 CRL", der))).unwrap();
    let err = load_crl(&path, &ca).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::CrlSignature { .. } | BundleError::NotCrl { .. }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("revoked.crl.pem"), "{err}");
}

#[test]
fn nothing_existing_is_overwritten() {
    let city = enrolled_city();
    let ca_key = fs::read(city.ca.join("ca.key")).unwrap();
    let err = init_ca(
        &city.ca,
        "City of Kortrijk",
        &hosts(&["hub"]),
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(
        matches!(err, TrustError::File(FileError::Exists { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("ca.key: already exists"), "{err}");
    assert_eq!(fs::read(city.ca.join("ca.key")).unwrap(), ca_key);

    let device_key = fs::read(city.keys.join("device.key")).unwrap();
    let err = request_device(&city.keys, "bus-1", &hosts(&["bus.local"])).unwrap_err();
    assert!(
        err.to_string().contains("device.key: already exists"),
        "{err}"
    );
    assert_eq!(fs::read(city.keys.join("device.key")).unwrap(), device_key);

    let requests = requests_in(&city.keys);
    let err = enroll_device(
        &city.ca,
        &requests,
        HUB_URL,
        &city.bundle,
        30,
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("bundle.toml: already exists"),
        "{err}"
    );

    // Only one of the CA's files exists: still nothing is written.
    let partial = city.root.path().join("partial");
    fs::create_dir(&partial).unwrap();
    fs::write(partial.join("revoked.crl.pem"), "keep").unwrap();
    let err = init_ca(
        &partial,
        "City of Kortrijk",
        &hosts(&["hub"]),
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("revoked.crl.pem: already exists"),
        "{err}"
    );
    assert!(!partial.join("ca.key").exists());
}

#[test]
fn certificates_do_not_outlive_the_ca() {
    let city = enrolled_city();
    let requests = requests_in(&city.keys);
    let out = city.root.path().join("long");
    let err = enroll_device(
        &city.ca,
        &requests,
        HUB_URL,
        &out,
        20 * 365,
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(matches!(err, TrustError::OutlivesCa { .. }), "{err:?}");
    assert!(err.to_string().contains("would outlive the CA"), "{err}");
}
