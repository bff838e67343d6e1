//! The Assistance System's inbox (`silta inbox`): messages received are opened, verified and kept
//! locally (in the state database, folder mode 0700) but *not* acknowledged until a person does
//! so with `silta inbox ack`: the sender sees "delivered" when the inbox fetched the message and
//! "acknowledged" when someone took it in. Messages this installation sent are kept too, so a
//! case's thread shows both directions.
//!
//! Every opening of content is recorded in the access log ([`crate::access`]) *before* the
//! content is shown.

use std::time::Duration;

use serde_json::Value;
use silta_proto::pb;

use crate::{
    access::{Access, AccessLog, Action},
    client::{Client, ClientError, Received, message_record, now_rfc3339, payload_json, rfc3339},
    form::{legal_basis_name, urgency_name},
    payload::kind_name,
    seal::Draft,
    state::{State, StateError},
};

/// What a sync did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncSummary {
    /// Messages opened, verified and kept for the first time.
    pub new: Vec<String>,
    /// Messages refused (the relay and the sender were told why).
    pub rejected: Vec<String>,
    /// Status changes of messages this installation sent.
    pub statuses: usize,
    /// Messages that could not be processed now (sender and message id named), left for a
    /// later sync; the messages behind them were not held up.
    pub deferred: Vec<String>,
}

/// Who is reading, and why (for the access log).
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    /// The access log.
    pub log: &'a AccessLog,
    /// The person or process.
    pub who: &'a str,
    /// The installation's principal.
    pub principal: &'a str,
    /// Why.
    pub purpose: &'a str,
}

impl Reader<'_> {
    /// Records an access to `case`'s `messages`.
    pub fn record(
        &self,
        action: Action,
        case: &[u8],
        messages: &[Vec<u8>],
    ) -> Result<(), crate::access::AccessLogError> {
        self.log
            .record(&Access {
                who: self.who,
                principal: self.principal,
                action,
                case,
                messages,
                purpose: self.purpose,
                recipients: &[],
            })
            .map(|_| ())
    }
}

/// Fetches what is waiting: opens and keeps new messages (unacknowledged), records status
/// changes of sent messages. Stops after `idle` without a new item.
pub async fn sync(
    client: &Client,
    idle: Duration,
    reader: &Reader<'_>,
) -> Result<SyncSummary, ClientError> {
    let mut stream = client
        .connection()
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await?
        .into_inner();
    let mut summary = SyncSummary::default();
    let state = client.state();
    loop {
        let item = match tokio::time::timeout(idle, stream.message()).await {
            Err(_) | Ok(Ok(None)) => break,
            Ok(Err(status)) => return Err(status.into()),
            Ok(Ok(Some(item))) => item,
        };
        if let Some(pb::mailbox_item::Item::Status(s)) = &item.item {
            record_status(client, s).await?;
            client.ack_status(item.seq).await?;
            summary.statuses += 1;
            continue;
        }
        let mut fresh = None;
        let mut keep = |delivered: &pb::DeliveredEnvelope,
                        opened: &crate::seal::Opened|
         -> Result<(), String> {
            let id = &opened.signed.message_id;
            if state.message(id).map_err(|e| e.to_string())?.is_some() {
                return Ok(()); // kept before, waiting for a person's acknowledgement
            }
            reader
                .record(
                    Action::Received,
                    &opened.signed.case_ref,
                    std::slice::from_ref(id),
                )
                .map_err(|e| e.to_string())?;
            let mut record = message_record(delivered, opened);
            record["direction"] = "received".into();
            record["state"] = "new".into();
            record["received_at"] = now_rfc3339().into();
            state.put_message(id, &record).map_err(|e| e.to_string())?;
            fresh = Some(record["message_id"].as_str().unwrap_or_default().to_owned());
            Ok(())
        };
        match client.process_opts(item, &mut keep, false).await? {
            Received::Message { .. } => summary.new.extend(fresh),
            Received::Rejected {
                delivered,
                rejected,
            } => summary.rejected.push(format!(
                "from {}: {} ({})",
                delivered.sender,
                rejected
                    .reason
                    .as_str_name()
                    .trim_start_matches("REJECTION_REASON_"),
                rejected.detail
            )),
            Received::Deferred {
                delivered,
                retry,
                tried,
            } => summary
                .deferred
                .push(deferred_line(client, &delivered, &retry, tried)),
            Received::Duplicate { .. } | Received::Status(_) => {}
        }
    }
    Ok(summary)
}

