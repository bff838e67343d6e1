//! What people read, in Finnish, Swedish or English (Project Fluent).
//!
//! The messages are in `client/locales/{en,fi,sv}/silta.ftl`, compiled into the program. The
//! reader's language is `--lang fi|sv|en` (the `silta` program calls [`set_current`]), else the
//! locale of the environment (`LC_ALL`, `LC_MESSAGES`, `LANG`: `fi_FI.UTF-8` is Finnish, `sv_FI`
//! and `sv_SE` Swedish), else English.
//!
//! [`tr`] never panics: a message missing in the reader's language is taken from English, and one
//! missing in English too is shown as its id (a test makes sure every id the code uses exists in
//! all three files). Interpolated text is made printable on one line first ([`Arg::Text`];
//! [`Arg::Lines`] keeps line feeds), and Fluent's Unicode isolation marks are off: a terminal
//! shows them as stray characters.
//!
//! Enum values have their labels under their protobuf names (`AGE_GROUP_ADULT = Adult`), payload
//! fields under `field-<name>`, languages under `lang-<ISO 639 code>` ([`LANGUAGES`]).

use std::sync::OnceLock;

use fluent_bundle::{FluentArgs, FluentResource, FluentValue, concurrent::FluentBundle};

/// A language the program speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// English (the fallback).
    En,
    /// Finnish.
    Fi,
    /// Swedish.
    Sv,
}

impl Lang {
    /// Every language, English first.
    pub const ALL: [Lang; 3] = [Lang::En, Lang::Fi, Lang::Sv];

    /// The ISO 639-1 code: `en`, `fi`, `sv`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fi => "fi",
            Lang::Sv => "sv",
        }
    }

    /// `fi`, `sv` or `en` (any case); `None` for anything else.
    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "fi" => Some(Lang::Fi),
            "sv" => Some(Lang::Sv),
            _ => None,
        }
    }

    /// A POSIX locale (`fi_FI.UTF-8`, `sv_SE`, `C`): its language if it is one of ours.
    pub fn from_locale(locale: &str) -> Option<Lang> {
        let lang = locale
            .split(['_', '.', '@', '-'])
            .next()
            .unwrap_or_default();
        Lang::parse(lang)
    }

    /// The language of the environment: the first of `LC_ALL`, `LC_MESSAGES`, `LANG` that is set
    /// (and not empty) decides, as POSIX says; English if it names no language of ours.
    pub fn from_env() -> Lang {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// [`Lang::from_env`] with the variables read by `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Lang {
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|k| var(k).filter(|v| !v.is_empty()))
            .next()
            .and_then(|v| Lang::from_locale(&v))
            .unwrap_or(Lang::En)
    }

    fn index(self) -> usize {
        match self {
            Lang::En => 0,
            Lang::Fi => 1,
            Lang::Sv => 2,
        }
    }
}

/// The resource files, as compiled in: (language, text).
pub const RESOURCES: [(Lang, &str); 3] = [
    (Lang::En, include_str!("../locales/en/silta.ftl")),
    (Lang::Fi, include_str!("../locales/fi/silta.ftl")),
    (Lang::Sv, include_str!("../locales/sv/silta.ftl")),
];

static CURRENT: OnceLock<Lang> = OnceLock::new();

/// Sets the reader's language for this process (once; later calls change nothing).
pub fn set_current(lang: Lang) {
    let _ = CURRENT.set(lang);
}

/// The reader's language: the one set with [`set_current`], else the environment's.
pub fn current() -> Lang {
    *CURRENT.get_or_init(Lang::from_env)
}

fn bundles() -> &'static [FluentBundle<FluentResource>; 3] {
    static BUNDLES: OnceLock<[FluentBundle<FluentResource>; 3]> = OnceLock::new();
    BUNDLES.get_or_init(|| {
        RESOURCES.map(|(lang, text)| {
            let id = lang
                .code()
                .parse()
                .unwrap_or_else(|_| unic_langid::LanguageIdentifier::default());
            let mut bundle = FluentBundle::new_concurrent(vec![id]);
            bundle.set_use_isolating(false);
            // A resource with a syntax error still gives every entry that parsed (the tests
            // make sure there are none).
            let resource = FluentResource::try_new(text.to_owned()).unwrap_or_else(|(r, _)| r);
            let _ = bundle.add_resource(resource);
            bundle
        })
    })
}

