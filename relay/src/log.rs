//! The verifiable delivery log: every event is a leaf of an RFC 9162 Merkle tree whose stored
//! subtree hashes are written in the same transaction as the event (see [`crate::store`]), and
//! checkpoints are signed with the relay's Ed25519 log key — only ever over what is on disk, so
//! no two signed checkpoints can be inconsistent, even across a crash.

use std::path::Path;

use ed25519_dalek::SigningKey;
use silta_certs::files::{SECRET_MODE, write_new};
use silta_proto::tlog::{self, Checkpoint, Hash};

/// The relay's log key(s) and origin. Normally one key (`log-key.pem`); while a rotation is
/// under way (`silta-relay log-key rotate` until `log-key finish`) also the next key
/// (`log-key-next.pem`), and every checkpoint carries a signature by each.
pub struct LogSigner {
    /// The current key first, then the next one during a rotation.
    keys: Vec<SigningKey>,
    origin: String,
}

impl std::fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSigner")
            .field("origin", &self.origin)
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// File name of the log key in the data folder.
pub const LOG_KEY_FILE: &str = "log-key.pem";

/// File name of the next log key while a rotation is under way.
pub const NEXT_LOG_KEY_FILE: &str = "log-key-next.pem";

/// File names of retired log keys start with this, then the key ID in hex, then `.pem`.
pub const RETIRED_LOG_KEY_PREFIX: &str = "log-key-retired-";

/// Why the log key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[error("log key {path}: {message}")]
pub struct LogKeyError {
    path: std::path::PathBuf,
    message: String,
}

fn read_key(path: &Path) -> Result<SigningKey, LogKeyError> {
    let err = |message: String| LogKeyError {
        path: path.to_owned(),
        message,
    };
    let pem = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    silta_proto::keyfile::from_pem(&pem).map_err(err)
}

fn new_key(path: &Path) -> Result<SigningKey, LogKeyError> {
    let err = |message: String| LogKeyError {
        path: path.to_owned(),
        message,
    };
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| err(e.to_string()))?;
    let key = SigningKey::from_bytes(&seed);
    let pem = silta_proto::keyfile::to_pem(&key).map_err(err)?;
    write_new(path, pem.as_bytes(), SECRET_MODE).map_err(|e| err(e.to_string()))?;
    sync_dir(path).map_err(err)?;
    Ok(key)
}

fn sync_dir(path: &Path) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("{}: {e}", dir.display()))
}

impl LogSigner {
    /// Loads `<data_dir>/log-key.pem` (and `log-key-next.pem` during a rotation), creating the
    /// key (mode 0600) on first start.
    pub fn load_or_create(data_dir: &Path, origin: &str) -> Result<Self, LogKeyError> {
        let path = data_dir.join(LOG_KEY_FILE);
        let next = data_dir.join(NEXT_LOG_KEY_FILE);
        let current = if path.exists() {
            read_key(&path)?
        } else if next.exists() {
            // Never start a third key beside a pending one.
            return Err(LogKeyError {
                path,
                message: format!(
                    "missing, but {NEXT_LOG_KEY_FILE} exists: put the current log key back (a rotation is under way)"
                ),
            });
        } else {
            let key = new_key(&path)?;
            tracing::info!(path = %path.display(), "created the delivery-log signing key");
            key
        };
        let mut keys = vec![current];
        if next.exists() {
            keys.push(read_key(&next)?);
            tracing::warn!(
                "log key rotation under way: checkpoints are signed with the current and the next key until `silta-relay log-key finish`"
            );
        }
        Ok(LogSigner {
            keys,
            origin: origin.to_owned(),
        })
    }

    /// The log's origin (checkpoint first line and key name).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The verifier key string of the current key, which auditors configure (`silta-relay
    /// log-key` prints it).
    pub fn verifier_key(&self) -> String {
        tlog::verifier_key(&self.origin, &self.keys[0].verifying_key().to_bytes())
    }

