//! The centre daemon (`silta daemon`): integration with a case-management system through folders.
//!
//! - `outbox/`: a form file (TOML, or JSON if it ends in `.json`, with an `[envelope]` table; see
//!   [`crate::form`]) dropped here is claimed (renamed into `queued/` under its new message id, so
//!   a later file of the same name is a new form), validated, queued, sealed and sent. Write it
//!   elsewhere and move it in, or give it a name starting with `.` until it is complete: names
//!   starting with `.` and ending in `.tmp`/`.part`/`~` are not picked up, nor files changed in
//!   the last `settle_ms`.
//! - `queued/`: forms waiting to be sent, as `<message-id>.<name>`.
//! - `sent/`: the form, and beside it `<name>.status.json` with its receipt and its delivery state
//!   per recipient (delivered, acknowledged, rejected with reason, expired), updated as status
//!   events arrive.
//! - `failed/`: a form that cannot be sent, beside `<name>.error` saying why in plain words.
//! - `inbox/`: every message received, opened and verified, as `<message-id>-<kind>.json`,
//!   written atomically (temporary file, fsync, rename, mode 0600) before it is acknowledged.
//! - `notify/`: a content-free notification for every new message and every item due or
//!   overdue ([`notify`]), and the `[daemon] notify_command` hook.
//!
//! The queue lives in a sled database (`STATE_DIR/daemon-db`). A form's message id is assigned
//! and stored before the first attempt; sending goes through the library's outbox
//! ([`crate::outbox`]), keyed by that id, which keeps the sealed message before it is first sent
//! and logs the disclosure first, so every retry sends the same bytes and the relay answers it
//! idempotently: a restart at any point neither loses a form nor sends one twice. Sending retries with exponential backoff
//! and jitter while the relay is unreachable.

use std::{path::PathBuf, time::Duration, time::Instant};

use prost::Message as _;
use silta_certs::Principal;
use silta_proto::pb;

use crate::{
    access::AccessLog,
    client::{Client, ClientError, DeliveryStatus, Received},
    config::ClientConfig,
    form::read_envelope_form,
    fsutil::write_atomic,
    outbox::{Disclosure, Key, Outbox},
    payload::kind_name,
    receive::Opener,
    record::MessageRecord,
    seal::SealError,
    times::now_rfc3339,
};

mod folders;
pub mod notify;
mod queue;
pub mod resend;

pub use crate::config::Folders;
use queue::{Job, JobState, form_key};

/// A daemon failure that stops it (local storage, folders).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The queue database failed.
    #[error("daemon queue ({path}): {error}")]
    Queue {
        /// Where.
        path: PathBuf,
        /// What.
        error: String,
    },
    /// A folder cannot be used.
    #[error("{0}")]
    Folder(String),
    /// Configuration.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// How an attempt failed.
enum Failure {
    /// Try again later; `reconnect` if the connection itself is in doubt.
    Retry { reason: String, reconnect: bool },
    /// Will never work: the form goes to failed/.
    Permanent(String),
}

/// The daemon.
pub struct Daemon {
    config: ClientConfig,
    folders: Folders,
    db: sled::Db,
    jobs: sled::Tree,
    names: sled::Tree,
    envelopes: sled::Tree,
    pending: sled::Tree,
    me: Principal,
    access: AccessLog,
    /// Size and modification time of each outbox file at the scan it was first seen unchanged
    /// since, so a file is taken only once it stopped changing (whatever the clocks say).
    settling:
        std::sync::Mutex<std::collections::HashMap<String, (u64, std::time::SystemTime, Instant)>>,
    /// Held while the daemon runs: one daemon per folder.
    _lock: std::fs::File,
    /// A claimed file could not be queued: look through queued/ again at the next scan.
    recover_pending: std::sync::atomic::AtomicBool,
    /// Resend requests that failed for now: (attempts, not before).
    resend_waiting: std::sync::Mutex<std::collections::HashMap<String, (u32, Instant)>>,
    /// Content-free notifications (notify/, the hook).
    notifier: notify::Notifier,
}

