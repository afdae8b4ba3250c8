//! The hub's pages in Dutch (default), French, German and English, from the Fluent catalogues
//! under `sync/hub/locales/<language>/` (the files `catalogues!` names), embedded at compile
//! time. Every catalogue of every language has the same messages as the Dutch one: a message
//! missing in a language is a bug, one only a translation has is left over; [`Translations::new`]
//! refuses both, and a test runs it.

use std::collections::HashMap;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};
use unic_langid::LanguageIdentifier;

/// The languages of the hub's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Nl,
    Fr,
    De,
    En,
}

/// The catalogues of the language `$code`, as (file name, text): every file under
/// `sync/hub/locales/<code>/` the pages take messages from. Every language has every file, so
/// the list is written once, here: a new catalogue is one more name in the first rule.
macro_rules! catalogues {
    ($code:literal) => {
        catalogues!($code, ["hub.ftl", "indicators.ftl"])
    };
    ($code:literal, [$($file:literal),+]) => {
        &[$(($file, include_str!(concat!("../locales/", $code, "/", $file)))),+]
    };
}

impl Lang {
    pub const ALL: &'static [Lang] = &[Lang::Nl, Lang::Fr, Lang::De, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Nl => "nl",
            Lang::Fr => "fr",
            Lang::De => "de",
            Lang::En => "en",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL.iter().copied().find(|lang| lang.code() == code)
    }

    /// The language's name in the language itself, as the language navigation shows it: a
    /// reader looks for their own language by the name they know it by.
    pub fn own_name(self) -> &'static str {
        match self {
            Lang::Nl => "Nederlands",
            Lang::Fr => "Français",
            Lang::De => "Deutsch",
            Lang::En => "English",
        }
    }

    /// The language's catalogues, (file name, text), in the same order for every language.
    fn catalogues(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Lang::Nl => catalogues!("nl"),
            Lang::Fr => catalogues!("fr"),
            Lang::De => catalogues!("de"),
            Lang::En => catalogues!("en"),
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

/// The message ids of a catalogue: the unindented lines that start with an identifier and `=`
/// (Fluent's own parser gives its syntax tree only through `fluent-syntax`, which this crate
/// does not depend on). Comments, terms (`-name`), attributes and continuation lines are not
/// messages.
fn message_ids(source: &str) -> Vec<&str> {
    source
        .lines()
        .filter_map(|line| {
            let (id, _) = line.split_once('=')?;
            let id = id.trim_end();
            let mut chars = id.chars();
            let first = chars.next()?;
            let identifier = first.is_ascii_alphabetic()
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            identifier.then_some(id)
        })
        .collect()
}

/// A translation's catalogue has exactly the messages of the Dutch one.
fn same_messages(lang: Lang, file: &str, source: &str, dutch: &str) -> Result<(), String> {
    let ids = message_ids(source);
    let reference = message_ids(dutch);
    if let Some(missing) = reference.iter().find(|id| !ids.contains(id)) {
        return Err(format!(
            "{}/{file}: the message `{missing}` is missing",
            lang.code()
        ));
    }
    if let Some(extra) = ids.iter().find(|id| !reference.contains(id)) {
        return Err(format!(
            "{}/{file}: the message `{extra}` is not in the Dutch catalogue",
            lang.code()
        ));
    }
    Ok(())
}

impl Translations {
    pub fn new() -> Result<Translations, String> {
        let mut bundles = HashMap::new();
        for &lang in Lang::ALL {
            let id: LanguageIdentifier = lang
                .code()
                .parse()
                .map_err(|_| format!("bad language {}", lang.code()))?;
            let mut bundle = FluentBundle::new_concurrent(vec![id]);
            // No Unicode isolation marks: the text goes into HTML, where `dir` does that work.
            bundle.set_use_isolating(false);
            // `catalogues!` lists the same files in the same order for every language.
            for (&(file, source), &(_, dutch)) in
                lang.catalogues().iter().zip(Lang::Nl.catalogues())
            {
                same_messages(lang, file, source, dutch)?;
                let resource = FluentResource::try_new(source.to_owned())
                    .map_err(|(_, errors)| format!("{}/{file}: {errors:?}", lang.code()))?;
                // A message two catalogues both define is refused here.
                bundle
                    .add_resource(resource)
                    .map_err(|errors| format!("{}/{file}: {errors:?}", lang.code()))?;
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

    pub fn t_args(&self, key: &str, values: &[(&str, String)]) -> String {
        let mut args = FluentArgs::new();
        for (name, value) in values {
            args.set(*name, value.clone());
        }
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
        assert_eq!(translations.tr(Lang::Fr).t("signin-title"), "Se connecter");
        assert_eq!(translations.tr(Lang::De).t("signin-title"), "Anmelden");
        assert_eq!(
            translations
                .tr(Lang::Nl)
                .t_with("quarantine-title", "device", "bus-1"),
            "Quarantaine van bus-1"
        );
    }

    #[test]
    fn a_missing_or_left_over_message_is_refused() {
        let dutch = "title = Titel\nbody = Tekst\n    over twee regels\n# comment = no\n";
        assert_eq!(message_ids(dutch), ["title", "body"]);
        assert_eq!(
            same_messages(
                Lang::Fr,
                "hub.ftl",
                "body = Texte\ntitle =\n    Titre\n",
                dutch
            ),
            Ok(())
        );
        assert_eq!(
            same_messages(Lang::Fr, "hub.ftl", "title = Titre\n", dutch),
            Err("fr/hub.ftl: the message `body` is missing".to_owned())
        );
        assert_eq!(
            same_messages(
                Lang::De,
                "hub.ftl",
                "title = Titel\nbody = Text\nother-language = English\n",
                dutch
            ),
            Err(
                "de/hub.ftl: the message `other-language` is not in the Dutch catalogue".to_owned()
            )
        );
    }

    #[test]
    fn every_language_is_found_by_its_code() {
        for &lang in Lang::ALL {
            assert_eq!(Lang::from_code(lang.code()), Some(lang));
        }
        assert_eq!(Lang::from_code("es"), None);
    }
}