/// A value put into a message: text (made printable first) or a number (for plurals).
#[derive(Debug, Clone)]
pub enum Arg {
    /// Text on one line (a name, an id, a time, an error's detail): made printable on one line
    /// ([`crate::text::printable_line`]), so a line break in it can never start a new line of
    /// output that seems to come from the program.
    Text(String),
    /// Text that may run over several lines (a note, a body): made printable, line feeds kept
    /// ([`crate::text::printable`]).
    Lines(String),
    /// A number.
    Number(i64),
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Text(s.to_owned())
    }
}
impl From<String> for Arg {
    fn from(s: String) -> Self {
        Arg::Text(s)
    }
}
impl From<&String> for Arg {
    fn from(s: &String) -> Self {
        Arg::Text(s.clone())
    }
}
impl From<usize> for Arg {
    fn from(n: usize) -> Self {
        Arg::Number(i64::try_from(n).unwrap_or(i64::MAX))
    }
}
impl From<u64> for Arg {
    fn from(n: u64) -> Self {
        Arg::Number(i64::try_from(n).unwrap_or(i64::MAX))
    }
}
impl From<i64> for Arg {
    fn from(n: i64) -> Self {
        Arg::Number(n)
    }
}

fn format(lang: Lang, id: &str, args: &[(&str, Arg)]) -> Option<String> {
    let bundle = &bundles()[lang.index()];
    let pattern = bundle.get_message(id)?.value()?;
    let mut fargs = FluentArgs::new();
    for (k, v) in args {
        match v {
            Arg::Text(s) => fargs.set(*k, FluentValue::from(crate::text::printable_line(s))),
            Arg::Lines(s) => fargs.set(*k, FluentValue::from(crate::text::printable(s))),
            Arg::Number(n) => fargs.set(*k, FluentValue::from(*n)),
        }
    }
    let mut errors = Vec::new();
    Some(
        bundle
            .format_pattern(pattern, Some(&fargs), &mut errors)
            .into_owned(),
    )
}

/// Whether the message `id` exists in `lang`'s file.
pub fn has(lang: Lang, id: &str) -> bool {
    bundles()[lang.index()]
        .get_message(id)
        .and_then(|m| m.value())
        .is_some()
}

/// The message `id` in `lang` with `args`; English if `lang` lacks it; the id if English does.
pub fn tr(lang: Lang, id: &str, args: &[(&str, Arg)]) -> String {
    format(lang, id, args)
        .or_else(|| format(Lang::En, id, args))
        .unwrap_or_else(|| id.to_owned())
}

/// [`tr`] in the reader's language ([`current`]).
pub fn t(id: &str, args: &[(&str, Arg)]) -> String {
    tr(current(), id, args)
}

/// The label of an enum value by its protobuf name (`AGE_GROUP_ADULT` -> "Adult"); the name
/// itself if it has none.
pub fn enum_label(lang: Lang, value_name: &str) -> String {
    tr(lang, value_name, &[])
}

/// The label of a value shown by its short name (`urgent`, `referral`, `statutory-information-right`)
/// of the enum whose values start with `prefix` (`URGENCY_`): the short name if there is none.
pub fn short_label(lang: Lang, prefix: &str, short: &str) -> String {
    let id = format!(
        "{prefix}{}",
        short.trim().to_ascii_uppercase().replace('-', "_")
    );
    if short.is_empty() || !has(Lang::En, &id) {
        return crate::text::printable_line(short);
    }
    tr(lang, &id, &[])
}

/// The label of a payload field (`person_name` -> "Name"); the field name if it has none.
pub fn field_label(lang: Lang, field: &str) -> String {
    let id = format!("field-{field}");
    if has(Lang::En, &id) {
        tr(lang, &id, &[])
    } else {
        crate::text::printable_line(field)
    }
}

/// The ISO 639 codes a language field may hold: ISO 639-1 where a language has one, else
/// 639-3 (Dari `prs`, Central Kurdish `ckb`, Northern Kurdish `kmr`, ...). Each has a name in
/// every language (`lang-<code>`). `silta languages` lists them.
pub const LANGUAGES: &[&str] = &[
    "am", "ar", "az", "be", "bg", "bn", "bs", "ckb", "cs", "da", "de", "el", "en", "es", "et",
    "fa", "fi", "fr", "ha", "he", "hi", "hr", "hu", "hy", "id", "ig", "it", "ja", "ka", "kk",
    "kmr", "ko", "ku", "ky", "lt", "lv", "mk", "mn", "ms", "my", "ne", "nl", "no", "pa", "pl",
    "prs", "ps", "pt", "ro", "ru", "se", "sk", "sl", "so", "sq", "sr", "sv", "sw", "ta", "tg",
    "th", "ti", "tk", "tl", "tr", "uk", "ur", "uz", "vi", "wo", "yo", "zh",
];

