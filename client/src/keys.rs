//! A device's keys: an age X25519 identity (to receive) and an Ed25519 key (to sign).
//!
//! On disk, in the key folder:
//! - `age-identity.txt`: a standard age identity file (`age -d -i age-identity.txt` works), 0600;
//! - `signing-key.pem`: the Ed25519 key as PKCS#8 v1 PEM (OpenSSL 3 reads it), 0600;
//! - `device-id`: the device's name within its principal.
//!
//! Keys are never overwritten: `init` refuses if any of the files exists.
//!
//! `silta keys rotate` ([`DeviceKeys::prepare_rotation`], publish, [`DeviceKeys::finish_rotation`])
//! makes new keys for the same device id and keeps the old ones:
//! - `next/`: the new keys, written in full before anything else changes;
//! - `retired/<unix seconds>-<fingerprint>/`: each earlier identity (folder 0700, files 0600,
//!   never overwritten), so messages sealed to it still open; deleted by the retention sweep
//!   after `retention.retired_key_days` ([`crate::retention::sweep_retired_keys`]).
//!
//! Every identity found there (and in `next/` while a rotation is under way) is tried when a
//! message is opened ([`DeviceKeys::age_identities`]).

use std::{path::Path, str::FromStr};

use age::secrecy::ExposeSecret as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use silta_certs::files::{SECRET_MODE, write_new};

/// File names in the key folder.
pub const AGE_FILE: &str = "age-identity.txt";
/// The Ed25519 key.
pub const SIGNING_FILE: &str = "signing-key.pem";
/// The device id.
pub const DEVICE_FILE: &str = "device-id";
/// Where the keys of a rotation under way wait (in the key folder).
pub const NEXT_DIR: &str = "next";
/// Where earlier identities are kept (in the key folder).
pub const RETIRED_DIR: &str = "retired";

/// Why keys could not be made or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A key file exists already; keys are never overwritten.
    #[error("{0} already exists; keys are never overwritten (move the folder away to start over)")]
    Exists(std::path::PathBuf),
    /// A key file is missing or unreadable.
    #[error("cannot read {path}: {message} (run `silta keys init` first?)")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The device id is not valid.
    #[error("invalid device id {0:?}: use 1-64 characters a-z 0-9 . _ -")]
    DeviceId(String),
    /// Anything else (randomness, writing).
    #[error("{0}")]
    Other(String),
}

/// A device's private keys.
pub struct DeviceKeys {
    device_id: String,
    age: age::x25519::Identity,
    signing: SigningKey,
    /// Earlier identities (retired/) and the next one (next/, during a rotation): tried after
    /// the current one when a message is opened.
    kept: Vec<age::x25519::Identity>,
}

impl std::fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKeys")
            .field("device_id", &self.device_id)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// Checks a device id: 1–64 characters of `[a-z0-9._-]`.
pub(crate) fn check_device_id(id: &str) -> Result<(), KeyError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(KeyError::DeviceId(id.to_owned()))
    }
}

