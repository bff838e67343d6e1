//! A device's keys: an age X25519 identity (to receive) and an Ed25519 key (to sign).
//!
//! On disk, in the key folder:
//! - `age-identity.txt`: a standard age identity file (`age -d -i age-identity.txt` works), 0600;
//! - `signing-key.pem`: the Ed25519 key as PKCS#8 v1 PEM (OpenSSL 3 reads it), 0600;
//! - `device-id`: the device's name within its principal.
//!
//! Keys are never overwritten: `init` refuses if any of the files exists.

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
        let write = |name: &str, data: &[u8]| {
            write_new(&dir.join(name), data, SECRET_MODE).map_err(|e| match e {
                silta_certs::CertsError::AlreadyExists(p) => KeyError::Exists(p),
                other => KeyError::Other(other.to_string()),
            })
        };
        let created = crate::times::now_rfc3339();
        let age_file = format!(
            "# created: {created}\n# public key: {}\n{}\n",
            keys.age_recipient(),
            keys.age.to_string().expose_secret()
        );
        write(AGE_FILE, age_file.as_bytes())?;
        let pem = silta_proto::keyfile::to_pem(&keys.signing).map_err(KeyError::Other)?;
        write(SIGNING_FILE, pem.as_bytes())?;
        write(DEVICE_FILE, format!("{device_id}\n").as_bytes())?;
        Ok(keys)
    }

    /// Reads keys from `dir`.
    pub fn load(dir: &Path) -> Result<Self, KeyError> {
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
        let age_text = read(AGE_FILE)?;
        // An age identity file: comment lines start with '#', the identity is the other line.
        let secret = age_text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or_else(|| bad(AGE_FILE, "no identity line"))?;
        let age = age::x25519::Identity::from_str(secret)
            .map_err(|_| bad(AGE_FILE, "invalid age identity"))?;
        let signing = silta_proto::keyfile::from_pem(&read(SIGNING_FILE)?)
            .map_err(|m| bad(SIGNING_FILE, &m))?;
        let device_id = read(DEVICE_FILE)?.trim().to_owned();
        check_device_id(&device_id)?;
        Ok(DeviceKeys {
            device_id,
            age,
            signing,
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
}
