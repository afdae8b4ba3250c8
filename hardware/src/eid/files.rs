//! The identity file (`DF01/4031`) and the address file (`DF01/4033`) of a Belgian eID, parsed
//! from their TLV bytes into typed values, and their conversion into a [`CardIdentity`].
//!
//! Parsing checks the shape of each field (digits where digits belong, dates that exist, UTF-8
//! text, a photo hash of a known length) but not whether the national register signed the file:
//! that is [`super::verify`]. Tags this module does not model (foreigner-card mentions, tags added
//! after 2021) are kept in [`IdentityFile::other_fields`].

use std::fmt;

use chrono::NaiveDate;

use super::tlv::{TlvError, TlvField, parse_tlv};
use crate::card::{Address, CardIdentity, DocumentType, Sex, mask_national_number};

/// Why an identity or address file could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("the {file} file is damaged")]
    Tlv {
        file: &'static str,
        #[source]
        source: TlvError,
    },
    #[error("the {file} file has no {field} (tag 0x{tag:02X})")]
    MissingField {
        file: &'static str,
        field: &'static str,
        tag: u8,
    },
    #[error("the {file} file has an invalid {field} (tag 0x{tag:02X}): {reason}")]
    InvalidField {
        file: &'static str,
        field: &'static str,
        tag: u8,
        reason: String,
    },
}

/// The hash of the photo file that the identity file holds (tag `11`). Its length tells the
/// algorithm: cards of 2014–2021 use SHA-1 or SHA-256, applet 1.8 cards SHA-384.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhotoHash {
    Sha1([u8; 20]),
    Sha256([u8; 32]),
    Sha384([u8; 48]),
}

impl PhotoHash {
    fn from_bytes(bytes: &[u8]) -> Option<PhotoHash> {
        match bytes.len() {
            20 => bytes.try_into().ok().map(PhotoHash::Sha1),
            32 => bytes.try_into().ok().map(PhotoHash::Sha256),
            48 => bytes.try_into().ok().map(PhotoHash::Sha384),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            PhotoHash::Sha1(hash) => hash,
            PhotoHash::Sha256(hash) => hash,
            PhotoHash::Sha384(hash) => hash,
        }
    }
}

/// The identity file, field by field. `Debug` masks the national number.
#[derive(Clone, PartialEq, Eq)]
pub struct IdentityFile {
    /// Tag 01: the card number as printed on the card (12 digits for Belgian eIDs).
    pub card_number: String,
    /// Tag 02: the chip number (16 bytes).
    pub chip_number: Vec<u8>,
    /// Tags 03 and 04.
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
    /// Tag 05.
    pub delivery_municipality: String,
    /// Tag 06: 11 digits.
    pub national_number: String,
    /// Tag 07.
    pub surname: String,
    /// Tag 08: the first two given names.
    pub first_names: String,
    /// Tag 09: the initial of the third given name, often empty.
    pub first_letter_third_name: String,
    /// Tag 0A: in the card's language.
    pub nationality: String,
    /// Tag 0B.
    pub birth_place: String,
    /// Tag 0C: exactly as the card writes it ("12 MAAR 1978", "12.MÄR.1948", " 0 JAN 1950").
    pub birth_date_text: String,
    /// The birth date when [`IdentityFile::birth_date_text`] holds a complete, existing date.
    pub birth_date: Option<NaiveDate>,
    /// Tag 0D.
    pub sex: Sex,
    /// Tag 0E, empty for most people.
    pub noble_condition: String,
    /// Tag 0F.
    pub document_type: DocumentType,
    /// Tag 10: 0 none, 1 white cane, 2 extended minority, 3 both, 4 yellow cane, 5 yellow cane
    /// and extended minority. Absent means 0.
    pub special_status: u8,
    /// Tag 11.
    pub photo_hash: PhotoHash,
    /// Tag 1A: SHA-384 of the chip's basic public key file `4040` (applet 1.8 cards only).
    pub basic_key_hash: Option<[u8; 48]>,
    /// Every other tag (12–19, 1B–1F and later ones), in file order, with its raw value.
    pub other_fields: Vec<(u8, Vec<u8>)>,
}

impl fmt::Debug for IdentityFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let other_tags: Vec<String> = self
            .other_fields
            .iter()
            .map(|(tag, _)| format!("0x{tag:02X}"))
            .collect();
        f.debug_struct("IdentityFile")
            .field("card_number", &self.card_number)
            .field(
                "national_number",
                &mask_national_number(&self.national_number),
            )
            .field("surname", &self.surname)
            .field("first_names", &self.first_names)
            .field("birth_date_text", &self.birth_date_text)
            .field("sex", &self.sex)
            .field("document_type", &self.document_type)
            .field("valid_from", &self.valid_from)
            .field("valid_until", &self.valid_until)
            .field("photo_hash", &self.photo_hash)
            .field("has_basic_key_hash", &self.basic_key_hash.is_some())
            .field("other_tags", &other_tags)
            .finish_non_exhaustive()
    }
}

