//! The client's local state (a sled database in the state folder): the keys it has seen for
//! each device (pins), and the message ids it has processed.

use std::path::Path;

/// Local state.
pub struct State {
    db: sled::Db,
    pins: sled::Tree,
    seen: sled::Tree,
    crls: sled::Tree,
    messages: sled::Tree,
    cases: sled::Tree,
    outgoing: sled::Tree,
}

/// What pinning a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// First time this device is seen; now pinned.
    New,
    /// The same key as before.
    Same,
    /// A different key than the one pinned (now replaced, since it verified against the CA
    /// and is newer).
    Changed {
        /// The fingerprint pinned before.
        old: String,
    },
    /// An older bundle than the one pinned: a rollback, refused (the pin is kept).
    Older {
        /// The fingerprint pinned.
        pinned: String,
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
        crate::fsutil::ensure_private_dir(dir).map_err(StateError)?;
        let db = sled::open(dir.join("client-db")).map_err(|e| match e {
            sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock") => StateError(format!(
                "{} is in use by another silta process (the daemon?); stop it or use that installation's folders",
                dir.display()
            )),
            e => StateError(format!("{}: {e}", dir.display())),
        })?;
        Ok(State {
            pins: db.open_tree("principaldevice_fingerprint")?,
            seen: db.open_tree("msgid_digest")?,
            crls: db.open_tree("n_crl")?,
            messages: db.open_tree("msgid_record")?,
            cases: db.open_tree("case_record")?,
            outgoing: db.open_tree("contentkey_envelope")?,
            db,
        })
    }

    /// Records `fingerprint` (made at `created_at`) for `principal`'s `device`, saying whether it
    /// changed. An older bundle than the pinned one is refused and leaves the pin as it was.
    pub fn pin(
        &self,
        principal: &str,
        device: &str,
        fingerprint: &str,
        created_at: i64,
    ) -> Result<Pin, StateError> {
        let key = [principal.as_bytes(), &[0], device.as_bytes()].concat();
        let value = format!("{fingerprint}\n{created_at}");
        let old = self
            .pins
            .get(&key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        let outcome = match &old {
            None => Pin::New,
            Some(o) => {
                let (old_fp, old_time) = o.split_once('\n').unwrap_or((o.as_str(), "0"));
                let old_time: i64 = old_time.parse().unwrap_or(0);
                if old_fp == fingerprint {
                    Pin::Same
                } else if created_at < old_time {
                    return Ok(Pin::Older {
                        pinned: old_fp.to_owned(),
                    });
                } else {
                    Pin::Changed {
                        old: old_fp.to_owned(),
                    }
                }
            }
        };
        if outcome != Pin::Same {
            self.pins.insert(key, value.as_bytes())?;
            self.db.flush()?;
        }
        Ok(outcome)
    }

    /// How many devices of `principal` are pinned.
    pub fn pinned_devices(&self, principal: &str) -> usize {
        self.pins
            .scan_prefix([principal.as_bytes(), &[0]].concat())
            .count()
    }

    /// The newest CRLs (DER) seen so far, so a relay cannot roll one back later.
    pub fn crls(&self) -> Result<Vec<Vec<u8>>, StateError> {
        Ok(self
            .crls
            .iter()
            .values()
            .filter_map(|v| v.ok())
            .map(|v| v.to_vec())
            .collect())
    }

    /// Remembers `crls` (DER), the freshest per issuer.
    pub fn keep_crls(&self, crls: &[Vec<u8>]) -> Result<(), StateError> {
        self.crls.clear()?;
        for (i, der) in crls.iter().enumerate() {
            self.crls.insert((i as u64).to_be_bytes(), der.as_slice())?;
        }
        self.db.flush()?;
        Ok(())
    }

    /// The ciphertext digest of a message id processed before, if any.
    pub fn seen(&self, message_id: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.seen.get(message_id)?.map(|v| v.to_vec()))
    }

    /// Keeps a message record (the inbox's copy of a message received or sent), durably.
    pub fn put_message(&self, id: &[u8], record: &serde_json::Value) -> Result<(), StateError> {
        self.messages
            .insert(id, serde_json::to_vec(record).expect("json serialises"))?;
        self.db.flush()?;
        Ok(())
    }

    /// A kept message record.
    pub fn message(&self, id: &[u8]) -> Result<Option<serde_json::Value>, StateError> {
        Ok(self
            .messages
            .get(id)?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Every kept message record, in message-id order (UUIDv7: creation order).
    pub fn messages(&self) -> Result<Vec<serde_json::Value>, StateError> {
        let mut out = Vec::new();
        for v in self.messages.iter().values() {
            if let Ok(r) = serde_json::from_slice(&v?) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Keeps a sealed envelope (its encoded bytes) before it is first sent, under a key of its
    /// content, so running the same command again after a failure sends the same message.
    pub fn put_outgoing(&self, key: &[u8], envelope: &[u8]) -> Result<(), StateError> {
        self.outgoing.insert(key, envelope)?;
        self.db.flush()?;
        Ok(())
    }

    /// A sealed envelope kept under `key` by an attempt that did not finish.
    pub fn outgoing(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.outgoing.get(key)?.map(|v| v.to_vec()))
    }

    /// Forgets the envelope under `key` (it was accepted).
    pub fn remove_outgoing(&self, key: &[u8]) -> Result<(), StateError> {
        self.outgoing.remove(key)?;
        self.db.flush()?;
        Ok(())
    }

    /// Records a case reference this installation issued.
    pub fn put_case(&self, case: &[u8], record: &serde_json::Value) -> Result<(), StateError> {
        self.cases
            .insert(case, serde_json::to_vec(record).expect("json serialises"))?;
        self.db.flush()?;
        Ok(())
    }

    /// The case references this installation issued.
    pub fn cases(&self) -> Result<Vec<serde_json::Value>, StateError> {
        let mut out = Vec::new();
        for v in self.cases.iter().values() {
            if let Ok(r) = serde_json::from_slice(&v?) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Records a message id as processed (durably, before the acknowledgement is sent).
    pub fn mark_seen(&self, message_id: &[u8], digest: &[u8]) -> Result<(), StateError> {
        self.seen.insert(message_id, digest)?;
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_detect_changes_and_refuse_rollbacks() {
        let dir = tempfile::tempdir().unwrap();
        let s = State::open(dir.path()).unwrap();
        assert_eq!(s.pin("centre/a", "d1", "aaaa", 100).unwrap(), Pin::New);
        assert_eq!(s.pin("centre/a", "d1", "aaaa", 100).unwrap(), Pin::Same);
        assert_eq!(
            s.pin("centre/a", "d1", "bbbb", 200).unwrap(),
            Pin::Changed { old: "aaaa".into() }
        );
        // The old bundle served again later is a rollback, and the pin stays on the new key.
        assert_eq!(
            s.pin("centre/a", "d1", "aaaa", 100).unwrap(),
            Pin::Older {
                pinned: "bbbb".into()
            }
        );
        assert_eq!(s.pin("centre/a", "d1", "bbbb", 200).unwrap(), Pin::Same);
        assert_eq!(s.pinned_devices("centre/a"), 1);
        assert_eq!(s.pinned_devices("centre/ab"), 0);
    }
}
