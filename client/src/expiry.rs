//! Expiry warnings: this installation's own certificate and the CRLs it checks key bundles with,
//! expiring within `[expiry] warn_days` (30 by default). Shown on every `silta` command (one line
//! on stderr) and in the daemon's log, at start and daily.
//!
//! An expired certificate stops everything at once (the relay refuses the handshake, and peers
//! no longer trust the key bundle it signed); an expired CRL makes every key bundle unverifiable
//! (revocation status unknown is refused). Both are noticed weeks ahead here, not when they fail.
//! The decision is a pure function of `now` ([`check`]), so tests move time without waiting.

use std::time::{Duration, SystemTime};

use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, pem::PemObject as _};

use crate::ClientConfig;

/// What expires.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expiring {
    /// This installation's certificate (`cert` in the configuration).
    Certificate {
        /// Its file.
        path: String,
        /// Its serial, hex.
        serial: String,
    },
    /// A CRL: its nextUpdate.
    Crl {
        /// Where it comes from: its file, or "from the relay".
        source: String,
        /// Its issuer.
        issuer: String,
    },
}

/// One warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    /// What.
    pub what: Expiring,
    /// When (notAfter, or the CRL's nextUpdate).
    pub at: SystemTime,
    /// Whole days left (negative once past).
    pub days_left: i64,
}

impl Expiry {
    /// Whether it has expired already.
    pub fn expired(&self) -> bool {
        self.days_left < 0
    }
}

impl std::fmt::Display for Expiry {
    /// One line, no control characters: what, when, what to do.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let date = crate::times::rfc3339(Some(&prost_types::Timestamp::from(self.at)));
        let when = if self.expired() {
            format!("EXPIRED on {date}")
        } else {
            format!("expires on {date} (in {} days)", self.days_left)
        };
        let line = match &self.what {
            Expiring::Certificate { path, serial } => format!(
                "this installation's certificate {path} (serial {serial}) {when}: ask your CA for a new one, put it (and its key) in place, then run `silta keys publish`"
            ),
            Expiring::Crl { source, issuer } => format!(
                "the CRL {source} (issuer {issuer}) {when}: key bundles cannot be verified once it is out of date; get a fresh CRL from your CA (the relay's operator installs it on the relay)"
            ),
        };
        f.write_str(&crate::text::printable_line(&line))
    }
}

/// What expires within `window` of `now` (or has expired): the certificate `cert_pem` (from
/// `cert_path`) and the CRLs `crls` (DER, each with where it comes from). Pure: no clock, no
/// files. What does not parse is not reported here (loading it fails elsewhere, loudly).
pub fn check(
    now: SystemTime,
    window: Duration,
    cert: Option<(&str, &[u8])>,
    crls: &[(String, Vec<u8>)],
) -> Vec<Expiry> {
    let mut out = Vec::new();
    let soon = |at: SystemTime| -> Option<i64> {
        if at > now + window {
            return None;
        }
        let days = match at.duration_since(now) {
            Ok(d) => (d.as_secs() / 86_400) as i64,
            Err(e) => -(e.duration().as_secs().div_ceil(86_400) as i64).max(1),
        };
        Some(days)
    };
    let time_of = |secs: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
    if let Some((path, pem)) = cert
        && let Some(Ok(der)) = CertificateDer::pem_slice_iter(pem).next()
        && let Ok((_, c)) = x509_parser::parse_x509_certificate(&der)
    {
        let at = time_of(c.validity().not_after.timestamp());
        if let Some(days_left) = soon(at) {
            out.push(Expiry {
                what: Expiring::Certificate {
                    path: path.to_owned(),
                    serial: hex::encode(c.raw_serial()),
                },
                at,
                days_left,
            });
        }
    }
    for (source, der) in crls {
        let Ok((_, crl)) = x509_parser::parse_x509_crl(der) else {
            continue;
        };
        let Some(next) = crl.next_update() else {
            continue;
        };
        let at = time_of(next.timestamp());
        if let Some(days_left) = soon(at) {
            out.push(Expiry {
                what: Expiring::Crl {
                    source: source.clone(),
                    issuer: crl.tbs_cert_list.issuer.to_string(),
                },
                at,
                days_left,
            });
        }
    }
    out
}

