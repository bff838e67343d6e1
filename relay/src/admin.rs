//! The Admin service: principals with their certificates, devices and quota use; expiring
//! certificates and CRLs; disabling and enabling a principal; retiring devices (operator
//! handover).
//!
//! Role `admin` only (the authorization table in [`crate::authz`]). Every call with well-formed
//! arguments, reads included, is first an ADMIN_CALL event (the admin, the RPC, its arguments,
//! the stated reason), so the log shows what the administrator looked at and changed even when
//! the call then fails on the relay's state (an unknown principal). The admin sees metadata only.
//!
//! A copy that can no longer be delivered (its recipient disabled, every device it could have
//! been sealed to retired) is reported to its sender as UNDELIVERABLE through
//! `retention::make_undeliverable`, the same path the sweeper ends expired copies
//! with; large mailboxes are worked through in batches of [`BATCH`] items, one transaction each.

use std::sync::Arc;

use silta_certs::{Principal, Role};
use silta_proto::pb;

use crate::{
    authz::Permit,
    config::{LimitsConfig, RetentionConfig},
    error::RelayError,
    mailbox::Mailbox,
    registry::Registry,
    retention::make_undeliverable,
    store::{Store, abort},
    tls::TlsState,
};

/// Longest stated reason, in bytes (it stays in the log for ever: no personal data).
pub const MAX_REASON: usize = silta_proto::purpose::MAX_NOTE;
/// Most principals in one ListPrincipals page.
const PAGE: usize = 100;
/// Mailbox items looked at per transaction when reporting undeliverable copies.
pub const BATCH: usize = 64;
/// Most device ids in one RetireDevices request.
const MAX_DEVICE_IDS: usize = 64;
/// Longest window of `Expiring`, in days.
const MAX_WINDOW_DAYS: u32 = 3650;

/// The Admin service's logic.
pub struct Admin {
    store: Arc<Store>,
    tls: Arc<TlsState>,
    registry: Arc<Registry>,
    mailbox: Arc<Mailbox>,
    limits: LimitsConfig,
    retention: RetentionConfig,
    /// `tls.expiry_warning_days`.
    warning_days: u32,
}

impl Admin {
    #[allow(clippy::too_many_arguments)] // one per shared part; called once, in lib.rs
    pub(crate) fn new(
        store: Arc<Store>,
        tls: Arc<TlsState>,
        registry: Arc<Registry>,
        mailbox: Arc<Mailbox>,
        limits: LimitsConfig,
        retention: RetentionConfig,
        warning_days: u32,
    ) -> Self {
        Admin {
            store,
            tls,
            registry,
            mailbox,
            limits,
            retention,
            warning_days,
        }
    }

    /// The store's clock.
    pub fn clock(&self) -> Arc<dyn crate::clock::Clock> {
        self.store.clock().clone()
    }

    /// Appends the ADMIN_CALL event of a call by the permit's principal.
    async fn record_call(
        &self,
        permit: &Permit,
        args: String,
        reason: &str,
        recipients: Vec<String>,
    ) -> Result<u64, RelayError> {
        let actor = permit.principal().to_string();
        let mut detail = format!("{}{args}", permit.rpc().name());
        if !reason.is_empty() {
            detail.push_str(&format!(" reason: {reason}"));
        }
        tracing::info!(admin = %actor, call = %detail, "admin call");
        self.store
            .write(move |trees| {
                trees.transaction(|tx| {
                    tx.append_event(pb::Event {
                        r#type: pb::EventType::AdminCall.into(),
                        time: Some(tx.now()),
                        actor: actor.clone(),
                        detail: detail.clone(),
                        recipients: recipients.clone(),
                        ..Default::default()
                    })
                })
            })
            .await
    }