impl Daemon {
    /// Opens the queue and creates the folders.
    pub fn open(config: &ClientConfig) -> Result<Self, DaemonError> {
        let cert = std::fs::read(&config.cert)
            .map_err(|e| ClientError::Config(format!("{}: {e}", config.cert.display())))?;
        let (me, _) = crate::client::own_identity(&cert)?;
        let folders = Folders::under(&config.daemon.folder);
        folders::create(&folders)?;
        let notifier = notify::Notifier::new(config, folders.notify.clone());
        let lock_path = config.daemon.folder.join(".silta-daemon.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| DaemonError::Folder(format!("{}: {e}", lock_path.display())))?;
        if lock.try_lock().is_err() {
            return Err(DaemonError::Folder(format!(
                "another silta daemon is using {} (one daemon per folder)",
                config.daemon.folder.display()
            )));
        }
        crate::fsutil::ensure_private_dir(&config.state_dir).map_err(DaemonError::Folder)?;
        let path = config.state_dir.join("daemon-db");
        let q = |error: sled::Error| DaemonError::Queue {
            path: path.clone(),
            error: error.to_string(),
        };
        let db = sled::open(&path).map_err(q)?;
        Ok(Daemon {
            jobs: db.open_tree("msgid_job").map_err(q)?,
            names: db.open_tree("namedigest_msgid").map_err(q)?,
            envelopes: db.open_tree("msgid_envelope").map_err(q)?,
            pending: db.open_tree("msgid_pending").map_err(q)?,
            db,
            config: config.clone(),
            folders,
            me,
            access: AccessLog::in_state_dir(&config.state_dir),
            settling: Default::default(),
            _lock: lock,
            recover_pending: Default::default(),
            resend_waiting: Default::default(),
            notifier,
        })
    }

    /// The folders.
    pub fn folders(&self) -> &Folders {
        &self.folders
    }

    /// Runs until `shutdown` completes; then finishes the step in progress and returns.
    pub async fn run(
        &self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), DaemonError> {
        tokio::pin!(shutdown);
        let cfg = &self.config.daemon;
        let mut tick = tokio::time::interval(Duration::from_millis(cfg.scan_interval_ms.max(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut client: Option<Client> = None;
        let mut stream: Option<tonic::Streaming<pb::MailboxItem>> = None;
        let mut connect_attempts = 0u32;
        let mut next_connect = Instant::now();
        // When the current subscription was opened (the client's clock): a deferred message due
        // since then has not come again on it.
        let mut subscribed_at = std::time::SystemTime::UNIX_EPOCH;
        let mut next_sweep = Instant::now();
        // What falls due is looked at every minute (and after each message received).
        let mut next_due_check = Instant::now();
        // Expiring certificate and CRLs: logged at start (once connected, with the CRLs kept
        // from the relay) and daily.
        let mut next_expiry_check = Instant::now();
        tracing::info!(principal = %self.me, folder = %cfg.folder.display(), relay = %self.config.relay, "silta daemon started");
        self.recover()?;
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => {
                    self.scan_outbox()?;
                    // Claimed files whose queueing failed are tried again (only then: the
                    // queued/ folder is not listed on every scan).
                    if self.recover_pending.swap(false, std::sync::atomic::Ordering::Relaxed) {
                        self.recover()?;
                    }
                    if client.is_none() && Instant::now() >= next_connect {
                        match self.connect().await {
                            Ok((c, s)) => {
                                tracing::info!(relay = %self.config.relay, "connected to the relay");
                                connect_attempts = 0;
                                subscribed_at = c.now();
                                client = Some(c);
                                stream = Some(s);
                            }
                            Err(e) => {
                                let delay = self.backoff(connect_attempts);
                                connect_attempts = connect_attempts.saturating_add(1);
                                next_connect = Instant::now() + delay;
                                tracing::warn!(relay = %self.config.relay, error = %e, retry_in_s = delay.as_secs_f32(), "{}", todo(&e));
                            }
                        }
                    }
                    if Instant::now() >= next_expiry_check {
                        next_expiry_check = Instant::now() + Duration::from_secs(86_400);
                        let now = client.as_ref().map_or_else(std::time::SystemTime::now, Client::now);
                        let relay_crls = client.as_ref().and_then(|c| c.state().crls().ok()).unwrap_or_default();
                        crate::expiry::log(&crate::expiry::installation(&self.config, now, &relay_crls));
                    }
                    if Instant::now() >= next_due_check {
                        next_due_check = Instant::now() + Duration::from_secs(60);
                        self.notify_due().await;
                    }
                    // Retention: a closed case's plaintext goes after its period (crate::retention).
                    if Instant::now() >= next_sweep {
                        next_sweep = Instant::now() + Duration::from_millis(self.config.retention.sweep_interval_ms.max(10));
                        let now = client.as_ref().map_or_else(std::time::SystemTime::now, Client::now);
                        crate::retention::daemon_sweep(&self.config, client.as_ref().map(Client::state), &self.folders, &self.jobs, &self.me.to_string(), now);
                    }
                    if let Some(c) = &client
                        && self.send_due(c).await?
                    {
                        client = None;
                        stream = None;
                    }
                    // `silta resend` requests (resend/), through the same send path.
                    if let Some(c) = &client
                        && self.resend_requested(c).await?
                    {
                        client = None;
                        stream = None;
                    }
                    // A received message skipped for now (its sender's keys could not be fetched)
                    // comes again only on a new subscription: open one once its try is due.
                    if let Some(c) = &client {
                        match self.resubscribe_if_due(c, &mut subscribed_at).await {
                            Ok(Some(s)) => stream = Some(s),
                            Ok(None) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "{}", todo(&e));
                                client = None;
                                stream = None;
                                next_connect = Instant::now() + self.backoff(0);
                            }
                        }
                    }
                }
                item = next_item(&mut stream) => {
                    let drop_connection = match item {
                        Some(Ok(item)) => match &client {
                            Some(c) => self.handle_item(c, item).await?,
                            None => true,
                        },
                        Some(Err(status)) => {
                            tracing::warn!(code = ?status.code(), error = %status.message(), "subscription ended; reconnecting");
                            true
                        }
                        None => {
                            tracing::info!("the relay ended the subscription (restarting?); reconnecting");
                            true
                        }
                    };
                    if drop_connection {
                        client = None;
                        stream = None;
                        next_connect = Instant::now() + self.backoff(0);
                    }
                }
            }
        }
        drop(stream);
        drop(client);
        self.db
            .flush_async()
            .await
            .map_err(|e| self.queue_error(e))?;
        tracing::info!("silta daemon stopped");
        Ok(())
    }

