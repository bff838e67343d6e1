//! Backup and restore of the relay's database.
//!
//! # Backup (online)
//! The running relay holds sled's file lock, so the backup is made by the relay itself, asked
//! through a Unix socket in the data folder ([`SOCKET`], mode 0600, the peer's uid checked: only
//! the relay's own user). The copy runs as one job of the store's single writer
//! ([`Store::snapshot`]): everything committed before it is flushed first, and no write runs
//! while the trees are read, so the copy is consistent across every tree. Writes that arrive
//! meanwhile wait in the writer's queue and run afterwards; none is lost. The writer only reads
//! sled and hands each entry to a second thread that writes the files, so a slow or hung backup
//! target cannot hang the relay: if the file thread takes nothing for half of
//! `storage.write_timeout_ms`, the backup is abandoned and writes resume.
//!
//! # What a backup holds
//! Every tree of [`crate::store::TREES`] (ciphertexts and metadata: the backup is as sensitive
//! as the database and must be kept like it), and a manifest ([`Manifest`]): format version,
//! per tree its entry count, size and SHA-256, and the log's size, root and a checkpoint of
//! exactly that log signed with the log key (the backup's high-water mark). Not in it: the log
//! signing key and its high-water file (a secret, and the relay's memory of what it has signed:
//! they stay beside the database and a restore never writes them), the TLS material, and a
//! development PKI. The folder is written as `.NAME.partial-*` beside the target (files 0600,
//! folder 0700, each fsynced) and renamed into place when complete.
//!
//! # Restore (offline)
//! [`restore`] rebuilds `<data_dir>/db` from a backup while the relay is stopped, into a data
//! folder that has the log key but no database: it checks the manifest, every file's checksum,
//! the checkpoint's signature against that key, and recomputes the Merkle root from the
//! restored entries (and from the stored subtree hashes) against the checkpoint. It leaves the
//! marker [`crate::log::RESTORED_FILE`]: the relay then refuses to start until the operator
//! starts it with `--accept-rollback`, which records the restore as a LOG_ROLLBACK event.

use std::{
    io::{BufRead as _, BufWriter, Read as _, Write as _},
    os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
    sync::{Arc, mpsc},
    time::{Duration, Instant},
};

use sha2::{Digest as _, Sha256};
use silta_proto::tlog::{self, Hash};
use tokio::sync::watch;

use crate::{
    error::RelayError,
    log::LogSigner,
    store::{Store, StoreError, TREES},
};

/// The backup request socket in the data folder.
pub const SOCKET: &str = "admin.sock";
/// The manifest's file name in a backup folder.
pub const MANIFEST: &str = "manifest.toml";
/// The entry after the trees: the per-message storage keys ([`crate::keyring`]; slot as 8
/// bytes big-endian, then the key). Without them no ciphertext of the backup opens.
pub const KEYS: &str = "message-keys";
/// The manifest's `format`.
pub const FORMAT: &str = "silta-relay-backup";
/// The manifest's `version` this relay writes and reads.
pub const VERSION: u32 = 1;

/// Longest key and value a tree file may hold (a ciphertext is at most
/// `limits.max_ciphertext_bytes`, which validation bounds far below this).
const MAX_RECORD: u32 = 1 << 30;

/// What a backup holds, written as `manifest.toml`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// When the snapshot was taken (RFC 3339, UTC).
    pub created_at: String,
    /// The delivery log's origin.
    pub origin: String,
    /// Entries of the delivery log in the backup.
    pub log_size: u64,
    /// Its root hash (hex).
    pub log_root: String,
    /// A checkpoint of exactly that log, signed with the log key: the backup's high-water mark.
    pub checkpoint: String,
    /// Mailbox envelopes not yet acknowledged, summed over principals (for the operator).
    pub pending_messages: u64,
    /// How long writes waited while the trees were copied (ms).
    pub paused_ms: u64,
    /// One per tree, in the order of [`TREES`].
    #[serde(rename = "tree")]
    pub trees: Vec<TreeFile>,
}

/// One tree's file in a backup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeFile {
    /// The tree.
    pub name: String,
    /// Its file in the backup folder: `<name>.tree`, records of
    /// `key length (u32 BE) ‖ key ‖ value length (u32 BE) ‖ value` in key order.
    pub file: String,
    /// Entries.
    pub entries: u64,
    /// Bytes of the file.
    pub bytes: u64,
    /// SHA-256 of the file (hex).
    pub sha256: String,
}

/// Why a backup was not made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The target folder cannot be used (the operator picks another).
    #[error("{0}")]
    Target(String),
    /// Another backup is running.
    #[error("another backup is running; try again when it has finished")]
    Busy,
    /// Writing the backup failed.
    #[error("writing the backup: {0}")]
    Io(String),
    /// The backup target took nothing for too long; the backup was abandoned so writes resume.
    #[error(
        "the backup target took no data for {0} ms (half of storage.write_timeout_ms); backup abandoned, the relay carried on"
    )]
    Stalled(u64),
    /// The database could not be read (or the store is closed or failed).
    #[error("reading the database: {0}")]
    Store(String),
}

