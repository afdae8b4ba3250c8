//! Tests of the catalogue: the embedded file, and every kind of error with its file:line:column.

use expect_test::{Expect, expect};

use super::*;

/// A small valid catalogue with two documents; the error tests break it in one place each.
const VALID: &str = r#"schema = 1
version = "test.1"

[[document]]
code = "birth-extract"
family = "civil-status"
source = "dabs"
automatic = true
automatic_requires = "card-read"
fee_cents = 0
document_language = "requester-choice"
languages = ["nl", "fr", "de"]
purpose_required = false
physical = false
who = [
  { relation = "self", delivery = "automatic" },
  { relation = "partner", delivery = "clerk" },
]

[document.names]
nl = "Uittreksel uit de geboorteakte"
fr = "Extrait d'acte de naissance"
de = "Auszug aus der Geburtsurkunde"
en = "Birth certificate extract"

[document.descriptions]
nl = "Geboorte."
fr = "Naissance."
de = "Geburt."
en = "Birth."

[[document]]
code = "certified-copy"
family = "counter"
source = "counter"
automatic = false
fee_cents = 100
validity_days = 30
document_language = "municipality"
languages = ["nl"]
purpose_required = false
physical = true
who = [{ relation = "self", delivery = "automatic" }]

[document.names]
nl = "Eensluidend verklaard afschrift"
fr = "Copie certifiée conforme"
de = "Beglaubigte Abschrift"
en = "Certified true copy"

[document.descriptions]
nl = "Kopie."
fr = "Copie."
de = "Kopie."
en = "Copy."
"#;

/// `VALID` with `from` replaced by `to` (which must occur exactly once).
fn broken(from: &str, to: &str) -> String {
    assert_eq!(
        VALID.matches(from).count(),
        1,
        "`{from}` must occur once in VALID"
    );
    VALID.replacen(from, to, 1)
}

fn check_error(text: &str, expected: Expect) {
    match Catalogue::parse("catalogue.toml", text) {
        Ok(_) => panic!("the catalogue was accepted"),
        Err(error) => expected.assert_eq(&error.to_string()),
    }
}

