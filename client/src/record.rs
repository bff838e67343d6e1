//! Typed records of messages: what the inbox keeps (state tree `msgid_record`), what the daemon
//! writes into inbox/, what `silta receive` prints, and the per-recipient delivery state of a
//! message sent (sent/ status files, the inbox's copies of sent messages).
//!
//! The JSON field names are those the records always had: records written by earlier versions
//! load unchanged, and what people and scripts read keeps its names. Fields are declared in
//! alphabetical order, which is the order earlier versions wrote them in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use silta_proto::pb;

use crate::{
    ids::{CaseRef, MessageId, case_or_empty, id_or_empty},
    seal::Opened,
    times::rfc3339,
};

/// Whether a kept message was received or sent by this installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Received (opened and verified here).
    Received,
    /// Sent from here.
    Sent,
}

/// Where a kept message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordState {
    /// Received, not yet acknowledged by a person.
    New,
    /// Received and acknowledged by a person (the sender sees "acknowledged").
    Acknowledged,
    /// Sent (each recipient's state is in `recipients`).
    Sent,
    /// Received, but the relay expired this installation's copy before a person acknowledged it
    /// (`"expired-at-relay"`): it can never be acknowledged now, and the sender was told it
    /// EXPIRED. Final: retention deletes it by its rules like an acknowledged message.
    ExpiredAtRelay,
}

impl RecordState {
    /// The word shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::New => "new",
            RecordState::Acknowledged => "acknowledged",
            RecordState::Sent => "sent",
            RecordState::ExpiredAtRelay => "expired-at-relay",
        }
    }
}

/// A message as kept and shown: envelope facts, the verified signed fields, and the payload
/// in the proto3 JSON mapping (field names as in the schema).
///
/// A record of a received message made by [`MessageRecord::opened`] has the envelope facts
/// (`from_device`, `sender_key`, `ciphertext_sha256`); the inbox adds `direction`, `state`,
/// `received_at` and, once a person acknowledged it, `acknowledged_at`/`acknowledged_by`. A
/// record of a sent message has `receipt` and `recipients` instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// When the relay accepted it (RFC 3339).
    pub accepted_at: String,
    /// When a person acknowledged it (received messages in the inbox).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<String>,
    /// Who acknowledged it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    /// The case (`""` when it has none yet).
    #[serde(with = "case_or_empty")]
    pub case: CaseRef,
    /// SHA-256 of the ciphertext, hex (received messages: what an acknowledgement signs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_sha256: Option<String>,
    /// When the sender wrote it (RFC 3339, the sender's clock).
    pub created_at: String,
    /// Received or sent (records kept by the inbox).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// The sender's principal.
    pub from: String,
    /// The sender's device that signed it (received messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_device: Option<String>,
    /// Another desk (device) of this principal acknowledged or rejected it (received messages):
    /// who, when, and whether its signed acknowledgement verified here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_elsewhere: Option<HandledElsewhere>,
    /// The message it answers, if any.
    #[serde(with = "id_or_empty")]
    pub in_reply_to: Option<MessageId>,
    /// The kind (`referral`, ...).
    pub kind: String,
    /// The legal basis named by the sender.
    pub legal_basis: String,
    /// Its index in the delivery log.
    pub log_index: u64,
    /// Its id.
    pub message_id: MessageId,
    /// The content, in the proto3 JSON mapping (`{"referral": {...}}`).
    pub payload: serde_json::Value,
    /// The relay's receipt in full (sent messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<serde_json::Value>,
    /// When this installation kept it (received messages in the inbox).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<String>,
    /// Each recipient's delivery state (sent messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients: Option<BTreeMap<String, DeliveryStatus>>,
    /// The earlier message this one re-sends (`silta resend`; sent messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resend_of: Option<MessageId>,
    /// The messages that re-sent this one to some of its recipients (`silta resend`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resent_as: Vec<Resent>,
    /// Accepted before this desk's keys were published, so not sealed to it: a placeholder
    /// without content (open it at another desk of the principal).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sealed_before_device: bool,
    /// The fingerprint of the key that verified the sender's signature (received messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_key: Option<String>,
    /// Where it stands (records kept by the inbox).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RecordState>,
    /// The recipients' principals.
    pub to: Vec<String>,
    /// The sender's urgency.
    pub urgency: String,
}