/// "from centre/x, message 0190...: <why> (try 2 of 8; next after <time>)".
fn deferred_line(
    client: &Client,
    delivered: &pb::DeliveredEnvelope,
    retry: &crate::state::Retry,
    tried: bool,
) -> String {
    let id = delivered
        .envelope
        .as_ref()
        .and_then(|e| uuid::Uuid::from_slice(&e.message_id).ok())
        .map(|u| u.to_string())
        .unwrap_or_default();
    let next = rfc3339(Some(&prost_types::Timestamp {
        seconds: (retry.next_at_ms / 1000) as i64,
        nanos: 0,
    }));
    let max = client.receive_config().max_attempts;
    let when = if tried {
        format!(
            "try {} of {max} failed; next try after {next}",
            retry.attempts
        )
    } else {
        format!(
            "{} of {max} tries so far; next try after {next}",
            retry.attempts
        )
    };
    format!(
        "from {}, message {id}: {} ({when})",
        delivered.sender, retry.error
    )
}

async fn record_status(client: &Client, s: &pb::StatusEvent) -> Result<(), ClientError> {
    let state = client.state();
    let Some(mut record) = state.message(&s.message_id)? else {
        return Ok(());
    };
    let older = record["recipients"][&s.recipient]["log_index"]
        .as_u64()
        .is_some_and(|i| i > s.log_index);
    if !older {
        // An acknowledgement counts only if the recipient's device signed it.
        let ack = if s.state == pb::DeliveryState::Acknowledged as i32 {
            let digest = hex::decode(
                record["receipt"]["ciphertext_sha256"]
                    .as_str()
                    .unwrap_or_default(),
            )
            .unwrap_or_default();
            // A passing failure to fetch the keys ends this sync; the status comes again.
            let checked = client.check_ack(s, &digest).await?;
            if let Err(why) = &checked {
                tracing::error!(recipient = %s.recipient, problem = %why, "the relay reports an acknowledgement that does NOT verify");
            }
            Some(checked)
        } else {
            None
        };
        record["recipients"][&s.recipient] =
            serde_json::to_value(crate::client::DeliveryStatus::checked(s, ack))
                .expect("json serialises");
        state.put_message(&s.message_id, &record)?;
    }
    Ok(())
}

/// Keeps a copy of a message this installation sent.
pub fn record_sent(
    state: &State,
    draft: &Draft,
    sender: &str,
    receipt: &pb::Receipt,
) -> Result<(), StateError> {
    let case = if draft.case_ref == [0; 16] {
        String::new()
    } else {
        hex::encode(draft.case_ref)
    };
    let record = serde_json::json!({
        "message_id": uuid::Uuid::from_bytes(draft.message_id).to_string(),
        "case": case,
        "kind": kind_name(draft.kind),
        "from": sender,
        "to": draft.recipients.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        "urgency": urgency_name(draft.urgency),
        "legal_basis": legal_basis_name(draft.legal_basis),
        "in_reply_to": draft.in_reply_to.map(|r| uuid::Uuid::from_bytes(r).to_string()).unwrap_or_default(),
        "created_at": now_rfc3339(),
        "accepted_at": rfc3339(receipt.accepted_at.as_ref()),
        "log_index": receipt.log_index,
        "receipt": crate::audit::receipt_json(receipt),
        "direction": "sent",
        "state": "sent",
        "recipients": {},
        "payload": payload_json(&draft.payload),
    });
    state.put_message(&draft.message_id, &record)
}

fn urgency_rank(r: &Value) -> u8 {
    match r["urgency"].as_str() {
        Some("emergency") => 0,
        Some("urgent") => 1,
        _ => 2,
    }
}

