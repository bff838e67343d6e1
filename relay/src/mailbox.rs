//! The mailbox: accepting envelopes, streaming them to recipients, acknowledgements and status.
//!
//! The rules here are the relay's half of the security properties: the sender is the
//! certificate's principal; every recipient must be allowed by the policy and known; a message id
//! is bound to one content forever (idempotent retries, `ALREADY_EXISTS` otherwise); every state
//! change is written together with its log event and is on disk before anyone is told.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use silta_certs::Principal;
use silta_proto::pb;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    authz::Permit,
    config::{LimitsConfig, RetentionConfig},
    error::RelayError,
    retention::is_final,
    store::{ItemRecord, MessageRecord, PrincipalRecord, RecipientRecord, Store, abort},
};

/// Bytes in a message id and a case reference.
pub const ID_LEN: usize = 16;
/// Longest rejection detail, in bytes.
pub const MAX_DETAIL_LEN: usize = 512;
/// Item records (ids only, no ciphertext) read from the store per round of a subscription.
const SUBSCRIBE_BATCH: usize = 64;
/// When a sender refused for unacknowledged messages (a full mailbox, its own share of it) is
/// told to try again (`RetryInfo`): recipients acknowledge within minutes when they are up.
const PENDING_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(30);
/// Items a subscription hands to its stream before the reader takes them. Each may carry a
/// ciphertext of up to `limits.max_ciphertext_bytes`, loaded only when its slot is free, so a
/// stalled reader pins at most this many (plus the one being encoded).
const SUBSCRIBE_IN_FLIGHT: usize = 1;

/// The mailbox service logic.
pub struct Mailbox {
    tls: Arc<crate::tls::TlsState>,
    store: Arc<Store>,
    audit: Arc<crate::audit::AuditLog>,
    /// Counts items skipped for an unreadable ciphertext.
    metrics: Arc<crate::metrics::Metrics>,
    limits: LimitsConfig,
    hub: Hub,
    shutdown: watch::Receiver<bool>,
    /// Open subscriptions per principal.
    subscriptions: Arc<Mutex<HashMap<String, u32>>>,
    /// `server.max_connection_age_s`: a subscription ends with its connection.
    max_connection_age: std::time::Duration,
    /// `limits.send_bytes_per_second`, per sender.
    send_bytes: crate::quota::RateLimiter,
    /// `limits.refusal_events_per_hour`: SEND_REFUSED events per sender, over all cases.
    refusal_events: Arc<crate::quota::RateLimiter>,
    /// `[retention]`: when accepted and finished messages are due for the sweeper.
    retention: RetentionConfig,
    /// Known principals; a disabled one's streams end.
    registry: Arc<crate::registry::Registry>,
}

/// One open subscription, counted until dropped.
struct SubscriptionSlot {
    counts: Arc<Mutex<HashMap<String, u32>>>,
    principal: String,
}

impl Drop for SubscriptionSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.principal) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.principal);
            }
        }
    }
}

/// Why a subscription ended by itself.
#[derive(Clone, Copy)]
enum StreamEnd {
    /// The connection reached `server.max_connection_age_s`.
    ConnectionAge,
    /// The client certificate expired.
    CertificateExpired,
    /// A CRL in force went stale under `tls.enforce_crl_expiry`.
    CrlStale,
    /// The admin disabled the principal.
    Disabled,
}

impl StreamEnd {
    fn name(self) -> &'static str {
        match self {
            StreamEnd::ConnectionAge => "connection reached its maximum age",
            StreamEnd::CertificateExpired => "certificate expired",
            StreamEnd::CrlStale => "CRL out of date",
            StreamEnd::Disabled => "principal disabled by the admin",
        }
    }
}

