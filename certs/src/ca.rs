//! A certificate authority in memory: issue relay and role certificates, sign CRLs.
//!
//! Everything the on-disk tool does goes through here, and so do the tests, which mint their
//! whole PKI in code — including the negative fixtures (expired, not yet valid, wrong EKU,
//! foreign trust domain, unknown role) through the knobs on [`LeafSpec`].

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::{CertsError, identity::Principal, validate_trust_domain};

/// A validity period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// Not valid before this instant.
    pub not_before: OffsetDateTime,
    /// Not valid after this instant.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// From one hour ago (to tolerate clock skew) until `days` from now.
    pub fn days_from_now(days: u32) -> Self {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(i64::from(days)),
        }
    }

    /// A period that ended a day ago (for negative tests).
    pub fn expired() -> Self {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now - Duration::days(30),
            not_after: now - Duration::days(1),
        }
    }

    /// A period that starts in a day (for negative tests).
    pub fn not_yet_valid() -> Self {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now + Duration::days(1),
            not_after: now + Duration::days(30),
        }
    }
}

/// Extended key usage of a leaf certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eku {
    /// TLS server authentication (the relay).
    ServerAuth,
    /// TLS client authentication (every principal).
    ClientAuth,
}

/// What to put in a leaf certificate.
#[derive(Clone, Debug)]
pub struct LeafSpec {
    /// Subject common name (informational; identity comes from the SANs).
    pub common_name: String,
    /// DNS names and IP addresses (for the relay).
    pub names: Vec<String>,
    /// URI SANs (for principals: exactly one `spiffe://` URI).
    pub uris: Vec<String>,
    /// Extended key usages.
    pub ekus: Vec<Eku>,
    /// Validity period.
    pub validity: Validity,
    /// The principal, if this is a role certificate (recorded, not encoded).
    pub principal: Option<Principal>,
}

impl LeafSpec {
    /// A role certificate for `principal` in `trust_domain`: one URI SAN, clientAuth only.
    pub fn client(principal: &Principal, trust_domain: &str, validity: Validity) -> Self {
        LeafSpec {
            common_name: principal.to_string(),
            names: Vec::new(),
            uris: vec![principal.to_uri(trust_domain)],
            ekus: vec![Eku::ClientAuth],
            validity,
            principal: Some(principal.clone()),
        }
    }

    /// The relay's certificate: DNS and IP SANs, serverAuth only.
    pub fn server(names: &[String], validity: Validity) -> Self {
        LeafSpec {
            common_name: names
                .first()
                .cloned()
                .unwrap_or_else(|| "silta-relay".into()),
            names: names.to_vec(),
            uris: Vec::new(),
            ekus: vec![Eku::ServerAuth],
            validity,
            principal: None,
        }
    }
}

/// A freshly issued certificate and its private key.
pub struct IssuedCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key, PKCS#8 PEM. Secret: write it with mode 0600 only.
    pub key_pem: String,
    /// The serial number, lowercase hex.
    pub serial: String,
    /// Validity period.
    pub validity: Validity,
}

impl std::fmt::Debug for IssuedCert {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert")
            .field("serial", &self.serial)
            .field("validity", &self.validity)
            .finish_non_exhaustive()
    }
}

/// One revoked certificate, for a CRL.
#[derive(Clone, Debug)]
pub struct Revocation {
    /// Serial number, lowercase hex.
    pub serial: String,
    /// When the CA revoked it.
    pub revoked_at: OffsetDateTime,
}

