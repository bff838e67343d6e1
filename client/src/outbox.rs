//! The one send path. Every message this client sends goes through [`Outbox::submit`]:
//!
//! 1. the draft is validated and sealed (or, for a message tried before, its kept sealed copy
//!    is taken: the same id and the same bytes, unless they may no longer be right: see
//!    "A kept message" below);
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
//!
//! A kept message is never sealed again under a new id once it may have left this machine
//! (state [`OutgoingState::Disclosed`]): the relay may have accepted it and only the answer was
//! lost. Before a kept message is handed over again:
//!
//! - its record names the age recipients it was sealed to ([`Outgoing::sealed_to`]); they are
//!   compared with the recipients' and our own current, CA-verified keys. The same: the kept
//!   bytes are sent. Changed (a device revoked, a new one published): a message never handed
//!   over is sealed again to the current keys under the same id; a disclosed one only if the
//!   relay answers `Status(id)` with `NOT_FOUND` (it never accepted it), else the kept bytes are
//!   sent for the receipt the relay gave them (it has them already);
//! - a disclosed message found by its content more than [`REUSE_FOR`] after it was sealed, and a
//!   record of an earlier version (what it was sealed to is unknown), are not compared: the
//!   relay is asked `Status(id)`: accepted, the kept bytes are sent; `NOT_FOUND`, it is sealed
//!   again to the current keys under the same id;
//! - an undisclosed message found by its content more than [`REUSE_FOR`] after it was sealed
//!   never left this machine: the command now is a new message (a new id).
//!
//! Sealing again under the same id writes no second access-log entry: the entry names the
//! message id, case and recipients (principals), which did not change; only the ciphertext did.
//! A first attempt costs no lookup beyond those of sealing.

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
    times::unix_ms,
};

/// How long a sealed, unfinished message found by its content is sent again without asking the
/// relay (if the keys it was sealed to are still the current ones). After that, one that was
/// handed over is sent again under its id only after the relay was asked (see the module
/// documentation); one that never left this machine is sealed anew under a new id.
pub(crate) const REUSE_FOR: Duration = Duration::from_secs(3600);

/// What identifies a message across attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// The message id the caller assigned and keeps (the daemon's queue).
    MessageId([u8; 16]),
    /// The content ([`content_key`]): for commands a person runs again.
    Content(Vec<u8>),
    /// A re-sending (`silta resend`) of the message `of` to the recipients `to` (principals,
    /// sorted): one per original and recipient set, so running the same resend again returns the
    /// first one's receipt instead of sending a second copy. The envelope carries
    /// `resend_of = of`.
    Resend {
        /// The original message.
        of: [u8; 16],
        /// The recipients it is re-sent to, sorted.
        to: Vec<String>,
    },
}