#[test]
fn the_embedded_catalogue_is_complete() {
    let catalogue = Catalogue::embedded();
    assert_eq!(catalogue.version(), "2026.11.1");
    assert!(
        catalogue.types().len() >= 28,
        "only {} document types",
        catalogue.types().len()
    );
    for document in catalogue.types() {
        for &language in Language::ALL {
            assert!(
                !document.names.get(language).is_empty(),
                "{} {language} name",
                document.code
            );
            assert!(
                !document.descriptions.get(language).is_empty(),
                "{} {language} description",
                document.code
            );
        }
        assert_eq!(
            catalogue.get(&document.code).map(|found| &found.code),
            Some(&document.code)
        );
    }
    for family in Family::ALL {
        assert!(
            catalogue
                .types()
                .iter()
                .any(|document| document.family == *family),
            "no {family} document"
        );
    }
    let codes: Vec<&str> = catalogue
        .types()
        .iter()
        .map(|document| document.code.as_str())
        .collect();
    expect![[r#"
        birth-extract
        birth-copy
        marriage-extract
        marriage-copy
        death-extract
        death-copy
        divorce-extract
        recognition-extract
        belgian-nationality-extract
        adoption-extract
        name-change-extract
        registered-sex-change-extract
        birth-multilingual
        marriage-multilingual
        death-multilingual
        household-composition
        main-residence
        residence-history-municipality
        address-history
        residence-for-marriage
        life-certificate
        belgian-nationality-certificate
        legal-cohabitation
        register-extract
        burial-wishes
        criminal-record-595
        criminal-record-596.1
        criminal-record-596.2
        criminal-record-593
        certified-copy
        signature-legalisation
        parental-travel-consent
    "#]]
    .assert_eq(&(codes.join("\n") + "\n"));
}

#[test]
fn the_embedded_catalogue_follows_the_domain_rules() {
    let catalogue = Catalogue::embedded();
    let get = |code: &str| catalogue.get(&code.parse().unwrap()).unwrap();

    for document in catalogue.types() {
        if document.family == Family::CriminalRecord {
            assert_eq!(document.validity_days, Some(90), "{}", document.code);
            assert!(document.purpose_required, "{}", document.code);
            assert_eq!(
                document.document_language,
                DocumentLanguageRule::Municipality
            );
            assert_eq!(document.automatic_requires, AuthStrength::CardPin);
            let relations: Vec<Relation> = document.who.iter().map(|rule| rule.relation).collect();
            assert_eq!(
                relations,
                [Relation::Myself, Relation::ProxyHolder],
                "{}",
                document.code
            );
        } else {
            assert!(!document.purpose_required, "{}", document.code);
        }
        if document.family == Family::Counter {
            assert!(
                document.physical && !document.automatic,
                "{}",
                document.code
            );
        }
        // Only the eID and the register prove a relation; everyone else is checked by a clerk.
        for rule in &document.who {
            let provable = matches!(
                rule.relation,
                Relation::Myself | Relation::ParentOfMinor | Relation::Partner
            );
            assert!(
                provable || rule.delivery == Delivery::Clerk,
                "{} {}",
                document.code,
                rule.relation
            );
        }
    }
    let sex_change = get("registered-sex-change-extract");
    assert!(!sex_change.automatic);
    assert!(sex_change.rule_for(Relation::Partner).is_none());
    assert!(sex_change.rule_for(Relation::Anyone).is_none());
    assert!(get("birth-extract").automatic);
    assert_eq!(
        get("birth-copy").document_language,
        DocumentLanguageRule::Act
    );
    assert_eq!(
        get("criminal-record-596.1").code.as_str(),
        "criminal-record-596.1"
    );
}

#[test]
fn a_document_type_serializes_for_the_json_api() {
    let catalogue = Catalogue::embedded();
    let document = catalogue
        .get(&"criminal-record-595".parse().unwrap())
        .unwrap();
    expect![[r#"
        {
          "code": "criminal-record-595",
          "family": "criminal-record",
          "names": {
            "nl": "Uittreksel uit het strafregister (model 595)",
            "fr": "Extrait de casier judiciaire (modèle 595)",
            "de": "Auszug aus dem Strafregister (Muster 595)",
            "en": "Criminal record extract (model 595)"
          },
          "descriptions": {
            "nl": "Het gewone uittreksel, voor alle activiteiten zonder wettelijke voorwaarden.",
            "fr": "L'extrait ordinaire, pour toute activité sans conditions légales d'accès.",
            "de": "Der gewöhnliche Auszug, für alle Tätigkeiten ohne gesetzliche Zugangsbedingungen.",
            "en": "The standard extract, for any activity without legal entry conditions."
          },
          "source": "criminal-register",
          "who": [
            {
              "relation": "self",
              "delivery": "automatic"
            },
            {
              "relation": "proxy-holder",
              "delivery": "clerk"
            }
          ],
          "automatic": true,
          "automatic_requires": "card-pin",
          "fee_cents": 0,
          "validity_days": 90,
          "document_language": "municipality",
          "languages": [
            "nl",
            "fr",
            "de"
          ],
          "purpose_required": true,
          "physical": false
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(document).unwrap());
    let whole = serde_json::to_value(&catalogue).unwrap();
    assert_eq!(whole["schema"], 1);
    assert_eq!(whole["version"], "2026.11.1");
    assert_eq!(
        whole["documents"].as_array().unwrap().len(),
        catalogue.types().len()
    );
}

#[test]
fn the_small_catalogue_parses_into_the_expected_types() {
    let catalogue = Catalogue::parse("catalogue.toml", VALID).unwrap();
    assert_eq!(catalogue.version(), "test.1");
    let [birth, copy] = catalogue.types() else {
        panic!("two documents expected")
    };
    assert_eq!(
        birth.names.get(Language::De),
        "Auszug aus der Geburtsurkunde"
    );
    assert_eq!(birth.automatic_requires, AuthStrength::CardRead);
    assert_eq!(birth.validity_days, None);
    assert_eq!(birth.languages, [Language::Nl, Language::Fr, Language::De]);
    assert_eq!(
        birth.who,
        [
            RequesterRule {
                relation: Relation::Myself,
                delivery: Delivery::Automatic
            },
            RequesterRule {
                relation: Relation::Partner,
                delivery: Delivery::Clerk
            },
        ]
    );
    assert_eq!(
        copy.automatic_requires,
        AuthStrength::CardPin,
        "the safe default when never automatic"
    );
    assert_eq!(copy.validity_days, Some(30));
    assert_eq!(copy.fee_cents, 100);
    assert!(copy.physical);
    assert!(catalogue.get(&"death-extract".parse().unwrap()).is_none());
}

#[test]
fn toml_syntax_errors_point_at_the_line() {
    check_error(
        &broken("fee_cents = 100", "fee_cents = = 100"),
        expect![[r#"catalogue.toml:37:13: invalid string; expected `"`, `'`"#]],
    );
    check_error(
        &broken(
            "[document.descriptions]\nnl = \"Kopie.\"",
            "[document.descriptions\nnl = \"Kopie.\"",
        ),
        expect!["catalogue.toml:51:23: invalid table header; expected `.`, `]`"],
    );
}

#[test]
fn shape_errors_point_at_the_key() {
    check_error(
        &broken("fee_cents = 100", "fee_cents = 100\nfees = 3"),
        expect![
            "catalogue.toml:38:1: unknown field `fees`, expected one of `code`, `family`, `source`, `names`, `descriptions`, `who`, `automatic`, `automatic_requires`, `fee_cents`, `validity_days`, `document_language`, `languages`, `purpose_required`, `physical`"
        ],
    );
    check_error(
        &broken("fee_cents = 100", "fee_cents = \"free\""),
        expect![[r#"catalogue.toml:37:13: invalid type: string "free", expected u32"#]],
    );
    check_error(
        &broken("fee_cents = 100", ""),
        expect!["catalogue.toml:32:1: missing field `fee_cents`"],
    );
}

#[test]
fn schema_and_version_errors() {
    check_error(
        &broken("schema = 1\n", ""),
        expect!["catalogue.toml:1:1: the catalogue has no `schema` number"],
    );
    check_error(
        &broken("schema = 1\n", "schema = 2\n"),
        expect!["catalogue.toml:1:10: schema 2 is not supported (this busloket reads schema 1)"],
    );
    check_error(
        &broken("version = \"test.1\"", "version = \" \""),
        expect!["catalogue.toml:2:11: the catalogue `version` is empty"],
    );
    check_error(
        "schema = 1\nversion = \"empty\"\n",
        expect!["catalogue.toml:1:1: the catalogue lists no [[document]]"],
    );
}

#[test]
fn code_errors() {
    check_error(
        &broken("code = \"certified-copy\"", "code = \"Certified Copy\""),
        expect![
            "catalogue.toml:33:8: `Certified Copy` is not a document code (lowercase letters, digits, `-` and `.`, at most 64)"
        ],
    );
    check_error(
        &broken("code = \"certified-copy\"", "code = \"birth-extract\""),
        expect!["catalogue.toml:33:8: document `birth-extract` is listed twice (first on line 5)"],
    );
}

#[test]
fn missing_texts_point_at_their_table() {
    check_error(
        &broken("fr = \"Copie certifiée conforme\"\n", ""),
        expect!["catalogue.toml:45:1: document `certified-copy` has no French name"],
    );
    check_error(
        &broken("de = \"Geburt.\"", "de = \"  \""),
        expect!["catalogue.toml:26:1: document `birth-extract` has no German description"],
    );
    check_error(
        &broken(
            "[document.names]\nnl = \"Eensluidend verklaard afschrift\"\nfr = \"Copie certifiée conforme\"\nde = \"Beglaubigte Abschrift\"\nen = \"Certified true copy\"\n",
            "",
        ),
        expect!["catalogue.toml:32:1: document `certified-copy` has no Dutch name"],
    );
}

#[test]
fn unknown_words_point_at_the_value() {
    check_error(
        &broken(
            "{ relation = \"partner\", delivery = \"clerk\" }",
            "{ relation = \"neighbour\", delivery = \"clerk\" }",
        ),
        expect!["catalogue.toml:17:16: document `birth-extract`: unknown relation `neighbour`"],
    );
    check_error(
        &broken(
            "{ relation = \"partner\", delivery = \"clerk\" }",
            "{ relation = \"partner\", delivery = \"post\" }",
        ),
        expect!["catalogue.toml:17:38: document `birth-extract`: unknown delivery `post`"],
    );
    check_error(
        &broken("family = \"counter\"", "family = \"counters\""),
        expect!["catalogue.toml:34:10: document `certified-copy`: unknown family `counters`"],
    );
    check_error(
        &broken("source = \"dabs\"", "source = \"dabs2\""),
        expect!["catalogue.toml:7:10: document `birth-extract`: unknown source `dabs2`"],
    );
    check_error(
        &broken(
            "document_language = \"municipality\"",
            "document_language = \"local\"",
        ),
        expect![
            "catalogue.toml:39:21: document `certified-copy`: unknown document language rule `local`"
        ],
    );
    check_error(
        &broken(
            "languages = [\"nl\", \"fr\", \"de\"]",
            "languages = [\"nl\", \"fy\"]",
        ),
        expect!["catalogue.toml:12:20: document `birth-extract`: unknown language `fy`"],
    );
    check_error(
        &broken(
            "automatic_requires = \"card-read\"",
            "automatic_requires = \"itsme\"",
        ),
        expect![
            "catalogue.toml:9:22: document `birth-extract`: unknown authentication strength `itsme`"
        ],
    );
}

#[test]
fn who_errors() {
    check_error(
        &broken(
            "who = [{ relation = \"self\", delivery = \"automatic\" }]",
            "who = []",
        ),
        expect![
            "catalogue.toml:43:7: document `certified-copy` has an empty `who`: nobody may request it"
        ],
    );
    check_error(
        &broken(
            "{ relation = \"partner\", delivery = \"clerk\" }",
            "{ relation = \"self\", delivery = \"clerk\" }",
        ),
        expect!["catalogue.toml:17:16: document `birth-extract` lists relation `self` twice"],
    );
    check_error(
        &broken(
            "who = [{ relation = \"self\", delivery = \"automatic\" }]",
            "who = [{ relation = \"self\", delivery = \"clerk\" }]",
        ),
        expect![
            "catalogue.toml:43:40: document `certified-copy`: `self` is proven by the eID and never needs a clerk; set `automatic = false` on the document instead"
        ],
    );
}

#[test]
fn automatic_delivery_errors() {
    check_error(
        &broken(
            "{ relation = \"self\", delivery = \"automatic\" },",
            "{ relation = \"direct-relative\", delivery = \"clerk\" },",
        ),
        expect![
            "catalogue.toml:8:13: document `birth-extract` is `automatic` but no relation has `delivery = \"automatic\"`"
        ],
    );
    check_error(
        &broken("automatic_requires = \"card-read\"\n", ""),
        expect![
            "catalogue.toml:8:13: document `birth-extract` is `automatic` but has no `automatic_requires`"
        ],
    );
    check_error(
        &broken(
            "automatic_requires = \"card-read\"",
            "automatic_requires = \"declared\"",
        ),
        expect![
            "catalogue.toml:9:22: document `birth-extract`: automatic delivery needs at least `card-read`, not `declared`"
        ],
    );
    check_error(
        &broken(
            "automatic = false",
            "automatic = true\nautomatic_requires = \"card-pin\"",
        ),
        expect![
            "catalogue.toml:36:13: document `certified-copy` is `physical` and so cannot be `automatic`"
        ],
    );
}

#[test]
fn language_and_validity_errors() {
    check_error(
        &broken("languages = [\"nl\"]", "languages = []"),
        expect!["catalogue.toml:40:13: document `certified-copy` has no `languages`"],
    );
    check_error(
        &broken(
            "languages = [\"nl\", \"fr\", \"de\"]",
            "languages = [\"nl\", \"fr\", \"nl\"]",
        ),
        expect!["catalogue.toml:12:26: document `birth-extract` lists language `nl` twice"],
    );
    check_error(
        &broken("validity_days = 30", "validity_days = 0"),
        expect![
            "catalogue.toml:38:17: document `certified-copy` has `validity_days = 0`; leave it out when the document does not expire"
        ],
    );
}

#[test]
fn errors_carry_their_parts() {
    let error = Catalogue::parse(
        "city.toml",
        &broken("validity_days = 30", "validity_days = 0"),
    )
    .unwrap_err();
    let CatalogueError::Invalid {
        file,
        line,
        column,
        problem,
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!((file.as_str(), *line, *column), ("city.toml", 38, 17));
    assert_eq!(
        problem,
        &Problem::ZeroValidity {
            code: "certified-copy".into()
        }
    );
    assert_eq!(error.line(), Some(38));
    assert_eq!(error.problem(), Some(problem));
}

#[test]
fn columns_count_characters_not_bytes() {
    let text = "schema = 1\nversion = \"été\"\n[[document]]\ncode = \"x\"\nfamily = \"é\"\n";
    let file = SourceFile {
        name: "t.toml",
        text,
    };
    let offset = text.find("\"é\"").unwrap() + 1;
    assert_eq!(file.line_column(offset), (5, 11));
    assert_eq!(
        file.line_column(offset + 1),
        (5, 11),
        "inside a character: its start"
    );
    assert_eq!(
        file.line_column(text.len() + 10),
        (6, 1),
        "past the end: the end"
    );
}

#[test]
fn load_file_reads_a_file_and_names_it_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, VALID).unwrap();
    assert_eq!(Catalogue::load_file(&good).unwrap().types().len(), 2);

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, broken("validity_days = 30", "validity_days = 0")).unwrap();
    let error = Catalogue::load_file(&bad).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}:38:17: ", bad.display())),
        "{error}"
    );

    let missing = dir.path().join("missing.toml");
    let error = Catalogue::load_file(&missing).unwrap_err();
    assert!(
        matches!(&error, CatalogueError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    );
    assert_eq!(
        error.to_string(),
        format!("{}: cannot read the catalogue", missing.display())
    );
}

#[test]
fn the_embedded_text_is_what_embedded_parses() {
    let again = Catalogue::parse("catalogue.toml", Catalogue::embedded_text()).unwrap();
    assert_eq!(again.types().len(), Catalogue::embedded().types().len());
}
