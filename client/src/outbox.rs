//! The one send path. Every message this client sends goes through [`Outbox::submit`]:
//!
//! 1. the draft is validated and sealed (or, for a message tried before, its kept sealed copy
//!    is taken: the same id and the same bytes);
//! 2. the sealed message is kept durably (client state, tree `outbox_key_record`) before it is
//!    first handed to the relay;
//! 3. the disclosure is written to the access log ([`Action::Disclosed`]) once per message id,
//!    before the message is first handed to the relay. The entry means "this message, with
//!    this content, was released to the relay for these recipients by this person for this
//!    purpose"; whether the relay accepted it is in the relay's log and the receipt. A crash
//!    between writing the entry and noting it can write it a second time, never zero times;
//! 4. the message is sent; a refusal that can never succeed as it is ([`ErrorKind::is_permanent`])
//!    ends the record, so a corrected command is a new message; any other failure leaves it, so
//!    the next attempt (the same command again, the daemon's next try) sends the same id and bytes
//!    and the relay answers an accepted one with the same receipt;
//! 5. the receipt is checked (with a log key configured) and the result recorded: the inbox's
//!    copy of the sent message (if the caller keeps one) and the record's state. A problem after
//!    the relay accepted the message is reported in [`Sent::problems`]: the message WAS sent.
//!
//! What identifies "the same message" is the caller's [`Key`]: the daemon uses the message id
//! it assigned when it claimed the form; `silta send` and the reply commands use the content
//! ([`content_key`]): the same kind, recipients, case, urgency, legal basis, reply-to and
//! payload within [`REUSE_FOR`] is the same message.

use std::time::{Duration, SystemTime};

use prost::Message as _;
use serde::{Deserialize, Serialize};
use silta_proto::pb;

use crate::{
    access::{Access, AccessLog, Action},
    client::Client,
    error::ClientError,
    payload::kind_name,
    seal::Draft,
    state::{State, StateError},
};

/// How long a sealed, unfinished message found by its content is sent again as it is; after
/// that the same content is sealed anew (the recipients' keys are looked up again) under a new
/// id. A message found by its id is always sent as it was sealed.
pub const REUSE_FOR: Duration = Duration::from_secs(3600);

/// What identifies a message across attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// The message id the caller assigned and keeps (the daemon's queue).
    MessageId([u8; 16]),
    /// The content ([`content_key`]): for commands a person runs again.
    Content(Vec<u8>),
}

impl Key {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Key::MessageId(id) => [b"id:".as_slice(), id].concat(),
            Key::Content(k) => [b"content:".as_slice(), k].concat(),
        }
    }
}

/// Who discloses, and why (the access log's entry).
#[derive(Debug, Clone)]
pub struct Disclosure {
    /// Who (a person's login, or `process:silta-daemon`).
    pub who: String,
    /// Why.
    pub purpose: String,
    /// Whether the inbox keeps a copy of the sent message (`silta inbox`); the daemon does not
    /// (its sent/ folder is the copy, under the case system's retention).
    pub keep_copy: bool,
}

/// A message the relay accepted.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Its id.
    pub message_id: [u8; 16],
    /// SHA-256 of the sealed message (what acknowledgements sign).
    pub ciphertext_sha256: Vec<u8>,
    /// The relay's receipt.
    pub receipt: pb::Receipt,
    /// Whether the receipt was checked against the configured log key (and checked out).
    pub receipt_checked: bool,
    /// The message was sealed by an earlier attempt that did not finish: sent again as it was.
    pub again: bool,
    /// What went wrong after the relay accepted it (receipt does not check out, the copy or the
    /// record could not be written). Not empty: it WAS sent, but say so.
    pub problems: Vec<String>,
    /// The receipt does not check out (one of `problems`).
    pub receipt_problem: Option<String>,
}

/// The relay side of sending, behind a trait so the state machine can be tested without TLS.
pub trait Relay {
    /// This installation's principal.
    fn sender(&self) -> String;
    /// Now (the client's clock).
    fn now(&self) -> SystemTime;
    /// Validates and seals `draft` (keys looked up).
    fn seal(
        &self,
        draft: &Draft,
    ) -> impl std::future::Future<Output = Result<pb::Envelope, ClientError>> + Send;
    /// Hands the sealed message to the relay; its receipt, not checked yet.
    fn deliver(
        &self,
        envelope: pb::Envelope,
    ) -> impl std::future::Future<Output = Result<pb::Receipt, ClientError>> + Send;
    /// Checks a receipt ([`Client::check_receipt`]).
    fn check_receipt(&self, receipt: &pb::Receipt, id: &[u8], digest: &[u8])
    -> Result<bool, String>;
}