/// Why a restore was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The data folder cannot take the restore (the operator fixes it).
    #[error("{0}")]
    Target(String),
    /// The backup is damaged, tampered with, or not signed by this data folder's log key.
    #[error("the backup is refused: {0}")]
    Damaged(String),
    /// Reading the backup or writing the database failed.
    #[error("{0}")]
    Io(String),
}

fn io(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

// ----- backup -----

/// An entry of a tree on its way from the writer thread to the file thread.
enum Record {
    Tree(&'static str),
    Entry(sled::IVec, sled::IVec),
}

/// Writes a consistent backup of `store` into `target` (absolute; missing or an empty folder),
/// signing its checkpoint with `signer`. The file thread may take nothing for at most `stall`
/// before the backup is abandoned (so the store's writer is never held longer than that by a
/// slow target).
pub async fn backup(
    store: &Arc<Store>,
    signer: &LogSigner,
    target: &Path,
    stall: Duration,
) -> Result<Manifest, BackupError> {
    let (parent, partial) = prepare_target(target)?;
    let result = write_backup(store, signer, &partial, stall).await;
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    // Complete: into place (replacing the empty target folder, if there is one), durably.
    std::fs::rename(&partial, target)
        .and_then(|()| std::fs::File::open(&parent)?.sync_all())
        .map_err(|e| {
            let _ = std::fs::remove_dir_all(&partial);
            BackupError::Io(io(target, e))
        })?;
    tracing::info!(
        target = %target.display(),
        log_size = manifest.log_size,
        paused_ms = manifest.paused_ms,
        "backup written"
    );
    Ok(manifest)
}

/// A backup of a stopped relay's data folder (the database is opened directly; it fails if a
/// relay holds it). `origin` is the log's origin for this configuration.
pub async fn backup_stopped(
    data_dir: &Path,
    origin: &str,
    target: &Path,
    write_timeout: Duration,
) -> Result<Manifest, BackupError> {
    let db = data_dir.join("db");
    if !db.is_dir() {
        return Err(BackupError::Target(format!(
            "no database in {}: nothing to back up (is storage.data_dir right?)",
            data_dir.display()
        )));
    }
    if !data_dir.join(crate::log::LOG_KEY_FILE).exists() {
        return Err(BackupError::Target(format!(
            "no log key in {}: the backup's checkpoint cannot be signed",
            data_dir.display()
        )));
    }
    // A relay still writing its recovery snapshot after a stop holds it (and sled's lock).
    let _lock = crate::datadir::lock(data_dir).map_err(|e| BackupError::Target(e.to_string()))?;
    let options = crate::store::StoreOptions {
        sync: true,
        write_timeout,
        min_free_bytes: 0,
        clock: Arc::new(crate::clock::SystemClock),
    };
    let store = Store::open_with(&db, &options).map_err(|e| {
        BackupError::Store(format!(
            "{e} (a relay that holds the database answers backup requests on {}; is it starting or stopping?)",
            data_dir.join(SOCKET).display()
        ))
    })?;
    let store = Arc::new(store);
    let result = match LogSigner::load_or_create(data_dir, origin) {
        Ok(signer) => backup(&store, &signer, target, write_timeout / 2).await,
        Err(e) => Err(BackupError::Io(e.to_string())),
    };
    let closed = store.close();
    let manifest = result?;
    closed.map_err(|e| BackupError::Store(e.to_string()))?;
    Ok(manifest)
}

/// Checks `target` and creates the partial folder beside it; returns (parent, partial).
fn prepare_target(target: &Path) -> Result<(PathBuf, PathBuf), BackupError> {
    if !target.is_absolute() {
        return Err(BackupError::Target(format!(
            "{}: the backup folder must be an absolute path",
            target.display()
        )));
    }
    match std::fs::symlink_metadata(target) {
        Ok(m) if !m.is_dir() => {
            return Err(BackupError::Target(format!(
                "{} exists and is not a folder",
                target.display()
            )));
        }
        Ok(_) => {
            let mut entries =
                std::fs::read_dir(target).map_err(|e| BackupError::Target(io(target, e)))?;
            if entries.next().is_some() {
                return Err(BackupError::Target(format!(
                    "{} is not empty; a backup goes into a new or empty folder",
                    target.display()
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(BackupError::Target(io(target, e))),
    }
    let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
        return Err(BackupError::Target(format!(
            "{}: not a folder name",
            target.display()
        )));
    };
    if !parent.is_dir() {
        return Err(BackupError::Target(format!(
            "{}: the folder it goes in does not exist",
            target.display()
        )));
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let partial = parent.join(format!(
        ".{}.partial-{}-{nanos}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&partial)
        .map_err(|e| BackupError::Io(io(&partial, e)))?;
    Ok((parent.to_owned(), partial))
}

async fn write_backup(
    store: &Arc<Store>,
    signer: &LogSigner,
    dir: &Path,
    stall: Duration,
) -> Result<Manifest, BackupError> {
    let (tx, rx) = mpsc::sync_channel::<Record>(4096);
    let files = {
        let dir = dir.to_owned();
        std::thread::Builder::new()
            .name("silta-backup-files".into())
            .spawn(move || write_tree_files(&dir, &rx))
            .map_err(|e| BackupError::Io(e.to_string()))?
    };
    let copied = store
        .snapshot(move |frozen| {
            let started = Instant::now();
            let size = frozen.event_count()?;
            let mut pending = 0u64;
            for (name, tree) in frozen.trees() {
                if let Err(e) = send(&tx, Record::Tree(name), stall, frozen) {
                    return Ok(Err(e));
                }
                for kv in tree.iter() {
                    let (k, v) = kv?;
                    if name == "principal_record" {
                        pending += crate::store::pending_of(&v)?;
                    }
                    if let Err(e) = send(&tx, Record::Entry(k, v), stall, frozen) {
                        return Ok(Err(e));
                    }
                }
            }
            if let Err(e) = send(&tx, Record::Tree(KEYS), stall, frozen) {
                return Ok(Err(e));
            }
            for kv in frozen.message_keys() {
                let (slot, key) = kv?;
                let entry = Record::Entry(slot.to_be_bytes().to_vec().into(), key.to_vec().into());
                if let Err(e) = send(&tx, entry, stall, frozen) {
                    return Ok(Err(e));
                }
            }
            Ok(Ok((size, pending, started.elapsed())))
        })
        .await;
    let written = files
        .join()
        .map_err(|_| BackupError::Io("the backup file thread died".into()))?;
    let (size, pending, paused) = match copied {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(e),
        Err(RelayError::Store(e)) => return Err(BackupError::Store(e.to_string())),
        Err(e) => return Err(BackupError::Store(e.to_string())),
    };
    let trees = written.map_err(BackupError::Io)?;
    // The log is append-only: the root of its first `size` entries is the same now as during
    // the snapshot, and those entries were flushed before it.
    let root = tlog::root(store.as_ref(), size).map_err(|e| BackupError::Store(e.to_string()))?;
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        created_at: now_rfc3339(),
        origin: signer.origin().to_owned(),
        log_size: size,
        log_root: hex::encode(root),
        checkpoint: signer.sign(size, root),
        pending_messages: pending,
        paused_ms: paused.as_millis() as u64,
        trees,
    };
    let text = manifest_text(&manifest).map_err(BackupError::Io)?;
    let path = dir.join(MANIFEST);
    silta_certs::files::write_new(&path, text.as_bytes(), silta_certs::files::SECRET_MODE)
        .map_err(|e| BackupError::Io(e.to_string()))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| BackupError::Io(io(dir, e)))?;
    Ok(manifest)
}

/// The manifest as written (TOML).
pub fn manifest_text(m: &Manifest) -> Result<String, String> {
    toml::to_string(m).map_err(|e| format!("writing {MANIFEST}: {e}"))
}

/// Hands a record to the file thread, waiting at most `stall` for room.
fn send(
    tx: &mpsc::SyncSender<Record>,
    mut record: Record,
    stall: Duration,
    frozen: &crate::store::Frozen<'_>,
) -> Result<(), BackupError> {
    let since = Instant::now();
    loop {
        match tx.try_send(record) {
            Ok(()) => {
                frozen.progress();
                return Ok(());
            }
            Err(mpsc::TrySendError::Full(r)) => {
                if since.elapsed() >= stall {
                    return Err(BackupError::Stalled(stall.as_millis() as u64));
                }
                record = r;
                std::thread::sleep(Duration::from_micros(200));
            }
            // The file thread stopped on an error; `join` reports it.
            Err(mpsc::TrySendError::Disconnected(_)) => {
                return Err(BackupError::Io("the backup file thread stopped".into()));
            }
        }
    }
}

/// The file thread: one file per tree, each fsynced.
fn write_tree_files(dir: &Path, rx: &mpsc::Receiver<Record>) -> Result<Vec<TreeFile>, String> {
    struct Open {
        file: BufWriter<std::fs::File>,
        hash: Sha256,
        meta: TreeFile,
        path: PathBuf,
    }
    fn finish(open: Open) -> Result<TreeFile, String> {
        let Open {
            file,
            hash,
            mut meta,
            path,
        } = open;
        let file = file.into_inner().map_err(|e| io(&path, e.error()))?;
        file.sync_all().map_err(|e| io(&path, e))?;
        meta.sha256 = hex::encode(hash.finalize());
        Ok(meta)
    }
    let mut done = Vec::new();
    let mut current: Option<Open> = None;
    for record in rx {
        match record {
            Record::Tree(name) => {
                if let Some(open) = current.take() {
                    done.push(finish(open)?);
                }
                let file = format!("{name}.tree");
                let path = dir.join(&file);
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|e| io(&path, e))?;
                current = Some(Open {
                    file: BufWriter::with_capacity(1 << 20, f),
                    hash: Sha256::new(),
                    meta: TreeFile {
                        name: name.into(),
                        file,
                        entries: 0,
                        bytes: 0,
                        sha256: String::new(),
                    },
                    path,
                });
            }
            Record::Entry(k, v) => {
                let open = current.as_mut().ok_or("an entry before its tree")?;
                for part in [&k[..], &v[..]] {
                    let len = (part.len() as u32).to_be_bytes();
                    for bytes in [&len[..], part] {
                        open.file.write_all(bytes).map_err(|e| io(&open.path, e))?;
                        open.hash.update(bytes);
                        open.meta.bytes += bytes.len() as u64;
                    }
                }
                open.meta.entries += 1;
            }
        }
    }
    if let Some(open) = current.take() {
        done.push(finish(open)?);
    }
    if done.len() != TREES.len() + 1 {
        return Err("the snapshot ended early".into());
    }
    Ok(done)
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A one-line summary of a backup for the operator.
pub fn summary(target: &Path, m: &Manifest) -> String {
    let messages = m
        .trees
        .iter()
        .find(|t| t.name == "msgid_meta")
        .map_or(0, |t| t.entries);
    let bytes: u64 = m.trees.iter().map(|t| t.bytes).sum();
    format!(
        "backup written to {}: {} log entries (root {}), {messages} messages ({} unacknowledged), {bytes} bytes; writes paused {} ms",
        target.display(),
        m.log_size,
        m.log_root,
        m.pending_messages,
        m.paused_ms
    )
}

// ----- the request socket -----

/// The relay's backup request socket.
pub struct AdminSocket {
    listener: tokio::net::UnixListener,
    path: PathBuf,
    uid: u32,
    /// (device, inode) of the socket file, so only this socket is removed at the end.
    file: (u64, u64),
}

/// How the relay answered a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Done; the summary.
    Done(String),
    /// Refused: the request or its target is wrong (the operator fixes it).
    Refused(String),
    /// Failed while writing.
    Failed(String),
}

/// Longest request line.
const MAX_REQUEST: u64 = 4096;

impl AdminSocket {
    /// Binds `<data_dir>/admin.sock` (replacing one left by a relay that did not stop cleanly),
    /// mode 0600. Only the user the relay runs as may use it.
    pub fn bind(data_dir: &Path) -> std::io::Result<AdminSocket> {
        use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
        let path = data_dir.join(SOCKET);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_socket() => std::fs::remove_file(&path)?,
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "{} exists and is not a socket",
                    path.display()
                )));
            }
            Err(_) => {}
        }
        let listener = tokio::net::UnixListener::bind(&path)?;
        // The data folder is 0700 already; this keeps the socket private even if it is not.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        let meta = std::fs::symlink_metadata(&path)?;
        Ok(AdminSocket {
            listener,
            path,
            uid: meta.uid(),
            file: (meta.dev(), meta.ino()),
        })
    }

    /// Answers backup requests until `stop`; one backup at a time.
    pub async fn serve(
        self,
        store: Arc<Store>,
        signer: Arc<LogSigner>,
        stall: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        let running = Arc::new(tokio::sync::Mutex::new(()));
        loop {
            let conn = tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                c = self.listener.accept() => c,
            };
            let (stream, _) = match conn {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "admin socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (store, signer, running, uid) =
                (store.clone(), signer.clone(), running.clone(), self.uid);
            tokio::spawn(async move {
                if let Err(e) = handle(stream, uid, &store, &signer, stall, &running).await {
                    tracing::warn!(error = %e, "admin socket: request failed");
                }
            });
        }
        // Not a socket a relay started since (on the same data folder) has bound. On a blocking
        // thread nobody waits for: on a filesystem that hangs (the case fail-stop is for) the
        // unlink blocks in the kernel, and it must not hold up a runtime worker or the shutdown.
        let (path, file) = (self.path.clone(), self.file);
        drop(tokio::task::spawn_blocking(move || {
            if std::fs::symlink_metadata(&path).is_ok_and(|m| (m.dev(), m.ino()) == file) {
                let _ = std::fs::remove_file(&path);
            }
        }));
    }
}

async fn handle(
    mut stream: tokio::net::UnixStream,
    uid: u32,
    store: &Arc<Store>,
    signer: &LogSigner,
    stall: Duration,
    running: &tokio::sync::Mutex<()>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    let peer = stream.peer_cred()?.uid();
    let reply = if peer != uid {
        tracing::warn!(
            peer_uid = peer,
            "admin socket: request from another user refused"
        );
        Reply::Refused("only the relay's own user may ask for a backup".into())
    } else {
        let mut line = String::new();
        let (read, _) = stream.split();
        let mut reader = tokio::io::BufReader::new(read.take(MAX_REQUEST));
        tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
            .await
            .map_err(|_| std::io::Error::other("no request within 10 s"))??;
        match line.trim_end_matches('\n').split_once(' ') {
            Some(("backup", dir)) => {
                let target = PathBuf::from(dir);
                match running.try_lock() {
                    Err(_) => Reply::Refused(BackupError::Busy.to_string()),
                    Ok(_guard) => {
                        tracing::info!(target = %target.display(), "backup requested");
                        match backup(store, signer, &target, stall).await {
                            Ok(m) => Reply::Done(summary(&target, &m)),
                            Err(e @ (BackupError::Target(_) | BackupError::Busy)) => {
                                Reply::Refused(e.to_string())
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "backup failed");
                                Reply::Failed(e.to_string())
                            }
                        }
                    }
                }
            }
            _ => Reply::Refused("unknown request; expected `backup /absolute/folder`".into()),
        }
    };
    let (word, text) = match &reply {
        Reply::Done(t) => ("ok", t),
        Reply::Refused(t) => ("refused", t),
        Reply::Failed(t) => ("failed", t),
    };
    let text = text.replace('\n', " ");
    stream
        .write_all(format!("{word} {text}\n").as_bytes())
        .await?;
    stream.shutdown().await
}

