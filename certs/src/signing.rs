//! Signatures made with a certificate's key, and checking a client certificate chain offline.
//!
//! A device proves that a key bundle belongs to it by signing the bundle with the private key of
//! its role certificate; anyone holding the CA certificate (and its CRL) can check that without
//! trusting whoever relayed the bundle.

use rcgen::{KeyPair, SigningKey as _};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use webpki::{
    EndEntityCert, KeyUsage, OwnedCertRevocationList, RevocationCheckDepth,
    RevocationOptionsBuilder, UnknownStatusPolicy, aws_lc_rs as algs,
};

use crate::identity::{IdentityError, SpiffeId, client_identity};

/// Why a signature or a chain did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The signature does not verify with the certificate's key.
    #[error("signature does not verify with the certificate's key")]
    BadSignature,
    /// The certificate is not trusted: unknown issuer, expired, revoked, wrong usage...
    #[error("certificate not trusted: {0}")]
    Untrusted(String),
    /// The certificate does not name a valid identity.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The key could not sign.
    #[error("signing failed: {0}")]
    Signing(String),
}

fn message(context: &[u8], msg: &[u8]) -> Vec<u8> {
    [context, msg].concat()
}

/// Signs `context || msg` with a PKCS#8 PEM key (ECDSA P-256 as issued by silta-certs).
pub fn sign_with_key_pem(
    key_pem: &str,
    context: &[u8],
    msg: &[u8],
) -> Result<Vec<u8>, VerifyError> {
    let key = KeyPair::from_pem(key_pem).map_err(|e| VerifyError::Signing(e.to_string()))?;
    key.sign(&message(context, msg))
        .map_err(|e| VerifyError::Signing(e.to_string()))
}

/// Checks a signature over `context || msg` made with the key of `cert_der`.
pub fn verify_cert_signature(
    cert_der: &[u8],
    context: &[u8],
    msg: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    let der = CertificateDer::from(cert_der);
    let cert =
        EndEntityCert::try_from(&der).map_err(|e| VerifyError::Untrusted(format!("{e:?}")))?;
    let msg = message(context, msg);
    [
        algs::ECDSA_P256_SHA256,
        algs::ECDSA_P384_SHA384,
        algs::ED25519,
    ]
    .iter()
    .any(|alg| cert.verify_signature(*alg, &msg, signature).is_ok())
    .then_some(())
    .ok_or(VerifyError::BadSignature)
}

