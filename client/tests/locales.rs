//! The three resource files (client/locales/{en,fi,sv}/silta.ftl) say the same things: every
//! message id is in each; every id the code uses exists; every value of the enums people see,
//! every payload field and every language code has a label in each language.

use std::collections::BTreeSet;
use std::path::Path;

use fluent_syntax::{ast, parser};
use prost_reflect::{DescriptorPool, Kind, MessageDescriptor};
use silta_client::i18n::{LANGUAGES, Lang, RESOURCES, has, tr};

/// The message ids of one resource file; the file must parse without an error.
fn ids(lang: Lang, text: &str) -> BTreeSet<String> {
    let resource = parser::parse(text).unwrap_or_else(|(_, errors)| {
        panic!("{}/silta.ftl does not parse: {errors:?}", lang.code())
    });
    let mut ids = BTreeSet::new();
    for entry in resource.body {
        match entry {
            ast::Entry::Message(m) => {
                assert!(
                    m.value.is_some(),
                    "{}: {} has no value",
                    lang.code(),
                    m.id.name
                );
                assert!(
                    ids.insert(m.id.name.to_owned()),
                    "{}: {} twice",
                    lang.code(),
                    m.id.name
                );
            }
            ast::Entry::Junk { content } => panic!("{}: junk {content:?}", lang.code()),
            _ => {}
        }
    }
    ids
}

#[test]
fn every_message_is_in_every_language() {
    let sets: Vec<(Lang, BTreeSet<String>)> =
        RESOURCES.iter().map(|(l, t)| (*l, ids(*l, t))).collect();
    let (_, en) = &sets[0];
    assert!(en.len() > 300, "{}", en.len());
    for (lang, set) in &sets[1..] {
        let missing: Vec<_> = en.difference(set).collect();
        let extra: Vec<_> = set.difference(en).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{}: missing {missing:?}, not in English {extra:?}",
            lang.code()
        );
    }
}

/// The string literals in `dir`'s Rust sources that name messages: the first argument of `t!(`,
/// the second of `tr(`, and every literal that starts like a message id of the views.
fn ids_in_code(dir: &Path, out: &mut BTreeSet<(String, String)>) {
    const PREFIXES: [&str; 23] = [
        "report-col-",
        "report-group-",
        "report-footnote",
        "report-unusable",
        "audit-col-",
        "show-",
        "page-",
        "inbox-",
        "access-",
        "col-",
        "help-",
        "hint-",
        "err-",
        "cert-",
        "record-state-",
        "value-",
        "prefix-",
        "form-unknown-",
        "case-none",
        "config-",
        "case-new-",
        "case-not-hex",
        "case-wrong-length",
    ];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            ids_in_code(&path, out);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.display().to_string();
        let literal_after = |rest: &str| -> Option<String> {
            let rest = rest.trim_start();
            let rest = rest.strip_prefix('"')?;
            let end = rest.find('"')?;
            Some(rest[..end].to_owned())
        };
        // A call, not the end of a longer name (`format!(`, `str(`).
        let call = |i: usize| {
            text[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
        };
        for (i, _) in text.match_indices("t!(").filter(|(i, _)| call(*i)) {
            if let Some(id) = literal_after(&text[i + 3..]) {
                out.insert((name.clone(), id));
            }
        }
        for (i, _) in text.match_indices("tr(").filter(|(i, _)| call(*i)) {
            let rest = &text[i + 3..];
            if let Some(comma) = rest.find(',')
                && !rest[..comma].contains(['"', ')', ';'])
                && let Some(id) = literal_after(&rest[comma + 1..])
            {
                out.insert((name.clone(), id));
            }
        }
        for literal in text.split('"').skip(1).step_by(2) {
            if PREFIXES.iter().any(|p| literal.starts_with(p))
                && literal
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                out.insert((name.clone(), literal.to_owned()));
            }
        }
    }
}

#[test]
fn every_id_the_code_uses_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut used = BTreeSet::new();
    ids_in_code(&root.join("src"), &mut used);
    ids_in_code(&root.join("../cli/src"), &mut used);
    assert!(used.len() > 80, "{}", used.len());
    // Ids made at run time from a name, checked below or by their own tests.
    let dynamic = |id: &str| id.ends_with('-') || id.contains('{') || id == "no-such-message-id";
    let missing: Vec<_> = used
        .iter()
        .filter(|(_, id)| !dynamic(id))
        .filter(|(_, id)| Lang::ALL.iter().any(|l| !has(*l, id)))
        .collect();
    assert!(missing.is_empty(), "ids used but missing: {missing:?}");
    // And the fallback shows an id only when it is missing everywhere.
    for (_, id) in used.iter().filter(|(_, id)| !dynamic(id)) {
        assert_ne!(tr(Lang::Fi, id, &[]), *id);
    }
}

fn pool() -> DescriptorPool {
    DescriptorPool::decode(silta_proto::FILE_DESCRIPTOR_SET).unwrap()
}

