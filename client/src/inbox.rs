//! The Assistance System's inbox (`silta inbox`): messages received are opened, verified and kept
//! locally (in the state database, folder mode 0700) but *not* acknowledged until a person does
//! so with `silta inbox ack`: the sender sees "delivered" when the inbox fetched the message and
//! "acknowledged" when someone took it in. Messages this installation sent are kept too, so a
//! case's thread shows both directions.
//!
//! Every opening of content is recorded in the access log ([`crate::access`]) *before* the
//! content is shown.

use std::{collections::BTreeMap, time::Duration};

use silta_proto::pb;

use crate::{
    client::{Client, ClientError, DeliveryStatus, Received},
    form::{legal_basis_name, urgency_name},
    ids::{CaseRef, MessageId},
    payload::kind_name,
    payload::payload_json,
    receive::Acknowledge,
    record::{Direction, MessageRecord, RecordState},
    seal::Draft,
    state::{State, StateError},
    times::{now_rfc3339, rfc3339, rfc3339_unix},
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
    /// For each copy of a message sent from here that became undeliverable or unreadable: what
    /// to do (`silta resend ID`), in plain words.
    pub resendable: Vec<String>,
    /// Messages that could not be processed now (sender and message id named), left for a
    /// later sync; the messages behind them were not held up.
    pub deferred: Vec<String>,
    /// Case claims and access-log shares of the organisation's desks taken in (not in `new`).
    pub internal: usize,
    /// Messages accepted before this desk's keys were published (kept as placeholders
    /// without content: open them at another desk).
    pub not_for_this_desk: Vec<String>,
}

/// Who is reading, and why (for the access log): the library's [`crate::receive::Opener`].
pub type Reader<'a> = crate::receive::Opener<'a>;

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
        .subscribe(client.subscribe_request())
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
            let status = DeliveryStatus::from_event(s);
            if !status.what_to_do.is_empty() {
                summary.resendable.push(status.what_to_do);
            }
            client.ack_status(item.seq).await?;
            summary.statuses += 1;
            continue;
        }
        let mut fresh = None;
        // The library logs the opening (as `reader`) before this keeps it.
        let mut keep = |delivered: &pb::DeliveredEnvelope,
                        opened: &crate::seal::Opened|
         -> Result<(), String> {
            let mut record = MessageRecord::opened(delivered, opened);
            record.direction = Some(Direction::Received);
            record.state = Some(RecordState::New);
            record.received_at = Some(now_rfc3339());
            state
                .put_message(&record.message_id, &record)
                .map_err(|e| e.to_string())?;
            fresh = Some(record.message_id.to_string());
            Ok(())
        };
        match client
            .process_opts(item, reader, &mut keep, Acknowledge::ByPerson)
            .await?
        {
            // Case claims and access-log shares are the organisation's own bookkeeping: taken
            // in at once (no person acknowledges them), and not counted as new messages.
            // One of those kinds that does not check out (claims::check_internal) is left for
            // a person, as a new item.
            Received::Message { opened, .. }
                if silta_proto::policy::is_internal(
                    pb::MessageKind::try_from(opened.signed.kind).unwrap_or_default(),
                ) =>
            {
                if settle_internal(client, &opened.signed.message_id, reader.who).await? {
                    summary.internal += 1;
                } else {
                    summary.new.extend(fresh);
                }
            }
            // Our own claim or share back (every desk of the principal gets it, this one too),
            // or one whose acknowledgement did not reach the relay before.
            Received::Duplicate { message_id } => {
                let _internal = settle_internal(client, &message_id, reader.who).await?;
            }
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
            Received::NotForThisDesk { delivered } => summary.not_for_this_desk.push(format!(
                "from {}, message {}: {}",
                delivered.sender,
                delivered
                    .envelope
                    .as_ref()
                    .and_then(|e| uuid::Uuid::from_slice(&e.message_id).ok())
                    .map(|u| u.to_string())
                    .unwrap_or_default(),
                crate::record::SEALED_BEFORE_NOTE
            )),
            Received::Status(_) => {}
        }
    }
    Ok(summary)
}