/// Per principal, the highest mailbox seq that is known to be on disk, as a watch channel that
/// wakes the principal's subscriptions when it moves.
///
/// Subscriptions read only up to this mark. A transaction is visible in sled's memory before the
/// group flush makes it durable; without the mark a running subscription could hand out a
/// message whose acceptance a crash then undoes. Seqs of one principal are assigned by the single
/// writer in order and batches are flushed in order, so once seq `s` is durable every smaller seq
/// of that principal is too, and the mark can only grow.
#[derive(Default)]
struct Hub {
    marks: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Hub {
    fn watch(&self, principal: &str) -> watch::Receiver<u64> {
        let mut map = self.marks.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(principal.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Called after the flush that made `seq` durable.
    fn advance(&self, principal: &str, seq: u64) {
        let mut map = self.marks.lock().unwrap_or_else(|e| e.into_inner());
        let mark = map
            .entry(principal.to_owned())
            .or_insert_with(|| watch::channel(0).0);
        mark.send_if_modified(|m| {
            let moved = seq > *m;
            *m = (*m).max(seq);
            moved
        });
    }

    fn advance_all(&self, pushed: &[(String, u64)]) {
        for (principal, seq) in pushed {
            self.advance(principal, *seq);
        }
    }
}

/// An envelope that passed every check that needs no storage ([`check_envelope`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The recipients, parsed, in the envelope's order, no duplicates, not the sender.
    pub recipients: Vec<Principal>,
    /// The envelope's kind (not `Unspecified`).
    pub kind: pb::MessageKind,
}

impl Mailbox {
    #[allow(clippy::too_many_arguments)] // one per shared service; called once, in lib.rs
    pub(crate) fn new(
        store: Arc<Store>,
        limits: LimitsConfig,
        shutdown: watch::Receiver<bool>,
        audit: Arc<crate::audit::AuditLog>,
        tls: Arc<crate::tls::TlsState>,
        max_connection_age: std::time::Duration,
        retention: RetentionConfig,
        metrics: Arc<crate::metrics::Metrics>,
        registry: Arc<crate::registry::Registry>,
    ) -> Result<Self, RelayError> {
        // Everything on disk at start is durable.
        let hub = Hub::default();
        for (principal, record) in store.principals()? {
            hub.advance(&principal, record.next_seq.saturating_sub(1));
        }
        Ok(Mailbox {
            tls,
            store,
            audit,
            metrics,
            hub,
            shutdown,
            subscriptions: Default::default(),
            max_connection_age,
            send_bytes: crate::quota::RateLimiter::new(
                limits.send_bytes_per_second as f64,
                limits
                    .send_bytes_per_second
                    .max(limits.max_ciphertext_bytes.saturating_mul(2)),
            ),
            refusal_events: Arc::new(crate::quota::RateLimiter::new(
                f64::from(limits.refusal_events_per_hour) / 3600.0,
                limits.refusal_events_per_hour.into(),
            )),
            limits,
            retention,
            registry,
        })
    }

    /// Wakes the subscriptions of principals that got mailbox items (`(principal, seq)`) in a
    /// write that is on disk now.
    pub(crate) fn wake(&self, pushed: &[(String, u64)]) {
        self.hub.advance_all(pushed);
    }

    /// Accepts an envelope from the permit's principal.
    pub async fn send(
        &self,
        permit: &Permit,
        mut envelope: pb::Envelope,
    ) -> Result<pb::Receipt, RelayError> {
        let sender = permit.principal().clone();
        let checked = check_envelope(&envelope, &self.limits, &sender)?;
        for r in &checked.recipients {
            permit.check_send(checked.kind, r)?;
        }
        let size = envelope.ciphertext.len();
        // A retry of a message already accepted from this sender is answered with its receipt
        // (in the transaction below) whatever the quotas and the free space say now: it stores
        // nothing new.
        let retry = self.store.message(&envelope.message_id)?.is_some_and(|m| {
            m.sender == sender.to_string()
                && m.envelope.as_ref().map(|e| &e.ciphertext_sha256)
                    == Some(&envelope.ciphertext_sha256)
        });
        if !retry {
            self.admit(&sender, size)?;
        }
        let ciphertext = std::mem::take(&mut envelope.ciphertext);
        // Sealed at rest under a key of its own, which the purge destroys (see keyring).
        let key = crate::keyring::new_key().map_err(|e| {
            RelayError::Store(crate::store::StoreError::Sled(Arc::new(sled::Error::Io(e))))
        })?;
        let sealed = crate::keyring::seal(&key, &envelope.message_id, &ciphertext);
        let size = ciphertext.len() as u64;
        drop(ciphertext);
        let max_pending = self.limits.max_pending_items;
        let max_per_sender = self.limits.max_pending_per_sender;
        let recipients = checked.recipients.clone();
        let retention = self.retention.clone();
        let kind = checked.kind;
        let basis = pb::LegalBasis::try_from(envelope.legal_basis).unwrap_or_default();
        let case_ref = envelope.case_ref.clone();
        let refusal_events = self.refusal_events.clone();
        // The SEND_REFUSED token, taken at most once per send: the closure runs again when a
        // later job of the writer's batch is refused (see `Store::write_tx`).
        let refusal_token = std::cell::Cell::new(None::<bool>);
        let outcome = self
            .store
            .write_tx(move |tx| {
                {
                    let id = envelope.message_id.as_slice();
                    if let Some(existing) = tx.message(id)? {
                        // Same sender and same content (the hash covers the ciphertext): a
                        // retry, answered with the original receipt.
                        if existing.sender == sender.to_string() && existing.envelope.as_ref() == Some(&envelope) {
                            let withdrawing = tx.case(&envelope.case_ref)?.is_some_and(|c| !c.withdrawing.is_empty());
                            return Ok(Ok((existing, None, withdrawing)));
                        }
                        return abort(RelayError::AlreadyExists(format!(
                            "message id {} is already used by a different message",
                            uuid_str(id)
                        )));
                    }
                    let resent = if envelope.resend_of.is_empty() {
                        Vec::new()
                    } else {
                        check_resend_of(tx, &envelope, &sender)?
                    };
                    if !envelope.in_reply_to.is_empty() {
                        check_in_reply_to(tx, &envelope, &sender)?;
                    }
                    // The case rules (metadata only, see cases.rs): a refusal stores no
                    // message, only a bounded SEND_REFUSED event.
                    let send = crate::cases::CaseSend {
                        case_ref: &envelope.case_ref,
                        sender: &sender,
                        kind,
                        basis,
                        recipients: &recipients,
                    };
                    let case_change = if envelope.case_ref.iter().all(|b| *b == 0) {
                        None
                    } else {
                        let case = tx.case(&envelope.case_ref)?;
                        match crate::cases::decide(case.as_ref(), &send) {
                            Ok(change) => Some((case, change)),
                            Err(refusal) => {
                                // Logged at most once per sender and case a minute, and at
                                // most limits.refusal_events_per_hour per sender in all.
                                let mut logged = false;
                                if let Some(mut case) = case {
                                    let now = tx.now();
                                    if crate::cases::note_refusal(&mut case, &sender.to_string(), now.seconds)
                                        && match refusal_token.get() {
                                            Some(ok) => ok,
                                            None => {
                                                let ok = refusal_events.take(&sender, std::time::Instant::now()).is_ok();
                                                refusal_token.set(Some(ok));
                                                ok
                                            }
                                        }
                                    {
                                        tx.append_event(crate::cases::refused_event(&send, refusal.rule, now))?;
                                        tx.put_case(&envelope.case_ref, &case)?;
                                        logged = true;
                                    }
                                }
                                // Counted once the transaction is committed, below.
                                return Ok(Err((refusal.error, logged)));
                            }
                        }
                    };
                    let mut targets = Vec::with_capacity(recipients.len());
                    for r in &recipients {
                        let name = r.to_string();
                        let Some(rec) = tx.principal(&name)? else {
                            return abort(RelayError::NotFound(format!(
                                "unknown recipient {name}: it has never connected to this relay"
                            )));
                        };
                        if rec.disabled {
                            return abort(RelayError::FailedPrecondition(format!(
                                "recipient {name} is disabled at this relay by its administrator: it receives nothing until it is enabled again; nothing was sent"
                            )));
                        }
                        let from_sender = tx.pair_pending(&sender.to_string(), &name)?;
                        if from_sender >= max_per_sender {
                            return abort(RelayError::RateLimited {
                                message: format!(
                                    "{name} has {from_sender} unacknowledged messages from you; limit limits.max_pending_per_sender is {max_per_sender}: wait until it acknowledges some"
                                ),
                                retry_after: PENDING_RETRY_AFTER,
                            });
                        }
                        if rec.pending >= max_pending {
                            return abort(RelayError::RateLimited {
                                message: format!(
                                    "mailbox of {name} is full ({} unacknowledged messages; limit limits.max_pending_items = {max_pending})",
                                    rec.pending
                                ),
                                retry_after: PENDING_RETRY_AFTER,
                            });
                        }
                        targets.push((r, name, rec, from_sender));
                    }
                    // Each re-sent copy names its one re-send, with the acceptance.
                    for (name, mut copy) in resent {
                        copy.resent_as = id.to_vec();
                        tx.put_recipient_state(&envelope.resend_of, &name, &copy)?;
                    }
                    let accepted_at = tx.now();
                    let mut record = MessageRecord {
                        sender: sender.to_string(),
                        envelope: Some(envelope.clone()),
                        accepted_at: Some(accepted_at),
                        log_index: 0,
                        ciphertext_size: size,
                        ..Default::default()
                    };
                    record.log_index = tx.append_event(event_for(
                        &record,
                        accepted_at,
                        pb::EventType::Accepted,
                        &record.sender,
                        envelope.recipients.clone(),
                    ))?;
                    let mut withdrawing = false;
                    if let Some((case, change)) = case_change {
                        let was_withdrawing = case.as_ref().is_some_and(|c| !c.withdrawing.is_empty());
                        let case = crate::cases::apply(case, &change, accepted_at);
                        withdrawing = !case.withdrawing.is_empty();
                        tx.put_case(&envelope.case_ref, &case)?;
                        if was_withdrawing && !withdrawing {
                            // A departed member came back before its withdrawal finished.
                            tx.withdrawal_done(&envelope.case_ref)?;
                        }
                        if change.moved() {
                            tx.append_event(crate::cases::moved_event(&send, id, &case, &change, accepted_at))?;
                        }
                    }
                    tx.store_ciphertext(id, &mut record, &key, &sealed)?;
                    tx.meta.insert(id, prost::Message::encode_to_vec(&record))?;
                    tx.schedule(id, crate::retention::first_look(&record, &retention))?;
                    let mut pushed = Vec::with_capacity(targets.len());
                    for (principal, name, mut rec, from_sender) in targets {
                        tx.set_pair_pending(&record.sender, &name, from_sender + 1)?;
                        let seq = tx.push_item(
                            principal,
                            &mut rec,
                            &ItemRecord {
                                message_id: id.to_vec(),
                                status: None,
                                ..Default::default()
                            },
                        )?;
                        rec.pending += 1;
                        tx.put_principal(&name, &rec)?;
                        tx.put_recipient_state(
                            id,
                            &name,
                            &RecipientRecord {
                                state: pb::DeliveryState::Pending.into(),
                                updated_at: Some(accepted_at),
                                mailbox_seq: seq,
                                log_index: record.log_index,
                                ..Default::default()
                            },
                        )?;
                        pushed.push((name, seq));
                    }
                    Ok(Ok((record, Some(pushed), withdrawing)))
                }
            })
            .await?;
        let (record, pushed, withdrawing) = outcome.map_err(|(e, logged)| {
            if !logged {
                self.metrics.refusal_unlogged();
            }
            tracing::info!(sender = %permit.principal(), kind = kind.as_str_name(), error = %e, "send refused by the case rules");
            e
        })?;
        if let Some(pushed) = pushed {
            self.hub.advance_all(&pushed);
            tracing::info!(
                sender = %record.sender,
                message_id = %uuid_str(&message_id_of(&record)),
                kind = checked.kind.as_str_name(),
                recipients = checked.recipients.len(),
                size = record.ciphertext_size,
                log_index = record.log_index,
                "message accepted"
            );
        } else {
            tracing::info!(sender = %record.sender, log_index = record.log_index, "idempotent resend");
        }
        // A CaseTransfer moved the case (or an earlier withdrawal was cut short): what waits
        // for the centres that left is reported undeliverable before the sender hears back.
        // (`withdrawing` as the send's transaction left the case: no read after the write.)
        if withdrawing {
            self.withdraw_case(&case_ref).await;
        }
        let mut receipt = receipt(&record);
        // Written and flushed: a checkpoint may cover it now.
        let (checkpoint, proof) = self.audit.evidence(record.log_index)?;
        if !checkpoint.is_empty() {
            receipt.log_entry = self.store.leaf(record.log_index)?.unwrap_or_default();
        }
        receipt.checkpoint = checkpoint;
        receipt.inclusion_proof = proof;
        Ok(receipt)
    }

    /// Reports the waiting copies of case `case_ref`'s messages for the centres that left it
    /// as UNDELIVERABLE (CASE_MOVED), see [`crate::cases::withdraw`]. A failure is logged: the
    /// case keeps its mark and the next send in the case, or the next start, finishes.
    async fn withdraw_case(&self, case_ref: &[u8]) {
        match crate::cases::withdraw(&self.store, case_ref, &self.retention).await {
            Ok(pushed) => self.hub.advance_all(&pushed),
            Err(e) => {
                tracing::error!(error = %e, "withdrawing a moved case's messages failed; retried at the next send in the case or the next start")
            }
        }
    }

    /// Finishes every case withdrawal a crash or an error cut short (at start).
    pub(crate) async fn finish_case_withdrawals(&self) -> Result<(), RelayError> {
        for case_ref in crate::cases::unfinished_withdrawals(&self.store)? {
            self.withdraw_case(&case_ref).await;
        }
        Ok(())
    }

    /// Admits `size` new ciphertext bytes from `sender`: its byte rate
    /// (`limits.send_bytes_per_second`), then the free-space reserve (`storage.min_free_bytes`).
    fn admit(&self, sender: &Principal, size: usize) -> Result<(), RelayError> {
        self.send_bytes
            .take_n(sender, size as f64, std::time::Instant::now())
            .map_err(|wait| RelayError::RateLimited {
                message: format!(
                    "{sender} is over limit limits.send_bytes_per_second; retry in {} ms",
                    wait.as_millis().max(1)
                ),
                retry_after: wait,
            })?;
        self.store.admit_send(size)?;
        Ok(())
    }

    /// Streams the permit's mailbox from `after_seq`: what is there, then what arrives. At most
    /// `limits.max_subscriptions_per_principal` streams per principal are open at once. A stream
    /// ends by itself when its connection reaches `server.max_connection_age_s`, when the client
    /// certificate expires or is revoked, or when the CRLs go stale under
    /// `tls.enforce_crl_expiry`: an open stream never outlives the authority it was opened with.
    ///
    /// `device_id` names the caller's device (desk), see [`Mailbox::desk`]: items that device is
    /// done with are skipped, and an envelope another desk already acknowledged or rejected
    /// comes with `handled`.
    pub fn subscribe(
        self: &Arc<Self>,
        permit: &Permit,
        after_seq: u64,
        device_id: &str,
    ) -> Result<ReceiverStream<Result<pb::MailboxItem, tonic::Status>>, RelayError> {
        let principal = permit.principal().clone();
        let desk = self.desk(&principal, permit.peer().cert_sha256(), device_id)?;
        let name = principal.to_string();
        let slot = {
            let max = self.limits.max_subscriptions_per_principal;
            let mut counts = self.subscriptions.lock().unwrap_or_else(|e| e.into_inner());
            let n = counts.entry(name.clone()).or_insert(0);
            if *n >= max {
                return Err(RelayError::RateLimited {
                    message: format!(
                        "{name} already has {n} open subscriptions; limit limits.max_subscriptions_per_principal is {max}"
                    ),
                    retry_after: std::time::Duration::from_secs(5),
                });
            }
            *n += 1;
            SubscriptionSlot {
                counts: self.subscriptions.clone(),
                principal: name,
            }
        };
        let (tx, rx) = mpsc::channel(SUBSCRIBE_IN_FLIGHT);
        let this = self.clone();
        let peer = permit.peer().clone();
        tokio::spawn(async move {
            let _slot = slot;
            let result = this
                .run_subscription(&principal, &desk, &peer, after_seq, &tx)
                .await;
            let status = match result {
                Ok(None) => return,
                Ok(Some(StreamEnd::ConnectionAge)) => tonic::Status::unavailable(
                    "the connection reached its maximum age (server.max_connection_age_s): connect and subscribe again",
                ),
                Ok(Some(StreamEnd::CertificateExpired)) => {
                    tonic::Status::unauthenticated("certificate expired")
                }
                Ok(Some(StreamEnd::CrlStale)) => tonic::Status::unavailable(
                    "the relay's CRL is out of date (tls.enforce_crl_expiry): nothing is served until the operator installs a fresh one",
                ),
                Ok(Some(StreamEnd::Disabled)) => crate::registry::disabled_error(&principal).into(),
                Err(e) => e.into(),
            };
            let _ = tx.send(Err(status)).await;
        });
        Ok(ReceiverStream::new(rx))
    }

    /// When a stream opened on this connection must end, and why.
    fn stream_deadline(
        &self,
        peer: &crate::tls::PeerIdentity,
    ) -> (tokio::time::Instant, StreamEnd) {
        let now = tokio::time::Instant::now();
        let wall = self.store.clock().now();
        let until = |t: std::time::SystemTime| now + t.duration_since(wall).unwrap_or_default();
        let mut deadline = (
            peer.connected_at() + self.max_connection_age,
            StreamEnd::ConnectionAge,
        );
        let expiry = until(peer.not_after());
        if expiry < deadline.0 {
            deadline = (expiry, StreamEnd::CertificateExpired);
        }
        if let Some(stale) = self.tls.crl_deadline().map(until)
            && stale < deadline.0
        {
            deadline = (stale, StreamEnd::CrlStale);
        }
        deadline
    }

    async fn run_subscription(
        &self,
        principal: &Principal,
        desk: &Desk,
        peer: &crate::tls::PeerIdentity,
        mut cursor: u64,
        tx: &mpsc::Sender<Result<pb::MailboxItem, tonic::Status>>,
    ) -> Result<Option<StreamEnd>, RelayError> {
        let name = principal.to_string();
        let serial = peer.serial();
        let mut changes = self.hub.watch(&name);
        let mut shutdown = self.shutdown.clone();
        let mut tls_changes = self.tls.changes();
        let mut disabled_changes = self.registry.disabled_changes();
        let mut deadline = self.stream_deadline(peer);
        // A certificate bound to none of the principal's live desks (an older client, a renewed
        // certificate not yet republished) may read, but what it is handed does not count as
        // DELIVERED for the desks (read once, at the start of the stream).
        let counts_as_delivery =
            *desk != Desk::Principal || live_devices(&self.store, principal)?.is_empty();
        tracing::info!(principal = %name, after_seq = cursor, "subscription opened");
        loop {
            // A stream opened before its certificate was revoked ends at the next CRL reload.
            if self.tls.is_revoked(serial) {
                tracing::info!(principal = %name, serial, "subscription closed: certificate revoked");
                return Err(RelayError::Unauthenticated("certificate revoked".into()));
            }
            // A stream of a principal the admin disabled ends at once (woken below).
            if self.registry.is_disabled(principal) {
                tracing::info!(principal = %name, serial, "subscription closed: principal disabled");
                return Ok(Some(StreamEnd::Disabled));
            }
            if self.registry.is_retired_cert(principal, peer.cert_sha256()) {
                return Err(crate::registry::retired_error());
            }
            if tokio::time::Instant::now() >= deadline.0 {
                tracing::info!(principal = %name, serial, reason = deadline.1.name(), "subscription closed");
                return Ok(Some(deadline.1));
            }
            // Take the durable mark (and mark it seen) before reading, so a change made after
            // the read wakes us up again.
            let durable = *changes.borrow_and_update();
            let items = self
                .store
                .mailbox_items(principal, cursor, durable, SUBSCRIBE_BATCH)?;
            if items.is_empty() {
                tokio::select! {
                    r = changes.changed() => if r.is_err() { return Ok(None) },
                    _ = tls_changes.changed() => deadline = self.stream_deadline(peer),
                    _ = disabled_changes.changed() => {}
                    () = tokio::time::sleep_until(deadline.0) => {}
                    _ = tx.closed() => break,
                    () = crate::tls::stopped(&mut shutdown) => {
                        return Err(RelayError::Unavailable("relay is shutting down; subscribe again later".into()));
                    }
                }
                continue;
            }
            let mut delivered = Vec::new();
            let mut stopping = false;
            for (seq, item) in items {
                // Wait for a free slot before loading anything: a reader that stops reading
                // holds at most SUBSCRIBE_IN_FLIGHT items in memory. (A deadline that passes
                // meanwhile ends the stream at the top of the loop.)
                let slot = tokio::select! {
                    r = tx.reserve() => r.ok(),
                    () = crate::tls::stopped(&mut shutdown) => {
                        stopping = true;
                        None
                    }
                    () = tokio::time::sleep_until(deadline.0) => None,
                };
                let Some(slot) = slot else {
                    break;
                };
                cursor = seq;
                if desk.is_done(&item) {
                    continue;
                }
                let (out, id) = match item.status {
                    Some(status) => (pb::mailbox_item::Item::Status(status), None),
                    None => {
                        let id = item.message_id;
                        // Read per item, not per batch: a copy that ended (acknowledged elsewhere,
                        // reported undeliverable), an item this desk finished on another
                        // connection, or a case this principal left since the batch was read
                        // is not handed out.
                        if !self.still_for(principal, desk, seq, &id)? {
                            continue;
                        }
                        let ciphertext = match self.store.ciphertext(&id) {
                            Ok(c) => c,
                            // Damaged storage under this one message: skip it (it stays in the
                            // mailbox until it expires) and deliver the rest, instead of ending
                            // the subscription at it every time.
                            Err(crate::store::StoreError::Corrupt { tree, detail }) => {
                                self.metrics.ciphertext_unreadable();
                                tracing::error!(message_id = %uuid_str(&id), tree, %detail, "stored ciphertext unreadable; item skipped, the rest of the mailbox is delivered");
                                continue;
                            }
                            Err(e) => return Err(e.into()),
                        };
                        let (Some(meta), Some(ciphertext)) = (self.store.message(&id)?, ciphertext)
                        else {
                            tracing::error!(message_id = %uuid_str(&id), "mailbox item without message; skipped");
                            continue;
                        };
                        let handled = self
                            .store
                            .recipient_states(&id)?
                            .into_iter()
                            .find(|(r, _)| *r == name)
                            .and_then(|(_, s)| handled_of(&s));
                        let sealed_before_device = desk.sealed_before(meta.log_index);
                        let mut envelope = meta.envelope.unwrap_or_default();
                        envelope.ciphertext = ciphertext.into();
                        let out = pb::mailbox_item::Item::Envelope(pb::DeliveredEnvelope {
                            envelope: Some(envelope),
                            sender: meta.sender,
                            accepted_at: meta.accepted_at,
                            log_index: meta.log_index,
                            handled,
                            sealed_before_device,
                        });
                        // A desk that cannot open it does not make it DELIVERED.
                        (out, Some(id).filter(|_| !sealed_before_device))
                    }
                };
                slot.send(Ok(pb::MailboxItem {
                    seq,
                    item: Some(out),
                }));
                // Counted as delivered once handed to this recipient's connection.
                delivered.extend(id);
            }
            if !delivered.is_empty() && counts_as_delivery {
                self.mark_delivered(principal, delivered).await?;
            }
            if stopping {
                return Err(RelayError::Unavailable(
                    "relay is shutting down; subscribe again later".into(),
                ));
            }
            if tx.is_closed() {
                break;
            }
        }
        tracing::info!(principal = %name, "subscription closed");
        Ok(None)
    }

    /// Is mailbox item `seq` (message `id`) still `principal`'s to receive at `desk`: still in
    /// its mailbox, not done with by that desk, and not a message of a case it left by a
    /// CaseTransfer ([`crate::cases::CaseRecord::withheld_from`])?
    fn still_for(
        &self,
        principal: &Principal,
        desk: &Desk,
        seq: u64,
        id: &[u8],
    ) -> Result<bool, RelayError> {
        match self
            .store
            .mailbox_items(principal, seq.saturating_sub(1), seq, 1)?
            .pop()
        {
            Some((_, item)) if !desk.is_done(&item) => {}
            _ => return Ok(false),
        }
        let Some(env) = self.store.message(id)?.and_then(|m| m.envelope) else {
            return Ok(true);
        };
        if env.case_ref.iter().all(|b| *b == 0) {
            return Ok(true);
        }
        let withheld = self
            .store
            .case(&env.case_ref)?
            .is_some_and(|c| c.withheld_from(&principal.to_string(), env.kind));
        Ok(!withheld)
    }

    /// Records the first delivery of each message to `recipient` and tells the senders.
    async fn mark_delivered(
        &self,
        recipient: &Principal,
        ids: Vec<Vec<u8>>,
    ) -> Result<(), RelayError> {
        let recipient_name = recipient.to_string();
        let pushed = self
            .store
            .write_tx(move |tx| {
                let mut pushed = Vec::new();
                for id in &ids {
                    let Some(mut state) = tx.recipient_state(id, &recipient_name)? else {
                        continue;
                    };
                    if state.state != i32::from(pb::DeliveryState::Pending) {
                        continue;
                    }
                    let Some(mut meta) = tx.message(id)? else {
                        continue;
                    };
                    let time = tx.now();
                    let index = tx.append_event(event_for(
                        &meta,
                        time,
                        pb::EventType::Delivered,
                        &recipient_name,
                        vec![recipient_name.clone()],
                    ))?;
                    state.state = pb::DeliveryState::Delivered.into();
                    state.updated_at = Some(time);
                    state.log_index = index;
                    tx.put_recipient_state(id, &recipient_name, &state)?;
                    let seq = push_status(tx, &mut meta, &recipient_name, &state)?;
                    pushed.push((meta.sender, seq));
                }
                Ok(pushed)
            })
            .await?;
        self.hub.advance_all(&pushed);
        Ok(())
    }

    /// Acknowledges or rejects a delivered message, or marks a status item or a handled
    /// envelope item done for the calling device.
    ///
    /// The first acknowledgement or rejection of a copy by any device of the principal decides
    /// it (event, status item to the sender, pending counters); a later device's answer changes
    /// nothing and writes no event: the answer carries the first decision's log index and the
    /// deciding device (`decided_by`), and the later device still gets the item (with
    /// `handled`) until it finishes it with done_seq. A desk sealed before the message may not
    /// acknowledge it, and a CANNOT_DECRYPT rejection decides only when no other desk that may
    /// read it is still to answer (otherwise it marks the calling desk done). An item leaves
    /// the mailbox once every live device of the principal is done with it ([`mark_done`]).
    pub async fn ack(
        &self,
        permit: &Permit,
        request: pb::AckRequest,
    ) -> Result<pb::AckResponse, RelayError> {
        let recipient = permit.principal().clone();
        check_ack(&request)?;
        let desk = self.desk(&recipient, permit.peer().cert_sha256(), &request.device_id)?;
        let live = live_devices(&self.store, &recipient)?;
        // A certificate bound to none of the live desks would otherwise act for all of them
        // (take status items before the other desks saw them, decide copies for them).
        if desk == Desk::Principal && !live.is_empty() {
            return Err(RelayError::FailedPrecondition(format!(
                "the certificate you connected with has no published device keys, but {recipient} has desks that do: publish this desk's keys first (silta keys publish; after a certificate renewal, publish the same device id again)"
            )));
        }
        // The signer is always the resolved calling desk, whether named or not.
        if let (Some(pb::ack_request::Target::Acknowledge(a)), Desk::Device { id, .. }) =
            (&request.target, &desk)
            && a.signer_key != *id
        {
            return Err(RelayError::PermissionDenied(format!(
                "acknowledge.signer_key {:?} is not the calling device {:?}: a desk acknowledges with its own key",
                clip(&a.signer_key),
                clip(id)
            )));
        }
        let target = request.target.ok_or_else(no_ack_target)?;
        let outcome = match target {
            pb::ack_request::Target::StatusSeq(seq) => {
                return self.ack_item(recipient, desk, seq, false).await;
            }
            pb::ack_request::Target::DoneSeq(seq) => {
                return self.ack_item(recipient, desk, seq, true).await;
            }
            pb::ack_request::Target::Acknowledge(a) => Outcome::Ack(a),
            pb::ack_request::Target::Reject(r) => Outcome::Reject(r),
        };
        // An acknowledgement is evidence in the log: its signature must verify with the published
        // key of the device it names.
        if let Outcome::Ack(a) = &outcome {
            self.check_ack_signature(&recipient, a)?;
        }
        let name = recipient.to_string();
        let purge_after = i64::try_from(self.retention.purge_after_final_s).unwrap_or(i64::MAX);
        let (index, pushed, decided_by) = self
            .store
            .write_tx(move |tx| {
                {
                    let id = outcome.message_id();
                    let Some(mut state) = tx.recipient_state(id, &name)? else {
                        return abort(RelayError::NotFound(format!(
                            "no message {} in your mailbox",
                            uuid_str(id)
                        )));
                    };
                    let Some(mut meta) = tx.message(id)? else {
                        return abort(RelayError::NotFound(format!("no message {}", uuid_str(id))));
                    };
                    let current = pb::DeliveryState::try_from(state.state).unwrap_or_default();
                    let target_state = outcome.state();
                    if current == pb::DeliveryState::Undeliverable {
                        return abort(RelayError::FailedPrecondition(format!(
                            "message {} was reported undeliverable to its sender ({}) before it was answered; the sender may send it again",
                            uuid_str(id),
                            pb::UndeliverableReason::try_from(state.undeliverable_reason)
                                .unwrap_or_default()
                                .as_str_name()
                        )));
                    }
                    if current == pb::DeliveryState::Expired {
                        return abort(RelayError::FailedPrecondition(format!(
                            "message {} expired before it was answered (retention.expire_after_s at the relay); the sender was told and may send it again",
                            uuid_str(id)
                        )));
                    }
                    if !is_final(state.state) {
                        check_not_withheld(tx, &meta, &name)?;
                    }
                    let now = tx.now();
                    // A desk whose keys came after the message was sealed cannot have read it:
                    // it may only say so (CANNOT_DECRYPT, which decides nothing) or finish it.
                    let cannot_decrypt = matches!(&outcome, Outcome::Reject(r) if r.reason == i32::from(pb::RejectionReason::CannotDecrypt));
                    if !cannot_decrypt && desk.sealed_before(meta.log_index) {
                        return abort(RelayError::FailedPrecondition(format!(
                            "message {} was sealed before this desk's keys were published (sealed_before_device): this desk cannot have read it, so it cannot acknowledge or judge it; finish it here with done_seq",
                            uuid_str(id)
                        )));
                    }
                    // "Cannot decrypt" at one desk says nothing about the others: it decides for
                    // the principal only when no other desk the message may have been sealed to
                    // is still to answer; otherwise this desk is just done with it.
                    if cannot_decrypt
                        && !is_final(state.state)
                        && (desk.sealed_before(meta.log_index)
                            || other_reader_open(tx, &recipient, &desk, &live, state.mailbox_seq, id, meta.log_index)?)
                    {
                        if let Some(item) = tx.item(&recipient, state.mailbox_seq)?
                            && item.message_id == id
                        {
                            mark_done(tx, &recipient, state.mailbox_seq, item, &desk, &live, now.seconds, false)?;
                        }
                        return Ok((0, None, String::new()));
                    }
                    if matches!(
                        current,
                        pb::DeliveryState::Acknowledged | pb::DeliveryState::Rejected
                    ) {
                        // Another desk decided first: nothing changes and no event is written;
                        // the answer names that desk (decided_by). This desk is not done with
                        // the item: it comes again with the signed decision (`handled`) for the
                        // desk to check, and is finished with done_seq.
                        let other_desk = matches!(&desk, Desk::Device { id, .. } if *id != state.decided_by);
                        // Repeating the same answer is a retry; changing it is not allowed.
                        if other_desk || current == target_state {
                            if !other_desk
                                && let Some(item) = tx.item(&recipient, state.mailbox_seq)?
                                && item.message_id == id
                            {
                                mark_done(tx, &recipient, state.mailbox_seq, item, &desk, &live, now.seconds, true)?;
                            }
                            let decided_by = if state.decided_by.is_empty() {
                                state.ack_device.clone()
                            } else {
                                state.decided_by.clone()
                            };
                            return Ok((state.log_index, None, decided_by));
                        }
                        return abort(RelayError::FailedPrecondition(format!(
                            "message {} was already {}",
                            uuid_str(id),
                            if current == pb::DeliveryState::Acknowledged {
                                "acknowledged"
                            } else {
                                "rejected"
                            }
                        )));
                    }
                    let time = now;
                    let mut event =
                        event_for(&meta, time, outcome.event_type(), &name, vec![name.clone()]);
                    match &outcome {
                        Outcome::Ack(a) => {
                            let stored = meta
                                .envelope
                                .as_ref()
                                .map(|e| e.ciphertext_sha256.as_slice());
                            if stored != Some(a.ciphertext_sha256.as_slice()) {
                                return abort(RelayError::InvalidArgument(
                                    "acknowledge.ciphertext_sha256 does not match the message"
                                        .into(),
                                ));
                            }
                            event.ack_signature = a.signature.clone();
                            event.ack_device = a.signer_key.clone();
                            event.detail = format!("device {}", a.signer_key);
                            state.ack_signature = a.signature.clone();
                            state.ack_device = a.signer_key.clone();
                        }
                        Outcome::Reject(r) => {
                            event.rejection_reason = r.reason;
                            event.detail = r.detail.clone();
                            state.rejection_reason = r.reason;
                            state.detail = r.detail.clone();
                        }
                    }
                    let index = tx.append_event(event)?;
                    state.state = target_state.into();
                    state.updated_at = Some(time);
                    state.log_index = index;
                    state.decided_by = desk.id().unwrap_or_default().to_owned();
                    tx.put_recipient_state(id, &name, &state)?;
                    if let Some(mut item) = tx.item(&recipient, state.mailbox_seq)? {
                        // The hold for the other desks runs from the decision.
                        item.handled_at = time.seconds;
                        mark_done(tx, &recipient, state.mailbox_seq, item, &desk, &live, time.seconds, true)?;
                    }
                    if let Some(mut rec) = tx.principal(&name)? {
                        rec.pending = rec.pending.saturating_sub(1);
                        tx.put_principal(&name, &rec)?;
                    }
                    let from_sender = tx.pair_pending(&meta.sender, &name)?;
                    tx.set_pair_pending(&meta.sender, &name, from_sender.saturating_sub(1))?;
                    let seq = push_status(tx, &mut meta, &name, &state)?;
                    // Final now: the sweeper may purge once every copy is (and no desk still
                    // holds the item).
                    tx.schedule(id, time.seconds.saturating_add(purge_after))?;
                    Ok((index, Some((meta.sender, seq)), state.decided_by.clone()))
                }
            })
            .await?;
        if let Some((sender, seq)) = pushed {
            self.hub.advance(&sender, seq);
        }
        Ok(pb::AckResponse {
            log_index: index,
            decided_by,
        })
    }

    /// Which desk of `principal` a request made with the certificate `cert_sha256` is for.
    /// `requested` (a device id) must be a live device of the principal bound to that
    /// certificate (`PERMISSION_DENIED` otherwise). Empty: the one live device bound to the
    /// certificate; none: the principal-wide mailbox of earlier versions ([`Desk::Principal`]);
    /// several: `INVALID_ARGUMENT` (name one).
    pub(crate) fn desk(
        &self,
        principal: &Principal,
        cert_sha256: &[u8; 32],
        requested: &str,
    ) -> Result<Desk, RelayError> {
        let desk = |id: String, d: &crate::store::DeviceRecord| Desk::Device {
            id,
            since_index: d.since_index,
        };
        if !requested.is_empty() {
            if !crate::directory::valid_device_id(requested) {
                return Err(RelayError::InvalidArgument(
                    "device_id must be a device id: 1-64 characters a-z 0-9 . _ -".into(),
                ));
            }
            return match self.store.device(principal, requested)? {
                Some(d) if !d.retired && d.cert_sha256.as_slice() == cert_sha256.as_slice() => {
                    Ok(desk(requested.to_owned(), &d))
                }
                Some(d) if d.retired => Err(RelayError::PermissionDenied(format!(
                    "device {requested:?} of {principal} was retired by the relay's administrator"
                ))),
                Some(_) => Err(RelayError::PermissionDenied(format!(
                    "device {requested:?} of {principal} is bound to another certificate than the one you connected with: if this desk's certificate was renewed, publish the same device's keys again with it (silta keys publish); another desk uses its own device id"
                ))),
                None => Err(RelayError::PermissionDenied(format!(
                    "device {requested:?} is not a published device of {principal}: publish its keys first (silta keys publish)"
                ))),
            };
        }
        let mut mine: Vec<(String, crate::store::DeviceRecord)> = self
            .store
            .readable_devices(principal)?
            .into_iter()
            .filter(|(_, d)| !d.retired && d.cert_sha256.as_slice() == cert_sha256.as_slice())
            .collect();
        match mine.len() {
            0 => Ok(Desk::Principal),
            1 => {
                let (id, d) = mine.remove(0);
                Ok(desk(id, &d))
            }
            n => Err(RelayError::InvalidArgument(format!(
                "your certificate published keys for {n} devices of {principal}: name the device in device_id"
            ))),
        }
    }

    /// `status_seq` (`done_envelope` false) or `done_seq` (true): the desk is done with item
    /// `seq`. A status item is always done with; an envelope item only once its copy is final
    /// (another desk answered it, or it expired or was reported undeliverable) or when it was
    /// sealed before this desk's keys (`FAILED_PRECONDITION` otherwise: acknowledge or reject
    /// it). No delivery state changes and no event is written.
    async fn ack_item(
        &self,
        principal: Principal,
        desk: Desk,
        seq: u64,
        done_envelope: bool,
    ) -> Result<pb::AckResponse, RelayError> {
        let live = live_devices(&self.store, &principal)?;
        let name = principal.to_string();
        let hold = self.retention.handled_hold_s();
        let index = self
            .store
            .write(move |trees| {
                trees.transaction(|tx| {
                    let now = tx.now().seconds;
                    let Some(item) = tx.item(&principal, seq)? else {
                        return abort(RelayError::NotFound(if done_envelope {
                            format!("no item {seq} in your mailbox")
                        } else {
                            format!("no status item {seq} in your mailbox")
                        }));
                    };
                    match (item.status.is_some(), done_envelope) {
                        (true, false) => {
                            // The hold for the other desks runs from the first confirmation: the
                            // sweeper looks at the message then.
                            if item.handled_at == 0
                                && matches!(desk, Desk::Device { .. })
                                && let Some(status) = &item.status
                            {
                                tx.schedule(&status.message_id, now.saturating_add(hold))?;
                            }
                            mark_done(tx, &principal, seq, item, &desk, &live, now, true)?;
                            Ok(0)
                        }
                        (false, false) => abort(RelayError::InvalidArgument(format!(
                            "item {seq} is a message, not a status event: acknowledge or reject it by message id"
                        ))),
                        (true, true) => abort(RelayError::InvalidArgument(format!(
                            "item {seq} is a status event: confirm it with status_seq"
                        ))),
                        (false, true) => {
                            let id = item.message_id.clone();
                            let state = tx.recipient_state(&id, &name)?.unwrap_or_default();
                            let accepted = tx.message(&id)?.map_or(0, |m| m.log_index);
                            let final_copy = is_final(state.state);
                            if !final_copy && !desk.sealed_before(accepted) {
                                return abort(RelayError::FailedPrecondition(format!(
                                    "message {} is not yet acknowledged or rejected by any desk of {name}: acknowledge or reject it (done_seq is for a message another desk handled, or one sealed before this desk's keys were published)",
                                    uuid_str(&id)
                                )));
                            }
                            mark_done(tx, &principal, seq, item, &desk, &live, now, final_copy)?;
                            Ok(if final_copy { state.log_index } else { 0 })
                        }
                    }
                })
            })
            .await?;
        Ok(pb::AckResponse {
            log_index: index,
            decided_by: String::new(),
        })
    }

    /// Verifies an acknowledgement's signature against the recipient's published device key:
    /// the latest bundle of the device it names, whose certificate is neither expired nor
    /// revoked. A recipient without published keys cannot acknowledge: an acknowledgement nobody
    /// can check is no evidence. Two lookups and one signature check, whatever the caller has
    /// published.
    fn check_ack_signature(
        &self,
        recipient: &Principal,
        a: &pb::Acknowledgement,
    ) -> Result<(), RelayError> {
        use prost::Message as _;
        let Some(device) = self.store.device(recipient, &a.signer_key)? else {
            let any = !self.store.devices_empty(recipient)?;
            return Err(if any {
                RelayError::InvalidArgument(format!(
                    "acknowledge.signer_key {:?} is not a published device of {recipient}",
                    clip(&a.signer_key)
                ))
            } else {
                RelayError::FailedPrecondition(format!(
                    "{recipient} has no published device keys, so its acknowledgement could not be checked: publish keys first (silta keys publish)"
                ))
            });
        };
        if device.retired {
            return Err(RelayError::FailedPrecondition(format!(
                "device {:?} was retired by the relay's administrator: acknowledge from a current device",
                clip(&a.signer_key)
            )));
        }
        let now_s = self.store.clock().unix_seconds();
        if device.cert_not_after <= now_s || self.tls.is_revoked(&device.cert_serial) {
            return Err(RelayError::FailedPrecondition(format!(
                "the certificate of device {:?} is expired or revoked: publish the device's keys with a valid certificate first",
                clip(&a.signer_key)
            )));
        }
        let key = self
            .store
            .bundle(recipient, device.latest_seq)?
            .and_then(|b| b.bundle)
            .and_then(|b| pb::KeyBundleContent::decode(b.content.as_slice()).ok())
            .and_then(|c| <[u8; 32]>::try_from(c.ed25519_public_key.as_slice()).ok())
            .and_then(|k| ed25519_dalek::VerifyingKey::from_bytes(&k).ok())
            .ok_or_else(|| {
                RelayError::Store(crate::store::StoreError::Corrupt {
                    tree: "principalseq_bundle",
                    detail: "a device's latest bundle is missing or unreadable".into(),
                })
            })?;
        let sig: [u8; 64] = a.signature.as_slice().try_into().unwrap_or([0; 64]);
        let msg = [
            silta_proto::context::ACK,
            a.message_id.as_slice(),
            a.ciphertext_sha256.as_slice(),
        ]
        .concat();
        key.verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig))
            .map_err(|_| {
                RelayError::InvalidArgument(
                    "acknowledge.signature does not verify with the device's published key".into(),
                )
            })?;
        Ok(())
    }

