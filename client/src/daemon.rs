//! The centre daemon (`silta daemon`): integration with a case-management system through folders.
//!
//! - `outbox/`: a form file (TOML, or JSON if it ends in `.json`, with an `[envelope]` table; see
//!   [`crate::form`]) dropped here is validated, given a message id, queued, sealed and sent.
//!   Write it elsewhere and move it in, or give it a name starting with `.` until it is complete:
//!   names starting with `.` and names ending in `.tmp`/`.part`/`~` are not picked up.
//! - `sent/`: the form, and beside it `<name>.status.json` with its receipt and its delivery state
//!   per recipient (delivered, acknowledged, rejected with reason, expired), updated as status
//!   events arrive.
//! - `failed/`: a form that cannot be sent, beside `<name>.error` saying why in plain words.
//! - `inbox/`: every message received, opened and verified, as `<message-id>-<kind>.json`,
//!   written atomically (temporary file, fsync, rename, mode 0600) before it is acknowledged.
//!
//! The queue lives in a sled database (`STATE_DIR/daemon-db`). A form's message id is assigned
//! and stored before the first attempt, and the sealed envelope is stored before it is first
//! sent, so every retry sends the same bytes and the relay answers it idempotently: a restart at
//! any point neither loses a form nor sends one twice. Sending retries with exponential backoff
//! and jitter while the relay is unreachable.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use prost::Message as _;
use serde::{Deserialize, Serialize};
use silta_certs::Principal;
use silta_proto::pb;
use sled::Transactional as _;

use crate::{
    access::{Access, AccessLog, Action},
    client::{Client, ClientConfig, ClientError, Received, message_record, rfc3339},
    form::{legal_basis_name, read_envelope_form, urgency_name},
    fsutil::{create_private_dir, move_file, write_atomic},
    payload::kind_name,
    seal::SealError,
};

/// `[daemon]` in the client configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// The folder holding outbox/, sent/, failed/ and inbox/ (relative to the configuration).
    pub folder: PathBuf,
    /// How often the outbox is scanned, in milliseconds.
    pub scan_interval_ms: u64,
    /// First retry delay after a failed attempt, in milliseconds (doubled each time, with jitter).
    pub retry_initial_ms: u64,
    /// Longest retry delay, in milliseconds.
    pub retry_max_ms: u64,
    /// The purpose recorded in the access log when the daemon opens received messages.
    pub purpose: String,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            folder: PathBuf::from("silta-folders"),
            scan_interval_ms: 1000,
            retry_initial_ms: 1000,
            retry_max_ms: 60_000,
            purpose: "passing received messages to the case-management system".into(),
        }
    }
}

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

/// Where a queued form is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum JobState {
    /// Id assigned; not sealed yet.
    Queued,
    /// Sealed envelope stored; being sent.
    Sealed,
    /// Accepted by the relay.
    Sent,
    /// Will not be sent (the reason is in failed/).
    Failed,
}

/// One recipient's delivery state, as status events report it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RecipientState {
    state: String,
    time: String,
    log_index: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    detail: String,
}

/// A form in the queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Job {
    message_id: String,
    file_name: String,
    form: String,
    json: bool,
    state: JobState,
    queued_at: String,
    attempts: u32,
    /// Milliseconds since the Unix epoch.
    next_attempt_ms: u64,
    #[serde(default)]
    last_error: String,
    /// The base name in sent/ (the form is `sent/<base>`, its state `sent/<base>.status.json`).
    #[serde(default)]
    sent_base: String,
    /// The outbox file was moved away.
    #[serde(default)]
    filed: bool,
    #[serde(default)]
    sent_at: String,
    #[serde(default)]
    log_index: u64,
    #[serde(default)]
    receipt_checked: bool,
    #[serde(default)]
    receipt_problem: String,
    #[serde(default)]
    recipients: BTreeMap<String, RecipientState>,
}

/// The four folders.
#[derive(Debug, Clone)]
pub struct Folders {
    /// Forms to send.
    pub outbox: PathBuf,
    /// Sent forms and their state.
    pub sent: PathBuf,
    /// Forms that will not be sent, with the reason.
    pub failed: PathBuf,
    /// Received messages.
    pub inbox: PathBuf,
}

