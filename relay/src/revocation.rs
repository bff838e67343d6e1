//! Revocation as a logged step: when the CRLs in force newly revoke the certificate a known
//! device published its keys with (`principaldevice_device`, `cert_serial`), the delivery log
//! gets one KEY_REVOKED event for that device (actor empty: the relay saw it in the CRL;
//! recipients: the principal; detail: device id, serial, "certificate revoked (CRL)").
//!
//! Once per device and serial: the event's index is remembered in `name_counter` under
//! [`MARK`] ‖ principal ‖ 0 ‖ device ‖ 0 ‖ serial, in the event's transaction, so neither another
//! reload nor a restart logs it again, and a device that publishes again with a new certificate
//! that is revoked later gets its own event. Checked at start and after every CRL reload; at
//! most [`BATCH`] events per transaction.

use silta_certs::Principal;
use silta_proto::pb;

use crate::{error::RelayError, store::Store, tls::TlsState};

/// Prefix of the marks in `name_counter`.
pub const MARK: &[u8] = b"cert-revoked\0";
/// Most KEY_REVOKED events per transaction.
pub const BATCH: usize = 64;

fn mark_key(principal: &str, device: &str, serial: &str) -> Vec<u8> {
    [
        MARK,
        principal.as_bytes(),
        &[0],
        device.as_bytes(),
        &[0],
        serial.as_bytes(),
    ]
    .concat()
}

/// Logs a KEY_REVOKED event for every device whose certificate the CRLs in `tls` revoke and
/// that has none for that certificate yet. Returns how many were logged.
pub async fn log_revoked_devices(store: &Store, tls: &TlsState) -> Result<usize, RelayError> {
    let marks = store.raw_tree("name_counter");
    let mut due = Vec::new();
    for (name, _) in store.principals()? {
        let Ok(principal) = name.parse::<Principal>() else {
            continue;
        };
        for (device, record) in store.devices(&principal)? {
            let serial = record.cert_serial;
            if serial.is_empty() || !tls.is_revoked(&serial) {
                continue;
            }
            let key = mark_key(&name, &device, &serial);
            if let Some(marks) = &marks
                && marks.contains_key(&key)?
            {
                continue;
            }
            due.push((name.clone(), device, serial, key));
        }
    }
    let mut logged = 0;
    for batch in due.chunks(BATCH) {
        let batch = batch.to_vec();
        let written = store
            .write(move |trees| {
                trees.transaction(|tx| {
                    let mut written = Vec::new();
                    for (principal, device, serial, key) in &batch {
                        if tx.counters.get(key)?.is_some() {
                            continue;
                        }
                        let index = tx.append_event(pb::Event {
                            r#type: pb::EventType::KeyRevoked.into(),
                            time: Some(tx.now()),
                            actor: String::new(),
                            recipients: vec![principal.clone()],
                            detail: format!(
                                "device {device} serial {serial}: certificate revoked (CRL)"
                            ),
                            ..Default::default()
                        })?;
                        tx.counters.insert(key.as_slice(), &index.to_be_bytes())?;
                        written.push((principal.clone(), device.clone(), serial.clone()));
                    }
                    Ok(written)
                })
            })
            .await?;
        for (principal, device, serial) in &written {
            tracing::warn!(%principal, device, serial, "device certificate revoked by the CRL; KEY_REVOKED logged");
        }
        logged += written.len();
    }
    Ok(logged)
}
