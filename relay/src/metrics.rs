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

    /// Reads every counter.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            handshakes_accepted: self.handshakes_accepted.load(Ordering::Relaxed),
            handshakes_rejected: self.handshakes_rejected.load(Ordering::Relaxed),
            requests_allowed: self.requests_allowed.load(Ordering::Relaxed),
            requests_denied: self.requests_denied.load(Ordering::Relaxed),
            requests_limited: self.requests_limited.load(Ordering::Relaxed),
        }
    }
}
