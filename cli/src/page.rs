//! A message as a page a person reads or prints: `silta inbox show ID --format text|html`.
//!
//! Every field has its label in the reader's language, enum values their labels, language codes
//! their names ("Dari (prs)"). Every value from the message is made printable first (control,
//! reordering and zero-width characters become U+FFFD), and in HTML escaped as well: the page is
//! one self-contained HTML5 file with a print stylesheet, no scripts, nothing loaded from
//! elsewhere.

use serde_json::Value;
use silta_client::i18n::{Lang, language_name, tr};
use silta_client::record::{MessageRecord, RecordState};

pub(crate) use silta_client::i18n::Row;

/// Text from the message made safe for a page: the terminal's sanitiser (control, reordering,
/// zero-width and invisible formatting characters are replaced; what is printed is what was
/// stored), line feeds kept (a body's text).
pub(crate) fn safe(s: &str) -> String {
    silta_client::text::printable(s)
}

/// A value of the page's metadata (a sender, a device id, a time): [`safe`] on one line, so a
/// value cannot add a line that seems to be the page's own.
pub(crate) fn safe_line(s: &str) -> String {
    silta_client::text::printable_line(s)
}

/// Whether another desk of this principal handled the message (with whether its signed
/// acknowledgement verified here), or that it was sealed before this desk's keys were
/// published: one line in `lang`; `None` for neither.
pub(crate) fn handled(r: &MessageRecord, lang: Lang) -> Option<String> {
    if let Some(h) = &r.handled_elsewhere {
        let who = [
            ("device", h.device.as_str().into()),
            ("time", h.at.as_str().into()),
        ];
        let mut line = if h.state == "rejected" {
            let mut args = who.to_vec();
            args.push(("reason", h.reason.as_deref().unwrap_or("—").into()));
            tr(lang, "page-rejected-by", &args)
        } else {
            tr(lang, "page-handled-by", &who)
        };
        line.push_str(" — ");
        line.push_str(&if h.verified {
            tr(lang, "page-handled-verified", &[])
        } else {
            tr(
                lang,
                "page-handled-unverified",
                &[("problem", h.problem.as_deref().unwrap_or("—").into())],
            )
        });
        return Some(safe_line(&line));
    }
    r.sealed_before_device
        .then(|| safe_line(&tr(lang, "page-sealed-before", &[])))
}

/// The message's content as rows, labelled in `lang`, every value made safe for a page.
pub(crate) fn body_rows(r: &MessageRecord, lang: Lang) -> Vec<Row> {
    silta_client::i18n::payload_rows(&r.payload, lang)
        .into_iter()
        .map(|row| Row {
            value: row.value.map(|v| safe(&v)),
            ..row
        })
        .collect()
}

/// The referral's interpreter request, on one line for the top of the view; `None` if the
/// message asks for none.
pub(crate) fn interpreter(r: &MessageRecord, lang: Lang) -> Option<String> {
    let i = r.payload.get("referral")?.get("interpreter")?;
    let s = |k: &str| i.get(k).and_then(Value::as_str).unwrap_or_default();
    if s("language").is_empty() && s("dialect").is_empty() && s("note").is_empty() {
        return None;
    }
    let mut line = tr(
        lang,
        "show-interpreter-needed",
        &[(
            "language",
            match s("language") {
                "" => "—".to_owned(),
                code => language_name(lang, code),
            }
            .into(),
        )],
    );
    for (k, id) in [
        ("dialect", "show-interpreter-dialect"),
        ("note", "show-interpreter-note"),
    ] {
        if !s(k).is_empty() {
            line.push_str("; ");
            line.push_str(&tr(lang, id, &[("value", s(k).into())]));
        }
    }
    Some(safe_line(&line))
}

