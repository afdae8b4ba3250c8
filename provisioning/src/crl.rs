//! The city's certificate revocation list (`revoked.crl.pem`): signed by the CA, numbered, and
//! listing the serial of every certificate issued to a revoked device.
//!
//! Invariants:
//! - [`load_crl`] returns a list only after its signature verified with the given CA's key and
//!   its issuer is that CA: a list from anywhere else revokes nothing and un-revokes nothing.
//! - The CRL number grows by one with every signed list. Whoever receives lists (the hub, the
//!   buses) keeps the highest number seen and refuses a lower one, so an old list cannot be
//!   replayed to un-revoke a device.
//! - `next_update` is set a year ahead but the list does not expire for busloket: a list is
//!   re-signed only when a device is revoked, and an old list is still better than none. This
//!   is why consumers must not enforce `next_update` (webpki's default, `ExpirationPolicy::Ignore`).

use std::path::Path;

use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::bundle::{self, BundleError};
use crate::pki::files;
use crate::pki::{self, Serial};

/// How far ahead a freshly signed list says the next one is due.
const NEXT_UPDATE: Duration = Duration::days(365);

/// A verified revocation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationList {
    /// The CRL number; higher is newer.
    pub number: u64,
    pub this_update: OffsetDateTime,
    pub revoked: Vec<RevokedCertificate>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedCertificate {
    pub serial: Serial,
    pub revoked_at: OffsetDateTime,
}

impl RevocationList {
    /// When the certificate with `serial` was revoked, if it was.
    pub fn revoked_at(&self, serial: &Serial) -> Option<OffsetDateTime> {
        self.revoked
            .iter()
            .find(|revoked| &revoked.serial == serial)
            .map(|revoked| revoked.revoked_at)
    }
}

/// Reads `revoked.crl.pem` at `path` and verifies it was signed by `ca` (the city's CA
/// certificate, e.g. [`crate::bundle::DeviceBundle::ca_certificate`]).
pub fn load_crl(path: &Path, ca: &CertificateDer<'_>) -> Result<RevocationList, BundleError> {
    let der = files::read_pem(path, "X509 CRL")?;
    let not_crl = || BundleError::NotCrl {
        path: path.to_owned(),
    };
    let crl = match CertificateRevocationList::from_der(&der) {
        Ok(([], crl)) => crl,
        _ => return Err(not_crl()),
    };
    let ca_certificate = bundle::parse_certificate(Path::new("the CA certificate"), ca)?;
    let issuer = crl.issuer().to_string();
    let signed_by_ca = crl.issuer().as_raw() == ca_certificate.subject().as_raw()
        && crl.verify_signature(ca_certificate.public_key()).is_ok();
    if !signed_by_ca {
        return Err(BundleError::CrlSignature {
            path: path.to_owned(),
            ca_subject: ca_certificate.subject().to_string(),
            issuer,
        });
    }
    let number = crl
        .crl_number()
        .and_then(|number| match number.to_u64_digits().as_slice() {
            [] => Some(0),
            [number] => Some(*number),
            _ => None,
        })
        .ok_or_else(not_crl)?;
    let revoked = crl
        .iter_revoked_certificates()
        .map(|revoked| RevokedCertificate {
            serial: Serial::from_der_bytes(revoked.raw_serial()),
            revoked_at: revoked.revocation_date.to_datetime(),
        })
        .collect();
    Ok(RevocationList {
        number,
        this_update: crl.last_update().to_datetime(),
        revoked,
    })
}

/// A CRL numbered `number` listing `revoked`, signed by the CA, as PEM.
pub(crate) fn sign_crl(
    issuer: &rcgen::Issuer<'_, rcgen::KeyPair>,
    number: u64,
    revoked: &[RevokedCertificate],
    now: OffsetDateTime,
) -> Result<String, rcgen::Error> {
    let params = rcgen::CertificateRevocationListParams {
        this_update: now,
        next_update: now + NEXT_UPDATE,
        crl_number: rcgen::SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|revoked| rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from_slice(revoked.serial.as_bytes()),
                revocation_time: revoked.revoked_at,
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    };
    let crl = params.signed_by(issuer)?;
    Ok(pki::files::pem_text("X509 CRL", crl.der()))
}
