//! The key directory: device key bundles, bound to the PKI, kept forever.
//!
//! The relay accepts a bundle only from the device whose certificate is in it (the TLS client
//! certificate of the caller), signed with that certificate's key, naming the caller's principal.
//! It never asks anyone to trust it: clients verify every bundle against the CA themselves. Every
//! publish is a KEY_PUBLISHED event, so the history of a principal's keys is auditable.

use std::sync::Arc;

use prost::Message as _;
use sha2::{Digest as _, Sha256};
use silta_certs::{Principal, signing::verify_cert_signature};
use silta_proto::pb;

use crate::{
    authz::Permit,
    error::RelayError,
    store::{BundleRecord, Store, abort, item_key, now},
    tls::TlsState,
};

/// What a bundle signature is made over: this context, then the encoded content.
pub const BUNDLE_CONTEXT: &[u8] = silta_proto::context::KEY_BUNDLE;
/// Longest device id.
pub const MAX_DEVICE_ID: usize = 64;
/// Largest bundle accepted (content, signature and chain).
pub const MAX_BUNDLE_BYTES: usize = 64 * 1024;

/// The directory service logic.
pub struct Directory {
    store: Arc<Store>,
    tls: Arc<TlsState>,
}

impl Directory {
    pub(crate) fn new(store: Arc<Store>, tls: Arc<TlsState>) -> Self {
        Directory { store, tls }
    }

    /// Publishes the caller's device bundle. Re-publishing the identical bundle is a no-op that
    /// returns the original log index.
    pub async fn publish(&self, permit: &Permit, bundle: pb::KeyBundle) -> Result<u64, RelayError> {
        let invalid = |m: &str| RelayError::InvalidArgument(m.to_owned());
        if bundle.encoded_len() > MAX_BUNDLE_BYTES {
            return Err(RelayError::LimitExceeded(format!(
                "key bundle is larger than {MAX_BUNDLE_BYTES} bytes"
            )));
        }
        let leaf = bundle
            .certificate_chain
            .first()
            .ok_or_else(|| invalid("certificate_chain is empty"))?;
        // The bundle must carry exactly the certificate this connection authenticated with.
        if Sha256::digest(leaf).as_slice() != permit.peer().cert_sha256() {
            return Err(RelayError::PermissionDenied(
                "the bundle's certificate is not the one this connection authenticated with".into(),
            ));
        }
        verify_cert_signature(leaf, BUNDLE_CONTEXT, &bundle.content, &bundle.signature)
            .map_err(|_| invalid("signature does not verify with the bundle's certificate"))?;
        let content = pb::KeyBundleContent::decode(bundle.content.as_slice())
            .map_err(|_| invalid("content is not an encoded KeyBundleContent"))?;
        check_content(&content, permit.principal())?;
        let not_after = x509_parser::parse_x509_certificate(leaf)
            .map(|(_, c)| c.validity().not_after.timestamp())
            .map_err(|_| invalid("certificate does not parse"))?;

        let principal = permit.principal().clone();
        let fingerprint =
            silta_proto::device_fingerprint(&content.age_recipient, &content.ed25519_public_key);
        let device = content.device_id.clone();
        let index = self
            .store
            .write(move |trees| {
                trees.transaction(|tx| {
                    let name = principal.to_string();
                    let Some(mut rec) = tx.principal(&name)? else {
                        return abort(RelayError::NotFound(format!("unknown principal {name}")));
                    };
                    // Identical to the device's latest bundle: a retry.
                    if rec.next_bundle_seq > 1 {
                        for seq in (1..rec.next_bundle_seq).rev() {
                            let Some(v) = tx.bundles.get(item_key(&principal, seq))? else {
                                continue;
                            };
                            let old: BundleRecord =
                                prost::Message::decode(v.as_ref()).map_err(|e| {
                                    sled::transaction::ConflictableTransactionError::Abort(
                                        RelayError::Store(crate::store::StoreError::Corrupt {
                                            tree: "principalseq_bundle",
                                            detail: e.to_string(),
                                        }),
                                    )
                                })?;
                            if old.device_id == device {
                                if old.bundle.as_ref() == Some(&bundle) {
                                    return Ok(old.log_index);
                                }
                                break;
                            }
                        }
                    }
                    let time = now();
                    let index = tx.append_event(pb::Event {
                        r#type: pb::EventType::KeyPublished.into(),
                        time: Some(time),
                        actor: name.clone(),
                        detail: format!("device {device} key {fingerprint}"),
                        ..Default::default()
                    })?;
                    let seq = rec.next_bundle_seq.max(1);
                    rec.next_bundle_seq = seq + 1;
                    let record = BundleRecord {
                        bundle: Some(bundle.clone()),
                        published_at: Some(time),
                        log_index: index,
                        device_id: device.clone(),
                        cert_not_after: not_after,
                    };
                    tx.bundles
                        .insert(item_key(&principal, seq), record.encode_to_vec())?;
                    tx.put_principal(&name, &rec)?;
                    Ok(index)
                })
            })
            .await?;
        tracing::info!(principal = %permit.principal(), device = %content.device_id, log_index = index, "key bundle published");
        Ok(index)
    }

    /// The active bundles (latest per device, certificate not expired) and the whole history.
    pub fn get(&self, principal: &str) -> Result<pb::GetKeysResponse, RelayError> {
        let principal: Principal = principal
            .parse()
            .map_err(|e| RelayError::InvalidArgument(format!("principal: {e}")))?;
        let records = self.store.bundles(&principal)?;
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let mut latest: std::collections::HashMap<&str, usize> = Default::default();
        for (i, r) in records.iter().enumerate() {
            latest.insert(r.device_id.as_str(), i);
        }
        let history: Vec<pb::PublishedBundle> = records
            .iter()
            .enumerate()
            .map(|(i, r)| pb::PublishedBundle {
                bundle: r.bundle.clone(),
                published_at: r.published_at,
                log_index: r.log_index,
                active: latest.get(r.device_id.as_str()) == Some(&i) && r.cert_not_after > now_s,
            })
            .collect();
        Ok(pb::GetKeysResponse {
            active: history.iter().filter(|b| b.active).cloned().collect(),
            history,
            crls: self.tls.crls().as_ref().clone(),
            next_page_token: String::new(),
        })
    }
}

fn check_content(c: &pb::KeyBundleContent, caller: &Principal) -> Result<(), RelayError> {
    let invalid = |m: String| Err(RelayError::InvalidArgument(m));
    if c.version != 1 {
        return invalid(format!(
            "content.version {} is not supported (1 is)",
            c.version
        ));
    }
    if c.principal != caller.to_string() {
        return Err(RelayError::PermissionDenied(format!(
            "the bundle names {:?}, but the caller is {caller}",
            c.principal.chars().take(80).collect::<String>()
        )));
    }
    let id_ok = !c.device_id.is_empty()
        && c.device_id.len() <= MAX_DEVICE_ID
        && c.device_id
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch));
    if !id_ok {
        return invalid("content.device_id must be 1-64 characters a-z 0-9 . _ -".into());
    }
    if !c.age_recipient.starts_with("age1") || c.age_recipient.len() != 62 {
        return invalid("content.age_recipient is not an age X25519 recipient (age1...)".into());
    }
    if c.ed25519_public_key.len() != 32 {
        return invalid("content.ed25519_public_key must be 32 bytes".into());
    }
    if c.created_at.is_none() {
        return invalid("content.created_at is required".into());
    }
    Ok(())
}
