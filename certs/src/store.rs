//! The on-disk CA used by the `silta-certs` tool: the CA certificate and key, a registry of what
//! was issued and revoked, and the current CRL.
//!
//! ```text
//! <dir>/ca.pem        CA certificate
//! <dir>/ca.key        CA private key (0600)
//! <dir>/ca.json       trust domain, CRL number
//! <dir>/issued.json   every certificate issued: serial, subject, validity, revocation
//! <dir>/crl.pem       the current CRL (rewritten after every revocation)
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{
    CertsError,
    ca::{CertificateAuthority, IssuedCert, Revocation, Validity},
    files::{PUBLIC_MODE, SECRET_MODE, replace_public, write_new},
    identity::Principal,
};

/// Days a CRL stays valid; the relay should get a fresh one well before that.
pub const CRL_DAYS: u32 = 30;

#[derive(Serialize, Deserialize)]
struct CaMeta {
    trust_domain: String,
    crl_number: u64,
}

/// One line of the registry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IssuedRecord {
    /// Serial number, lowercase hex.
    pub serial: String,
    /// `relay` or the principal `<role>/<id>`.
    pub subject: String,
    /// DNS names and IPs, for the relay certificate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// Unix seconds, if revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
    /// Where the certificate was written.
    pub cert_path: PathBuf,
}

/// A CA directory.
pub struct CaDir {
    dir: PathBuf,
    ca: CertificateAuthority,
    meta: CaMeta,
}

/// Paths of a certificate and key written by [`CaDir`].
#[derive(Debug, Clone)]
pub struct WrittenCert {
    /// Certificate (PEM).
    pub cert_path: PathBuf,
    /// Private key (PEM, 0600).
    pub key_path: PathBuf,
    /// Serial number, hex.
    pub serial: String,
}

impl CaDir {
    /// Creates a new CA in `dir` (created if missing). Fails if a CA is already there.
    pub fn init(
        dir: &Path,
        common_name: &str,
        trust_domain: &str,
        days: u32,
    ) -> Result<Self, CertsError> {
        std::fs::create_dir_all(dir).map_err(|e| CertsError::io(dir, e))?;
        if dir.join("ca.key").exists() || dir.join("ca.pem").exists() {
            return Err(CertsError::AlreadyExists(dir.join("ca.key")));
        }
        let ca = CertificateAuthority::generate(
            common_name,
            trust_domain,
            Validity::days_from_now(days),
        )?;
        write_new(&dir.join("ca.key"), ca.key_pem().as_bytes(), SECRET_MODE)?;
        write_new(&dir.join("ca.pem"), ca.cert_pem().as_bytes(), PUBLIC_MODE)?;
        let meta = CaMeta {
            trust_domain: trust_domain.to_owned(),
            crl_number: 0,
        };
        let mut this = CaDir {
            dir: dir.to_owned(),
            ca,
            meta,
        };
        this.save_registry(&[])?;
        this.write_crl()?;
        Ok(this)
    }

