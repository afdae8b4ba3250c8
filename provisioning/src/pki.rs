//! What the CA side and the bundle side share: certificate serial numbers, dates as a city IT
//! person reads them, host names for certificates, and the extended key usages.
//!
//! Invariant: serial numbers are 16 random bytes whose first byte is in `0x01..=0x7f`, so their
//! DER encoding is exactly those bytes (positive, no padding) and the serial read back from a
//! certificate or a CRL compares equal byte for byte.

pub mod files;

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngCore;
use rustls_pki_types::{ServerName, UnixTime};
use time::OffsetDateTime;

/// The extended key usage "TLS client authentication" (1.3.6.1.5.5.7.3.2), DER content octets
/// as `webpki::KeyUsage::required` wants them.
pub const EKU_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];
/// The extended key usage "TLS server authentication" (1.3.6.1.5.5.7.3.1).
pub const EKU_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];

/// The URI a device certificate names its device by: `busloket:device:<id>`.
pub const DEVICE_URI_PREFIX: &str = "busloket:device:";

/// A certificate's serial number (see the module invariant).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Serial(Vec<u8>);

impl Serial {
    pub fn random() -> Serial {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        bytes[0] = (bytes[0] & 0x7f).max(1);
        Serial(bytes.to_vec())
    }

    /// The serial as it appears in a certificate or CRL (big-endian content octets).
    pub fn from_der_bytes(bytes: &[u8]) -> Serial {
        Serial(bytes.to_vec())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl FromStr for Serial {
    type Err = hex::FromHexError;
    fn from_str(text: &str) -> Result<Serial, hex::FromHexError> {
        hex::decode(text).map(Serial)
    }
}

/// `now` for rcgen, to the second (certificates carry no fractions).
pub fn offset_date_time(now: SystemTime) -> OffsetDateTime {
    let seconds = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    OffsetDateTime::from_unix_timestamp(i64::try_from(seconds).unwrap_or(i64::MAX))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `now` for webpki.
pub fn unix_time(now: SystemTime) -> UnixTime {
    UnixTime::since_unix_epoch(now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO))
}

/// A date for people: `2027-03-01 14:05 UTC`.
pub fn human_date(when: OffsetDateTime) -> String {
    let utc = when.to_offset(time::UtcOffset::UTC);
    format!("{} {:02}:{:02} UTC", utc.date(), utc.hour(), utc.minute())
}

/// A date from seconds since the epoch, for people.
pub fn human_date_from_unix(seconds: u64) -> String {
    let seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
    OffsetDateTime::from_unix_timestamp(seconds)
        .map(human_date)
        .unwrap_or_else(|_| format!("{seconds} seconds after 1970"))
}

/// A host name or IP address for a certificate's subject alternative names, checked as rustls
/// will check the name a client connects to.
pub fn subject_alt_name(host: &str) -> Option<rcgen::SanType> {
    match ServerName::try_from(host).ok()? {
        ServerName::DnsName(name) => rcgen::string::Ia5String::try_from(name.as_ref())
            .ok()
            .map(rcgen::SanType::DnsName),
        ServerName::IpAddress(address) => {
            Some(rcgen::SanType::IpAddress(std::net::IpAddr::from(address)))
        }
        _ => None,
    }
}
