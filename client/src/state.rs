//! The client's local state (a sled database in the state folder): the keys it has seen for
//! each device (pins), and the message ids it has processed.

use std::path::Path;

use crate::{ids::MessageId, record::MessageRecord};

/// Local state.
pub struct State {
    db: sled::Db,
    pins: sled::Tree,
    seen: sled::Tree,
    crls: sled::Tree,
    messages: sled::Tree,
    cases: sled::Tree,
    outgoing: sled::Tree,
    retries: sled::Tree,
}

/// A received message that could not be processed yet (e.g. its sender's keys could not be
/// fetched): left unacknowledged, skipped until `next_at`, then tried again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Retry {
    /// Tries so far.
    pub attempts: u32,
    /// When to try again (unix milliseconds, by the client's clock).
    pub next_at_ms: u64,
    /// The sender, as the relay named it.
    pub sender: String,
    /// Why the last try failed (no message content).
    pub error: String,
}

/// What pinning a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// First time this device is seen; now pinned.
    New,
    /// The same key as before.
    Same,
    /// A different key than the one pinned (now replaced, since it verified against the CA
    /// and was logged later).
    Changed {
        /// The fingerprint pinned before.
        old: String,
    },
    /// A bundle logged before the one pinned: a rollback, refused (the pin is kept).
    Older {
        /// The fingerprint pinned.
        pinned: String,
    },
}

/// A pinned device key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinRecord {
    /// Its fingerprint.
    pub fingerprint: String,
    /// The relay's log index of the bundle (none for pins made before log indexes were kept).
    pub log_index: Option<u64>,
    /// The bundle (encoded `KeyBundle`; empty for old pins), to check later whether it still
    /// verifies.
    pub bundle: Vec<u8>,
}

fn pin_key(principal: &str, device: &str) -> Vec<u8> {
    [principal.as_bytes(), &[0], device.as_bytes()].concat()
}