/// Takes in a kept principal-internal message (claim, share) at the relay: a received one is
/// acknowledged and marked so; one this desk sent is confirmed with the digest its receipt names.
/// Any other kept message is left for a person.
async fn settle_internal(client: &Client, id: &[u8], who: &str) -> Result<bool, ClientError> {
    let Some(record) = client.state().message(id)? else {
        return Ok(false);
    };
    if !crate::claims::is_internal(&record) {
        return Ok(false);
    }
    if record.is_received() {
        if record.state == Some(RecordState::New) {
            acknowledge(client, &record, who)
                .await
                .map_err(ClientError::Store)?;
        }
    } else {
        client
            .acknowledge_stored(record.message_id.as_bytes(), &record.digest())
            .await?;
    }
    Ok(true)
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
    let next = rfc3339_unix((retry.next_at_ms / 1000) as i64);
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
    let mut record = match state.message(&s.message_id) {
        Ok(Some(record)) => record,
        Ok(None) => return Ok(()),
        // Left as it is (the status is not lost: the relay's log has it); the sync goes on.
        Err(e) if state.has_message(&s.message_id)? => {
            tracing::error!(error = %e, "a status change of a sent message could not be recorded");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let older = record
        .recipients
        .as_ref()
        .and_then(|m| m.get(&s.recipient))
        .is_some_and(|r| r.log_index > s.log_index);
    if !older {
        // An acknowledgement counts only if the recipient's device signed it.
        let ack = if s.state == pb::DeliveryState::Acknowledged as i32 {
            let digest = record
                .receipt
                .as_ref()
                .and_then(|r| r["ciphertext_sha256"].as_str())
                .and_then(|d| hex::decode(d).ok())
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
        record
            .recipients
            .get_or_insert_with(BTreeMap::new)
            .insert(s.recipient.clone(), DeliveryStatus::checked(s, ack));
        state.put_message(&record.message_id, &record)?;
    }
    Ok(())
}

/// Keeps a copy of a message this installation sent.
pub(crate) fn record_sent(
    state: &State,
    draft: &Draft,
    sender: &str,
    receipt: &pb::Receipt,
) -> Result<(), StateError> {
    let record = MessageRecord {
        accepted_at: rfc3339(receipt.accepted_at.as_ref()),
        acknowledged_at: None,
        acknowledged_by: None,
        case: CaseRef(draft.case_ref),
        ciphertext_sha256: None,
        created_at: now_rfc3339(),
        direction: Some(Direction::Sent),
        from: sender.to_owned(),
        from_device: None,
        handled_elsewhere: None,
        in_reply_to: draft.in_reply_to.map(MessageId),
        kind: kind_name(draft.kind).to_owned(),
        legal_basis: legal_basis_name(draft.legal_basis).to_owned(),
        log_index: receipt.log_index,
        message_id: MessageId(draft.message_id),
        payload: payload_json(&draft.payload),
        receipt: Some(crate::audit::receipt_json(receipt)),
        received_at: None,
        recipients: Some(BTreeMap::new()),
        resend_of: None,
        resent_as: Vec::new(),
        sealed_before_device: false,
        sender_key: None,
        state: Some(RecordState::Sent),
        to: draft.recipients.iter().map(|p| p.to_string()).collect(),
        urgency: urgency_name(draft.urgency).to_owned(),
    };
    state.put_message(&record.message_id, &record)
}

/// Links a re-sending to its original in the kept copies: the new message's copy names the
/// original (`resend_of`), the original's copy lists the re-sending (`resent_as`).
pub(crate) fn record_resend(
    state: &State,
    of: &[u8; 16],
    draft: &Draft,
    receipt: &pb::Receipt,
) -> Result<(), StateError> {
    if let Some(mut record) = state.message(&draft.message_id)? {
        record.resend_of = Some(MessageId(*of));
        state.put_message(&record.message_id, &record)?;
    }
    if let Some(mut original) = state.message(of)? {
        let id = MessageId(draft.message_id);
        if !original.resent_as.iter().any(|r| r.message_id == id) {
            original.resent_as.push(crate::record::Resent {
                message_id: id,
                to: draft.recipients.iter().map(|p| p.to_string()).collect(),
                at: rfc3339(receipt.accepted_at.as_ref()),
            });
            state.put_message(&original.message_id, &original)?;
        }
    }
    Ok(())
}

fn urgency_rank(r: &MessageRecord) -> u8 {
    match r.urgency.as_str() {
        "emergency" => 0,
        "urgent" => 1,
        _ => 2,
    }
}

/// Received messages: first the unacknowledged urgent and emergency messages of cases nobody
/// holds ([`crate::claims`]; a message without a case is nobody's), emergency before urgent,
/// oldest first; then the rest, most urgent first, then oldest first. `only_new`: not yet
/// acknowledged (here, nor by another desk whose signed acknowledgement verified). Case claims
/// and access-log shares are bookkeeping, not listed.
pub fn list(state: &State, only_new: bool) -> Result<Vec<MessageRecord>, StateError> {
    let handled = |r: &MessageRecord| r.handled_elsewhere.as_ref().is_some_and(|h| h.verified);
    let all = state.messages()?;
    let held = crate::claims::holders(&all);
    let mut v: Vec<MessageRecord> = all
        .into_iter()
        .filter(MessageRecord::is_received)
        .filter(|r| !crate::claims::is_internal(r))
        .filter(|r| !only_new || (r.state == Some(RecordState::New) && !handled(r)))
        .collect();
    let waiting = |r: &MessageRecord| {
        let first = r.state == Some(RecordState::New)
            && !handled(r)
            && urgency_rank(r) < 2
            && !held.contains_key(&r.case);
        u8::from(!first)
    };
    v.sort_by(|a, b| {
        waiting(a)
            .cmp(&waiting(b))
            .then_with(|| urgency_rank(a).cmp(&urgency_rank(b)))
            .then_with(|| a.received_at.cmp(&b.received_at))
            .then_with(|| a.message_id.to_string().cmp(&b.message_id.to_string()))
    });
    Ok(v)
}

/// A kept message by its id or a unique prefix of it (at least 8 characters).
pub fn find(state: &State, id: &str) -> Result<MessageRecord, String> {
    let id = id.trim().to_ascii_lowercase();
    if id.len() < 8 {
        return Err(crate::i18n::t(
            "inbox-id-too-short",
            &[("id", format!("{id:?}").into())],
        ));
    }
    let matches: Vec<MessageRecord> = state
        .messages()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|r| r.message_id.to_string().starts_with(&id))
        .collect();
    match matches.len() {
        0 => Err(crate::i18n::t(
            "inbox-no-such-message",
            &[("id", id.into())],
        )),
        1 => Ok(matches.into_iter().next().expect("one")),
        n => Err(crate::i18n::t(
            "inbox-id-ambiguous",
            &[("id", id.into()), ("count", n.into())],
        )),
    }
}

/// A case's messages (both directions), in the order they were written.
pub fn thread(state: &State, case: &[u8; 16]) -> Result<Vec<MessageRecord>, StateError> {
    let case = CaseRef(*case);
    let mut v: Vec<MessageRecord> = state
        .messages()?
        .into_iter()
        .filter(|r| r.case == case)
        .collect();
    v.sort_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then_with(|| a.message_id.to_string().cmp(&b.message_id.to_string()))
    });
    Ok(v)
}

