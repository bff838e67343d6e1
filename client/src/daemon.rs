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
//!
//! The queue lives in a sled database (`STATE_DIR/daemon-db`). A form's message id is assigned
//! and stored before the first attempt; sending goes through the library's outbox
//! ([`crate::outbox`]), keyed by that id, which keeps the sealed message before it is first sent
//! and logs the disclosure first, so every retry sends the same bytes and the relay answers it
//! idempotently: a restart at any point neither loses a form nor sends one twice. Sending retries with exponential backoff
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
    access::AccessLog,
    client::{Client, ClientError, DeliveryState, DeliveryStatus, Received},
    config::ClientConfig,
    form::{legal_basis_name, read_envelope_form, urgency_name},
    fsutil::{create_private_dir, move_file, write_atomic},
    outbox::{Disclosure, Key, Outbox},
    payload::kind_name,
    receive::Opener,
    record::MessageRecord,
    seal::SealError,
    times::now_rfc3339,
};

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
    /// Id assigned; being sent through the library's outbox (which keeps the sealed message).
    Queued,
    /// Sealed by an earlier version, its envelope in `msgid_envelope`: sent with those bytes.
    Sealed,
    /// Accepted by the relay.
    Sent,
    /// Will not be sent (the reason is in failed/).
    Failed,
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
    recipients: BTreeMap<String, DeliveryStatus>,
    /// SHA-256 of the sealed message (hex): what recipients' acknowledgements sign.
    #[serde(default)]
    ciphertext_sha256: String,
    /// The relay's receipt in full ([`crate::audit::receipt_json`]).
    #[serde(default)]
    receipt: Option<serde_json::Value>,
    /// kind, to, case, urgency, legal basis: what sent/ status files show. Kept when the form
    /// text itself is dropped from the queue after filing.
    #[serde(default)]
    summary: Option<Summary>,
}

/// The envelope facts of a form, for status files.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Summary {
    kind: String,
    to: Vec<String>,
    case: String,
    urgency: String,
    legal_basis: String,
}