/// How long [`request`] waits for the relay's answer: generous, since the relay answers only
/// when the backup is complete (a backup that stalls is abandoned by the relay itself after
/// half of `storage.write_timeout_ms`), but bounded, so a wedged relay does not hang the
/// command for ever.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// Asks the relay listening on `socket` for a backup into `target` (absolute) and waits for
/// it, at most `timeout` for each read or write ([`REQUEST_TIMEOUT`] from the command line; a
/// timeout is an error of kind `WouldBlock` or `TimedOut`). An error of kind `NotFound` or
/// `ConnectionRefused` means no relay is running there.
pub fn request(socket: &Path, target: &Path, timeout: Duration) -> std::io::Result<Reply> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let dir = target
        .to_str()
        .filter(|d| !d.contains('\n'))
        .ok_or_else(|| std::io::Error::other("the backup folder's name must be UTF-8, one line"))?;
    stream.write_all(format!("backup {dir}\n").as_bytes())?;
    let mut line = String::new();
    std::io::BufReader::new(stream.take(1 << 16)).read_line(&mut line)?;
    let line = line.trim_end();
    Ok(match line.split_once(' ') {
        Some(("ok", t)) => Reply::Done(t.into()),
        Some(("refused", t)) => Reply::Refused(t.into()),
        Some(("failed", t)) => Reply::Failed(t.into()),
        _ => Reply::Failed(format!("unexpected answer from the relay: {line:?}")),
    })
}