/// A kept message record under its key, or why it does not load.
pub(crate) type KeptRecord = (Vec<u8>, Result<MessageRecord, String>);

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
            retries: db.open_tree("msgid_retry")?,
            db,
        })
    }

    /// Records `fingerprint` for `principal`'s `device`, from the bundle (`bundle`, encoded) that
    /// the relay logged at `log_index`, saying whether it changed. Bundles are ordered by the
    /// relay's log, never by the publisher's clock (a bundle dated 2100 must not outrank its
    /// successors). A bundle logged no later than the pinned one but with another key is a
    /// rollback: refused, and the pin stays as it was (unless the caller finds the pinned bundle
    /// no longer valid and [`State::drop_pin`]s it).
    pub fn pin(
        &self,
        principal: &str,
        device: &str,
        fingerprint: &str,
        log_index: u64,
        bundle: &[u8],
    ) -> Result<Pin, StateError> {
        let key = pin_key(principal, device);
        let old = self.pinned(principal, device)?;
        let outcome = match &old {
            None => Pin::New,
            Some(o) if o.fingerprint == fingerprint => Pin::Same,
            // Pinned before log indexes were kept: nothing to compare; the newest verified key wins.
            Some(o) if o.log_index.is_none() => Pin::Changed {
                old: o.fingerprint.clone(),
            },
            Some(o) if o.log_index.is_some_and(|i| log_index <= i) => {
                return Ok(Pin::Older {
                    pinned: o.fingerprint.clone(),
                });
            }
            Some(o) => Pin::Changed {
                old: o.fingerprint.clone(),
            },
        };
        let unchanged = old.as_ref().is_some_and(|o| {
            o.fingerprint == fingerprint && o.log_index == Some(log_index) && o.bundle == bundle
        });
        if !unchanged {
            let value = serde_json::json!({
                "fingerprint": fingerprint,
                "log_index": log_index,
                "bundle": hex::encode(bundle),
            });
            self.pins
                .insert(key, serde_json::to_vec(&value).expect("json serialises"))?;
            self.db.flush()?;
        }
        Ok(outcome)
    }

    /// The pin of `principal`'s `device`, if any.
    pub fn pinned(&self, principal: &str, device: &str) -> Result<Option<PinRecord>, StateError> {
        let Some(v) = self.pins.get(pin_key(principal, device))? else {
            return Ok(None);
        };
        if let Ok(j) = serde_json::from_slice::<serde_json::Value>(&v)
            && let Some(fp) = j["fingerprint"].as_str()
        {
            return Ok(Some(PinRecord {
                fingerprint: fp.to_owned(),
                log_index: j["log_index"].as_u64(),
                bundle: hex::decode(j["bundle"].as_str().unwrap_or_default()).unwrap_or_default(),
            }));
        }
        // The earlier form, "fingerprint\ncreated_at": kept as a known key without a log index.
        let text = String::from_utf8_lossy(&v);
        let fp = text.split_once('\n').map_or(text.as_ref(), |(fp, _)| fp);
        Ok(Some(PinRecord {
            fingerprint: fp.to_owned(),
            log_index: None,
            bundle: Vec::new(),
        }))
    }

    /// Forgets the pin of `principal`'s `device` (its bundle no longer verifies: certificate
    /// revoked or expired), so that a successor's bundle can be pinned.
    pub fn drop_pin(&self, principal: &str, device: &str) -> Result<(), StateError> {
        self.pins.remove(pin_key(principal, device))?;
        self.db.flush()?;
        Ok(())
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

    /// Remembers `crls`, the freshest per issuer. Only CRLs whose signature verified with a
    /// trusted CA ([`crate::bundle::TrustStore::freshest_crls`]) can be kept.
    pub fn keep_crls(&self, crls: &[crate::bundle::VerifiedCrl]) -> Result<(), StateError> {
        self.crls.clear()?;
        for (i, crl) in crls.iter().enumerate() {
            self.crls.insert((i as u64).to_be_bytes(), crl.der())?;
        }
        self.db.flush()?;
        Ok(())
    }

    /// The ciphertext digest of a message id processed before, if any.
    pub fn seen(&self, message_id: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.seen.get(message_id)?.map(|v| v.to_vec()))
    }

    /// Keeps a message record (the inbox's copy of a message received or sent), durably.
    pub fn put_message(&self, id: &MessageId, record: &MessageRecord) -> Result<(), StateError> {
        self.messages.insert(
            id.as_bytes(),
            serde_json::to_vec(record).expect("json serialises"),
        )?;
        // A case first seen in a message (issued elsewhere) is listed from then on, with when
        // and from whom it was learned; one issued or seen before is left as it is.
        if record.case.0 != [0; 16] && !self.cases.contains_key(record.case.0)? {
            let learned_from = if record.is_received() {
                record.from.clone()
            } else {
                String::new()
            };
            let at = record
                .received_at
                .clone()
                .unwrap_or_else(|| record.created_at.clone());
            self.cases.insert(
                record.case.0,
                serde_json::to_vec(&serde_json::json!({
                    "case": hex::encode(record.case.0),
                    "issued_at": at,
                    "issued_by": learned_from,
                    "label": "",
                }))
                .expect("json serialises"),
            )?;
        }
        self.db.flush()?;
        Ok(())
    }

    /// A kept message record. One that does not load is an error, not "none": it must not be
    /// taken for a message never kept (and overwritten, or opened and logged again).
    pub fn message(&self, id: &[u8]) -> Result<Option<MessageRecord>, StateError> {
        self.messages
            .get(id)?
            .map(|v| {
                serde_json::from_slice(&v).map_err(|e| {
                    StateError(format!(
                        "the kept record of message {} does not load: {e}",
                        MessageId::from_slice(id)
                            .map_or_else(|_| hex::encode(id), |m| m.to_string())
                    ))
                })
            })
            .transpose()
    }

    /// Deletes the kept record of message `id` (retention), durably. Whether there was one.
    pub fn remove_message(&self, id: &[u8]) -> Result<bool, StateError> {
        let had = self.messages.remove(id)?.is_some();
        self.db.flush()?;
        Ok(had)
    }

    /// Every kept message record with its key, including those that do not load (as errors),
    /// so the retention sweep can say which it could not judge.
    pub(crate) fn message_entries(&self) -> Result<Vec<KeptRecord>, StateError> {
        let mut out = Vec::new();
        for kv in self.messages.iter() {
            let (k, v) = kv?;
            out.push((
                k.to_vec(),
                serde_json::from_slice(&v).map_err(|e| e.to_string()),
            ));
        }
        Ok(out)
    }

    /// Whether a record of message `id` is kept (whether or not it loads).
    pub fn has_message(&self, id: &[u8]) -> Result<bool, StateError> {
        Ok(self.messages.contains_key(id)?)
    }

    /// Every kept message record, in message-id order (UUIDv7: creation order). A record that
    /// does not load is left out, with a warning naming it (the others are still shown).
    pub fn messages(&self) -> Result<Vec<MessageRecord>, StateError> {
        let mut out = Vec::new();
        for kv in self.messages.iter() {
            let (k, v) = kv?;
            match serde_json::from_slice(&v) {
                Ok(r) => out.push(r),
                Err(e) => {
                    tracing::warn!(message_id = %hex::encode(&k), error = %e, "a kept message record does not load; left out")
                }
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

    /// Another tree of the client database (the outbox keeps its records in one of its own).
    pub(crate) fn tree(&self, name: &str) -> Result<sled::Tree, StateError> {
        Ok(self.db.open_tree(name)?)
    }

    /// Writes everything to disk.
    pub(crate) fn flush(&self) -> Result<(), StateError> {
        self.db.flush()?;
        Ok(())
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

    /// The retry record of a received message that could not be processed yet.
    pub fn retry(&self, message_id: &[u8]) -> Result<Option<Retry>, StateError> {
        Ok(self
            .retries
            .get(message_id)?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Records (durably) that a received message could not be processed and when to try again.
    pub fn put_retry(&self, message_id: &[u8], retry: &Retry) -> Result<(), StateError> {
        self.retries.insert(
            message_id,
            serde_json::to_vec(retry).expect("json serialises"),
        )?;
        self.db.flush()?;
        Ok(())
    }

    /// Forgets a message's retry record (it was processed, or rejected).
    pub fn remove_retry(&self, message_id: &[u8]) -> Result<(), StateError> {
        if self.retries.remove(message_id)?.is_some() {
            self.db.flush()?;
        }
        Ok(())
    }

    /// Every retry record, by message id.
    pub fn retries(&self) -> Result<Vec<(Vec<u8>, Retry)>, StateError> {
        let mut out = Vec::new();
        for kv in self.retries.iter() {
            let (k, v) = kv?;
            if let Ok(r) = serde_json::from_slice(&v) {
                out.push((k.to_vec(), r));
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
    fn message_records_kept_by_earlier_versions_load_and_a_damaged_one_is_not_taken_for_none() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        let id: MessageId = "0190c1d2-0000-7000-8000-00000000002a".parse().unwrap();
        // As earlier versions wrote it: `serde_json::Value` bytes.
        let old = serde_json::json!({
            "accepted_at": "2026-11-20T09:00:01Z", "case": "", "ciphertext_sha256": "ab",
            "created_at": "2026-11-20T09:00:00Z", "direction": "received", "from": "centre/joutseno",
            "from_device": "server-1", "in_reply_to": "", "kind": "referral",
            "legal_basis": "consent", "log_index": 7, "message_id": id.to_string(),
            "payload": {"referral": {}}, "received_at": "2026-11-20T09:00:02Z",
            "sender_key": "SHA256:abc", "state": "new", "to": ["assistance/nas"],
            "urgency": "urgent",
        });
        state
            .messages
            .insert(id.as_bytes(), serde_json::to_vec(&old).unwrap())
            .unwrap();
        let r = state.message(id.as_bytes()).unwrap().unwrap();
        assert_eq!(r.message_id, id);
        assert_eq!(serde_json::to_value(&r).unwrap(), old);
        assert_eq!(state.messages().unwrap(), vec![r]);

        let other = MessageId([9; 16]);
        state
            .messages
            .insert(other.as_bytes(), b"{\"message_id\": 12}".to_vec())
            .unwrap();
        assert!(state.message(other.as_bytes()).is_err());
        assert!(state.has_message(other.as_bytes()).unwrap());
        assert_eq!(
            state.messages().unwrap().len(),
            1,
            "the damaged one is left out"
        );
        assert!(state.message(&[1; 16]).unwrap().is_none());
    }

    #[test]
    fn pins_detect_changes_and_refuse_rollbacks() {
        let dir = tempfile::tempdir().unwrap();
        let s = State::open(dir.path()).unwrap();
        assert_eq!(s.pin("centre/a", "d1", "aaaa", 10, b"A").unwrap(), Pin::New);
        assert_eq!(
            s.pin("centre/a", "d1", "aaaa", 10, b"A").unwrap(),
            Pin::Same
        );
        assert_eq!(
            s.pin("centre/a", "d1", "bbbb", 20, b"B").unwrap(),
            Pin::Changed { old: "aaaa".into() }
        );
        // The old bundle served again later is a rollback, and the pin stays on the new key.
        assert_eq!(
            s.pin("centre/a", "d1", "aaaa", 10, b"A").unwrap(),
            Pin::Older {
                pinned: "bbbb".into()
            }
        );
        // Another key claiming the pinned bundle's own log index is refused too.
        assert_eq!(
            s.pin("centre/a", "d1", "cccc", 20, b"C").unwrap(),
            Pin::Older {
                pinned: "bbbb".into()
            }
        );
        assert_eq!(
            s.pin("centre/a", "d1", "bbbb", 20, b"B").unwrap(),
            Pin::Same
        );
        assert_eq!(s.pinned_devices("centre/a"), 1);
        assert_eq!(s.pinned_devices("centre/ab"), 0);
        let rec = s.pinned("centre/a", "d1").unwrap().unwrap();
        assert_eq!(
            (rec.log_index, rec.bundle.as_slice()),
            (Some(20), &b"B"[..])
        );
        // Once dropped, an earlier-logged successor can be pinned.
        s.drop_pin("centre/a", "d1").unwrap();
        assert_eq!(s.pin("centre/a", "d1", "dddd", 15, b"D").unwrap(), Pin::New);
    }

    #[test]
    fn pins_made_before_log_indexes_still_count_as_known_keys() {
        let dir = tempfile::tempdir().unwrap();
        let s = State::open(dir.path()).unwrap();
        // The earlier form, pinned by a publisher's (here absurd) clock.
        s.pins
            .insert(pin_key("centre/a", "d1"), &b"aaaa\n4102444800"[..])
            .unwrap();
        assert_eq!(s.pin("centre/a", "d1", "aaaa", 3, b"A").unwrap(), Pin::Same);
        assert_eq!(
            s.pinned("centre/a", "d1").unwrap().unwrap().log_index,
            Some(3),
            "upgraded to the new form"
        );
        s.pins
            .insert(pin_key("centre/a", "d2"), &b"xxxx\n4102444800"[..])
            .unwrap();
        assert_eq!(
            s.pin("centre/a", "d2", "yyyy", 4, b"Y").unwrap(),
            Pin::Changed { old: "xxxx".into() },
            "a date in 2100 blocks nothing"
        );
    }
}