/// The metadata of the page: (label, value) in `lang`.
fn metadata(r: &MessageRecord, lang: Lang) -> Vec<(String, String)> {
    let l = |id: &str| tr(lang, id, &[]);
    let short = |prefix: &str, v: &str| silta_client::i18n::short_label(lang, prefix, v);
    let mut m = vec![
        (l("page-kind"), short("MESSAGE_KIND_", &r.kind)),
        (l("page-message-id"), r.message_id.to_string()),
        (
            l("page-case"),
            if r.case.is_none() {
                l("show-case-none")
            } else {
                r.case.to_string()
            },
        ),
        (l("page-from"), safe_line(&r.from)),
    ];
    if let Some(d) = r.from_device.as_deref().filter(|d| !d.is_empty()) {
        m.push((l("page-from-device"), safe_line(d)));
    }
    m.push((l("page-to"), safe_line(&r.to.join(", "))));
    m.push((l("page-written"), safe_line(&r.created_at)));
    m.push((
        l("page-accepted"),
        tr(
            lang,
            "page-accepted-at",
            &[
                ("time", r.accepted_at.as_str().into()),
                ("index", r.log_index.into()),
            ],
        ),
    ));
    if let Some(t) = r.received_at.as_deref() {
        m.push((l("page-received"), safe_line(t)));
    }
    m.push((l("page-urgency"), short("URGENCY_", &r.urgency)));
    m.push((l("page-legal-basis"), short("LEGAL_BASIS_", &r.legal_basis)));
    if let Some(id) = r.in_reply_to {
        m.push((l("page-in-reply-to"), id.to_string()));
    }
    if let Some(s) = r.state {
        let state = match s {
            RecordState::New => l("record-state-new"),
            RecordState::Acknowledged => l("record-state-acknowledged"),
            RecordState::Sent => l("record-state-sent"),
            RecordState::ExpiredAtRelay => l("record-state-expired-at-relay"),
        };
        m.push((l("page-state"), state));
    }
    if let Some(by) = r.acknowledged_by.as_deref().filter(|b| !b.is_empty()) {
        m.push((
            l("page-acknowledged"),
            tr(
                lang,
                "show-acked-by",
                &[
                    ("who", by.into()),
                    ("time", r.acknowledged_at.clone().unwrap_or_default().into()),
                ],
            ),
        ));
    }
    if let Some(h) = handled(r, lang) {
        m.push((l("page-handled"), h));
    }
    m.into_iter().map(|(k, v)| (k, safe_line(&v))).collect()
}

/// The page as plain text (for reading, printing, or pasting into a case file).
pub(crate) fn text(r: &MessageRecord, lang: Lang, printed_by: &str, printed_at: &str) -> String {
    let title = tr(
        lang,
        "page-title",
        &[(
            "kind",
            silta_client::i18n::short_label(lang, "MESSAGE_KIND_", &r.kind).into(),
        )],
    );
    let mut out = format!("{title}\n{}\n\n", "=".repeat(title.chars().count()));
    let meta = metadata(r, lang);
    let width = meta
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        + 1;
    for (k, v) in &meta {
        out.push_str(&format!("{:<width$} {v}\n", format!("{k}:")));
    }
    if let Some(i) = interpreter(r, lang) {
        out.push_str(&format!("\n*** {i} ***\n"));
    }
    let content = tr(lang, "page-content", &[]);
    out.push_str(&format!(
        "\n{content}\n{}\n",
        "-".repeat(content.chars().count())
    ));
    for row in body_rows(r, lang) {
        let pad = "  ".repeat(row.depth);
        let value = row.value.map(|v| v.replace('\n', &format!("\n{pad}  ")));
        match (row.label.is_empty(), value) {
            (true, Some(v)) => out.push_str(&format!("{pad}- {v}\n")),
            (false, Some(v)) => out.push_str(&format!("{pad}{}: {v}\n", row.label)),
            (true, None) => out.push_str(&format!("{pad}-\n")),
            (false, None) => out.push_str(&format!("{pad}{}:\n", row.label)),
        }
    }
    out.push_str(&format!("\n{}\n", footer(lang, printed_by, printed_at)));
    out
}

fn footer(lang: Lang, printed_by: &str, printed_at: &str) -> String {
    safe_line(&tr(
        lang,
        "page-footer",
        &[("who", printed_by.into()), ("time", printed_at.into())],
    ))
}