    /// Removes every item of `principal`'s mailbox that each live device is done with (after
    /// devices were retired: the items only they still held). Batches of
    /// [`SUBSCRIBE_BATCH`] items, one transaction each; returns how many went.
    pub(crate) async fn release_done(&self, principal: &Principal) -> Result<u64, RelayError> {
        let live = live_devices(&self.store, principal)?;
        let name = principal.to_string();
        let mut cursor = 0u64;
        let mut total = 0u64;
        loop {
            let items =
                self.store
                    .mailbox_items(principal, cursor, u64::MAX - 1, SUBSCRIBE_BATCH)?;
            let Some((last, _)) = items.last() else {
                break;
            };
            cursor = *last;
            let seqs: Vec<u64> = items
                .into_iter()
                .filter(|(_, i)| !i.done_devices.is_empty())
                .map(|(s, _)| s)
                .collect();
            if seqs.is_empty() {
                continue;
            }
            let (principal, name, live) = (principal.clone(), name.clone(), live.clone());
            total += self
                .store
                .write(move |trees| {
                    trees.transaction(|tx| {
                        let mut n = 0u64;
                        for seq in &seqs {
                            let Some(item) = tx.item(&principal, *seq)? else {
                                continue;
                            };
                            let removable = item.status.is_some()
                                || tx
                                    .recipient_state(&item.message_id, &name)?
                                    .is_some_and(|s| is_final(s.state));
                            if removable && all_done(tx, &principal, &item, &live)? {
                                tx.remove_item(&principal, *seq)?;
                                n += 1;
                            }
                        }
                        Ok(n)
                    })
                })
                .await?;
        }
        Ok(total)
    }