impl DeviceKeys {
    /// Fresh keys in memory.
    pub fn generate(device_id: &str) -> Result<Self, KeyError> {
        check_device_id(device_id)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Other(format!("randomness: {e}")))?;
        Ok(DeviceKeys {
            device_id: device_id.to_owned(),
            age: age::x25519::Identity::generate(),
            signing: SigningKey::from_bytes(&seed),
            kept: Vec::new(),
        })
    }

    /// Creates keys and writes them to `dir` (created if missing), never overwriting.
    pub fn init(dir: &Path, device_id: &str) -> Result<Self, KeyError> {
        let keys = Self::generate(device_id)?;
        // The key folder: owner only (the state folder above it is made private by its users).
        crate::fsutil::ensure_private_dir(dir).map_err(KeyError::Other)?;
        for f in [AGE_FILE, SIGNING_FILE, DEVICE_FILE] {
            if dir.join(f).exists() {
                return Err(KeyError::Exists(dir.join(f)));
            }
        }
        keys.write_secret_files(dir)?;
        write_file(dir, DEVICE_FILE, format!("{device_id}\n").as_bytes())?;
        Ok(keys)
    }

    /// Writes the age identity and the signing key into `dir` (0600, never overwriting).
    fn write_secret_files(&self, dir: &Path) -> Result<(), KeyError> {
        let created = crate::times::now_rfc3339();
        let age_file = format!(
            "# created: {created}\n# public key: {}\n{}\n",
            self.age_recipient(),
            self.age.to_string().expose_secret()
        );
        write_file(dir, AGE_FILE, age_file.as_bytes())?;
        let pem = silta_proto::keyfile::to_pem(&self.signing).map_err(KeyError::Other)?;
        write_file(dir, SIGNING_FILE, pem.as_bytes())
    }

    /// Reads keys from `dir`, with the identities kept in `retired/` and `next/`.
    pub fn load(dir: &Path) -> Result<Self, KeyError> {
        let mut keys = Self::load_current(dir)?;
        for kept in kept_dirs(dir)? {
            keys.kept.push(read_age(&kept)?);
        }
        Ok(keys)
    }

    /// Reads the current keys of `dir` alone.
    fn load_current(dir: &Path) -> Result<Self, KeyError> {
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read_to_string(&p).map_err(|e| KeyError::Read {
                path: p,
                message: e.to_string(),
            })
        };
        let bad = |name: &str, message: &str| KeyError::Read {
            path: dir.join(name),
            message: message.to_owned(),
        };
        let age = read_age(dir)?;
        let signing = silta_proto::keyfile::from_pem(&read(SIGNING_FILE)?)
            .map_err(|m| bad(SIGNING_FILE, &m))?;
        let device_id = read(DEVICE_FILE)?.trim().to_owned();
        check_device_id(&device_id)?;
        Ok(DeviceKeys {
            device_id,
            age,
            signing,
            kept: Vec::new(),
        })
    }

    /// The device id.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The age identity (to decrypt).
    pub fn age_identity(&self) -> &age::x25519::Identity {
        &self.age
    }

    /// Every identity a message to this device may be sealed to: the current one first, then
    /// those kept from before a rotation and the next one while a rotation is under way.
    pub fn age_identities(&self) -> impl Iterator<Item = &age::x25519::Identity> {
        std::iter::once(&self.age).chain(&self.kept)
    }

    /// Starts a rotation in the key folder `dir`, or resumes one a crash interrupted: writes new
    /// keys for the same device into `next/` (complete, or not at all), and keeps a copy of the
    /// current identity in `retired/<unix seconds>-<fingerprint>/`. Returns the new keys, to be
    /// published; then [`DeviceKeys::finish_rotation`] makes them current.
    ///
    /// The order is what keeps a crash harmless: the old identity is kept before anything can
    /// replace it, and the new keys exist on disk before they are published, so no key is ever
    /// published whose private half is not on disk, and no identity messages were sealed to is
    /// lost. They become current only after publishing: a failed publish leaves the device
    /// signing with the key its peers know (run `silta keys rotate` again to go on).
    pub fn prepare_rotation(dir: &Path, now: std::time::SystemTime) -> Result<Self, KeyError> {
        let current = Self::load_current(dir)?;
        let next_dir = dir.join(NEXT_DIR);
        let next = if next_dir.join(AGE_FILE).exists() && next_dir.join(SIGNING_FILE).exists() {
            let mut next = Self::load_pair(&next_dir, &current.device_id)?;
            next.kept.clear();
            next
        } else if next_dir.exists() {
            // A switch a crash interrupted (after the publish): some of next/ is current
            // already. Finish it; what is current now is the new keys (published again).
            Self::finish_rotation(dir)?;
            return Self::load_current(dir);
        } else {
            let next = Self::generate(&current.device_id)?;
            // Written whole under a temporary name, then renamed: next/ is complete or absent.
            let tmp = dir.join(format!("{NEXT_DIR}.tmp"));
            if tmp.exists() {
                std::fs::remove_dir_all(&tmp)
                    .map_err(|e| KeyError::Other(format!("{}: {e}", tmp.display())))?;
            }
            crate::fsutil::ensure_private_dir(&tmp).map_err(KeyError::Other)?;
            next.write_secret_files(&tmp)?;
            rename_synced(&tmp, &next_dir)?;
            next
        };
        current.keep(dir, now)?;
        Ok(next)
    }

    /// Keeps a copy of this identity in `dir/retired/<unix seconds>-<fingerprint>/`, unless one
    /// of the same fingerprint is kept already (a resumed rotation).
    fn keep(&self, dir: &Path, now: std::time::SystemTime) -> Result<(), KeyError> {
        let retired = dir.join(RETIRED_DIR);
        crate::fsutil::ensure_private_dir(&retired).map_err(KeyError::Other)?;
        let fp: String = self
            .fingerprint()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        for kept in list_retired(dir)? {
            if kept.fingerprint == fp {
                return Ok(());
            }
        }
        let secs = now
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let name = format!("{secs}-{fp}");
        let tmp = retired.join(format!(".{name}.tmp"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)
                .map_err(|e| KeyError::Other(format!("{}: {e}", tmp.display())))?;
        }
        crate::fsutil::ensure_private_dir(&tmp).map_err(KeyError::Other)?;
        self.write_secret_files(&tmp)?;
        let target = retired.join(&name);
        if target.exists() {
            return Err(KeyError::Exists(target));
        }
        rename_synced(&tmp, &target)
    }

    /// Makes the keys in `next/` current (each file renamed over the current one), then removes
    /// `next/`. The identity they replace was kept by [`DeviceKeys::prepare_rotation`].
    pub fn finish_rotation(dir: &Path) -> Result<(), KeyError> {
        let next_dir = dir.join(NEXT_DIR);
        if !next_dir.exists() {
            return Ok(());
        }
        // The signing key first: a crash between the two leaves the new signing key with the
        // old (kept) age identity current and next/ holding the age file; loading still works
        // and a second run finishes.
        for f in [SIGNING_FILE, AGE_FILE] {
            let from = next_dir.join(f);
            if from.exists() {
                rename_synced(&from, &dir.join(f))?;
            }
        }
        std::fs::remove_dir(&next_dir)
            .map_err(|e| KeyError::Other(format!("{}: {e}", next_dir.display())))?;
        sync_dir(dir)
    }

    fn load_pair(dir: &Path, device_id: &str) -> Result<Self, KeyError> {
        let p = dir.join(SIGNING_FILE);
        let pem = std::fs::read_to_string(&p).map_err(|e| KeyError::Read {
            path: p.clone(),
            message: e.to_string(),
        })?;
        let signing = silta_proto::keyfile::from_pem(&pem)
            .map_err(|message| KeyError::Read { path: p, message })?;
        Ok(DeviceKeys {
            device_id: device_id.to_owned(),
            age: read_age(dir)?,
            signing,
            kept: Vec::new(),
        })
    }

    /// The public age recipient, `age1...`.
    pub fn age_recipient(&self) -> String {
        self.age.to_public().to_string()
    }

    /// The public Ed25519 key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// Signs `context || msg`.
    pub fn sign(&self, context: &[u8], msg: &[u8]) -> [u8; 64] {
        self.signing.sign(&[context, msg].concat()).to_bytes()
    }

    /// The fingerprint people compare by phone.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.age_recipient(), self.verifying_key().as_bytes())
    }
}

