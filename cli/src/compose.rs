//! The reply commands (`request-info`, `decision`, `meeting ...`, `assessment`, `agreement`,
//! `consultation`, `referral`, `info-response`): a form file and/or flags, sealed and sent.

use serde_json::{Value, json};
use silta_client::{
    ClientConfig,
    access::{Access, AccessLog, Action},
    client::Client,
    form::{parse_case, parse_legal_basis, parse_urgency},
    inbox,
    payload::{kind_name, parse_form_text, read_form_value},
    seal::Draft,
};
use silta_proto::pb::{LegalBasis, MessageKind, Urgency};

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

/// Seals and sends a message of `kind` built from `compose.form` overlaid with `fields`.
pub(crate) async fn send(
    config: &ClientConfig,
    kind: MessageKind,
    compose: &Compose,
    fields: Value,
) -> Result<(), Failure> {
    // The body first: a bad form is reported before anything is connected.
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
            if !empty {
                obj.insert(k, v);
            }
        }
    }
    let payload = read_form_value(kind, body).map_err(|e| invalid(&kind_name(kind), e))?;

    let client = Client::start(config).await?;
    let state = client.state();
    let mut to = Vec::new();
    let mut case = [0u8; 16];
    let mut urgency = Urgency::Normal;
    let mut in_reply_to = None;
    if let Some(r) = &compose.reply_to {
        let record =
            inbox::find(state, r).map_err(|e| Failure::usage(format!("--reply-to {r}: {e}")))?;
        to = if record.is_received() {
            vec![record.from.clone()]
        } else {
            record.to.clone()
        };
        case = record.case.0;
        urgency = parse_urgency(&record.urgency).unwrap_or(Urgency::Normal);
        in_reply_to = Some(record.message_id.0);
    }
    if !compose.to.is_empty() {
        to = compose.to.clone();
    }
    if to.is_empty() {
        return Err(Failure::usage(
            "say whom to send to: --to <role>/<id>, or --reply-to <message>",
        ));
    }
    if let Some(c) = &compose.case {
        case = parse_case(c).map_err(|e| Failure::usage(format!("--case: {e}")))?;
    }
    if let Some(u) = &compose.urgency {
        urgency = parse_urgency(u).map_err(|e| Failure::usage(format!("--urgency: {e}")))?;
    }
    let legal_basis = match &compose.legal_basis {
        Some(b) => {
            parse_legal_basis(b).map_err(|e| Failure::usage(format!("--legal-basis: {e}")))?
        }
        None => LegalBasis::Consent,
    };
    let recipients = to
        .iter()
        .map(|r| {
            r.parse()
                .map_err(|e| Failure::usage(format!("--to {r}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut draft = Draft::new(kind, case, recipients, payload);
    draft.urgency = urgency;
    draft.legal_basis = legal_basis;
    draft.in_reply_to = in_reply_to;
    // The same command run again after a failed or interrupted attempt (no answer, relay
    // away, mailbox full) sends the very same sealed message, so the relay answers it
    // idempotently instead of accepting a second copy under a new id.
    let content_key = {
        use prost::Message as _;
        let mut k = format!(
            "{}\n{}\n{}\n{:?}\n{:?}\n{:?}\n",
            kind_name(kind),
            to.join(","),
            hex::encode(case),
            urgency,
            legal_basis,
            in_reply_to.map(hex::encode)
        )
        .into_bytes();
        k.extend(draft.payload.encode_to_vec());
        silta_client::seal::sha256(&k).to_vec()
    };
    // Kept as 8 bytes of Unix time, then the envelope; reused for an hour at most (after that
    // the recipients' keys are looked up and the message sealed again).
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let kept_recently = state.outgoing(&content_key)?.filter(|v| {
        v.len() > 8
            && v[..8]
                .try_into()
                .map(i64::from_be_bytes)
                .is_ok_and(|t| now - t < 3600)
    });
    let envelope = match kept_recently {
        Some(bytes) => {
            use prost::Message as _;
            let envelope = silta_proto::pb::Envelope::decode(&bytes[8..])
                .map_err(|e| Failure::failed(format!("a kept unfinished message: {e}")))?;
            draft.message_id = envelope
                .message_id
                .clone()
                .try_into()
                .map_err(|_| Failure::failed("a kept unfinished message has a bad id"))?;
            eprintln!(
                "sending again the same message {} (an earlier attempt did not finish)",
                uuid::Uuid::from_bytes(draft.message_id)
            );
            envelope
        }
        None => {
            use prost::Message as _;
            let envelope = client.seal(&draft).await?;
            let mut kept = now.to_be_bytes().to_vec();
            kept.extend(envelope.encode_to_vec());
            state.put_outgoing(&content_key, &kept)?;
            envelope
        }
    };
    crate::print_key_changes(&client);
    // Once the relay accepted the message it was disclosed, whatever happens next: record
    // that first, then say plainly what went wrong after it.
    let (receipt, problem) = match client.send_sealed(envelope).await {
        Ok(r) => (r, None),
        Err(silta_client::client::ClientError::Receipt(p)) => (Default::default(), Some(p)),
        Err(e) => {
            // A definite refusal will not change by sending the same bytes again.
            if let silta_client::client::ClientError::Relay(status) = &e
                && matches!(
                    status.code(),
                    tonic::Code::InvalidArgument
                        | tonic::Code::NotFound
                        | tonic::Code::PermissionDenied
                        | tonic::Code::AlreadyExists
                        | tonic::Code::FailedPrecondition
                )
            {
                let _ = state.remove_outgoing(&content_key);
            }
            return Err(e.into());
        }
    };
    let me = client.principal().to_string();
    let logged = AccessLog::in_state_dir(&config.state_dir).record(&Access {
        who: &silta_client::access::current_user(),
        principal: &me,
        action: Action::Disclosed,
        case: &draft.case_ref,
        messages: &[draft.message_id.to_vec()],
        purpose: &format!("sending {}", kind_name(kind)),
        recipients: &to,
    });
    let kept = inbox::record_sent(state, &draft, &me, &receipt);
    let id = uuid::Uuid::from_bytes(draft.message_id);
    let after = |what: String| Failure {
        code: 1,
        message: format!(
            "{} {id} WAS SENT (the relay accepted it), but {what}",
            kind_name(kind)
        ),
        hint: Some("do not send it again; keep this output and report it".into()),
    };
    if let Some(p) = problem {
        return Err(after(format!("its receipt does not check out: {p}")));
    }
    logged.map_err(|e| after(format!("the access log could not record it: {e}")))?;
    kept.map_err(|e| after(format!("the local copy could not be kept: {e}")))?;
    // Only now, with the disclosure logged and the copy kept: a crash before this point makes
    // a rerun send these same bytes again, which the relay answers with the same receipt.
    state
        .remove_outgoing(&content_key)
        .map_err(|e| after(format!("{e}")))?;
    let case_text = if case == [0; 16] {
        String::new()
    } else {
        hex::encode(case)
    };
    if compose.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "message_id": id.to_string(),
                "kind": kind_name(kind),
                "case": case_text,
                "to": to,
                "log_index": receipt.log_index,
            }))
            .unwrap_or_default()
        );
    } else {
        println!(
            "sent {} {id} to {}{}: accepted at log index {}",
            kind_name(kind),
            to.join(", "),
            if case_text.is_empty() {
                String::new()
            } else {
                format!(" (case {case_text})")
            },
            receipt.log_index
        );
    }
    Ok(())
}

fn invalid(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure {
        code: EX_DATAERR,
        message: format!("{what}: {e}"),
        hint: Some("nothing was sent; fix the form or flags and try again".into()),
    }
}