    /// [`Mailbox::release_done`] for every principal with a retired device: finishes an
    /// `Admin.RetireDevices` that stopped (a crash) between retiring the devices and removing
    /// the items only they still held. Run at start; returns how many items went.
    pub(crate) async fn release_retired(&self) -> Result<u64, RelayError> {
        let mut total = 0;
        for (name, _) in self.store.principals()? {
            let Ok(principal) = name.parse::<Principal>() else {
                continue;
            };
            if self
                .store
                .devices(&principal)?
                .iter()
                .any(|(_, d)| d.retired)
            {
                total += self.release_done(&principal).await?;
            }
        }
        Ok(total)
    }

    /// Per-recipient state of a message the caller sent. Someone else's message is reported as
    /// not found, so the answer reveals nothing about other principals' traffic.
    pub fn status(
        &self,
        permit: &Permit,
        message_id: &[u8],
    ) -> Result<pb::StatusResponse, RelayError> {
        check_id("message_id", message_id)?;
        let not_found =
            || RelayError::NotFound(format!("you sent no message {}", uuid_str(message_id)));
        let meta = self.store.message(message_id)?.ok_or_else(not_found)?;
        if meta.sender != permit.principal().to_string() {
            return Err(not_found());
        }
        let recipients = self
            .store
            .recipient_states(message_id)?
            .into_iter()
            .map(|(recipient, s)| pb::RecipientStatus {
                recipient,
                state: s.state,
                updated_at: s.updated_at,
                rejection_reason: s.rejection_reason,
                detail: s.detail,
                undeliverable_reason: s.undeliverable_reason,
            })
            .collect();
        Ok(pb::StatusResponse {
            message_id: message_id.to_vec(),
            accepted_at: meta.accepted_at,
            recipients,
        })
    }
}