/// The four folders.
#[derive(Debug, Clone)]
pub struct Folders {
    /// Forms to send.
    pub outbox: PathBuf,
    /// Forms claimed from the outbox, waiting to be sent (`<message-id>.<name>`).
    pub queued: PathBuf,
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
            queued: base.join("queued"),
            sent: base.join("sent"),
            failed: base.join("failed"),
            inbox: base.join("inbox"),
        }
    }

    fn create(&self) -> Result<(), DaemonError> {
        for d in [
            &self.outbox,
            &self.queued,
            &self.sent,
            &self.failed,
            &self.inbox,
        ] {
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
}

impl Daemon {
    /// Opens the queue and creates the folders.
    pub fn open(config: &ClientConfig) -> Result<Self, DaemonError> {
        let cert = std::fs::read(&config.cert)
            .map_err(|e| ClientError::Config(format!("{}: {e}", config.cert.display())))?;
        let (me, _) = crate::client::own_identity(&cert)?;
        let folders = Folders::under(&config.daemon.folder);
        folders.create()?;
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
                    if let Some(c) = &client
                        && self.send_due(c).await?
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

    fn queue_error(&self, e: sled::Error) -> DaemonError {
        DaemonError::Queue {
            path: self.config.state_dir.join("daemon-db"),
            error: e.to_string(),
        }
    }

    fn put(&self, job: &Job) -> Result<(), DaemonError> {
        let id = uuid::Uuid::parse_str(&job.message_id).expect("our own ids parse");
        let value = serde_json::to_vec(job).expect("a job serialises");
        let waiting = matches!(job.state, JobState::Queued | JobState::Sealed);
        (&self.jobs, &self.pending)
            .transaction(|(jobs, pending)| {
                jobs.insert(id.as_bytes().as_slice(), value.as_slice())?;
                if waiting {
                    pending.insert(id.as_bytes().as_slice(), &[])?;
                } else {
                    pending.remove(id.as_bytes().as_slice())?;
                }
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| DaemonError::Queue {
                path: self.config.state_dir.join("daemon-db"),
                error: format!("{e:?}"),
            })?;
        self.db.flush().map_err(|e| self.queue_error(e))?;
        Ok(())
    }

    fn get(&self, id: &[u8]) -> Result<Option<Job>, DaemonError> {
        match self.jobs.get(id).map_err(|e| self.queue_error(e))? {
            None => Ok(None),
            // An unreadable record is an error, never "no job": that would queue it again.
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| DaemonError::Queue {
                    path: self.config.state_dir.join("daemon-db"),
                    error: format!("job {}: {e}", hex::encode(id)),
                }),
        }
    }

    /// Picks up new forms from outbox/ (and, after a crash, claimed forms in queued/ that were
    /// not queued yet). A problem with one file is logged and does not stop the others.
    pub fn scan_outbox(&self) -> Result<(), DaemonError> {
        let settle = Duration::from_millis(self.config.daemon.settle_ms);
        let files = list_files(&self.folders.outbox)?;
        let mut ready = Vec::new();
        {
            let mut settling = self.settling.lock().unwrap_or_else(|e| e.into_inner());
            settling.retain(|name, _| files.iter().any(|(n, _)| n == name));
            for (name, path) in &files {
                // The entry itself, never what a symbolic link points to.
                let Ok(meta) = std::fs::symlink_metadata(path) else {
                    continue;
                };
                let now_seen = (meta.len(), meta.modified().unwrap_or(std::time::UNIX_EPOCH));
                match settling.get(name) {
                    Some((len, mtime, since)) if (*len, *mtime) == now_seen => {
                        if since.elapsed() >= settle {
                            ready.push(name.clone());
                        }
                    }
                    // New, or changed since the last scan: still being written, perhaps.
                    _ => {
                        settling.insert(name.clone(), (now_seen.0, now_seen.1, Instant::now()));
                    }
                }
            }
        }
        for name in ready {
            self.settling
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&name);
            if name.len() > MAX_NAME_BYTES {
                let id = uuid::Uuid::now_v7();
                let ext = if name.ends_with(".json") {
                    "json"
                } else {
                    "toml"
                };
                let short = format!("{id}.name-too-long.{ext}");
                let result = std::fs::rename(self.folders.outbox.join(&name), self.folders.queued.join(&short))
                    .map_err(|e| DaemonError::Folder(e.to_string()))
                    .and_then(|()| {
                        self.fail_claimed(
                            id,
                            &format!("name-too-long.{ext}"),
                            &format!("the file name is {} bytes long; the outbox takes names up to {MAX_NAME_BYTES} bytes (it began {:?})", name.len(), name.chars().take(40).collect::<String>()),
                        )
                    });
                if let Err(e) = result {
                    tracing::error!(error = %e, "could not move a form with a too long name to failed/");
                }
                continue;
            }
            if let Err(e) = self.claim(&name) {
                tracing::error!(file = %name, error = %e, "could not pick up a form; will try again");
            }
        }
        Ok(())
    }

    /// Claims `outbox/<name>` by renaming it to `queued/<id>.<name>` under a new message id: from
    /// here on the file belongs to this form, whatever appears under the old name.
    fn claim(&self, name: &str) -> Result<(), DaemonError> {
        let id = uuid::Uuid::now_v7();
        let claimed = self.folders.queued.join(format!("{id}.{name}"));
        match std::fs::rename(self.folders.outbox.join(name), &claimed) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(DaemonError::Folder(format!("outbox/{name}: {e}"))),
        }
        crate::fsutil::sync_dir_of(&claimed).map_err(DaemonError::Folder)?;
        crate::fsutil::sync_dir_of(&self.folders.outbox.join(name)).map_err(DaemonError::Folder)?;
        let queued = self.queue_claimed(id, name);
        if queued.is_err() {
            self.recover_pending
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        queued
    }

    /// After a crash: claimed files in queued/ whose job was never written are queued now;
    /// those whose job finished are filed.
    fn recover(&self) -> Result<(), DaemonError> {
        for (file, _) in list_files(&self.folders.queued)? {
            let Some((id, name)) = file
                .split_once('.')
                .and_then(|(id, name)| Some((uuid::Uuid::parse_str(id).ok()?, name.to_owned())))
            else {
                continue;
            };
            let job = match self.get(id.as_bytes()) {
                Ok(j) => j,
                Err(e) => {
                    tracing::error!(file = %file, error = %e, "the queue's record of a claimed form is unreadable; left as it is");
                    continue;
                }
            };
            let result = match job {
                None => self.queue_claimed(id, &name),
                Some(mut job) if job.state == JobState::Sent => self.file_sent(&mut job),
                Some(job) if job.state == JobState::Failed => {
                    let reason = job.last_error.clone();
                    self.fail_claimed(id, &name, &reason)
                }
                Some(_) => Ok(()),
            };
            if let Err(e) = result {
                tracing::error!(file = %file, error = %e, "could not recover a queued form; will try again");
                self.recover_pending
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Validates and queues the claimed file `queued/<id>.<name>`, or moves it to failed/.
    fn queue_claimed(&self, id: uuid::Uuid, name: &str) -> Result<(), DaemonError> {
        let path = self.folders.queued.join(format!("{id}.{name}"));
        if name.ends_with(".status.json") || name.ends_with(".error") {
            return self.fail_claimed(id, name, "the names *.status.json and *.error are reserved for the daemon's own files; rename the form");
        }
        let json = name.ends_with(".json");
        if !json && !name.ends_with(".toml") {
            return self.fail_claimed(id, name, "not a form: the outbox takes .toml and .json form files (see client/forms/outbox/)");
        }
        let bytes = match read_form_file(&path) {
            Ok(b) => b,
            Err(why) => return self.fail_claimed(id, name, &why),
        };
        let Ok(text) = String::from_utf8(bytes) else {
            return self.fail_claimed(id, name, "the file is not UTF-8 text");
        };
        let (header, payload) = match read_envelope_form(&text, json) {
            Ok(x) => x,
            Err(e) => return self.fail_claimed(id, name, &format!("the form is invalid: {e}")),
        };
        if let Err(e) =
            crate::payload::validate(header.kind, header.urgency, &payload, &self.me, &header.to)
        {
            return self.fail_claimed(id, name, &format!("the form is invalid: {e}"));
        }
        // The same form (same name and content) sent or queued before is not sent again.
        let key = form_key(name, &text);
        if let Some(other) = self
            .names
            .get(key.as_ref())
            .map_err(|e| self.queue_error(e))?
            && let Some(job) = self.get(&other)?
            && matches!(
                job.state,
                JobState::Queued | JobState::Sealed | JobState::Sent
            )
        {
            let what = if job.state == JobState::Sent {
                format!(
                    "this exact form was already sent as message {} at {}",
                    job.message_id, job.sent_at
                )
            } else {
                format!(
                    "this exact form is already queued as message {}",
                    job.message_id
                )
            };
            return self.fail_claimed(id, name, &format!("{what}; nothing was sent again. To send it again on purpose, give the file a new name."));
        }
        let summary = Some(summary_of(&text, json));
        let job = Job {
            summary,
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
            ciphertext_sha256: String::new(),
            receipt: None,
        };
        // The id is stored before anything is sent: every retry uses it.
        self.names
            .insert(key.as_ref(), id.as_bytes().as_slice())
            .map_err(|e| self.queue_error(e))?;
        self.put(&job)?;
        tracing::info!(file = %name, message_id = %id, kind = %kind_name(header.kind), "form queued");
        Ok(())
    }

    /// Moves the claimed `queued/<id>.<name>` (or, if it is gone, the queue's copy of the form)
    /// to failed/, beside a `.error` file saying why. Never overwrites an earlier failed form.
    fn fail_claimed(&self, id: uuid::Uuid, name: &str, reason: &str) -> Result<(), DaemonError> {
        // symlink_metadata: a symbolic link counts as there, wherever (or whether) it points.
        let there = |p: PathBuf| std::fs::symlink_metadata(p).is_ok();
        let target = if there(self.folders.failed.join(name))
            || there(self.folders.failed.join(format!("{name}.error")))
        {
            format!("{id}.{name}")
        } else {
            name.to_owned()
        };
        // The form first (it is never lost or doubled), then the reason beside it.
        let claimed = self.folders.queued.join(format!("{id}.{name}"));
        if there(claimed.clone()) {
            // rename(2) moves a symbolic link itself; its target is never touched.
            move_file(&claimed, &self.folders.failed.join(&target)).map_err(DaemonError::Folder)?;
        } else if let Some(job) = self.get(id.as_bytes())?
            && !job.form.is_empty()
        {
            write_atomic(&self.folders.failed.join(&target), job.form.as_bytes())
                .map_err(DaemonError::Folder)?;
        }
        let error_path = self.folders.failed.join(format!("{target}.error"));
        let text = format!(
            "{name} was not sent.\n\nWhy: {reason}\n\nWhat to do: fix the form and put it into outbox/ again (under any name).\nMessage id it had: {id}\nTime: {}\n",
            now_rfc3339()
        );
        write_atomic(&error_path, text.as_bytes()).map_err(DaemonError::Folder)?;
        // The reason may quote the form's content: it stays in the 0600 .error file, not the log.
        tracing::warn!(file = %name, error_file = %error_path.display(), "form moved to failed/; the .error file says why");
        Ok(())
    }

    /// Sends what is due. Returns whether the connection should be dropped.
    async fn send_due(&self, client: &Client) -> Result<bool, DaemonError> {
        let now = now_ms();
        let mut due = Vec::new();
        for id in self.pending.iter().keys() {
            let id = id.map_err(|e| self.queue_error(e))?;
            if let Some(job) = self.get(&id)? {
                due.push(job);
            }
        }
        let due: Vec<Job> = due
            .into_iter()
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
            purpose: "sending a form from the outbox".into(),
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

    /// Writes sent/<base> and its status file, then removes the outbox file.
    fn file_sent(&self, job: &mut Job) -> Result<(), DaemonError> {
        if job.sent_base.is_empty() {
            let taken = |base: &str| {
                self.folders.sent.join(base).exists()
                    || self
                        .folders
                        .sent
                        .join(format!("{base}.status.json"))
                        .exists()
            };
            job.sent_base = if taken(&job.file_name) {
                format!("{}.{}", job.message_id, job.file_name)
            } else {
                job.file_name.clone()
            };
            self.put(job)?;
        }
        if job.summary.is_none() {
            job.summary = Some(summary_of(&job.form, job.json));
        }
        if !job.form.is_empty() {
            let form_path = self.folders.sent.join(&job.sent_base);
            write_atomic(&form_path, job.form.as_bytes()).map_err(DaemonError::Folder)?;
        }
        self.write_status(job)?;
        let claimed = self
            .folders
            .queued
            .join(format!("{}.{}", job.message_id, job.file_name));
        match std::fs::remove_file(&claimed) {
            Ok(()) => crate::fsutil::sync_dir_of(&claimed).map_err(DaemonError::Folder)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(DaemonError::Folder(format!("{}: {e}", claimed.display()))),
        }
        job.filed = true;
        // Filed: the queue keeps no copy of the content (sent/ has it, under the case system's
        // own retention); only the facts the status file shows.
        job.form.clear();
        self.put(job)?;
        let id = uuid::Uuid::parse_str(&job.message_id).expect("our own ids parse");
        self.envelopes
            .remove(id.as_bytes())
            .map_err(|e| self.queue_error(e))?;
        Ok(())
    }

    fn write_status(&self, job: &Job) -> Result<(), DaemonError> {
        let Summary {
            kind,
            to,
            case,
            urgency,
            legal_basis: basis,
        } = job
            .summary
            .clone()
            .unwrap_or_else(|| summary_of(&job.form, job.json));
        let overall = overall_state(&to, &job.recipients);
        // The receipt in full (checkpoint, inclusion proof, log entry), so it can be checked
        // against the log an auditor verifies (`silta audit verify --receipts`).
        let mut receipt = job
            .receipt
            .clone()
            .unwrap_or_else(|| serde_json::json!({ "log_index": job.log_index }));
        receipt["checked_against_log_key"] = job.receipt_checked.into();
        receipt["problem"] = job.receipt_problem.clone().into();
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
            "receipt": receipt,
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
                let newer = job
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
                    job.recipients
                        .insert(s.recipient.clone(), DeliveryStatus::checked(s, ack));
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
            let path = inbox.join(format!("{}-{}.json", record.message_id, record.kind));
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
            // Logged (sender, message id, try) where it was decided; the subscription goes on,
            // so the messages behind it are not held up. It comes again on the next
            // subscription, which `run` opens when its retry is due.
            Ok(Received::Deferred { .. }) => Ok(false),
            Ok(Received::Duplicate { .. }) | Ok(Received::Status(_)) => Ok(false),
            Err(e) => {
                tracing::warn!(error = %e, "{}", todo(&e));
                Ok(true)
            }
        }
    }
}

/// What identifies "the same form dropped again": its name and its content.
fn form_key(name: &str, text: &str) -> aws_lc_rs::digest::Digest {
    aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        &[name.as_bytes(), &[0], text.as_bytes()].concat(),
    )
}

/// The envelope facts of a form (empty if it does not parse).
fn summary_of(form: &str, json: bool) -> Summary {
    match read_envelope_form(form, json) {
        Ok((h, _)) => Summary {
            kind: kind_name(h.kind),
            to: h.to.iter().map(|p| p.to_string()).collect(),
            case: if h.case_ref == [0; 16] {
                String::new()
            } else {
                hex::encode(h.case_ref)
            },
            urgency: urgency_name(h.urgency),
            legal_basis: legal_basis_name(h.legal_basis),
        },
        Err(_) => Summary::default(),
    }
}

/// Longest outbox file name taken (the claimed name adds a message id).
const MAX_NAME_BYTES: usize = 200;

/// Largest form file the outbox takes.
const MAX_FORM_BYTES: usize = 1024 * 1024;

/// The regular files in `dir` that are ready to look at (not hidden, not temporary), by name.
fn list_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, DaemonError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| DaemonError::Folder(format!("{}: {e}", dir.display())))?;
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for e in entries.filter_map(|e| e.ok()) {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            continue; // folders are not forms
        }
        // Symbolic links, FIFOs and devices are listed: claiming moves the entry itself, and
        // `read_form_file` refuses it by its handle, so it goes to failed/ with the reason.
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            tracing::warn!(folder = %dir.display(), "a file whose name is not UTF-8 is ignored; rename it");
            continue;
        };
        if name.starts_with('.')
            || name.ends_with(".tmp")
            || name.ends_with(".part")
            || name.ends_with('~')
        {
            continue;
        }
        out.push((name, e.path()));
    }
    out.sort();
    Ok(out)
}