fn write_file(dir: &Path, name: &str, data: &[u8]) -> Result<(), KeyError> {
    write_new(&dir.join(name), data, SECRET_MODE).map_err(|e| match e {
        silta_certs::CertsError::AlreadyExists(p) => KeyError::Exists(p),
        other => KeyError::Other(other.to_string()),
    })
}

fn sync_dir(dir: &Path) -> Result<(), KeyError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| KeyError::Other(format!("{}: {e}", dir.display())))
}

/// Renames `from` to `to` and makes it durable (both parent folders synced).
fn rename_synced(from: &Path, to: &Path) -> Result<(), KeyError> {
    std::fs::rename(from, to)
        .map_err(|e| KeyError::Other(format!("{} -> {}: {e}", from.display(), to.display())))?;
    for d in [from.parent(), to.parent()].into_iter().flatten() {
        sync_dir(d)?;
    }
    Ok(())
}

/// Reads the age identity file of `dir`.
fn read_age(dir: &Path) -> Result<age::x25519::Identity, KeyError> {
    let path = dir.join(AGE_FILE);
    let bad = |message: &str| KeyError::Read {
        path: path.clone(),
        message: message.to_owned(),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| bad(&e.to_string()))?;
    // An age identity file: comment lines start with '#', the identity is the other line.
    let secret = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| bad("no identity line"))?;
    age::x25519::Identity::from_str(secret).map_err(|_| bad("invalid age identity"))
}

/// An identity kept after a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredKey {
    /// Its folder, `retired/<unix seconds>-<fingerprint>`.
    pub path: std::path::PathBuf,
    /// When it was retired.
    pub retired_at: std::time::SystemTime,
    /// Its fingerprint (hex digits only).
    pub fingerprint: String,
}

