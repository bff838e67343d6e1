//! Known principals: a principal becomes a known recipient the first time it authenticates, and
//! the relay remembers when it last saw it, with which certificate, and whether the admin has
//! disabled it.

use std::{collections::HashMap, sync::Arc, sync::Mutex};

use silta_certs::Principal;
use tokio::sync::watch;

use crate::{error::RelayError, store::Store, tls::PeerIdentity};

/// The last-seen time is written at most this often per principal (seconds): one write a minute
/// per active principal, not one per request.
pub const LAST_SEEN_EVERY_S: i64 = 60;

/// What the registry remembers of a principal between requests.
#[derive(Debug, Clone)]
struct Seen {
    /// When the last-seen time was last written (store clock, unix seconds).
    written_at: i64,
    disabled: bool,
    /// SHA-256 of the certificates whose devices the admin retired.
    retired_certs: Vec<Vec<u8>>,
}

/// Remembers which principals the store already knows, so the check costs a lookup in memory.
/// The store stays the truth; the memory is refreshed from it at least once a minute per
/// principal, and at once by [`Registry::set_disabled`].
pub struct Registry {
    store: Arc<Store>,
    seen: Mutex<HashMap<Principal, Seen>>,
    /// Bumped whenever a principal is disabled or devices are retired, so the open streams
    /// concerned end.
    disabled_epoch: watch::Sender<u64>,
}

impl Registry {
    pub(crate) fn new(store: Arc<Store>) -> Self {
        Registry {
            store,
            seen: Mutex::new(HashMap::new()),
            disabled_epoch: watch::channel(0).0,
        }
    }

    /// Makes sure the connection's principal is registered (durably, with a log event) before
    /// it is served, and records when it was seen with which certificate (at most once a
    /// minute). A principal the admin disabled, and a certificate whose devices the admin
    /// retired, are refused with `PERMISSION_DENIED`.
    pub async fn ensure(&self, peer: &PeerIdentity) -> Result<(), RelayError> {
        let principal = peer.principal();
        let now = self.store.clock().unix_seconds();
        let cached = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(principal)
            .cloned();
        // At most one write a minute per principal, whatever certificate it comes with: desks
        // of one principal with certificates of their own must not cost a write per request
        // (the serial recorded is that of the latest write).
        let fresh = cached
            .as_ref()
            .is_some_and(|s| now.saturating_sub(s.written_at) < LAST_SEEN_EVERY_S);
        let cert = peer.cert_sha256().as_slice();
        if cached
            .as_ref()
            .is_some_and(|s| s.retired_certs.iter().any(|c| c == cert))
        {
            return Err(retired_refusal(peer));
        }
        let (disabled, retired) = match cached {
            Some(s) if fresh => (s.disabled, false),
            _ => {
                let not_after = crate::clock::unix_seconds(peer.not_after());
                let record = self
                    .store
                    .seen_principal(principal.clone(), peer.serial().to_owned(), not_after)
                    .await?;
                let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
                let entry = seen.entry(principal.clone()).or_insert(Seen {
                    written_at: now,
                    disabled: record.disabled,
                    retired_certs: Vec::new(),
                });
                entry.written_at = now;
                // The admin may have changed it while this write waited; the store has the last
                // word only if nobody set it in memory meanwhile (set_disabled writes both).
                entry.disabled = entry.disabled || record.disabled;
                for c in record.retired_certs {
                    if !entry.retired_certs.contains(&c) {
                        entry.retired_certs.push(c);
                    }
                }
                (
                    entry.disabled,
                    entry.retired_certs.iter().any(|c| c == cert),
                )
            }
        };
        if retired {
            return Err(retired_refusal(peer));
        }
        if disabled {
            tracing::info!(principal = %principal, serial = peer.serial(), "request refused: principal disabled by the admin");
            return Err(disabled_error(principal));
        }
        Ok(())
    }

    /// Is `principal` disabled (as far as this registry knows)?
    pub fn is_disabled(&self, principal: &Principal) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(principal)
            .is_some_and(|s| s.disabled)
    }

    /// Marks `principal` disabled or enabled in memory; disabling wakes its open streams so they
    /// end. Called before the store is changed when disabling (fail closed) and after it when
    /// enabling.
    pub fn set_disabled(&self, principal: &Principal, disabled: bool) {
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            match seen.get_mut(principal) {
                Some(s) => s.disabled = disabled,
                None => {
                    seen.insert(
                        principal.clone(),
                        Seen {
                            // Re-read from the store on its next request.
                            written_at: i64::MIN,
                            disabled,
                            retired_certs: Vec::new(),
                        },
                    );
                }
            }
        }
        if disabled {
            self.disabled_epoch.send_modify(|e| *e += 1);
        }
    }

    /// Marks the certificates `certs` (SHA-256) of `principal` as retired in memory (the admin
    /// retired their devices) and wakes the open streams so those made with them end. Called
    /// before the store records them (fail closed); the store keeps them for good.
    pub fn retire_certs(&self, principal: &Principal, certs: &[Vec<u8>]) {
        if certs.is_empty() {
            return;
        }
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            let entry = seen.entry(principal.clone()).or_insert(Seen {
                written_at: i64::MIN,
                disabled: false,
                retired_certs: Vec::new(),
            });
            for c in certs {
                if !entry.retired_certs.contains(c) {
                    entry.retired_certs.push(c.clone());
                }
            }
        }
        self.disabled_epoch.send_modify(|e| *e += 1);
    }

    /// Were the devices of `principal`'s certificate `cert_sha256` retired by the admin (as far
    /// as this registry knows)?
    pub fn is_retired_cert(&self, principal: &Principal, cert_sha256: &[u8]) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(principal)
            .is_some_and(|s| s.retired_certs.iter().any(|c| c == cert_sha256))
    }

    /// Changes whenever a principal is disabled or devices are retired.
    pub fn disabled_changes(&self) -> watch::Receiver<u64> {
        self.disabled_epoch.subscribe()
    }
}

fn retired_refusal(peer: &PeerIdentity) -> RelayError {
    tracing::info!(principal = %peer.principal(), serial = peer.serial(), "request refused: certificate of retired devices");
    retired_error()
}

/// The refusal for a certificate whose devices the admin retired.
pub fn retired_error() -> RelayError {
    RelayError::PermissionDenied(
        "this certificate's devices were retired by the administrator; enrol with a new certificate"
            .into(),
    )
}

/// The refusal for a disabled principal.
pub fn disabled_error(principal: &Principal) -> RelayError {
    RelayError::PermissionDenied(format!(
        "{principal} is disabled at this relay by its administrator; nothing is served to it until it is enabled again"
    ))
}