/// Reads a claimed form file by its handle: opened with `O_NOFOLLOW` (a symbolic link is
/// refused by the kernel, its target never opened) and `O_NONBLOCK` (a FIFO cannot stall the
/// daemon), then checked with fstat on the open file (a regular file, at most
/// `MAX_FORM_BYTES`), and read through the same handle. The error says why, for failed/.
fn read_form_file(path: &Path) -> Result<Vec<u8>, String> {
    use std::{io::Read as _, os::unix::fs::OpenOptionsExt as _};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err("it is a symbolic link; the outbox takes only regular files, written into it (the link's target was not read)".into());
        }
        Err(e) => return Err(format!("the file cannot be opened: {e}")),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("the file cannot be examined: {e}"))?;
    if !meta.file_type().is_file() {
        return Err(
            "it is not a regular file (a FIFO, socket or device); the outbox takes only regular files"
                .into(),
        );
    }
    let too_big = || {
        format!(
            "the form is larger than {} KiB; attachments are not sent through forms",
            MAX_FORM_BYTES / 1024
        )
    };
    if meta.len() > MAX_FORM_BYTES as u64 {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // Bounded even if the file grows after fstat.
    file.take(MAX_FORM_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("the file cannot be read: {e}"))?;
    if bytes.len() > MAX_FORM_BYTES {
        return Err(too_big());
    }
    Ok(bytes)
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
fn overall_state(to: &[String], recipients: &BTreeMap<String, DeliveryStatus>) -> DeliveryState {
    to.iter()
        .map(|r| recipients.get(r).map_or(DeliveryState::Sent, |s| s.state))
        .min_by_key(|s| s.progress())
        .unwrap_or(DeliveryState::Sent)
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
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Subscribes to this client's mailbox.
async fn subscribe(client: &Client) -> Result<tonic::Streaming<pb::MailboxItem>, ClientError> {
    Ok(client
        .connection()
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await?
        .into_inner())
}