impl Folders {
    /// The folders under `base`.
    pub fn under(base: &Path) -> Self {
        Folders {
            outbox: base.join("outbox"),
            sent: base.join("sent"),
            failed: base.join("failed"),
            inbox: base.join("inbox"),
        }
    }

    fn create(&self) -> Result<(), DaemonError> {
        for d in [&self.outbox, &self.sent, &self.failed, &self.inbox] {
            create_private_dir(d).map_err(DaemonError::Folder)?;
        }
        Ok(())
    }
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
    me: Principal,
    access: AccessLog,
}

impl Daemon {
    /// Opens the queue and creates the folders.
    pub fn open(config: &ClientConfig) -> Result<Self, DaemonError> {
        let cert = std::fs::read(&config.cert)
            .map_err(|e| ClientError::Config(format!("{}: {e}", config.cert.display())))?;
        let (me, _) = crate::client::own_identity(&cert)?;
        let folders = Folders::under(&config.daemon.folder);
        folders.create()?;
        create_private_dir(&config.state_dir).map_err(DaemonError::Folder)?;
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
            db,
            config: config.clone(),
            folders,
            me,
            access: AccessLog::in_state_dir(&config.state_dir),
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
        tracing::info!(principal = %self.me, folder = %cfg.folder.display(), relay = %self.config.relay, "silta daemon started");
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => {
                    self.scan_outbox()?;
                    if client.is_none() && Instant::now() >= next_connect {
                        match self.connect().await {
                            Ok((c, s)) => {
                                tracing::info!(relay = %self.config.relay, "connected to the relay");
                                connect_attempts = 0;
                                client = Some(c);
                                stream = Some(s);
                            }
                            Err(e) => {
                                let delay = self.backoff(connect_attempts);
                                connect_attempts = connect_attempts.saturating_add(1);
                                next_connect = Instant::now() + delay;
                                let (what, todo) = explain(&e);
                                tracing::warn!(relay = %self.config.relay, error = %what, retry_in_s = delay.as_secs_f32(), "{todo}");
                            }
                        }
                    }
                    if let Some(c) = &client
                        && self.send_due(c).await?
                    {
                        client = None;
                        stream = None;
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
        let stream = client
            .connection()
            .mailbox()
            .subscribe(pb::SubscribeRequest::default())
            .await?
            .into_inner();
        Ok((client, stream))
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

    fn queue_error(&self, e: sled::Error) -> DaemonError {
        DaemonError::Queue {
            path: self.config.state_dir.join("daemon-db"),
            error: e.to_string(),
        }
    }

    fn put(&self, job: &Job) -> Result<(), DaemonError> {
        let id = uuid::Uuid::parse_str(&job.message_id).expect("our own ids parse");
        self.jobs
            .insert(
                id.as_bytes(),
                serde_json::to_vec(job).expect("a job serialises"),
            )
            .map_err(|e| self.queue_error(e))?;
        self.db.flush().map_err(|e| self.queue_error(e))?;
        Ok(())
    }

    fn get(&self, id: &[u8]) -> Result<Option<Job>, DaemonError> {
        Ok(self
            .jobs
            .get(id)
            .map_err(|e| self.queue_error(e))?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Picks up new forms: validates and queues them, or moves them to failed/; finishes moving
    /// sent forms whose move a crash interrupted.
    pub fn scan_outbox(&self) -> Result<(), DaemonError> {
        let entries = std::fs::read_dir(&self.folders.outbox)
            .map_err(|e| DaemonError::Folder(format!("{}: {e}", self.folders.outbox.display())))?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                !n.starts_with('.')
                    && !n.ends_with(".tmp")
                    && !n.ends_with(".part")
                    && !n.ends_with('~')
            })
            .collect();
        names.sort();
        for name in names {
            self.pick_up(&name)?;
        }
        Ok(())
    }

    fn pick_up(&self, name: &str) -> Result<(), DaemonError> {
        let path = self.folders.outbox.join(name);
        let Ok(bytes) = std::fs::read(&path) else {
            return Ok(()); // moved away meanwhile
        };
        let key = ring::digest::digest(
            &ring::digest::SHA256,
            &[name.as_bytes(), &[0], &bytes].concat(),
        );
        if let Some(id) = self
            .names
            .get(key.as_ref())
            .map_err(|e| self.queue_error(e))?
            && let Some(mut job) = self.get(&id)?
        {
            match job.state {
                JobState::Queued | JobState::Sealed => {} // waiting to be sent
                JobState::Sent if job.filed => {
                    return self.fail_file(
                        name,
                        &format!(
                            "this exact form was already sent as message {} at {}; nothing was sent again. To send it again on purpose, give the file a new name.",
                            job.message_id, job.sent_at
                        ),
                    );
                }
                JobState::Sent => self.file_sent(&mut job)?,
                JobState::Failed => {
                    let reason = job.last_error.clone();
                    self.fail_file(name, &reason)?;
                    job.filed = true;
                    self.put(&job)?;
                }
            }
            return Ok(());
        }
        let json = name.ends_with(".json");
        if !json && !name.ends_with(".toml") {
            return self.fail_file(
                name,
                "not a form: the outbox takes .toml and .json form files (see `silta daemon --help`)",
            );
        }
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => return self.fail_file(name, "the file is not UTF-8 text"),
        };
        let (header, payload) = match read_envelope_form(&text, json) {
            Ok(x) => x,
            Err(e) => return self.fail_file(name, &format!("the form is invalid: {e}")),
        };
        if let Err(e) =
            crate::payload::validate(header.kind, header.urgency, &payload, &self.me, &header.to)
        {
            return self.fail_file(name, &format!("the form is invalid: {e}"));
        }
        let id = uuid::Uuid::now_v7();
        let job = Job {
            message_id: id.to_string(),
            file_name: name.to_owned(),
            form: text,
            json,
            state: JobState::Queued,
            queued_at: now_rfc3339(),
            attempts: 0,
            next_attempt_ms: 0,
            last_error: String::new(),
            sent_base: String::new(),
            filed: false,
            sent_at: String::new(),
            log_index: 0,
            receipt_checked: false,
            receipt_problem: String::new(),
            recipients: BTreeMap::new(),
        };
        // The id is stored before anything is sent: every retry uses it.
        let value = serde_json::to_vec(&job).expect("a job serialises");
        (&self.jobs, &self.names)
            .transaction(|(jobs, names)| {
                jobs.insert(id.as_bytes().as_slice(), value.as_slice())?;
                names.insert(key.as_ref(), id.as_bytes().as_slice())?;
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| DaemonError::Queue {
                path: self.config.state_dir.join("daemon-db"),
                error: format!("{e:?}"),
            })?;
        self.db.flush().map_err(|e| self.queue_error(e))?;
        tracing::info!(file = %name, message_id = %id, kind = %kind_name(header.kind), "form queued");
        Ok(())
    }

    /// Moves `outbox/<name>` to `failed/<name>` with `failed/<name>.error`.
    fn fail_file(&self, name: &str, reason: &str) -> Result<(), DaemonError> {
        let from = self.folders.outbox.join(name);
        let error_path = self.folders.failed.join(format!("{name}.error"));
        let text = format!(
            "{name} was not sent.\n\nWhy: {reason}\n\nWhat to do: fix the form and put it into outbox/ again (under any name).\nTime: {}\n",
            now_rfc3339()
        );
        write_atomic(&error_path, text.as_bytes()).map_err(DaemonError::Folder)?;
        if from.exists() {
            move_file(&from, &self.folders.failed.join(name)).map_err(DaemonError::Folder)?;
        }
        tracing::warn!(file = %name, reason = %reason, "form moved to failed/");
        Ok(())
    }

    /// Sends what is due. Returns whether the connection should be dropped.
    async fn send_due(&self, client: &Client) -> Result<bool, DaemonError> {
        let now = now_ms();
        let due: Vec<Job> = self
            .jobs
            .iter()
            .values()
            .filter_map(|v| v.ok())
            .filter_map(|v| serde_json::from_slice::<Job>(&v).ok())
            .filter(|j| matches!(j.state, JobState::Queued | JobState::Sealed))
            .filter(|j| j.next_attempt_ms <= now)
            .collect();
        for mut job in due {
            match self.attempt(client, &mut job).await? {
                Ok(()) => {}
                Err(Failure::Permanent(reason)) => {
                    job.state = JobState::Failed;
                    job.last_error = reason.clone();
                    self.put(&job)?;
                    self.fail_file(&job.file_name.clone(), &reason)?;
                    job.filed = true;
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

    async fn attempt(
        &self,
        client: &Client,
        job: &mut Job,
    ) -> Result<Result<(), Failure>, DaemonError> {
        let id = uuid::Uuid::parse_str(&job.message_id).expect("our own ids parse");
        if job.state == JobState::Queued {
            let (header, payload) = match read_envelope_form(&job.form, job.json) {
                Ok(x) => x,
                Err(e) => return Ok(Err(Failure::Permanent(format!("the form is invalid: {e}")))),
            };
            let draft = header.draft(*id.as_bytes(), payload);
            let envelope = match client.seal(&draft).await {
                Ok(e) => e,
                Err(e) => return Ok(Err(classify(e))),
            };
            // Stored before the first send: every retry sends these exact bytes.
            self.envelopes
                .insert(id.as_bytes(), envelope.encode_to_vec())
                .map_err(|e| self.queue_error(e))?;
            job.state = JobState::Sealed;
            self.put(job)?;
        }
        let Some(bytes) = self
            .envelopes
            .get(id.as_bytes())
            .map_err(|e| self.queue_error(e))?
        else {
            return Ok(Err(Failure::Permanent(
                "the sealed message is missing from the queue".into(),
            )));
        };
        let envelope = pb::Envelope::decode(bytes.as_ref()).map_err(|e| DaemonError::Queue {
            path: self.config.state_dir.join("daemon-db"),
            error: format!("stored envelope: {e}"),
        })?;
        let recipients = envelope.recipients.clone();
        let (case, ids) = (envelope.case_ref.clone(), vec![envelope.message_id.clone()]);
        match client.send_sealed(envelope).await {
            Ok(receipt) => {
                job.log_index = receipt.log_index;
                job.receipt_checked = self.config.log_key.is_some();
            }
            Err(ClientError::Receipt(problem)) => {
                // Accepted, but the receipt does not prove it was logged: keep it, say so.
                tracing::error!(message_id = %job.message_id, problem = %problem, "the relay's receipt does not check out; keep the status file and report this");
                job.receipt_problem = problem;
            }
            Err(e) => return Ok(Err(classify(e))),
        }
        job.state = JobState::Sent;
        job.sent_at = now_rfc3339();
        job.last_error.clear();
        self.access
            .record(&Access {
                who: "process:silta-daemon",
                principal: &self.me.to_string(),
                action: Action::Disclosed,
                case: &case,
                messages: &ids,
                purpose: "sending a form from the outbox",
                recipients: &recipients,
            })
            .map_err(|e| DaemonError::Folder(e.to_string()))?;
        tracing::info!(file = %job.file_name, message_id = %job.message_id, log_index = job.log_index, "form sent");
        self.file_sent(job)?;
        Ok(Ok(()))
    }

    /// Writes sent/<base> and its status file, then removes the outbox file.
    fn file_sent(&self, job: &mut Job) -> Result<(), DaemonError> {
        if job.sent_base.is_empty() {
            job.sent_base = if self.folders.sent.join(&job.file_name).exists() {
                format!("{}-{}", job.message_id, job.file_name)
            } else {
                job.file_name.clone()
            };
            self.put(job)?;
        }
        let form_path = self.folders.sent.join(&job.sent_base);
        write_atomic(&form_path, job.form.as_bytes()).map_err(DaemonError::Folder)?;
        self.write_status(job)?;
        let outbox = self.folders.outbox.join(&job.file_name);
        if outbox.exists() {
            std::fs::remove_file(&outbox)
                .map_err(|e| DaemonError::Folder(format!("{}: {e}", outbox.display())))?;
            crate::fsutil::sync_dir_of(&outbox).map_err(DaemonError::Folder)?;
        }
        job.filed = true;
        self.put(job)
    }

    fn write_status(&self, job: &Job) -> Result<(), DaemonError> {
        let (kind, to, case, urgency, basis) = match read_envelope_form(&job.form, job.json) {
            Ok((h, _)) => (
                kind_name(h.kind),
                h.to.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                if h.case_ref == [0; 16] {
                    String::new()
                } else {
                    hex::encode(h.case_ref)
                },
                urgency_name(h.urgency),
                legal_basis_name(h.legal_basis),
            ),
            Err(_) => Default::default(),
        };
        let overall = overall_state(&to, &job.recipients);
        let status = serde_json::json!({
            "message_id": job.message_id,
            "file": job.file_name,
            "kind": kind,
            "case": case,
            "to": to,
            "urgency": urgency,
            "legal_basis": basis,
            "queued_at": job.queued_at,
            "sent_at": job.sent_at,
            "receipt": {
                "log_index": job.log_index,
                "checked_against_log_key": job.receipt_checked,
                "problem": job.receipt_problem,
            },
            "state": overall,
            "recipients": job.recipients,
        });
        let path = self
            .folders
            .sent
            .join(format!("{}.status.json", job.sent_base));
        write_atomic(
            &path,
            serde_json::to_string_pretty(&status)
                .expect("json")
                .as_bytes(),
        )
        .map_err(DaemonError::Folder)
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
                let state = pb::DeliveryState::try_from(s.state)
                    .unwrap_or_default()
                    .as_str_name()
                    .trim_start_matches("DELIVERY_STATE_")
                    .to_ascii_lowercase();
                let newer = job
                    .recipients
                    .get(&s.recipient)
                    .is_none_or(|r| r.log_index <= s.log_index);
                if newer {
                    job.recipients.insert(
                        s.recipient.clone(),
                        RecipientState {
                            state,
                            time: rfc3339(s.time.as_ref()),
                            log_index: s.log_index,
                            reason: if s.rejection_reason == 0 {
                                String::new()
                            } else {
                                pb::RejectionReason::try_from(s.rejection_reason)
                                    .unwrap_or_default()
                                    .as_str_name()
                                    .trim_start_matches("REJECTION_REASON_")
                                    .to_ascii_lowercase()
                            },
                            detail: s.detail.clone(),
                        },
                    );
                    self.put(&job)?;
                    if job.state == JobState::Sent && !job.sent_base.is_empty() {
                        self.write_status(&job)?;
                    }
                }
                tracing::info!(message_id = %job.message_id, recipient = %s.recipient, state = s.state, "delivery state");
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
        let access = &self.access;
        let me = self.me.to_string();
        let purpose = &self.config.daemon.purpose;
        let mut keep = |delivered: &pb::DeliveredEnvelope,
                        opened: &crate::seal::Opened|
         -> Result<(), String> {
            let s = &opened.signed;
            let id = uuid::Uuid::from_slice(&s.message_id).map_err(|e| e.to_string())?;
            let kind = kind_name(pb::MessageKind::try_from(s.kind).unwrap_or_default());
            access
                .record(&Access {
                    who: "process:silta-daemon",
                    principal: &me,
                    action: Action::Received,
                    case: &s.case_ref,
                    messages: std::slice::from_ref(&s.message_id),
                    purpose,
                    recipients: &[],
                })
                .map_err(|e| e.to_string())?;
            let path = inbox.join(format!("{id}-{kind}.json"));
            if !path.exists() {
                let record = message_record(delivered, opened);
                write_atomic(
                    &path,
                    serde_json::to_string_pretty(&record)
                        .expect("json")
                        .as_bytes(),
                )?;
            }
            Ok(())
        };
        match client.process(item, &mut keep).await {
            Ok(Received::Message { opened, .. }) => {
                tracing::info!(
                    message_id = %uuid::Uuid::from_slice(&opened.signed.message_id).unwrap_or_default(),
                    kind = %kind_name(pb::MessageKind::try_from(opened.signed.kind).unwrap_or_default()),
                    from = %opened.signed.sender,
                    "message received into inbox/"
                );
                Ok(false)
            }
            Ok(Received::Rejected {
                delivered,
                rejected,
            }) => {
                tracing::warn!(from = %delivered.sender, reason = rejected.reason.as_str_name(), detail = %rejected.detail, "message rejected (the sender sees the reason)");
                Ok(false)
            }
            Ok(Received::Duplicate { .. }) | Ok(Received::Status(_)) => Ok(false),
            Err(e) => {
                let (what, todo) = explain(&e);
                tracing::warn!(error = %what, "{todo}");
                Ok(true)
            }
        }
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

/// The least advanced state over all recipients: "sent" until each reported something.
fn overall_state(to: &[String], recipients: &BTreeMap<String, RecipientState>) -> String {
    const ORDER: [&str; 5] = ["rejected", "expired", "sent", "delivered", "acknowledged"];
    let rank = |s: &str| ORDER.iter().position(|o| *o == s).unwrap_or(2);
    to.iter()
        .map(|r| {
            recipients
                .get(r)
                .map(|s| s.state.as_str())
                .unwrap_or("sent")
        })
        .min_by_key(|s| rank(s))
        .unwrap_or("sent")
        .to_owned()
}

fn classify(e: ClientError) -> Failure {
    use tonic::Code;
    match &e {
        ClientError::Seal(SealError::NoKeys(p)) => Failure::Permanent(format!(
            "{p} has not published its keys, so nothing can be sealed for it. Ask them to run `silta init` (or `silta keys publish`), then put the form into outbox/ again."
        )),
        ClientError::Seal(SealError::Invalid(e)) => {
            Failure::Permanent(format!("the form is invalid: {e}"))
        }
        ClientError::Relay(s) => match s.code() {
            Code::NotFound => Failure::Permanent(format!(
                "the relay does not know a recipient: {}. Check the `to` principals (role/id).",
                s.message()
            )),
            Code::PermissionDenied => Failure::Permanent(format!(
                "the relay refused: {}. This installation may not send this kind to these recipients.",
                s.message()
            )),
            Code::InvalidArgument
            | Code::AlreadyExists
            | Code::FailedPrecondition
            | Code::OutOfRange => Failure::Permanent(format!(
                "the relay refused the message: {} ({:?})",
                s.message(),
                s.code()
            )),
            Code::Unauthenticated => Failure::Retry {
                reason: format!(
                    "the relay no longer accepts this certificate (revoked?): {}",
                    s.message()
                ),
                reconnect: true,
            },
            Code::ResourceExhausted => Failure::Retry {
                reason: format!("the relay is full for now: {}", s.message()),
                reconnect: false,
            },
            _ => Failure::Retry {
                reason: format!(
                    "the relay could not be reached or failed: {} ({:?})",
                    s.message(),
                    s.code()
                ),
                reconnect: true,
            },
        },
        _ => {
            let (what, _) = explain(&e);
            Failure::Retry {
                reason: what,
                reconnect: true,
            }
        }
    }
}

/// What went wrong, and what to do about it, for people reading the log.
pub fn explain(e: &ClientError) -> (String, String) {
    use crate::ConnectError;
    let todo = match e {
        ClientError::Connect(ConnectError::Unreachable(_)) => {
            "relay unreachable; will retry (is it running, and is `relay` in the configuration right?)"
        }
        ClientError::Connect(ConnectError::CertificateRejected { .. }) => {
            "the relay rejected this installation's certificate; will retry, but an administrator must issue a valid one (silta-certs issue)"
        }
        ClientError::Keys(_) => {
            "this installation has no device keys; run `silta init` (or `silta keys init` and `silta keys publish`)"
        }
        ClientError::State(_) => "local state unusable; will retry",
        _ => "will retry",
    };
    (e.to_string(), todo.to_owned())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn now_rfc3339() -> String {
    rfc3339(Some(&prost_types::Timestamp::from(
        std::time::SystemTime::now(),
    )))
}
