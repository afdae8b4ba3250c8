//! The document catalogue: the acts and attests a citizen can request at the bus, who may request
//! them, and whether they may be delivered without a clerk.
//!
//! The catalogue is data, not code: a versioned TOML file (`sync/catalogue/catalogue.toml` is the
//! default, embedded in the binary) that the hub distributes to the buses. [`Catalogue::parse`]
//! checks it completely — TOML syntax, shape, and the rules that tie the keys together — and every
//! error names the file, the line and the column, so that whoever edits the file finds the mistake.
//!
//! This module does no IO except [`Catalogue::load_file`], and reads no clock. The decision for one
//! request lives in [`crate::eligibility`].

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use toml::Spanned;

use crate::terms::{AuthStrength, DocumentCode, Language, Relation, UnknownTerm, string_enum};

/// The catalogue schema this busloket reads. A file with another `schema` is refused whole.
pub const SCHEMA: i64 = 1;

const EMBEDDED_NAME: &str = "catalogue.toml";
const EMBEDDED_TEXT: &str = include_str!("../catalogue/catalogue.toml");

/// A parsed and validated catalogue: the document types in file order.
#[derive(Debug, Clone, Serialize)]
pub struct Catalogue {
    schema: i64,
    version: String,
    documents: Vec<DocumentType>,
}

/// One kind of document the bus can deliver.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentType {
    pub code: DocumentCode,
    pub family: Family,
    pub names: Localized,
    pub descriptions: Localized,
    pub source: AuthenticSource,
    /// The relations that may request the document, in file order, each relation at most once.
    pub who: Vec<RequesterRule>,
    /// Whether the document may be delivered without a clerk at all.
    pub automatic: bool,
    /// The weakest authentication for automatic delivery. For documents that are never automatic
    /// this is [`AuthStrength::CardPin`] and is not used.
    pub automatic_requires: AuthStrength,
    pub fee_cents: u32,
    /// How long the document is valid, where the law sets a term.
    pub validity_days: Option<u32>,
    pub document_language: DocumentLanguageRule,
    /// The languages the document can be issued in (see [`DocumentLanguageRule`]).
    pub languages: Vec<Language>,
    /// The requester must state the purpose, which is printed on the document.
    pub purpose_required: bool,
    /// The requester must be present in person (an original to see, a signature to witness).
    pub physical: bool,
}

/// A text in each of the four languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Localized {
    pub nl: String,
    pub fr: String,
    pub de: String,
    pub en: String,
}

/// Who may request a document, and whether that relation can be established without a clerk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RequesterRule {
    pub relation: Relation,
    pub delivery: Delivery,
}

impl Localized {
    pub fn get(&self, language: Language) -> &str {
        match language {
            Language::Nl => &self.nl,
            Language::Fr => &self.fr,
            Language::De => &self.de,
            Language::En => &self.en,
        }
    }
}

impl DocumentType {
    /// The rule for `relation`, when that relation may request this document.
    pub fn rule_for(&self, relation: Relation) -> Option<&RequesterRule> {
        self.who.iter().find(|rule| rule.relation == relation)
    }
}

impl Catalogue {
    /// Parses and validates a catalogue file. `source_name` is the file name used in errors.
    pub fn parse(source_name: &str, text: &str) -> Result<Catalogue, CatalogueError> {
        let file = SourceFile {
            name: source_name,
            text,
        };
        // The schema is read first, alone, so that a file of another schema is refused for that
        // reason rather than for whichever key of the new shape this version does not know.
        let header: RawHeader = toml::from_str(text).map_err(|error| file.toml_error(&error))?;
        let Some(schema) = header.schema else {
            return Err(file.error(0..0, Problem::MissingSchema));
        };
        if *schema.get_ref() != SCHEMA {
            return Err(file.error(
                schema.span(),
                Problem::UnsupportedSchema {
                    found: *schema.get_ref(),
                },
            ));
        }
        let raw: RawCatalogue = toml::from_str(text).map_err(|error| file.toml_error(&error))?;
        if raw.version.get_ref().trim().is_empty() {
            return Err(file.error(raw.version.span(), Problem::EmptyVersion));
        }
        if raw.document.is_empty() {
            return Err(file.error(0..0, Problem::NoDocuments));
        }
        let mut documents = Vec::with_capacity(raw.document.len());
        let mut first_seen: HashMap<DocumentCode, usize> = HashMap::new();
        for entry in raw.document {
            let code_span = entry.get_ref().code.span();
            let document = validate_document(&file, entry)?;
            if let Some(&first_start) = first_seen.get(&document.code) {
                let first_line = file.line_column(first_start).0;
                return Err(file.error(
                    code_span,
                    Problem::DuplicateCode {
                        code: document.code.to_string(),
                        first_line,
                    },
                ));
            }
            first_seen.insert(document.code.clone(), code_span.start);
            documents.push(document);
        }
        Ok(Catalogue {
            schema: SCHEMA,
            version: raw.version.into_inner().trim().to_owned(),
            documents,
        })
    }

