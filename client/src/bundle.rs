//! Key bundles: a device's public keys, signed with its certificate's key, carrying the
//! certificate. Clients verify every bundle against the CA and the CA's CRL themselves; the
//! relay's word for a key counts for nothing.

use prost::Message as _;
use rustls_pki_types::{
    CertificateDer, CertificateRevocationListDer, UnixTime, pem::PemObject as _,
};
use silta_certs::{
    Principal,
    signing::{VerifyError, sign_with_key_pem, verify_cert_signature, verify_client_chain},
};
use silta_proto::{context, pb};

use crate::keys::DeviceKeys;

/// Why a bundle could not be built or is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The certificate chain does not verify against the CA and its CRL (unknown CA, revoked,
    /// expired, not a client certificate, foreign trust domain...).
    #[error("certificate not trusted: {0}")]
    Untrusted(String),
    /// The bundle's signature does not verify with its certificate.
    #[error("bundle signature does not verify")]
    BadSignature,
    /// The content is malformed or names another principal than the certificate.
    #[error("malformed bundle: {0}")]
    Malformed(String),
}

/// A bundle that verified against the CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBundle {
    /// The owner, from the certificate.
    pub principal: Principal,
    /// The device.
    pub device_id: String,
    /// Its age recipient (`age1...`).
    pub age_recipient: String,
    /// Its Ed25519 key.
    pub ed25519: [u8; 32],
    /// [`silta_proto::device_fingerprint`] of the two.
    pub fingerprint: String,
    /// When the device made the bundle (unix seconds): the newest bundle of a device wins, and
    /// an older one than already seen is a rollback.
    pub created_at: i64,
    /// The newest sealed-message format the device opens (`KeyBundleContent.opens_version`; 1
    /// for a bundle that does not say, published by a client older than format 2).
    pub opens_version: u32,
}

/// Builds and signs this device's bundle with the certificate key (PEM).
pub fn build(
    keys: &DeviceKeys,
    principal: &Principal,
    cert_chain_pem: &[u8],
    cert_key_pem: &str,
) -> Result<pb::KeyBundle, BundleError> {
    let chain: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(cert_chain_pem)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| BundleError::Malformed(format!("certificate: {e}")))?;
    if chain.is_empty() {
        return Err(BundleError::Malformed("no certificate".into()));
    }
    let content = pb::KeyBundleContent {
        version: 1,
        principal: principal.to_string(),
        device_id: keys.device_id().to_owned(),
        age_recipient: keys.age_recipient(),
        ed25519_public_key: keys.verifying_key().as_bytes().to_vec(),
        created_at: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        opens_version: crate::seal::NEWEST_VERSION,
    }
    .encode_to_vec();
    let signature = sign_with_key_pem(cert_key_pem, context::KEY_BUNDLE, &content)
        .map_err(|e| BundleError::Malformed(e.to_string()))?;
    let device_signature = keys.sign(context::KEY_POSSESSION, &content).to_vec();
    Ok(pb::KeyBundle {
        content,
        signature,
        certificate_chain: chain,
        device_signature,
    })
}

/// The CA certificates (and any locally configured CRLs) a client trusts.
#[derive(Debug, Clone)]
pub struct TrustStore {
    anchors: Vec<CertificateDer<'static>>,
    local_crls: Vec<CertificateRevocationListDer<'static>>,
    trust_domain: String,
}

impl TrustStore {
    /// From CA certificates in PEM, for identities in `trust_domain`.
    pub fn from_pem(ca_pem: &[u8], trust_domain: &str) -> Result<Self, BundleError> {
        let anchors = CertificateDer::pem_slice_iter(ca_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BundleError::Malformed(format!("CA certificate: {e}")))?;
        if anchors.is_empty() {
            return Err(BundleError::Malformed("no CA certificate".into()));
        }
        Ok(TrustStore {
            anchors,
            local_crls: Vec::new(),
            trust_domain: trust_domain.to_owned(),
        })
    }