    /// The verifier keys of every key that signs now: the current one, and the next one during
    /// a rotation.
    pub fn verifier_keys(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| tlog::verifier_key(&self.origin, &k.verifying_key().to_bytes()))
            .collect()
    }

    /// A signed checkpoint of the tree of `size` leaves with `root`, signed by every key that
    /// signs now. Deterministic.
    pub fn sign(&self, size: u64, root: Hash) -> String {
        tlog::sign_checkpoint_with(
            &Checkpoint {
                origin: self.origin.clone(),
                size,
                root,
            },
            &self.keys.iter().collect::<Vec<_>>(),
        )
    }
}

/// The verifier keys of this data folder's retired log keys (`log-key-retired-*.pem`), to check
/// what they signed before (a backup's checkpoint).
pub fn retired_verifier_keys(data_dir: &Path, origin: &str) -> Result<Vec<String>, LogKeyError> {
    let err = |message: String| LogKeyError {
        path: data_dir.to_owned(),
        message,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(data_dir).map_err(|e| err(e.to_string()))? {
        let entry = entry.map_err(|e| err(e.to_string()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(RETIRED_LOG_KEY_PREFIX) && name.ends_with(".pem") {
            let key = read_key(&entry.path())?;
            out.push(tlog::verifier_key(origin, &key.verifying_key().to_bytes()));
        }
    }
    out.sort();
    Ok(out)
}

/// A step of a log-key rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The verifier key that signed alone before this step.
    pub old: String,
    /// The verifier key that signs alone after the whole rotation.
    pub new: String,
    /// The LOG_KEY_ROTATED event's index.
    pub log_index: u64,
}

/// Refuses a folder without `log-key.pem`: a rotation changes an existing key, it never makes
/// the first one (a mistyped data folder would otherwise get a new key and database).
pub fn require_current_key(data_dir: &Path) -> Result<(), LogKeyError> {
    let path = data_dir.join(LOG_KEY_FILE);
    if path.exists() {
        return Ok(());
    }
    Err(LogKeyError {
        path,
        message: format!(
            "missing: there is no log key to rotate in {} (is it the relay's data folder, storage.data_dir? The relay creates {LOG_KEY_FILE} at its first start)",
            data_dir.display()
        ),
    })
}

/// Starts a log-key rotation in a stopped relay's data folder: creates `log-key-next.pem`
/// (0600), then records a LOG_KEY_ROTATED event. From the next start the relay signs every
/// checkpoint with both keys. Run again after a crash, it keeps the next key already written and
/// records the event again (a key is never replaced).
///
/// Offline, with the relay stopped (the database's lock makes sure): the key set is a fact of the
/// relay's start, like the high-water check, and every holder of the signer (receipts, the audit
/// service, backups) sees the same set for the relay's whole run. A restart takes seconds;
/// clients reconnect and their outboxes resend.
pub async fn rotate(
    data_dir: &Path,
    origin: &str,
    store: &crate::store::Store,
) -> Result<Rotation, LogKeyError> {
    require_current_key(data_dir)?;
    let signer = LogSigner::load_or_create(data_dir, origin)?;
    let old = signer.verifier_key();
    let next_path = data_dir.join(NEXT_LOG_KEY_FILE);
    let next = if next_path.exists() {
        read_key(&next_path)?
    } else {
        new_key(&next_path)?
    };
    let new = tlog::verifier_key(origin, &next.verifying_key().to_bytes());
    let detail = format!(
        "log key rotation started: checkpoints are signed by the current key {old} and the next key {new}; auditors add the next key, then the operator runs `silta-relay log-key finish`"
    );
    let log_index = record_rotation(store, detail, &next_path).await?;
    Ok(Rotation {
        old,
        new,
        log_index,
    })
}

/// Finishes a log-key rotation in a stopped relay's data folder: records a LOG_KEY_ROTATED
/// event, keeps the old key as `log-key-retired-<key id>.pem` (a hard link, so the key is never
/// without a file; 0600), then renames `log-key-next.pem` to `log-key.pem` (atomic). Run again
/// after a crash, it goes on where it stopped.
pub async fn finish(
    data_dir: &Path,
    origin: &str,
    store: &crate::store::Store,
) -> Result<Rotation, LogKeyError> {
    let current_path = data_dir.join(LOG_KEY_FILE);
    let next_path = data_dir.join(NEXT_LOG_KEY_FILE);
    if !next_path.exists() {
        return Err(LogKeyError {
            path: next_path,
            message:
                "no log key rotation is under way (start one with `silta-relay log-key rotate`)"
                    .into(),
        });
    }
    let (current, next) = (read_key(&current_path)?, read_key(&next_path)?);
    let old_public = current.verifying_key().to_bytes();
    let old = tlog::verifier_key(origin, &old_public);
    let new = tlog::verifier_key(origin, &next.verifying_key().to_bytes());
    let detail = format!(
        "log key rotation finished: checkpoints are signed by {new} only; the old key {old} is retired"
    );
    // The event first: a crash after it leaves the rotation under way, and a second run records
    // it again, never a finished rotation the log does not show.
    let log_index = record_rotation(store, detail, &current_path).await?;
    let retired = data_dir.join(format!(
        "{RETIRED_LOG_KEY_PREFIX}{}.pem",
        hex::encode(tlog::key_id(origin, &old_public))
    ));
    let err = |path: &Path, message: String| LogKeyError {
        path: path.to_owned(),
        message,
    };
    match std::fs::hard_link(&current_path, &retired) {
        Ok(()) => {}
        // A run that stopped after this step: the same key is already kept.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if read_key(&retired)?.to_bytes() != current.to_bytes() {
                return Err(err(
                    &retired,
                    "exists and holds another key; never overwritten".into(),
                ));
            }
        }
        Err(e) => return Err(err(&retired, e.to_string())),
    }
    sync_dir(&retired).map_err(|m| err(&retired, m))?;
    std::fs::rename(&next_path, &current_path).map_err(|e| err(&current_path, e.to_string()))?;
    sync_dir(&current_path).map_err(|m| err(&current_path, m))?;
    Ok(Rotation {
        old,
        new,
        log_index,
    })
}

