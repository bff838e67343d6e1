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
    config::LimitsConfig,
    error::RelayError,
    store::{BundleRecord, DeviceRecord, Store, abort, item_key},
    tls::TlsState,
};

/// What a bundle signature is made over: this context, then the encoded content.
pub const BUNDLE_CONTEXT: &[u8] = silta_proto::context::KEY_BUNDLE;
/// Longest device id.
pub const MAX_DEVICE_ID: usize = 64;
/// Largest bundle accepted (content, signature and chain).
pub const MAX_BUNDLE_BYTES: usize = silta_proto::limits::MAX_BUNDLE_BYTES;
/// How far in the relay's future a bundle's `created_at` may be (clocks drift a little).
pub const MAX_CLOCK_SKEW_S: i64 = 300;
/// Most history entries in one GetKeys page.
const HISTORY_PAGE: usize = 100;

/// The directory service logic.
pub struct Directory {
    store: Arc<Store>,
    tls: Arc<TlsState>,
    limits: LimitsConfig,
}

impl Directory {
    pub(crate) fn new(store: Arc<Store>, tls: Arc<TlsState>, limits: LimitsConfig) -> Self {
        Directory { store, tls, limits }
    }

    /// Publishes the caller's device bundle. Re-publishing the identical bundle is a no-op that
    /// returns the original log index.
    ///
    /// A device id is bound to its keys and the certificate that published them: another
    /// certificate of the same principal (another desk, a successor operator) may publish other
    /// keys under that id only once that certificate is expired or revoked, so no desk can
    /// replace another desk's keys. The same keys under a new certificate (a renewed
    /// certificate of the same device) are fine.
    pub async fn publish(&self, permit: &Permit, bundle: pb::KeyBundle) -> Result<u64, RelayError> {
        let now_s = self.store.clock().unix_seconds();
        let CheckedBundle {
            content,
            not_after,
            serial,
            cert_sha256,
        } = check_bundle(
            &bundle,
            permit.peer().cert_sha256(),
            permit.principal(),
            now_s,
        )?;

        let principal = permit.principal().clone();
        let fingerprint =
            silta_proto::device_fingerprint(&content.age_recipient, &content.ed25519_public_key);
        let device = content.device_id.clone();
        let (max_devices, max_bundles) = (
            u64::from(self.limits.max_devices_per_principal),
            u64::from(self.limits.max_bundles_per_device),
        );
        let tls = self.tls.clone();
        let index = self
            .store
            .write(move |trees| {
                trees.transaction(|tx| {
                    let name = principal.to_string();
                    let Some(mut rec) = tx.principal(&name)? else {
                        return abort(RelayError::NotFound(format!("unknown principal {name}")));
                    };
                    let existing = tx.device(&principal, &device)?;
                    // The device's current bundle, superseded by this one (or already by the
                    // device's retirement).
                    let previous = existing.as_ref().map(|d| d.latest_seq).filter(|s| *s > 0);
                    // A new binding of the device id (first publish, a successor, a device
                    // re-enrolled after the admin retired it): messages accepted from now on
                    // may be sealed to it.
                    let mut fresh = false;
                    let mut dev = match existing {
                        Some(dev) if dev.retired => {
                            // Retired by the admin (an operator handover, a lost laptop): a new
                            // certificate of the principal may enrol under the id again; the
                            // retired certificate may not bring it back.
                            if dev.cert_sha256 == cert_sha256 {
                                return abort(RelayError::PermissionDenied(format!(
                                    "device id {device:?} of {name} was retired by the relay's administrator; the certificate it was bound to (serial {}) cannot publish under it again: enrol with a new certificate",
                                    dev.cert_serial
                                )));
                            }
                            if rec.devices >= max_devices {
                                return abort(RelayError::LimitExceeded(format!(
                                    "{name} has {} devices with published keys; limit limits.max_devices_per_principal is {max_devices}",
                                    rec.devices
                                )));
                            }
                            rec.devices += 1;
                            fresh = true;
                            DeviceRecord {
                                bundles: 0,
                                ..dev
                            }
                        }
                        Some(mut dev) => {
                            // Identical to the device's latest bundle: a retry.
                            if let Some(latest) = tx.bundle(&principal, dev.latest_seq)?
                                && latest.bundle.as_ref() == Some(&bundle)
                            {
                                return Ok(latest.log_index);
                            }
                            if dev.cert_sha256 != cert_sha256 {
                                let free = dev.cert_not_after <= now_s
                                    || tls.is_revoked(&dev.cert_serial);
                                // The same keys (their possession is proven above) under a renewed
                                // certificate are the same device.
                                if !free && dev.key_fingerprint != fingerprint {
                                    return abort(RelayError::PermissionDenied(format!(
                                        "device id {device:?} has other keys, published with another certificate of {name} (serial {}) that is neither expired nor revoked: use another device id, or have that certificate revoked first",
                                        dev.cert_serial
                                    )));
                                }
                                if free {
                                    // A successor (operator change): its own history budget.
                                    dev.bundles = 0;
                                    fresh = true;
                                }
                            }
                            if dev.bundles >= max_bundles {
                                return abort(RelayError::LimitExceeded(format!(
                                    "device {device:?} has published {} bundles; limit limits.max_bundles_per_device is {max_bundles}",
                                    dev.bundles
                                )));
                            }
                            dev
                        }
                        None => {
                            if rec.devices >= max_devices {
                                return abort(RelayError::LimitExceeded(format!(
                                    "{name} has {} devices with published keys; limit limits.max_devices_per_principal is {max_devices}",
                                    rec.devices
                                )));
                            }
                            rec.devices += 1;
                            fresh = true;
                            DeviceRecord::default()
                        }
                    };
                    let time = tx.now();
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
                        superseded_at_index: 0,
                    };
                    tx.bundles
                        .insert(item_key(&principal, seq), record.encode_to_vec())?;
                    if let Some(prev) = previous
                        && let Some(mut old) = tx.bundle(&principal, prev)?
                        && old.superseded_at_index == 0
                    {
                        old.superseded_at_index = index;
                        tx.bundles
                            .insert(item_key(&principal, prev), old.encode_to_vec())?;
                    }
                    dev.bundles += 1;
                    dev.latest_seq = seq;
                    dev.cert_sha256 = cert_sha256.clone();
                    dev.cert_serial = serial.clone();
                    dev.cert_not_after = not_after;
                    dev.key_fingerprint = fingerprint.clone();
                    if fresh {
                        dev.retired = false;
                        dev.retired_index = 0;
                        dev.since_index = index;
                    }
                    tx.put_device(&principal, &device, &dev)?;
                    tx.put_principal(&name, &rec)?;
                    Ok(index)
                })
            })
            .await?;
        tracing::info!(principal = %permit.principal(), device = %content.device_id, log_index = index, "key bundle published");
        Ok(index)
    }

    /// The active bundles (latest per device, certificate not expired) and the CRLs; with
    /// `include_history`, one page of every bundle ever published, capped by count and bytes.
    pub fn get(&self, req: &pb::GetKeysRequest) -> Result<pb::GetKeysResponse, RelayError> {
        let principal: Principal = req
            .principal
            .parse()
            .map_err(|_| RelayError::InvalidArgument("principal is not <role>/<id>".into()))?;
        let now_s = self.store.clock().unix_seconds();
        let mut active = Vec::new();
        let devices = self.store.devices(&principal)?;
        for (_, dev) in &devices {
            if dev.retired || dev.cert_not_after <= now_s || self.tls.is_revoked(&dev.cert_serial) {
                continue;
            }
            if let Some(r) = self.store.bundle(&principal, dev.latest_seq)? {
                active.push(pb::PublishedBundle {
                    bundle: r.bundle,
                    published_at: r.published_at,
                    log_index: r.log_index,
                    active: true,
                    superseded_at_index: r.superseded_at_index,
                });
            }
        }
        active.sort_by_key(|b| b.log_index);
        let mut history = Vec::new();
        let mut next_page_token = String::new();
        if req.include_history {
            let from: u64 = if req.page_token.is_empty() {
                1
            } else {
                req.page_token.parse().map_err(|_| {
                    RelayError::InvalidArgument("page_token is not one this relay issued".into())
                })?
            };
            let latest: std::collections::HashSet<u64> =
                active.iter().map(|b| b.log_index).collect();
            // At least one entry; then up to HISTORY_PAGE entries within half the response
            // budget (the rest is for the active bundles and the CRLs).
            let (mut bytes, mut count) = (0usize, 0usize);
            let (page, more) = self.store.bundles_from(&principal, from, |r| {
                let size = r.encoded_len();
                let fits = count == 0
                    || (count < HISTORY_PAGE
                        && bytes + size <= silta_proto::limits::MAX_RESPONSE_BYTES / 2);
                bytes += size;
                count += 1;
                fits
            })?;
            let last = page.last().map(|(seq, _)| *seq);
            // Databases from before the field: the latest bundle of a retired device ends at
            // its retirement, an older one at the device's next bundle on this page.
            let retired_at: std::collections::HashMap<u64, u64> = devices
                .iter()
                .filter(|(_, d)| d.retired)
                .map(|(_, d)| (d.latest_seq, d.retired_index))
                .collect();
            let mut next_of_device = std::collections::HashMap::new();
            let mut superseded = vec![0u64; page.len()];
            for (i, (seq, r)) in page.iter().enumerate().rev() {
                superseded[i] = if r.superseded_at_index != 0 {
                    r.superseded_at_index
                } else if let Some(next) = next_of_device.get(r.device_id.as_str()) {
                    *next
                } else {
                    retired_at.get(seq).copied().unwrap_or(0)
                };
                next_of_device.insert(r.device_id.as_str(), r.log_index);
            }
            history = page
                .iter()
                .zip(superseded)
                .map(|((_, r), superseded_at_index)| pb::PublishedBundle {
                    active: latest.contains(&r.log_index),
                    superseded_at_index,
                    bundle: r.bundle.clone(),
                    published_at: r.published_at,
                    log_index: r.log_index,
                })
                .collect();
            if more && let Some(last) = last {
                next_page_token = (last + 1).to_string();
            }
        }
        Ok(pb::GetKeysResponse {
            active,
            history,
            crls: self.tls.crls().as_ref().clone(),
            next_page_token,
        })
    }
}