/// HTML text: `&`, `<`, `>`, `"` and `'` escaped.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;max-width:48em;margin:2em auto;color:#000;line-height:1.4}\
h1{font-size:1.4em;border-bottom:2px solid #000}\
h2{font-size:1.1em;margin-top:1.5em}\
table{border-collapse:collapse;width:100%}\
th,td{text-align:left;vertical-align:top;padding:.2em .6em .2em 0}\
th{width:35%;font-weight:600}\
td{white-space:pre-wrap}\
.interpreter{border:2px solid #000;padding:.5em;font-weight:700;margin:1em 0}\
footer{margin-top:2em;font-size:.85em;border-top:1px solid #000}\
@media print{body{margin:0;max-width:none;font-size:11pt}a{color:#000}\
tr,.interpreter{page-break-inside:avoid}@page{margin:2cm}}";

/// The page as one self-contained HTML5 document with a print stylesheet.
pub(crate) fn html(r: &MessageRecord, lang: Lang, printed_by: &str, printed_at: &str) -> String {
    let title = escape(&tr(
        lang,
        "page-title",
        &[(
            "kind",
            silta_client::i18n::short_label(lang, "MESSAGE_KIND_", &r.kind).into(),
        )],
    ));
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"robots\" content=\"noindex\">\n<title>{title}</title>\n<style>{STYLE}</style>\n\
         </head>\n<body>\n<h1>{title}</h1>\n<table class=\"meta\">\n",
        lang.code()
    );
    for (k, v) in metadata(r, lang) {
        out.push_str(&format!(
            "<tr><th>{}</th><td>{}</td></tr>\n",
            escape(&k),
            escape(&v)
        ));
    }
    out.push_str("</table>\n");
    if let Some(i) = interpreter(r, lang) {
        out.push_str(&format!("<p class=\"interpreter\">{}</p>\n", escape(&i)));
    }
    out.push_str(&format!(
        "<h2>{}</h2>\n<table class=\"content\">\n",
        escape(&tr(lang, "page-content", &[]))
    ));
    for row in body_rows(r, lang) {
        let indent = format!(" style=\"padding-left:{}em\"", row.depth * 2);
        let label = if row.label.is_empty() {
            "–".to_owned()
        } else {
            escape(&row.label)
        };
        match row.value {
            Some(v) => out.push_str(&format!(
                "<tr><th{indent}>{label}</th><td>{}</td></tr>\n",
                escape(&v)
            )),
            None => out.push_str(&format!(
                "<tr><th{indent} colspan=\"2\">{label}</th></tr>\n"
            )),
        }
    }
    out.push_str(&format!(
        "</table>\n<footer><p>{}</p></footer>\n</body>\n</html>\n",
        escape(&footer(lang, printed_by, printed_at))
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_and_sanitises() {
        let hostile = "<script>alert(1)</script>\u{202E}txt\u{1b}[2J\u{200B}&\"'";
        let out = escape(&safe(hostile));
        assert_eq!(
            out,
            "&lt;script&gt;alert(1)&lt;/script&gt;\u{FFFD}txt\u{FFFD}[2J\u{FFFD}&amp;&quot;&#39;"
        );
    }

    fn record(extra: serde_json::Value) -> MessageRecord {
        let mut v = serde_json::json!({
            "accepted_at": "2026-11-30T10:00:00Z",
            "case": "ab".repeat(16),
            "created_at": "2026-11-30T09:59:00Z",
            "direction": "received",
            "from": "centre/x\nKind: forged line\u{200B}",
            "from_device": "dev\r\nState: acknowledged",
            "in_reply_to": "",
            "kind": "referral",
            "legal_basis": "consent",
            "log_index": 7,
            "message_id": "0190c1d2-0000-7000-8000-000000000001",
            "payload": {"referral": {"account": "line one\nline two"}},
            "to": ["assistance/nas"],
            "urgency": "urgent",
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_line_break_in_a_metadata_value_stays_on_its_line() {
        let r = record(serde_json::json!({}));
        for page in [
            text(&r, Lang::En, "ben\nPrinted by: someone else", "t"),
            html(&r, Lang::En, "ben", "t"),
        ] {
            assert!(!page.contains("\nKind: forged"), "{page}");
            assert!(!page.contains("\nState: acknowledged"), "{page}");
            assert!(!page.contains("\nPrinted by: someone"), "{page}");
            assert!(
                page.contains("centre/x\u{FFFD}Kind: forged line\u{FFFD}"),
                "{page}"
            );
        }
        // A body's text keeps its lines.
        assert!(text(&r, Lang::En, "ben", "t").contains("line one\n"));
        // Nothing but the inline style may load or run, should a value ever slip through.
        assert!(html(&r, Lang::En, "ben", "t").contains(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        ));
    }

    #[test]
    fn the_page_says_another_desk_handled_it_in_every_language() {
        let handled = |verified: bool| {
            record(serde_json::json!({"handled_elsewhere": {
                "at": "2026-11-30T11:00:00Z", "device": "desk-1", "log_index": 9,
                "state": "acknowledged", "verified": verified,
                "problem": if verified { serde_json::Value::Null } else { "no such key".into() },
            }}))
        };
        let ok = text(&handled(true), Lang::En, "ben", "t");
        assert!(
            ok.contains("handled by desk-1 at 2026-11-30T11:00:00Z — signature verified"),
            "{ok}"
        );
        let bad = text(&handled(false), Lang::En, "ben", "t");
        assert!(
            bad.contains("handled-claim UNVERIFIED: no such key"),
            "{bad}"
        );
        assert!(text(&handled(true), Lang::Fi, "ben", "t").contains("käsitellyt desk-1"));
        assert!(html(&handled(true), Lang::Sv, "ben", "t").contains("hanterat av desk-1"));
        let sealed = record(serde_json::json!({"sealed_before_device": true, "payload": {}}));
        for (lang, words) in [
            (Lang::En, "Sealed before this desk"),
            (Lang::Fi, "Salattu ennen"),
            (Lang::Sv, "Krypterat innan"),
        ] {
            let page = text(&sealed, lang, "ben", "t");
            assert!(page.contains(words), "{page}");
        }
    }
}
