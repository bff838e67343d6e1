//! Acknowledgements as evidence: checking a recipient's signature over an acknowledgement
//! against a key bundle that verifies against the CA, never on the relay's word.
//!
//! A recipient device signs `silta_proto::context::ACK || message_id || ciphertext_sha256` with
//! its Ed25519 key ([`crate::seal::sign_ack`]); the relay records the signature and the device
//! id in the ACKNOWLEDGED event (`ack_signature`, `ack_device`; events written before
//! `ack_device` existed name the device in `detail` as "device <id>...") and in the status event
//! it sends the sender. The same check serves the auditor (`audit verify`), offline evidence
//! (`audit check-evidence`) and the sender (daemon status files, the inbox).

use prost::Message as _;
use rustls_pki_types::UnixTime;
use silta_proto::pb;

use crate::bundle::{TrustStore, VerifiedBundle};

/// How far a device's clock (its bundle's `created_at`) may be ahead of the relay's (the event
/// time) for the bundle still to count as made before the acknowledgement.
pub(crate) const CLOCK_SKEW_SECS: i64 = 600;

/// Why an acknowledgement does not count as evidence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The event names no signing device.
    #[error("it names no signing device")]
    NoDevice,
    /// No key of that device verifies against the CA.
    #[error("no key bundle of {principal} device {device} that verifies against the CA{why}")]
    NoKey {
        /// The recipient.
        principal: String,
        /// The device.
        device: String,
        /// Why the bundles found did not count (empty if there were none).
        why: String,
    },
    /// The signature does not verify with the device's key.
    #[error(
        "the signature does NOT verify with the key of {principal} device {device} (fingerprint {fingerprint})"
    )]
    BadSignature {
        /// The recipient.
        principal: String,
        /// The device.
        device: String,
        /// The key's fingerprint.
        fingerprint: String,
    },
}

/// The device an ACKNOWLEDGED event names: `ack_device`, or for events written before it
/// existed, the id in `detail` ("device <id>...").
pub(crate) fn device_of(event: &pb::Event) -> Option<String> {
    if !event.ack_device.is_empty() {
        return Some(event.ack_device.clone());
    }
    event
        .detail
        .strip_prefix("device ")?
        .split(' ')
        .next()
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
}

/// Verifies the Ed25519 signature `signature` over the acknowledgement of (`message_id`,
/// `ciphertext_sha256`) with `key`.
pub(crate) fn signature_verifies(
    key: &VerifiedBundle,
    message_id: &[u8],
    ciphertext_sha256: &[u8],
    signature: &[u8],
) -> bool {
    let Ok(sig) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(&key.ed25519) else {
        return false;
    };
    let msg = [silta_proto::context::ACK, message_id, ciphertext_sha256].concat();
    vk.verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig))
        .is_ok()
}

