//! The Belgian national number (rijksregisternummer / numéro de registre national) and the BIS
//! number: parsed from any common writing, checked with the mod-97 rule, masked when displayed.
//!
//! Birth date and sex are derived for display only: decisions use the register's data, never
//! what the number happens to encode (BIS numbers, exhausted day counters and unknown dates make
//! the number an unreliable source).

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A valid national number or BIS number, kept as its 11 digits.
///
/// `Display` masks it (`85.07.31-xxx.xx`); use [`NationalNumber::formatted`] where the full number
/// must be shown to someone entitled to see it, and [`NationalNumber::digits`] for storage.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NationalNumber([u8; 11]);

/// Why a text is not a national number.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NationalNumberError {
    #[error("a national number has 11 digits, this one has {0}")]
    Length(usize),
    #[error("a national number holds only digits, dots, dashes and spaces (found `{0}`)")]
    Character(char),
    #[error("the check digits do not match (a typing error?)")]
    Checksum,
    #[error("month {0} is not possible in a national or BIS number")]
    Month(u8),
    #[error("day {0} is not possible in a national number")]
    Day(u8),
}

/// What the number says about the person's sex (for display only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SexHint {
    Male,
    Female,
    /// BIS numbers with month + 20 do not encode the sex.
    Unknown,
}

/// Which register the number belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberKind {
    /// A national-register number.
    National,
    /// A BIS number (Crossroads Bank for Social Security), month + 20 or + 40.
    Bis,
}

impl NationalNumber {
    /// Parses `85.07.31-003.28`, `85073100328`, `850731 003 28` and similar writings.
    pub fn parse(text: &str) -> Result<NationalNumber, NationalNumberError> {
        let mut digits = [0u8; 11];
        let mut count = 0usize;
        for c in text.trim().chars() {
            match c {
                '0'..='9' => {
                    if count < 11 {
                        digits[count] = c as u8;
                    }
                    count += 1;
                }
                '.' | '-' | ' ' | '/' => {}
                other => return Err(NationalNumberError::Character(other)),
            }
        }
        if count != 11 {
            return Err(NationalNumberError::Length(count));
        }
        let number = NationalNumber(digits);
        number.century()?;
        let month = number.raw_month();
        if !matches!(month, 0..=12 | 20..=32 | 40..=52) {
            return Err(NationalNumberError::Month(month));
        }
        let day = number.two_digits(4);
        if day > 31 {
            return Err(NationalNumberError::Day(day));
        }
        Ok(number)
    }

    /// The 11 digits, for storage and for comparing.
    pub fn digits(&self) -> &str {
        // The array only ever holds ASCII digits (checked in `parse`).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The full number in the usual writing `YY.MM.DD-SSS.CC`.
    pub fn formatted(&self) -> String {
        let d = self.digits();
        format!(
            "{}.{}.{}-{}.{}",
            &d[0..2],
            &d[2..4],
            &d[4..6],
            &d[6..9],
            &d[9..11]
        )
    }

    /// The masked writing `YY.MM.DD-xxx.xx`, which `Display` also uses.
    pub fn masked(&self) -> String {
        let d = self.digits();
        format!("{}.{}.{}-xxx.xx", &d[0..2], &d[2..4], &d[4..6])
    }

    pub fn kind(&self) -> NumberKind {
        if self.raw_month() >= 20 {
            NumberKind::Bis
        } else {
            NumberKind::National
        }
    }

    /// The birth date the number encodes, when it encodes a whole one (display only).
    pub fn birth_date_hint(&self) -> Option<NaiveDate> {
        let year = self.century().ok()? + u32::from(self.two_digits(0));
        let month = self.raw_month() % 20;
        let day = self.two_digits(4);
        NaiveDate::from_ymd_opt(year as i32, u32::from(month), u32::from(day))
    }

    /// The sex the day counter encodes: odd is male, even is female (display only).
    pub fn sex_hint(&self) -> SexHint {
        if (20..=32).contains(&self.raw_month()) {
            return SexHint::Unknown;
        }
        let counter = u32::from(self.0[6] - b'0') * 100 + u32::from(self.two_digits(7));
        if counter % 2 == 1 {
            SexHint::Male
        } else {
            SexHint::Female
        }
    }

    fn two_digits(&self, at: usize) -> u8 {
        (self.0[at] - b'0') * 10 + (self.0[at + 1] - b'0')
    }

    fn raw_month(&self) -> u8 {
        self.two_digits(2)
    }

    /// 1900 or 2000, decided by which variant of the mod-97 check holds.
    fn century(&self) -> Result<u32, NationalNumberError> {
        let base: u64 = self.digits()[..9].parse().unwrap_or(0);
        let check = u64::from(self.two_digits(9));
        if 97 - base % 97 == check {
            Ok(1900)
        } else if 97 - (2_000_000_000 + base) % 97 == check {
            Ok(2000)
        } else {
            Err(NationalNumberError::Checksum)
        }
    }
}

impl fmt::Display for NationalNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for NationalNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NationalNumber({})", self.masked())
    }
}