    async fn connect(&self) -> Result<(Client, tonic::Streaming<pb::MailboxItem>), ClientError> {
        let client = Client::start(&self.config).await?;
        let stream = subscribe(&client).await?;
        Ok((client, stream))
    }

    /// A new subscription if a deferred received message became due for another try since the
    /// current one was opened (a message that never comes again, e.g. expired at the relay,
    /// causes one resubscription, not one per scan).
    async fn resubscribe_if_due(
        &self,
        client: &Client,
        subscribed_at: &mut std::time::SystemTime,
    ) -> Result<Option<tonic::Streaming<pb::MailboxItem>>, ClientError> {
        let now = client.now();
        let due = client
            .next_retry_after(*subscribed_at)?
            .is_some_and(|t| t <= now);
        if !due {
            return Ok(None);
        }
        let stream = subscribe(client).await?;
        *subscribed_at = now;
        tracing::info!("subscribed again to retry messages skipped earlier");
        Ok(Some(stream))
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let cfg = &self.config.daemon;
        let base = cfg
            .retry_initial_ms
            .saturating_mul(1u64 << attempts.min(20))
            .min(cfg.retry_max_ms.max(cfg.retry_initial_ms));
        // Equal jitter: half fixed, half random, so many daemons do not retry in step.
        let mut r = [0u8; 8];
        let _ = getrandom::fill(&mut r);
        let jitter = u64::from_le_bytes(r) % (base / 2 + 1);
        Duration::from_millis(base / 2 + jitter)
    }