/// Received messages, most urgent first, then oldest first. `only_new`: not yet acknowledged.
pub fn list(state: &State, only_new: bool) -> Result<Vec<Value>, StateError> {
    let mut v: Vec<Value> = state
        .messages()?
        .into_iter()
        .filter(|r| r["direction"] == "received")
        .filter(|r| !only_new || r["state"] == "new")
        .collect();
    v.sort_by(|a, b| {
        urgency_rank(a)
            .cmp(&urgency_rank(b))
            .then_with(|| a["received_at"].as_str().cmp(&b["received_at"].as_str()))
            .then_with(|| a["message_id"].as_str().cmp(&b["message_id"].as_str()))
    });
    Ok(v)
}

/// A kept message by its id or a unique prefix of it (at least 8 characters).
pub fn find(state: &State, id: &str) -> Result<Value, String> {
    let id = id.trim().to_ascii_lowercase();
    if id.len() < 8 {
        return Err(format!(
            "{id:?}: give at least 8 characters of the message id"
        ));
    }
    let matches: Vec<Value> = state
        .messages()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|r| r["message_id"].as_str().is_some_and(|m| m.starts_with(&id)))
        .collect();
    match matches.len() {
        0 => Err(format!("no message {id} here (run `silta inbox list`)")),
        1 => Ok(matches.into_iter().next().expect("one")),
        n => Err(format!("{id} matches {n} messages; give more of the id")),
    }
}

/// A case's messages (both directions), in the order they were written.
pub fn thread(state: &State, case: &[u8; 16]) -> Result<Vec<Value>, StateError> {
    let case = hex::encode(case);
    let mut v: Vec<Value> = state
        .messages()?
        .into_iter()
        .filter(|r| r["case"] == case.as_str())
        .collect();
    v.sort_by(|a, b| {
        a["created_at"]
            .as_str()
            .cmp(&b["created_at"].as_str())
            .then_with(|| a["message_id"].as_str().cmp(&b["message_id"].as_str()))
    });
    Ok(v)
}

/// The ids of a thread's messages and of the messages they answer (a referral made before the
/// case reference existed): what an access report of the case must cover.
pub fn thread_ids(records: &[Value]) -> Vec<String> {
    let mut ids = Vec::new();
    for r in records {
        for k in ["message_id", "in_reply_to"] {
            if let Some(id) = r[k].as_str().filter(|s| !s.is_empty()) {
                ids.push(id.to_owned());
            }
        }
    }
    ids
}

/// Acknowledges a received message to the relay (the sender sees "acknowledged") and marks it.
pub async fn acknowledge(client: &Client, record: &Value, who: &str) -> Result<Value, String> {
    if record["direction"] != "received" {
        return Err("only received messages are acknowledged".into());
    }
    let mut record = record.clone();
    if record["state"] == "acknowledged" {
        return Ok(record);
    }
    let id = uuid::Uuid::parse_str(record["message_id"].as_str().unwrap_or_default())
        .map_err(|e| e.to_string())?;
    let digest = hex::decode(record["ciphertext_sha256"].as_str().unwrap_or_default())
        .map_err(|e| e.to_string())?;
    client
        .acknowledge_stored(id.as_bytes(), &digest)
        .await
        .map_err(|e| e.to_string())?;
    record["state"] = "acknowledged".into();
    record["acknowledged_at"] = now_rfc3339().into();
    record["acknowledged_by"] = who.into();
    client
        .state()
        .put_message(id.as_bytes(), &record)
        .map_err(|e| e.to_string())?;
    Ok(record)
}

/// Message-id bytes of a record.
pub fn id_bytes(record: &Value) -> Vec<u8> {
    uuid::Uuid::parse_str(record["message_id"].as_str().unwrap_or_default())
        .map(|u| u.as_bytes().to_vec())
        .unwrap_or_default()
}

/// Case bytes of a record (empty without a case).
pub fn case_bytes(record: &Value) -> Vec<u8> {
    hex::decode(record["case"].as_str().unwrap_or_default()).unwrap_or_default()
}
