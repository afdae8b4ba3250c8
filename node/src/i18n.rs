//! User-facing text in Dutch (default), French, German and English, from the Fluent catalogues
//! under `node/locales/<language>/`, embedded at compile time.
//!
//! A missing message is a bug: [`Translations::new`] checks that every language has every key of
//! the Dutch catalogue, and a test runs it. At run time a missing key shows the key itself rather
//! than failing the page.

use std::collections::HashMap;

use busloket_sync::terms::Language;
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

/// The catalogue files of one language, in a fixed order.
fn sources(language: Language) -> &'static [&'static str] {
    match language {
        Language::Nl => &[
            include_str!("../locales/nl/pages.ftl"),
            include_str!("../locales/nl/eligibility.ftl"),
        ],
        Language::Fr => &[
            include_str!("../locales/fr/pages.ftl"),
            include_str!("../locales/fr/eligibility.ftl"),
        ],
        Language::De => &[
            include_str!("../locales/de/pages.ftl"),
            include_str!("../locales/de/eligibility.ftl"),
        ],
        Language::En => &[
            include_str!("../locales/en/pages.ftl"),
            include_str!("../locales/en/eligibility.ftl"),
        ],
    }
}

/// All four languages, loaded once and shared.
pub struct Translations {
    bundles: HashMap<Language, FluentBundle<FluentResource>>,
}

impl std::fmt::Debug for Translations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Translations")
    }
}

/// One language's view, handed to the page code.
#[derive(Clone, Copy)]
pub struct Tr<'a> {
    pub language: Language,
    bundle: &'a FluentBundle<FluentResource>,
}

impl Translations {
    /// Loads every catalogue; fails on a syntax error or a key missing in some language.
    pub fn new() -> Result<Translations, String> {
        let mut bundles = HashMap::new();
        for &language in Language::ALL {
            let id: LanguageIdentifier = language
                .as_str()
                .parse()
                .map_err(|err| format!("language {language}: {err:?}"))?;
            let mut bundle = FluentBundle::new_concurrent(vec![id]);
            // Unicode isolation marks around arguments confuse screen readers reading numbers.
            bundle.set_use_isolating(false);
            for source in sources(language) {
                let resource = FluentResource::try_new((*source).to_owned())
                    .map_err(|(_, errors)| format!("{language}: {errors:?}"))?;
                bundle
                    .add_resource(resource)
                    .map_err(|errors| format!("{language}: {errors:?}"))?;
            }
            bundles.insert(language, bundle);
        }
        let translations = Translations { bundles };
        translations.check_complete()?;
        Ok(translations)
    }

    pub fn get(&self, language: Language) -> Tr<'_> {
        Tr {
            language,
            bundle: &self.bundles[&language],
        }
    }

    fn check_complete(&self) -> Result<(), String> {
        let keys = |language: Language| -> Vec<String> {
            sources(language)
                .iter()
                .flat_map(|source| source.lines())
                .filter_map(|line| {
                    let (key, _) = line.split_once(" =")?;
                    let key = key.trim_end();
                    let is_key = !key.is_empty()
                        && key
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                    is_key.then(|| key.to_owned())
                })
                .collect()
        };
        let mut missing = Vec::new();
        for key in keys(Language::Nl) {
            for &language in Language::ALL {
                if !self.bundles[&language].has_message(&key) {
                    missing.push(format!("{language}:{key}"));
                }
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("missing messages: {}", missing.join(", ")))
        }
    }
}

impl Tr<'_> {
    /// The message `key`, or the key itself when it is missing.
    pub fn t(&self, key: &str) -> String {
        self.format(key, None)
    }

    /// The message `key` with named arguments.
    pub fn t_with(&self, key: &str, args: &[(&str, &str)]) -> String {
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            fluent_args.set(*name, FluentValue::from(*value));
        }
        self.format(key, Some(&fluent_args))
    }

    /// The message `key` with one numeric argument `count` (for plurals).
    pub fn t_count(&self, key: &str, count: usize) -> String {
        let mut fluent_args = FluentArgs::new();
        fluent_args.set("count", FluentValue::from(count));
        self.format(key, Some(&fluent_args))
    }

    fn format(&self, key: &str, args: Option<&FluentArgs>) -> String {
        let Some(pattern) = self
            .bundle
            .get_message(key)
            .and_then(|message| message.value())
        else {
            tracing::warn!(key, language = %self.language, "missing translation");
            return key.to_owned();
        };
        let mut errors = Vec::new();
        let text = self.bundle.format_pattern(pattern, args, &mut errors);
        if !errors.is_empty() {
            tracing::warn!(key, ?errors, "translation formatting errors");
        }
        text.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_message() {
        let translations = Translations::new().unwrap();
        assert_eq!(
            translations.get(Language::Fr).t("kiosk-choose-language"),
            "Choisissez votre langue"
        );
        assert_eq!(
            translations.get(Language::Nl).t("no-such-key"),
            "no-such-key"
        );
    }

    #[test]
    fn arguments_are_filled_in_without_isolation_marks() {
        let translations = Translations::new().unwrap();
        let text = translations
            .get(Language::En)
            .t_with("kiosk-done-number", &[("number", "12")]);
        assert_eq!(text, "Your number is 12");
    }
}