    /// The catalogue shipped with busloket (the embedded file); parsing it is covered by a test.
    pub fn embedded() -> Catalogue {
        Catalogue::parse(EMBEDDED_NAME, EMBEDDED_TEXT)
            .unwrap_or_else(|error| panic!("the embedded catalogue is invalid: {error}"))
    }

    /// The text of the embedded catalogue, for the hub to distribute as it is.
    pub fn embedded_text() -> &'static str {
        EMBEDDED_TEXT
    }

    /// Reads and parses a catalogue file; errors name the file by its path.
    pub fn load_file(path: &Path) -> Result<Catalogue, CatalogueError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CatalogueError::Read {
            file: name.clone(),
            source,
        })?;
        Catalogue::parse(&name, &text)
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn get(&self, code: &DocumentCode) -> Option<&DocumentType> {
        self.documents
            .iter()
            .find(|document| &document.code == code)
    }

    /// The document types in file order.
    pub fn types(&self) -> &[DocumentType] {
        &self.documents
    }
}

/// A catalogue that could not be read or is not valid.
#[derive(Debug, Error)]
pub enum CatalogueError {
    #[error("{file}: cannot read the catalogue")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid catalogue; `line` and `column` are 1-based.
    #[error("{file}:{line}:{column}: {problem}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        problem: Problem,
    },
}

impl CatalogueError {
    /// What is wrong, when the file was read but is not valid.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            CatalogueError::Read { .. } => None,
            CatalogueError::Invalid { problem, .. } => Some(problem),
        }
    }

    /// The 1-based line of the problem, when the file was read.
    pub fn line(&self) -> Option<usize> {
        match self {
            CatalogueError::Read { .. } => None,
            CatalogueError::Invalid { line, .. } => Some(*line),
        }
    }
}

/// Why a catalogue file is not valid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Problem {
    /// TOML syntax, a missing or unknown key, or a value of the wrong type (toml's own message).
    #[error("{0}")]
    Toml(String),
    #[error("the catalogue has no `schema` number")]
    MissingSchema,
    #[error("schema {found} is not supported (this busloket reads schema {SCHEMA})")]
    UnsupportedSchema { found: i64 },
    #[error("the catalogue `version` is empty")]
    EmptyVersion,
    #[error("the catalogue lists no [[document]]")]
    NoDocuments,
    #[error(
        "`{value}` is not a document code (lowercase letters, digits, `-` and `.`, at most 64)"
    )]
    InvalidCode { value: String },
    #[error("document `{code}` is listed twice (first on line {first_line})")]
    DuplicateCode { code: String, first_line: usize },
    #[error("document `{code}` has no {} name", LanguageName(*.language))]
    MissingName { code: String, language: Language },
    #[error("document `{code}` has no {} description", LanguageName(*.language))]
    MissingDescription { code: String, language: Language },
    #[error("document `{code}`: unknown {what} `{value}`")]
    UnknownTerm {
        code: String,
        what: &'static str,
        value: String,
    },
    #[error("document `{code}` has an empty `who`: nobody may request it")]
    EmptyWho { code: String },
    #[error("document `{code}` lists relation `{relation}` twice")]
    DuplicateRelation { code: String, relation: Relation },
    #[error(
        "document `{code}`: `self` is proven by the eID and never needs a clerk; \
         set `automatic = false` on the document instead"
    )]
    SelfNeedsClerk { code: String },
    #[error("document `{code}` is `automatic` but no relation has `delivery = \"automatic\"`")]
    AutomaticWithoutAutomaticRule { code: String },
    #[error("document `{code}` is `automatic` but has no `automatic_requires`")]
    MissingAutomaticRequires { code: String },
    #[error("document `{code}`: automatic delivery needs at least `card-read`, not `{found}`")]
    AutomaticRequiresTooWeak { code: String, found: AuthStrength },
    #[error("document `{code}` is `physical` and so cannot be `automatic`")]
    PhysicalAutomatic { code: String },
    #[error("document `{code}` has no `languages`")]
    NoLanguages { code: String },
    #[error("document `{code}` lists language `{language}` twice")]
    DuplicateLanguage { code: String, language: Language },
    #[error(
        "document `{code}` has `validity_days = 0`; leave it out when the document does not expire"
    )]
    ZeroValidity { code: String },
}

/// The English name of a language, for error messages read by central IT.
struct LanguageName(Language);

impl fmt::Display for LanguageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Language::Nl => "Dutch",
            Language::Fr => "French",
            Language::De => "German",
            Language::En => "English",
        })
    }
}