impl MessageRecord {
    /// The record of a message received, opened and verified.
    pub fn opened(delivered: &pb::DeliveredEnvelope, opened: &Opened) -> Self {
        let s = &opened.signed;
        MessageRecord {
            accepted_at: rfc3339(delivered.accepted_at.as_ref()),
            acknowledged_at: None,
            acknowledged_by: None,
            // `open` checked both against the envelope (16 bytes each); zeros if not.
            case: CaseRef::from_slice(&s.case_ref).unwrap_or_default(),
            ciphertext_sha256: Some(hex::encode(
                delivered
                    .envelope
                    .as_ref()
                    .map(|e| e.ciphertext_sha256.as_slice())
                    .unwrap_or_default(),
            )),
            created_at: rfc3339(s.created_at.as_ref()),
            direction: None,
            from: s.sender.clone(),
            from_device: Some(s.sender_device.clone()),
            handled_elsewhere: None,
            in_reply_to: MessageId::from_slice(&s.in_reply_to).ok(),
            kind: crate::payload::kind_name(pb::MessageKind::try_from(s.kind).unwrap_or_default())
                .to_owned(),
            legal_basis: crate::form::legal_basis_name(
                pb::LegalBasis::try_from(s.legal_basis).unwrap_or_default(),
            )
            .to_owned(),
            log_index: delivered.log_index,
            message_id: MessageId::from_slice(&s.message_id).unwrap_or_default(),
            payload: crate::payload::payload_json(&opened.payload),
            receipt: None,
            received_at: None,
            recipients: None,
            resend_of: None,
            resent_as: Vec::new(),
            sealed_before_device: false,
            sender_key: Some(opened.sender_key.fingerprint.clone()),
            state: None,
            to: s.recipients.clone(),
            urgency: crate::form::urgency_name(
                pb::Urgency::try_from(s.urgency).unwrap_or_default(),
            )
            .to_owned(),
        }
    }

    /// The placeholder of a message that was accepted before this desk's keys were published
    /// (`DeliveredEnvelope.sealed_before_device`): the envelope's facts, no content.
    pub fn sealed_before(delivered: &pb::DeliveredEnvelope) -> Self {
        let env = delivered.envelope.clone().unwrap_or_default();
        MessageRecord {
            accepted_at: rfc3339(delivered.accepted_at.as_ref()),
            acknowledged_at: None,
            acknowledged_by: None,
            case: CaseRef::from_slice(&env.case_ref).unwrap_or_default(),
            ciphertext_sha256: Some(hex::encode(&env.ciphertext_sha256)),
            created_at: rfc3339(env.created_at.as_ref()),
            direction: Some(Direction::Received),
            from: delivered.sender.clone(),
            from_device: None,
            handled_elsewhere: None,
            in_reply_to: MessageId::from_slice(&env.in_reply_to).ok(),
            kind: crate::payload::kind_name(
                pb::MessageKind::try_from(env.kind).unwrap_or_default(),
            )
            .to_owned(),
            legal_basis: crate::form::legal_basis_name(
                pb::LegalBasis::try_from(env.legal_basis).unwrap_or_default(),
            )
            .to_owned(),
            log_index: delivered.log_index,
            message_id: MessageId::from_slice(&env.message_id).unwrap_or_default(),
            payload: serde_json::Value::Null,
            receipt: None,
            received_at: None,
            recipients: None,
            resend_of: None,
            resent_as: Vec::new(),
            sealed_before_device: true,
            sender_key: None,
            state: Some(RecordState::New),
            to: env.recipients.clone(),
            urgency: crate::form::urgency_name(
                pb::Urgency::try_from(env.urgency).unwrap_or_default(),
            )
            .to_owned(),
        }
    }

    /// What a person sees about another desk's handling of it, if any: "handled by desk1 at
    /// <time> (signature verified)", or that the claim did not verify, or the placeholder note.
    pub fn handled_line(&self) -> Option<String> {
        if let Some(h) = &self.handled_elsewhere {
            return Some(h.line());
        }
        self.sealed_before_device
            .then(|| SEALED_BEFORE_NOTE.to_owned())
    }

    /// Whether it was received here.
    pub fn is_received(&self) -> bool {
        self.direction == Some(Direction::Received)
    }