/// The device (desk) of a principal a subscription or an acknowledgement is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Desk {
    /// A live device bound to the caller's certificate.
    Device {
        /// Its device id.
        id: String,
        /// [`crate::store::DeviceRecord::since_index`]: messages accepted before it were not
        /// sealed to it.
        since_index: u64,
    },
    /// No device: the principal-wide mailbox of earlier versions (done for every device at
    /// once: the item is removed).
    Principal,
}

impl Desk {
    fn id(&self) -> Option<&str> {
        match self {
            Desk::Device { id, .. } => Some(id),
            Desk::Principal => None,
        }
    }

    /// Is this desk done with `item`?
    fn is_done(&self, item: &ItemRecord) -> bool {
        self.id()
            .is_some_and(|id| item.done_devices.iter().any(|d| d == id))
    }

    /// Was a message accepted at log index `accepted` sealed before this device published its
    /// keys (so it cannot be opened here)?
    fn sealed_before(&self, accepted: u64) -> bool {
        matches!(self, Desk::Device { since_index, .. } if *since_index != 0 && accepted < *since_index)
    }
}

/// The live devices of `principal`: published and not retired. Read before a transaction
/// (sled transactions cannot scan); [`mark_done`] re-reads each one in its transaction.
pub(crate) fn live_devices(
    store: &Store,
    principal: &Principal,
) -> Result<Vec<String>, crate::store::StoreError> {
    Ok(store
        .readable_devices(principal)?
        .into_iter()
        .filter(|(_, d)| !d.retired)
        .map(|(id, _)| id)
        .collect())
}