string_enum!(
    /// The rule family a document belongs to (the kiosk groups documents by family).
    Family, "family", {
        /// Acts of the civil-status database: birth, marriage, death…
        CivilStatus = "civil-status",
        /// Attests from the population register: household, residence…
        Population = "population",
        /// Extracts from the central criminal register.
        CriminalRecord = "criminal-record",
        /// Products made at the counter: certified copies, legalisations…
        Counter = "counter",
    }
);

string_enum!(
    /// The authentic source the hub issues the document from.
    AuthenticSource, "source", {
        /// Databank Akten Burgerlijke Stand, the civil-status database.
        Dabs = "dabs",
        NationalRegister = "national-register",
        /// The Central Criminal Register.
        CriminalRegister = "criminal-register",
        /// No register: the clerk at the counter makes the document.
        Counter = "counter",
    }
);

string_enum!(
    /// Whether a relation can be established without a clerk.
    Delivery, "delivery", {
        /// The eID or the national register proves the relation.
        Automatic = "automatic",
        /// A clerk checks a proof (legitimate interest, proxy, court appointment…).
        Clerk = "clerk",
    }
);

string_enum!(
    /// Which language a document is issued in.
    DocumentLanguageRule, "document language rule", {
        /// The municipality's language, by the language law (one of `languages`).
        Municipality = "municipality",
        /// The requester chooses one of `languages`.
        RequesterChoice = "requester-choice",
        /// A full copy reproduces the act in the language it was drawn up in.
        Act = "act",
        /// One document carrying all of `languages`.
        Multilingual = "multilingual",
    }
);

/// The file being parsed, to turn byte offsets into lines and columns.
struct SourceFile<'a> {
    name: &'a str,
    text: &'a str,
}

impl SourceFile<'_> {
    /// The 1-based line and column (in characters) of a byte offset.
    fn line_column(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        let line = before.matches('\n').count() + 1;
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    fn error(&self, span: Range<usize>, problem: Problem) -> CatalogueError {
        let (line, column) = self.line_column(span.start);
        CatalogueError::Invalid {
            file: self.name.to_owned(),
            line,
            column,
            problem,
        }
    }

    fn toml_error(&self, error: &toml::de::Error) -> CatalogueError {
        // toml's message may run over several lines ("expected …"); one line reads better in logs.
        let message = error
            .message()
            .trim()
            .lines()
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("; ");
        self.error(error.span().unwrap_or(0..0), Problem::Toml(message))
    }
}