/// A certificate authority: a self-signed CA certificate and its key.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    key_pem: String,
    trust_domain: String,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("trust_domain", &self.trust_domain)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Creates a new CA with a fresh ECDSA P-256 key.
    pub fn generate(
        common_name: &str,
        trust_domain: &str,
        validity: Validity,
    ) -> Result<Self, CertsError> {
        validate_trust_domain(trust_domain)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "Silta");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        params.serial_number = Some(random_serial()?);
        params.key_identifier_method = KeyIdMethod::Sha256;
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        Ok(CertificateAuthority {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
            key_pem,
            trust_domain: trust_domain.to_owned(),
        })
    }

    /// Loads a CA from its certificate and key (PEM).
    pub fn from_pem(cert_pem: &str, key_pem: &str, trust_domain: &str) -> Result<Self, CertsError> {
        validate_trust_domain(trust_domain)?;
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        Ok(CertificateAuthority {
            issuer,
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            trust_domain: trust_domain.to_owned(),
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key, PKCS#8 PEM. Secret: write it with mode 0600 only.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The trust domain this CA issues identities in.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// A role certificate for `principal`, valid for `days`.
    pub fn issue_client(&self, principal: &Principal, days: u32) -> Result<IssuedCert, CertsError> {
        self.issue(&LeafSpec::client(
            principal,
            &self.trust_domain,
            Validity::days_from_now(days),
        ))
    }

    /// A relay (server) certificate for DNS names and IP addresses, valid for `days`.
    pub fn issue_server(&self, names: &[String], days: u32) -> Result<IssuedCert, CertsError> {
        if names.is_empty() {
            return Err(CertsError::Invalid(
                "a relay certificate needs at least one DNS name or IP address".into(),
            ));
        }
        self.issue(&LeafSpec::server(names, Validity::days_from_now(days)))
    }

    /// Issues a leaf certificate exactly as `spec` says, with a fresh key and a random serial.
    pub fn issue(&self, spec: &LeafSpec) -> Result<IssuedCert, CertsError> {
        let mut params = CertificateParams::new(spec.names.clone())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, spec.common_name.as_str());
        params.distinguished_name = dn;
        for uri in &spec.uris {
            params
                .subject_alt_names
                .push(SanType::URI(uri.as_str().try_into()?));
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = spec
            .ekus
            .iter()
            .map(|e| match e {
                Eku::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
                Eku::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
            })
            .collect();
        params.not_before = spec.validity.not_before;
        params.not_after = spec.validity.not_after;
        let serial = random_serial()?;
        params.serial_number = Some(serial.clone());
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            serial: hex::encode(serial.to_bytes()),
            validity: spec.validity,
        })
    }

    /// Signs a CRL listing `revoked`, valid from now for `days`.
    pub fn crl(
        &self,
        revoked: &[Revocation],
        crl_number: u64,
        days: u32,
    ) -> Result<String, CertsError> {
        let next = OffsetDateTime::now_utc() + Duration::days(i64::from(days.max(1)));
        self.crl_until(revoked, crl_number, next)
    }

    /// A CRL (PEM) whose nextUpdate is `next_update` (tests of stale CRLs use a near one).
    pub fn crl_until(
        &self,
        revoked: &[Revocation],
        crl_number: u64,
        next_update: OffsetDateTime,
    ) -> Result<String, CertsError> {
        let now = OffsetDateTime::now_utc();
        let revoked_certs = revoked
            .iter()
            .map(|r| {
                let bytes = hex::decode(&r.serial)
                    .map_err(|_| CertsError::Invalid(format!("bad serial {:?}", r.serial)))?;
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&bytes),
                    revocation_time: r.revoked_at,
                    reason_code: Some(RevocationReason::CessationOfOperation),
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, CertsError>>()?;
        let params = CertificateRevocationListParams {
            this_update: now - Duration::minutes(5),
            next_update,
            crl_number: SerialNumber::from_slice(&crl_number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer)?.pem()?)
    }
}

/// 16 random bytes with the top bit cleared, so the DER integer is positive and at most 16 bytes.
fn random_serial() -> Result<SerialNumber, CertsError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| CertsError::Random(e.to_string()))?;
    bytes[0] &= 0x7f;
    // Keep a leading non-zero byte so the hex form we store is exactly what the DER carries.
    bytes[0] |= 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}