    /// Sends what is due. Returns whether the connection should be dropped.
    async fn send_due(&self, client: &Client) -> Result<bool, DaemonError> {
        let now = now_ms();
        let due: Vec<Job> = self
            .pending()?
            .into_iter()
            .filter(|j| j.next_attempt_ms <= now)
            .collect();
        for mut job in due {
            match self.attempt(client, &mut job).await? {
                Ok(()) => {}
                Err(Failure::Permanent(reason)) => {
                    job.state = JobState::Failed;
                    job.last_error = reason.clone();
                    self.put(&job)?;
                    // A failed form may be put into the outbox again under the same name.
                    let key = form_key(&job.file_name, &job.form);
                    self.names
                        .remove(key.as_ref())
                        .map_err(|e| self.queue_error(e))?;
                    let id = uuid::Uuid::parse_str(&job.message_id).expect("our own ids parse");
                    let name = job.file_name.clone();
                    self.fail_claimed(id, &name, &reason)?;
                    job.filed = true;
                    job.form.clear(); // failed/ has it now
                    self.put(&job)?;
                }
                Err(Failure::Retry { reason, reconnect }) => {
                    let delay = self.backoff(job.attempts);
                    job.attempts = job.attempts.saturating_add(1);
                    job.next_attempt_ms = now_ms() + delay.as_millis() as u64;
                    job.last_error = reason.clone();
                    self.put(&job)?;
                    tracing::warn!(file = %job.file_name, message_id = %job.message_id, attempt = job.attempts, error = %reason, retry_in_s = delay.as_secs_f32(), "sending failed; will retry");
                    if reconnect {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    /// One try of `job` through the library's outbox (id, sealed copy kept, disclosure logged,
    /// sent, receipt checked); the daemon keeps its folders.
    async fn attempt(
        &self,
        client: &Client,
        job: &mut Job,
    ) -> Result<Result<(), Failure>, DaemonError> {
        let id = uuid::Uuid::parse_str(&job.message_id).expect("our own ids parse");
        let (header, payload) = match read_envelope_form(&job.form, job.json) {
            Ok(x) => x,
            Err(e) => return Ok(Err(Failure::Permanent(format!("the form is invalid: {e}")))),
        };
        let draft = header.draft(*id.as_bytes(), payload);
        let key = Key::MessageId(*id.as_bytes());
        let outbox = Outbox::open(client.state(), self.access.clone())?;
        // A queue of an earlier version: the envelope it sealed and kept is sent as it is.
        if job.state == JobState::Sealed
            && let Some(bytes) = self
                .envelopes
                .get(id.as_bytes())
                .map_err(|e| self.queue_error(e))?
        {
            let envelope =
                pb::Envelope::decode(bytes.as_ref()).map_err(|e| DaemonError::Queue {
                    path: self.config.state_dir.join("daemon-db"),
                    error: format!("stored envelope: {e}"),
                })?;
            outbox.adopt(&key, &envelope, client.now())?;
        }
        let disclosure = Disclosure {
            who: "process:silta-daemon".into(),
            // What the kind is for: the case system's purpose in sending it.
            purpose: crate::payload::send_purpose(draft.kind).into(),
            // sent/ is the daemon's copy, under the case system's retention.
            keep_copy: false,
        };
        let sent = match outbox.submit(client, &draft, &key, &disclosure).await {
            Ok(sent) => sent,
            Err(e) => return Ok(Err(failure(e))),
        };
        job.ciphertext_sha256 = hex::encode(&sent.ciphertext_sha256);
        job.log_index = sent.receipt.log_index;
        job.receipt_checked = sent.receipt_checked;
        match &sent.receipt_problem {
            // Accepted, but the receipt does not prove it was logged: keep it, say so.
            Some(problem) => {
                tracing::error!(message_id = %job.message_id, problem = %problem, "the relay's receipt does not check out; keep the status file and report this");
                job.receipt_problem = problem.clone();
            }
            None => job.receipt = Some(crate::audit::receipt_json(&sent.receipt)),
        }
        for problem in sent
            .problems
            .iter()
            .filter(|_| sent.receipt_problem.is_none())
        {
            tracing::error!(message_id = %job.message_id, problem = %problem, "form sent, but a record could not be written");
        }
        job.state = JobState::Sent;
        job.sent_at = now_rfc3339();
        job.last_error.clear();
        tracing::info!(file = %job.file_name, message_id = %job.message_id, log_index = job.log_index, again = sent.again, "form sent");
        self.file_sent(job)?;
        Ok(Ok(()))
    }

    /// Processes one mailbox item. Returns whether the connection should be dropped.
    async fn handle_item(
        &self,
        client: &Client,
        item: pb::MailboxItem,
    ) -> Result<bool, DaemonError> {
        if let Some(pb::mailbox_item::Item::Status(s)) = &item.item {
            // The state file is updated before the status item is confirmed.
            if let Some(mut job) = self.get(&s.message_id)? {
                // Only the recipients it was sent to: a status for anyone else (a relay that
                // misbehaves) is not kept, so it can never make a re-sending go to them.
                let ours = job
                    .summary
                    .as_ref()
                    .is_none_or(|sum| sum.to.is_empty() || sum.to.contains(&s.recipient));
                if !ours {
                    tracing::warn!(message_id = %job.message_id, recipient = ?s.recipient, "the relay reports a status for a recipient the message was not sent to; ignored");
                }
                let newer = ours
                    && job
                        .recipients
                        .get(&s.recipient)
                        .is_none_or(|r| r.log_index <= s.log_index);
                if newer {
                    // An acknowledgement counts only if the recipient's device signed it.
                    let ack = if s.state == pb::DeliveryState::Acknowledged as i32 {
                        let digest = hex::decode(&job.ciphertext_sha256).unwrap_or_default();
                        let checked = match client.check_ack(s, &digest).await {
                            Ok(checked) => checked,
                            Err(e) => {
                                // No verdict: the status item stays unconfirmed and comes again.
                                tracing::warn!(error = %e, message_id = %job.message_id, "could not check an acknowledgement now; reconnecting");
                                return Ok(true);
                            }
                        };
                        if let Err(why) = &checked {
                            tracing::error!(message_id = %job.message_id, recipient = %s.recipient, problem = %why, "the relay reports an acknowledgement that does NOT verify; the status file says so");
                        }
                        Some(checked)
                    } else {
                        None
                    };
                    let status = DeliveryStatus::checked(s, ack);
                    if !status.what_to_do.is_empty() {
                        tracing::warn!(message_id = %job.message_id, recipient = %s.recipient, reason = %status.reason, what_to_do = %status.what_to_do, "a copy of a sent form cannot be opened by its recipient; the status file says what to do");
                    }
                    job.recipients.insert(s.recipient.clone(), status);
                    self.put(&job)?;
                    if job.state == JobState::Sent && !job.sent_base.is_empty() {
                        self.write_status(&job)?;
                    }
                }
                tracing::info!(
                    message_id = %job.message_id,
                    recipient = %s.recipient,
                    state = pb::DeliveryState::try_from(s.state).unwrap_or_default().as_str_name(),
                    "delivery state"
                );
            }
            return Ok(match client.ack_status(item.seq).await {
                Ok(()) => false,
                Err(e) => {
                    tracing::warn!(error = %e, "could not confirm a status item; reconnecting");
                    true
                }
            });
        }
        let inbox = &self.folders.inbox;
        let internal_dir = &self.folders.internal;
        let me = self.me.to_string();
        let opener = Opener {
            log: &self.access,
            who: "process:silta-daemon",
            principal: &me,
            purpose: &self.config.daemon.purpose,
        };
        // The library logs the opening (as `opener`) before this keeps it.
        let mut keep = |delivered: &pb::DeliveredEnvelope,
                        opened: &crate::seal::Opened|
         -> Result<(), String> {
            let record = MessageRecord::opened(delivered, opened);
            // Case claims and access-log shares are the bookkeeping of a principal's desks, not
            // case messages: kept in internal/, never in inbox/ (a case system reading inbox/
            // would take them for correspondence).
            let dir = if internal(opened) {
                internal_dir
            } else {
                inbox
            };
            let path = dir.join(format!("{}-{}.json", record.message_id, record.kind));
            if !path.exists() {
                write_atomic(
                    &path,
                    serde_json::to_string_pretty(&record)
                        .expect("json")
                        .as_bytes(),
                )?;
            }
            Ok(())
        };
        match client.process(item, &opener, &mut keep).await {
            Ok(Received::Message { delivered, opened }) => {
                tracing::info!(
                    message_id = %uuid::Uuid::from_slice(&opened.signed.message_id).unwrap_or_default(),
                    kind = %kind_name(pb::MessageKind::try_from(opened.signed.kind).unwrap_or_default()),
                    from = %opened.signed.sender,
                    "message received into inbox/"
                );
                if internal(&opened) {
                    // No "message" notification for desk bookkeeping.
                    return Ok(false);
                }
                let record = MessageRecord::opened(&delivered, &opened);
                self.notifier
                    .notify(&notify::Notification::message(&record))
                    .await;
                // What the new message makes due, now; all of inbox/ is looked at once a
                // minute (`run`), not after every message.
                let items = crate::due::due_items(
                    std::slice::from_ref(&record),
                    std::time::SystemTime::now(),
                    None,
                );
                self.notifier.due(&items).await;
                Ok(false)
            }
            Ok(Received::Rejected {
                delivered,
                rejected,
            }) => {
                tracing::warn!(from = %delivered.sender, reason = rejected.reason.as_str_name(), detail = %rejected.detail, "message rejected (the sender sees the reason)");
                Ok(false)
            }
            // Logged (sender, message id, try) where it was decided; the subscription goes on,
            // so the messages behind it are not held up. It comes again on the next
            // subscription, which `run` opens when its retry is due.
            Ok(Received::Deferred { .. }) => Ok(false),
            Ok(Received::NotForThisDesk { delivered }) => {
                tracing::warn!(from = %delivered.sender, "a message sealed before this desk's keys were published: open it at another desk of this principal");
                Ok(false)
            }
            Ok(Received::Duplicate { .. }) | Ok(Received::Status(_)) => Ok(false),
            Err(e) => {
                tracing::warn!(error = %e, "{}", todo(&e));
                Ok(true)
            }
        }
    }
}

impl Daemon {
    /// Notifies what fell due or overdue among the messages in inbox/ (each once as due, once
    /// as overdue while the daemon runs). An information request counts as answered once a
    /// form replying to it (`in_reply_to`) was sent from outbox/. Reads all of inbox/ and sent/:
    /// `run` calls it once a minute.
    async fn notify_due(&self) {
        let mut records: Vec<MessageRecord> = std::fs::read_dir(&self.folders.inbox)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect();
        records.extend(self.sent_replies());
        let items = crate::due::due_items(&records, std::time::SystemTime::now(), None);
        self.notifier.due_all(&items).await;
    }

    /// What this daemon sent in reply to something (kind, case and in_reply_to only), from the
    /// forms in sent/, so an answered request is no longer due.
    fn sent_replies(&self) -> Vec<MessageRecord> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.folders.sent)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name.ends_with(".status.json") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(e.path()) else {
                continue;
            };
            let Ok((header, _)) = read_envelope_form(&text, name.ends_with(".json")) else {
                continue;
            };
            let Some(reply) = header.in_reply_to else {
                continue;
            };
            let record = serde_json::json!({
                "accepted_at": "", "case": hex::encode(header.case_ref), "created_at": "",
                "from": self.me.to_string(), "kind": kind_name(header.kind),
                "legal_basis": "", "log_index": 0,
                "message_id": uuid::Uuid::nil().to_string(),
                "in_reply_to": uuid::Uuid::from_bytes(reply).to_string(), "payload": {},
                "to": [], "urgency": "",
            });
            if let Ok(r) = serde_json::from_value(record) {
                out.push(r);
            }
        }
        out
    }
}

async fn next_item(
    stream: &mut Option<tonic::Streaming<pb::MailboxItem>>,
) -> Option<Result<pb::MailboxItem, tonic::Status>> {
    match stream {
        Some(s) => s.message().await.transpose(),
        None => std::future::pending().await,
    }
}

/// What a failed try means for a form, by [`ClientError::kind`]; the words are for failed/
/// and the log.
fn failure(e: ClientError) -> Failure {
    use tonic::Code;
    let kind = e.kind();
    if !kind.is_permanent() {
        return Failure::Retry {
            reason: match &e {
                ClientError::Relay(s) if s.code() == Code::Unauthenticated => format!(
                    "the relay no longer accepts this certificate (revoked?): {}",
                    s.message()
                ),
                ClientError::Relay(s) if s.code() == Code::ResourceExhausted => {
                    format!("the relay is full for now: {}", s.message())
                }
                ClientError::Relay(s) => format!(
                    "the relay could not be reached or failed: {} ({:?})",
                    s.message(),
                    s.code()
                ),
                other => other.to_string(),
            },
            reconnect: kind.needs_reconnect(),
        };
    }
    Failure::Permanent(match &e {
        ClientError::Seal(SealError::NoKeys(p)) => format!(
            "{p} has not published its keys, so nothing can be sealed for it. Ask them to run `silta init` (or `silta keys publish`), then put the form into outbox/ again."
        ),
        ClientError::Seal(SealError::Invalid(e)) => format!("the form is invalid: {e}"),
        ClientError::Relay(s) => match s.code() {
            Code::NotFound => format!(
                "the relay does not know a recipient: {}. Check the `to` principals (role/id).",
                s.message()
            ),
            Code::PermissionDenied => format!(
                "the relay refused: {}. This installation may not send this kind to these recipients.",
                s.message()
            ),
            Code::AlreadyExists => format!(
                "the relay already holds a different message with this id: it may have been sent before; check sent/ and the delivery log before sending it again ({})",
                s.message()
            ),
            code => format!("the relay refused the message: {} ({code:?})", s.message()),
        },
        other => format!("{other}; {}", other.hint()),
    })
}

/// What the log says to do about a failure to connect or to receive.
fn todo(e: &ClientError) -> String {
    match e {
        ClientError::Connect(crate::ConnectError::Unreachable(_)) => {
            "relay unreachable; will retry (is it running, and is `relay` in the configuration right?)".into()
        }
        _ => format!("will retry; {}", e.hint()),
    }
}

fn now_ms() -> u64 {
    crate::times::unix_ms(std::time::SystemTime::now())
}

/// Subscribes to this client's mailbox.
async fn subscribe(client: &Client) -> Result<tonic::Streaming<pb::MailboxItem>, ClientError> {
    Ok(client
        .connection()
        .mailbox()
        .subscribe(client.subscribe_request())
        .await?
        .into_inner())
}

#[cfg(test)]
mod tests;

/// Whether `opened` is of a principal-internal kind (a case claim, an access-log share).
fn internal(opened: &crate::seal::Opened) -> bool {
    silta_proto::policy::is_internal(
        pb::MessageKind::try_from(opened.signed.kind).unwrap_or_default(),
    )
}