async fn record_rotation(
    store: &crate::store::Store,
    detail: String,
    path: &Path,
) -> Result<u64, LogKeyError> {
    use silta_proto::pb;
    store
        .write(move |trees| {
            trees.transaction(|tx| {
                tx.append_event(pb::Event {
                    r#type: pb::EventType::LogKeyRotated.into(),
                    time: Some(tx.now()),
                    detail: detail.clone(),
                    ..Default::default()
                })
            })
        })
        .await
        .map_err(|e| LogKeyError {
            path: path.to_owned(),
            message: format!("recording the rotation in the log: {e}"),
        })
}

/// The log's origin for a trust domain.
pub fn origin_for(trust_domain: &str) -> String {
    format!("{trust_domain}/delivery-log")
}

/// File next to the log key recording the largest tree this key has signed a checkpoint for.
pub const HIGH_WATER_FILE: &str = "log-high-water";

/// Marker `silta-relay restore` leaves in the data folder: the next start is refused until the
/// operator accepts the restore with `--accept-rollback` (recorded as a LOG_ROLLBACK event).
pub const RESTORED_FILE: &str = "restored-from-backup";

/// The log in the data folder does not extend what this log key signed before.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Rollback {
    /// The log is shorter than a checkpoint this key signed (restored from an older backup, or
    /// lost).
    #[error(
        "the delivery log has {have} entries but this log key already signed a checkpoint of {signed}: the database was restored from an older backup (or lost); serving it would fork the log"
    )]
    Shorter {
        /// Entries in the log now.
        have: u64,
        /// Entries this key signed.
        signed: u64,
        /// The root it signed.
        signed_root: String,
    },
    /// The first `signed` entries hash to another root than the one signed.
    #[error(
        "the first {signed} entries of the delivery log differ from what this log key signed: the database was altered or replaced"
    )]
    Differs {
        /// Entries this key signed.
        signed: u64,
        /// The root it signed.
        signed_root: String,
    },
    /// The high-water file does not parse (or cannot be read).
    #[error("{0} is damaged")]
    Damaged(String),
    /// The log holds entries but the high-water file is gone: the data folder was rebuilt
    /// (a restore, or a database brought from elsewhere) without it, so nothing shows what
    /// this key signed before.
    #[error(
        "the delivery log has {have} entries but {path} is missing: nothing shows how far this log key signed before, so the database may have been restored from an older backup (or lost); serving it could fork the log"
    )]
    Missing {
        /// The high-water file.
        path: String,
        /// Entries in the log now.
        have: u64,
    },
    /// The database was restored from a backup (`silta-relay restore` left [`RESTORED_FILE`])
    /// and the operator has not yet accepted that.
    #[error(
        "the database was restored from a backup ({0}); the first start after a restore must be accepted with --accept-rollback, which records the restore in the log"
    )]
    Restored(String),
    /// The log could not be read to compare.
    #[error("reading the delivery log: {0}")]
    Store(String),
}

