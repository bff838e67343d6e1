//! Silta's PKI: a certificate authority for the relay and its principals.
//!
//! Identity is an X.509 client certificate with one URI SAN
//! `spiffe://<trust-domain>/<role>/<id>` and the clientAuth extended key usage; the relay has a
//! certificate with DNS/IP SANs and serverAuth. Keys are ECDSA P-256 (every TLS stack we care
//! about speaks it), serials are random, validity is always explicit, and private keys are
//! written with mode 0600 and never overwritten.
//!
//! # Layout
//! - [`identity`]: roles, principals, SPIFFE ids, and reading them from a certificate.
//! - [`ca`]: an in-memory CA that issues certificates and CRLs; tests mint their PKI with it,
//!   negative fixtures included.
//! - [`store`]: the on-disk CA behind the `silta-certs` tool (registry of issued certificates,
//!   revocation, CRL).
//! - [`signing`]: signatures with a certificate's key, and offline chain verification.
//! - [`dev`]: the development PKI the relay creates on its embedded default.
//!
//! # Example
//! ```
//! use silta_certs::{ca::{CertificateAuthority, Validity}, identity::Principal};
//! let ca = CertificateAuthority::generate("Example CA", "silta.example", Validity::days_from_now(365))?;
//! let centre: Principal = "centre/joutseno".parse()?;
//! let cert = ca.issue_client(&centre, 90)?;
//! let id = silta_certs::identity::client_identity(&cert.cert_der, "silta.example")?;
//! assert_eq!(id.principal, centre);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

use std::path::{Path, PathBuf};

pub mod ca;
pub mod dev;
pub mod files;
pub mod identity;
pub mod signing;
pub mod store;

pub use identity::{IdentityError, Principal, Role, SpiffeId, validate_trust_domain};

/// Errors of the PKI library and tool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertsError {
    /// Certificate generation or parsing failed.
    #[error("certificate operation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A name or id is not valid.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file exists; keys and certificates are never overwritten.
    #[error("{0} already exists; refusing to overwrite it (move it away first)")]
    AlreadyExists(PathBuf),
    /// No unrevoked certificate matched.
    #[error("no unrevoked certificate matches {0}")]
    NothingToRevoke(String),
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Random(String),
    /// Anything else that is wrong with the input.
    #[error("{0}")]
    Invalid(String),
}

impl CertsError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        CertsError::Io {
            path: path.to_owned(),
            source,
        }
    }
}
