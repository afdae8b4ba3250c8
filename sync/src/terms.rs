//! The small words every part of busloket shares: ids, languages, channels, relations and
//! authentication strengths. Each is parsed once at the boundary and trusted afterwards.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

/// A word that did not parse into one of the terms below.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("unknown {what} `{value}`")]
pub struct UnknownTerm {
    pub what: &'static str,
    pub value: String,
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownTerm;
            fn from_str(value: &str) -> Result<Self, UnknownTerm> {
                match value {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownTerm { what: $what, value: value.to_owned() }),
                }
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// A language of the pages and of the documents. Dutch is the default.
    #[derive(Default)]
    Language, "language", {
        #[default]
        Nl = "nl",
        Fr = "fr",
        De = "de",
        En = "en",
    }
);

string_enum!(
    /// Where a request was made.
    Channel, "channel", {
        /// The citizen on a tablet in the bus.
        BusKiosk = "bus-kiosk",
        /// A bus clerk on the citizen's behalf.
        BusCounter = "bus-counter",
    }
);

string_enum!(
    /// How the requester relates to the person the document is about.
    Relation, "relation", {
        /// The requester asks for themself.
        Myself = "self",
        /// A parent asking for their minor child.
        ParentOfMinor = "parent-of-minor",
        /// Spouse or legal cohabitant.
        Partner = "partner",
        /// Ascendant or descendant in the first degree (parent of an adult, adult child).
        DirectRelative = "direct-relative",
        /// Guardian, administrator (bewindvoerder) or other legal representative.
        LegalRepresentative = "legal-representative",
        /// Holder of a signed proxy from the subject.
        ProxyHolder = "proxy-holder",
        /// Heir of a deceased subject.
        Heir = "heir",
        /// Anyone else (public acts only).
        Anyone = "anyone",
    }
);

string_enum!(
    /// How strongly the requester proved who they are.
    AuthStrength, "authentication strength", {
        /// Identity typed in or told to a clerk, no card read.
        Declared = "declared",
        /// The eID card was read (and its register signature verified).
        CardRead = "card-read",
        /// The eID card was read and its holder entered the PIN.
        CardPin = "card-pin",
    }
);

string_enum!(
    /// How an eID card signed with its authentication key: the digest of the signed statement and
    /// the signature scheme.
    HolderAlgorithm, "holder signature algorithm", {
        /// Applet 1.7: SHA-256, RSA PKCS#1 v1.5.
        RsaPkcs1Sha256 = "rsa-pkcs1-sha256",
        /// Applet 1.8: SHA-384, ECDSA P-384 with the signature as `r‖s`.
        EcdsaP384Sha384 = "ecdsa-p384-sha384",
    }
);

string_enum!(
    /// How the citizen wants to receive the document.
    DeliveryMethod, "delivery method", {
        /// Printed in the bus.
        PrintHere = "print-here",
        /// Sent by e-mail.
        Email = "email",
    }
);

/// The id of a request: a UUIDv7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(Uuid);

impl RequestId {
    /// A new id from the given time in milliseconds since the epoch and random bits.
    pub fn new(unix_millis: u64, random: [u8; 10]) -> RequestId {
        let uuid = uuid::Builder::from_unix_timestamp_millis(unix_millis, &random).into_uuid();
        debug_assert_eq!(uuid.get_version_num(), 7);
        RequestId(uuid)
    }

    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    pub fn from_bytes(bytes: [u8; 16]) -> RequestId {
        RequestId(Uuid::from_bytes(bytes))
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for RequestId {
    type Err = UnknownTerm;
    fn from_str(value: &str) -> Result<Self, UnknownTerm> {
        Uuid::parse_str(value)
            .ok()
            .filter(|uuid| uuid.get_version_num() == 7)
            .map(RequestId)
            .ok_or_else(|| UnknownTerm {
                what: "request id",
                value: value.to_owned(),
            })
    }
}

/// A Belgian postcode: four digits, 1000 to 9999. A requester's, read from the address file of
/// their eID, is all of their address a request keeps: the city's indicators need no more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Postcode(u16);

impl Postcode {
    pub fn number(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Postcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Postcode {
    type Err = UnknownTerm;
    fn from_str(value: &str) -> Result<Self, UnknownTerm> {
        let number = (value.len() == 4 && value.bytes().all(|b| b.is_ascii_digit()))
            .then(|| value.parse::<u16>().ok())
            .flatten()
            .filter(|number| *number >= 1000);
        number.map(Postcode).ok_or_else(|| UnknownTerm {
            what: "postcode",
            value: value.to_owned(),
        })
    }
}

impl TryFrom<String> for Postcode {
    type Error = UnknownTerm;
    fn try_from(value: String) -> Result<Self, UnknownTerm> {
        value.parse()
    }
}

impl From<Postcode> for String {
    fn from(value: Postcode) -> String {
        value.to_string()
    }
}

macro_rules! name_id {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = UnknownTerm;
            fn from_str(value: &str) -> Result<Self, UnknownTerm> {
                let valid = !value.is_empty()
                    && value.len() <= 64
                    && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
                if valid {
                    Ok($name(value.to_owned()))
                } else {
                    Err(UnknownTerm { what: $what, value: value.to_owned() })
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownTerm;
            fn try_from(value: String) -> Result<Self, UnknownTerm> {
                value.parse()
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

name_id!(
    /// The code of a document type in the catalogue, e.g. `birth-extract`: lowercase ASCII
    /// letters, digits, `-` and `.`, at most 64 bytes.
    DocumentCode, "document code"
);
name_id!(
    /// The id of a device (a bus node, a kiosk tablet station, the hub), same alphabet.
    DeviceId, "device id"
);
name_id!(
    /// The id of a stop of the bus, same alphabet.
    StopId, "stop id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_round_trip_through_text() {
        for language in Language::ALL {
            assert_eq!(language.as_str().parse::<Language>(), Ok(*language));
        }
        assert_eq!(
            "xx".parse::<Language>(),
            Err(UnknownTerm {
                what: "language",
                value: "xx".into()
            })
        );
        assert!("Birth Extract".parse::<DocumentCode>().is_err());
        assert_eq!("8500".parse::<Postcode>().map(Postcode::number), Ok(8500));
        for bad in ["0999", "850", "85000", "85a0", " 8500", ""] {
            assert!(bad.parse::<Postcode>().is_err(), "{bad:?}");
        }
        assert_eq!(
            "criminal-record-596.2"
                .parse::<DocumentCode>()
                .unwrap()
                .as_str(),
            "criminal-record-596.2"
        );
    }

    #[test]
    fn request_ids_are_v7_and_sort_by_time() {
        let early = RequestId::new(1_700_000_000_000, [9; 10]);
        let late = RequestId::new(1_700_000_000_001, [0; 10]);
        assert!(early < late);
        assert_eq!(early.to_string().parse::<RequestId>(), Ok(early));
        assert!(
            "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
                .parse::<RequestId>()
                .is_err()
        );
    }
}
