//! What the card computes for VERIFY and PSO: PIN blocks, the algorithm references of MSE SET
//! per applet, and the signatures over caller-supplied digests.

use crate::keys::TestKey;
use crate::profile::Profile;

/// Decodes a VERIFY PIN block: `2L` (L = number of digits, 4 to 12), the digits as BCD, `F`
/// nibbles up to 8 bytes. `None` if it is not one.
pub(crate) fn decode_pin_block(block: &[u8]) -> Option<String> {
    let (&control, rest) = block.split_first()?;
    let length = usize::from(control & 0x0F);
    if control >> 4 != 0x2 || !(4..=12).contains(&length) {
        return None;
    }
    let nibbles: Vec<u8> = rest
        .iter()
        .flat_map(|byte| [byte >> 4, byte & 0x0F])
        .collect();
    let (digits, padding) = nibbles.split_at(length);
    if digits.iter().any(|&digit| digit > 9) || padding.iter().any(|&nibble| nibble != 0xF) {
        return None;
    }
    Some(
        digits
            .iter()
            .map(|digit| char::from(b'0' + digit))
            .collect(),
    )
}

/// The digest length PSO expects for an MSE SET algorithm reference, or `None` if the
/// profile does not support it. Applet 1.7 (RSA): 01 = caller's DigestInfo (any length up to
/// 245), 02 SHA-1, 04 MD5, 08 SHA-256. Applet 1.8 (ECDSA): 01 SHA-256, 02 SHA-384, 04
/// SHA-512, 08/10/20 SHA3-256/384/512, 40 raw (24 to 64 bytes).
pub(crate) fn digest_length(profile: Profile, algorithm: u8) -> Option<Option<usize>> {
    match (profile, algorithm) {
        (Profile::Applet17, 0x01) | (Profile::Applet18, 0x40) => Some(None),
        (Profile::Applet17, 0x02) => Some(Some(20)),
        (Profile::Applet17, 0x04) => Some(Some(16)),
        (Profile::Applet17, 0x08) | (Profile::Applet18, 0x01 | 0x08) => Some(Some(32)),
        (Profile::Applet18, 0x02 | 0x10) => Some(Some(48)),
        (Profile::Applet18, 0x04 | 0x20) => Some(Some(64)),
        _ => None,
    }
}

/// DigestInfo prefixes (DER of AlgorithmIdentifier and OCTET STRING header) for the RSA
/// algorithms where the card adds the prefix itself.
const SHA1_DIGEST_INFO: [u8; 15] = [
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2B, 0x0E, 0x03, 0x02, 0x1A, 0x05, 0x00, 0x04, 0x14,
];
const MD5_DIGEST_INFO: [u8; 18] = [
    0x30, 0x20, 0x30, 0x0C, 0x06, 0x08, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x02, 0x05, 0x05, 0x00,
    0x04, 0x10,
];
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// Signs `digest` with `key` for the MSE SET `algorithm`; `None` if its length is wrong.
pub(crate) fn sign_digest(
    profile: Profile,
    key: &TestKey,
    algorithm: u8,
    digest: &[u8],
) -> Option<Vec<u8>> {
    let expected = digest_length(profile, algorithm)?;
    match (profile, expected) {
        (_, Some(length)) if digest.len() != length => None,
        (Profile::Applet17, _) => {
            let prefix: &[u8] = match algorithm {
                0x02 => &SHA1_DIGEST_INFO,
                0x04 => &MD5_DIGEST_INFO,
                0x08 => &SHA256_DIGEST_INFO,
                _ => &[],
            };
            if digest.is_empty() || prefix.len() + digest.len() > 245 {
                return None;
            }
            key.sign_rsa_digest_info(&[prefix, digest].concat())
        }
        (Profile::Applet18, None) if !(24..=64).contains(&digest.len()) => None,
        (Profile::Applet18, _) => key.sign_ec_prehash(digest),
    }
}