// ----- restore -----

/// Rebuilds `<data_dir>/db` from the backup in `from`, checking everything first (see the
/// module documentation). `origin` is the log's origin for this configuration. The relay must
/// be stopped; `data_dir` must hold the log key and no database.
pub fn restore(from: &Path, data_dir: &Path, origin: &str) -> Result<Manifest, RestoreError> {
    let manifest = read_manifest(from)?;
    crate::datadir::prepare(data_dir).map_err(|e| RestoreError::Target(e.to_string()))?;
    // Held to the end: no relay starts, or finishes its stop, in this folder meanwhile.
    let _lock = crate::datadir::lock(data_dir).map_err(|e| RestoreError::Target(e.to_string()))?;
    let db = data_dir.join("db");
    if db.exists() {
        return Err(RestoreError::Target(format!(
            "{} already holds a database; restore goes into a data folder without one: stop the relay and move it aside (mv {} {}.old), then restore again",
            data_dir.display(),
            db.display(),
            db.display()
        )));
    }
    let key = data_dir.join(crate::log::LOG_KEY_FILE);
    if !key.exists() {
        return Err(RestoreError::Target(format!(
            "no log key at {}: copy the relay's log key ({}, kept apart from backups) and its high-water file ({}) into {} first, so the restored log goes on under the key that signed it",
            key.display(),
            crate::log::LOG_KEY_FILE,
            crate::log::HIGH_WATER_FILE,
            data_dir.display()
        )));
    }
    let signer =
        LogSigner::load_or_create(data_dir, origin).map_err(|e| RestoreError::Io(e.to_string()))?;
    // A backup made before a log-key rotation was signed by a key retired since: any key of
    // this data folder, current, next or retired, proves it is this relay's.
    let mut keys = signer.verifier_keys();
    keys.extend(
        crate::log::retired_verifier_keys(data_dir, origin)
            .map_err(|e| RestoreError::Io(e.to_string()))?,
    );
    let checkpoint = tlog::verify_checkpoint(&manifest.checkpoint, &keys.join("\n"))
        .map_err(|e| {
            RestoreError::Damaged(format!(
                "its checkpoint does not verify with the log keys in {} (current, next or retired log-key-retired-*.pem) ({e}): a backup of another relay, or forged",
                data_dir.display()
            ))
        })?;
    if checkpoint.size != manifest.log_size || hex::encode(checkpoint.root) != manifest.log_root {
        return Err(RestoreError::Damaged(
            "the manifest's log size or root differs from its signed checkpoint".into(),
        ));
    }

    let building = data_dir.join("db.restoring");
    if building.exists() {
        // A restore cut short earlier.
        std::fs::remove_dir_all(&building).map_err(|e| RestoreError::Io(io(&building, e)))?;
    }
    let result = import(from, &manifest, &building)
        .and_then(|()| check_log(&building, &checkpoint.root, manifest.log_size));
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&building);
        return Err(e);
    }
    // The first start after a restore must be accepted by the operator and is recorded in the
    // log (see log::check_high_water): the marker goes to disk before the database does.
    let marker = data_dir.join(crate::log::RESTORED_FILE);
    let note = format!(
        "backup made {}, log of {} entries with root {}\n",
        manifest.created_at, manifest.log_size, manifest.log_root
    );
    let _ = std::fs::remove_file(&marker);
    if let Err(e) =
        silta_certs::files::write_new(&marker, note.as_bytes(), silta_certs::files::SECRET_MODE)
    {
        let _ = std::fs::remove_dir_all(&building);
        return Err(RestoreError::Io(io(&marker, e)));
    }
    if let Err(e) = std::fs::rename(&building, &db) {
        let _ = std::fs::remove_file(&marker);
        let _ = std::fs::remove_dir_all(&building);
        return Err(RestoreError::Io(io(&db, e)));
    }
    std::fs::File::open(data_dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| RestoreError::Io(io(&db, e)))?;
    crate::datadir::restrict(data_dir).map_err(|e| RestoreError::Io(e.to_string()))?;
    Ok(manifest)
}