/// Whether `code` is a language code of [`LANGUAGES`] (lower case, as the forms hold it).
pub fn is_language(code: &str) -> bool {
    LANGUAGES.contains(&code)
}

/// A language's name and code in `lang` ("Dari (prs)"); an unknown code is shown as it is.
pub fn language_name(lang: Lang, code: &str) -> String {
    if is_language(code) {
        format!("{} ({code})", tr(lang, &format!("lang-{code}"), &[]))
    } else {
        crate::text::printable_line(code)
    }
}

/// The fields that hold an ISO 639 language code (or a list of them), in every payload.
pub const LANGUAGE_FIELDS: [&str; 4] = [
    "mother_tongue",
    "other_languages",
    "language",
    "interpreter_language",
];

/// The language fields of `payload` whose code is not one of [`LANGUAGES`]: (field, code).
/// Empty fields are not codes and pass.
pub fn unknown_languages(payload: &silta_proto::pb::payload::Payload) -> Vec<(String, String)> {
    fn walk(v: &serde_json::Value, key: &str, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(o) => o.iter().for_each(|(k, v)| walk(v, k, out)),
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, key, out)),
            serde_json::Value::String(s)
                if LANGUAGE_FIELDS.contains(&key) && !s.is_empty() && !is_language(s) =>
            {
                out.push((key.to_owned(), s.clone()));
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&crate::payload::payload_json(payload), "", &mut out);
    out
}

/// Whether every language field of an encoded `silta.v1.payload.Payload` holds a code of
/// [`LANGUAGES`], read straight from the wire bytes (no copy of the content; a sealed 10 MiB
/// payload is walked in microseconds). Conservative: `false` whenever it finds an unknown code or
/// meets anything it does not judge itself (a map, a language field that is not a string, bytes
/// that do not parse); the caller then asks [`unknown_languages`], which decides and names the
/// field.
pub(crate) fn languages_all_known(encoded_payload: &[u8]) -> bool {
    fn walk(desc: &prost_reflect::MessageDescriptor, mut buf: &[u8], depth: usize) -> Option<()> {
        use prost::encoding::{WireType, decode_key, decode_varint};
        if depth > 32 {
            return None;
        }
        while !buf.is_empty() {
            let (tag, wire_type) = decode_key(&mut buf).ok()?;
            let field = desc.get_field(tag);
            let named = field
                .as_ref()
                .is_some_and(|f| LANGUAGE_FIELDS.contains(&f.name()));
            let value = match wire_type {
                WireType::Varint => {
                    decode_varint(&mut buf).ok()?;
                    None
                }
                WireType::SixtyFourBit | WireType::ThirtyTwoBit => {
                    let n = if wire_type == WireType::SixtyFourBit {
                        8
                    } else {
                        4
                    };
                    buf = buf.get(n..)?;
                    None
                }
                WireType::LengthDelimited => {
                    let len = usize::try_from(decode_varint(&mut buf).ok()?).ok()?;
                    let value = buf.get(..len)?;
                    buf = &buf[len..];
                    Some(value)
                }
                WireType::StartGroup | WireType::EndGroup => return None,
            };
            let Some(field) = field else { continue };
            if field.is_map() {
                return None;
            }
            match (field.kind(), value) {
                (prost_reflect::Kind::String, Some(v)) if named => {
                    let code = std::str::from_utf8(v).ok()?;
                    if !code.is_empty() && !is_language(code) {
                        return None;
                    }
                }
                (prost_reflect::Kind::Message(m), Some(v)) if !named => walk(&m, v, depth + 1)?,
                _ if named => return None,
                _ => {}
            }
        }
        Some(())
    }
    pool()
        .and_then(|p| p.get_message_by_name("silta.v1.payload.Payload"))
        .and_then(|desc| walk(&desc, encoded_payload, 0))
        .is_some()
}

/// One line of a message's content as a person reads it: a field with its value, a field that
/// heads what is nested below it (no value), or an item of a list (no label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// How deep it is nested (0: a field of the body).
    pub depth: usize,
    /// The field's label in the reader's language; empty for an item of a list.
    pub label: String,
    /// The value as shown: an enum value's label, a language's name, yes/no, the text (made
    /// printable); `None` for a heading.
    pub value: Option<String>,
}

fn pool() -> Option<&'static prost_reflect::DescriptorPool> {
    static POOL: OnceLock<Option<prost_reflect::DescriptorPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        prost_reflect::DescriptorPool::decode(silta_proto::FILE_DESCRIPTOR_SET).ok()
    })
    .as_ref()
}

