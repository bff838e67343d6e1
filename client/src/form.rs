//! Form files with their envelope: what the centre daemon picks up from its outbox.
//!
//! A form file is the payload of one kind in the proto3 JSON mapping, as TOML (or JSON if the
//! name ends in `.json`), with one extra table, `envelope`, that says where it goes:
//!
//! ```toml
//! account = "..."                # the referral itself: its top-level fields first,
//! [person]                       # then its tables,
//! name = "..."
//!
//! [envelope]                     # and the envelope (any place after the top-level fields)
//! kind = "referral"              # see `silta send --help` for the kinds
//! to = ["assistance/nas"]        # or one string
//! case = "none"                  # 32 hex digits once the Assistance System issued one
//! urgency = "urgent"             # normal (default), urgent, emergency
//! legal_basis = "consent"        # default: the kind's (silta_proto::policy::default_basis);
//!                                # consent, statutory-information-right, child-welfare-duty,
//!                                # acute-danger, no-personal-data (anonymous kinds only)
//! in_reply_to = "0193..."        # optional: the message this answers (UUID)
//! ```
//!
//! In JSON the envelope is the member `"envelope"` beside the form's own members.

use serde::Deserialize;
use silta_certs::Principal;
use silta_proto::pb::{LegalBasis, MessageKind, Urgency, payload::Payload};

use crate::{
    payload::{PayloadError, parse_form_text, parse_kind, read_form_value},
    seal::Draft,
};

/// The `[envelope]` table of a form file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeTable {
    kind: String,
    to: OneOrMany,
    #[serde(default)]
    case: Option<String>,
    #[serde(default)]
    urgency: Option<String>,
    #[serde(default)]
    legal_basis: Option<String>,
    #[serde(default)]
    in_reply_to: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Where a form goes and how it is labelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Kind.
    pub kind: MessageKind,
    /// Recipients.
    pub to: Vec<Principal>,
    /// Case reference (zeros before a case exists).
    pub case_ref: [u8; 16],
    /// Urgency.
    pub urgency: Urgency,
    /// Legal basis.
    pub legal_basis: LegalBasis,
    /// The message this answers.
    pub in_reply_to: Option<[u8; 16]>,
}

impl Header {
    /// A draft of this header and `payload` with message id `id`.
    pub fn draft(&self, id: [u8; 16], payload: Payload) -> Draft {
        let mut d = Draft::new(self.kind, self.case_ref, self.to.clone(), payload);
        d.message_id = id;
        d.urgency = self.urgency;
        d.legal_basis = self.legal_basis;
        d.in_reply_to = self.in_reply_to;
        d
    }
}