/// Reads and checks the manifest of the backup in `from` (format, version, trees).
pub fn read_manifest(from: &Path) -> Result<Manifest, RestoreError> {
    let path = from.join(MANIFEST);
    let mut text = String::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(1 << 20).read_to_string(&mut text))
        .map_err(|e| RestoreError::Target(format!("not a backup folder: {}", io(&path, e))))?;
    let m: Manifest = toml::from_str(&text)
        .map_err(|e| RestoreError::Damaged(format!("{MANIFEST} does not parse: {e}")))?;
    if m.format != FORMAT {
        return Err(RestoreError::Damaged(format!(
            "{MANIFEST}: format {:?} is not {FORMAT:?}",
            m.format
        )));
    }
    if m.version != VERSION {
        return Err(RestoreError::Damaged(format!(
            "{MANIFEST}: version {} (this relay reads version {VERSION})",
            m.version
        )));
    }
    let names: Vec<&str> = m.trees.iter().map(|t| t.name.as_str()).collect();
    let expected: Vec<&str> = TREES.iter().copied().chain([KEYS]).collect();
    if names != expected {
        return Err(RestoreError::Damaged(format!(
            "{MANIFEST}: the entries are {names:?}, this relay has {expected:?}"
        )));
    }
    if let Some(t) = m
        .trees
        .iter()
        .find(|t| t.file != format!("{}.tree", t.name))
    {
        return Err(RestoreError::Damaged(format!(
            "{MANIFEST}: tree {} has file {:?}",
            t.name, t.file
        )));
    }
    Ok(m)
}