#[test]
fn every_enum_value_people_see_has_a_label() {
    let pool = pool();
    let enums = [
        "silta.v1.payload.AgeGroup",
        "silta.v1.payload.ExploitationType",
        "silta.v1.payload.ExploitationPlace",
        "silta.v1.payload.CentreType",
        "silta.v1.payload.AdmissionOutcome",
        "silta.v1.payload.MeetingAnswer",
        "silta.v1.payload.ThreatLevel",
        "silta.v1.payload.CriminalCaseStatus",
        "silta.v1.payload.SupportPersonNeed",
        "silta.v1.payload.ResponsibleParty",
        "silta.v1.payload.AgreementStatus",
        "silta.v1.payload.ChangeKind",
        "silta.v1.payload.ExitReason",
        "silta.v1.payload.ClaimAction",
        "silta.v1.payload.AgreementAnswer",
        "silta.v1.MessageKind",
        "silta.v1.Urgency",
        "silta.v1.LegalBasis",
        "silta.v1.DeliveryState",
        "silta.v1.RejectionReason",
        "silta.v1.UndeliverableReason",
        "silta.v1.PurposeCode",
    ];
    let mut missing = Vec::new();
    let mut count = 0;
    for name in enums {
        let e = pool
            .get_enum_by_name(name)
            .unwrap_or_else(|| panic!("{name}"));
        for v in e.values() {
            count += 1;
            for lang in Lang::ALL {
                if !has(lang, v.name()) {
                    missing.push(format!("{}: {}", lang.code(), v.name()));
                }
            }
        }
    }
    // Every enum of the payload schema is in the list (a new one needs its labels too).
    let listed: BTreeSet<&str> = enums.into_iter().collect();
    for e in pool.all_enums() {
        if e.full_name().starts_with("silta.v1.payload.") {
            assert!(
                listed.contains(e.full_name()),
                "{} has no labels",
                e.full_name()
            );
        }
    }
    assert!(count > 120, "{count}");
    assert!(missing.is_empty(), "{missing:?}");
}

#[test]
fn every_payload_field_has_a_label() {
    fn fields(m: &MessageDescriptor, seen: &mut BTreeSet<String>, names: &mut BTreeSet<String>) {
        if !seen.insert(m.full_name().to_owned()) {
            return;
        }
        for f in m.fields() {
            names.insert(f.name().to_owned());
            if let Kind::Message(inner) = f.kind()
                && inner.full_name().starts_with("silta.")
            {
                fields(&inner, seen, names);
            }
        }
    }
    let pool = pool();
    let payload = pool
        .get_message_by_name("silta.v1.payload.Payload")
        .unwrap();
    let mut names = BTreeSet::new();
    fields(&payload, &mut BTreeSet::new(), &mut names);
    assert!(names.len() > 140, "{}", names.len());
    let missing: Vec<String> = names
        .iter()
        .flat_map(|n| {
            Lang::ALL
                .iter()
                .filter(move |l| !has(**l, &format!("field-{n}")))
                .map(move |l| format!("{}: field-{n}", l.code()))
        })
        .collect();
    assert!(missing.is_empty(), "{missing:?}");
}

#[test]
fn every_language_code_has_a_name() {
    for code in LANGUAGES {
        assert!(
            code.len() == 2 || code.len() == 3,
            "{code} is not an ISO 639 code"
        );
        for lang in Lang::ALL {
            assert!(
                has(lang, &format!("lang-{code}")),
                "{}: {code}",
                lang.code()
            );
        }
    }
    for needed in [
        "prs", "ckb", "kmr", "ti", "so", "ar", "fa", "ps", "ru", "uk", "fi", "sv",
    ] {
        assert!(LANGUAGES.contains(&needed), "{needed}");
    }
    // ISO 639-1 where a language has a code there: Tigrinya is `ti`, never also `tir`.
    for twice in ["tir", "fas", "ara", "som", "rus", "fin", "swe"] {
        assert!(!LANGUAGES.contains(&twice), "{twice}");
    }
}

/// The labels looked up by a name made at run time: the access-log actions a data subject's
/// report shows (`access-action-<action>`) and what `inbox due` lists (`due-what-<what>`).
#[test]
fn every_access_action_and_due_item_has_a_label() {
    use silta_client::access::Action;
    let actions = [
        Action::Received,
        Action::Listed,
        Action::Shown,
        Action::Thread,
        Action::Disclosed,
        Action::Reported,
        Action::Closed,
        Action::Reopened,
        Action::Shared,
        Action::Purged,
        Action::KeyDeleted,
    ];
    let due = [
        "information-response",
        "written-referral",
        "agreement-review",
        "meeting",
        "acknowledgement",
    ];
    let ids = actions
        .iter()
        .map(|a| format!("access-action-{}", a.as_str()))
        .chain(due.iter().map(|w| format!("due-what-{w}")));
    for id in ids {
        for lang in Lang::ALL {
            assert!(has(lang, &id), "{}: {id}", lang.code());
        }
        // English shows the name itself: what the JSON and the log say.
        let name = id
            .trim_start_matches("access-action-")
            .trim_start_matches("due-what-");
        assert_eq!(tr(Lang::En, &id, &[]), name);
    }
}