impl FromStr for NationalNumber {
    type Err = NationalNumberError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        NationalNumber::parse(text)
    }
}

impl TryFrom<String> for NationalNumber {
    type Error = NationalNumberError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        NationalNumber::parse(&text)
    }
}

impl From<NationalNumber> for String {
    fn from(number: NationalNumber) -> String {
        number.digits().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    #[test]
    fn parses_common_writings() {
        for text in [
            "85.07.31-003.28",
            "85073100328",
            " 850731 003 28 ",
            "85-07-31-003-28",
        ] {
            let number = NationalNumber::parse(text).unwrap();
            assert_eq!(number.digits(), "85073100328", "{text}");
        }
    }

    #[test]
    fn century_follows_the_check_digits() {
        let old = NationalNumber::parse("85.07.31-003.28").unwrap();
        assert_eq!(old.birth_date_hint(), date(1985, 7, 31));
        assert_eq!(old.sex_hint(), SexHint::Male);
        let young = NationalNumber::parse("01.02.03-045.26").unwrap();
        assert_eq!(young.birth_date_hint(), date(2001, 2, 3));
        assert_eq!(young.kind(), NumberKind::National);
    }

    #[test]
    fn bis_numbers_and_unknown_dates() {
        // 85.27.31-003.xx: month + 20, sex unknown.
        let base = 852_731_003u64;
        let bis = format!("{base}{:02}", 97 - base % 97);
        let number = NationalNumber::parse(&bis).unwrap();
        assert_eq!(number.kind(), NumberKind::Bis);
        assert_eq!(number.sex_hint(), SexHint::Unknown);
        assert_eq!(number.birth_date_hint(), date(1985, 7, 31));
        // Unknown month and day: valid number, no birth date.
        let base = 850_000_004u64;
        let unknown = format!("{base}{:02}", 97 - base % 97);
        let number = NationalNumber::parse(&unknown).unwrap();
        assert_eq!(number.birth_date_hint(), None);
        assert_eq!(number.sex_hint(), SexHint::Female);
    }

    #[test]
    fn refuses_bad_numbers_with_the_reason() {
        let cases = [
            ("85.07.31-003.29", NationalNumberError::Checksum),
            ("85.07.31-003.2", NationalNumberError::Length(10)),
            ("85.07.31-003.281", NationalNumberError::Length(12)),
            ("85.07.31/003.2x", NationalNumberError::Character('x')),
            ("", NationalNumberError::Length(0)),
        ];
        for (text, expected) in cases {
            assert_eq!(NationalNumber::parse(text), Err(expected), "{text}");
        }
        let base = 851_331_003u64; // month 13
        let text = format!("{base}{:02}", 97 - base % 97);
        assert_eq!(
            NationalNumber::parse(&text),
            Err(NationalNumberError::Month(13))
        );
    }

    #[test]
    fn displays_masked_and_serialises_digits() {
        let number = NationalNumber::parse("85.07.31-003.28").unwrap();
        assert_eq!(number.to_string(), "85.07.31-xxx.xx");
        assert_eq!(format!("{number:?}"), "NationalNumber(85.07.31-xxx.xx)");
        assert_eq!(number.formatted(), "85.07.31-003.28");
        let json = serde_json::to_string(&number).unwrap();
        assert_eq!(json, "\"85073100328\"");
        assert_eq!(
            serde_json::from_str::<NationalNumber>(&json).unwrap(),
            number
        );
        assert!(serde_json::from_str::<NationalNumber>("\"85073100329\"").is_err());
    }
}
