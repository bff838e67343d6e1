//! Retention: expiry of unacknowledged copies and purge of ciphertext, by `[retention]`.
//!
//! Every message is on a schedule (`timemsgid_due`: unix seconds ‖ message id) from the moment
//! it is accepted, and again whenever one of its copies becomes final. A background [`Sweeper`]
//! takes at most `retention.sweep_batch` due entries per round and looks at each message in its
//! own small write through the store's writer, so sends interleave with a sweep and share its
//! fsyncs. Each look is one transaction that re-reads the message's state, so a copy
//! acknowledged a moment before is final and never expires, and a sweep that fails or stops
//! half-way leaves every message either untouched or fully processed.
//!
//! What one look does, by the clock of the store ([`crate::clock::Clock`]):
//! 1. **Alert** (urgent and emergency messages): a copy still open at
//!    `urgent_alert_after_s` raises a WARN line and the `urgent_alerts` counter, once.
//! 2. **Expiry**: a copy neither acknowledged nor rejected at `expire_after_s`
//!    (`urgent_expire_after_s` for urgent and emergency messages) becomes `EXPIRED`: an event in
//!    the log, the item leaves the recipient's mailbox, the sender gets a status item.
//! 3. **Purge**: once every copy is final, `purge_after_final_s` after the last of them, and in
//!    any case at `max_age_s`, the ciphertext is deleted and a `PURGED` tombstone (message id,
//!    digest, size, policy, time) is appended in the same transaction.
//! 4. **Metadata**: `keep_metadata_s` after the purge, the message's metadata and per-recipient
//!    states go too. The log's events stay: they are the Merkle tree's leaves.

use std::{sync::Arc, time::Duration};

use silta_certs::Principal;
use silta_proto::pb;
use tokio::sync::watch;

use crate::{
    config::{RetentionConfig, is_urgent},
    error::RelayError,
    mailbox::{Mailbox, event_for, message_id_of, push_status, uuid_str},
    metrics::Metrics,
    store::{MessageRecord, Store, Tx, abort, state_key},
};

/// Most of the sweeper's writes waiting for the writer at once: a send queued behind a sweep
/// waits for at most this many small transactions (they share its fsync).
const IN_FLIGHT: usize = 16;

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Schedule entries taken.
    pub looked: u64,
    /// Copies that expired.
    pub expired: u64,
    /// Ciphertexts deleted.
    pub purged: u64,
    /// Purged messages whose metadata was deleted.
    pub dropped: u64,
    /// Urgent-expiry alerts raised.
    pub alerts: u64,
}

/// What one look at one message did (returned from its transaction, acted on after commit).
#[derive(Debug, Default)]
struct Look {
    expired: Vec<String>,
    purged: Option<&'static str>,
    dropped: bool,
    /// Recipients whose copy is still open when the urgent alert is raised.
    alert: Option<Vec<String>>,
    /// Status items pushed: (sender, seq).
    pushed: Vec<(String, u64)>,
    /// Items removed because the `retention.handled_item_days` hold passed (or the content
    /// went at `max_age_s`).
    released: u64,
    sender: String,
    urgency: i32,
    accepted: i64,
}

/// The background job that applies `[retention]`.
pub struct Sweeper {
    store: Arc<Store>,
    mailbox: Arc<Mailbox>,
    config: RetentionConfig,
    metrics: Arc<Metrics>,
}

impl Sweeper {
    /// A sweeper over `store`, waking `mailbox`'s subscribers when it pushes status items.
    pub fn new(
        store: Arc<Store>,
        mailbox: Arc<Mailbox>,
        config: RetentionConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Sweeper {
            store,
            mailbox,
            config,
            metrics,
        }
    }

