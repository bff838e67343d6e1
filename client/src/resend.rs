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

use std::collections::{BTreeMap, BTreeSet};

use silta_certs::Principal;
use silta_proto::pb;

use crate::{
    client::ClientError,
    form::{parse_legal_basis, parse_urgency},
    ids::MessageId,
    outbox::{Disclosure, Key, Outbox, Outgoing, OutgoingState, Relay, Sent},
    payload::{parse_kind, payload_from_json},
    record::{DeliveryStatus, Direction, MessageRecord},
    seal::{Draft, SealError},
    text::printable_line,
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
    /// This was an earlier re-sending of the same original that had not finished (the answer
    /// lost, or the process stopped): it was finished first, and other recipients whose copy
    /// failed are re-sent to only by running the resend again.
    pub finished_earlier: bool,
    /// What the relay said that was not believed (a recipient the original was not sent to).
    pub warnings: Vec<String>,
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

/// The recipients `original` was sent to, as principals' names.
fn recipients_of(original: &Original) -> BTreeSet<String> {
    original
        .draft
        .recipients
        .iter()
        .map(|p| p.to_string())
        .collect()
}

/// Each recipient's copy of `original` now: the relay's answer, or what this installation heard
/// if the relay no longer has the message's metadata. Only the original's own recipients are
/// taken: a recipient the relay names that the original was not sent to is left out, with a
/// warning (the second value), so a relay can never get the content sealed to anyone else.
pub async fn copies(
    relay: &impl Relay,
    original: &Original,
) -> Result<(BTreeMap<String, DeliveryStatus>, Vec<String>), ClientError> {
    let all: BTreeMap<String, DeliveryStatus> = match relay.status(&original.message_id).await? {
        Some(resp) => resp
            .recipients
            .iter()
            .map(|r| (r.recipient.clone(), status_of(&original.message_id, r)))
            .collect(),
        None => original.known.clone(),
    };
    Ok(only_recipients(&recipients_of(original), all))
}

/// `copies` without those of anyone not in `to`, and a warning naming them.
pub fn only_recipients(
    to: &BTreeSet<String>,
    copies: BTreeMap<String, DeliveryStatus>,
) -> (BTreeMap<String, DeliveryStatus>, Vec<String>) {
    let (kept, others): (BTreeMap<_, _>, BTreeMap<_, _>) =
        copies.into_iter().partition(|(r, _)| to.contains(r));
    let warnings = if others.is_empty() {
        Vec::new()
    } else {
        let names: Vec<String> = others.keys().map(|r| printable_line(r)).collect();
        tracing::warn!(
            ?names,
            "the relay reported copies for recipients the message was not sent to; ignored"
        );
        vec![format!(
            "the relay reported copies for {} that the message was not sent to: ignored, nothing is re-sent to them (report this to the relay's operator)",
            names.join(", ")
        )]
    };
    (kept, warnings)
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

/// What a resend does, given the copies' states and the re-sendings recorded before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Finish an earlier re-sending to these recipients (sealed, maybe handed over, no answer
    /// recorded): under its key, so the same id and bytes go, never a second copy.
    Finish(Vec<String>),
    /// The same resend made before (these recipients): its receipt.
    Again(Vec<String>),
    /// A new re-sending to these recipients.
    New(Vec<String>),
    /// Nothing to re-send; why.
    Nothing(String),
}

/// Chooses what to do (see [`Plan`]). An unfinished earlier re-sending is finished first; every
/// recipient of a recorded re-sending (finished or not, in the outbox or in the kept copy's
/// `resent_as`) counts as re-sent to, so no recipient gets the content twice under two ids.
pub fn plan(
    original: &Original,
    copies: &BTreeMap<String, DeliveryStatus>,
    recorded: &[Outgoing],
) -> Plan {
    let id = MessageId(original.message_id);
    let ours = recipients_of(original);
    if let Some(r) = recorded
        .iter()
        .find(|r| r.state != OutgoingState::Sent && !r.resend_to.is_empty())
    {
        // Never to anyone the original was not sent to, whatever a record says.
        let to: Vec<String> = r
            .resend_to
            .iter()
            .filter(|t| ours.contains(*t))
            .cloned()
            .collect();
        if to.len() == r.resend_to.len() {
            return Plan::Finish(to);
        }
    }
    let failed = resendable(copies);
    if failed.is_empty() {
        return Plan::Nothing(format!(
            "no copy of message {id} is undeliverable or unreadable, so there is nothing to re-send ({})",
            describe(copies)
        ));
    }
    if recorded
        .iter()
        .any(|r| r.state == OutgoingState::Sent && r.resend_to == failed)
    {
        return Plan::Again(failed);
    }
    let mut done: BTreeMap<&String, String> = BTreeMap::new();
    for (m, rs) in &original.resent {
        for r in rs {
            done.insert(r, m.to_string());
        }
    }
    for rec in recorded {
        for r in &rec.resend_to {
            done.entry(r).or_insert_with(|| rec.message_id.clone());
        }
    }
    let to: Vec<String> = failed
        .iter()
        .filter(|r| !done.contains_key(r))
        .cloned()
        .collect();
    if to.is_empty() {
        let said: Vec<String> = failed
            .iter()
            .filter_map(|r| done.get(r).map(|m| format!("to {r} as {m}")))
            .collect();
        return Plan::Nothing(format!(
            "message {id} was re-sent already ({}); if that copy failed too, re-send the new message (`silta resend NEW_ID`)",
            said.join(", ")
        ));
    }
    Plan::New(to)
}

/// Re-sends `original` to the recipients whose copy failed (see the module documentation and
/// [`plan`]). One re-sending per call: if an earlier one had not finished, that one is finished
/// and returned ([`Resent::finished_earlier`]); call again for any others.
pub async fn resend(
    relay: &impl Relay,
    outbox: &Outbox<'_>,
    original: &Original,
    disclosure: &Disclosure,
) -> Result<Resent, ResendError> {
    let id = MessageId(original.message_id);
    let (copies, warnings) = copies(relay, original).await?;
    let recorded = outbox.resends_of(&original.message_id)?;
    let (to, finished_earlier) = match plan(original, &copies, &recorded) {
        Plan::Finish(to) => (to, true),
        Plan::Again(to) | Plan::New(to) => (to, false),
        Plan::Nothing(why) => {
            let why = if warnings.is_empty() {
                why
            } else {
                format!("{why}. {}", warnings.join("; "))
            };
            return Err(ResendError::NothingToResend(why));
        }
    };
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
    let sent = match outbox.submit(relay, &draft, &key, disclosure).await {
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
        finished_earlier,
        warnings,
    })
}