/// A kept payload (`{"referral": {...}}`, the proto3 JSON mapping with the schema's field names)
/// as rows labelled in `lang`, its fields in the schema's order.
pub fn payload_rows(payload: &serde_json::Value, lang: Lang) -> Vec<Row> {
    let mut rows = Vec::new();
    let desc = pool().and_then(|p| p.get_message_by_name("silta.v1.payload.Payload"));
    if let (Some(o), Some(desc)) = (payload.as_object(), desc) {
        for (k, body) in o {
            let inner = desc.get_field_by_name(k).and_then(|f| match f.kind() {
                prost_reflect::Kind::Message(m) => Some(m),
                _ => None,
            });
            message_rows(body, inner.as_ref(), 0, lang, &mut rows);
        }
    }
    rows
}

fn message_rows(
    v: &serde_json::Value,
    desc: Option<&prost_reflect::MessageDescriptor>,
    depth: usize,
    lang: Lang,
    rows: &mut Vec<Row>,
) {
    let Some(o) = v.as_object() else {
        rows.push(Row {
            depth,
            label: String::new(),
            value: Some(value_text(v, "", None, lang)),
        });
        return;
    };
    // The schema's order; anything the schema does not name (never, for a payload that was
    // read back from its own mapping) after it.
    let mut keys: Vec<(String, Option<prost_reflect::FieldDescriptor>)> = desc
        .map(|d| {
            d.fields()
                .filter(|f| o.contains_key(f.name()))
                .map(|f| (f.name().to_owned(), Some(f)))
                .collect()
        })
        .unwrap_or_default();
    for k in o.keys() {
        if !keys.iter().any(|(n, _)| n == k) {
            keys.push((k.clone(), None));
        }
    }
    for (k, field) in keys {
        let v = &o[&k];
        let (inner, enumeration) = match field.as_ref().map(|f| f.kind()) {
            Some(prost_reflect::Kind::Message(m)) => (Some(m), None),
            Some(prost_reflect::Kind::Enum(e)) => (None, Some(e)),
            _ => (None, None),
        };
        let label = field_label(lang, &k);
        match v {
            serde_json::Value::Array(items) => {
                rows.push(Row {
                    depth,
                    label,
                    value: None,
                });
                for item in items {
                    if item.is_object() {
                        rows.push(Row {
                            depth: depth + 1,
                            label: String::new(),
                            value: None,
                        });
                        message_rows(item, inner.as_ref(), depth + 2, lang, rows);
                    } else {
                        rows.push(Row {
                            depth: depth + 1,
                            label: String::new(),
                            value: Some(value_text(item, &k, enumeration.as_ref(), lang)),
                        });
                    }
                }
            }
            serde_json::Value::Object(_) => {
                rows.push(Row {
                    depth,
                    label,
                    value: None,
                });
                message_rows(v, inner.as_ref(), depth + 1, lang, rows);
            }
            _ => rows.push(Row {
                depth,
                label,
                value: Some(value_text(v, &k, enumeration.as_ref(), lang)),
            }),
        }
    }
}