/// Which trust store checks a bundle.
pub(crate) enum Trust<'a> {
    /// A configured client's (its CA and trust domain).
    Store(&'a TrustStore),
    /// Offline: a CA certificate (PEM); the trust domain is taken from each bundle's certificate
    /// (which must still chain to this CA).
    Ca(&'a [u8]),
}

/// The trust domain in a certificate's `spiffe://` identity.
fn trust_domain_of(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let san = cert.subject_alternative_name().ok().flatten()?;
    san.value.general_names.iter().find_map(|n| match n {
        x509_parser::extensions::GeneralName::URI(u) => silta_certs::SpiffeId::parse(u)
            .ok()
            .map(|id| id.trust_domain),
        _ => None,
    })
}

/// Checks an acknowledgement made by `principal`'s device `device` at `at` (unix seconds, the
/// relay's event time): among `bundles` (encoded or decoded key bundles of any principal), the
/// newest bundle of that device made before the acknowledgement that verifies against the CA
/// and `crls` (DER) as of `at`, whose Ed25519 key must verify `signature`. Returns that bundle.
#[allow(clippy::too_many_arguments)]
pub(crate) fn verify(
    trust: &Trust<'_>,
    bundles: &[pb::KeyBundle],
    crls: &[Vec<u8>],
    principal: &str,
    device: &str,
    at: i64,
    message_id: &[u8],
    ciphertext_sha256: &[u8],
    signature: &[u8],
) -> Result<VerifiedBundle, AckError> {
    let when = UnixTime::since_unix_epoch(std::time::Duration::from_secs(at.max(0) as u64));
    let mut best: Option<VerifiedBundle> = None;
    let mut why = Vec::new();
    for b in bundles {
        // Only bundles that claim to be this device's are considered (and their failures named).
        let Ok(content) = pb::KeyBundleContent::decode(b.content.as_slice()) else {
            continue;
        };
        if content.principal != principal || content.device_id != device {
            continue;
        }
        let verified = match trust {
            Trust::Store(t) => t.verify(b, crls, when),
            Trust::Ca(ca) => {
                let domain = b
                    .certificate_chain
                    .first()
                    .and_then(|c| trust_domain_of(c))
                    .unwrap_or_default();
                TrustStore::from_pem(ca, &domain).and_then(|t| t.verify(b, crls, when))
            }
        };
        match verified {
            Ok(v) if v.principal.to_string() == principal && v.device_id == device => {
                if v.created_at > at.saturating_add(CLOCK_SKEW_SECS) {
                    why.push("made after the acknowledgement".to_owned());
                    continue;
                }
                if best.as_ref().is_none_or(|o| v.created_at > o.created_at) {
                    best = Some(v);
                }
            }
            Ok(_) => why.push("its certificate is another principal's".into()),
            Err(e) => why.push(e.to_string()),
        }
    }
    let Some(key) = best else {
        why.sort();
        why.dedup();
        return Err(AckError::NoKey {
            principal: principal.to_owned(),
            device: device.to_owned(),
            why: if why.is_empty() {
                String::new()
            } else {
                format!(" ({})", why.join("; "))
            },
        });
    };
    if !signature_verifies(&key, message_id, ciphertext_sha256, signature) {
        return Err(AckError::BadSignature {
            principal: principal.to_owned(),
            device: device.to_owned(),
            fingerprint: key.fingerprint,
        });
    }
    Ok(key)
}

/// Checks an ACKNOWLEDGED event (see [`verify`]); the recipient is the event's actor.
pub(crate) fn verify_event(
    trust: &Trust<'_>,
    bundles: &[pb::KeyBundle],
    crls: &[Vec<u8>],
    event: &pb::Event,
) -> Result<VerifiedBundle, AckError> {
    let device = device_of(event).ok_or(AckError::NoDevice)?;
    verify(
        trust,
        bundles,
        crls,
        &event.actor,
        &device,
        event.time.map(|t| t.seconds).unwrap_or(0),
        &event.message_id,
        &event.ciphertext_sha256,
        &event.ack_signature,
    )
}

/// Every bundle `principal` ever published (the directory's history, page by page, bounded) and
/// the CRLs the relay hands out. Used to collect what an acknowledgement is checked with.
pub(crate) async fn published_bundles(
    directory: &mut pb::directory_client::DirectoryClient<tonic::transport::Channel>,
    principal: &str,
) -> Result<(Vec<pb::KeyBundle>, Vec<Vec<u8>>), tonic::Status> {
    let mut bundles = Vec::new();
    let mut crls = Vec::new();
    let mut token = String::new();
    // Bounded: a relay that keeps answering with a next page cannot keep us here.
    for _ in 0..1000 {
        let resp = directory
            .get_keys(pb::GetKeysRequest {
                principal: principal.to_owned(),
                include_history: true,
                page_token: token,
            })
            .await?
            .into_inner();
        let page = if resp.history.is_empty() {
            resp.active
        } else {
            resp.history
        };
        bundles.extend(page.into_iter().filter_map(|p| p.bundle));
        crls.extend(resp.crls);
        if resp.next_page_token.is_empty() {
            break;
        }
        token = resp.next_page_token;
    }
    bundles.dedup();
    // Unranked: whoever checks a bundle keeps only the CRLs its CA signed (TrustStore::verify).
    crls.sort();
    crls.dedup();
    Ok((bundles, crls))
}