    /// The ciphertext digest's bytes (empty if not known).
    /// For a message sent from here, the digest its receipt names: a principal-internal message
    /// (case claim, access-log share) comes back to this device too, and must be recognised as
    /// the one kept, not refused as a replay.
    pub fn digest(&self) -> Vec<u8> {
        self.ciphertext_sha256
            .as_deref()
            .or_else(|| {
                self.receipt
                    .as_ref()
                    .and_then(|r| r["ciphertext_sha256"].as_str())
            })
            .and_then(|d| hex::decode(d).ok())
            .unwrap_or_default()
    }

    /// The case's bytes for the access log: empty without a case.
    pub fn case_bytes(&self) -> Vec<u8> {
        if self.case.is_none() {
            Vec::new()
        } else {
            self.case.0.to_vec()
        }
    }
}

/// What a placeholder of a message sealed before this desk's keys says.
pub const SEALED_BEFORE_NOTE: &str =
    "sealed before this desk's keys were published: open it at another desk";

/// How another desk (device) of this principal finished with a received message. The relay
/// says who, when and with which signature; the signature is checked here against that
/// device's key bundle (verified against the CA), never taken on the relay's word.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandledElsewhere {
    /// When (RFC 3339, the relay's time).
    pub at: String,
    /// The device id of the desk.
    pub device: String,
    /// The fingerprint of the key that verified its signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Index of its ACKNOWLEDGED or REJECTED event in the delivery log.
    pub log_index: u64,
    /// Why the claim did not verify (unverified claims only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The rejection reason (rejected only), e.g. `CANNOT_DECRYPT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `acknowledged` or `rejected`; `handled` while only the relay's answer to this desk's
    /// own acknowledgement named the deciding desk (not yet checked: the next sync brings it).
    pub state: String,
    /// The acknowledgement's signature verified with the device's key.
    pub verified: bool,
}

impl HandledElsewhere {
    /// The line shown: "handled by desk1 at <time> (signature verified)".
    pub fn line(&self) -> String {
        let what = if self.state == "rejected" {
            format!(
                "rejected by {} at {} ({})",
                self.device,
                self.at,
                self.reason.as_deref().unwrap_or("no reason")
            )
        } else if self.at.is_empty() {
            format!("handled by {}", self.device)
        } else {
            format!("handled by {} at {}", self.device, self.at)
        };
        match (self.verified, &self.problem) {
            (true, _) => format!("{what} (signature verified)"),
            (false, Some(p)) if self.state == "rejected" => format!("{what}; {p}"),
            (false, Some(p)) => format!("{what} -- handled-claim UNVERIFIED: {p}"),
            (false, None) => format!("{what} -- handled-claim UNVERIFIED"),
        }
    }
}

/// A re-sending of a message to some of its recipients (`silta resend`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resent {
    /// The new message's id.
    pub message_id: MessageId,
    /// The recipients it was re-sealed to.
    pub to: Vec<String>,
    /// When the relay accepted it (RFC 3339).
    pub at: String,
}

/// A recipient's delivery state, as status events report it. The names are those written in
/// sent/ status files and kept records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryState {
    /// Accepted by the relay; nothing reported by the recipient yet.
    Sent,
    /// The recipient fetched it.
    Delivered,
    /// The recipient acknowledged it, and its device's signature verified.
    Acknowledged,
    /// The recipient refused it (see the reason).
    Rejected,
    /// Not fetched in time.
    Expired,
    /// The relay will not deliver it (the recipient was disabled, its devices retired, or the
    /// case moved); final for this message id.
    Undeliverable,
    /// The relay reports an acknowledgement whose signature does not verify (or was not
    /// checked): never to be taken as acknowledged.
    AcknowledgementNotVerified,
    /// Waiting at the relay (a status the relay may report).
    Pending,
    /// A status event without a state.
    Unspecified,
}

/// The state shown for an acknowledgement whose signature does not verify (or could not be
/// checked): never "acknowledged".
pub const ACK_NOT_VERIFIED: &str = "acknowledgement-not-verified";

