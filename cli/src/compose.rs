//! The reply commands (`request-info`, `decision`, `meeting ...`, `assessment`, `agreement`,
//! `consultation`, `referral`, `info-response`): a form file and/or flags, sealed and sent.

use serde_json::{Value, json};
use silta_client::{
    ClientConfig,
    client::Client,
    form::{parse_case, parse_urgency},
    inbox,
    payload::{kind_name, parse_form_text, read_form_value},
    seal::Draft,
    state::State,
};
use silta_proto::pb::{MessageKind, Urgency};

use crate::{EX_DATAERR, Failure, cli::Compose};

/// `START[/MINUTES]` as a MeetingSlot in the JSON mapping.
pub(crate) fn slot(s: &str) -> Result<Value, Failure> {
    let (start, minutes) = match s.split_once('/') {
        Some((a, m)) => (
            a,
            m.parse::<u32>().map_err(|_| {
                Failure::usage(format!("--slot {s}: minutes after / must be a number"))
            })?,
        ),
        None => (s, 60),
    };
    time::OffsetDateTime::parse(start, &time::format_description::well_known::Rfc3339).map_err(
        |_| {
            Failure::usage(format!(
                "--slot {s}: start must look like 2026-12-01T10:00:00Z (RFC 3339), optionally /MINUTES"
            ))
        },
    )?;
    Ok(json!({ "start": start, "duration_minutes": minutes }))
}

/// An enum flag value (`high`) as its proto name (`THREAT_LEVEL_HIGH`), if it is one.
pub(crate) fn enum_value(
    prefix: &str,
    flag: &str,
    value: &str,
    allowed: &[&str],
) -> Result<Value, Failure> {
    let v = value.trim().to_ascii_lowercase();
    if !allowed.contains(&v.as_str()) {
        return Err(Failure::usage(format!(
            "{flag} {value}: use one of {}",
            allowed.join(", ")
        )));
    }
    Ok(Value::String(format!(
        "{prefix}{}",
        v.to_ascii_uppercase().replace('-', "_")
    )))
}