    /// Every principal the relay knows (one page), optionally of one role.
    pub async fn list_principals(
        &self,
        permit: &Permit,
        req: pb::ListPrincipalsRequest,
    ) -> Result<pb::ListPrincipalsResponse, RelayError> {
        let reason = check_reason(req.reason.as_ref(), false)?;
        let role = if req.role.is_empty() {
            None
        } else {
            Some(req.role.parse::<Role>().map_err(|_| {
                RelayError::InvalidArgument(
                    "role must be one of centre, assistance, auditor, admin (or empty for all)"
                        .into(),
                )
            })?)
        };
        if !req.page_token.is_empty() {
            parse_principal("page_token", &req.page_token)?;
        }
        let mut args = String::new();
        if let Some(role) = role {
            args.push_str(&format!(" role={role}"));
        }
        if !req.page_token.is_empty() {
            args.push_str(&format!(" after={}", req.page_token));
        }
        self.record_call(permit, args, &reason, Vec::new()).await?;

        let mut out = pb::ListPrincipalsResponse::default();
        let mut after = req.page_token.clone();
        let mut bytes = 0usize;
        // Read in chunks until the page is full; a role filter may skip many.
        'pages: loop {
            let chunk = self.store.principals_after(&after, PAGE)?;
            let exhausted = chunk.len() < PAGE;
            for (name, record) in chunk {
                after = name.clone();
                let Ok(principal) = name.parse::<Principal>() else {
                    continue;
                };
                if role.is_some_and(|r| r != principal.role()) {
                    continue;
                }
                let info = self.principal_info(&principal, record)?;
                let size = prost::Message::encoded_len(&info);
                if !out.principals.is_empty()
                    && (out.principals.len() >= PAGE
                        || bytes + size > silta_proto::limits::MAX_RESPONSE_BYTES / 2)
                {
                    // This one starts the next page.
                    out.next_page_token = last_name(&out);
                    break 'pages;
                }
                bytes += size;
                out.principals.push(info);
            }
            if exhausted {
                break;
            }
        }
        Ok(out)
    }

    fn principal_info(
        &self,
        principal: &Principal,
        record: crate::store::PrincipalRecord,
    ) -> Result<pb::PrincipalInfo, RelayError> {
        let mut devices = Vec::new();
        for (id, dev) in self.store.devices(principal)? {
            let published_at = self
                .store
                .bundle(principal, dev.latest_seq)?
                .and_then(|b| b.published_at);
            devices.push(pb::DeviceInfo {
                device_id: id,
                key_fingerprint: dev.key_fingerprint,
                certificate_serial: dev.cert_serial,
                certificate_not_after: Some(ts(dev.cert_not_after)),
                published_at,
                retired: dev.retired,
            });
        }
        Ok(pb::PrincipalInfo {
            principal: principal.to_string(),
            first_seen: record.registered_at,
            last_seen: record.last_seen.or(record.registered_at),
            certificate_serial: record.cert_serial,
            certificate_not_after: (record.cert_not_after != 0).then(|| ts(record.cert_not_after)),
            devices,
            pending: record.pending,
            pending_limit: self.limits.max_pending_items,
            device_count: record.devices,
            device_limit: u64::from(self.limits.max_devices_per_principal),
            disabled: record.disabled,
            disabled_at: record.disabled_at.filter(|_| record.disabled),
            disabled_reason: if record.disabled {
                record.disabled_reason
            } else {
                String::new()
            },
        })
    }

    /// Certificates and CRLs that expire within the request's window.
    pub async fn expiring(
        &self,
        permit: &Permit,
        req: pb::ExpiringRequest,
    ) -> Result<pb::ExpiringResponse, RelayError> {
        let reason = check_reason(req.reason.as_ref(), false)?;
        if req.within_days > MAX_WINDOW_DAYS {
            return Err(RelayError::InvalidArgument(format!(
                "within_days is at most {MAX_WINDOW_DAYS} (0: the relay's tls.expiry_warning_days)"
            )));
        }
        let days = if req.within_days == 0 {
            self.warning_days
        } else {
            req.within_days
        };
        self.record_call(permit, format!(" within_days={days}"), &reason, Vec::new())
            .await?;
        Ok(pb::ExpiringResponse {
            items: self.expiring_items(days)?,
            within_days: days,
        })
    }

    /// What expires within `days` of now by the store's clock, soonest first: every principal's
    /// last-seen certificate (unless revoked), the relay's certificate, the CA certificates, and
    /// the CRLs' nextUpdate. Already expired items are included (marked).
    pub fn expiring_items(&self, days: u32) -> Result<Vec<pb::ExpiringItem>, RelayError> {
        let now = self.store.clock().unix_seconds();
        let until = now.saturating_add(i64::from(days) * 86_400);
        let mut items = Vec::new();
        for (name, record) in self.store.principals()? {
            if record.cert_not_after == 0
                || record.cert_not_after > until
                || self.tls.is_revoked(&record.cert_serial)
            {
                continue;
            }
            items.push(pb::ExpiringItem {
                what: "principal-certificate".into(),
                subject: name,
                serial: record.cert_serial,
                expires_at: Some(ts(record.cert_not_after)),
                expired: record.cert_not_after <= now,
            });
        }
        for d in self.tls.material_dates() {
            if d.expires > until {
                continue;
            }
            items.push(pb::ExpiringItem {
                what: d.what.into(),
                subject: d.subject,
                serial: d.serial,
                expires_at: Some(ts(d.expires)),
                expired: d.expires <= now,
            });
        }
        items.sort_by_key(|i| i.expires_at.map(|t| t.seconds));
        Ok(items)
    }

    /// Logs a WARN line for everything that expires within `tls.expiry_warning_days`; returns
    /// how many. The relay calls it at start and once a day.
    pub fn warn_expiring(&self) -> Result<usize, RelayError> {
        let now = self.store.clock().unix_seconds();
        let items = self.expiring_items(self.warning_days)?;
        for i in &items {
            let at = i.expires_at.map(|t| t.seconds).unwrap_or(0);
            // The subject comes from a certificate (a CA's, the relay's, a principal's name):
            // escaped, so it cannot forge or break a log line.
            tracing::warn!(
                what = %i.what,
                subject = ?i.subject,
                serial = ?i.serial,
                expires_at = %rfc3339(at),
                days_left = at.saturating_sub(now).div_euclid(86_400),
                expired = i.expired,
                "expires within tls.expiry_warning_days ({} days): renew it",
                self.warning_days
            );
        }
        Ok(items.len())
    }

    /// Disables a principal; reports its pending messages to their senders as undeliverable.
    pub async fn disable(
        &self,
        permit: &Permit,
        req: pb::DisablePrincipalRequest,
    ) -> Result<pb::DisablePrincipalResponse, RelayError> {
        let reason = check_reason(req.reason.as_ref(), true)?;
        let principal = parse_principal("principal", &req.principal)?;
        if &principal == permit.principal() {
            return Err(RelayError::InvalidArgument(
                "an administrator cannot disable itself (another administrator can)".into(),
            ));
        }
        let name = principal.to_string();
        self.record_call(
            permit,
            format!(" principal={name}"),
            &reason,
            vec![name.clone()],
        )
        .await?;
        let Some(before) = self.store.principal(&principal)? else {
            return Err(unknown(&name));
        };
        // Fail closed: from here on the principal gets nothing, even before the store says so.
        self.registry.set_disabled(&principal, true);
        let actor = permit.principal().to_string();
        let written = {
            let (name, reason, actor) = (name.clone(), reason.clone(), actor.clone());
            self.store
                .write(move |trees| {
                    trees.transaction(|tx| {
                        let Some(mut rec) = tx.principal(&name)? else {
                            return abort(unknown(&name));
                        };
                        if rec.disabled {
                            // Already: idempotent (the pending messages are looked at again
                            // below, in case an earlier call was cut short).
                            return Ok(rec.disabled_index);
                        }
                        let time = tx.now();
                        let index = tx.append_event(pb::Event {
                            r#type: pb::EventType::PrincipalDisabled.into(),
                            time: Some(time),
                            actor: actor.clone(),
                            recipients: vec![name.clone()],
                            detail: format!("reason: {reason}"),
                            ..Default::default()
                        })?;
                        rec.disabled = true;
                        rec.disabled_at = Some(time);
                        rec.disabled_reason = reason.clone();
                        rec.disabled_index = index;
                        tx.put_principal(&name, &rec)?;
                        Ok(index)
                    })
                })
                .await
        };
        let log_index = match written {
            Ok(i) => i,
            Err(e) => {
                self.registry.set_disabled(&principal, before.disabled);
                return Err(e);
            }
        };
        tracing::warn!(admin = %actor, principal = %name, log_index, "principal disabled");
        let undeliverable = self.report_disabled(&principal, log_index, &actor).await?;
        Ok(pb::DisablePrincipalResponse {
            log_index,
            undeliverable,
        })
    }

    /// Reports the open copies of messages accepted before `principal` was disabled (its
    /// PRINCIPAL_DISABLED event at `disabled_index`) to their senders as undeliverable, batch by
    /// batch while it stays disabled by that event: an enable meanwhile stops it, and a message
    /// accepted after an enable is never touched.
    async fn report_disabled(
        &self,
        principal: &Principal,
        disabled_index: u64,
        actor: &str,
    ) -> Result<u64, RelayError> {
        self.report_undeliverable(
            principal,
            pb::UndeliverableReason::RecipientDisabled,
            actor,
            Some(disabled_index),
            move |accepted_index| accepted_index < disabled_index,
        )
        .await
    }

    /// Finishes the reports of every principal still disabled (a disable cut short by a
    /// crash or a restart): the relay calls it at start. Returns how many copies it reported.
    pub async fn resume_disabled_reports(&self) -> Result<u64, RelayError> {
        let mut total = 0;
        for (name, record) in self.store.principals()? {
            if !record.disabled || record.disabled_index == 0 {
                continue;
            }
            let Ok(principal) = name.parse::<Principal>() else {
                continue;
            };
            total += self
                .report_disabled(&principal, record.disabled_index, "relay")
                .await?;
        }
        Ok(total)
    }

    /// Enables a disabled principal again.
    pub async fn enable(
        &self,
        permit: &Permit,
        req: pb::EnablePrincipalRequest,
    ) -> Result<pb::EnablePrincipalResponse, RelayError> {
        let reason = check_reason(req.reason.as_ref(), true)?;
        let principal = parse_principal("principal", &req.principal)?;
        let name = principal.to_string();
        self.record_call(
            permit,
            format!(" principal={name}"),
            &reason,
            vec![name.clone()],
        )
        .await?;
        let actor = permit.principal().to_string();
        let log_index = {
            let (name, reason, actor) = (name.clone(), reason.clone(), actor.clone());
            self.store
                .write(move |trees| {
                    trees.transaction(|tx| {
                        let Some(mut rec) = tx.principal(&name)? else {
                            return abort(unknown(&name));
                        };
                        let time = tx.now();
                        let index = tx.append_event(pb::Event {
                            r#type: pb::EventType::PrincipalEnabled.into(),
                            time: Some(time),
                            actor: actor.clone(),
                            recipients: vec![name.clone()],
                            detail: if rec.disabled {
                                format!("reason: {reason}")
                            } else {
                                format!("was not disabled; reason: {reason}")
                            },
                            ..Default::default()
                        })?;
                        rec.disabled = false;
                        rec.disabled_index = 0;
                        tx.put_principal(&name, &rec)?;
                        Ok(index)
                    })
                })
                .await?
        };
        self.registry.set_disabled(&principal, false);
        tracing::warn!(admin = %actor, principal = %name, log_index, "principal enabled");
        Ok(pb::EnablePrincipalResponse { log_index })
    }

    /// Retires devices of a principal; reports the pending messages no remaining device can
    /// read to their senders as undeliverable.
    pub async fn retire_devices(
        &self,
        permit: &Permit,
        req: pb::RetireDevicesRequest,
    ) -> Result<pb::RetireDevicesResponse, RelayError> {
        let reason = check_reason(req.reason.as_ref(), true)?;
        let principal = parse_principal("principal", &req.principal)?;
        if req.device_ids.len() > MAX_DEVICE_IDS {
            return Err(RelayError::InvalidArgument(format!(
                "at most {MAX_DEVICE_IDS} device ids in one request"
            )));
        }
        let mut wanted = std::collections::BTreeSet::new();
        for id in &req.device_ids {
            if !crate::directory::valid_device_id(id) {
                return Err(RelayError::InvalidArgument(
                    "device ids must be 1-64 characters a-z 0-9 . _ -".into(),
                ));
            }
            wanted.insert(id.clone());
        }
        let name = principal.to_string();
        let mut args = format!(" principal={name}");
        if wanted.is_empty() {
            args.push_str(" devices=all");
        } else {
            args.push_str(&format!(
                " devices={}",
                wanted.iter().cloned().collect::<Vec<_>>().join(",")
            ));
        }
        let call_index = self
            .record_call(permit, args, &reason, vec![name.clone()])
            .await?;
        if self.store.principal(&principal)?.is_none() {
            return Err(unknown(&name));
        }
        let devices = self.store.devices(&principal)?;
        for id in &wanted {
            if !devices.iter().any(|(d, _)| d == id) {
                return Err(RelayError::NotFound(format!("{name} has no device {id:?}")));
            }
        }
        let targets: Vec<String> = devices
            .iter()
            .filter(|(id, dev)| !dev.retired && (wanted.is_empty() || wanted.contains(id)))
            .map(|(id, _)| id.clone())
            .collect();
        let actor = permit.principal().to_string();
        // Fail closed: the certificates of the devices being retired get nothing from here on
        // (their open streams end), even before the store says so.
        let certs: Vec<Vec<u8>> = devices
            .iter()
            .filter(|(id, _)| targets.contains(id))
            .map(|(_, d)| d.cert_sha256.clone())
            .filter(|c| !c.is_empty())
            .collect();
        self.registry.retire_certs(&principal, &certs);
        let (retired, last_index) = {
            let (principal, name, reason, actor) = (
                principal.clone(),
                name.clone(),
                reason.clone(),
                actor.clone(),
            );
            self.store
                .write(move |trees| {
                    trees.transaction(|tx| {
                        let Some(mut rec) = tx.principal(&name)? else {
                            return abort(unknown(&name));
                        };
                        let mut retired = Vec::new();
                        let mut last = call_index;
                        for id in &targets {
                            let Some(mut dev) = tx.device(&principal, id)? else {
                                continue;
                            };
                            if dev.retired {
                                continue;
                            }
                            last = tx.append_event(pb::Event {
                                r#type: pb::EventType::KeyRevoked.into(),
                                time: Some(tx.now()),
                                actor: actor.clone(),
                                recipients: vec![name.clone()],
                                detail: format!(
                                    "device {id} key {} retired; reason: {reason}",
                                    dev.key_fingerprint
                                ),
                                ..Default::default()
                            })?;
                            dev.retired = true;
                            dev.retired_index = last;
                            if let Some(mut b) = tx.bundle(&principal, dev.latest_seq)?
                                && b.superseded_at_index == 0
                            {
                                b.superseded_at_index = last;
                                tx.put_bundle(&principal, dev.latest_seq, &b)?;
                            }
                            if !dev.cert_sha256.is_empty()
                                && !rec.retired_certs.contains(&dev.cert_sha256)
                            {
                                rec.retired_certs.push(dev.cert_sha256.clone());
                            }
                            tx.put_device(&principal, id, &dev)?;
                            rec.devices = rec.devices.saturating_sub(1);
                            retired.push(id.clone());
                        }
                        tx.put_principal(&name, &rec)?;
                        Ok((retired, last))
                    })
                })
                .await?
        };
        tracing::warn!(admin = %actor, principal = %name, devices = ?retired, "devices retired");
        // Which devices a message accepted at a given log index may have been sealed to: those
        // not retired whose binding began before it. Messages accepted after this call are
        // left alone (their sender saw the directory without the retired devices).
        // A device whose certificate is expired or revoked (now) was not in the directory, so
        // nothing sent since was sealed to it; one whose binding predates the field
        // (since_index 0) is not known to have been there: neither counts as a reader.
        let now = self.store.clock().unix_seconds();
        let remaining: Vec<u64> = self
            .store
            .devices(&principal)?
            .into_iter()
            .filter(|(_, d)| {
                !d.retired
                    && d.since_index != 0
                    && d.cert_not_after > now
                    && !self.tls.is_revoked(&d.cert_serial)
            })
            .map(|(_, d)| d.since_index)
            .collect();
        let undeliverable = self
            .report_undeliverable(
                &principal,
                pb::UndeliverableReason::DevicesRetired,
                &actor,
                None,
                move |accepted_index| {
                    accepted_index < last_index && !remaining.iter().any(|s| *s < accepted_index)
                },
            )
            .await?;
        // Items the retired devices were the last to hold (other desks done with them) go.
        let released = self.mailbox.release_done(&principal).await?;
        if released > 0 {
            tracing::info!(principal = %name, items = released, "items only retired devices still held were removed");
        }
        Ok(pb::RetireDevicesResponse {
            retired,
            undeliverable,
            log_index: last_index,
        })
    }

    /// Goes through `principal`'s mailbox in batches and reports every open copy of a message
    /// whose ACCEPTED index satisfies `select` as undeliverable for `reason`; wakes the senders'
    /// subscriptions. Returns how many. With `while_disabled_by`, each batch first checks, in
    /// its transaction, that the principal is still disabled by the PRINCIPAL_DISABLED event at
    /// that index, and stops if not.
    async fn report_undeliverable(
        &self,
        principal: &Principal,
        reason: pb::UndeliverableReason,
        actor: &str,
        while_disabled_by: Option<u64>,
        select: impl Fn(u64) -> bool,
    ) -> Result<u64, RelayError> {
        let mut cursor = 0u64;
        let mut total = 0u64;
        loop {
            let items = self
                .store
                .mailbox_items(principal, cursor, u64::MAX, BATCH)?;
            let Some((last, _)) = items.last() else {
                break;
            };
            cursor = *last;
            let mut ids = Vec::new();
            for (_, item) in items {
                if item.status.is_some() {
                    continue;
                }
                let Some(meta) = self.store.message(&item.message_id)? else {
                    continue;
                };
                if select(meta.log_index) {
                    ids.push(item.message_id);
                }
            }
            if ids.is_empty() {
                continue;
            }
            let (name, actor, retention) = (
                principal.to_string(),
                actor.to_owned(),
                self.retention.clone(),
            );
            let pushed = self
                .store
                .write(move |trees| {
                    trees.transaction(|tx| {
                        if let Some(index) = while_disabled_by
                            && !tx
                                .principal(&name)?
                                .is_some_and(|r| r.disabled && r.disabled_index == index)
                        {
                            return Ok(None);
                        }
                        let mut pushed = Vec::new();
                        for id in &ids {
                            pushed.extend(make_undeliverable(
                                tx, id, &name, reason, &actor, &retention,
                            )?);
                        }
                        Ok(Some(pushed))
                    })
                })
                .await?;
            let Some(pushed) = pushed else {
                tracing::info!(principal = %principal, "no longer disabled: reporting its pending messages stopped");
                break;
            };
            total += pushed.len() as u64;
            self.mailbox.wake(&pushed);
        }
        if total > 0 {
            tracing::warn!(principal = %principal, reason = reason.as_str_name(), messages = total, "pending messages reported undeliverable to their senders");
        }
        Ok(total)
    }
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