impl IdentityFile {
    /// The identity as the rest of the bus sees it, with the address and photo files read from
    /// the same card. The result is a real card (`demo: false`).
    pub fn into_card_identity(self, address: Address, photo_jpeg: Vec<u8>) -> CardIdentity {
        let chip_number = self
            .chip_number
            .iter()
            .map(|byte| format!("{byte:02X}"))
            .collect();
        CardIdentity {
            card_number: self.card_number,
            chip_number,
            national_number: self.national_number,
            surname: self.surname,
            first_names: self.first_names,
            first_letter_third_name: self.first_letter_third_name,
            nationality: self.nationality,
            birth_place: self.birth_place,
            birth_date: self.birth_date,
            birth_date_text: self.birth_date_text,
            sex: self.sex,
            document_type: self.document_type,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            address,
            photo_jpeg,
            demo: false,
            evidence: None,
        }
    }
}

const IDENTITY: &str = "identity";
const ADDRESS: &str = "address";

/// The fields of one file, looked up by tag (the first occurrence wins).
struct Fields<'a> {
    file: &'static str,
    fields: Vec<TlvField<'a>>,
}

impl<'a> Fields<'a> {
    fn parse(file: &'static str, bytes: &'a [u8]) -> Result<Fields<'a>, FileError> {
        let fields = parse_tlv(bytes).map_err(|source| FileError::Tlv { file, source })?;
        Ok(Fields { file, fields })
    }

    fn get(&self, tag: u8) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .find(|field| field.tag == tag)
            .map(|field| field.value)
    }

    fn invalid(&self, field: &'static str, tag: u8, reason: impl Into<String>) -> FileError {
        FileError::InvalidField {
            file: self.file,
            field,
            tag,
            reason: reason.into(),
        }
    }

    fn required(&self, field: &'static str, tag: u8) -> Result<&'a [u8], FileError> {
        self.get(tag).ok_or(FileError::MissingField {
            file: self.file,
            field,
            tag,
        })
    }

    /// UTF-8 text; an absent field is empty text.
    fn text(&self, field: &'static str, tag: u8) -> Result<String, FileError> {
        let bytes = self.get(tag).unwrap_or_default();
        String::from_utf8(bytes.to_vec())
            .map_err(|error| self.invalid(field, tag, error.to_string()))
    }

    fn required_text(&self, field: &'static str, tag: u8) -> Result<String, FileError> {
        self.required(field, tag)?;
        self.text(field, tag)
    }

    /// A `DD.MM.YYYY` date.
    fn date(&self, field: &'static str, tag: u8) -> Result<NaiveDate, FileError> {
        let text = self.required_text(field, tag)?;
        parse_numeric_date(&text).ok_or_else(|| self.invalid(field, tag, "not a DD.MM.YYYY date"))
    }
}

fn parse_numeric_date(text: &str) -> Option<NaiveDate> {
    let mut parts = text.trim().split('.');
    let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || year.len() != 4 {
        return None;
    }
    NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, day.parse().ok()?)
}

/// Parses the identity file `DF01/4031` as read from the card.
pub fn parse_identity(bytes: &[u8]) -> Result<IdentityFile, FileError> {
    let fields = Fields::parse(IDENTITY, bytes)?;

    let card_number = fields.required_text("card number", 0x01)?;
    let chip_number = fields.required("chip number", 0x02)?.to_vec();
    let valid_from = fields.date("validity start", 0x03)?;
    let valid_until = fields.date("validity end", 0x04)?;

    let national_number = fields.required_text("national number", 0x06)?;
    if national_number.len() != 11 || !national_number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(fields.invalid("national number", 0x06, "not 11 digits"));
    }

    let birth_date_text = fields.required_text("birth date", 0x0C)?;
    let birth_date = parse_birth_date(&birth_date_text);

    let sex = match fields.required("sex", 0x0D)? {
        b"M" => Sex::M,
        b"F" | b"V" | b"W" => Sex::F,
        b"X" => Sex::X,
        _ => return Err(fields.invalid("sex", 0x0D, "not M, F, V, W or X")),
    };

    let document_type = decimal(&fields, "document type", 0x0F)?
        .ok_or(FileError::MissingField {
            file: IDENTITY,
            field: "document type",
            tag: 0x0F,
        })
        .map(DocumentType::from)?;
    let special_status = decimal(&fields, "special status", 0x10)?.unwrap_or(0);

    let photo_hash = PhotoHash::from_bytes(fields.required("photo hash", 0x11)?)
        .ok_or_else(|| fields.invalid("photo hash", 0x11, "not 20, 32 or 48 bytes long"))?;
    let basic_key_hash = match fields.get(0x1A) {
        None => None,
        Some(bytes) => Some(
            bytes
                .try_into()
                .map_err(|_| fields.invalid("chip key hash", 0x1A, "not 48 bytes long"))?,
        ),
    };

    const MODELLED: &[u8] = &[
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E,
        0x0F, 0x10, 0x11, 0x1A,
    ];
    let other_fields = fields
        .fields
        .iter()
        .filter(|field| !MODELLED.contains(&field.tag))
        .map(|field| (field.tag, field.value.to_vec()))
        .collect();

    Ok(IdentityFile {
        card_number,
        chip_number,
        valid_from,
        valid_until,
        delivery_municipality: fields.text("delivering municipality", 0x05)?,
        national_number,
        surname: fields.required_text("surname", 0x07)?,
        first_names: fields.text("first names", 0x08)?,
        first_letter_third_name: fields.text("third name initial", 0x09)?,
        nationality: fields.text("nationality", 0x0A)?,
        birth_place: fields.text("birth place", 0x0B)?,
        birth_date_text,
        birth_date,
        sex,
        noble_condition: fields.text("noble condition", 0x0E)?,
        document_type,
        special_status,
        photo_hash,
        basic_key_hash,
        other_fields,
    })
}

