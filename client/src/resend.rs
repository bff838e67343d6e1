//! Re-sending a message whose copy for some recipients can no longer be opened (`silta resend
//! ID`): the relay reported it UNDELIVERABLE (the recipient's devices were retired in an operator
//! handover, or the recipient was disabled), or the recipient REJECTED it because none of its
//! devices could decrypt it (`cannot_decrypt`).
//!
//! The same content is sealed again, to those recipients only (never to one whose copy was
//! delivered or acknowledged), to their *current* keys (looked up afresh; the key pins apply and a
//! changed key is reported like on any send), under a new message id whose envelope names the
//! original (`Envelope.resend_of`). It goes through the one send path ([`Outbox::submit`]) under
//! [`Key::Resend`], so the disclosure is logged like any send and running the same resend again
//! gives the first one's receipt instead of a second copy.
//!
//! A copy that became undeliverable because the case moved (`case_moved`) is not re-sent: the
//! recipient left the case; write to the centre it moved to instead.

use std::collections::BTreeMap;

use silta_certs::Principal;
use silta_proto::pb;

use crate::{
    client::{Client, ClientError},
    form::{parse_legal_basis, parse_urgency},
    ids::MessageId,
    outbox::{Disclosure, Key, Outbox, Sent},
    payload::{parse_kind, payload_from_json},
    record::{DeliveryStatus, Direction, MessageRecord},
    seal::{Draft, SealError},
};

/// Why a message cannot be re-sent. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    /// No message with this id was sent from this installation.
    #[error("{0}")]
    Unknown(String),
    /// No copy of it is undeliverable or unreadable (or each was re-sent already).
    #[error("{0}")]
    NothingToResend(String),
    /// A recipient has no current keys to seal to.
    #[error("{0}")]
    NoKeys(String),
    /// Its content is no longer kept here (retention deleted it).
    #[error("{0}")]
    ContentGone(String),
    /// Talking to the relay, or local state.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// A message sent from here, as kept: what a re-sending needs.
#[derive(Debug, Clone)]
pub struct Original {
    /// Its id.
    pub message_id: [u8; 16],
    /// Its content and envelope facts, addressed to all its recipients (the id is not used).
    pub draft: Draft,
    /// Each recipient's delivery state as this installation heard it (used when the relay no
    /// longer has the message's metadata).
    pub known: BTreeMap<String, DeliveryStatus>,
    /// Earlier re-sendings: (new message id, recipients).
    pub resent: Vec<(MessageId, Vec<String>)>,
}