fn last_name(out: &pb::ListPrincipalsResponse) -> String {
    out.principals
        .last()
        .map(|p| p.principal.clone())
        .unwrap_or_default()
}

fn unknown(name: &str) -> RelayError {
    RelayError::NotFound(format!(
        "unknown principal {name}: it has never connected to this relay"
    ))
}

fn ts(unix: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: unix,
        nanos: 0,
    }
}

/// `field` as a principal, or INVALID_ARGUMENT.
fn parse_principal(field: &str, value: &str) -> Result<Principal, RelayError> {
    value.parse().map_err(|_| {
        RelayError::InvalidArgument(format!(
            "{field} is not a principal <role>/<id> (roles centre, assistance, auditor, admin; id of a-z 0-9 . _ -)"
        ))
    })
}

/// The stated reason of an admin request: at most [`MAX_REASON`] bytes, one printable line;
/// `required` for the calls that change something.
pub fn check_reason(
    reason: Option<&pb::AdminReason>,
    required: bool,
) -> Result<String, RelayError> {
    let text = reason.map(|r| r.text.trim()).unwrap_or_default();
    if required && text.is_empty() {
        return Err(RelayError::InvalidArgument(
            "a reason is required (it is recorded in the delivery log)".into(),
        ));
    }
    if text.len() > MAX_REASON {
        return Err(RelayError::InvalidArgument(format!(
            "the reason is {} bytes; at most {MAX_REASON} (and never personal data: the log cannot be erased)",
            text.len()
        )));
    }
    if let Some(c) = text.chars().find(|c| !silta_proto::text::line_safe(*c)) {
        return Err(RelayError::InvalidArgument(format!(
            "the reason must not contain control characters, line breaks, or invisible or text-reordering characters (found U+{:04X})",
            u32::from(c)
        )));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(s: &str) -> Option<pb::AdminReason> {
        Some(pb::AdminReason { text: s.into() })
    }

    #[test]
    fn reasons_are_required_bounded_and_one_line() {
        assert!(check_reason(None, false).unwrap().is_empty());
        assert!(matches!(
            check_reason(None, true),
            Err(RelayError::InvalidArgument(_))
        ));
        assert!(matches!(
            check_reason(reason("   ").as_ref(), true),
            Err(RelayError::InvalidArgument(_))
        ));
        assert_eq!(
            check_reason(reason(" handover ").as_ref(), true).unwrap(),
            "handover"
        );
        let long = "x".repeat(MAX_REASON + 1);
        assert!(check_reason(reason(&long).as_ref(), false).is_err());
        assert!(check_reason(reason(&"x".repeat(MAX_REASON)).as_ref(), true).is_ok());
        assert!(check_reason(reason("a\nb").as_ref(), true).is_err());
        assert!(check_reason(reason("a\u{1b}[2Jb").as_ref(), true).is_err());
        for hidden in [
            "\u{202E}", "\u{2066}", "\u{200B}", "\u{200D}", "\u{FEFF}", "\u{2028}",
        ] {
            let r = format!("handover{hidden}gpj.exe");
            assert!(
                check_reason(reason(&r).as_ref(), true).is_err(),
                "{hidden:?}"
            );
        }
        assert!(check_reason(reason("käsittelijä vaihtui – ok").as_ref(), true).is_ok());
    }
}
