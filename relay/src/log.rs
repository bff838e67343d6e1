//! The verifiable delivery log: every event is a leaf of an RFC 9162 Merkle tree whose stored
//! subtree hashes are written in the same transaction as the event (see [`crate::store`]), and
//! checkpoints are signed with the relay's Ed25519 log key — only ever over what is on disk, so
//! no two signed checkpoints can be inconsistent, even across a crash.

use std::path::Path;

use ed25519_dalek::{
    SigningKey,
    pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, spki::der::pem::LineEnding},
};
use silta_certs::files::{SECRET_MODE, write_new};
use silta_proto::tlog::{self, Checkpoint, Hash};

/// The relay's log key and origin.
pub struct LogSigner {
    key: SigningKey,
    origin: String,
}

impl std::fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSigner")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// File name of the log key in the data folder.
pub const LOG_KEY_FILE: &str = "log-key.pem";

/// Why the log key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[error("log key {path}: {message}")]
pub struct LogKeyError {
    path: std::path::PathBuf,
    message: String,
}

impl LogSigner {
    /// Loads `<data_dir>/log-key.pem`, creating it (mode 0600) on first start.
    pub fn load_or_create(data_dir: &Path, origin: &str) -> Result<Self, LogKeyError> {
        let path = data_dir.join(LOG_KEY_FILE);
        let err = |message: String| LogKeyError {
            path: path.clone(),
            message,
        };
        let key = if path.exists() {
            let pem = std::fs::read_to_string(&path).map_err(|e| err(e.to_string()))?;
            SigningKey::from_pkcs8_pem(&pem)
                .map_err(|_| err("not an Ed25519 PKCS#8 PEM key".into()))?
        } else {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| err(e.to_string()))?;
            let key = SigningKey::from_bytes(&seed);
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| err(e.to_string()))?;
            write_new(&path, pem.as_bytes(), SECRET_MODE).map_err(|e| err(e.to_string()))?;
            tracing::info!(path = %path.display(), "created the delivery-log signing key");
            key
        };
        Ok(LogSigner {
            key,
            origin: origin.to_owned(),
        })
    }

    /// The log's origin (checkpoint first line and key name).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The verifier key string auditors configure (`silta-relay log-key` prints it).
    pub fn verifier_key(&self) -> String {
        tlog::verifier_key(&self.origin, &self.key.verifying_key().to_bytes())
    }

    /// A signed checkpoint of the tree of `size` leaves with `root`. Deterministic.
    pub fn sign(&self, size: u64, root: Hash) -> String {
        tlog::sign_checkpoint(
            &Checkpoint {
                origin: self.origin.clone(),
                size,
                root,
            },
            &self.key,
        )
    }
}

/// The log's origin for a trust domain.
pub fn origin_for(trust_domain: &str) -> String {
    format!("{trust_domain}/delivery-log")
}
