//! The client's local state (a sled database in the state folder): the keys it has seen for
//! each device (pins), and the message ids it has processed.

use std::path::Path;

/// Local state.
pub struct State {
    db: sled::Db,
    pins: sled::Tree,
    seen: sled::Tree,
}

/// What pinning a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// First time this device is seen; now pinned.
    New,
    /// The same key as before.
    Same,
    /// A different key than the one pinned (now replaced, since it verified against the CA).
    Changed {
        /// The fingerprint pinned before.
        old: String,
    },
}

/// A local storage failure.
#[derive(Debug, thiserror::Error)]
#[error("local state: {0}")]
pub struct StateError(String);

impl From<sled::Error> for StateError {
    fn from(e: sled::Error) -> Self {
        StateError(e.to_string())
    }
}

impl State {
    /// Opens (or creates) the state in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        std::fs::create_dir_all(dir).map_err(|e| StateError(format!("{}: {e}", dir.display())))?;
        let db = sled::open(dir.join("client-db"))?;
        Ok(State {
            pins: db.open_tree("principaldevice_fingerprint")?,
            seen: db.open_tree("msgid_digest")?,
            db,
        })
    }

    /// Records `fingerprint` for `principal`'s `device`, saying whether it changed.
    pub fn pin(&self, principal: &str, device: &str, fingerprint: &str) -> Result<Pin, StateError> {
        let key = [principal.as_bytes(), &[0], device.as_bytes()].concat();
        let old = self.pins.insert(key, fingerprint.as_bytes())?;
        self.db.flush()?;
        Ok(match old {
            None => Pin::New,
            Some(o) if o.as_ref() == fingerprint.as_bytes() => Pin::Same,
            Some(o) => Pin::Changed {
                old: String::from_utf8_lossy(&o).into_owned(),
            },
        })
    }

    /// The ciphertext digest of a message id processed before, if any.
    pub fn seen(&self, message_id: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.seen.get(message_id)?.map(|v| v.to_vec()))
    }

    /// Records a message id as processed (durably, before the acknowledgement is sent).
    pub fn mark_seen(&self, message_id: &[u8], digest: &[u8]) -> Result<(), StateError> {
        self.seen.insert(message_id, digest)?;
        self.db.flush()?;
        Ok(())
    }
}