/// Reads every tree file into a new database at `dir`, checking each against the manifest.
fn import(from: &Path, manifest: &Manifest, dir: &Path) -> Result<(), RestoreError> {
    let db = sled::Config::new()
        .path(dir)
        .flush_every_ms(None)
        .open()
        .map_err(|e| RestoreError::Io(io(dir, e)))?;
    let sled_err = |e: sled::Error| RestoreError::Io(io(dir, e));
    let keyring = crate::keyring::Keyring::open(&dir.join(crate::store::KEY_FILE))
        .map_err(|e| RestoreError::Io(io(dir, e)))?;
    for t in &manifest.trees {
        let path = from.join(&t.file);
        if t.name == KEYS {
            import_keys(&path, t, &keyring)?;
            continue;
        }
        let tree = db.open_tree(&t.name).map_err(sled_err)?;
        let file = std::fs::File::open(&path).map_err(|e| RestoreError::Io(io(&path, e)))?;
        let mut reader = HashingReader {
            inner: std::io::BufReader::with_capacity(1 << 20, file),
            hash: Sha256::new(),
            bytes: 0,
        };
        let damaged = |why: &str| RestoreError::Damaged(format!("{}: {why}", t.file));
        let mut entries = 0u64;
        let mut batch = sled::Batch::default();
        let mut batch_bytes = 0usize;
        while let Some(key) = reader.record(true).map_err(|e| damaged(&e))? {
            let value = reader
                .record(false)
                .map_err(|e| damaged(&e))?
                .ok_or_else(|| damaged("ends inside a record"))?;
            batch_bytes += key.len() + value.len();
            batch.insert(key, value);
            entries += 1;
            if batch_bytes >= 8 << 20 {
                tree.apply_batch(std::mem::take(&mut batch))
                    .map_err(sled_err)?;
                batch_bytes = 0;
            }
        }
        tree.apply_batch(batch).map_err(sled_err)?;
        if hex::encode(reader.hash.finalize()) != t.sha256 || reader.bytes != t.bytes {
            return Err(damaged(
                "its checksum does not match the manifest (the file was changed or damaged)",
            ));
        }
        if entries != t.entries {
            return Err(damaged(&format!(
                "{entries} entries, the manifest says {}",
                t.entries
            )));
        }
    }
    // Keys first, as everywhere the relay flushes sled.
    keyring.sync().map_err(|e| RestoreError::Io(io(dir, e)))?;
    db.flush().map_err(sled_err)?;
    Ok(())
}