impl DeliveryState {
    /// The name written and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Sent => "sent",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Acknowledged => "acknowledged",
            DeliveryState::Rejected => "rejected",
            DeliveryState::Expired => "expired",
            DeliveryState::Undeliverable => "undeliverable",
            DeliveryState::AcknowledgementNotVerified => ACK_NOT_VERIFIED,
            DeliveryState::Pending => "pending",
            DeliveryState::Unspecified => "unspecified",
        }
    }

    /// From the protocol's state.
    pub fn from_pb(s: pb::DeliveryState) -> Self {
        match s {
            pb::DeliveryState::Unspecified => DeliveryState::Unspecified,
            pb::DeliveryState::Pending => DeliveryState::Pending,
            pb::DeliveryState::Delivered => DeliveryState::Delivered,
            pb::DeliveryState::Acknowledged => DeliveryState::Acknowledged,
            pb::DeliveryState::Rejected => DeliveryState::Rejected,
            pb::DeliveryState::Expired => DeliveryState::Expired,
            pb::DeliveryState::Undeliverable => DeliveryState::Undeliverable,
        }
    }

    /// How far along a message is, for "the least advanced state over all recipients": a
    /// problem first, then not yet delivered, then delivered, then acknowledged.
    pub fn progress(self) -> u8 {
        match self {
            DeliveryState::AcknowledgementNotVerified => 0,
            DeliveryState::Rejected => 1,
            DeliveryState::Expired | DeliveryState::Undeliverable => 2,
            DeliveryState::Sent | DeliveryState::Pending | DeliveryState::Unspecified => 3,
            DeliveryState::Delivered => 4,
            DeliveryState::Acknowledged => 5,
        }
    }
}

impl std::fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recipient's delivery state, as a status event reports it (what sent/ status files and
/// the inbox's copies of sent messages show).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryStatus {
    /// delivered, acknowledged, rejected, expired, acknowledgement-not-verified.
    pub state: DeliveryState,
    /// When (RFC 3339).
    pub time: String,
    /// The event's index in the delivery log.
    pub log_index: u64,
    /// For a rejection: the reason (`bad_signature`, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// For a rejection: the recipient's explanation. For an acknowledgement that did not
    /// verify: why.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// For an acknowledgement: the recipient device that signed it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ack_device: String,
    /// For an acknowledgement whose signature verified: that device's key fingerprint.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ack_key: String,
    /// For a copy that can be re-sealed to the recipient's current keys (undeliverable, or
    /// rejected as unreadable): what to do, in plain words (`silta resend ID`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub what_to_do: String,
}

/// The name of an undeliverable reason as written in status files and records
/// (`devices_retired`, ...); empty for none.
pub fn undeliverable_reason_name(reason: i32) -> String {
    if reason == 0 {
        return String::new();
    }
    pb::UndeliverableReason::try_from(reason)
        .unwrap_or_default()
        .as_str_name()
        .trim_start_matches("UNDELIVERABLE_REASON_")
        .to_ascii_lowercase()
}

/// Why a copy is undeliverable, in plain words.
fn undeliverable_words(reason: &str) -> &'static str {
    match reason {
        "recipient_disabled" => "the recipient was disabled at the relay",
        "devices_retired" => "the recipient's devices were retired (operator handover)",
        "case_moved" => "the case was moved to another centre (case transfer)",
        _ => "the relay will not deliver it",
    }
}

/// The rejection reason a recipient gives when none of its devices can open the message.
pub const CANNOT_DECRYPT: &str = "cannot_decrypt";

/// What a sender is told about a copy that may be re-sealed (see [`DeliveryStatus::what_to_do`]);
/// `None` for any other state.
pub fn resend_advice(
    state: DeliveryState,
    reason: &str,
    recipient: &str,
    message_id: &str,
) -> Option<String> {
    match state {
        DeliveryState::Undeliverable if reason == "case_moved" => Some(format!(
            "undeliverable to {recipient}: {}; do not resend it to them, write in the case to the centre it moved to",
            undeliverable_words(reason)
        )),
        DeliveryState::Undeliverable if reason == "recipient_disabled" => Some(format!(
            "undeliverable to {recipient}: {}; run `silta resend {message_id}` once the admin enabled it again or a new operator published keys",
            undeliverable_words(reason)
        )),
        DeliveryState::Undeliverable => Some(format!(
            "undeliverable to {recipient}: {}; run `silta resend {message_id}` once they have new keys",
            undeliverable_words(reason)
        )),
        DeliveryState::Rejected if reason == CANNOT_DECRYPT => Some(format!(
            "{recipient} could not open it (none of its devices holds a key it was sealed to); run `silta resend {message_id}` once they have new keys"
        )),
        _ => None,
    }
}

