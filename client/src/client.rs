//! Everything together: a configured client that publishes its keys, seals and sends, receives,
//! opens, and acknowledges or rejects.

use std::{
    collections::HashMap,
    path::Path,
    time::{Duration, SystemTime},
};

use prost::Message as _;

use rustls_pki_types::UnixTime;
use silta_certs::{Principal, identity::client_identity};
use silta_proto::pb;

pub use crate::error::ClientError;
use crate::{
    bundle::{BundleError, TrustStore, VerifiedBundle},
    config::{ClientConfig, ReceiveConfig},
    connection::Connection,
    key_history::CurrentAt,
    keys::DeviceKeys,
    seal::{Draft, Opened, Rejected, SealError, open_any_at, open_at, seal_version_at},
    state::{Pin, State},
};

/// A message received and processed.
#[derive(Debug)]
pub enum Received {
    /// Opened, verified, and acknowledged.
    Message {
        /// What arrived.
        delivered: pb::DeliveredEnvelope,
        /// Its verified content.
        opened: Box<Opened>,
    },
    /// Refused, and the refusal sent to the relay.
    Rejected {
        /// What arrived.
        delivered: pb::DeliveredEnvelope,
        /// Why.
        rejected: Rejected,
    },
    /// Could not be processed now (e.g. the sender's keys could not be fetched): left
    /// unacknowledged and skipped, so the messages behind it are not held up; tried again on a
    /// later subscription once `retry.next_at_ms` has passed, and rejected after the configured
    /// number of tries ([`ReceiveConfig`]).
    Deferred {
        /// What arrived.
        delivered: pb::DeliveredEnvelope,
        /// Its retry record (tries so far, next try, last error).
        retry: crate::state::Retry,
        /// Whether it was tried this time (false: skipped, its next try is not due yet).
        tried: bool,
    },
    /// The same message again (already processed): acknowledged again, not shown again.
    Duplicate {
        /// Its id.
        message_id: Vec<u8>,
    },
    /// A status change of a message this client sent.
    Status(pb::StatusEvent),
    /// Accepted before this desk's keys were published, so not sealed to it (another desk of
    /// the principal can open it): a placeholder without content was kept in the state, and
    /// the relay told this desk is done with it.
    NotForThisDesk {
        /// What arrived.
        delivered: pb::DeliveredEnvelope,
    },
}

/// A key that changed since it was last seen (it verified against the CA, so it is used; show it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChange {
    /// Whose.
    pub principal: String,
    /// Which device.
    pub device: String,
    /// Pinned before.
    pub old: String,
    /// Now.
    pub new: String,
}

/// A configured client.
pub struct Client {
    log_key: Option<String>,
    conn: Connection,
    me: Principal,
    keys: DeviceKeys,
    trust: TrustStore,
    state: State,
    cert_pem: Vec<u8>,
    key_pem: String,
    key_changes: std::sync::Mutex<Vec<KeyChange>>,
    /// The sealed-message format each device (by its age recipient) announced when
    /// [`Client::age_recipients`] last looked it up: what [`Client::seal_to`] seals in.
    opens_version: std::sync::Mutex<HashMap<String, u32>>,
    clock: std::sync::Arc<dyn Fn() -> SystemTime + Send + Sync>,
    receive: ReceiveConfig,
    state_dir: std::path::PathBuf,
}

/// How far in the future of the client's clock a key bundle may be dated and still be used.
pub(crate) const MAX_FUTURE_SKEW: Duration = Duration::from_secs(5 * 60);