    /// Opens an existing CA directory.
    pub fn open(dir: &Path) -> Result<Self, CertsError> {
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read_to_string(&p).map_err(|e| CertsError::io(&p, e))
        };
        let meta: CaMeta = serde_json::from_str(&read("ca.json")?)
            .map_err(|e| CertsError::Invalid(format!("{}: {e}", dir.join("ca.json").display())))?;
        let ca =
            CertificateAuthority::from_pem(&read("ca.pem")?, &read("ca.key")?, &meta.trust_domain)?;
        Ok(CaDir {
            dir: dir.to_owned(),
            ca,
            meta,
        })
    }

    /// The CA.
    pub fn ca(&self) -> &CertificateAuthority {
        &self.ca
    }

    /// Path of the CA certificate.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Path of the current CRL.
    pub fn crl_path(&self) -> PathBuf {
        self.dir.join("crl.pem")
    }

    /// Issues a role certificate and writes `<out>/<role>-<id>.pem` and `.key`.
    pub fn issue_client(
        &mut self,
        principal: &Principal,
        days: u32,
        out: &Path,
    ) -> Result<WrittenCert, CertsError> {
        let issued = self.ca.issue_client(principal, days)?;
        let stem = format!("{}-{}", principal.role(), principal.id());
        self.record(issued, principal.to_string(), Vec::new(), out, &stem)
    }

    /// Issues the relay's certificate and writes `<out>/relay.pem` and `relay.key`.
    pub fn issue_server(
        &mut self,
        names: &[String],
        days: u32,
        out: &Path,
    ) -> Result<WrittenCert, CertsError> {
        let issued = self.ca.issue_server(names, days)?;
        self.record(issued, "relay".into(), names.to_vec(), out, "relay")
    }

    fn record(
        &mut self,
        issued: IssuedCert,
        subject: String,
        names: Vec<String>,
        out: &Path,
        stem: &str,
    ) -> Result<WrittenCert, CertsError> {
        std::fs::create_dir_all(out).map_err(|e| CertsError::io(out, e))?;
        let cert_path = out.join(format!("{stem}.pem"));
        let key_path = out.join(format!("{stem}.key"));
        // Refuse before writing anything, so a clash leaves no half-written pair behind.
        for p in [&cert_path, &key_path] {
            if p.exists() {
                return Err(CertsError::AlreadyExists(p.clone()));
            }
        }
        // Record the serial before the files exist: a crash in between leaves a registered
        // serial without files (harmless, revocable), never a usable certificate the registry
        // does not know about.
        let mut registry = self.list()?;
        registry.push(IssuedRecord {
            serial: issued.serial.clone(),
            subject,
            names,
            not_before: issued.validity.not_before.unix_timestamp(),
            not_after: issued.validity.not_after.unix_timestamp(),
            revoked_at: None,
            cert_path: cert_path.clone(),
        });
        self.save_registry(&registry)?;
        write_new(&key_path, issued.key_pem.as_bytes(), SECRET_MODE)?;
        write_new(&cert_path, issued.cert_pem.as_bytes(), PUBLIC_MODE)?;
        Ok(WrittenCert {
            cert_path,
            key_path,
            serial: issued.serial,
        })
    }

    /// Everything issued so far, oldest first.
    pub fn list(&self) -> Result<Vec<IssuedRecord>, CertsError> {
        let p = self.dir.join("issued.json");
        let text = std::fs::read_to_string(&p).map_err(|e| CertsError::io(&p, e))?;
        serde_json::from_str(&text)
            .map_err(|e| CertsError::Invalid(format!("{}: {e}", p.display())))
    }

    /// Revokes by serial (hex) or by principal (`<role>/<id>`: every unrevoked certificate of it),
    /// then rewrites the CRL. Returns the serials revoked.
    pub fn revoke(&mut self, target: &RevokeTarget) -> Result<Vec<String>, CertsError> {
        let mut registry = self.list()?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut revoked = Vec::new();
        for rec in registry.iter_mut().filter(|r| r.revoked_at.is_none()) {
            let hit = match target {
                RevokeTarget::Serial(s) => rec.serial.eq_ignore_ascii_case(s),
                RevokeTarget::Principal(p) => rec.subject == p.to_string(),
            };
            if hit {
                rec.revoked_at = Some(now);
                revoked.push(rec.serial.clone());
            }
        }
        if revoked.is_empty() {
            return Err(CertsError::NothingToRevoke(match target {
                RevokeTarget::Serial(s) => format!("serial {s}"),
                RevokeTarget::Principal(p) => format!("principal {p}"),
            }));
        }
        self.save_registry(&registry)?;
        self.write_crl()?;
        Ok(revoked)
    }

    /// Signs a new CRL of everything revoked (with the next CRL number) and writes `crl.pem`.
    pub fn write_crl(&mut self) -> Result<PathBuf, CertsError> {
        let revoked: Vec<Revocation> = self
            .list()?
            .into_iter()
            .filter_map(|r| {
                Some(Revocation {
                    serial: r.serial,
                    revoked_at: OffsetDateTime::from_unix_timestamp(r.revoked_at?).ok()?,
                })
            })
            .collect();
        self.meta.crl_number += 1;
        let pem = self.ca.crl(&revoked, self.meta.crl_number, CRL_DAYS)?;
        self.save_meta()?;
        let path = self.crl_path();
        replace_public(&path, pem.as_bytes())?;
        Ok(path)
    }

    fn save_meta(&self) -> Result<(), CertsError> {
        let json = serde_json::to_vec_pretty(&self.meta)
            .map_err(|e| CertsError::Invalid(e.to_string()))?;
        replace_public(&self.dir.join("ca.json"), &json)
    }

    fn save_registry(&self, registry: &[IssuedRecord]) -> Result<(), CertsError> {
        self.save_meta()?;
        let json =
            serde_json::to_vec_pretty(registry).map_err(|e| CertsError::Invalid(e.to_string()))?;
        replace_public(&self.dir.join("issued.json"), &json)
    }
}

/// What to revoke.
#[derive(Clone, Debug)]
pub enum RevokeTarget {
    /// One certificate, by serial number (hex).
    Serial(String),
    /// Every unrevoked certificate of a principal.
    Principal(Principal),
}