/// Seals and sends a message of `kind` built from `compose.form` overlaid with `fields`, with
/// `complete` filling in what only the local state knows (the version a service
/// agreement supersedes, a case reference issued, the recipients a transfer adds) into the
/// address and the body (the form overlaid with the flags) before it is read as the payload.
pub(crate) async fn send_with(
    config: &ClientConfig,
    kind: MessageKind,
    compose: &Compose,
    fields: Value,
    complete: impl FnOnce(&State, &mut Address, &mut Value) -> Result<(), Failure>,
) -> Result<(), Failure> {
    // The body first: a bad form is reported before anything is connected.
    let mut body = body(compose, fields)?;
    let early = read_form_value(kind, body.clone()).map_err(|e| invalid(&kind_name(kind), e))?;
    crate::send_cmd::check_languages(&early)?;
    let client = Client::start(config).await?;
    let mut address = address(client.state(), compose)?;
    if let Some(r) = &address.replied {
        silta_client::payload::check_reply_link(kind, &r.kind)
            .map_err(|e| Failure::usage(format!("--reply-to: {e}")))?;
    }
    complete(client.state(), &mut address, &mut body)?;
    let payload = read_form_value(kind, body).map_err(|e| invalid(&kind_name(kind), e))?;
    crate::send_cmd::check_languages(&payload)?;
    let recipients = address
        .to
        .iter()
        .map(|r| {
            r.parse()
                .map_err(|e| Failure::usage(format!("--to {r}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut draft = Draft::new(kind, address.case, recipients, payload);
    draft.urgency = address.urgency;
    if let Some(b) = &address.legal_basis {
        draft.legal_basis = crate::send_cmd::legal_basis_for(kind, b)?;
    }
    draft.in_reply_to = address.in_reply_to;
    // The outbox logs the disclosure first, keeps the copy, and sends the same sealed message
    // again when the same command is run again after a failed or interrupted attempt.
    let sent = crate::send_cmd::submit(config, &client, &draft, compose.purpose.as_deref()).await?;
    let id = uuid::Uuid::from_bytes(sent.message_id);
    print_sent(kind, &address, id, sent.receipt.log_index, compose.json);
    Ok(())
}

/// The body: the form file (if any) overlaid with the flags that were given.
fn body(compose: &Compose, fields: Value) -> Result<Value, Failure> {
    let mut body = match &compose.form {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
            let json = path.extension().is_some_and(|e| e == "json");
            parse_form_text(&text, json).map_err(|e| invalid(&path.display().to_string(), e))?
        }
        None => json!({}),
    };
    if body.get("envelope").is_some() {
        return Err(Failure::usage(
            "this form has an [envelope] table: give it to the daemon's outbox or `silta send`, or remove [envelope] and use --to/--case/--reply-to",
        ));
    }
    if let (Some(obj), Value::Object(flags)) = (body.as_object_mut(), fields) {
        for (k, v) in flags {
            let empty = v.is_null()
                || v.as_array().is_some_and(|a| a.is_empty())
                || v == Value::Bool(false);
            if empty {
                continue;
            }
            // A table given by flags (the referral's interpreter) is merged into the form's.
            match (obj.get_mut(&k), v) {
                (Some(Value::Object(form)), Value::Object(flags)) => form.extend(flags),
                (_, v) => {
                    obj.insert(k, v);
                }
            }
        }
    }
    Ok(body)
}

/// Whom, in which case, how urgent and on what legal basis a reply goes.
pub(crate) struct Address {
    pub(crate) to: Vec<String>,
    pub(crate) case: [u8; 16],
    pub(crate) urgency: Urgency,
    /// `--legal-basis` as given; none: the kind's default.
    pub(crate) legal_basis: Option<String>,
    pub(crate) in_reply_to: Option<[u8; 16]>,
    /// The message answered (`--reply-to`), if any.
    pub(crate) replied: Option<silta_client::record::MessageRecord>,
}

/// The address: from the message replied to (`--reply-to`), then the flags over it.
fn address(state: &State, compose: &Compose) -> Result<Address, Failure> {
    let mut address = Address {
        to: Vec::new(),
        case: [0u8; 16],
        urgency: Urgency::Normal,
        legal_basis: None,
        in_reply_to: None,
        replied: None,
    };
    if let Some(r) = &compose.reply_to {
        let record =
            inbox::find(state, r).map_err(|e| Failure::usage(format!("--reply-to {r}: {e}")))?;
        address.to = if record.is_received() {
            vec![record.from.clone()]
        } else {
            record.to.clone()
        };
        address.case = record.case.0;
        address.urgency = parse_urgency(&record.urgency).unwrap_or(Urgency::Normal);
        address.in_reply_to = Some(record.message_id.0);
        address.replied = Some(record);
    }
    if !compose.to.is_empty() {
        address.to = compose.to.clone();
    }
    if address.to.is_empty() {
        return Err(Failure::usage(
            "say whom to send to: --to <role>/<id>, or --reply-to <message>",
        ));
    }
    if let Some(c) = &compose.case {
        address.case = parse_case(c).map_err(|e| Failure::usage(format!("--case: {e}")))?;
    }
    if let Some(u) = &compose.urgency {
        address.urgency =
            parse_urgency(u).map_err(|e| Failure::usage(format!("--urgency: {e}")))?;
    }
    address.legal_basis.clone_from(&compose.legal_basis);
    Ok(address)
}

/// What was sent: one line, or JSON with `--json`.
fn print_sent(kind: MessageKind, address: &Address, id: uuid::Uuid, log_index: u64, json: bool) {
    let case_text = if address.case == [0; 16] {
        String::new()
    } else {
        hex::encode(address.case)
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "message_id": id.to_string(),
                "kind": kind_name(kind),
                "case": case_text,
                "to": address.to,
                "log_index": log_index,
            }))
            .unwrap_or_default()
        );
    } else {
        println!(
            "sent {} {id} to {}{}: accepted at log index {log_index}",
            kind_name(kind),
            address.to.join(", "),
            if case_text.is_empty() {
                String::new()
            } else {
                format!(" (case {case_text})")
            },
        );
    }
}

fn invalid(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure {
        code: EX_DATAERR,
        message: format!("{what}: {e}"),
        hint: Some(t!("hint-fix-form-or-flags")),
    }
}