/// Reads a form file with an `[envelope]` table.
pub fn read_envelope_form(text: &str, json: bool) -> Result<(Header, Payload), PayloadError> {
    let mut value = parse_form_text(text, json)?;
    let envelope = value
        .as_object_mut()
        .and_then(|o| o.remove("envelope"))
        .ok_or_else(|| {
            PayloadError(
                "the form has no [envelope] table saying its kind and recipients (kind, to, case)"
                    .into(),
            )
        })?;
    let table: EnvelopeTable = serde_json::from_value(envelope).map_err(|e| {
        let hint = if e.to_string().contains("unknown field") && !json {
            " (in TOML every key after [envelope] belongs to it: put the form's own top-level fields before the first [table])"
        } else {
            ""
        };
        PayloadError(format!("[envelope]: {e}{hint}"))
    })?;
    let kind =
        parse_kind(&table.kind).map_err(|e| PayloadError(format!("[envelope] kind: {e}")))?;
    let to = match table.to {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    };
    if to.is_empty() {
        return Err(PayloadError("[envelope] to: no recipient".into()));
    }
    let to = to
        .iter()
        .map(|p| {
            p.parse::<Principal>()
                .map_err(|e| PayloadError(format!("[envelope] to {p:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let header = Header {
        kind,
        to,
        case_ref: parse_case(table.case.as_deref().unwrap_or("none"))
            .map_err(|e| PayloadError(format!("[envelope] case: {e}")))?,
        urgency: parse_urgency(table.urgency.as_deref().unwrap_or("normal"))
            .map_err(|e| PayloadError(format!("[envelope] urgency: {e}")))?,
        legal_basis: match table.legal_basis.as_deref() {
            None => silta_proto::policy::default_basis(kind),
            Some(b) => parse_legal_basis(b)
                .map_err(|e| PayloadError(format!("[envelope] legal_basis: {e}")))?,
        },
        in_reply_to: table
            .in_reply_to
            .as_deref()
            .map(parse_message_id)
            .transpose()
            .map_err(|e| PayloadError(format!("[envelope] in_reply_to: {e}")))?,
    };
    let payload = read_form_value(kind, value)?;
    Ok((header, payload))
}

/// A case reference: 32 hex digits (dashes allowed), or `none` (all zeros) before a case exists.
pub fn parse_case(case: &str) -> Result<[u8; 16], PayloadError> {
    if case == "none" {
        return Ok([0; 16]);
    }
    let bytes = hex::decode(case.replace('-', "")).map_err(|_| {
        PayloadError(crate::i18n::t(
            "case-not-hex",
            &[("case", format!("{case:?}").into())],
        ))
    })?;
    bytes.try_into().map_err(|_| {
        PayloadError(crate::i18n::t(
            "case-wrong-length",
            &[("case", format!("{case:?}").into())],
        ))
    })
}

/// A message id (UUID).
pub fn parse_message_id(id: &str) -> Result<[u8; 16], PayloadError> {
    uuid::Uuid::parse_str(id.trim())
        .map(|u| *u.as_bytes())
        .map_err(|e| PayloadError(format!("{id:?} is not a message id (UUID): {e}")))
}

/// `normal`, `urgent` or `emergency`.
pub fn parse_urgency(s: &str) -> Result<Urgency, PayloadError> {
    Urgency::from_str_name(&format!("URGENCY_{}", upper(s)))
        .filter(|u| *u != Urgency::Unspecified)
        .ok_or_else(|| PayloadError(format!("{s:?}: use normal, urgent or emergency")))
}

/// `consent`, `statutory-information-right`, `child-welfare-duty`, `acute-danger` or
/// `no-personal-data`. Which a kind may name: `silta_proto::policy::allowed_bases`.
pub fn parse_legal_basis(s: &str) -> Result<LegalBasis, PayloadError> {
    LegalBasis::from_str_name(&format!("LEGAL_BASIS_{}", upper(s)))
        .filter(|u| *u != LegalBasis::Unspecified)
        .ok_or_else(|| {
            PayloadError(format!(
                "{s:?}: use consent, statutory-information-right, child-welfare-duty, acute-danger or no-personal-data"
            ))
        })
}

fn upper(s: &str) -> String {
    s.trim().to_ascii_uppercase().replace('-', "_")
}

/// The short lower-case name of an urgency (`urgent`).
pub(crate) fn urgency_name(u: Urgency) -> String {
    u.as_str_name()
        .trim_start_matches("URGENCY_")
        .to_ascii_lowercase()
}

/// The short lower-case name of a legal basis (`statutory-information-right`).
pub(crate) fn legal_basis_name(b: LegalBasis) -> String {
    b.as_str_name()
        .trim_start_matches("LEGAL_BASIS_")
        .to_ascii_lowercase()
        .replace('_', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_and_body() {
        let text = r#"
indicators = ["passport held by employer"]
questions = "Should we refer?"

[envelope]
kind = "anonymous-consultation"
to = "assistance/nas"
urgency = "urgent"
"#;
        let (h, p) = read_envelope_form(text, false).unwrap();
        assert_eq!(h.kind, MessageKind::AnonymousConsultation);
        assert_eq!(h.to, vec!["assistance/nas".parse().unwrap()]);
        assert_eq!(h.case_ref, [0; 16]);
        assert_eq!(h.urgency, Urgency::Urgent);
        assert_eq!(
            h.legal_basis,
            LegalBasis::NoPersonalData,
            "the kind's default"
        );
        assert!(p.body.is_some());
    }

    #[test]
    fn errors_name_the_field() {
        let e = read_envelope_form("questions = \"x\"\n", false).unwrap_err();
        assert!(e.0.contains("no [envelope]"), "{e}");
        let e = read_envelope_form(
            "[envelope]\nkind = \"referal\"\nto = \"assistance/nas\"\n",
            false,
        )
        .unwrap_err();
        assert!(
            e.0.starts_with("[envelope] kind: unknown message kind"),
            "{e}"
        );
        let e = read_envelope_form(
            "[envelope]\nkind = \"referral\"\nto = \"assistance/nas\"\ncase = \"12\"\n",
            false,
        )
        .unwrap_err();
        assert!(e.0.starts_with("[envelope] case:"), "{e}");
        let e = read_envelope_form(
            "[envelope]\nkind = \"anonymous-consultation\"\nto = \"nas\"\n",
            false,
        )
        .unwrap_err();
        assert!(e.0.starts_with("[envelope] to \"nas\""), "{e}");
        let e = read_envelope_form(
            "[envelope]\nkind = \"anonymous-consultation\"\nto = \"assistance/nas\"\nname = \"X\"\n",
            false,
        )
        .unwrap_err();
        assert!(e.0.contains("name"), "{e}");
    }
}
