//! The hub's pages in Dutch (default) and English, from the Fluent catalogues in
//! `sync/hub/locales/<language>/hub.ftl`, embedded at compile time. A key missing in a language
//! is a bug: [`Translations::new`] refuses it, and a test runs it.

use std::collections::HashMap;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};
use unic_langid::LanguageIdentifier;

/// The languages of the hub's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Nl,
    En,
}

impl Lang {
    pub const ALL: &'static [Lang] = &[Lang::Nl, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Nl => "nl",
            Lang::En => "en",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL.iter().copied().find(|lang| lang.code() == code)
    }

    fn source(self) -> &'static str {
        match self {
            Lang::Nl => include_str!("../locales/nl/hub.ftl"),
            Lang::En => include_str!("../locales/en/hub.ftl"),
        }
    }
}

pub struct Translations {
    bundles: HashMap<Lang, FluentBundle<FluentResource>>,
}

impl std::fmt::Debug for Translations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Translations")
    }
}

fn keys(source: &str) -> Vec<&str> {
    source
        .lines()
        .filter_map(|line| line.split_once(" = ").map(|(key, _)| key))
        .filter(|key| !key.starts_with(' ') && !key.starts_with('#'))
        .collect()
}

impl Translations {
    pub fn new() -> Result<Translations, String> {
        let reference = keys(Lang::Nl.source());
        let mut bundles = HashMap::new();
        for &lang in Lang::ALL {
            let id: LanguageIdentifier = lang
                .code()
                .parse()
                .map_err(|_| format!("bad language {}", lang.code()))?;
            let resource = FluentResource::try_new(lang.source().to_owned())
                .map_err(|(_, errors)| format!("{}: {errors:?}", lang.code()))?;
            let mut bundle = FluentBundle::new_concurrent(vec![id]);
            // No Unicode isolation marks: the text goes into HTML, where `dir` does that work.
            bundle.set_use_isolating(false);
            bundle
                .add_resource(resource)
                .map_err(|errors| format!("{}: {errors:?}", lang.code()))?;
            if let Some(missing) = reference.iter().find(|key| !bundle.has_message(key)) {
                return Err(format!(
                    "{}: the message `{missing}` is missing",
                    lang.code()
                ));
            }
            bundles.insert(lang, bundle);
        }
        Ok(Translations { bundles })
    }

    pub fn tr(&self, lang: Lang) -> Tr<'_> {
        Tr {
            lang,
            bundle: &self.bundles[&lang],
        }
    }
}

#[derive(Clone, Copy)]
pub struct Tr<'a> {
    pub lang: Lang,
    bundle: &'a FluentBundle<FluentResource>,
}

impl Tr<'_> {
    pub fn t(&self, key: &str) -> String {
        self.format(key, None)
    }

    pub fn t_with(&self, key: &str, name: &str, value: &str) -> String {
        let mut args = FluentArgs::new();
        args.set(name, value.to_owned());
        self.format(key, Some(&args))
    }

    fn format(&self, key: &str, args: Option<&FluentArgs<'_>>) -> String {
        let Some(pattern) = self.bundle.get_message(key).and_then(|m| m.value()) else {
            return key.to_owned();
        };
        let mut errors = Vec::new();
        self.bundle
            .format_pattern(pattern, args, &mut errors)
            .into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_message() {
        let translations = Translations::new().unwrap();
        assert_eq!(translations.tr(Lang::En).t("sign-out"), "Sign out");
        assert_eq!(
            translations
                .tr(Lang::Nl)
                .t_with("quarantine-title", "device", "bus-1"),
            "Quarantaine van bus-1"
        );
        assert_eq!(keys(Lang::Nl.source()).len(), keys(Lang::En.source()).len());
    }
}