    /// Adds CRLs (PEM) to check with, besides those the relay hands out.
    pub fn with_crls_pem(mut self, pem: &[u8]) -> Result<Self, BundleError> {
        for crl in CertificateRevocationListDer::pem_slice_iter(pem) {
            self.local_crls
                .push(crl.map_err(|e| BundleError::Malformed(format!("CRL: {e}")))?);
        }
        Ok(self)
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// Verifies `bundle` at `now`: chain to our CA, not revoked per `crls` (DER, e.g. from the
    /// directory; CA-signed, so the relay cannot forge them) and our local CRLs, signature by the
    /// certificate key, content naming the certificate's principal.
    pub fn verify(
        &self,
        bundle: &pb::KeyBundle,
        crls: &[Vec<u8>],
        now: UnixTime,
    ) -> Result<VerifiedBundle, BundleError> {
        let all: Vec<Vec<u8>> = self
            .local_crls
            .iter()
            .map(|c| c.to_vec())
            .chain(crls.iter().cloned())
            .collect();
        let all_crls: Vec<CertificateRevocationListDer<'static>> = self
            .freshest_crls(all)
            .into_iter()
            .map(|c| CertificateRevocationListDer::from(c.0))
            .collect();
        let id = verify_client_chain(
            &bundle.certificate_chain,
            &self.anchors,
            &all_crls,
            &self.trust_domain,
            now,
        )
        .map_err(|e| match e {
            VerifyError::Untrusted(m) => BundleError::Untrusted(m),
            other => BundleError::Untrusted(other.to_string()),
        })?;
        verify_cert_signature(
            &bundle.certificate_chain[0],
            context::KEY_BUNDLE,
            &bundle.content,
            &bundle.signature,
        )
        .map_err(|_| BundleError::BadSignature)?;
        let content = pb::KeyBundleContent::decode(bundle.content.as_slice())
            .map_err(|e| BundleError::Malformed(e.to_string()))?;
        if content.version != 1 {
            return Err(BundleError::Malformed(format!(
                "version {}",
                content.version
            )));
        }
        if content.principal != id.principal.to_string() {
            return Err(BundleError::Malformed(format!(
                "bundle names {:?} but its certificate is for {}",
                content.principal, id.principal
            )));
        }
        crate::keys::check_device_id(&content.device_id)
            .map_err(|e| BundleError::Malformed(e.to_string()))?;
        content
            .age_recipient
            .parse::<age::x25519::Recipient>()
            .map_err(|_| BundleError::Malformed("invalid age recipient".into()))?;
        let ed25519: [u8; 32] = content
            .ed25519_public_key
            .as_slice()
            .try_into()
            .map_err(|_| BundleError::Malformed("Ed25519 key is not 32 bytes".into()))?;
        ed25519_dalek::VerifyingKey::from_bytes(&ed25519)
            .map_err(|_| BundleError::Malformed("invalid Ed25519 key".into()))?;
        Ok(VerifiedBundle {
            created_at: content.created_at.map(|t| t.seconds).unwrap_or(0),
            opens_version: content.opens_version.max(1),
            principal: id.principal,
            fingerprint: silta_proto::device_fingerprint(&content.age_recipient, &ed25519),
            device_id: content.device_id,
            age_recipient: content.age_recipient,
            ed25519,
        })
    }
}

/// A CRL (DER) whose signature verified with one of the trust anchors: the only kind that is
/// ranked, stored ([`crate::state::State::keep_crls`]) or checked against. Built only by
/// [`TrustStore::freshest_crls`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCrl(Vec<u8>);

impl VerifiedCrl {
    /// The CRL, DER.
    pub fn der(&self) -> &[u8] {
        &self.0
    }
}

impl TrustStore {
    /// Of several CRLs (DER), keeps those signed by one of our CAs and, of those, for each issuer
    /// only the newest (highest CRL number, then latest thisUpdate). The signature is checked
    /// *before* ranking: the relay (or anyone between) could otherwise offer a forged CRL with the
    /// CA's name and a huge number that would outrank, and so hide, every genuine one. webpki
    /// uses the first CRL that covers a certificate, so an older CRL served first (before a
    /// revocation) must never reach it. Unparsable and unverifiable CRLs are dropped.
    pub fn freshest_crls(&self, crls: impl IntoIterator<Item = Vec<u8>>) -> Vec<VerifiedCrl> {
        use std::collections::HashMap;
        let mut best: HashMap<Vec<u8>, (Vec<u8>, i64, Vec<u8>)> = HashMap::new();
        for der in crls {
            let Ok((_, crl)) = x509_parser::parse_x509_crl(&der) else {
                tracing::warn!("a CRL that does not parse was ignored");
                continue;
            };
            if !self.signed_by_anchor(&crl) {
                tracing::warn!(issuer = %crl.tbs_cert_list.issuer, "a CRL not signed by a trusted CA was ignored");
                continue;
            }
            let issuer = crl.tbs_cert_list.issuer.as_raw().to_vec();
            let number = crl
                .crl_number()
                .map(|n| n.to_bytes_be())
                .unwrap_or_default();
            let this_update = crl.last_update().timestamp();
            let newer = |old: &(Vec<u8>, i64, Vec<u8>)| {
                (number.len(), &number, this_update) > (old.0.len(), &old.0, old.1)
            };
            match best.get(&issuer) {
                Some(old) if !newer(old) => {}
                _ => {
                    best.insert(issuer, (number, this_update, der));
                }
            }
        }
        best.into_values()
            .map(|(_, _, der)| VerifiedCrl(der))
            .collect()
    }

    /// Whether `crl` is signed by the key of a CA certificate whose subject is the CRL's issuer.
    fn signed_by_anchor(
        &self,
        crl: &x509_parser::revocation_list::CertificateRevocationList<'_>,
    ) -> bool {
        self.anchors.iter().any(|anchor| {
            x509_parser::parse_x509_certificate(anchor).is_ok_and(|(_, ca)| {
                ca.subject().as_raw() == crl.tbs_cert_list.issuer.as_raw()
                    && crl.verify_signature(ca.public_key()).is_ok()
            })
        })
    }
}