/// The CRL files of the configuration, DER, each with its path.
pub fn configured_crls(config: &ClientConfig) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for path in &config.crls {
        let Ok(pem) = std::fs::read(path) else {
            continue;
        };
        for crl in CertificateRevocationListDer::pem_slice_iter(&pem).flatten() {
            out.push((path.display().to_string(), crl.to_vec()));
        }
    }
    out
}

/// The warnings for this installation at `now`: its certificate, its configured CRLs and
/// `relay_crls` (those kept from the relay's answers, [`crate::state::State::crls`]).
pub fn installation(config: &ClientConfig, now: SystemTime, relay_crls: &[Vec<u8>]) -> Vec<Expiry> {
    let cert = std::fs::read(&config.cert).ok();
    let path = config.cert.display().to_string();
    let mut crls = configured_crls(config);
    crls.extend(
        relay_crls
            .iter()
            .map(|der| ("from the relay".to_owned(), der.clone())),
    );
    check(
        now,
        config.expiry.window(),
        cert.as_deref().map(|pem| (path.as_str(), pem)),
        &crls,
    )
}

/// Logs `warnings` (the daemon: at start and daily).
pub fn log(warnings: &[Expiry]) {
    for w in warnings {
        tracing::warn!(days_left = w.days_left, "{w}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use silta_certs::{
        Principal,
        ca::{CertificateAuthority, Validity},
    };

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn warns_within_the_window_and_once_expired_never_before() {
        let ca =
            CertificateAuthority::generate("CA", "silta.example", Validity::days_from_now(400))
                .unwrap();
        let p: Principal = "centre/a".parse().unwrap();
        let cert = ca.issue_client(&p, 60).unwrap();
        let crl_pem = ca.crl(&[], 1, 60).unwrap();
        let crl = CertificateRevocationListDer::from_pem_slice(crl_pem.as_bytes())
            .unwrap()
            .to_vec();
        let der = CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        let not_after = SystemTime::UNIX_EPOCH
            + Duration::from_secs(parsed.validity().not_after.timestamp() as u64);
        let run = |now: SystemTime| {
            check(
                now,
                30 * DAY,
                Some(("cert.pem", cert.cert_pem.as_bytes())),
                &[],
            )
        };
        // 31 days before: nothing. 29 days before: one line saying what, when and what to do.
        assert!(run(not_after - 31 * DAY).is_empty());
        let w = run(not_after - 29 * DAY);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].days_left, 29);
        let line = w[0].to_string();
        assert!(
            line.starts_with("this installation's certificate cert.pem (serial "),
            "{line}"
        );
        assert!(
            line.contains("expires on ") && line.contains("(in 29 days)"),
            "{line}"
        );
        assert!(line.contains("`silta keys publish`"), "{line}");
        assert!(!line.contains('\n'));
        // Past it: still said, as expired.
        let w = run(not_after + DAY);
        assert!(
            w[0].expired() && w[0].to_string().contains("EXPIRED on "),
            "{w:?}"
        );

        let crl_next = SystemTime::now() + 60 * DAY;
        let crls = [("from the relay".to_owned(), crl)];
        let crl_run = |now| check(now, 30 * DAY, None, &crls);
        assert!(crl_run(crl_next - 32 * DAY).is_empty());
        let w = crl_run(crl_next - 28 * DAY);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(matches!(&w[0].what, Expiring::Crl { source, .. } if source == "from the relay"));
        assert!(w[0].to_string().contains("key bundles cannot be verified"));
        // Garbage is not reported here.
        assert!(
            check(
                SystemTime::now(),
                30 * DAY,
                Some(("x", b"junk")),
                &[("x".into(), vec![1, 2])]
            )
            .is_empty()
        );
    }
}