/// Checks at start that the log still extends what this key signed before: a database restored
/// from an old backup (or lost) under the same key would otherwise be signed as a second, forked
/// history. The high-water file lives beside the log key, outside the database, so a restore
/// (which writes only the database) leaves it in place.
///
/// Only an empty log may go without a high-water file (a new relay); on a log with entries a
/// missing or unreadable file is a rollback, as is the marker a restore leaves
/// ([`RESTORED_FILE`]): the first start after any restore needs the operator's
/// `--accept-rollback`.
pub fn check_high_water(data_dir: &Path, store: &crate::store::Store) -> Result<(), Rollback> {
    check_signed(data_dir, store)?;
    let marker = data_dir.join(RESTORED_FILE);
    match std::fs::read_to_string(&marker) {
        Ok(text) => Err(Rollback::Restored(text.trim().replace('\n', "; "))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Rollback::Restored(format!(
            "{} exists but cannot be read: {e}",
            marker.display()
        ))),
    }
}

fn check_signed(data_dir: &Path, store: &crate::store::Store) -> Result<(), Rollback> {
    let path = data_dir.join(HIGH_WATER_FILE);
    let have = store.durable_size();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && have == 0 => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Rollback::Missing {
                path: path.display().to_string(),
                have,
            });
        }
        Err(e) => return Err(Rollback::Damaged(format!("{} ({e})", path.display()))),
    };
    let (size, root) = text
        .trim()
        .split_once(' ')
        .and_then(|(s, r)| Some((s.parse::<u64>().ok()?, hex::decode(r).ok()?)))
        .ok_or_else(|| Rollback::Damaged(path.display().to_string()))?;
    if have < size {
        return Err(Rollback::Shorter {
            have,
            signed: size,
            signed_root: hex::encode(&root),
        });
    }
    let root_now = tlog::root(store, size).map_err(|e| Rollback::Store(e.to_string()))?;
    if root_now.as_slice() != root.as_slice() {
        return Err(Rollback::Differs {
            signed: size,
            signed_root: hex::encode(&root),
        });
    }
    Ok(())
}