/// Writes the backup's storage keys into the new database's key file, each in its slot.
fn import_keys(
    path: &Path,
    t: &TreeFile,
    keyring: &crate::keyring::Keyring,
) -> Result<(), RestoreError> {
    let file = std::fs::File::open(path).map_err(|e| RestoreError::Io(io(path, e)))?;
    let mut reader = HashingReader {
        inner: std::io::BufReader::with_capacity(1 << 20, file),
        hash: Sha256::new(),
        bytes: 0,
    };
    let damaged = |why: &str| RestoreError::Damaged(format!("{}: {why}", t.file));
    let mut entries = 0u64;
    while let Some(slot) = reader.record(true).map_err(|e| damaged(&e))? {
        let key = reader
            .record(false)
            .map_err(|e| damaged(&e))?
            .ok_or_else(|| damaged("ends inside a record"))?;
        let slot: [u8; 8] = slot
            .try_into()
            .map_err(|_| damaged("a slot is not 8 bytes"))?;
        let key: [u8; crate::keyring::KEY_LEN] = key
            .try_into()
            .map_err(|_| damaged("a key is not 32 bytes"))?;
        keyring
            .put(u64::from_be_bytes(slot), &key)
            .map_err(|e| RestoreError::Io(io(path, e)))?;
        entries += 1;
    }
    if hex::encode(reader.hash.finalize()) != t.sha256 || reader.bytes != t.bytes {
        return Err(damaged(
            "its checksum does not match the manifest (the file was changed or damaged)",
        ));
    }
    if entries != t.entries {
        return Err(damaged(&format!(
            "{entries} entries, the manifest says {}",
            t.entries
        )));
    }
    Ok(())
}

struct HashingReader<R> {
    inner: R,
    hash: Sha256,
    bytes: u64,
}

impl<R: std::io::Read> HashingReader<R> {
    fn fill(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..])? {
                0 => break,
                n => got += n,
            }
        }
        self.hash.update(&buf[..got]);
        self.bytes += got as u64;
        Ok(got)
    }

    /// One length-prefixed part; `None` at a clean end of the file when `may_end`.
    fn record(&mut self, may_end: bool) -> Result<Option<Vec<u8>>, String> {
        let mut len = [0u8; 4];
        match self.fill(&mut len).map_err(|e| e.to_string())? {
            0 if may_end => return Ok(None),
            4 => {}
            _ => return Err("ends inside a record".into()),
        }
        let len = u32::from_be_bytes(len);
        if len > MAX_RECORD {
            return Err(format!("a record of {len} bytes"));
        }
        let mut buf = vec![0u8; len as usize];
        if self.fill(&mut buf).map_err(|e| e.to_string())? != buf.len() {
            return Err("ends inside a record".into());
        }
        Ok(Some(buf))
    }
}