impl DeliveryStatus {
    /// From a status event. For an undeliverable copy `reason` is the undeliverable reason
    /// (`devices_retired`, ...), for a rejection the rejection reason (`bad_signature`, ...); a
    /// copy that may be re-sealed says what to do.
    pub fn from_event(s: &pb::StatusEvent) -> Self {
        let state =
            DeliveryState::from_pb(pb::DeliveryState::try_from(s.state).unwrap_or_default());
        let reason = if state == DeliveryState::Undeliverable {
            undeliverable_reason_name(s.undeliverable_reason)
        } else if s.rejection_reason == 0 {
            String::new()
        } else {
            pb::RejectionReason::try_from(s.rejection_reason)
                .unwrap_or_default()
                .as_str_name()
                .trim_start_matches("REJECTION_REASON_")
                .to_ascii_lowercase()
        };
        let id = MessageId::from_slice(&s.message_id)
            .map(|m| m.to_string())
            .unwrap_or_default();
        DeliveryStatus {
            state,
            time: rfc3339(s.time.as_ref()),
            log_index: s.log_index,
            what_to_do: resend_advice(state, &reason, &s.recipient, &id).unwrap_or_default(),
            reason,
            detail: s.detail.clone(),
            ack_device: s.ack_device.clone(),
            ack_key: String::new(),
        }
    }

    /// Whether this copy may be re-sealed to the recipient's current keys (`silta resend`):
    /// undeliverable (not because the case moved), or rejected because it could not be opened.
    pub fn resendable(&self) -> bool {
        match self.state {
            DeliveryState::Undeliverable => self.reason != "case_moved",
            DeliveryState::Rejected => self.reason == CANNOT_DECRYPT,
            _ => false,
        }
    }

    /// From a status event and, for an acknowledgement, the result of checking its signature
    /// ([`crate::client::Client::check_ack`]): one that does not verify is shown as
    /// [`DeliveryState::AcknowledgementNotVerified`] with the reason, never as acknowledged.
    pub fn checked(s: &pb::StatusEvent, ack: Option<Result<String, String>>) -> Self {
        let mut status = Self::from_event(s);
        if s.state == pb::DeliveryState::Acknowledged as i32 {
            match ack {
                Some(Ok(fingerprint)) => status.ack_key = fingerprint,
                Some(Err(why)) => {
                    status.state = DeliveryState::AcknowledgementNotVerified;
                    status.detail = format!(
                        "the relay reports an acknowledgement by {} device {:?}, but it is NOT verified: {why}. Do not rely on it; report this.",
                        s.recipient, s.ack_device
                    );
                }
                None => {
                    status.state = DeliveryState::AcknowledgementNotVerified;
                    status.detail = "the acknowledgement's signature was not checked".into();
                }
            }
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of a received message as an earlier version kept it in `msgid_record`
    /// (`serde_json::json!` plus the inbox's fields), acknowledged by a person.
    const OLD_RECEIVED: &str = r#"{"accepted_at":"2026-11-20T09:00:01Z","acknowledged_at":"2026-11-20T10:00:00Z","acknowledged_by":"caseworker","case":"","ciphertext_sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","created_at":"2026-11-20T09:00:00Z","direction":"received","from":"centre/joutseno","from_device":"server-1","in_reply_to":"","kind":"referral","legal_basis":"consent","log_index":7,"message_id":"0190c1d2-0000-7000-8000-00000000002a","payload":{"referral":{"account":"met at the centre"}},"received_at":"2026-11-20T09:00:02Z","sender_key":"SHA256:abc","state":"acknowledged","to":["assistance/nas"],"urgency":"urgent"}"#;

    /// A record of a sent message as an earlier version kept it, with one recipient's status.
    const OLD_SENT: &str = r#"{"accepted_at":"2026-11-21T09:00:01Z","case":"00112233445566778899aabbccddeeff","created_at":"2026-11-21T09:00:00Z","direction":"sent","from":"assistance/nas","in_reply_to":"0190c1d2-0000-7000-8000-00000000002a","kind":"decision","legal_basis":"statutory_duty","log_index":9,"message_id":"0190c1d3-0000-7000-8000-00000000002b","payload":{"decision":{}},"receipt":{"log_index":9},"recipients":{"centre/joutseno":{"ack_device":"server-1","detail":"why","log_index":11,"state":"acknowledgement-not-verified","time":"2026-11-21T09:05:00Z"}},"state":"sent","to":["centre/joutseno"],"urgency":"normal"}"#;

    #[test]
    fn records_written_by_earlier_versions_load_and_keep_every_field() {
        for old in [OLD_RECEIVED, OLD_SENT] {
            let r: MessageRecord = serde_json::from_str(old).unwrap();
            // Nothing lost or added, no name changed.
            let v: serde_json::Value = serde_json::from_str(old).unwrap();
            assert_eq!(serde_json::to_value(&r).unwrap(), v);
            // Written back, it loads as the same record.
            let again: MessageRecord =
                serde_json::from_slice(&serde_json::to_vec(&r).unwrap()).unwrap();
            assert_eq!(again, r);
        }
        // Top-level fields come in the order earlier versions wrote them (alphabetical).
        let r: MessageRecord = serde_json::from_str(OLD_RECEIVED).unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), OLD_RECEIVED);
        assert!(r.is_received());
        assert_eq!(r.state, Some(RecordState::Acknowledged));
        assert!(r.case.is_none() && r.case_bytes().is_empty());
        assert_eq!(r.in_reply_to, None);
        assert_eq!(
            r.message_id.to_string(),
            "0190c1d2-0000-7000-8000-00000000002a"
        );
        assert_eq!(r.digest().len(), 32);
        let s: MessageRecord = serde_json::from_str(OLD_SENT).unwrap();
        assert_eq!(s.direction, Some(Direction::Sent));
        assert_eq!(s.in_reply_to, Some(r.message_id));
        assert_eq!(s.case.to_string(), "00112233445566778899aabbccddeeff");
        assert_eq!(
            s.recipients.unwrap()["centre/joutseno"].state,
            DeliveryState::AcknowledgementNotVerified
        );
    }