/// Marks `desk` done with `principal`'s item `seq` (`item`, as read in this transaction) at
/// `now`. The item is removed at once for the principal-wide desk, and otherwise once every
/// device of `live` that is still live in this transaction is done with it -- but an envelope
/// only once its copy is final (`removable`): an open copy stays until some desk answers it or
/// it ends. Returns whether it was removed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn mark_done(
    tx: &crate::store::Tx<'_>,
    principal: &Principal,
    seq: u64,
    mut item: ItemRecord,
    desk: &Desk,
    live: &[String],
    now: i64,
    removable: bool,
) -> Result<bool, sled::transaction::ConflictableTransactionError<RelayError>> {
    let Desk::Device { id, .. } = desk else {
        if removable {
            remove_done(tx, principal, seq, &item, now)?;
        }
        return Ok(removable);
    };
    if !item.done_devices.contains(id) {
        item.done_devices.push(id.clone());
    }
    if item.status.is_some() && item.handled_at == 0 {
        item.handled_at = now;
    }
    if removable && all_done(tx, principal, &item, live)? {
        remove_done(tx, principal, seq, &item, now)?;
        return Ok(true);
    }
    tx.put_item(principal, seq, &item)?;
    Ok(false)
}

/// Removes item `seq` every desk is done with. For an envelope the sweeper looks at the message
/// again at once: while the item was held its purge waited for the hold; now
/// `retention.purge_after_final_s` applies again.
fn remove_done(
    tx: &crate::store::Tx<'_>,
    principal: &Principal,
    seq: u64,
    item: &ItemRecord,
    now: i64,
) -> Result<(), sled::transaction::ConflictableTransactionError<RelayError>> {
    tx.remove_item(principal, seq)?;
    if item.status.is_none() && !item.message_id.is_empty() {
        tx.schedule(&item.message_id, now)?;
    }
    Ok(())
}