#[derive(Deserialize)]
struct RawHeader {
    schema: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    #[serde(rename = "schema")]
    _schema: i64,
    version: Spanned<String>,
    #[serde(default)]
    document: Vec<Spanned<RawDocument>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocument {
    code: Spanned<String>,
    family: Spanned<String>,
    source: Spanned<String>,
    names: Option<Spanned<RawLocalized>>,
    descriptions: Option<Spanned<RawLocalized>>,
    who: Spanned<Vec<RawRule>>,
    automatic: Spanned<bool>,
    automatic_requires: Option<Spanned<String>>,
    fee_cents: u32,
    validity_days: Option<Spanned<u32>>,
    document_language: Spanned<String>,
    languages: Spanned<Vec<Spanned<String>>>,
    purpose_required: bool,
    physical: Spanned<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocalized {
    nl: Option<String>,
    fr: Option<String>,
    de: Option<String>,
    en: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    relation: Spanned<String>,
    delivery: Spanned<String>,
}

/// Checks one `[[document]]` entry and builds its [`DocumentType`].
fn validate_document(
    file: &SourceFile<'_>,
    entry: Spanned<RawDocument>,
) -> Result<DocumentType, CatalogueError> {
    let table_span = entry.span();
    let raw = entry.into_inner();

    let code: DocumentCode = raw.code.get_ref().parse().map_err(|_| {
        file.error(
            raw.code.span(),
            Problem::InvalidCode {
                value: raw.code.get_ref().clone(),
            },
        )
    })?;
    let code_text = code.to_string();

    let family: Family = parse_term(file, &code_text, &raw.family)?;
    let source: AuthenticSource = parse_term(file, &code_text, &raw.source)?;
    let document_language: DocumentLanguageRule =
        parse_term(file, &code_text, &raw.document_language)?;

    let names = localized(
        file,
        &code_text,
        table_span.clone(),
        raw.names,
        |code, language| Problem::MissingName { code, language },
    )?;
    let descriptions = localized(
        file,
        &code_text,
        table_span.clone(),
        raw.descriptions,
        |code, language| Problem::MissingDescription { code, language },
    )?;

    let who_span = raw.who.span();
    let mut who: Vec<RequesterRule> = Vec::with_capacity(raw.who.get_ref().len());
    for rule in raw.who.into_inner() {
        let relation: Relation = parse_term(file, &code_text, &rule.relation)?;
        let delivery: Delivery = parse_term(file, &code_text, &rule.delivery)?;
        if who.iter().any(|earlier| earlier.relation == relation) {
            return Err(file.error(
                rule.relation.span(),
                Problem::DuplicateRelation {
                    code: code_text.clone(),
                    relation,
                },
            ));
        }
        if relation == Relation::Myself && delivery == Delivery::Clerk {
            return Err(file.error(
                rule.delivery.span(),
                Problem::SelfNeedsClerk {
                    code: code_text.clone(),
                },
            ));
        }
        who.push(RequesterRule { relation, delivery });
    }
    if who.is_empty() {
        return Err(file.error(
            who_span,
            Problem::EmptyWho {
                code: code_text.clone(),
            },
        ));
    }

    let automatic = *raw.automatic.get_ref();
    let physical = *raw.physical.get_ref();
    if physical && automatic {
        return Err(file.error(
            raw.automatic.span(),
            Problem::PhysicalAutomatic {
                code: code_text.clone(),
            },
        ));
    }
    let automatic_requires = match (&raw.automatic_requires, automatic) {
        (Some(value), _) => {
            let strength: AuthStrength = parse_term(file, &code_text, value)?;
            if strength < AuthStrength::CardRead {
                return Err(file.error(
                    value.span(),
                    Problem::AutomaticRequiresTooWeak {
                        code: code_text.clone(),
                        found: strength,
                    },
                ));
            }
            strength
        }
        (None, true) => {
            return Err(file.error(
                raw.automatic.span(),
                Problem::MissingAutomaticRequires {
                    code: code_text.clone(),
                },
            ));
        }
        // Never used for a document that is never automatic; the strongest is the safe value.
        (None, false) => AuthStrength::CardPin,
    };
    if automatic && !who.iter().any(|rule| rule.delivery == Delivery::Automatic) {
        return Err(file.error(
            raw.automatic.span(),
            Problem::AutomaticWithoutAutomaticRule {
                code: code_text.clone(),
            },
        ));
    }

    let languages_span = raw.languages.span();
    let mut languages: Vec<Language> = Vec::with_capacity(raw.languages.get_ref().len());
    for value in raw.languages.get_ref() {
        let language: Language = parse_term(file, &code_text, value)?;
        if languages.contains(&language) {
            return Err(file.error(
                value.span(),
                Problem::DuplicateLanguage {
                    code: code_text.clone(),
                    language,
                },
            ));
        }
        languages.push(language);
    }
    if languages.is_empty() {
        return Err(file.error(
            languages_span,
            Problem::NoLanguages {
                code: code_text.clone(),
            },
        ));
    }

    let validity_days = match raw.validity_days {
        Some(days) if *days.get_ref() == 0 => {
            return Err(file.error(days.span(), Problem::ZeroValidity { code: code_text }));
        }
        Some(days) => Some(days.into_inner()),
        None => None,
    };

    Ok(DocumentType {
        code,
        family,
        names,
        descriptions,
        source,
        who,
        automatic,
        automatic_requires,
        fee_cents: raw.fee_cents,
        validity_days,
        document_language,
        languages,
        purpose_required: raw.purpose_required,
        physical,
    })
}

/// Parses one word of the catalogue (a relation, a family…), reporting an unknown one at its place.
fn parse_term<T: FromStr<Err = UnknownTerm>>(
    file: &SourceFile<'_>,
    code: &str,
    value: &Spanned<String>,
) -> Result<T, CatalogueError> {
    value.get_ref().parse().map_err(|unknown: UnknownTerm| {
        file.error(
            value.span(),
            Problem::UnknownTerm {
                code: code.to_owned(),
                what: unknown.what,
                value: unknown.value,
            },
        )
    })
}

/// Checks that a names or descriptions table has a non-empty text in every language. A missing
/// table is reported at the document's `[[document]]` line, a missing text at the table's line.
fn localized(
    file: &SourceFile<'_>,
    code: &str,
    document_span: Range<usize>,
    raw: Option<Spanned<RawLocalized>>,
    missing: impl Fn(String, Language) -> Problem,
) -> Result<Localized, CatalogueError> {
    let Some(raw) = raw else {
        return Err(file.error(document_span, missing(code.to_owned(), Language::Nl)));
    };
    let span = raw.span();
    let raw = raw.into_inner();
    let text = |value: Option<String>, language: Language| {
        value
            .map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())
            .ok_or_else(|| file.error(span.clone(), missing(code.to_owned(), language)))
    };
    Ok(Localized {
        nl: text(raw.nl, Language::Nl)?,
        fr: text(raw.fr, Language::Fr)?,
        de: text(raw.de, Language::De)?,
        en: text(raw.en, Language::En)?,
    })
}

#[cfg(test)]
mod tests;