impl Client {
    /// Loads keys and state and connects. Keys must exist (`silta keys init`).
    pub async fn start(config: &ClientConfig) -> Result<Self, ClientError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| ClientError::Config(format!("{}: {e}", p.display())))
        };
        let (ca_pem, cert_pem, key_pem) =
            (read(&config.ca)?, read(&config.cert)?, read(&config.key)?);
        let (me, trust_domain) = own_identity(&cert_pem)?;
        let mut trust = TrustStore::from_pem(&ca_pem, &trust_domain)?;
        for crl in &config.crls {
            trust = trust.with_crls_pem(&read(crl)?)?;
        }
        let keys = DeviceKeys::load(&config.key_dir())?;
        let state = State::open(&config.state_dir)?;
        let relay = config.relay_config(ca_pem, cert_pem.clone(), key_pem.clone());
        let conn = Connection::connect(&relay).await?;
        Ok(Client {
            log_key: config.log_key.clone(),
            conn,
            me,
            keys,
            trust,
            state,
            cert_pem,
            key_pem: String::from_utf8_lossy(&key_pem).into_owned(),
            key_changes: Default::default(),
            opens_version: Default::default(),
            clock: std::sync::Arc::new(SystemTime::now),
            receive: config.receive.clone(),
            state_dir: config.state_dir.clone(),
        })
    }

    /// This client's principal.
    pub fn principal(&self) -> &Principal {
        &self.me
    }

    /// This device's keys.
    pub fn keys(&self) -> &DeviceKeys {
        &self.keys
    }

    /// How received messages that cannot be processed now are retried.
    pub fn receive_config(&self) -> &ReceiveConfig {
        &self.receive
    }

    /// The connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Publishes this device's key bundle; returns the log index of the KEY_PUBLISHED event.
    pub async fn publish_keys(&self) -> Result<u64, ClientError> {
        self.publish_device_keys(&self.keys).await
    }

    /// Publishes a bundle of `keys` (this device's next keys during `silta keys rotate`) with
    /// this installation's certificate; returns the log index of the KEY_PUBLISHED event.
    pub async fn publish_device_keys(&self, keys: &DeviceKeys) -> Result<u64, ClientError> {
        let bundle = crate::bundle::build(keys, &self.me, &self.cert_pem, &self.key_pem)?;
        Ok(self
            .conn
            .directory()
            .publish_keys(bundle)
            .await?
            .into_inner()
            .log_index)
    }

    /// The active device keys of `principal` that verify against the CA: the latest bundle of
    /// each device by the relay's log. A key that changed since last seen, or a new device of a
    /// principal seen before, is recorded in [`Client::take_key_changes`]; a bundle logged before
    /// the pinned one (a rollback) is refused.
    pub async fn keys_of(&self, principal: &Principal) -> Result<Vec<VerifiedBundle>, ClientError> {
        let resp = self
            .conn
            .directory()
            .get_keys(pb::GetKeysRequest {
                principal: principal.to_string(),
                ..Default::default()
            })
            .await?
            .into_inner();
        self.select_keys(principal, &resp, self.now())
    }

    /// What [`Client::keys_of`] makes of the directory's answer `resp` at `now` (public so that
    /// what a hostile or stale relay could answer can be fed to it directly).
    ///
    /// - CRLs count only when signed by our CA ([`TrustStore::freshest_crls`]); the freshest
    ///   per issuer is kept, so a relay cannot roll one back later.
    /// - Bundles are ordered by the relay's log index, never by the publisher's `created_at`;
    ///   a bundle dated more than [`MAX_FUTURE_SKEW`] after `now` is ignored (with a warning):
    ///   a clock in 2100 must not outrank every later bundle.
    /// - A pin whose bundle no longer verifies (certificate revoked or expired) is dropped when
    ///   it stands in the way, so the successor's bundle for the same device can be pinned.
    pub fn select_keys(
        &self,
        principal: &Principal,
        resp: &pb::GetKeysResponse,
        now: SystemTime,
    ) -> Result<Vec<VerifiedBundle>, ClientError> {
        let verified_crls = self.trust.freshest_crls(
            self.state
                .crls()?
                .into_iter()
                .chain(resp.crls.iter().cloned()),
        );
        self.state.keep_crls(&verified_crls)?;
        let crls: Vec<Vec<u8>> = verified_crls.iter().map(|c| c.der().to_vec()).collect();
        let unix_now = UnixTime::since_unix_epoch(
            now.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
        );
        let latest_allowed = unix_now.as_secs().saturating_add(MAX_FUTURE_SKEW.as_secs()) as i64;
        let mut newest: HashMap<String, (u64, VerifiedBundle, &pb::KeyBundle)> = HashMap::new();
        for published in &resp.active {
            let Some(bundle) = &published.bundle else {
                continue;
            };
            match self.trust.verify(bundle, &crls, unix_now) {
                Ok(v) if &v.principal == principal => {
                    if v.created_at > latest_allowed {
                        tracing::warn!(principal = %principal, device = %v.device_id, log_index = published.log_index, created_at = v.created_at, "key bundle dated in the future (publisher's clock wrong, or an attempt to outrank later bundles); ignored");
                        continue;
                    }
                    let keep = newest
                        .get(&v.device_id)
                        .is_none_or(|(i, _, _)| published.log_index > *i);
                    if keep {
                        newest.insert(v.device_id.clone(), (published.log_index, v, bundle));
                    }
                }
                Ok(v) => {
                    tracing::warn!(expected = %principal, found = %v.principal, "directory returned another principal's bundle; ignored")
                }
                Err(e) => {
                    tracing::warn!(principal = %principal, error = %e, "key bundle not trusted; ignored")
                }
            }
        }
        let name = principal.to_string();
        let known_before = self.state.pinned_devices(&name);
        let mut out = Vec::new();
        let mut devices: Vec<_> = newest.into_values().collect();
        devices.sort_by(|a, b| a.1.device_id.cmp(&b.1.device_id));
        for (log_index, v, bundle) in devices {
            let encoded = bundle.encode_to_vec();
            let mut outcome =
                self.state
                    .pin(&name, &v.device_id, &v.fingerprint, log_index, &encoded)?;
            if let Pin::Older { pinned } = &outcome
                && let Some(rec) = self.state.pinned(&name, &v.device_id)?
                && let Err(e) = pb::KeyBundle::decode(rec.bundle.as_slice())
                    .map_err(|e| BundleError::Malformed(e.to_string()))
                    .and_then(|b| self.trust.verify(&b, &crls, unix_now))
            {
                // The pinned key is no longer valid (its certificate was revoked or expired):
                // it cannot stand in the way of the device's successor.
                tracing::warn!(principal = %name, device = %v.device_id, pinned = %pinned, error = %e, "pinned key bundle no longer verifies; pin dropped");
                self.state.drop_pin(&name, &v.device_id)?;
                outcome = match self.state.pin(
                    &name,
                    &v.device_id,
                    &v.fingerprint,
                    log_index,
                    &encoded,
                )? {
                    Pin::New => Pin::Changed {
                        old: pinned.clone(),
                    },
                    other => other,
                };
            }
            let change = match outcome {
                Pin::Same => None,
                Pin::New if known_before == 0 => None,
                Pin::New => Some("(new device)".to_owned()),
                Pin::Changed { old } => Some(old),
                Pin::Older { pinned } => {
                    tracing::warn!(principal = %name, device = %v.device_id, pinned = %pinned, offered = %v.fingerprint, log_index, "key bundle logged before the one already seen (rollback); refused");
                    continue;
                }
            };
            if let Some(old) = change {
                tracing::warn!(principal = %name, device = %v.device_id, old = %old, new = %v.fingerprint, "device key changed (verified against the CA)");
                self.key_changes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(KeyChange {
                        principal: name.clone(),
                        device: v.device_id.clone(),
                        old,
                        new: v.fingerprint.clone(),
                    });
            }
            out.push(v);
        }
        Ok(out)
    }

    /// Checks the signature of an ACKNOWLEDGED status event about a message this installation
    /// sent (its ciphertext digest `ciphertext_sha256`) against the recipient device's key
    /// bundle, verified against the CA. Returns the key's fingerprint, or why it does not count;
    /// or, when the keys could not be fetched for a passing reason (connection down or reset,
    /// over our rate limit), that error: no verdict then, the status is looked at again later.
    pub async fn check_ack(
        &self,
        s: &pb::StatusEvent,
        ciphertext_sha256: &[u8],
    ) -> Result<Result<String, String>, ClientError> {
        if ciphertext_sha256.len() != 32 {
            return Ok(Err("the message's ciphertext digest is not known here, so the signature cannot be checked".into()));
        }
        let principal: Principal = match s.recipient.parse() {
            Ok(p) => p,
            Err(e) => return Ok(Err(format!("recipient {:?}: {e}", s.recipient))),
        };
        let keys = match self.keys_of(&principal).await {
            Ok(keys) => keys,
            Err(e) if !e.is_per_message() => return Err(e),
            Err(e) => {
                return Ok(Err(format!(
                    "the recipient's keys could not be fetched ({e})"
                )));
            }
        };
        Ok(Self::ack_verdict(s, ciphertext_sha256, &principal, &keys))
    }

    fn ack_verdict(
        s: &pb::StatusEvent,
        ciphertext_sha256: &[u8],
        principal: &Principal,
        keys: &[VerifiedBundle],
    ) -> Result<String, String> {
        let key = keys
            .iter()
            .find(|k| k.device_id == s.ack_device)
            .ok_or_else(|| {
                format!(
                    "{principal} has no key of device {:?} that verifies against the CA",
                    s.ack_device
                )
            })?;
        if crate::ack::signature_verifies(key, &s.message_id, ciphertext_sha256, &s.ack_signature) {
            Ok(key.fingerprint.clone())
        } else {
            Err(format!(
                "the signature does NOT verify with the key of {principal} device {} (fingerprint {})",
                key.device_id, key.fingerprint
            ))
        }
    }

    /// Now, by the client's clock ([`Client::with_clock`]).
    pub fn now(&self) -> SystemTime {
        (self.clock)()
    }

    /// Uses `clock` for every time decision (key bundle dates, retry schedules) instead of the
    /// system clock: tests move time without sleeping.
    pub fn with_clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = std::sync::Arc::new(clock);
        self
    }

    /// Key changes seen since the last call.
    pub fn take_key_changes(&self) -> Vec<KeyChange> {
        std::mem::take(&mut *self.key_changes.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Checks the relay's receipt for the message `id` with ciphertext digest `digest` against
    /// the configured log key: `Ok(true)` it checks out, `Ok(false)` no log key is configured
    /// (nothing checked), `Err` why it does not prove the message was logged.
    pub fn check_receipt(
        &self,
        receipt: &pb::Receipt,
        id: &[u8],
        digest: &[u8],
    ) -> Result<bool, String> {
        match &self.log_key {
            Some(key) => {
                crate::audit::check_receipt(receipt, key, id, &self.me.to_string(), digest)
                    .map_err(|e| e.to_string())?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Seals `draft` without sending it.
    pub async fn seal(&self, draft: &Draft) -> Result<pb::Envelope, ClientError> {
        let to = self.age_recipients(draft).await?;
        self.seal_to(draft, &to)
    }

    /// Checks `draft` and looks up what it is sealed to now: the age recipients of every active,
    /// CA-verified device of every recipient and of this principal, and this device (sorted, no
    /// duplicates). [`Client::seal`] is this, then [`Client::seal_to`].
    pub async fn age_recipients(&self, draft: &Draft) -> Result<Vec<String>, ClientError> {
        crate::seal::check_basis(draft)?;
        // Judged as of today by this client's clock (a decision dated tomorrow is refused).
        let today = time::OffsetDateTime::from(self.now()).date();
        crate::payload::validate_on(
            draft.kind,
            draft.urgency,
            &draft.payload,
            &self.me,
            &draft.recipients,
            today,
        )
        .map_err(SealError::from)?;
        let mut bundles = Vec::new();
        for r in &draft.recipients {
            let keys = self.keys_of(r).await?;
            if keys.is_empty() {
                return Err(SealError::NoKeys(r.to_string()).into());
            }
            bundles.extend(keys);
        }
        // Our own devices too, so every device of ours can read what we sent.
        bundles.extend(self.keys_of(&self.me).await?);
        // The format each of them opens, by these bundles only: where two bundles name the
        // same age recipient (another principal may publish anyone's), the older format.
        let mut opens: HashMap<String, u32> = HashMap::new();
        for b in &bundles {
            opens
                .entry(b.age_recipient.clone())
                .and_modify(|v| *v = (*v).min(b.opens_version))
                .or_insert(b.opens_version);
        }
        opens.insert(self.keys.age_recipient(), crate::seal::NEWEST_VERSION);
        let mut to: Vec<String> = opens.keys().cloned().collect();
        to.sort();
        self.opens_version
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(opens);
        Ok(to)
    }

    /// The sealed-message format for the age recipients `to`: the oldest that any of them
    /// announced when [`Client::age_recipients`] last looked them up (one it has not looked up
    /// counts as format 1); see [`crate::seal::version_for`].
    pub fn seal_version(&self, to: &[String]) -> u32 {
        let known = self.opens_version.lock().unwrap_or_else(|e| e.into_inner());
        crate::seal::version_for(to.iter().map(|r| known.get(r).copied().unwrap_or(1)))
    }

    /// Seals `draft` to the age recipients `to` ([`Client::age_recipients`]), in the format
    /// [`Client::seal_version`] gives for them.
    pub fn seal_to(&self, draft: &Draft, to: &[String]) -> Result<pb::Envelope, ClientError> {
        self.seal_to_version(draft, to, self.seal_version(to))
    }

    /// Seals `draft` to the age recipients `to` in format `version`.
    pub fn seal_to_version(
        &self,
        draft: &Draft,
        to: &[String],
        version: u32,
    ) -> Result<pb::Envelope, ClientError> {
        Ok(seal_version_at(
            draft,
            &self.me,
            &self.keys,
            to,
            self.now(),
            version,
        )?)
    }

    /// The relay's delivery state of the message `id` this principal sent; `None` if the relay
    /// never accepted a message with that id from us (`NOT_FOUND`).
    pub async fn status(&self, id: &[u8]) -> Result<Option<pb::StatusResponse>, ClientError> {
        match self
            .conn
            .mailbox()
            .status(pb::StatusRequest {
                message_id: id.to_vec(),
            })
            .await
        {
            Ok(r) => Ok(Some(r.into_inner())),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(s.into()),
        }
    }

    /// Opens a delivered envelope (no acknowledgement). The outer error is a failure to look up
    /// keys (network, relay): the message must not be rejected for it, only retried later.
    pub async fn open(
        &self,
        delivered: &pb::DeliveredEnvelope,
    ) -> Result<Result<Opened, Rejected>, ClientError> {
        // The relay's clock as last seen: retired device keys are deleted only while the
        // local clock is not far ahead of it (retention::sweep_retired_keys).
        if let Some(accepted) = delivered
            .accepted_at
            .and_then(|t| SystemTime::try_from(t).ok())
            && let Err(e) = crate::retention::note_relay_time(&self.state_dir, accepted, self.now())
        {
            tracing::warn!(error = %e, "the relay's time could not be recorded; retired keys are kept longer");
        }
        let mut candidates: HashMap<(String, String), VerifiedBundle> = HashMap::new();
        let mut add = |keys: Vec<VerifiedBundle>| {
            for k in keys {
                candidates.insert((k.principal.to_string(), k.device_id.clone()), k);
            }
        };
        if let Ok(p) = delivered.sender.parse::<Principal>() {
            add(self.keys_of(&p).await?);
        }
        let now = self.now();
        let mut first = open_at(
            delivered,
            &self.me,
            &self.keys,
            |p, d| candidates.get(&(p.to_owned(), d.to_owned())).cloned(),
            now,
        );
        // Signed by the sender's device with a key it has since rotated away from (or one no
        // longer active): look in the device's key history for a bundle published before the
        // relay accepted the message, still chaining to the CA and not revoked. A superseded
        // key is not a compromised one; a revoked certificate's key stays refused.
        if let Err(r) = &first
            && superseded_key_may_explain(r, &delivered.sender)
            && let Ok(p) = delivered.sender.parse::<Principal>()
        {
            let history = self.key_history(&p, delivered).await?;
            if !history.is_empty() {
                let current = candidates.clone();
                first = open_any_at(
                    delivered,
                    &self.me,
                    &self.keys,
                    |p, d| {
                        current
                            .get(&(p.to_owned(), d.to_owned()))
                            .cloned()
                            .into_iter()
                            .chain(
                                history
                                    .into_iter()
                                    .filter(|b| b.principal.to_string() == p && b.device_id == d),
                            )
                            .collect()
                    },
                    now,
                );
            }
        }
        // The signer may be another principal than the sender (a forwarded message): look it up
        // too, so the rejection names the real problem.
        if let Err(r) = &first
            && r.reason == pb::RejectionReason::UntrustedSenderKey
            && let Some(p) = signed_sender_hint(r).and_then(|s| s.parse::<Principal>().ok())
            && p.to_string() != delivered.sender
        {
            let keys = self.keys_of(&p).await?;
            let map: HashMap<_, _> = keys
                .into_iter()
                .map(|k| ((k.principal.to_string(), k.device_id.clone()), k))
                .collect();
            return Ok(open_at(
                delivered,
                &self.me,
                &self.keys,
                |p, d| map.get(&(p.to_owned(), d.to_owned())).cloned(),
                now,
            ));
        }
        Ok(first)
    }

    /// The earlier bundles of `principal`'s devices that may have signed `delivered`: per
    /// device, only the bundle that was its current keys when the relay accepted the message
    /// (the greatest log index below the message's, computed here from the whole history; not
    /// one the relay says was retired at or before the message), whose certificate chains to the
    /// CA and is not revoked (by the freshest CRLs known), checked at the acceptance time (a
    /// certificate that expired since the message was accepted does not make it unreadable).
    /// A key rotated away from, or a retired device's, does not verify later messages.
    ///
    /// The history (oldest first, in log order) is read page by page until a page reaches the
    /// message's log index (later bundles cannot matter), at most [`HISTORY_PAGES`] pages;
    /// only one bundle per device is kept while reading.
    pub async fn key_history(
        &self,
        principal: &Principal,
        delivered: &pb::DeliveredEnvelope,
    ) -> Result<Vec<VerifiedBundle>, ClientError> {
        let now = self.now();
        let accepted = delivered
            .accepted_at
            .and_then(|t| SystemTime::try_from(t).ok())
            .map_or(now, |t| t.min(now));
        let at = UnixTime::since_unix_epoch(
            accepted
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
        );
        let mut current = CurrentAt::new(delivered.log_index);
        let mut crls = self.state.crls()?;
        let mut token = String::new();
        let mut complete = false;
        for page in 0..HISTORY_PAGES {
            let resp = self
                .conn
                .directory()
                .get_keys(pb::GetKeysRequest {
                    principal: principal.to_string(),
                    include_history: true,
                    page_token: token.clone(),
                })
                .await?
                .into_inner();
            crls.extend(resp.crls.iter().cloned());
            // The history is in log order: once it reaches the message, later pages hold
            // nothing that can matter. (The active bundles say nothing about that.)
            let reached = resp
                .history
                .iter()
                .any(|b| b.log_index >= delivered.log_index);
            if page == 0 {
                // The current bundles count too (the same ones the history ends with).
                resp.active
                    .into_iter()
                    .for_each(|b| offer_published(&mut current, b));
            }
            resp.history
                .into_iter()
                .for_each(|b| offer_published(&mut current, b));
            if resp.next_page_token.is_empty() || reached {
                complete = true;
                break;
            }
            token = resp.next_page_token;
        }
        if !complete {
            // Not seen up to the message: a later bundle of a device may be missing, so an
            // older key would pass as current. Verify against nothing rather than that.
            tracing::warn!(principal = %principal, pages = HISTORY_PAGES, log_index = delivered.log_index, "key history longer than the client reads; earlier keys not used");
            return Ok(Vec::new());
        }
        let verified_crls = self.trust.freshest_crls(crls);
        self.state.keep_crls(&verified_crls)?;
        let crls: Vec<Vec<u8>> = verified_crls.iter().map(|c| c.der().to_vec()).collect();
        Ok(current
            .into_selected()
            .into_iter()
            .filter_map(|(log_index, published)| {
                let bundle = published.bundle.as_ref()?;
                match self.trust.verify(bundle, &crls, at) {
                    Ok(v) if &v.principal == principal => Some(v),
                    Ok(_) => None,
                    Err(e) => {
                        tracing::debug!(principal = %principal, log_index, error = %e, "earlier key bundle not trusted; not used");
                        None
                    }
                }
            })
            .collect())
    }

    /// The local state.
    pub fn state(&self) -> &State {
        &self.state
    }
}

/// One recipient's delivery state (moved to [`crate::record`]; named here too).
pub use crate::record::{ACK_NOT_VERIFIED, DeliveryState, DeliveryStatus};

/// Pages of a principal's key history read at most when a message does not verify with the
/// sender's current keys (the relay sends at most 100 bundles a page): 102,400 bundles before
/// the message, five times what the relay's largest per-principal allowance holds at its
/// default (200 devices x 100 bundles), while bounding the round trips one message can cost.
/// Only one bundle per device is kept while reading, so memory does not grow with the pages.
pub const HISTORY_PAGES: usize = 1024;

/// Offers a bundle of a principal's key history to `current`, attributed to a device by what its
/// content says; whether it is genuine is checked for the selected bundles only. A bundle that
/// does not even decode cannot have signed anything.
fn offer_published(current: &mut CurrentAt<pb::PublishedBundle>, published: pb::PublishedBundle) {
    let Some(device) = published
        .bundle
        .as_ref()
        .and_then(|b| pb::KeyBundleContent::decode(b.content.as_slice()).ok())
        .map(|c| c.device_id)
    else {
        return;
    };
    let (index, superseded) = (published.log_index, published.superseded_at_index);
    current.offer(&device, index, superseded, published);
}

/// Whether a rejection may be a message signed with an earlier key of the sender's device: the
/// signature did not verify with the current key, or the device has no current key, and the
/// signer named is the authenticated sender.
fn superseded_key_may_explain(r: &Rejected, sender: &str) -> bool {
    match r.reason {
        pb::RejectionReason::BadSignature => r
            .detail
            .strip_prefix("signature does not verify with ")
            .and_then(|rest| rest.split(' ').next())
            .is_some_and(|p| p == sender),
        pb::RejectionReason::UntrustedSenderKey => signed_sender_hint(r) == Some(sender),
        _ => false,
    }
}

/// The principal named in an UNTRUSTED_SENDER_KEY rejection ("no valid key for P device D").
fn signed_sender_hint(r: &Rejected) -> Option<&str> {
    r.detail
        .strip_prefix("no valid key for ")?
        .split(' ')
        .next()
}

/// The principal and trust domain of our own certificate.
pub fn own_identity(cert_pem: &[u8]) -> Result<(Principal, String), ClientError> {
    use rustls_pki_types::{CertificateDer, pem::PemObject as _};
    let der = CertificateDer::pem_slice_iter(cert_pem)
        .next()
        .ok_or_else(|| ClientError::Config("certificate file holds no certificate".into()))?
        .map_err(|e| ClientError::Config(format!("certificate: {e}")))?;
    let uri = x509_uri(&der)
        .ok_or_else(|| ClientError::Config("certificate has no spiffe:// identity".into()))?;
    let id = silta_certs::SpiffeId::parse(&uri)
        .map_err(|e| ClientError::Config(format!("certificate: {e}")))?;
    // Same checks as the relay makes (EKU, one identity).
    client_identity(&der, &id.trust_domain)
        .map_err(|e| ClientError::Config(format!("certificate: {e}")))?;
    Ok((id.principal, id.trust_domain))
}

fn x509_uri(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let san = cert.subject_alternative_name().ok().flatten()?;
    san.value.general_names.iter().find_map(|n| match n {
        x509_parser::extensions::GeneralName::URI(u) if u.starts_with("spiffe://") => {
            Some(u.to_string())
        }
        _ => None,
    })
}