    /// Sweeps every `retention.sweep_interval_ms` until `stop` turns true. A full batch is
    /// followed by the next round at once (after yielding), so a backlog drains; an error is
    /// logged and retried next round (a failed store stops the relay by itself).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let every = Duration::from_millis(self.config.sweep_interval_ms);
        loop {
            let full = match self.round().await {
                Ok(r) => r.looked >= u64::from(self.config.sweep_batch),
                Err(e) => {
                    tracing::error!(error = %e, "retention sweep failed; retrying next round");
                    false
                }
            };
            if full {
                tokio::task::yield_now().await;
                if *stop.borrow() {
                    return;
                }
                continue;
            }
            tokio::select! {
                () = crate::tls::stopped(&mut stop) => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// One round: at most `retention.sweep_batch` due messages, each in its own transaction,
    /// at most [`IN_FLIGHT`] of them queued at the writer at once, so they share its fsyncs
    /// with each other and with sends without holding sends up.
    pub async fn round(&self) -> Result<SweepReport, RelayError> {
        let now = self.store.clock().unix_seconds();
        let due = self
            .store
            .due_up_to(now, self.config.sweep_batch as usize)?;
        let mut report = SweepReport {
            looked: due.len() as u64,
            ..SweepReport::default()
        };
        let mut tasks = tokio::task::JoinSet::new();
        let mut first_error = None;
        for key in due {
            while tasks.len() >= IN_FLIGHT {
                if let Some(joined) = tasks.join_next().await {
                    self.finish(joined, now, &mut report, &mut first_error);
                }
            }
            let store = self.store.clone();
            let config = self.config.clone();
            tasks.spawn(async move {
                store
                    .write(move |trees| trees.transaction(|tx| look(tx, &key, now, &config)))
                    .await
            });
        }
        while let Some(joined) = tasks.join_next().await {
            self.finish(joined, now, &mut report, &mut first_error);
        }
        self.metrics.swept(&report);
        if report.expired + report.purged + report.dropped + report.alerts > 0 {
            tracing::info!(
                looked = report.looked,
                expired = report.expired,
                purged = report.purged,
                metadata_dropped = report.dropped,
                alerts = report.alerts,
                "retention sweep"
            );
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    fn finish(
        &self,
        joined: Result<Result<Option<Look>, RelayError>, tokio::task::JoinError>,
        now: i64,
        report: &mut SweepReport,
        first_error: &mut Option<RelayError>,
    ) {
        match joined {
            Ok(Ok(Some(look))) => {
                self.mailbox.wake(&look.pushed);
                self.record(&look, now, report);
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => tracing::error!(error = %e, "retention look panicked"),
        }
    }

    fn record(&self, look: &Look, now: i64, report: &mut SweepReport) {
        report.expired += look.expired.len() as u64;
        report.purged += u64::from(look.purged.is_some());
        report.dropped += u64::from(look.dropped);
        if let Some(open) = &look.alert {
            report.alerts += 1;
            tracing::warn!(
                sender = %look.sender,
                recipients = ?open,
                urgency = pb::Urgency::try_from(look.urgency).unwrap_or_default().as_str_name(),
                waiting_s = now.saturating_sub(look.accepted),
                expires_in_s = (look.accepted
                    + self.config.urgent_expire_after_s as i64)
                    .saturating_sub(now),
                "urgent message not acknowledged (retention.urgent_alert_after_s); it expires unless a recipient acts"
            );
        }
    }
}

/// Is a copy in this state final (nothing more will happen to it)?
pub(crate) fn is_final(state: i32) -> bool {
    matches!(
        pb::DeliveryState::try_from(state),
        Ok(pb::DeliveryState::Acknowledged
            | pb::DeliveryState::Rejected
            | pb::DeliveryState::Expired
            | pb::DeliveryState::Undeliverable)
    )
}

type TxResult<T> = Result<T, sled::transaction::ConflictableTransactionError<RelayError>>;

/// Ends one open copy (pending or delivered) of a message for `recipient` as `final_state`,
/// recorded by `event`: the event, the copy's state, the item leaves the recipient's mailbox,
/// the pending counters go down, and the sender gets a status item. Returns that item's seq (to
/// wake the sender's subscriptions after the commit). The one way a copy ends without the
/// recipient's answer (expiry here, undeliverable from the Admin service).
pub(crate) fn close_copy(
    tx: &Tx<'_>,
    meta: &mut MessageRecord,
    recipient: &str,
    state: &mut crate::store::RecipientRecord,
    final_state: pb::DeliveryState,
    event: pb::Event,
) -> TxResult<u64> {
    let id = message_id_of(meta);
    let time = event.time;
    let index = tx.append_event(event)?;
    state.state = final_state.into();
    state.updated_at = time;
    state.log_index = index;
    tx.put_recipient_state(&id, recipient, state)?;
    let Ok(principal) = recipient.parse::<Principal>() else {
        return abort(RelayError::Store(crate::store::StoreError::Corrupt {
            tree: "msgid_meta",
            detail: "recipient is not a principal".into(),
        }));
    };
    tx.remove_item(&principal, state.mailbox_seq)?;
    if let Some(mut rec) = tx.principal(recipient)? {
        rec.pending = rec.pending.saturating_sub(1);
        tx.put_principal(recipient, &rec)?;
    }
    let from_sender = tx.pair_pending(&meta.sender, recipient)?;
    tx.set_pair_pending(&meta.sender, recipient, from_sender.saturating_sub(1))?;
    push_status(tx, meta, recipient, state)
}

/// Reports `recipient`'s open copy of message `id` as UNDELIVERABLE for `reason`: an
/// UNDELIVERABLE event (actor: `actor`, detail: the reason), the copy ends as in [`close_copy`],
/// and the message is scheduled so the sweeper purges its ciphertext once every copy is final
/// (`retention.purge_after_final_s`, as for any other final copy). Returns the sender and the
/// seq of its status item, or `None` if the copy is not open (already final, or gone).
pub(crate) fn make_undeliverable(
    tx: &Tx<'_>,
    id: &[u8],
    recipient: &str,
    reason: pb::UndeliverableReason,
    actor: &str,
    cfg: &RetentionConfig,
) -> TxResult<Option<(String, u64)>> {
    let Some(mut state) = tx.recipient_state(id, recipient)? else {
        return Ok(None);
    };
    if is_final(state.state) {
        return Ok(None);
    }
    let Some(mut meta) = tx.message(id)? else {
        return Ok(None);
    };
    let time = tx.now();
    let mut event = event_for(
        &meta,
        time,
        pb::EventType::Undeliverable,
        actor,
        vec![recipient.to_owned()],
    );
    event.undeliverable_reason = reason.into();
    event.detail = reason.as_str_name().to_owned();
    state.undeliverable_reason = reason.into();
    let seq = close_copy(
        tx,
        &mut meta,
        recipient,
        &mut state,
        pb::DeliveryState::Undeliverable,
        event,
    )?;
    let purge_after = i64::try_from(cfg.purge_after_final_s).unwrap_or(i64::MAX);
    tx.schedule(id, time.seconds.saturating_add(purge_after))?;
    Ok(Some((meta.sender, seq)))
}

/// One look at the message of schedule entry `key` at `now`; `None` if the entry was taken
/// already or the message is gone.
fn look(tx: &Tx<'_>, key: &[u8], now: i64, cfg: &RetentionConfig) -> TxResult<Option<Look>> {
    if tx.due.remove(key)?.is_none() {
        return Ok(None);
    }
    let id = &key[8..];
    let Some(mut meta) = tx.message(id)? else {
        return Ok(None);
    };
    let env = meta.envelope.clone().unwrap_or_default();
    let accepted = meta.accepted_at.map(|t| t.seconds).unwrap_or(0);
    let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
    let urgent = is_urgent(env.urgency);
    let expire_at = accepted.saturating_add(secs(cfg.expire_after(env.urgency)));
    let max_age_at = accepted.saturating_add(secs(cfg.max_age_s));
    let alert_at = accepted.saturating_add(secs(cfg.urgent_alert_after_s));
    let policy_key = if urgent {
        "retention.urgent_expire_after_s"
    } else {
        "retention.expire_after_s"
    };
    let mut look = Look {
        sender: meta.sender.clone(),
        urgency: env.urgency,
        accepted,
        ..Look::default()
    };
    let time = tx.now();
    let mut changed = false;
    let mut open = Vec::new();
    let mut final_at = 0i64;
    let hold = cfg.handled_hold_s();
    // Items other desks still hold (their copy final): until when, at the latest.
    let mut held_until: Option<i64> = None;
    let mut held_items = Vec::new();
    for r in &env.recipients {
        let Some(mut state) = tx.recipient_state(id, r)? else {
            continue;
        };
        if is_final(state.state) {
            let at = state.updated_at.map(|t| t.seconds).unwrap_or(0);
            final_at = final_at.max(at);
            // A final copy whose item some desk of the recipient has not taken yet: it stays
            // (and so does the ciphertext) until the hold passes.
            if let Ok(principal) = r.parse::<Principal>()
                && let Some(item) = tx.item(&principal, state.mailbox_seq)?
                && item.message_id == id
            {
                let since = if item.handled_at != 0 {
                    item.handled_at
                } else {
                    at
                };
                let until = since.saturating_add(hold);
                if now >= until {
                    tx.remove_item(&principal, state.mailbox_seq)?;
                    look.released += 1;
                } else {
                    held_until = Some(held_until.map_or(until, |h: i64| h.max(until)));
                    held_items.push((principal, state.mailbox_seq));
                }
            }
            continue;
        }
        if now < expire_at && now < max_age_at {
            open.push(r.clone());
            continue;
        }
        // Expire this copy.
        let mut event = event_for(&meta, time, pb::EventType::Expired, "", vec![r.clone()]);
        event.detail = format!("policy {policy_key}={}", cfg.expire_after(env.urgency));
        let seq = close_copy(
            tx,
            &mut meta,
            r,
            &mut state,
            pb::DeliveryState::Expired,
            event,
        )?;
        look.pushed.push((meta.sender.clone(), seq));
        look.expired.push(r.clone());
        final_at = final_at.max(time.seconds);
    }
    if urgent && !meta.alerted && !open.is_empty() && now >= alert_at {
        meta.alerted = true;
        changed = true;
        look.alert = Some(open.clone());
    }
    // Status items about this message that a desk of the sender confirmed and the other desks
    // did not take within the hold.
    if let Ok(sender) = meta.sender.parse::<Principal>() {
        for seq in &meta.status_seqs {
            if let Some(item) = tx.item(&sender, *seq)?
                && item.handled_at != 0
            {
                let until = item.handled_at.saturating_add(hold);
                if now >= until {
                    tx.remove_item(&sender, *seq)?;
                    look.released += 1;
                } else {
                    held_until = Some(held_until.map_or(until, |h: i64| h.max(until)));
                }
            }
        }
    }
    if meta.purged_at.is_none() {
        let policy = if open.is_empty()
            && held_items.is_empty()
            && now >= final_at.saturating_add(secs(cfg.purge_after_final_s))
        {
            Some("retention.purge_after_final_s")
        } else if now >= max_age_at {
            Some("retention.max_age_s")
        } else {
            None
        };
        if let Some(policy) = policy {
            // At max_age_s nothing is held any longer: the content is gone.
            for (principal, seq) in held_items.drain(..) {
                tx.remove_item(&principal, seq)?;
                look.released += 1;
            }
            tx.purge_ciphertext(id, &meta)?;
            let value = if policy == "retention.max_age_s" {
                cfg.max_age_s
            } else {
                cfg.purge_after_final_s
            };
            let mut event = event_for(
                &meta,
                time,
                pb::EventType::Purged,
                "",
                env.recipients.clone(),
            );
            event.detail = format!("ciphertext deleted; policy {policy}={value}");
            meta.purge_index = tx.append_event(event)?;
            meta.purged_at = Some(time);
            changed = true;
            look.purged = Some(policy);
        }
    }
    if let Some(purged) = meta.purged_at
        && now >= purged.seconds.saturating_add(secs(cfg.keep_metadata_s))
    {
        for r in &env.recipients {
            tx.state.remove(state_key(id, r))?;
        }
        // The sender's status items about it that it never took.
        if let Ok(sender) = meta.sender.parse::<Principal>() {
            for seq in &meta.status_seqs {
                tx.remove_item(&sender, *seq)?;
            }
        }
        tx.remove_message(id)?;
        look.dropped = true;
        return Ok(Some(look));
    }
    if changed {
        tx.put_message(id, &meta)?;
    }
    // When to look again: the earliest thing still to come.
    let next = if let Some(purged) = meta.purged_at {
        purged.seconds.saturating_add(secs(cfg.keep_metadata_s))
    } else if !open.is_empty() {
        let mut at = expire_at.min(max_age_at);
        if urgent && !meta.alerted {
            at = at.min(alert_at);
        }
        at
    } else {
        let purge_at = final_at.saturating_add(secs(cfg.purge_after_final_s));
        if held_items.is_empty() {
            purge_at
        } else {
            purge_at.max(held_until.unwrap_or(purge_at))
        }
        .min(max_age_at)
    };
    // A status item held for the sender's other desks is looked at when its hold ends.
    let next = match held_until {
        Some(h) if meta.purged_at.is_some() || !open.is_empty() => next.min(h),
        _ => next,
    };
    tx.schedule(id, next.max(now.saturating_add(1)))?;
    tracing::debug!(message_id = %uuid_str(&message_id_of(&meta)), next, "retention look");
    Ok(Some(look))
}

/// The first look at a message just accepted at `accepted` (unix seconds).
pub(crate) fn first_look(record: &MessageRecord, cfg: &RetentionConfig) -> i64 {
    let urgency = record.envelope.as_ref().map(|e| e.urgency).unwrap_or(0);
    let accepted = record.accepted_at.map(|t| t.seconds).unwrap_or(0);
    let after = if is_urgent(urgency) {
        cfg.urgent_alert_after_s
    } else {
        cfg.expire_after_s
    };
    accepted.saturating_add(i64::try_from(after).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::due_key;

    #[test]
    fn the_schedule_is_in_time_order() {
        let a = [0xffu8; 16];
        let b = [0u8; 16];
        assert!(due_key(10, &a) < due_key(11, &b));
        assert!(due_key(255, &a) < due_key(256, &b));
        // Before the epoch counts as due at once.
        assert_eq!(due_key(-5, &b), due_key(0, &b));
    }

    #[test]
    fn the_first_look_is_at_the_alert_for_urgent_messages_and_at_expiry_otherwise() {
        let cfg = RetentionConfig::default();
        let record = |urgency: pb::Urgency| MessageRecord {
            envelope: Some(pb::Envelope {
                urgency: urgency.into(),
                ..Default::default()
            }),
            accepted_at: Some(prost_types::Timestamp {
                seconds: 1_000,
                nanos: 0,
            }),
            ..Default::default()
        };
        assert_eq!(
            first_look(&record(pb::Urgency::Normal), &cfg),
            1_000 + 432_000
        );
        assert_eq!(
            first_look(&record(pb::Urgency::Urgent), &cfg),
            1_000 + 14_400
        );
        assert_eq!(
            first_look(&record(pb::Urgency::Emergency), &cfg),
            1_000 + 14_400
        );
    }
}