impl Relay for Client {
    fn sender(&self) -> String {
        self.principal().to_string()
    }
    fn now(&self) -> SystemTime {
        Client::now(self)
    }
    fn seal(
        &self,
        draft: &Draft,
    ) -> impl std::future::Future<Output = Result<pb::Envelope, ClientError>> + Send {
        Client::seal(self, draft)
    }
    async fn deliver(&self, envelope: pb::Envelope) -> Result<pb::Receipt, ClientError> {
        Ok(self.connection().mailbox().send(envelope).await?.into_inner())
    }
    fn check_receipt(
        &self,
        receipt: &pb::Receipt,
        id: &[u8],
        digest: &[u8],
    ) -> Result<bool, String> {
        Client::check_receipt(self, receipt, id, digest)
    }
}

/// Where an outgoing message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutgoingState {
    /// Sealed and kept; not disclosed yet.
    Sealed,
    /// Disclosure logged; handed (or about to be handed) to the relay; no answer recorded.
    Disclosed,
    /// Accepted by the relay (the envelope is no longer kept).
    Sent,
}

/// The outbox's record of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    /// The message id (UUID).
    pub message_id: String,
    /// Where it is.
    pub state: OutgoingState,
    /// When it was sealed (unix milliseconds, the client's clock).
    pub sealed_at_ms: u64,
    /// The sealed message (encoded `Envelope`, hex); empty once sent.
    #[serde(default)]
    pub envelope: String,
    /// SHA-256 of the ciphertext (hex).
    #[serde(default)]
    pub ciphertext_sha256: String,
    /// The relay's receipt (encoded `Receipt`, hex), once sent.
    #[serde(default)]
    pub receipt: String,
    /// Whether the receipt checked out against the log key.
    #[serde(default)]
    pub receipt_checked: bool,
    /// Why the receipt does not check out, if it does not.
    #[serde(default)]
    pub receipt_problem: String,
}

/// The sending side of the client state.
pub struct Outbox<'s> {
    state: &'s State,
    records: sled::Tree,
    /// What `silta send`/reply commands of earlier versions kept: 8 bytes of unix seconds, then
    /// the encoded envelope, under the content key.
    legacy: sled::Tree,
    access: AccessLog,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The content key of a draft: kind, recipients, case, urgency, legal basis, reply-to and
/// payload (not its id). The same as earlier versions' reply commands computed, so a message
/// they kept is found after an upgrade.
pub fn content_key(draft: &Draft) -> Vec<u8> {
    let to: Vec<String> = draft.recipients.iter().map(|p| p.to_string()).collect();
    let mut k = format!(
        "{}\n{}\n{}\n{:?}\n{:?}\n{:?}\n",
        kind_name(draft.kind),
        to.join(","),
        hex::encode(draft.case_ref),
        draft.urgency,
        draft.legal_basis,
        draft.in_reply_to.map(hex::encode)
    )
    .into_bytes();
    k.extend(draft.payload.encode_to_vec());
    crate::seal::sha256(&k).to_vec()
}

fn broken(what: impl std::fmt::Display) -> ClientError {
    ClientError::State(StateError::from(sled::Error::Unsupported(format!(
        "outbox record: {what}"
    ))))
}

impl<'s> Outbox<'s> {
    /// The outbox of `state`, logging disclosures to `access`.
    pub fn open(state: &'s State, access: AccessLog) -> Result<Self, ClientError> {
        Ok(Outbox {
            state,
            records: state.tree("outbox_key_record")?,
            legacy: state.tree("contentkey_envelope")?,
            access,
        })
    }

    /// The record under `key`, if any.
    pub fn record(&self, key: &Key) -> Result<Option<Outgoing>, ClientError> {
        match self.records.get(key.bytes()).map_err(StateError::from)? {
            None => Ok(None),
            // Unreadable is an error, never "none": that would seal a second copy.
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(broken),
        }
    }