/// The identities kept in the key folder `dir` after rotations, oldest first. Folders whose
/// names do not parse (and unfinished copies, `.…tmp`) are not listed.
pub fn list_retired(dir: &Path) -> Result<Vec<RetiredKey>, KeyError> {
    let retired = dir.join(RETIRED_DIR);
    let entries = match std::fs::read_dir(&retired) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(KeyError::Other(format!("{}: {e}", retired.display()))),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| KeyError::Other(format!("{}: {e}", retired.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((secs, fp)) = name.split_once('-') else {
            continue;
        };
        let Ok(secs) = secs.parse::<u64>() else {
            continue;
        };
        if fp.is_empty() || !fp.chars().all(|c| c.is_ascii_alphanumeric()) {
            continue;
        }
        out.push(RetiredKey {
            path: entry.path(),
            retired_at: std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
            fingerprint: fp.to_owned(),
        });
    }
    out.sort_by(|a, b| (a.retired_at, &a.path).cmp(&(b.retired_at, &b.path)));
    Ok(out)
}

/// The folders whose identities are kept besides the current one: retired/ ones, then next/
/// (only when complete).
fn kept_dirs(dir: &Path) -> Result<Vec<std::path::PathBuf>, KeyError> {
    let mut out: Vec<_> = list_retired(dir)?.into_iter().map(|k| k.path).collect();
    let next = dir.join(NEXT_DIR);
    if next.join(AGE_FILE).exists() {
        out.push(next);
    }
    Ok(out)
}

/// A device fingerprint; see [`silta_proto::device_fingerprint`].
pub use silta_proto::device_fingerprint as fingerprint;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_load_and_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let k = DeviceKeys::init(dir.path(), "server-1").unwrap();
        for f in [AGE_FILE, SIGNING_FILE, DEVICE_FILE] {
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(dir.path().join(f)).unwrap().permissions(),
            );
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        let loaded = DeviceKeys::load(dir.path()).unwrap();
        assert_eq!(loaded.fingerprint(), k.fingerprint());
        assert_eq!(loaded.device_id(), "server-1");
        let before = std::fs::read(dir.path().join(AGE_FILE)).unwrap();
        assert!(matches!(
            DeviceKeys::init(dir.path(), "server-1"),
            Err(KeyError::Exists(_))
        ));
        assert_eq!(std::fs::read(dir.path().join(AGE_FILE)).unwrap(), before);
        assert!(matches!(
            DeviceKeys::generate("Bad Id"),
            Err(KeyError::DeviceId(_))
        ));
    }

    fn mode(p: &Path) -> u32 {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    }

    #[test]
    fn a_rotation_keeps_the_old_identity_and_resumes_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let old = DeviceKeys::init(dir.path(), "server-1").unwrap();
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let next = DeviceKeys::prepare_rotation(dir.path(), now).unwrap();
        assert_eq!(next.device_id(), "server-1");
        assert_ne!(next.fingerprint(), old.fingerprint());
        // Before the switch (say the publish failed): still the old keys, the next identity
        // already tried when opening; a second run resumes with the same next keys.
        let loaded = DeviceKeys::load(dir.path()).unwrap();
        assert_eq!(loaded.fingerprint(), old.fingerprint());
        assert_eq!(
            loaded.age_identities().count(),
            3,
            "current, kept copy, next"
        );
        let again = DeviceKeys::prepare_rotation(dir.path(), now).unwrap();
        assert_eq!(again.fingerprint(), next.fingerprint());
        let kept = list_retired(dir.path()).unwrap();
        assert_eq!(kept.len(), 1, "kept once: {kept:?}");
        assert_eq!(kept[0].retired_at, now);
        assert_eq!(mode(&dir.path().join(RETIRED_DIR)), 0o700);
        assert_eq!(mode(&kept[0].path), 0o700);
        for f in [AGE_FILE, SIGNING_FILE] {
            assert_eq!(mode(&kept[0].path.join(f)), 0o600, "{f}");
        }
        // A crash half-way through the switch: the signing key moved, the age file not yet.
        std::fs::rename(
            dir.path().join(NEXT_DIR).join(SIGNING_FILE),
            dir.path().join(SIGNING_FILE),
        )
        .unwrap();
        let mixed = DeviceKeys::load(dir.path()).unwrap();
        let old_recipient = old.age_recipient();
        assert!(
            mixed
                .age_identities()
                .any(|i| i.to_public().to_string() == old_recipient)
        );
        DeviceKeys::finish_rotation(dir.path()).unwrap();
        let after = DeviceKeys::load(dir.path()).unwrap();
        assert_eq!(after.fingerprint(), next.fingerprint());
        assert!(!dir.path().join(NEXT_DIR).exists());
        let recipients: Vec<String> = after
            .age_identities()
            .map(|i| i.to_public().to_string())
            .collect();
        assert_eq!(recipients, [next.age_recipient(), old_recipient]);
        for f in [AGE_FILE, SIGNING_FILE] {
            assert_eq!(mode(&dir.path().join(f)), 0o600, "{f}");
        }
    }
}