/// The ids of a thread's messages and of the messages they answer (a referral made before the
/// case reference existed): what an access report of the case must cover.
pub fn thread_ids(records: &[MessageRecord]) -> Vec<String> {
    let mut ids = Vec::new();
    for r in records {
        ids.push(r.message_id.to_string());
        ids.extend(r.in_reply_to.map(|i| i.to_string()));
    }
    ids
}

/// Acknowledges a received message to the relay (the sender sees "acknowledged") and marks it.
///
/// If the relay refuses because it expired its copy before this acknowledgement (urgent copies
/// expire sooner), the message can never be acknowledged: it is marked
/// [`RecordState::ExpiredAtRelay`] (final, so retention deletes it by its rules) and returned
/// with that state. The sender was told it EXPIRED and may send it again: whoever sees that
/// state should call or answer the sender. Asking again later returns it as it is.
pub async fn acknowledge(
    client: &Client,
    record: &MessageRecord,
    who: &str,
) -> Result<MessageRecord, String> {
    if !record.is_received() {
        return Err("only received messages are acknowledged".into());
    }
    let mut record = record.clone();
    if matches!(
        record.state,
        Some(RecordState::Acknowledged | RecordState::ExpiredAtRelay)
    ) {
        return Ok(record);
    }
    // Another desk answered it, as this desk verified: nothing is sent from here (an
    // acknowledgement from this desk would change nothing at the relay and look as if this desk
    // had handled it). An unverified claim (the relay's word only) does not stop a person from
    // trying: the relay then names the desk that decided again.
    if record
        .handled_elsewhere
        .as_ref()
        .is_some_and(|h| h.verified)
    {
        return Ok(record);
    }
    if record.sealed_before_device {
        return Err(format!(
            "message {} was {}; it is not acknowledged from here",
            record.message_id,
            crate::record::SEALED_BEFORE_NOTE
        ));
    }
    match client
        .acknowledge_stored(record.message_id.as_bytes(), &record.digest())
        .await
    {
        // Another desk answered first (nearly at the same time): not acknowledged by this
        // desk's user. The relay's word for now; the next sync brings the signed answer.
        Ok(answer) if client.decided_elsewhere(&answer).is_some() => {
            record.handled_elsewhere = Some(crate::record::HandledElsewhere {
                at: String::new(),
                device: crate::text::printable_line(&answer.decided_by),
                key: None,
                log_index: answer.log_index,
                problem: Some("not yet verified: run inbox sync".into()),
                reason: None,
                state: "handled".into(),
                verified: false,
            });
        }
        Ok(_) => {
            record.state = Some(RecordState::Acknowledged);
            record.acknowledged_at = Some(now_rfc3339());
            record.acknowledged_by = Some(who.to_owned());
        }
        Err(e) if expired_at_relay(&e) => record.state = Some(RecordState::ExpiredAtRelay),
        Err(e) => return Err(e.to_string()),
    }
    client
        .state()
        .put_message(&record.message_id, &record)
        .map_err(|e| e.to_string())?;
    Ok(record)
}

/// The relay's refusal of an acknowledgement because its copy expired (relay
/// `mailbox.rs`: FAILED_PRECONDITION, "... expired before it was answered ...").
fn expired_at_relay(e: &ClientError) -> bool {
    matches!(e, ClientError::Relay(s)
        if s.code() == tonic::Code::FailedPrecondition && s.message().contains(" expired before it was answered"))
}

/// Message-id bytes of a record.
pub fn id_bytes(record: &MessageRecord) -> Vec<u8> {
    record.message_id.as_bytes().to_vec()
}

/// Case bytes of a record (empty without a case).
pub fn case_bytes(record: &MessageRecord) -> Vec<u8> {
    record.case_bytes()
}