impl Key {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Key::MessageId(id) => [b"id:".as_slice(), id].concat(),
            Key::Content(k) => [b"content:".as_slice(), k].concat(),
            Key::Resend { of, to } => [
                b"resend:".as_slice(),
                of,
                &crate::seal::sha256(to.join("\n").as_bytes()),
            ]
            .concat(),
        }
    }

    /// Whether the record stays once the message was sent, so the same key finds its receipt.
    fn kept_after_sending(&self) -> bool {
        !matches!(self, Key::Content(_))
    }

    /// The prefix of the keys of every re-sending of `of`.
    fn resend_prefix(of: &[u8; 16]) -> Vec<u8> {
        [b"resend:".as_slice(), of].concat()
    }

    /// The original a re-sending re-sends.
    fn resend_of(&self) -> Option<[u8; 16]> {
        match self {
            Key::Resend { of, .. } => Some(*of),
            _ => None,
        }
    }

    /// The recipients a re-sending is for (empty for other keys).
    fn resend_to(&self) -> Vec<String> {
        match self {
            Key::Resend { to, .. } => to.clone(),
            _ => Vec::new(),
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
    /// The message was sealed by an earlier attempt that did not finish: sent again under its id
    /// (with its bytes, or sealed again to changed keys: see the module documentation).
    pub again: bool,
    /// With `again`: when the earlier attempt sealed it.
    pub earlier_attempt: Option<SystemTime>,
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
    /// Validates `draft` and looks up the age recipients it is sealed to now (sorted, no
    /// duplicates; [`Client::age_recipients`]).
    fn age_recipients(
        &self,
        draft: &Draft,
    ) -> impl std::future::Future<Output = Result<Vec<String>, ClientError>> + Send;
    /// The sealed-message format for the age recipients `to` ([`Client::seal_version`]).
    fn seal_version(&self, to: &[String]) -> u32;
    /// Seals `draft` to `to` in format `version` ([`Client::seal_to_version`]).
    fn seal_to(
        &self,
        draft: &Draft,
        to: &[String],
        version: u32,
    ) -> Result<pb::Envelope, ClientError>;
    /// Hands the sealed message to the relay; its receipt, not checked yet.
    fn deliver(
        &self,
        envelope: pb::Envelope,
    ) -> impl std::future::Future<Output = Result<pb::Receipt, ClientError>> + Send;
    /// Whether the relay accepted the message `id` from us: `None` if it answers `NOT_FOUND`
    /// ([`Client::status`]).
    fn status(
        &self,
        id: &[u8],
    ) -> impl std::future::Future<Output = Result<Option<pb::StatusResponse>, ClientError>> + Send;
    /// Checks a receipt ([`Client::check_receipt`]).
    fn check_receipt(
        &self,
        receipt: &pb::Receipt,
        id: &[u8],
        digest: &[u8],
    ) -> Result<bool, String>;
}

impl Relay for Client {
    fn sender(&self) -> String {
        self.principal().to_string()
    }
    fn now(&self) -> SystemTime {
        Client::now(self)
    }
    fn age_recipients(
        &self,
        draft: &Draft,
    ) -> impl std::future::Future<Output = Result<Vec<String>, ClientError>> + Send {
        Client::age_recipients(self, draft)
    }
    fn seal_version(&self, to: &[String]) -> u32 {
        Client::seal_version(self, to)
    }
    fn seal_to(
        &self,
        draft: &Draft,
        to: &[String],
        version: u32,
    ) -> Result<pb::Envelope, ClientError> {
        Client::seal_to_version(self, draft, to, version)
    }
    fn status(
        &self,
        id: &[u8],
    ) -> impl std::future::Future<Output = Result<Option<pb::StatusResponse>, ClientError>> + Send
    {
        Client::status(self, id)
    }
    async fn deliver(&self, envelope: pb::Envelope) -> Result<pb::Receipt, ClientError> {
        Ok(self
            .connection()
            .mailbox()
            .send(envelope)
            .await?
            .into_inner())
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
    /// The age recipients (public keys) the kept message is sealed to, sorted; `None` in a record
    /// of an earlier version or one adopted from elsewhere (unknown: the relay is asked before
    /// the message is sealed again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_to: Option<Vec<String>>,
    /// The sealed-message format of the kept bytes; `None` in a record of an earlier version
    /// (format 1, the only one then). Kept bytes in a newer format than a device they are
    /// sealed to opens now (it went back to an older client) are sealed again, as for changed
    /// keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_version: Option<u32>,
    /// A re-sending ([`Key::Resend`]): the recipients (principals, sorted) it is re-sent to,
    /// kept from before it is sealed, so a later re-sending of the same original counts them
    /// as done whether or not this one finished ([`Outbox::resends_of`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resend_to: Vec<String>,
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

    /// Every re-sending of `of` recorded here (sealed, handed over, or sent), with the
    /// recipients it is for: [`Outgoing::resend_to`], or, in a record without it, the
    /// recipients its kept envelope names (empty if neither is known).
    pub fn resends_of(&self, of: &[u8; 16]) -> Result<Vec<Outgoing>, ClientError> {
        let mut found = Vec::new();
        for item in self.records.scan_prefix(Key::resend_prefix(of)) {
            let (_, v) = item.map_err(StateError::from)?;
            let mut record: Outgoing = serde_json::from_slice(&v).map_err(broken)?;
            if record.resend_to.is_empty()
                && let Ok(bytes) = hex::decode(&record.envelope)
                && let Ok(envelope) = pb::Envelope::decode(bytes.as_slice())
            {
                record.resend_to = envelope.recipients;
                record.resend_to.sort();
            }
            found.push(record);
        }
        Ok(found)
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
            sealed_to: None,
            sealed_version: None,
            resend_to: key.resend_to(),
        };
        self.put(key, &record)
    }

    /// Whether `record`, found by its content, was sealed [`REUSE_FOR`] or longer before `now`.
    fn expired(key: &Key, record: &Outgoing, now: SystemTime) -> bool {
        matches!(key, Key::Content(_))
            && unix_ms(now).saturating_sub(record.sealed_at_ms) >= REUSE_FOR.as_millis() as u64
    }

    /// A message kept by an earlier version's reply command under this content key, moved into
    /// the outbox's own tree.
    fn adopt_legacy(&self, key: &Key) -> Result<Option<Outgoing>, ClientError> {
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
    /// message under `key` was kept unfinished, which is then sent again under its id.
    pub async fn submit(
        &self,
        relay: &impl Relay,
        draft: &Draft,
        key: &Key,
        disclosure: &Disclosure,
    ) -> Result<Sent, ClientError> {
        let now = relay.now();
        let found = match self.record(key)? {
            Some(r) => Some(r),
            None => self.adopt_legacy(key)?,
        };
        if found.is_none()
            && let Some(r) = draft.in_reply_to
            && let Some(replied) = self.state.message(&r)?
        {
            // Every path (commands, the daemon's forms): never link the anonymous consultation.
            crate::payload::check_reply_link(draft.kind, &replied.kind)
                .map_err(|e| ClientError::Seal(crate::seal::SealError::Invalid(e)))?;
        }
        let (mut record, envelope, earlier) = match found {
            None => self.seal_and_keep(relay, draft, key, now).await?,
            Some(record) if record.state == OutgoingState::Sent => {
                if key.kept_after_sending() {
                    return self.sent_before(&record);
                }
                // The same content sent before, and finished: this is a new message.
                self.remove(key)?;
                self.seal_and_keep(relay, draft, key, now).await?
            }
            // Sealed long ago and never handed over (it is known what it was sealed to, so it
            // is ours, not adopted): the command now is a new message.
            Some(record)
                if record.state == OutgoingState::Sealed
                    && record.sealed_to.is_some()
                    && Self::expired(key, &record, now) =>
            {
                self.seal_and_keep(relay, draft, key, now).await?
            }
            Some(record) => {
                let at = SystemTime::UNIX_EPOCH + Duration::from_millis(record.sealed_at_ms);
                let (record, envelope) = self.kept(relay, draft, key, record, now).await?;
                (record, envelope, Some(at))
            }
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
            again: earlier.is_some(),
            earlier_attempt: earlier,
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
        if disclosure.keep_copy
            && let Some(of) = key.resend_of()
            && let Err(e) = crate::inbox::record_resend(self.state, &of, &draft, &sent.receipt)
        {
            sent.problems.push(format!(
                "the link between the copies of the original and the new message could not be kept: {e}"
            ));
        }
        let finished = match key {
            Key::Content(_) => self.remove(key),
            Key::MessageId(_) | Key::Resend { .. } => {
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

    /// Seals `draft` to `to`; a re-sending names the original (`Envelope.resend_of`, outside
    /// the signed payload: metadata for the relay, like the case and kind).
    /// Seals `draft` to `to` in the format they open now; the envelope and that format.
    fn seal(
        relay: &impl Relay,
        draft: &Draft,
        to: &[String],
        key: &Key,
    ) -> Result<(pb::Envelope, u32), ClientError> {
        let version = relay.seal_version(to);
        let mut envelope = relay.seal_to(draft, to, version)?;
        if let Some(of) = key.resend_of() {
            envelope.resend_of = of.to_vec();
        }
        Ok((envelope, version))
    }

    /// Seals `draft` under its own id and keeps it (a new message under `key`).
    async fn seal_and_keep(
        &self,
        relay: &impl Relay,
        draft: &Draft,
        key: &Key,
        now: SystemTime,
    ) -> Result<(Outgoing, pb::Envelope, Option<SystemTime>), ClientError> {
        let to = relay.age_recipients(draft).await?;
        let (envelope, version) = Self::seal(relay, draft, &to, key)?;
        let record = Outgoing {
            message_id: uuid::Uuid::from_bytes(draft.message_id).to_string(),
            state: OutgoingState::Sealed,
            sealed_at_ms: unix_ms(now),
            envelope: hex::encode(envelope.encode_to_vec()),
            ciphertext_sha256: hex::encode(&envelope.ciphertext_sha256),
            receipt: String::new(),
            receipt_checked: false,
            receipt_problem: String::new(),
            sealed_to: Some(to),
            sealed_version: Some(version),
            resend_to: key.resend_to(),
        };
        // Kept before the first attempt: every retry sends these exact bytes.
        self.put(key, &record)?;
        Ok((record, envelope, None))
    }

    /// The kept, unfinished message `record` under `key`, ready to be handed over again: its kept
    /// bytes, or, if they may no longer be right and it is known that the relay does not have
    /// them, sealed again to the current keys under the same id (see the module documentation).
    /// `draft` is the same content (the same key); its id is not used.
    async fn kept(
        &self,
        relay: &impl Relay,
        draft: &Draft,
        key: &Key,
        mut record: Outgoing,
        now: SystemTime,
    ) -> Result<(Outgoing, pb::Envelope), ClientError> {
        let bytes = hex::decode(&record.envelope).map_err(broken)?;
        let envelope = pb::Envelope::decode(bytes.as_slice()).map_err(broken)?;
        let mut draft = draft.clone();
        draft.message_id = envelope
            .message_id
            .clone()
            .try_into()
            .map_err(|_| broken("a kept message has a bad id"))?;
        let disclosed = record.state == OutgoingState::Disclosed;
        // A lookup that can never succeed (no keys left, the form no longer allowed) ends a
        // message the relay is known not to have; the record stays otherwise.
        let end_if_permanent = |e: ClientError| -> ClientError {
            if e.kind().is_permanent()
                && let Err(e) = self.remove(key)
            {
                return e;
            }
            e
        };
        // The keys now, when they are compared with those it was sealed to.
        let mut current = None;
        if let Some(to) = &record.sealed_to
            && !Self::expired(key, &record, now)
        {
            match relay.age_recipients(&draft).await {
                // The same keys, and no device among them opens only an older format now.
                Ok(now_to)
                    if now_to == *to
                        && record.sealed_version.unwrap_or(1) <= relay.seal_version(&now_to) =>
                {
                    return Ok((record, envelope));
                }
                Ok(now_to) => current = Some(now_to),
                // It cannot be sealed now, but the relay may have it: asked below.
                Err(e) if disclosed && e.kind().is_permanent() => {}
                Err(e) if disclosed => return Err(e),
                Err(e) => return Err(end_if_permanent(e)),
            }
        }
        if disclosed || record.sealed_to.is_none() {
            // It may have reached the relay: nothing else is sealed under its id unless the
            // relay never accepted it. Accepted: the kept bytes get the receipt it gave them.
            if relay.status(&envelope.message_id).await?.is_some() {
                return Ok((record, envelope));
            }
        }
        let to = match current {
            Some(to) => to,
            None => relay
                .age_recipients(&draft)
                .await
                .map_err(end_if_permanent)?,
        };
        let (envelope, version) = Self::seal(relay, &draft, &to, key).map_err(end_if_permanent)?;
        // The same id and state: a disclosed message is not logged again (the entry names
        // the id, case and recipients, none of which changed).
        record.sealed_at_ms = unix_ms(now);
        record.envelope = hex::encode(envelope.encode_to_vec());
        record.ciphertext_sha256 = hex::encode(&envelope.ciphertext_sha256);
        record.sealed_to = Some(to);
        record.sealed_version = Some(version);
        self.put(key, &record)?;
        Ok((record, envelope))
    }

    fn sent_before(&self, record: &Outgoing) -> Result<Sent, ClientError> {
        let id = uuid::Uuid::parse_str(&record.message_id).map_err(broken)?;
        let receipt = pb::Receipt::decode(hex::decode(&record.receipt).map_err(broken)?.as_slice())
            .map_err(broken)?;
        Ok(Sent {
            message_id: *id.as_bytes(),
            ciphertext_sha256: hex::decode(&record.ciphertext_sha256).map_err(broken)?,
            receipt,
            receipt_checked: record.receipt_checked,
            again: true,
            earlier_attempt: Some(
                SystemTime::UNIX_EPOCH + Duration::from_millis(record.sealed_at_ms),
            ),
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

#[cfg(test)]
mod tests {
    use std::{
        collections::{HashMap, VecDeque},
        sync::Mutex,
    };

    use silta_proto::pb::MessageKind;
    use tonic::Code;

    use super::*;

    type Accepted = HashMap<Vec<u8>, (Vec<u8>, pb::Receipt)>;

    /// What the relay does with the next message handed to it.
    #[derive(Clone, Copy)]
    enum Answer {
        /// Accepts it (or answers an accepted one with its receipt).
        Accept,
        /// Refuses it with this code, storing nothing.
        Refuse(Code),
        /// Accepts it, but the answer is lost on the way back.
        AcceptThenLose,
    }

    /// A relay in memory, idempotent by message id as the real one is.
    struct FakeRelay {
        now: Mutex<SystemTime>,
        answers: Mutex<VecDeque<Answer>>,
        sealed: Mutex<u32>,
        handed: Mutex<Vec<Vec<u8>>>,
        /// Message id -> (ciphertext digest, receipt).
        accepted: Mutex<Accepted>,
        next_index: Mutex<u64>,
        /// The age recipients of the recipients' and our devices now.
        keys: Mutex<Vec<String>>,
        /// What each seal was sealed to.
        sealed_to: Mutex<Vec<Vec<String>>>,
        /// The format the devices open now, and the format of each seal.
        opens: Mutex<u32>,
        versions: Mutex<Vec<u32>>,
        /// Key lookups (one per `age_recipients`) and `Status` calls.
        lookups: Mutex<u32>,
        statuses: Mutex<u32>,
        /// What `Status` answers for a message's recipients (an original being re-sent).
        reported: Mutex<HashMap<Vec<u8>, Vec<pb::RecipientStatus>>>,
    }

    impl FakeRelay {
        fn new(answers: &[Answer]) -> Self {
            FakeRelay {
                now: Mutex::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
                answers: Mutex::new(answers.iter().copied().collect()),
                sealed: Mutex::new(0),
                handed: Mutex::new(Vec::new()),
                accepted: Mutex::new(HashMap::new()),
                next_index: Mutex::new(7),
                keys: Mutex::new(vec!["age1c1".into(), "age1nas-device-1".into()]),
                sealed_to: Mutex::new(Vec::new()),
                opens: Mutex::new(crate::seal::NEWEST_VERSION),
                versions: Mutex::new(Vec::new()),
                lookups: Mutex::new(0),
                statuses: Mutex::new(0),
                reported: Mutex::new(HashMap::new()),
            }
        }
        /// `Status(id)` answers these recipients' states from now on.
        fn report(&self, id: [u8; 16], copies: &[(&str, pb::DeliveryState)]) {
            let copies = copies
                .iter()
                .map(|(r, st)| pb::RecipientStatus {
                    recipient: (*r).into(),
                    state: *st as i32,
                    undeliverable_reason: if *st == pb::DeliveryState::Undeliverable {
                        pb::UndeliverableReason::DevicesRetired as i32
                    } else {
                        0
                    },
                    ..Default::default()
                })
                .collect();
            self.reported.lock().unwrap().insert(id.to_vec(), copies);
        }
        /// A recipient device revoked and a new one published.
        fn change_keys(&self) {
            *self.keys.lock().unwrap() = vec!["age1c1".into(), "age1nas-device-2".into()];
        }
        /// Every device of the recipient revoked.
        fn revoke_all(&self) {
            *self.keys.lock().unwrap() = vec!["age1c1".into()];
        }
        /// A device goes back to a client that opens only `version` (same keys).
        fn opens_only(&self, version: u32) {
            *self.opens.lock().unwrap() = version;
        }
        fn versions(&self) -> Vec<u32> {
            self.versions.lock().unwrap().clone()
        }
        fn last_sealed_to(&self) -> Vec<String> {
            self.sealed_to.lock().unwrap().last().unwrap().clone()
        }
        fn lookups(&self) -> u32 {
            *self.lookups.lock().unwrap()
        }
        fn statuses(&self) -> u32 {
            *self.statuses.lock().unwrap()
        }
        fn advance(&self, d: Duration) {
            *self.now.lock().unwrap() += d;
        }
        fn sealed(&self) -> u32 {
            *self.sealed.lock().unwrap()
        }
        fn handed(&self) -> Vec<Vec<u8>> {
            self.handed.lock().unwrap().clone()
        }
        fn accepted(&self) -> usize {
            self.accepted.lock().unwrap().len()
        }
    }

    impl Relay for FakeRelay {
        fn sender(&self) -> String {
            "centre/c1".into()
        }
        fn now(&self) -> SystemTime {
            *self.now.lock().unwrap()
        }
        async fn age_recipients(&self, draft: &Draft) -> Result<Vec<String>, ClientError> {
            crate::payload::validate(
                draft.kind,
                draft.urgency,
                &draft.payload,
                &"centre/c1".parse().unwrap(),
                &draft.recipients,
            )
            .map_err(crate::seal::SealError::from)?;
            *self.lookups.lock().unwrap() += 1;
            let keys = self.keys.lock().unwrap().clone();
            if !keys.iter().any(|k| k.contains("nas")) {
                return Err(crate::seal::SealError::NoKeys("assistance/nas".into()).into());
            }
            Ok(keys)
        }
        fn seal_version(&self, _: &[String]) -> u32 {
            *self.opens.lock().unwrap()
        }
        fn seal_to(
            &self,
            draft: &Draft,
            to: &[String],
            version: u32,
        ) -> Result<pb::Envelope, ClientError> {
            *self.sealed.lock().unwrap() += 1;
            self.sealed_to.lock().unwrap().push(to.to_vec());
            self.versions.lock().unwrap().push(version);
            // Fresh randomness each time, as age's is: sealing twice gives other bytes.
            let ciphertext = uuid::Uuid::new_v4().as_bytes().to_vec();
            Ok(pb::Envelope {
                message_id: draft.message_id.to_vec(),
                case_ref: draft.case_ref.to_vec(),
                recipients: draft.recipients.iter().map(|p| p.to_string()).collect(),
                ciphertext_sha256: crate::seal::sha256(&ciphertext).to_vec(),
                ciphertext: ciphertext.into(),
                ..Default::default()
            })
        }
        async fn deliver(&self, envelope: pb::Envelope) -> Result<pb::Receipt, ClientError> {
            let bytes = envelope.encode_to_vec();
            self.handed.lock().unwrap().push(bytes);
            let answer = self
                .answers
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Answer::Accept);
            if let Answer::Refuse(code) = answer {
                return Err(tonic::Status::new(code, "refused").into());
            }
            let mut accepted = self.accepted.lock().unwrap();
            let receipt = match accepted.get(&envelope.message_id) {
                Some((digest, _)) if *digest != envelope.ciphertext_sha256 => {
                    return Err(tonic::Status::already_exists("other content").into());
                }
                Some((_, receipt)) => receipt.clone(),
                None => {
                    let mut next = self.next_index.lock().unwrap();
                    *next += 1;
                    let receipt = pb::Receipt {
                        message_id: envelope.message_id.clone(),
                        log_index: *next,
                        ..Default::default()
                    };
                    accepted.insert(
                        envelope.message_id.clone(),
                        (envelope.ciphertext_sha256.clone(), receipt.clone()),
                    );
                    receipt
                }
            };
            match answer {
                Answer::AcceptThenLose => {
                    Err(tonic::Status::unavailable("connection reset").into())
                }
                _ => Ok(receipt),
            }
        }
        async fn status(&self, id: &[u8]) -> Result<Option<pb::StatusResponse>, ClientError> {
            *self.statuses.lock().unwrap() += 1;
            if let Some(copies) = self.reported.lock().unwrap().get(id) {
                return Ok(Some(pb::StatusResponse {
                    message_id: id.to_vec(),
                    recipients: copies.clone(),
                    ..Default::default()
                }));
            }
            Ok(self
                .accepted
                .lock()
                .unwrap()
                .contains_key(id)
                .then(|| pb::StatusResponse {
                    message_id: id.to_vec(),
                    ..Default::default()
                }))
        }
        fn check_receipt(&self, r: &pb::Receipt, id: &[u8], _: &[u8]) -> Result<bool, String> {
            if r.message_id == id {
                Ok(true)
            } else {
                Err("another message's receipt".into())
            }
        }
    }

    fn draft(note: &str) -> Draft {
        let payload = crate::payload::read_form_value(
            MessageKind::AnonymousConsultation,
            serde_json::json!({"questions": note, "indicators": ["afraid of debt"], "age_group": "AGE_GROUP_ADULT", "centre_type": "CENTRE_TYPE_ADULT"}),
        )
        .unwrap();
        Draft::new(
            MessageKind::AnonymousConsultation,
            [0; 16],
            vec!["assistance/nas".parse().unwrap()],
            payload,
        )
    }

    fn who() -> Disclosure {
        Disclosure {
            who: "alice".into(),
            purpose: "sending anonymous-consultation".into(),
            keep_copy: true,
        }
    }

    struct Setup {
        dir: tempfile::TempDir,
        state: State,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(&dir.path().join("state")).unwrap();
        Setup { dir, state }
    }

    impl Setup {
        fn outbox(&self) -> Outbox<'_> {
            Outbox::open(
                &self.state,
                AccessLog::in_state_dir(&self.dir.path().join("state")),
            )
            .unwrap()
        }
        /// `d` sealed and kept under its message id, not handed over (as a process that died
        /// right after would leave it): its key, record and kept envelope.
        async fn kept(&self, relay: &FakeRelay, d: &Draft) -> (Key, Outgoing, pb::Envelope) {
            let key = Key::MessageId(d.message_id);
            let (record, envelope, _) = self
                .outbox()
                .seal_and_keep(relay, d, &key, relay.now())
                .await
                .unwrap();
            (key, record, envelope)
        }
        /// The access log's `disclosed` entries, as (message ids, recipients).
        fn disclosed(&self) -> Vec<(Vec<String>, Vec<String>)> {
            let path = self.dir.path().join("state/access.log");
            std::fs::read_to_string(path)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .filter(|e| e["action"] == "disclosed")
                .map(|e| {
                    let strings = |v: &serde_json::Value| -> Vec<String> {
                        v.as_array()
                            .map(Vec::as_slice)
                            .unwrap_or_default()
                            .iter()
                            .map(|s| s.as_str().unwrap().to_owned())
                            .collect()
                    };
                    (strings(&e["messages"]), strings(&e["recipients"]))
                })
                .collect()
        }
    }

    fn id(sent: &Sent) -> String {
        uuid::Uuid::from_bytes(sent.message_id).to_string()
    }

    #[tokio::test]
    async fn a_message_is_logged_once_before_it_is_sent_and_its_copy_kept() {
        let s = setup();
        let relay = FakeRelay::new(&[Answer::Accept]);
        let d = draft("first");
        let key = Key::Content(content_key(&d));
        let sent = s.outbox().submit(&relay, &d, &key, &who()).await.unwrap();
        assert_eq!(sent.message_id, d.message_id);
        assert!(sent.problems.is_empty(), "{:?}", sent.problems);
        assert!(sent.receipt_checked && !sent.again);
        assert_eq!(sent.receipt.log_index, 8);
        assert_eq!(
            (relay.lookups(), relay.statuses()),
            (1, 0),
            "a first attempt looks the keys up once and asks nothing"
        );
        assert_eq!(
            s.disclosed(),
            [(vec![id(&sent)], vec!["assistance/nas".to_owned()])]
        );
        let copy = s.state.message(&sent.message_id).unwrap().unwrap();
        assert_eq!(copy.direction, Some(crate::record::Direction::Sent));
        assert_eq!(copy.log_index, 8);
        // Finished: the content key is free, the same command again is a new message.
        assert_eq!(s.outbox().record(&key).unwrap(), None);
        let d2 = draft("first");
        let again = s.outbox().submit(&relay, &d2, &key, &who()).await.unwrap();
        assert_ne!(again.message_id, sent.message_id);
        assert_eq!(relay.accepted(), 2);
    }

    #[tokio::test]
    async fn a_retry_after_a_lost_answer_sends_the_same_id_and_bytes() {
        let s = setup();
        let relay = FakeRelay::new(&[Answer::AcceptThenLose, Answer::Accept]);
        let first = draft("lost");
        let key = Key::Content(content_key(&first));
        let e = s
            .outbox()
            .submit(&relay, &first, &key, &who())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Retry { reconnect: true });
        assert_eq!(
            s.outbox().record(&key).unwrap().unwrap().state,
            OutgoingState::Disclosed
        );
        // The command again: a new draft (new id), the same content.
        let rerun = draft("lost");
        assert_ne!(rerun.message_id, first.message_id);
        let sent = s
            .outbox()
            .submit(&relay, &rerun, &key, &who())
            .await
            .unwrap();
        assert_eq!(sent.message_id, first.message_id);
        assert!(sent.again);
        assert_eq!(sent.receipt.log_index, 8, "the same receipt");
        let handed = relay.handed();
        assert_eq!(handed.len(), 2);
        assert_eq!(handed[0], handed[1], "the same bytes");
        assert_eq!(relay.sealed(), 1);
        assert_eq!(relay.accepted(), 1);
        assert_eq!(relay.statuses(), 0, "the same keys: nothing to ask");
        assert_eq!(s.disclosed().len(), 1, "logged once");
    }

    #[tokio::test]
    async fn retryable_failures_keep_the_message_permanent_ones_end_it() {
        let s = setup();
        let relay = FakeRelay::new(&[
            Answer::Refuse(Code::Unavailable),
            Answer::Refuse(Code::ResourceExhausted),
            Answer::Refuse(Code::PermissionDenied),
        ]);
        let d = draft("refused");
        let key = Key::Content(content_key(&d));
        for expected in [
            crate::ErrorKind::Retry { reconnect: true },
            crate::ErrorKind::Retry { reconnect: false },
        ] {
            let e = s
                .outbox()
                .submit(&relay, &d, &key, &who())
                .await
                .unwrap_err();
            assert_eq!(e.kind(), expected);
            assert!(s.outbox().record(&key).unwrap().is_some());
        }
        let e = s
            .outbox()
            .submit(&relay, &d, &key, &who())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::FixInput);
        assert_eq!(s.outbox().record(&key).unwrap(), None, "ended");
        assert_eq!(relay.sealed(), 1);
        assert_eq!(s.disclosed().len(), 1);
        // The corrected (or repeated) command is a new message.
        let d2 = draft("refused");
        let sent = s.outbox().submit(&relay, &d2, &key, &who()).await.unwrap();
        assert_eq!(sent.message_id, d2.message_id);
        assert_eq!(relay.sealed(), 2);
        assert_eq!(s.disclosed().len(), 2);
    }

    #[tokio::test]
    async fn an_invalid_form_is_refused_before_anything_is_kept_or_logged() {
        let s = setup();
        let relay = FakeRelay::new(&[]);
        let mut d = draft("x");
        // Anonymous consultations go to the Assistance System only.
        d.recipients = vec!["centre/c2".parse().unwrap()];
        let key = Key::Content(content_key(&d));
        let e = s
            .outbox()
            .submit(&relay, &d, &key, &who())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::FixInput);
        assert_eq!(s.outbox().record(&key).unwrap(), None);
        assert!(s.disclosed().is_empty());
        assert!(relay.handed().is_empty());
    }

    #[tokio::test]
    async fn a_resend_names_its_original_and_is_sent_once_per_recipient_set() {
        let s = setup();
        let relay = FakeRelay::new(&[Answer::AcceptThenLose]);
        let original = [0x11; 16];
        let key = Key::Resend {
            of: original,
            to: vec!["assistance/nas".into()],
        };
        let d = draft("resent");
        // The answer is lost: the rerun sends the same id and bytes (the relay has them).
        assert!(s.outbox().submit(&relay, &d, &key, &who()).await.is_err());
        let rerun = draft("resent");
        let sent = s
            .outbox()
            .submit(&relay, &rerun, &key, &who())
            .await
            .unwrap();
        assert_eq!(sent.message_id, d.message_id);
        let handed = relay.handed();
        assert_eq!(handed.len(), 2);
        assert_eq!(handed[0], handed[1]);
        let envelope = pb::Envelope::decode(handed[0].as_slice()).unwrap();
        assert_eq!(envelope.resend_of, original.to_vec());
        // Done: running it again gives the same receipt, nothing handed over or sealed again,
        // no second disclosure.
        let again = s
            .outbox()
            .submit(&relay, &draft("resent"), &key, &who())
            .await
            .unwrap();
        assert!(again.again);
        assert_eq!(again.message_id, d.message_id);
        assert_eq!(again.receipt, sent.receipt);
        assert_eq!(relay.handed().len(), 2);
        assert_eq!(relay.sealed(), 1);
        assert_eq!(s.disclosed().len(), 1);
        assert_eq!(relay.accepted(), 1);
        // Another recipient set of the same original is another re-sending.
        let other = Key::Resend {
            of: original,
            to: vec!["assistance/nas".into(), "centre/b".into()],
        };
        let d2 = draft("resent");
        let sent2 = s
            .outbox()
            .submit(&relay, &d2, &other, &who())
            .await
            .unwrap();
        assert_eq!(sent2.message_id, d2.message_id);
        assert_eq!(relay.accepted(), 2);
        // An ordinary send carries no resend_of.
        let d3 = draft("plain");
        s.outbox()
            .submit(&relay, &d3, &Key::MessageId(d3.message_id), &who())
            .await
            .unwrap();
        let last = pb::Envelope::decode(relay.handed().last().unwrap().as_slice()).unwrap();
        assert!(last.resend_of.is_empty());
    }

    /// An original sent to `to`, as `silta resend` reads it back.
    fn original(to: &[&str]) -> crate::resend::Original {
        let mut d = draft("the original");
        d.recipients = to.iter().map(|r| r.parse().unwrap()).collect();
        crate::resend::Original {
            message_id: [0x22; 16],
            draft: d,
            known: Default::default(),
            resent: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_resend_never_goes_to_a_recipient_the_original_was_not_sent_to() {
        use pb::DeliveryState::{Delivered, Undeliverable};
        let s = setup();
        let relay = FakeRelay::new(&[]);
        let m = original(&["assistance/nas"]);
        // A relay that adds a recipient of its choosing, "undeliverable".
        relay.report(
            m.message_id,
            &[
                ("assistance/nas", Delivered),
                ("assistance/evil", Undeliverable),
            ],
        );
        let e = crate::resend::resend(&relay, &s.outbox(), &m, &who())
            .await
            .unwrap_err();
        let crate::resend::ResendError::NothingToResend(why) = e else {
            panic!("{e:?}");
        };
        assert!(why.contains("assistance/evil"), "warned: {why}");
        assert!(why.contains("not sent to"), "{why}");
        assert_eq!(relay.sealed(), 0);
        assert!(relay.handed().is_empty());
        assert!(s.disclosed().is_empty());
        // With the real recipient's copy failing too, only that one is re-sent to.
        relay.report(
            m.message_id,
            &[
                ("assistance/nas", Undeliverable),
                ("assistance/evil", Undeliverable),
            ],
        );
        let r = crate::resend::resend(&relay, &s.outbox(), &m, &who())
            .await
            .unwrap();
        assert_eq!(r.to, ["assistance/nas"]);
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        let e = pb::Envelope::decode(relay.handed()[0].as_slice()).unwrap();
        assert_eq!(e.recipients, ["assistance/nas"]);
    }

    #[tokio::test]
    async fn an_unfinished_resend_is_finished_before_another_so_nobody_gets_it_twice() {
        use pb::DeliveryState::{Delivered, Undeliverable};
        let s = setup();
        let relay = FakeRelay::new(&[Answer::AcceptThenLose]);
        let m = original(&["assistance/nas", "assistance/other"]);
        // nas's copy fails; its re-sending N1 is accepted, but the answer is lost.
        relay.report(
            m.message_id,
            &[
                ("assistance/nas", Undeliverable),
                ("assistance/other", Delivered),
            ],
        );
        let e = crate::resend::resend(&relay, &s.outbox(), &m, &who())
            .await
            .unwrap_err();
        assert!(matches!(e, crate::resend::ResendError::Client(_)), "{e:?}");
        let n1 = pb::Envelope::decode(relay.handed()[0].as_slice()).unwrap();
        assert_eq!(n1.recipients, ["assistance/nas"]);
        // Then other's copy fails too: N1 is finished first (the same id and bytes)...
        relay.report(
            m.message_id,
            &[
                ("assistance/nas", Undeliverable),
                ("assistance/other", Undeliverable),
            ],
        );
        let r = crate::resend::resend(&relay, &s.outbox(), &m, &who())
            .await
            .unwrap();
        assert!(r.finished_earlier);
        assert_eq!(r.sent.message_id.to_vec(), n1.message_id);
        assert_eq!(r.to, ["assistance/nas"]);
        // ... and the next re-sending goes to other only.
        let r2 = crate::resend::resend(&relay, &s.outbox(), &m, &who())
            .await
            .unwrap();
        assert!(!r2.finished_earlier);
        assert_eq!(r2.to, ["assistance/other"]);
        // Then nothing is left.
        let e = crate::resend::resend(&relay, &s.outbox(), &m, &who())
            .await
            .unwrap_err();
        assert!(
            matches!(e, crate::resend::ResendError::NothingToResend(_)),
            "{e:?}"
        );
        // nas got the content under one id only; each recipient once.
        let mut ids_for: HashMap<String, std::collections::BTreeSet<Vec<u8>>> = HashMap::new();
        for bytes in relay.handed() {
            let e = pb::Envelope::decode(bytes.as_slice()).unwrap();
            assert_eq!(e.resend_of, m.message_id.to_vec());
            for r in e.recipients {
                ids_for.entry(r).or_default().insert(e.message_id.clone());
            }
        }
        assert_eq!(ids_for["assistance/nas"].len(), 1, "{ids_for:?}");
        assert_eq!(ids_for["assistance/other"].len(), 1, "{ids_for:?}");
        assert_eq!(relay.accepted(), 2);
        assert_eq!(s.disclosed().len(), 2);
    }

    #[tokio::test]
    async fn a_crash_after_sealing_logs_then_sends_the_kept_bytes() {
        let s = setup();
        let relay = FakeRelay::new(&[]);
        let d = draft("crash");
        // The process died right after keeping the sealed message.
        let (key, _, envelope) = s.kept(&relay, &d).await;
        assert!(s.disclosed().is_empty());
        let sent = s.outbox().submit(&relay, &d, &key, &who()).await.unwrap();
        assert!(sent.again);
        assert_eq!(relay.handed(), [envelope.encode_to_vec()]);
        assert_eq!(s.disclosed().len(), 1);
        assert_eq!(relay.sealed(), 1);
    }

    #[tokio::test]
    async fn a_crash_after_logging_does_not_log_again() {
        let s = setup();
        let relay = FakeRelay::new(&[]);
        let d = draft("crash after log");
        let (key, mut record, envelope) = s.kept(&relay, &d).await;
        let outbox = s.outbox();
        s.outbox()
            .access
            .record(&Access {
                who: "alice",
                principal: "centre/c1",
                action: Action::Disclosed,
                case: &[],
                messages: std::slice::from_ref(&envelope.message_id),
                purpose: "p",
                recipients: &[],
            })
            .unwrap();
        record.state = OutgoingState::Disclosed;
        outbox.put(&key, &record).unwrap();
        let sent = outbox.submit(&relay, &d, &key, &who()).await.unwrap();
        assert_eq!(sent.message_id, d.message_id);
        assert_eq!(relay.handed(), [envelope.encode_to_vec()]);
        assert_eq!(s.disclosed().len(), 1);
    }

    #[tokio::test]
    async fn a_message_id_key_answers_a_repeated_submit_from_its_record() {
        let s = setup();
        let relay = FakeRelay::new(&[]);
        let d = draft("daemon");
        let key = Key::MessageId(d.message_id);
        let no_copy = Disclosure {
            keep_copy: false,
            ..who()
        };
        let sent = s.outbox().submit(&relay, &d, &key, &no_copy).await.unwrap();
        assert!(
            s.state.message(&d.message_id).unwrap().is_none(),
            "no copy kept"
        );
        let record = s.outbox().record(&key).unwrap().unwrap();
        assert_eq!(record.state, OutgoingState::Sent);
        assert!(
            record.envelope.is_empty(),
            "the ciphertext is not kept once sent"
        );
        // The daemon crashed before noting it: submitting again asks nobody.
        let again = s.outbox().submit(&relay, &d, &key, &no_copy).await.unwrap();
        assert_eq!(again.message_id, sent.message_id);
        assert_eq!(again.receipt, sent.receipt);
        assert_eq!(again.ciphertext_sha256, sent.ciphertext_sha256);
        assert_eq!(relay.handed().len(), 1);
        assert_eq!(s.disclosed().len(), 1);
    }

    #[tokio::test]
    async fn a_rerun_after_the_hour_of_an_accepted_message_sends_the_same_id_and_bytes() {
        // 09:00 the relay accepts, the answer is lost; the same command at 10:05.
        let s = setup();
        let relay = FakeRelay::new(&[Answer::AcceptThenLose]);
        let first = draft("lost at nine");
        let key = Key::Content(content_key(&first));
        let nine = relay.now();
        s.outbox()
            .submit(&relay, &first, &key, &who())
            .await
            .unwrap_err();
        relay.advance(REUSE_FOR + Duration::from_secs(5 * 60));
        let rerun = draft("lost at nine");
        let sent = s
            .outbox()
            .submit(&relay, &rerun, &key, &who())
            .await
            .unwrap();
        assert_eq!(sent.message_id, first.message_id, "the same id");
        assert!(sent.again);
        assert_eq!(sent.earlier_attempt, Some(nine));
        assert_eq!(sent.receipt.log_index, 8, "the first receipt");
        let handed = relay.handed();
        assert_eq!(handed.len(), 2);
        assert_eq!(handed[0], handed[1], "the kept bytes");
        assert_eq!(relay.sealed(), 1, "not sealed again");
        assert_eq!(relay.accepted(), 1, "one message at the relay");
        assert_eq!(relay.statuses(), 1);
        assert_eq!(s.disclosed().len(), 1, "logged once");
        assert_eq!(s.outbox().record(&key).unwrap(), None, "finished");
    }

    #[tokio::test]
    async fn a_rerun_after_the_hour_of_a_message_never_accepted_is_resealed_under_its_id() {
        let s = setup();
        let relay = FakeRelay::new(&[Answer::Refuse(Code::Unavailable)]);
        let first = draft("old");
        let key = Key::Content(content_key(&first));
        s.outbox()
            .submit(&relay, &first, &key, &who())
            .await
            .unwrap_err();
        relay.advance(REUSE_FOR);
        let rerun = draft("old");
        let sent = s
            .outbox()
            .submit(&relay, &rerun, &key, &who())
            .await
            .unwrap();
        assert_eq!(sent.message_id, first.message_id, "the same id");
        assert!(sent.again);
        assert_eq!(relay.sealed(), 2, "sealed again to the keys now");
        let handed = relay.handed();
        assert_ne!(handed[0], handed[1]);
        assert_eq!(relay.statuses(), 1);
        assert_eq!(relay.accepted(), 1);
        assert_eq!(s.disclosed().len(), 1, "the same id, case and recipients");
    }

    #[tokio::test]
    async fn an_old_message_that_never_left_is_a_new_message() {
        let s = setup();
        let relay = FakeRelay::new(&[]);
        let d = draft("never left");
        let key = Key::Content(content_key(&d));
        // The command died right after sealing; it is run again the next day.
        s.outbox()
            .seal_and_keep(&relay, &d, &key, relay.now())
            .await
            .unwrap();
        relay.advance(REUSE_FOR);
        let d2 = draft("never left");
        let sent = s.outbox().submit(&relay, &d2, &key, &who()).await.unwrap();
        assert_eq!(sent.message_id, d2.message_id);
        assert!(!sent.again);
        assert_eq!(relay.statuses(), 0);
        assert_eq!(
            s.disclosed(),
            [(vec![id(&sent)], vec!["assistance/nas".to_owned()])]
        );
    }

    #[tokio::test]
    async fn keys_changed_before_a_sealed_message_is_handed_over_reseal_it_under_its_id() {
        let s = setup();
        let relay = FakeRelay::new(&[]);
        let d = draft("keys changed");
        let (key, _, kept) = s.kept(&relay, &d).await;
        relay.change_keys();
        let sent = s.outbox().submit(&relay, &d, &key, &who()).await.unwrap();
        assert_eq!(sent.message_id, d.message_id);
        assert_eq!(relay.sealed(), 2);
        assert_eq!(relay.last_sealed_to(), ["age1c1", "age1nas-device-2"]);
        let handed = relay.handed();
        assert_eq!(handed.len(), 1);
        assert_ne!(
            handed[0],
            kept.encode_to_vec(),
            "not the bytes for the revoked key"
        );
        assert_eq!(relay.statuses(), 0, "never handed over: nothing to ask");
        assert_eq!(s.disclosed().len(), 1);
    }

    /// Kept bytes in format 2, and a device they are sealed to now opens only format 1 (it went
    /// back to an older client, same keys): sealed again under the same id, in format 1. A
    /// record from before formats were recorded counts as format 1 and is kept.
    #[tokio::test]
    async fn kept_bytes_newer_than_a_device_opens_now_are_sealed_again_in_its_format() {
        let s = setup();
        let relay = FakeRelay::new(&[]);
        let d = draft("format went back");
        let (key, record, kept) = s.kept(&relay, &d).await;
        assert_eq!(record.sealed_version, Some(2));
        relay.opens_only(1);
        let sent = s.outbox().submit(&relay, &d, &key, &who()).await.unwrap();
        assert_eq!(sent.message_id, d.message_id);
        assert_eq!(relay.versions(), [2, 1]);
        let handed = relay.handed();
        assert_eq!(handed.len(), 1);
        assert_ne!(handed[0], kept.encode_to_vec(), "not the format-2 bytes");
        assert_eq!(relay.statuses(), 0, "never handed over: nothing to ask");

        // A record without a format (an earlier version's: format 1) is not sealed again.
        let d = draft("older record");
        let (key, mut record, kept) = s.kept(&relay, &d).await;
        record.sealed_version = None;
        s.outbox().put(&key, &record).unwrap();
        s.outbox().submit(&relay, &d, &key, &who()).await.unwrap();
        assert_eq!(relay.versions(), [2, 1, 1]);
        assert_eq!(relay.handed()[1], kept.encode_to_vec(), "the kept bytes");
    }

    #[tokio::test]
    async fn keys_changed_after_a_refused_attempt_reseal_it_under_its_id() {
        let s = setup();
        let relay = FakeRelay::new(&[Answer::Refuse(Code::Unavailable)]);
        let d = draft("daemon retry");
        let key = Key::MessageId(d.message_id);
        s.outbox()
            .submit(&relay, &d, &key, &who())
            .await
            .unwrap_err();
        relay.change_keys();
        let sent = s.outbox().submit(&relay, &d, &key, &who()).await.unwrap();
        assert_eq!(sent.message_id, d.message_id);
        assert_eq!(relay.sealed(), 2);
        assert_eq!(relay.last_sealed_to(), ["age1c1", "age1nas-device-2"]);
        let handed = relay.handed();
        assert_ne!(handed[0], handed[1]);
        assert_eq!(relay.statuses(), 1);
        assert_eq!(relay.accepted(), 1);
        assert_eq!(s.disclosed().len(), 1, "not logged again");
    }

    #[tokio::test]
    async fn keys_changed_after_an_accepted_attempt_send_the_kept_bytes() {
        let s = setup();
        let relay = FakeRelay::new(&[Answer::AcceptThenLose]);
        let d = draft("accepted, then keys changed");
        let key = Key::MessageId(d.message_id);
        s.outbox()
            .submit(&relay, &d, &key, &who())
            .await
            .unwrap_err();
        relay.change_keys();
        let sent = s.outbox().submit(&relay, &d, &key, &who()).await.unwrap();
        assert_eq!(sent.message_id, d.message_id);
        assert_eq!(sent.receipt.log_index, 8);
        let handed = relay.handed();
        assert_eq!(handed[0], handed[1], "the relay has it already");
        assert_eq!(relay.sealed(), 1);
        assert_eq!(relay.statuses(), 1);
        assert_eq!(s.disclosed().len(), 1);
    }

    #[tokio::test]
    async fn every_recipient_key_revoked_after_an_accepted_attempt_still_gets_the_receipt() {
        let s = setup();
        let relay = FakeRelay::new(&[Answer::AcceptThenLose]);
        let d = draft("accepted, then revoked");
        let key = Key::MessageId(d.message_id);
        s.outbox()
            .submit(&relay, &d, &key, &who())
            .await
            .unwrap_err();
        relay.revoke_all();
        let sent = s.outbox().submit(&relay, &d, &key, &who()).await.unwrap();
        assert_eq!(sent.receipt.log_index, 8);
        assert_eq!(relay.sealed(), 1);
    }

    #[tokio::test]
    async fn every_recipient_key_revoked_before_a_message_left_ends_it() {
        let s = setup();
        let relay = FakeRelay::new(&[]);
        let d = draft("revoked before it left");
        let (key, _, _) = s.kept(&relay, &d).await;
        relay.revoke_all();
        let e = s
            .outbox()
            .submit(&relay, &d, &key, &who())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::NoRecipientKeys);
        assert_eq!(s.outbox().record(&key).unwrap(), None, "ended");
        assert!(relay.handed().is_empty());
        assert!(s.disclosed().is_empty());
    }

    /// Keeps `draft` as an earlier version's reply command did (no record of its keys).
    async fn keep_as_an_earlier_version(s: &Setup, relay: &FakeRelay, d: &Draft) -> pb::Envelope {
        let to = relay.age_recipients(d).await.unwrap();
        let envelope = relay.seal_to(d, &to, 2).unwrap();
        let secs = relay
            .now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let mut kept = secs.to_be_bytes().to_vec();
        kept.extend(envelope.encode_to_vec());
        s.state.put_outgoing(&content_key(d), &kept).unwrap();
        envelope
    }

    #[tokio::test]
    async fn a_message_kept_by_an_earlier_version_and_accepted_is_sent_with_its_bytes() {
        let s = setup();
        let relay = FakeRelay::new(&[]);
        let d = draft("legacy");
        let envelope = keep_as_an_earlier_version(&s, &relay, &d).await;
        // The earlier version handed it over; the answer was lost.
        relay.deliver(envelope.clone()).await.unwrap();
        let rerun = draft("legacy");
        let key = Key::Content(content_key(&rerun));
        let sent = s
            .outbox()
            .submit(&relay, &rerun, &key, &who())
            .await
            .unwrap();
        assert_eq!(sent.message_id, d.message_id);
        assert_eq!(
            relay.handed(),
            [envelope.encode_to_vec(), envelope.encode_to_vec()]
        );
        assert_eq!(relay.sealed(), 1, "not sealed again");
        assert_eq!(relay.statuses(), 1, "unknown keys: asked");
        assert_eq!(s.state.outgoing(&content_key(&d)).unwrap(), None);
    }

    #[tokio::test]
    async fn a_message_kept_by_an_earlier_version_and_not_accepted_is_resealed_under_its_id() {
        let s = setup();
        let relay = FakeRelay::new(&[]);
        let d = draft("legacy, never arrived");
        let envelope = keep_as_an_earlier_version(&s, &relay, &d).await;
        let rerun = draft("legacy, never arrived");
        let key = Key::Content(content_key(&rerun));
        let sent = s
            .outbox()
            .submit(&relay, &rerun, &key, &who())
            .await
            .unwrap();
        assert_eq!(sent.message_id, d.message_id);
        assert_eq!(relay.sealed(), 2);
        assert_ne!(relay.handed(), [envelope.encode_to_vec()]);
        assert_eq!(relay.accepted(), 1);
    }

    #[tokio::test]
    async fn nothing_is_sent_when_the_disclosure_cannot_be_logged() {
        let s = setup();
        let relay = FakeRelay::new(&[]);
        let d = draft("no log");
        let key = Key::Content(content_key(&d));
        // A directory where the log file should be: it cannot be appended to.
        std::fs::create_dir_all(s.dir.path().join("state/access.log")).unwrap();
        let e = s
            .outbox()
            .submit(&relay, &d, &key, &who())
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::Access(_)), "{e}");
        assert!(relay.handed().is_empty());
        assert_eq!(
            s.outbox().record(&key).unwrap().unwrap().state,
            OutgoingState::Sealed
        );
    }

    #[tokio::test]
    async fn a_receipt_that_does_not_check_out_is_reported_but_sent() {
        struct BadReceipts(FakeRelay);
        impl Relay for BadReceipts {
            fn sender(&self) -> String {
                self.0.sender()
            }
            fn now(&self) -> SystemTime {
                self.0.now()
            }
            async fn age_recipients(&self, d: &Draft) -> Result<Vec<String>, ClientError> {
                self.0.age_recipients(d).await
            }
            fn seal_version(&self, to: &[String]) -> u32 {
                self.0.seal_version(to)
            }
            fn seal_to(
                &self,
                d: &Draft,
                to: &[String],
                version: u32,
            ) -> Result<pb::Envelope, ClientError> {
                self.0.seal_to(d, to, version)
            }
            async fn status(&self, id: &[u8]) -> Result<Option<pb::StatusResponse>, ClientError> {
                self.0.status(id).await
            }
            async fn deliver(&self, e: pb::Envelope) -> Result<pb::Receipt, ClientError> {
                self.0.deliver(e).await
            }
            fn check_receipt(&self, _: &pb::Receipt, _: &[u8], _: &[u8]) -> Result<bool, String> {
                Err("inclusion proof does not verify".into())
            }
        }
        let s = setup();
        let relay = BadReceipts(FakeRelay::new(&[]));
        let d = draft("bad receipt");
        let key = Key::Content(content_key(&d));
        let sent = s.outbox().submit(&relay, &d, &key, &who()).await.unwrap();
        assert_eq!(
            sent.receipt_problem.as_deref(),
            Some("inclusion proof does not verify")
        );
        assert_eq!(sent.problems.len(), 1);
        assert_eq!(relay.0.accepted(), 1);
    }
}