/// A small decimal number written in ASCII ("1", "06", "35"), absent → `None`.
fn decimal(fields: &Fields<'_>, field: &'static str, tag: u8) -> Result<Option<u8>, FileError> {
    let Some(bytes) = fields.get(tag) else {
        return Ok(None);
    };
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.trim().parse::<u8>().ok())
        .map(Some)
        .ok_or_else(|| fields.invalid(field, tag, "not a decimal number"))
}

/// Parses the address file `DF01/4033` (zero padding after the fields is ignored).
pub fn parse_address(bytes: &[u8]) -> Result<Address, FileError> {
    let fields = Fields::parse(ADDRESS, bytes)?;
    Ok(Address {
        street_and_number: fields.required_text("street and number", 0x01)?,
        zip: fields.required_text("postal code", 0x02)?,
        municipality: fields.required_text("municipality", 0x03)?,
    })
}

/// The month abbreviations of French, Dutch and German cards (one union table: no abbreviation
/// means different months in two languages).
const MONTHS: &[(&str, u32)] = &[
    ("JAN", 1),
    ("FEV", 2),
    ("FEB", 2),
    ("MARS", 3),
    ("MAAR", 3),
    ("MÄR", 3),
    ("MAR", 3),
    ("AVR", 4),
    ("APR", 4),
    ("MAI", 5),
    ("MEI", 5),
    ("JUIN", 6),
    ("JUN", 6),
    ("JUIL", 7),
    ("JUL", 7),
    ("AOUT", 8),
    ("AUG", 8),
    ("SEPT", 9),
    ("SEP", 9),
    ("OCT", 10),
    ("OKT", 10),
    ("NOV", 11),
    ("DEC", 12),
    ("DEZ", 12),
];

/// Reads a birth date written `DD MMM YYYY` (French and Dutch cards) or `DD.MMM.YYYY` (German
/// cards). A blank or zero day or month (unknown birth dates) gives `None`, as does anything
/// that is not a real date.
pub fn parse_birth_date(text: &str) -> Option<NaiveDate> {
    let parts: Vec<&str> = text
        .split([' ', '.'])
        .filter(|part| !part.is_empty())
        .collect();
    let [day, month, year] = parts.as_slice() else {
        return None;
    };
    if year.len() != 4 || day.len() > 2 {
        return None;
    }
    let month_upper = month.to_uppercase();
    let month = MONTHS
        .iter()
        .find(|(name, _)| *name == month_upper)
        .map(|(_, number)| *number)?;
    NaiveDate::from_ymd_opt(year.parse().ok()?, month, day.parse().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(year, month, day)
    }

    #[test]
    fn birth_dates_in_every_card_language() {
        assert_eq!(parse_birth_date("12 MAAR 1978"), date(1978, 3, 12));
        assert_eq!(parse_birth_date("05 NOV 1972"), date(1972, 11, 5));
        assert_eq!(parse_birth_date("12.MÄR.1948"), date(1948, 3, 12));
        assert_eq!(parse_birth_date("01 AOUT 2001"), date(2001, 8, 1));
        assert_eq!(parse_birth_date("31 DEZ 1999"), date(1999, 12, 31));
        assert_eq!(parse_birth_date("29 FEV 2000"), date(2000, 2, 29));
        assert_eq!(parse_birth_date("7 juil 1990"), date(1990, 7, 7));
    }

    #[test]
    fn unknown_or_impossible_birth_dates_are_none() {
        for text in [
            "    JAN 1950",
            "   .   .1950",
            "01      1950",
            "00 JAN 1950",
            "31 FEB 1950",
            "12 XYZ 1950",
            "1950",
            "",
            "12 JAN 50",
            "123 JAN 1950",
        ] {
            assert_eq!(parse_birth_date(text), None, "{text:?}");
        }
    }

    #[test]
    fn numeric_dates() {
        assert_eq!(parse_numeric_date("01.02.2024"), date(2024, 2, 1));
        assert_eq!(parse_numeric_date("31.02.2024"), None);
        assert_eq!(parse_numeric_date("01.02.24"), None);
        assert_eq!(parse_numeric_date("01.02.2024.1"), None);
    }
}