fn value_text(
    v: &serde_json::Value,
    field: &str,
    enumeration: Option<&prost_reflect::EnumDescriptor>,
    lang: Lang,
) -> String {
    match v {
        serde_json::Value::String(s) if LANGUAGE_FIELDS.contains(&field) => language_name(lang, s),
        serde_json::Value::String(s)
            if enumeration.is_some_and(|e| e.get_value_by_name(s).is_some()) =>
        {
            enum_label(lang, s)
        }
        serde_json::Value::String(s) => crate::text::printable(s),
        serde_json::Value::Bool(true) => tr(lang, "value-yes", &[]),
        serde_json::Value::Bool(false) => tr(lang, "value-no", &[]),
        other => crate::text::printable(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire walk agrees with the JSON walk: a payload whose language fields all hold known
    /// codes passes without the JSON walk; an unknown code anywhere (nested, in a list, deep in
    /// a repeated message) sends the caller to [`unknown_languages`], which names it.
    #[test]
    fn the_fast_language_check_agrees_with_the_json_walk() {
        use prost::Message as _;
        use silta_proto::pb::payload::{self as pl, Payload, Referral, payload::Body};
        let referral = |mother: &str, others: &[&str], interpreter: &str| Payload {
            body: Some(Body::Referral(Referral {
                person: Some(pl::Person {
                    name: "x".repeat(100_000),
                    mother_tongue: mother.into(),
                    other_languages: others.iter().map(|s| s.to_string()).collect(),
                    ..Default::default()
                }),
                interpreter: Some(pl::InterpreterRequest {
                    language: interpreter.into(),
                    ..Default::default()
                }),
                observations: "language: xx".into(),
                ..Default::default()
            })),
        };
        let cases = [
            (referral("fi", &["sv", "ar"], "prs"), true),
            (referral("", &[], ""), true),
            (referral("xx", &["sv"], "fi"), false),
            (referral("fi", &["sv", "klingon"], "fi"), false),
            (referral("fi", &["sv"], "FI"), false),
        ];
        for (payload, known) in cases {
            assert_eq!(unknown_languages(&payload).is_empty(), known);
            assert_eq!(languages_all_known(&payload.encode_to_vec()), known);
        }
        // Bytes that do not parse are not judged here.
        assert!(!languages_all_known(&[0x0a, 0xff]));
    }

    #[test]
    fn locale_selection() {
        assert_eq!(Lang::from_locale("fi_FI.UTF-8"), Some(Lang::Fi));
        assert_eq!(Lang::from_locale("sv_FI"), Some(Lang::Sv));
        assert_eq!(Lang::from_locale("sv_SE.UTF-8"), Some(Lang::Sv));
        assert_eq!(Lang::from_locale("en_GB.UTF-8"), Some(Lang::En));
        assert_eq!(Lang::from_locale("C"), None);
        assert_eq!(Lang::from_locale("de_DE"), None);
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            Lang::from_vars(move |k| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            })
        };
        assert_eq!(env(&[("LANG", "fi_FI.UTF-8")]), Lang::Fi);
        assert_eq!(
            env(&[("LANG", "fi_FI.UTF-8"), ("LC_ALL", "sv_FI")]),
            Lang::Sv
        );
        assert_eq!(
            env(&[("LANG", "sv_SE"), ("LC_MESSAGES", "fi_FI.UTF-8")]),
            Lang::Fi
        );
        assert_eq!(env(&[("LC_ALL", ""), ("LANG", "sv_SE")]), Lang::Sv);
        assert_eq!(env(&[("LANG", "C.UTF-8")]), Lang::En);
        assert_eq!(env(&[]), Lang::En);
    }

    #[test]
    fn missing_messages_fall_back_and_never_panic() {
        assert_eq!(
            tr(Lang::Fi, "no-such-message-id", &[]),
            "no-such-message-id"
        );
        assert_eq!(enum_label(Lang::Fi, "AGE_GROUP_ADULT"), "Täysi-ikäinen");
        assert_eq!(short_label(Lang::Sv, "URGENCY_", "urgent"), "Brådskande");
        assert_eq!(
            short_label(Lang::Sv, "URGENCY_", "\u{1b}[2Jodd"),
            "\u{FFFD}[2Jodd"
        );
        assert_eq!(language_name(Lang::Fi, "prs"), "dari (prs)");
        assert_eq!(language_name(Lang::En, "prs"), "Dari (prs)");
        assert_eq!(language_name(Lang::En, "xx"), "xx");
    }

    #[test]
    fn interpolated_text_is_made_printable_and_not_isolated() {
        let s = tr(
            Lang::En,
            "inbox-no-case-messages",
            &[("case", "\u{202E}abc\u{1b}[2J".into())],
        );
        assert!(!s.contains('\u{2068}') && !s.contains('\u{2069}'), "{s:?}");
        assert!(!s.contains('\u{202E}') && !s.contains('\u{1b}'), "{s:?}");
    }

    #[test]
    fn one_line_values_cannot_start_a_line() {
        let hostile = "x\nsilta: all messages acknowledged\r\u{2028}y";
        for lang in Lang::ALL {
            let s = tr(lang, "inbox-rejected", &[("detail", hostile.into())]);
            assert!(!s.contains(['\n', '\r', '\u{2028}']), "{s:?}");
            assert!(s.contains("x\u{FFFD}silta"), "{s:?}");
        }
        let s = tr(
            Lang::En,
            "inbox-rejected",
            &[("detail", Arg::Lines("a\nb".into()))],
        );
        assert!(s.contains("a\nb"), "{s:?}");
    }

    #[test]
    fn plurals_per_language() {
        let n = |lang, count: usize| tr(lang, "inbox-new-messages", &[("count", count.into())]);
        assert_eq!(n(Lang::En, 1), "1 new message");
        assert_eq!(n(Lang::En, 3), "3 new messages");
        assert_eq!(n(Lang::Fi, 1), "1 uusi viesti");
        assert_eq!(n(Lang::Fi, 3), "3 uutta viestiä");
        assert_eq!(n(Lang::Sv, 1), "1 nytt meddelande");
        assert_eq!(n(Lang::Sv, 3), "3 nya meddelanden");
    }
}