/// Verifies a client certificate chain (leaf first) against `anchors` (CA certificates, DER)
/// and `crls` at `now`, as the relay's TLS layer does, and returns its identity. Revocation
/// status must be known: a CA without a CRL here makes every certificate of it untrusted.
pub fn verify_client_chain(
    chain: &[Vec<u8>],
    anchors: &[CertificateDer<'static>],
    crls: &[CertificateRevocationListDer<'static>],
    trust_domain: &str,
    now: UnixTime,
) -> Result<SpiffeId, VerifyError> {
    let untrusted = |e: webpki::Error| VerifyError::Untrusted(format!("{e:?}"));
    let leaf_der = chain
        .first()
        .ok_or_else(|| VerifyError::Untrusted("empty certificate chain".into()))?;
    let leaf_der = CertificateDer::from(leaf_der.as_slice());
    let intermediates: Vec<CertificateDer<'_>> = chain[1..]
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let trust_anchors = anchors
        .iter()
        .map(|a| webpki::anchor_from_trusted_cert(a).map_err(untrusted))
        .collect::<Result<Vec<_>, _>>()?;
    let owned: Vec<OwnedCertRevocationList> = crls
        .iter()
        .map(|c| OwnedCertRevocationList::from_der(c).map_err(untrusted))
        .collect::<Result<_, _>>()?;
    let crl_refs: Vec<webpki::CertRevocationList<'_>> = owned
        .iter()
        .map(|c| webpki::CertRevocationList::from(c.clone()))
        .collect();
    let crl_refs: Vec<&webpki::CertRevocationList<'_>> = crl_refs.iter().collect();
    let revocation = RevocationOptionsBuilder::new(&crl_refs)
        .map_err(|_| VerifyError::Untrusted("no CRL: revocation status unknown".into()))?
        .with_depth(RevocationCheckDepth::Chain)
        .with_status_policy(UnknownStatusPolicy::Deny)
        .with_expiration_policy(webpki::ExpirationPolicy::Enforce)
        .build();
    let cert = EndEntityCert::try_from(&leaf_der).map_err(untrusted)?;
    cert.verify_for_usage(
        CHAIN_ALGS,
        &trust_anchors,
        &intermediates,
        now,
        KeyUsage::client_auth(),
        Some(revocation),
        None,
    )
    .map_err(untrusted)?;
    Ok(client_identity(&leaf_der, trust_domain)?)
}

/// Signature algorithms accepted in certificate chains.
static CHAIN_ALGS: &[&dyn rustls_pki_types::SignatureVerificationAlgorithm] = &[
    algs::ECDSA_P256_SHA256,
    algs::ECDSA_P256_SHA384,
    algs::ECDSA_P384_SHA256,
    algs::ECDSA_P384_SHA384,
    algs::ED25519,
    algs::RSA_PKCS1_2048_8192_SHA256,
    algs::RSA_PKCS1_2048_8192_SHA384,
    algs::RSA_PKCS1_2048_8192_SHA512,
    algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    algs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    algs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{CertificateAuthority, Revocation, Validity};

    fn pem_der(pem: &str) -> CertificateDer<'static> {
        use rustls_pki_types::pem::PemObject as _;
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn sign_verify_and_chain() {
        let ca = CertificateAuthority::generate("CA", "silta.example", Validity::days_from_now(9))
            .unwrap();
        let p = "centre/a".parse().unwrap();
        let leaf = ca.issue_client(&p, 5).unwrap();
        let sig = sign_with_key_pem(&leaf.key_pem, b"ctx\n", b"hello").unwrap();
        verify_cert_signature(&leaf.cert_der, b"ctx\n", b"hello", &sig).unwrap();
        assert_eq!(
            verify_cert_signature(&leaf.cert_der, b"ctx\n", b"hellO", &sig),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify_cert_signature(&leaf.cert_der, b"other\n", b"hello", &sig),
            Err(VerifyError::BadSignature)
        );

        let anchors = [pem_der(ca.cert_pem())];
        let crl = |revoked: &[Revocation]| {
            use rustls_pki_types::pem::PemObject as _;
            vec![
                CertificateRevocationListDer::from_pem_slice(
                    ca.crl(revoked, 1, 5).unwrap().as_bytes(),
                )
                .unwrap(),
            ]
        };
        let id = verify_client_chain(
            std::slice::from_ref(&leaf.cert_der),
            &anchors,
            &crl(&[]),
            "silta.example",
            UnixTime::now(),
        )
        .unwrap();
        assert_eq!(id.principal, p);
        let revoked = crl(&[Revocation {
            serial: leaf.serial.clone(),
            revoked_at: time::OffsetDateTime::now_utc(),
        }]);
        assert!(matches!(
            verify_client_chain(std::slice::from_ref(&leaf.cert_der), &anchors, &revoked, "silta.example", UnixTime::now()),
            Err(VerifyError::Untrusted(e)) if e.contains("Revoked")
        ));
        assert!(matches!(
            verify_client_chain(
                std::slice::from_ref(&leaf.cert_der),
                &anchors,
                &[],
                "silta.example",
                UnixTime::now()
            ),
            Err(VerifyError::Untrusted(_))
        ));
        let other =
            CertificateAuthority::generate("CA2", "silta.example", Validity::days_from_now(9))
                .unwrap();
        assert!(matches!(
            verify_client_chain(
                std::slice::from_ref(&leaf.cert_der),
                &[pem_der(other.cert_pem())],
                &crl(&[]),
                "silta.example",
                UnixTime::now()
            ),
            Err(VerifyError::Untrusted(_))
        ));
    }
}