    /// What earlier versions built for a received message (`client::message_record`): the
    /// reference the typed record must reproduce (inbox/ files, `silta receive`).
    fn old_message_record(delivered: &pb::DeliveredEnvelope, opened: &Opened) -> serde_json::Value {
        let s = &opened.signed;
        let case = if s.case_ref.iter().all(|&b| b == 0) {
            String::new()
        } else {
            hex::encode(&s.case_ref)
        };
        serde_json::json!({
            "message_id": uuid::Uuid::from_slice(&s.message_id).map(|u| u.to_string()).unwrap_or_default(),
            "case": case,
            "kind": crate::payload::kind_name(pb::MessageKind::try_from(s.kind).unwrap_or_default()),
            "from": s.sender,
            "from_device": s.sender_device,
            "sender_key": opened.sender_key.fingerprint,
            "to": s.recipients,
            "urgency": crate::form::urgency_name(pb::Urgency::try_from(s.urgency).unwrap_or_default()),
            "legal_basis": crate::form::legal_basis_name(pb::LegalBasis::try_from(s.legal_basis).unwrap_or_default()),
            "in_reply_to": uuid::Uuid::from_slice(&s.in_reply_to).map(|u| u.to_string()).unwrap_or_default(),
            "created_at": rfc3339(s.created_at.as_ref()),
            "accepted_at": rfc3339(delivered.accepted_at.as_ref()),
            "log_index": delivered.log_index,
            "ciphertext_sha256": hex::encode(delivered.envelope.as_ref().map(|e| e.ciphertext_sha256.clone()).unwrap_or_default()),
            "payload": crate::payload::payload_json(&opened.payload),
        })
    }

