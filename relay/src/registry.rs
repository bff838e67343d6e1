//! Known principals: a principal becomes a known recipient the first time it authenticates.

use std::{collections::HashSet, sync::Arc, sync::Mutex};

use silta_certs::Principal;

use crate::{error::RelayError, store::Store};

/// Remembers which principals the store already knows, so the check costs a lookup in memory.
/// The store stays the truth (a second relay on the same storage sees the same principals).
pub struct Registry {
    store: Arc<Store>,
    seen: Mutex<HashSet<Principal>>,
}

impl Registry {
    pub(crate) fn new(store: Arc<Store>) -> Self {
        Registry {
            store,
            seen: Mutex::new(HashSet::new()),
        }
    }

    /// Makes sure `principal` is registered (durably, with a log event) before it is served.
    pub async fn ensure(&self, principal: &Principal) -> Result<(), RelayError> {
        if self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(principal)
        {
            return Ok(());
        }
        if !self.store.principal_known(principal)? {
            self.store.register_principal(principal.clone()).await?;
        }
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(principal.clone());
        Ok(())
    }
}