/// Opens the rebuilt database and checks its log: `size` contiguous events, each decoding with
/// its own index, whose leaves hash to `root`, and whose stored subtree hashes (which later
/// appends and proofs use) give the same root.
fn check_log(dir: &Path, root: &Hash, size: u64) -> Result<(), RestoreError> {
    // sled releases its file lock only once its background threads let go of the database
    // `import` just closed: a moment later. Bounded retry (5 s).
    let mut tries = 0;
    let store = loop {
        match Store::open(dir, true) {
            Err(e) if e.to_string().contains("could not acquire lock") && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            other => break other.map_err(|e| RestoreError::Io(io(dir, e)))?,
        }
    };
    let result = (|| {
        let count = store.event_count().map_err(store_err)?;
        if count != size {
            return Err(RestoreError::Damaged(format!(
                "the log counter says {count} entries, the checkpoint {size}"
            )));
        }
        let mut tree = StreamingRoot::default();
        for index in 0..size {
            let leaf = store
                .leaf(index)
                .map_err(store_err)?
                .ok_or_else(|| RestoreError::Damaged(format!("log entry {index} is missing")))?;
            let event = <silta_proto::pb::Event as prost::Message>::decode(leaf.as_slice())
                .map_err(|_| RestoreError::Damaged(format!("log entry {index} does not decode")))?;
            if event.index != index {
                return Err(RestoreError::Damaged(format!(
                    "log entry {index} says it is entry {}",
                    event.index
                )));
            }
            tree.push(tlog::leaf_hash(&leaf));
        }
        if tree.root() != *root {
            return Err(RestoreError::Damaged(format!(
                "the {size} log entries do not hash to the signed root"
            )));
        }
        if tlog::root(&store, size).map_err(store_err)? != *root {
            return Err(RestoreError::Damaged(
                "the stored subtree hashes (levelindex_hash) do not give the signed root".into(),
            ));
        }
        check_ciphertexts(&store)
    })();
    let closed = store.close();
    result?;
    closed.map_err(|e| RestoreError::Io(io(dir, e)))
}

/// Every stored ciphertext opens with its storage key (the AEAD binds it to its message id)
/// and has the digest its message was accepted with: a ciphertext changed in the backup, with
/// its file's checksum fixed up, is refused, not delivered.
fn check_ciphertexts(store: &Store) -> Result<(), RestoreError> {
    let Some(tree) = store.raw_tree("msgid_ciphertext") else {
        return Ok(());
    };
    for kv in tree.iter() {
        let (id, _) = kv.map_err(|e| RestoreError::Io(e.to_string()))?;
        let which = || uuid_or_hex(&id);
        let ciphertext = store
            .ciphertext(&id)
            .map_err(|e| RestoreError::Damaged(format!("message {}: {e}", which())))?
            .ok_or_else(|| {
                RestoreError::Damaged(format!("message {}: its storage key is missing", which()))
            })?;
        let digest = store
            .message(&id)
            .map_err(store_err)?
            .and_then(|m| m.envelope)
            .map(|e| e.ciphertext_sha256)
            .unwrap_or_default();
        if Sha256::digest(&ciphertext).as_slice() != digest.as_slice() {
            return Err(RestoreError::Damaged(format!(
                "message {}: the ciphertext does not have the digest it was accepted with",
                which()
            )));
        }
    }
    Ok(())
}

fn uuid_or_hex(id: &[u8]) -> String {
    uuid::Uuid::from_slice(id)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| hex::encode(id))
}

fn store_err(e: StoreError) -> RestoreError {
    RestoreError::Damaged(e.to_string())
}

/// The RFC 9162 root of a sequence of leaf hashes in O(log n) memory: the perfect subtrees of
/// the binary decomposition of the size, merged as leaves arrive.
#[derive(Default)]
struct StreamingRoot {
    /// (height, hash), heights strictly decreasing.
    stack: Vec<(u32, Hash)>,
}

impl StreamingRoot {
    fn push(&mut self, leaf: Hash) {
        let mut node = (0u32, leaf);
        while let Some(&(h, left)) = self.stack.last() {
            if h != node.0 {
                break;
            }
            self.stack.pop();
            node = (h + 1, tlog::node_hash(&left, &node.1));
        }
        self.stack.push(node);
    }

    fn root(&self) -> Hash {
        let mut it = self.stack.iter().rev();
        let Some(&(_, mut acc)) = it.next() else {
            return tlog::empty_root();
        };
        for (_, left) in it {
            acc = tlog::node_hash(left, &acc);
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_root_matches_the_stored_tree() {
        let mut memory = tlog::MemoryTree::default();
        let mut streaming = StreamingRoot::default();
        assert_eq!(streaming.root(), memory.root(0));
        for i in 0u32..70 {
            let leaf = tlog::leaf_hash(&i.to_be_bytes());
            memory.push(leaf);
            streaming.push(leaf);
            assert_eq!(
                streaming.root(),
                memory.root(u64::from(i) + 1),
                "size {}",
                i + 1
            );
        }
    }

    /// A relay that takes the request and never answers (wedged) does not hang the command.
    #[test]
    fn a_request_to_a_relay_that_never_answers_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join(SOCKET);
        let _wedged = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let started = Instant::now();
        let err = request(&socket, Path::new("/backup"), Duration::from_millis(300)).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_target_that_is_not_empty_or_relative_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x"), b"x").unwrap();
        for bad in [dir.path(), Path::new("relative/backup")] {
            assert!(matches!(prepare_target(bad), Err(BackupError::Target(_))));
        }
        let (_, partial) = prepare_target(&dir.path().join("new")).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&partial).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
