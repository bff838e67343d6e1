//! Counters the relay keeps about itself (exported to tests now, to Prometheus later).

use std::sync::atomic::{AtomicU64, Ordering};

/// Process-wide counters. Cheap to bump from any task.
#[derive(Debug, Default)]
pub struct Metrics {
    handshakes_accepted: AtomicU64,
    handshakes_rejected: AtomicU64,
    requests_allowed: AtomicU64,
    requests_denied: AtomicU64,
    requests_limited: AtomicU64,
    urgent_alerts: AtomicU64,
    copies_expired: AtomicU64,
    messages_purged: AtomicU64,
    metadata_dropped: AtomicU64,
    ciphertexts_unreadable: AtomicU64,
    refusals_unlogged: AtomicU64,
    sweep_rounds: AtomicU64,
}

/// A point-in-time copy of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricsSnapshot {
    /// TLS handshakes that produced an authenticated connection.
    pub handshakes_accepted: u64,
    /// TLS handshakes that failed or timed out (no handler ran).
    pub handshakes_rejected: u64,
    /// Requests that passed the authorization layer and reached a handler.
    pub requests_allowed: u64,
    /// Requests refused by the authorization layer.
    pub requests_denied: u64,
    /// Requests refused by a rate limit.
    pub requests_limited: u64,
    /// Urgent or emergency messages still not acknowledged at `retention.urgent_alert_after_s`.
    pub urgent_alerts: u64,
    /// Recipient copies that expired unacknowledged.
    pub copies_expired: u64,
    /// Ciphertexts deleted by the retention policy.
    pub messages_purged: u64,
    /// Purged messages whose metadata was deleted (`retention.keep_metadata_s`).
    pub metadata_dropped: u64,
    /// Mailbox items skipped in a delivery because their stored ciphertext did not open with
    /// its storage key (damaged storage); the rest of the mailbox is delivered.
    pub ciphertexts_unreadable: u64,
    /// Sends refused by the case rules that got no SEND_REFUSED event: over the bound per
    /// sender and case, or per sender (`limits.refusal_events_per_hour`).
    pub refusals_unlogged: u64,
    /// Retention sweeper rounds completed (a test waits for one that started after it changed
    /// the clock).
    pub sweep_rounds: u64,
}

impl Metrics {
    pub(crate) fn handshake_accepted(&self) {
        self.handshakes_accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn handshake_rejected(&self) {
        self.handshakes_rejected.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn request_allowed(&self) {
        self.requests_allowed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn request_denied(&self) {
        self.requests_denied.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn request_limited(&self) {
        self.requests_limited.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn swept(&self, report: &crate::retention::SweepReport) {
        self.urgent_alerts
            .fetch_add(report.alerts, Ordering::Relaxed);
        self.copies_expired
            .fetch_add(report.expired, Ordering::Relaxed);
        self.messages_purged
            .fetch_add(report.purged, Ordering::Relaxed);
        self.metadata_dropped
            .fetch_add(report.dropped, Ordering::Relaxed);
        self.sweep_rounds.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn ciphertext_unreadable(&self) {
        self.ciphertexts_unreadable.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn refusal_unlogged(&self) {
        self.refusals_unlogged.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            handshakes_accepted: self.handshakes_accepted.load(Ordering::Relaxed),
            handshakes_rejected: self.handshakes_rejected.load(Ordering::Relaxed),
            requests_allowed: self.requests_allowed.load(Ordering::Relaxed),
            requests_denied: self.requests_denied.load(Ordering::Relaxed),
            requests_limited: self.requests_limited.load(Ordering::Relaxed),
            urgent_alerts: self.urgent_alerts.load(Ordering::Relaxed),
            copies_expired: self.copies_expired.load(Ordering::Relaxed),
            messages_purged: self.messages_purged.load(Ordering::Relaxed),
            metadata_dropped: self.metadata_dropped.load(Ordering::Relaxed),
            ciphertexts_unreadable: self.ciphertexts_unreadable.load(Ordering::Relaxed),
            refusals_unlogged: self.refusals_unlogged.load(Ordering::Relaxed),
            sweep_rounds: self.sweep_rounds.load(Ordering::Relaxed),
        }
    }
}