/// Records in the log that the operator accepted `rollback` (`--accept-rollback`), as a
/// LOG_ROLLBACK event, then moves the high-water mark to the log as it now is. Returns the
/// event's index.
pub async fn accept_rollback(
    data_dir: &Path,
    store: &std::sync::Arc<crate::store::Store>,
    rollback: &Rollback,
) -> Result<u64, String> {
    use silta_proto::pb;
    let have = store.durable_size();
    let root_now = hex::encode(tlog::root(store.as_ref(), have).map_err(|e| e.to_string())?);
    let signed = match rollback {
        Rollback::Shorter {
            signed,
            signed_root,
            ..
        }
        | Rollback::Differs {
            signed,
            signed_root,
        } => format!("this log key had signed {signed} entries with root {signed_root}"),
        Rollback::Damaged(_) | Rollback::Missing { .. } | Rollback::Store(_) => {
            "the high-water mark of this log key could not be read".to_owned()
        }
        Rollback::Restored(what) => format!("the database was restored from a backup ({what})"),
    };
    // Content-free: sizes and hashes only.
    let detail = format!(
        "rollback accepted by the operator (--accept-rollback): {signed}; the log found had {have} entries with root {root_now}; receipts for later entries do not match this log"
    );
    let index = store
        .write(move |trees| {
            trees.transaction(|tx| {
                tx.append_event(pb::Event {
                    r#type: pb::EventType::LogRollback.into(),
                    time: Some(tx.now()),
                    detail: detail.clone(),
                    ..Default::default()
                })
            })
        })
        .await
        .map_err(|e| format!("recording the rollback in the log: {e}"))?;
    let (d, s) = (data_dir.to_owned(), store.clone());
    tokio::task::spawn_blocking(move || {
        write_high_water(&d, &s)?;
        // Accepted and recorded: the next start is a normal one.
        match std::fs::remove_file(d.join(RESTORED_FILE)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("removing {RESTORED_FILE}: {e}")),
        }
        std::fs::File::open(&d)
            .and_then(|d| d.sync_all())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())??;
    tracing::warn!(
        index,
        "rollback of the delivery log accepted by the operator and recorded in the log"
    );
    Ok(index)
}

/// Records the durable tree size and root (fsynced), at most as far as what is on disk.
pub fn write_high_water(data_dir: &Path, store: &crate::store::Store) -> Result<(), String> {
    let size = store.durable_size();
    let root = tlog::root(store, size).map_err(|e| e.to_string())?;
    let path = data_dir.join(HIGH_WATER_FILE);
    let tmp = path.with_extension("tmp");
    // Created 0600 and fsynced, like everything in the data folder (a leftover from a crash is
    // replaced).
    let _ = std::fs::remove_file(&tmp);
    write_new(
        &tmp,
        format!("{size} {}\n", hex::encode(root)).as_bytes(),
        SECRET_MODE,
    )
    .map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &path).map_err(|e| e.to_string())?;
    std::fs::File::open(data_dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[tokio::test]
    async fn a_log_with_entries_needs_its_high_water_file_and_a_restore_needs_acceptance() {
        let data = tempfile::tempdir().unwrap();
        let store = Store::open(&data.path().join("db"), true).unwrap();
        // A new relay: empty log, no file.
        check_high_water(data.path(), &store).unwrap();
        store
            .register_principal("centre/a".parse().unwrap())
            .await
            .unwrap();
        // Entries and no file: a rollback, not a pass.
        assert!(matches!(
            check_high_water(data.path(), &store),
            Err(Rollback::Missing { have: 1, .. })
        ));
        // A file that cannot be read (here: a folder in its place) is no pass either.
        std::fs::create_dir(data.path().join(HIGH_WATER_FILE)).unwrap();
        assert!(matches!(
            check_high_water(data.path(), &store),
            Err(Rollback::Damaged(_))
        ));
        std::fs::remove_dir(data.path().join(HIGH_WATER_FILE)).unwrap();
        write_high_water(data.path(), &store).unwrap();
        check_high_water(data.path(), &store).unwrap();
        // After a restore, even a log that extends the mark waits for the operator.
        std::fs::write(data.path().join(RESTORED_FILE), "backup made then\n").unwrap();
        assert!(matches!(
            check_high_water(data.path(), &store),
            Err(Rollback::Restored(what)) if what == "backup made then"
        ));
    }
}