    fn put(&self, key: &Key, record: &Outgoing) -> Result<(), ClientError> {
        let value = serde_json::to_vec(record).map_err(broken)?;
        self.records
            .insert(key.bytes(), value)
            .map_err(StateError::from)?;
        self.state.flush()?;
        Ok(())
    }

    fn remove(&self, key: &Key) -> Result<(), ClientError> {
        self.records.remove(key.bytes()).map_err(StateError::from)?;
        self.state.flush()?;
        Ok(())
    }

    /// Keeps `envelope`, sealed earlier (a daemon queue of an earlier version), as the message
    /// under `key`, unless one is kept already: it is then sent with exactly these bytes.
    pub fn adopt(
        &self,
        key: &Key,
        envelope: &pb::Envelope,
        now: SystemTime,
    ) -> Result<(), ClientError> {
        if self.record(key)?.is_some() {
            return Ok(());
        }
        let record = Outgoing {
            message_id: uuid::Uuid::from_slice(&envelope.message_id)
                .map(|u| u.to_string())
                .map_err(broken)?,
            state: OutgoingState::Sealed,
            sealed_at_ms: unix_ms(now),
            envelope: hex::encode(envelope.encode_to_vec()),
            ciphertext_sha256: hex::encode(&envelope.ciphertext_sha256),
            receipt: String::new(),
            receipt_checked: false,
            receipt_problem: String::new(),
        };
        self.put(key, &record)
    }

    /// A kept, unfinished message under `key` that may be sent again now, with its record.
    fn unfinished(
        &self,
        key: &Key,
        now: SystemTime,
    ) -> Result<Option<(Outgoing, pb::Envelope)>, ClientError> {
        let record = match self.record(key)? {
            Some(r) => Some(r),
            None => self.from_legacy(key)?,
        };
        let Some(record) = record else {
            return Ok(None);
        };
        if record.state == OutgoingState::Sent {
            return Ok(Some((record, pb::Envelope::default())));
        }
        if let Key::Content(_) = key
            && unix_ms(now).saturating_sub(record.sealed_at_ms) >= REUSE_FOR.as_millis() as u64
        {
            return Ok(None);
        }
        let bytes = hex::decode(&record.envelope).map_err(broken)?;
        let envelope = pb::Envelope::decode(bytes.as_slice()).map_err(broken)?;
        Ok(Some((record, envelope)))
    }

    /// A message kept by an earlier version's reply command under this content key, moved into
    /// the outbox's own tree.
    fn from_legacy(&self, key: &Key) -> Result<Option<Outgoing>, ClientError> {
        let Key::Content(k) = key else {
            return Ok(None);
        };
        let Some(v) = self.legacy.get(k).map_err(StateError::from)? else {
            return Ok(None);
        };
        let (Some(secs), Ok(envelope)) = (
            v.get(..8)
                .and_then(|b| b.try_into().ok())
                .map(i64::from_be_bytes),
            pb::Envelope::decode(v.get(8..).unwrap_or_default()),
        ) else {
            return Err(broken("a kept unfinished message of an earlier version"));
        };
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
        self.adopt(key, &envelope, at)?;
        self.legacy.remove(k).map_err(StateError::from)?;
        self.state.flush()?;
        self.record(key)
    }