/// A bundle that passed every check that needs no storage ([`check_bundle`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedBundle {
    /// The decoded, checked content.
    pub content: pb::KeyBundleContent,
    /// The device certificate's notAfter, unix seconds.
    pub not_after: i64,
    /// The device certificate's serial number, hex.
    pub serial: String,
    /// SHA-256 of the device certificate (DER).
    pub cert_sha256: Vec<u8>,
}

/// Every check on a bundle published by the caller that needs no storage: size, a chain of 1 to
/// `MAX_BUNDLE_CHAIN` DER certificates, the first being the one the caller authenticated with
/// (`caller_cert_sha256`), a signature by that certificate's key over the content, and content
/// naming `principal` with a valid device id and keys, made no later than `now_unix` plus
/// [`MAX_CLOCK_SKEW_S`]. Pure: [`Directory::publish`] stores the bundle only if this passes.
pub fn check_bundle(
    bundle: &pb::KeyBundle,
    caller_cert_sha256: &[u8; 32],
    principal: &Principal,
    now_unix: i64,
) -> Result<CheckedBundle, RelayError> {
    let invalid = |m: &str| RelayError::InvalidArgument(m.to_owned());
    if bundle.encoded_len() > MAX_BUNDLE_BYTES {
        return Err(RelayError::InvalidArgument(format!(
            "key bundle is larger than {MAX_BUNDLE_BYTES} bytes"
        )));
    }
    let chain = &bundle.certificate_chain;
    if chain.is_empty() || chain.len() > silta_proto::limits::MAX_BUNDLE_CHAIN {
        return Err(RelayError::InvalidArgument(format!(
            "certificate_chain must hold 1 to {} certificates (the device certificate first), got {}",
            silta_proto::limits::MAX_BUNDLE_CHAIN,
            chain.len()
        )));
    }
    // Certificates only: each entry must be exactly one DER certificate, nothing around it.
    let mut parsed = Vec::with_capacity(chain.len());
    for (i, der) in chain.iter().enumerate() {
        match x509_parser::parse_x509_certificate(der) {
            Ok((&[], cert)) => parsed.push(cert),
            _ => {
                return Err(RelayError::InvalidArgument(format!(
                    "certificate_chain[{i}] is not one DER certificate"
                )));
            }
        }
    }
    let leaf = &chain[0];
    // The bundle must carry exactly the certificate this connection authenticated with.
    if Sha256::digest(leaf).as_slice() != caller_cert_sha256 {
        return Err(RelayError::PermissionDenied(
            "the bundle's certificate is not the one this connection authenticated with".into(),
        ));
    }
    verify_cert_signature(leaf, BUNDLE_CONTEXT, &bundle.content, &bundle.signature)
        .map_err(|_| invalid("signature does not verify with the bundle's certificate"))?;
    let content = pb::KeyBundleContent::decode(bundle.content.as_slice())
        .map_err(|_| invalid("content is not an encoded KeyBundleContent"))?;
    check_content(&content, principal)?;
    // Proof of possession of the device's Ed25519 key: nobody publishes another device's keys.
    let possession = <[u8; 32]>::try_from(content.ed25519_public_key.as_slice())
        .ok()
        .and_then(|k| ed25519_dalek::VerifyingKey::from_bytes(&k).ok())
        .zip(<[u8; 64]>::try_from(bundle.device_signature.as_slice()).ok())
        .is_some_and(|(key, sig)| {
            key.verify_strict(
                &[
                    silta_proto::context::KEY_POSSESSION,
                    bundle.content.as_slice(),
                ]
                .concat(),
                &ed25519_dalek::Signature::from_bytes(&sig),
            )
            .is_ok()
        });
    if !possession {
        return Err(RelayError::InvalidArgument(
            "device_signature does not verify with the bundle's Ed25519 key (proof that the publisher holds it)".into(),
        ));
    }
    let created = content.created_at.map(|t| t.seconds).unwrap_or_default();
    if created > now_unix + MAX_CLOCK_SKEW_S {
        return Err(RelayError::InvalidArgument(format!(
            "content.created_at is {} s in the relay's future (at most {MAX_CLOCK_SKEW_S} s of clock skew): check the device's clock",
            created - now_unix
        )));
    }
    let not_after = parsed[0].validity().not_after.timestamp();
    let serial = hex::encode(parsed[0].raw_serial());
    let cert_sha256 = Sha256::digest(leaf).to_vec();
    Ok(CheckedBundle {
        content,
        not_after,
        serial,
        cert_sha256,
    })
}

/// Is `id` a device id: 1-64 characters of `a-z 0-9 . _ -`?
pub fn valid_device_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_DEVICE_ID
        && id
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
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
    if !valid_device_id(&c.device_id) {
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
