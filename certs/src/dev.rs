//! The development PKI: what `silta-relay` creates on its embedded default so that a newcomer can
//! run everything on one machine. **For development only**: the CA key sits next to the data.

use std::path::{Path, PathBuf};

use crate::{CertsError, identity::Principal, store::CaDir};

/// Trust domain of the development PKI.
pub const DEV_TRUST_DOMAIN: &str = "silta.example";
/// The demo reception centre.
pub const DEV_CENTRE: &str = "centre/demo-centre";
/// The demo Assistance System.
pub const DEV_ASSISTANCE: &str = "assistance/nas";
/// The demo auditor.
pub const DEV_AUDITOR: &str = "auditor/auditor";
/// Names in the relay's development certificate.
pub const DEV_RELAY_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Where the development PKI's files are.
#[derive(Debug, Clone)]
pub struct DevPki {
    /// The folder (`<data>/dev-pki`).
    pub dir: PathBuf,
    /// The CA certificate.
    pub ca_cert: PathBuf,
    /// The CRL.
    pub crl: PathBuf,
    /// The relay's certificate and key.
    pub relay_cert: PathBuf,
    /// The relay's key.
    pub relay_key: PathBuf,
}

impl DevPki {
    /// The layout under `dir`, whether or not it exists yet.
    pub fn at(dir: &Path) -> Self {
        DevPki {
            dir: dir.to_owned(),
            ca_cert: dir.join("ca/ca.pem"),
            crl: dir.join("ca/crl.pem"),
            relay_cert: dir.join("relay.pem"),
            relay_key: dir.join("relay.key"),
        }
    }

    /// Certificate of a demo principal, e.g. `centre/demo-centre` → `centre-demo-centre.pem`.
    pub fn cert_for(&self, principal: &str) -> PathBuf {
        self.dir
            .join(format!("{}.pem", principal.replace('/', "-")))
    }

    /// Key of a demo principal.
    pub fn key_for(&self, principal: &str) -> PathBuf {
        self.dir
            .join(format!("{}.key", principal.replace('/', "-")))
    }

    /// True once the relay certificate exists (the last file [`DevPki::create`] writes).
    pub fn exists(&self) -> bool {
        self.relay_cert.exists() && self.relay_key.exists()
    }

    /// Creates the CA, the relay certificate and one certificate each for the demo centre,
    /// Assistance System and auditor.
    pub fn create(dir: &Path) -> Result<Self, CertsError> {
        let pki = DevPki::at(dir);
        let mut ca = CaDir::init(
            &dir.join("ca"),
            "Silta development CA (NOT FOR PRODUCTION)",
            DEV_TRUST_DOMAIN,
            3650,
        )?;
        for p in [DEV_CENTRE, DEV_ASSISTANCE, DEV_AUDITOR] {
            let principal: Principal = p.parse()?;
            ca.issue_client(&principal, 825, dir)?;
        }
        let names: Vec<String> = DEV_RELAY_NAMES.iter().map(|s| s.to_string()).collect();
        ca.issue_server(&names, 825, dir)?;
        Ok(pki)
    }
}
