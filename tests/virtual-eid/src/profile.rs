//! The two card generations a virtual card can emulate, and what tells them apart on the wire.

use std::fmt;

/// The card generation a virtual card emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Belpic applet 1.7: RSA-2048 keys everywhere; RRN signatures PKCS#1 v1.5 with SHA-256,
    /// photo hash SHA-256.
    Applet17,
    /// Belpic applet 1.8: ECDSA P-384 keys everywhere; RRN signatures ECDSA-SHA384 (DER, zero
    /// padded), photo hash SHA-384, a basic key (4040) for INTERNAL AUTHENTICATE.
    Applet18,
}

impl Profile {
    /// The applet version byte of GET CARD DATA (byte 21).
    pub fn applet_version(self) -> u8 {
        match self {
            Profile::Applet17 => 0x17,
            Profile::Applet18 => 0x18,
        }
    }

    /// The answer to reset a real card of this generation gives.
    pub fn atr(self) -> &'static [u8] {
        match self {
            Profile::Applet17 => &[
                0x3B, 0x98, 0x13, 0x40, 0x0A, 0xA5, 0x03, 0x01, 0x01, 0x01, 0xAD, 0x13, 0x11,
            ],
            Profile::Applet18 => &[
                0x3B, 0x7F, 0x96, 0x00, 0x00, 0x80, 0x31, 0x80, 0x65, 0xB0, 0x85, 0x04, 0x01, 0x20,
                0x12, 0x0F, 0xFF, 0x82, 0x90, 0x00,
            ],
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Applet17 => "1.7",
            Profile::Applet18 => "1.8",
        })
    }
}

/// A profile name other than "1.7" or "1.8".
#[derive(Debug, thiserror::Error)]
#[error("unknown card profile {given:?} (expected \"1.7\" or \"1.8\")")]
pub struct UnknownProfile {
    pub given: String,
}

impl std::str::FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(text: &str) -> Result<Profile, UnknownProfile> {
        match text {
            "1.7" => Ok(Profile::Applet17),
            "1.8" => Ok(Profile::Applet18),
            other => Err(UnknownProfile {
                given: other.to_owned(),
            }),
        }
    }
}