    #[test]
    fn a_received_record_is_what_earlier_versions_wrote() {
        let payload = pb::payload::Payload {
            body: Some(pb::payload::payload::Body::ConsultationReply(
                pb::payload::ConsultationReply {
                    advice: "call today".into(),
                    ..Default::default()
                },
            )),
        };
        for (case, in_reply_to) in [(vec![0; 16], vec![]), (vec![0xab; 16], vec![0x01; 16])] {
            let opened = Opened {
                signed: pb::payload::SignedPayload {
                    version: 1,
                    message_id: vec![0x42; 16],
                    case_ref: case,
                    kind: pb::MessageKind::ConsultationReply as i32,
                    sender: "assistance/nas".into(),
                    sender_device: "desk-1".into(),
                    recipients: vec!["centre/joutseno".into()],
                    created_at: Some(prost_types::Timestamp {
                        seconds: 1_795_000_000,
                        nanos: 0,
                    }),
                    urgency: pb::Urgency::Urgent as i32,
                    legal_basis: pb::LegalBasis::Consent as i32,
                    in_reply_to,
                    payload: Some(payload.clone()),
                    padding: vec![],
                },
                payload: payload.clone(),
                sender_key: crate::bundle::VerifiedBundle {
                    principal: "assistance/nas".parse().unwrap(),
                    device_id: "desk-1".into(),
                    age_recipient: "age1test".into(),
                    ed25519: [7; 32],
                    fingerprint: "SHA256:fingerprint".into(),
                    created_at: 0,
                    opens_version: 2,
                },
            };
            let delivered = pb::DeliveredEnvelope {
                envelope: Some(pb::Envelope {
                    ciphertext_sha256: vec![0x5a; 32],
                    ..Default::default()
                }),
                sender: "assistance/nas".into(),
                log_index: 17,
                handled: None,
                sealed_before_device: false,
                accepted_at: Some(prost_types::Timestamp {
                    seconds: 1_795_000_001,
                    nanos: 0,
                }),
            };
            let old = old_message_record(&delivered, &opened);
            let new = MessageRecord::opened(&delivered, &opened);
            // The same bytes in inbox/ files and `silta receive` output.
            assert_eq!(
                serde_json::to_string_pretty(&new).unwrap(),
                serde_json::to_string_pretty(&old).unwrap()
            );
        }
    }

    #[test]
    fn a_record_with_a_malformed_id_is_refused() {
        let bad = OLD_RECEIVED.replace("0190c1d2-0000-7000-8000-00000000002a", "not-an-id");
        assert!(serde_json::from_str::<MessageRecord>(&bad).is_err());
        let bad = OLD_SENT.replace("00112233445566778899aabbccddeeff", "0011");
        assert!(serde_json::from_str::<MessageRecord>(&bad).is_err());
    }

