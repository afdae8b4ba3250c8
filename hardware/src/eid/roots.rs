//! The Belgian eID root certificates, built in: the trust anchors a node uses when its
//! configuration names none, and the list that tells a production root from a test root.
//!
//! The certificates are the published ones, kept as PEM files in `hardware/eid-roots/` (its
//! README says where each came from and its fingerprint).

/// The roots, as PEM, in the order of their generation.
const ROOTS_PEM: [&str; 3] = [
    include_str!("../../eid-roots/belgium-root-ca3.pem"),
    include_str!("../../eid-roots/belgium-root-ca4.pem"),
    include_str!("../../eid-roots/belgium-root-ca6.pem"),
];

/// The built-in roots as DER certificates.
pub fn belgian_roots_der() -> Vec<Vec<u8>> {
    ROOTS_PEM
        .iter()
        .map(|text| {
            // The files are part of the build and checked by a test: a failure here is a bug.
            pem::parse(text)
                .map(pem::Pem::into_contents)
                .unwrap_or_default()
        })
        .collect()
}

/// Whether `der` is exactly one of the Belgian eID roots (a test root is not).
pub fn is_belgian_root(der: &[u8]) -> bool {
    belgian_roots_der().iter().any(|root| root == der)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eid::X509Certificate;

    #[test]
    fn the_built_in_roots_are_certificate_authorities() {
        let roots = belgian_roots_der();
        assert_eq!(roots.len(), ROOTS_PEM.len());
        for der in &roots {
            let certificate = X509Certificate::from_der(der).expect("a root parses");
            assert!(certificate.is_authority());
            assert!(
                certificate
                    .subject()
                    .to_string()
                    .contains("Belgium Root CA"),
                "{}",
                certificate.subject()
            );
            assert!(is_belgian_root(der));
        }
        assert!(!is_belgian_root(b"not a certificate"));
    }
}