/// Is a live desk of `principal` other than `desk`, one the message accepted at log index
/// `accepted` may have been sealed to (its keys published at or before it), not yet done with
/// the message's item `seq` (message `id`)?
#[allow(clippy::too_many_arguments)]
fn other_reader_open(
    tx: &crate::store::Tx<'_>,
    principal: &Principal,
    desk: &Desk,
    live: &[String],
    seq: u64,
    id: &[u8],
    accepted: u64,
) -> Result<bool, sled::transaction::ConflictableTransactionError<RelayError>> {
    let done = match tx.item(principal, seq)? {
        Some(item) if item.message_id == id => item.done_devices,
        _ => Vec::new(),
    };
    for d in live {
        if Some(d.as_str()) == desk.id() || done.contains(d) {
            continue;
        }
        if tx
            .device(principal, d)?
            .is_some_and(|r| !r.retired && (r.since_index == 0 || r.since_index <= accepted))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Is every device of `live` that is still live (in this transaction) done with `item`?
pub(crate) fn all_done(
    tx: &crate::store::Tx<'_>,
    principal: &Principal,
    item: &ItemRecord,
    live: &[String],
) -> Result<bool, sled::transaction::ConflictableTransactionError<RelayError>> {
    for d in live {
        if item.done_devices.contains(d) {
            continue;
        }
        if tx.device(principal, d)?.is_some_and(|r| !r.retired) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// How a copy was decided, for a desk that did not decide it (`DeliveredEnvelope.handled`).
fn handled_of(state: &RecipientRecord) -> Option<pb::Handled> {
    let decided = matches!(
        pb::DeliveryState::try_from(state.state),
        Ok(pb::DeliveryState::Acknowledged | pb::DeliveryState::Rejected)
    );
    decided.then(|| pb::Handled {
        device: if state.decided_by.is_empty() {
            state.ack_device.clone()
        } else {
            state.decided_by.clone()
        },
        time: state.updated_at,
        state: state.state,
        ack_signature: state.ack_signature.clone(),
        log_index: state.log_index,
        rejection_reason: state.rejection_reason,
    })
}

enum Outcome {
    Ack(pb::Acknowledgement),
    Reject(pb::Rejection),
}

impl Outcome {
    fn message_id(&self) -> &[u8] {
        match self {
            Outcome::Ack(a) => &a.message_id,
            Outcome::Reject(r) => &r.message_id,
        }
    }

    fn state(&self) -> pb::DeliveryState {
        match self {
            Outcome::Ack(_) => pb::DeliveryState::Acknowledged,
            Outcome::Reject(_) => pb::DeliveryState::Rejected,
        }
    }

    fn event_type(&self) -> pb::EventType {
        match self {
            Outcome::Ack(_) => pb::EventType::Acknowledged,
            Outcome::Reject(_) => pb::EventType::Rejected,
        }
    }
}

/// Puts a status item about `recipient`'s copy into the sender's mailbox and notes its seq in
/// the message's metadata (written); returns the seq.
pub(crate) fn push_status(
    tx: &crate::store::Tx<'_>,
    meta: &mut MessageRecord,
    recipient: &str,
    state: &RecipientRecord,
) -> Result<u64, sled::transaction::ConflictableTransactionError<RelayError>> {
    let Ok(sender) = meta.sender.parse::<Principal>() else {
        return abort(RelayError::Store(crate::store::StoreError::Corrupt {
            tree: "msgid_meta",
            detail: "sender is not a principal".into(),
        }));
    };
    let mut rec: PrincipalRecord = tx.principal(&meta.sender)?.unwrap_or_default();
    let item = ItemRecord {
        message_id: Vec::new(),
        status: Some(pb::StatusEvent {
            message_id: message_id_of(meta),
            recipient: recipient.to_owned(),
            state: state.state,
            time: state.updated_at,
            rejection_reason: state.rejection_reason,
            detail: state.detail.clone(),
            log_index: state.log_index,
            ack_signature: state.ack_signature.clone(),
            ack_device: state.ack_device.clone(),
            undeliverable_reason: state.undeliverable_reason,
        }),
        ..Default::default()
    };
    let seq = tx.push_item(&sender, &mut rec, &item)?;
    tx.put_principal(&meta.sender, &rec)?;
    meta.status_seqs.push(seq);
    tx.put_message(&message_id_of(meta), meta)?;
    Ok(seq)
}

/// The log event for a change concerning a message: metadata and digest only.
pub(crate) fn event_for(
    meta: &MessageRecord,
    time: prost_types::Timestamp,
    kind: pb::EventType,
    actor: &str,
    recipients: Vec<String>,
) -> pb::Event {
    let env = meta.envelope.clone().unwrap_or_default();
    pb::Event {
        index: 0,
        r#type: kind.into(),
        time: Some(time),
        actor: actor.to_owned(),
        message_id: env.message_id,
        case_ref: env.case_ref,
        kind: env.kind,
        sender: meta.sender.clone(),
        recipients,
        ciphertext_sha256: env.ciphertext_sha256,
        urgency: env.urgency,
        legal_basis: env.legal_basis,
        ciphertext_size: meta.ciphertext_size,
        resend_of: if kind == pb::EventType::Accepted {
            env.resend_of
        } else {
            Vec::new()
        },
        ..Default::default()
    }
}

/// An open copy of a message in a case `recipient` left by a CaseTransfer is being reported
/// undeliverable (CASE_MOVED): it can no longer be answered (`FAILED_PRECONDITION`).
fn check_not_withheld(
    tx: &crate::store::Tx<'_>,
    meta: &MessageRecord,
    recipient: &str,
) -> Result<(), sled::transaction::ConflictableTransactionError<RelayError>> {
    let Some(env) = meta.envelope.as_ref() else {
        return Ok(());
    };
    if env.case_ref.iter().all(|b| *b == 0) {
        return Ok(());
    }
    if tx
        .case(&env.case_ref)?
        .is_some_and(|c| c.withheld_from(recipient, env.kind))
    {
        return abort(RelayError::FailedPrecondition(format!(
            "message {} is in case {} which {recipient} left by a CaseTransfer: it is reported undeliverable to its sender (CASE_MOVED) and can no longer be answered",
            uuid_str(&env.message_id),
            hex::encode(&env.case_ref)
        )));
    }
    Ok(())
}

/// `Envelope.resend_of` against the store: the earlier message exists and is the sender's
/// (`NOT_FOUND` otherwise, the same answer whoever sent it, so no other sender's ids are
/// revealed), in the same case and of the same kind (`INVALID_ARGUMENT` otherwise), and every
/// recipient of the re-send had a copy of it that cannot be read: UNDELIVERABLE for a reason
/// other than CASE_MOVED (a moved case is not re-sent into), or REJECTED as CANNOT_DECRYPT
/// (`FAILED_PRECONDITION` otherwise, naming the recipient and its copy's state). A copy is
/// re-sent once: one already re-sent as another message is `ALREADY_EXISTS` (the identical
/// retry of that re-send never gets here; it is answered with its receipt). Returns the copies,
/// for the caller to mark with the new id once the message is accepted.
fn check_resend_of(
    tx: &crate::store::Tx<'_>,
    envelope: &pb::Envelope,
    sender: &Principal,
) -> Result<
    Vec<(String, RecipientRecord)>,
    sled::transaction::ConflictableTransactionError<RelayError>,
> {
    let original = uuid_str(&envelope.resend_of);
    let earlier = tx
        .message(&envelope.resend_of)?
        .filter(|m| m.sender == sender.to_string())
        .and_then(|m| m.envelope);
    let Some(earlier) = earlier else {
        return abort(RelayError::NotFound(format!(
            "resend_of: {sender} sent no message {original} that this relay still knows"
        )));
    };
    if earlier.case_ref != envelope.case_ref || earlier.kind != envelope.kind {
        return abort(RelayError::InvalidArgument(format!(
            "resend_of: message {original} has another case or kind; a re-send keeps the case and kind of the message it re-sends"
        )));
    }
    let mut copies = Vec::with_capacity(envelope.recipients.len());
    for name in &envelope.recipients {
        let Some(copy) = tx.recipient_state(&envelope.resend_of, name)? else {
            return abort(RelayError::FailedPrecondition(format!(
                "resend_of: {name} was not a recipient of message {original}; a re-send goes only to recipients whose copy could not be read"
            )));
        };
        let state = pb::DeliveryState::try_from(copy.state).unwrap_or_default();
        let unreadable = match state {
            pb::DeliveryState::Undeliverable => {
                copy.undeliverable_reason != pb::UndeliverableReason::CaseMoved as i32
            }
            pb::DeliveryState::Rejected => {
                copy.rejection_reason == pb::RejectionReason::CannotDecrypt as i32
            }
            _ => false,
        };
        if !unreadable {
            let why = match state {
                pb::DeliveryState::Undeliverable => {
                    " (reason case-moved: the case is no longer theirs)".to_owned()
                }
                pb::DeliveryState::Rejected => format!(
                    " (reason {})",
                    short_name(
                        pb::RejectionReason::try_from(copy.rejection_reason)
                            .unwrap_or_default()
                            .as_str_name(),
                        "REJECTION_REASON_"
                    )
                ),
                _ => String::new(),
            };
            return abort(RelayError::FailedPrecondition(format!(
                "resend_of: {name}'s copy of message {original} is {}{why}; only a copy that is undeliverable, or rejected as cannot-decrypt, is re-sent",
                short_name(state.as_str_name(), "DELIVERY_STATE_")
            )));
        }
        if !copy.resent_as.is_empty() {
            return abort(RelayError::AlreadyExists(format!(
                "resend_of: {name}'s copy of message {original} was already re-sent as {}; a copy is re-sent once",
                uuid_str(&copy.resent_as)
            )));
        }
        copies.push((name.clone(), copy));
    }
    Ok(copies)
}

/// `Envelope.in_reply_to` against the store. An id the relay does not know (never seen, or its
/// metadata gone after retention) is allowed: the relay forgets, the recipient's client still
/// threads by what it holds. A known message must involve the sender (it sent it or was a
/// recipient): otherwise `NOT_FOUND`, saying nothing of whose it is or its case. And if it is in
/// a case (non-zero reference), the reply must be in the same case (`INVALID_ARGUMENT`): a
/// reply threads into the case of the message it answers, so one outside the case (a centre
/// that left it) could otherwise put its message into the case's thread at the recipient.
fn check_in_reply_to(
    tx: &crate::store::Tx<'_>,
    envelope: &pb::Envelope,
    sender: &Principal,
) -> Result<(), sled::transaction::ConflictableTransactionError<RelayError>> {
    let Some(earlier) = tx.message(&envelope.in_reply_to)? else {
        return Ok(());
    };
    let name = sender.to_string();
    let Some(env) = earlier.envelope else {
        return Ok(());
    };
    if earlier.sender != name && !env.recipients.contains(&name) {
        return abort(RelayError::NotFound(format!(
            "in_reply_to: {name} sent or received no message {}",
            uuid_str(&envelope.in_reply_to)
        )));
    }
    if env.case_ref.iter().any(|b| *b != 0) && env.case_ref != envelope.case_ref {
        return abort(RelayError::InvalidArgument(format!(
            "in_reply_to: message {} is in case {}; a reply goes in the case of the message it answers",
            uuid_str(&envelope.in_reply_to),
            hex::encode(&env.case_ref)
        )));
    }
    // The anonymous consultation stays unlinked: in_reply_to is metadata the relay keeps, so
    // nothing but the consultation's own exchange (a reply, a follow-up question) may answer it.
    let anonymous = |k: i32| {
        matches!(
            pb::MessageKind::try_from(k),
            Ok(pb::MessageKind::AnonymousConsultation | pb::MessageKind::ConsultationReply)
        )
    };
    if anonymous(env.kind) && !anonymous(envelope.kind) {
        return abort(RelayError::InvalidArgument(format!(
            "in_reply_to: message {} is an anonymous consultation or its reply; an identified message may not answer it (the consultation stays unlinked from any case)",
            uuid_str(&envelope.in_reply_to)
        )));
    }
    Ok(())
}

/// `DELIVERY_STATE_ACKNOWLEDGED` as `acknowledged`, for error messages.
fn short_name(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix)
        .to_ascii_lowercase()
        .replace('_', "-")
}

pub(crate) fn message_id_of(meta: &MessageRecord) -> Vec<u8> {
    meta.envelope
        .as_ref()
        .map(|e| e.message_id.clone())
        .unwrap_or_default()
}

/// The receipt for an accepted message; the same record always gives the same receipt.
fn receipt(record: &MessageRecord) -> pb::Receipt {
    let env = record.envelope.as_ref();
    pb::Receipt {
        message_id: env.map(|e| e.message_id.clone()).unwrap_or_default(),
        sender: record.sender.clone(),
        accepted_at: record.accepted_at,
        log_index: record.log_index,
        ciphertext_sha256: env.map(|e| e.ciphertext_sha256.clone()).unwrap_or_default(),
        checkpoint: String::new(),
        inclusion_proof: Vec::new(),
        log_entry: Vec::new(),
    }
}

/// A message id as a UUID string, for logs and error messages.
pub fn uuid_str(id: &[u8]) -> String {
    uuid::Uuid::from_slice(id)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| hex::encode(id))
}

fn check_id(field: &str, id: &[u8]) -> Result<(), RelayError> {
    if id.len() != ID_LEN || id.iter().all(|b| *b == 0) {
        return Err(RelayError::InvalidArgument(format!(
            "{field} must be a 16-byte UUID (not nil), got {} bytes",
            id.len()
        )));
    }
    Ok(())
}

fn check_len(field: &str, value: &[u8], len: usize) -> Result<(), RelayError> {
    if value.len() != len {
        return Err(RelayError::InvalidArgument(format!(
            "{field} must be {len} bytes, got {}",
            value.len()
        )));
    }
    Ok(())
}

fn no_ack_target() -> RelayError {
    RelayError::InvalidArgument(
        "one of acknowledge, reject, status_seq or done_seq is required".into(),
    )
}

/// Every check on an acknowledgement request that needs no storage: a target is set; an
/// acknowledgement names a message id, a 32-byte digest, a 64-byte signature and a device id; a
/// rejection names a message id, a known reason and at most [`MAX_DETAIL_LEN`] bytes of
/// printable detail. The signature itself is checked against the published key by
/// [`Mailbox::ack`].
pub fn check_ack(request: &pb::AckRequest) -> Result<(), RelayError> {
    match request.target.as_ref().ok_or_else(no_ack_target)? {
        pb::ack_request::Target::StatusSeq(_) | pb::ack_request::Target::DoneSeq(_) => Ok(()),
        pb::ack_request::Target::Acknowledge(a) => {
            check_id("acknowledge.message_id", &a.message_id)?;
            check_len("acknowledge.ciphertext_sha256", &a.ciphertext_sha256, 32)?;
            check_len("acknowledge.signature", &a.signature, 64)?;
            if !crate::directory::valid_device_id(&a.signer_key) {
                return Err(RelayError::InvalidArgument(
                    "acknowledge.signer_key must be a device id: 1-64 characters a-z 0-9 . _ -"
                        .into(),
                ));
            }
            Ok(())
        }
        pb::ack_request::Target::Reject(r) => {
            check_id("reject.message_id", &r.message_id)?;
            let reason =
                pb::RejectionReason::try_from(r.reason).unwrap_or(pb::RejectionReason::Unspecified);
            if reason == pb::RejectionReason::Unspecified {
                return Err(RelayError::InvalidArgument(
                    "reject.reason is required".into(),
                ));
            }
            if r.detail.len() > MAX_DETAIL_LEN {
                return Err(RelayError::InvalidArgument(format!(
                    "reject.detail is longer than {MAX_DETAIL_LEN} bytes"
                )));
            }
            // It is shown to the sender and kept in the log for ever: one printable line.
            if r.detail.chars().any(char::is_control) {
                return Err(RelayError::InvalidArgument(
                    "reject.detail must not contain control characters or line breaks".into(),
                ));
            }
            Ok(())
        }
    }
}

/// Every check on an envelope that needs no storage, for an envelope from `sender` under
/// `limits`: ids, enums, the legal basis its kind may name (`silta_proto::policy::allowed_bases`),
/// a non-zero case reference where the kind needs one (`silta_proto::policy::needs_case`),
/// required fields, recipients (parsed, not the sender, no duplicates, at
/// most `limits.max_recipients`), ciphertext size and digest. Pure: nothing is stored if one
/// fails, and the recipients' policy and existence are checked by [`Mailbox::send`].
pub fn check_envelope(
    env: &pb::Envelope,
    limits: &LimitsConfig,
    sender: &Principal,
) -> Result<Checked, RelayError> {
    let invalid = |m: String| Err(RelayError::InvalidArgument(m));
    check_id("message_id", &env.message_id)?;
    if env.case_ref.len() != ID_LEN {
        return invalid(format!(
            "case_ref must be 16 bytes, got {}",
            env.case_ref.len()
        ));
    }
    let kind = match pb::MessageKind::try_from(env.kind) {
        Ok(k) if k != pb::MessageKind::Unspecified => k,
        _ => return invalid(format!("kind {} is not a known message kind", env.kind)),
    };
    if !matches!(pb::Urgency::try_from(env.urgency), Ok(u) if u != pb::Urgency::Unspecified) {
        return invalid(format!("urgency {} is not a known urgency", env.urgency));
    }
    if !matches!(pb::LegalBasis::try_from(env.legal_basis), Ok(b) if b != pb::LegalBasis::Unspecified)
    {
        return invalid(format!(
            "legal_basis {} is not a known legal basis",
            env.legal_basis
        ));
    }
    let basis = pb::LegalBasis::try_from(env.legal_basis).unwrap_or_default();
    silta_proto::policy::check_basis(kind, basis).map_err(RelayError::InvalidArgument)?;
    // A zero case reference binds nothing at the relay (cases.rs), so only the kinds that come
    // before a case may use it; any other would go round every case rule.
    silta_proto::policy::check_case(kind, &env.case_ref).map_err(RelayError::InvalidArgument)?;
    if env.created_at.is_none() {
        return invalid("created_at is required".into());
    }
    if !env.in_reply_to.is_empty() {
        check_id("in_reply_to", &env.in_reply_to)?;
    }
    if !env.resend_of.is_empty() {
        check_id("resend_of", &env.resend_of)?;
        if env.resend_of == env.message_id {
            return invalid("resend_of names the message itself".into());
        }
    }
    if !env.attachment_sha256.is_empty() {
        return invalid("attachments are not supported by this relay version".into());
    }
    if env.recipients.is_empty() {
        return invalid("at least one recipient is required".into());
    }
    let max = limits.max_recipients as usize;
    if env.recipients.len() > max {
        return invalid(format!(
            "{} recipients; limit limits.max_recipients is {max}",
            env.recipients.len()
        ));
    }
    let mut seen = BTreeSet::new();
    let mut recipients = Vec::with_capacity(env.recipients.len());
    for r in &env.recipients {
        let p: Principal = r.parse().map_err(|_| {
            RelayError::InvalidArgument(format!(
                "recipient {:?} is not a principal <role>/<id> (roles centre, assistance, auditor, admin; id of a-z 0-9 . _ -)",
                clip(r)
            ))
        })?;
        if !seen.insert(p.clone()) {
            return invalid(format!("recipient {r} is listed twice"));
        }
        recipients.push(p);
    }
    // A principal-internal kind (case claim, access-log share) goes to the sender's own
    // principal only; no other kind goes to the sender.
    let kind = pb::MessageKind::try_from(env.kind).unwrap_or(pb::MessageKind::Unspecified);
    silta_proto::policy::check_internal_recipients(kind, &sender.to_string(), &env.recipients)
        .map_err(RelayError::InvalidArgument)?;
    if env.ciphertext.is_empty() {
        return invalid("ciphertext is empty".into());
    }
    if env.ciphertext.len() as u64 > limits.max_ciphertext_bytes {
        // Never fits, however long the sender waits: not RESOURCE_EXHAUSTED (which callers retry).
        return Err(RelayError::InvalidArgument(format!(
            "ciphertext is {} bytes; limit limits.max_ciphertext_bytes is {}",
            env.ciphertext.len(),
            limits.max_ciphertext_bytes
        )));
    }
    if env.ciphertext_sha256.as_slice()
        != aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &env.ciphertext).as_ref()
    {
        return invalid("ciphertext_sha256 does not match the ciphertext".into());
    }
    Ok(Checked { recipients, kind })
}

/// Input echoed back in an error message, cut short so an error can never be huge.
fn clip(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}