    #[test]
    fn delivery_states_keep_their_names() {
        let all = [
            (DeliveryState::Sent, "sent"),
            (DeliveryState::Delivered, "delivered"),
            (DeliveryState::Acknowledged, "acknowledged"),
            (DeliveryState::Rejected, "rejected"),
            (DeliveryState::Expired, "expired"),
            (DeliveryState::Undeliverable, "undeliverable"),
            (
                DeliveryState::AcknowledgementNotVerified,
                "acknowledgement-not-verified",
            ),
            (DeliveryState::Pending, "pending"),
            (DeliveryState::Unspecified, "unspecified"),
        ];
        for (state, name) in all {
            assert_eq!(serde_json::to_value(state).unwrap(), name);
            assert_eq!(
                serde_json::from_value::<DeliveryState>(name.into()).unwrap(),
                state
            );
            assert_eq!(state.to_string(), name);
        }
        assert_eq!(
            DeliveryState::AcknowledgementNotVerified.as_str(),
            ACK_NOT_VERIFIED
        );
        // What from_event makes of each protocol state: the old lower-cased names.
        for s in [
            pb::DeliveryState::Unspecified,
            pb::DeliveryState::Pending,
            pb::DeliveryState::Delivered,
            pb::DeliveryState::Acknowledged,
            pb::DeliveryState::Rejected,
            pb::DeliveryState::Expired,
            pb::DeliveryState::Undeliverable,
        ] {
            let old = s
                .as_str_name()
                .trim_start_matches("DELIVERY_STATE_")
                .to_ascii_lowercase();
            assert_eq!(DeliveryState::from_pb(s).as_str(), old);
        }
        for state in [
            RecordState::New,
            RecordState::Acknowledged,
            RecordState::Sent,
            RecordState::ExpiredAtRelay,
        ] {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        for (direction, name) in [(Direction::Received, "received"), (Direction::Sent, "sent")] {
            assert_eq!(serde_json::to_value(direction).unwrap(), name);
        }
    }

    #[test]
    fn a_status_file_entry_keeps_its_bytes() {
        let old = r#"{"state":"rejected","time":"2026-11-21T09:05:00Z","log_index":12,"reason":"bad_signature","detail":"no"}"#;
        let s: DeliveryStatus = serde_json::from_str(old).unwrap();
        assert_eq!(s.state, DeliveryState::Rejected);
        assert_eq!(serde_json::to_string(&s).unwrap(), old);
    }

    fn status(state: pb::DeliveryState, rejection: i32, undeliverable: i32) -> pb::StatusEvent {
        pb::StatusEvent {
            message_id: vec![0x42; 16],
            recipient: "centre/x".into(),
            state: state as i32,
            log_index: 30,
            rejection_reason: rejection,
            undeliverable_reason: undeliverable,
            detail: "by the admin".into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_undeliverable_copy_names_its_reason_and_what_to_do() {
        let id = "42424242-4242-4242-4242-424242424242";
        let s = DeliveryStatus::from_event(&status(
            pb::DeliveryState::Undeliverable,
            0,
            pb::UndeliverableReason::DevicesRetired as i32,
        ));
        assert_eq!(s.state, DeliveryState::Undeliverable);
        assert_eq!(s.reason, "devices_retired");
        assert_eq!(
            s.what_to_do,
            format!(
                "undeliverable to centre/x: the recipient's devices were retired (operator handover); run `silta resend {id}` once they have new keys"
            )
        );
        assert!(s.resendable());
        // As a status file shows it.
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["state"], "undeliverable");
        assert_eq!(v["reason"], "devices_retired");
        assert!(v["what_to_do"].as_str().unwrap().contains("silta resend"));
        assert_eq!(serde_json::from_value::<DeliveryStatus>(v).unwrap(), s);

        let disabled = DeliveryStatus::from_event(&status(
            pb::DeliveryState::Undeliverable,
            0,
            pb::UndeliverableReason::RecipientDisabled as i32,
        ));
        assert_eq!(disabled.reason, "recipient_disabled");
        assert!(disabled.resendable() && disabled.what_to_do.contains("silta resend"));

        // The case moved: the recipient left the case; not re-sent to it.
        let moved = DeliveryStatus::from_event(&status(
            pb::DeliveryState::Undeliverable,
            0,
            pb::UndeliverableReason::CaseMoved as i32,
        ));
        assert_eq!(moved.reason, "case_moved");
        assert!(!moved.resendable());
        assert!(
            moved.what_to_do.contains("do not resend"),
            "{}",
            moved.what_to_do
        );

        // Rejected as unreadable: re-sendable the same way; other rejections are not.
        let unreadable = DeliveryStatus::from_event(&status(
            pb::DeliveryState::Rejected,
            pb::RejectionReason::CannotDecrypt as i32,
            0,
        ));
        assert_eq!(unreadable.reason, CANNOT_DECRYPT);
        assert!(unreadable.resendable());
        assert!(
            unreadable
                .what_to_do
                .contains(&format!("silta resend {id}"))
        );
        let forged = DeliveryStatus::from_event(&status(
            pb::DeliveryState::Rejected,
            pb::RejectionReason::BadSignature as i32,
            0,
        ));
        assert!(!forged.resendable() && forged.what_to_do.is_empty());
        // Nothing else is re-sendable, and says nothing extra.
        for state in [
            pb::DeliveryState::Pending,
            pb::DeliveryState::Delivered,
            pb::DeliveryState::Acknowledged,
            pb::DeliveryState::Expired,
        ] {
            let s = DeliveryStatus::from_event(&status(state, 0, 0));
            assert!(!s.resendable() && s.what_to_do.is_empty(), "{state:?}");
        }
        // An undeliverable copy is final, like expired: it ranks before anything still moving.
        assert!(DeliveryState::Undeliverable.progress() < DeliveryState::Sent.progress());
    }

    #[test]
    fn a_resent_message_links_both_ways_and_old_records_stay_unchanged() {
        let mut s: MessageRecord = serde_json::from_str(OLD_SENT).unwrap();
        assert!(s.resend_of.is_none() && s.resent_as.is_empty());
        let new_id: MessageId = "0190c1d4-0000-7000-8000-00000000002c".parse().unwrap();
        s.resent_as.push(Resent {
            message_id: new_id,
            to: vec!["centre/joutseno".into()],
            at: "2026-11-22T09:00:00Z".into(),
        });
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["resent_as"][0]["message_id"],
            "0190c1d4-0000-7000-8000-00000000002c"
        );
        let mut n = s.clone();
        n.message_id = new_id;
        n.resent_as.clear();
        n.resend_of = Some(s.message_id);
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(v["resend_of"], "0190c1d3-0000-7000-8000-00000000002b");
        assert!(v.get("resent_as").is_none());
        assert_eq!(serde_json::from_value::<MessageRecord>(v).unwrap(), n);
    }
}
