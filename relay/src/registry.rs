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
}

/// Remembers which principals the store already knows, so the check costs a lookup in memory.
/// The store stays the truth; the memory is refreshed from it at least once a minute per
/// principal, and at once by [`Registry::set_disabled`].
pub struct Registry {
    store: Arc<Store>,
    seen: Mutex<HashMap<Principal, Seen>>,
    /// Bumped whenever a principal is disabled, so its open streams end.
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
    /// minute). A principal the admin disabled is refused with
    /// `PERMISSION_DENIED`.
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
        let disabled = match cached {
            Some(s) if fresh => s.disabled,
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
                });
                entry.written_at = now;
                // The admin may have changed it while this write waited; the store has the last
                // word only if nobody set it in memory meanwhile (set_disabled writes both).
                entry.disabled = entry.disabled || record.disabled;
                entry.disabled
            }
        };
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
                        },
                    );
                }
            }
        }
        if disabled {
            self.disabled_epoch.send_modify(|e| *e += 1);
        }
    }

    /// Changes whenever a principal is disabled.
    pub fn disabled_changes(&self) -> watch::Receiver<u64> {
        self.disabled_epoch.subscribe()
    }
}

/// The refusal for a disabled principal.
pub fn disabled_error(principal: &Principal) -> RelayError {
    RelayError::PermissionDenied(format!(
        "{principal} is disabled at this relay by its administrator; nothing is served to it until it is enabled again"
    ))
}