    /// Sends `draft` (see the module documentation): its id is `draft.message_id` unless a
    /// message under `key` was kept unfinished, which is then sent again as it is.
    pub async fn submit(
        &self,
        relay: &impl Relay,
        draft: &Draft,
        key: &Key,
        disclosure: &Disclosure,
    ) -> Result<Sent, ClientError> {
        let now = relay.now();
        let (mut record, envelope, again) = match self.unfinished(key, now)? {
            Some((record, _)) if record.state == OutgoingState::Sent => {
                if let Key::MessageId(_) = key {
                    return self.sent_before(&record);
                }
                // The same content sent before, and finished: this is a new message.
                self.remove(key)?;
                self.seal_and_keep(relay, draft, key, now).await?
            }
            Some((record, envelope)) => (record, envelope, true),
            None => self.seal_and_keep(relay, draft, key, now).await?,
        };
        let id: [u8; 16] = envelope
            .message_id
            .clone()
            .try_into()
            .map_err(|_| broken("a kept message has a bad id"))?;
        let mut draft = draft.clone();
        draft.message_id = id;
        if record.state == OutgoingState::Sealed {
            // Before the message first leaves this machine.
            let recipients: Vec<String> = draft.recipients.iter().map(|p| p.to_string()).collect();
            self.access
                .record(&Access {
                    who: &disclosure.who,
                    principal: &relay.sender(),
                    action: Action::Disclosed,
                    case: &envelope.case_ref,
                    messages: std::slice::from_ref(&envelope.message_id),
                    purpose: &disclosure.purpose,
                    recipients: &recipients,
                })
                .map_err(|e| {
                    ClientError::Access(format!(
                        "the access log could not record the disclosure, so nothing was sent: {e}"
                    ))
                })?;
            record.state = OutgoingState::Disclosed;
            self.put(key, &record)?;
        }
        let digest = envelope.ciphertext_sha256.clone();
        let receipt = match relay.deliver(envelope).await {
            Ok(r) => r,
            Err(e) => {
                // A definite refusal does not change by sending the same bytes again: the
                // record ends, and a corrected command is a new message.
                if e.kind().is_permanent() {
                    self.remove(key)?;
                }
                return Err(e);
            }
        };
        let mut sent = Sent {
            message_id: id,
            ciphertext_sha256: digest.clone(),
            receipt_checked: false,
            again,
            problems: Vec::new(),
            receipt_problem: None,
            receipt,
        };
        match relay.check_receipt(&sent.receipt, &id, &digest) {
            Ok(checked) => sent.receipt_checked = checked,
            Err(p) => {
                sent.problems
                    .push(format!("its receipt does not check out: {p}"));
                sent.receipt_problem = Some(p);
            }
        }
        if disclosure.keep_copy
            && let Err(e) =
                crate::inbox::record_sent(self.state, &draft, &relay.sender(), &sent.receipt)
        {
            sent.problems
                .push(format!("the local copy could not be kept: {e}"));
        }
        let finished = match key {
            Key::Content(_) => self.remove(key),
            Key::MessageId(_) => {
                record.state = OutgoingState::Sent;
                record.envelope.clear();
                record.receipt = hex::encode(sent.receipt.encode_to_vec());
                record.receipt_checked = sent.receipt_checked;
                record.receipt_problem = sent.receipt_problem.clone().unwrap_or_default();
                self.put(key, &record)
            }
        };
        if let Err(e) = finished {
            sent.problems
                .push(format!("the outbox could not record it: {e}"));
        }
        Ok(sent)
    }

    async fn seal_and_keep(
        &self,
        relay: &impl Relay,
        draft: &Draft,
        key: &Key,
        now: SystemTime,
    ) -> Result<(Outgoing, pb::Envelope, bool), ClientError> {
        let envelope = relay.seal(draft).await?;
        let record = Outgoing {
            message_id: uuid::Uuid::from_bytes(draft.message_id).to_string(),
            state: OutgoingState::Sealed,
            sealed_at_ms: unix_ms(now),
            envelope: hex::encode(envelope.encode_to_vec()),
            ciphertext_sha256: hex::encode(&envelope.ciphertext_sha256),
            receipt: String::new(),
            receipt_checked: false,
            receipt_problem: String::new(),
        };
        // Kept before the first attempt: every retry sends these exact bytes.
        self.put(key, &record)?;
        Ok((record, envelope, false))
    }

    fn sent_before(&self, record: &Outgoing) -> Result<Sent, ClientError> {
        let id = uuid::Uuid::parse_str(&record.message_id).map_err(broken)?;
        let receipt = pb::Receipt::decode(
            hex::decode(&record.receipt)
                .map_err(broken)?
                .as_slice(),
        )
        .map_err(broken)?;
        Ok(Sent {
            message_id: *id.as_bytes(),
            ciphertext_sha256: hex::decode(&record.ciphertext_sha256).map_err(broken)?,
            receipt,
            receipt_checked: record.receipt_checked,
            again: true,
            problems: if record.receipt_problem.is_empty() {
                Vec::new()
            } else {
                vec![format!(
                    "its receipt does not check out: {}",
                    record.receipt_problem
                )]
            },
            receipt_problem: Some(record.receipt_problem.clone()).filter(|p| !p.is_empty()),
        })
    }
}
