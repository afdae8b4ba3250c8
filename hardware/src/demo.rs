//! The synthetic demo citizens (embedded from `demo/citizens.toml`) and the placeholder picture
//! the staff console shows for them.
//!
//! Everything here is made up and marked as such (`CardIdentity::demo` is true). It must never
//! hold or derive data of a real person, and real card drivers must not use it.

use std::sync::LazyLock;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::card::{Address, CardIdentity, DocumentType, Sex};

const CITIZENS_TOML: &str = include_str!("../demo/citizens.toml");

/// A synthetic citizen: the card and the family links a register would know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoCitizen {
    pub card: CardIdentity,
    /// The national number of the spouse or legal cohabitant.
    pub partner: Option<String>,
    /// The national numbers of the children, minors and adults alike.
    pub children: Vec<String>,
    /// A label shared by everyone living at one address ("Janssens-Peeters").
    pub household: String,
    /// Their place in the household.
    pub role: DemoRole,
    /// One line for the demo control page: why this citizen is in the set.
    pub note: String,
}

/// A demo citizen's place in the household. `MinorChild` means under 18 on 2026-11-23 (the
/// demo set's reference date); the node decides minority from the birth date itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DemoRole {
    Adult,
    MinorChild,
    AdultChild,
}

/// All demo citizens, in the order of the file: families first.
pub fn demo_citizens() -> Vec<DemoCitizen> {
    static CITIZENS: LazyLock<Vec<DemoCitizen>> = LazyLock::new(|| {
        parse_demo_citizens(CITIZENS_TOML)
            // The file is compiled in and parsed by the crate's tests; failing here is a build bug.
            .expect("the embedded demo/citizens.toml is valid")
    });
    CITIZENS.clone()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    citizen: Vec<RawCitizen>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCitizen {
    household: String,
    role: DemoRole,
    note: String,
    partner: Option<String>,
    #[serde(default)]
    children: Vec<String>,
    language: CardLanguage,
    card_number: String,
    chip_number: String,
    national_number: String,
    surname: String,
    first_names: String,
    first_letter_third_name: String,
    nationality: String,
    birth_place: String,
    birth_date: NaiveDate,
    sex: Sex,
    document_type: u8,
    valid_from: NaiveDate,
    valid_until: NaiveDate,
    address: Address,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum CardLanguage {
    Nl,
    Fr,
    De,
}

fn parse_demo_citizens(text: &str) -> Result<Vec<DemoCitizen>, toml::de::Error> {
    let file: RawFile = toml::from_str(text)?;
    Ok(file
        .citizen
        .into_iter()
        .map(RawCitizen::into_demo_citizen)
        .collect())
}

impl RawCitizen {
    fn into_demo_citizen(self) -> DemoCitizen {
        let card = CardIdentity {
            card_number: self.card_number,
            chip_number: self.chip_number,
            national_number: self.national_number,
            surname: self.surname,
            first_names: self.first_names,
            first_letter_third_name: self.first_letter_third_name,
            nationality: self.nationality,
            birth_place: self.birth_place,
            birth_date: Some(self.birth_date),
            birth_date_text: card_birth_date_text(self.birth_date, self.language),
            sex: self.sex,
            document_type: DocumentType::from(self.document_type),
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            address: self.address,
            photo_jpeg: Vec::new(),
            demo: true,
            evidence: None,
        };
        DemoCitizen {
            card,
            partner: self.partner,
            children: self.children,
            household: self.household,
            role: self.role,
            note: self.note,
        }
    }
}

/// The birth date as cards print it: `DD MMM YYYY` on Dutch and French cards, `DD.MMM.YYYY` on
/// German ones, with each language's month abbreviations.
fn card_birth_date_text(date: NaiveDate, language: CardLanguage) -> String {
    const NL: [&str; 12] = [
        "JAN", "FEB", "MAAR", "APR", "MEI", "JUN", "JUL", "AUG", "SEP", "OKT", "NOV", "DEC",
    ];
    const FR: [&str; 12] = [
        "JAN", "FEV", "MARS", "AVR", "MAI", "JUIN", "JUIL", "AOUT", "SEPT", "OCT", "NOV", "DEC",
    ];
    const DE: [&str; 12] = [
        "JAN", "FEB", "MÄR", "APR", "MAI", "JUN", "JUL", "AUG", "SEP", "OKT", "NOV", "DEZ",
    ];
    let month = date.month0() as usize;
    let (months, separator) = match language {
        CardLanguage::Nl => (NL, ' '),
        CardLanguage::Fr => (FR, ' '),
        CardLanguage::De => (DE, '.'),
    };
    format!(
        "{:02}{separator}{}{separator}{}",
        date.day(),
        months[month],
        date.year()
    )
}

/// A placeholder "photo" for a demo card: an SVG silhouette (150×200, the eID photo's shape)
/// with the person's initials and a DEMO label. Demo cards carry no JPEG (`photo_jpeg` is
/// empty); the staff console shows this picture instead.
pub fn demo_avatar_svg(card: &CardIdentity) -> String {
    const BACKGROUNDS: [&str; 6] = [
        "#1d4e89", "#5b2a86", "#0b6e4f", "#8a3b12", "#2f4858", "#7a1f3d",
    ];
    let colour_index =
        card.national_number.bytes().map(usize::from).sum::<usize>() % BACKGROUNDS.len();
    let background = BACKGROUNDS[colour_index];
    let initials = escape_xml(&initials(card));
    let label = escape_xml(&format!("Demo photo: {}", card.display_name()));
    format!(
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="150" height="200" viewBox="0 0 150 200" role="img" aria-label="{label}">"#,
            r#"<rect width="150" height="200" fill="{background}"/>"#,
            r##"<circle cx="75" cy="78" r="38" fill="#ffffff" fill-opacity="0.25"/>"##,
            r##"<path d="M15 200 C15 140 45 122 75 122 C105 122 135 140 135 200 Z" fill="#ffffff" fill-opacity="0.25"/>"##,
            r##"<text x="75" y="92" text-anchor="middle" font-family="sans-serif" font-size="40" font-weight="bold" fill="#ffffff">{initials}</text>"##,
            r##"<text x="75" y="190" text-anchor="middle" font-family="sans-serif" font-size="16" font-weight="bold" fill="#ffffff" letter-spacing="4">DEMO</text>"##,
            "</svg>"
        ),
        label = label,
        background = background,
        initials = initials,
    )
}

/// The first letter of the first given name and of the surname ("TJ", "HV").
fn initials(card: &CardIdentity) -> String {
    let first = card.first_names.chars().find(|c| c.is_alphabetic());
    let last = card.surname.chars().find(|c| c.is_alphabetic());
    first
        .into_iter()
        .chain(last)
        .flat_map(char::to_uppercase)
        .collect()
}

fn escape_xml(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c => escaped.push(c),
        }
    }
    escaped
}