impl Original {
    /// From the inbox's copy of a message sent from here.
    pub fn from_record(record: &MessageRecord) -> Result<Self, ResendError> {
        let id = record.message_id;
        if record.direction != Some(Direction::Sent) {
            return Err(ResendError::Unknown(format!(
                "message {id} was received here, not sent from here: only its sender can re-send it"
            )));
        }
        let bad = |what: String| {
            ResendError::ContentGone(format!(
                "the kept copy of message {id} cannot be read back ({what}); send the content again with `silta send`"
            ))
        };
        let kind = parse_kind(&record.kind).map_err(|e| bad(e.to_string()))?;
        if record.payload.is_null() {
            return Err(ResendError::ContentGone(format!(
                "the content of message {id} is no longer kept here"
            )));
        }
        let payload = payload_from_json(kind, &record.payload).map_err(|e| bad(e.to_string()))?;
        let recipients = record
            .to
            .iter()
            .map(|p| p.parse::<Principal>().map_err(|e| bad(format!("{p}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let mut draft = Draft::new(kind, record.case.0, recipients, payload);
        draft.urgency = parse_urgency(&record.urgency).map_err(|e| bad(e.to_string()))?;
        draft.legal_basis =
            parse_legal_basis(&record.legal_basis).map_err(|e| bad(e.to_string()))?;
        draft.in_reply_to = record.in_reply_to.map(|m| m.0);
        Ok(Original {
            message_id: id.0,
            draft,
            known: record.recipients.clone().unwrap_or_default(),
            resent: record
                .resent_as
                .iter()
                .map(|r| (r.message_id, r.to.clone()))
                .collect(),
        })
    }
}

/// A re-sending the relay accepted.
#[derive(Debug, Clone)]
pub struct Resent {
    /// The original message.
    pub original: [u8; 16],
    /// The recipients it was re-sealed to.
    pub to: Vec<String>,
    /// Each of those copies' state before (why it was re-sent).
    pub why: BTreeMap<String, DeliveryStatus>,
    /// The new message (`again`: this resend was made before; its receipt is the first one's).
    pub sent: Sent,
}

/// A recipient's state as the relay's `Status` answers it, in the words of status events.
pub fn status_of(message_id: &[u8], r: &pb::RecipientStatus) -> DeliveryStatus {
    DeliveryStatus::from_event(&pb::StatusEvent {
        message_id: message_id.to_vec(),
        recipient: r.recipient.clone(),
        state: r.state,
        time: r.updated_at,
        rejection_reason: r.rejection_reason,
        detail: r.detail.clone(),
        undeliverable_reason: r.undeliverable_reason,
        ..Default::default()
    })
}

/// Each recipient's copy of `original` now: the relay's answer, or what this installation heard
/// if the relay no longer has the message's metadata.
pub async fn copies(
    client: &Client,
    original: &Original,
) -> Result<BTreeMap<String, DeliveryStatus>, ClientError> {
    Ok(match client.status(&original.message_id).await? {
        Some(resp) => resp
            .recipients
            .iter()
            .map(|r| (r.recipient.clone(), status_of(&original.message_id, r)))
            .collect(),
        None => original.known.clone(),
    })
}

/// "centre/a: acknowledged; centre/b: delivered".
fn describe(copies: &BTreeMap<String, DeliveryStatus>) -> String {
    if copies.is_empty() {
        return "no recipient has reported anything yet".into();
    }
    copies
        .iter()
        .map(|(r, s)| {
            if s.reason.is_empty() {
                format!("{r}: {}", s.state)
            } else {
                format!("{r}: {} ({})", s.state, s.reason)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Which recipients to re-send to: those whose copy is re-sendable ([`DeliveryStatus::resendable`]),
/// sorted.
pub fn resendable(copies: &BTreeMap<String, DeliveryStatus>) -> Vec<String> {
    copies
        .iter()
        .filter(|(_, s)| s.resendable())
        .map(|(r, _)| r.clone())
        .collect()
}

/// Re-sends `original` to the recipients whose copy failed (see the module documentation).
pub async fn resend(
    client: &Client,
    outbox: &Outbox<'_>,
    original: &Original,
    disclosure: &Disclosure,
) -> Result<Resent, ResendError> {
    let id = MessageId(original.message_id);
    let copies = copies(client, original).await?;
    let failed = resendable(&copies);
    if failed.is_empty() {
        return Err(ResendError::NothingToResend(format!(
            "no copy of message {id} is undeliverable or unreadable, so there is nothing to re-send ({})",
            describe(&copies)
        )));
    }
    let mut to = failed.clone();
    // The same resend run again is found by its key (its receipt, no second copy); otherwise a
    // recipient re-sent to before is not sent to again.
    if outbox
        .record(&Key::Resend {
            of: original.message_id,
            to: failed.clone(),
        })?
        .is_none()
    {
        let done: Vec<(MessageId, &String)> = original
            .resent
            .iter()
            .flat_map(|(m, rs)| rs.iter().map(move |r| (*m, r)))
            .filter(|(_, r)| failed.contains(r))
            .collect();
        to.retain(|r| !done.iter().any(|(_, d)| *d == r));
        if to.is_empty() {
            let said: Vec<String> = done.iter().map(|(m, r)| format!("to {r} as {m}")).collect();
            return Err(ResendError::NothingToResend(format!(
                "message {id} was re-sent already ({}); if that copy failed too, re-send the new message (`silta resend NEW_ID`)",
                said.join(", ")
            )));
        }
    }
    let mut draft = original.draft.clone();
    draft.message_id = *uuid::Uuid::now_v7().as_bytes();
    draft.recipients = to
        .iter()
        .map(|r| r.parse::<Principal>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ResendError::Unknown(format!("a recipient of message {id}: {e}")))?;
    let key = Key::Resend {
        of: original.message_id,
        to: to.clone(),
    };
    let sent = match outbox.submit(client, &draft, &key, disclosure).await {
        Ok(sent) => sent,
        Err(ClientError::Seal(SealError::NoKeys(p))) => {
            return Err(ResendError::NoKeys(format!(
                "{p} has no current keys, so message {id} cannot be sealed to it yet: wait until its new operator has enrolled and published keys (`silta keys publish`), then run `silta resend {id}` again"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let why = copies.into_iter().filter(|(r, _)| to.contains(r)).collect();
    Ok(Resent {
        original: original.message_id,
        to,
        why,
        sent,
    })
}
