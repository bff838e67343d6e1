//! The daemon's folders: outbox/ scanning and claiming, queued/ recovery after a crash, failed/
//! and sent/ files, and the status files beside sent forms.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use super::{
    Daemon, DaemonError,
    queue::{Job, JobState, Summary, form_key, summary_of},
};
use crate::{
    client::{DeliveryState, DeliveryStatus},
    config::Folders,
    form::read_envelope_form,
    fsutil::{create_private_dir, move_file, write_atomic},
    payload::kind_name,
    times::now_rfc3339,
};

/// Creates the daemon's folders (mode 0700).
pub(super) fn create(folders: &Folders) -> Result<(), DaemonError> {
    for d in [
        &folders.outbox,
        &folders.queued,
        &folders.sent,
        &folders.failed,
        &folders.inbox,
        &folders.internal,
        &folders.notify,
        &folders.outbox.with_file_name(super::resend::RESEND_DIR),
    ] {
        create_private_dir(d).map_err(DaemonError::Folder)?;
    }
    Ok(())
}
impl Daemon {
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
    pub(super) fn recover(&self) -> Result<(), DaemonError> {
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
            resend_of: String::new(),
            resent_as: Vec::new(),
            form_sha256: String::new(),
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
    pub(super) fn fail_claimed(
        &self,
        id: uuid::Uuid,
        name: &str,
        reason: &str,
    ) -> Result<(), DaemonError> {
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

    /// Writes sent/<base> and its status file, then removes the outbox file.
    pub(super) fn file_sent(&self, job: &mut Job) -> Result<(), DaemonError> {
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
            job.form_sha256 = hex::encode(crate::seal::sha256(job.form.as_bytes()));
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

    pub(super) fn write_status(&self, job: &Job) -> Result<(), DaemonError> {
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
        let mut status = serde_json::json!({
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
        // A re-sending names its original; an original lists its re-sendings (`silta resend`).
        if !job.resend_of.is_empty() {
            status["resend_of"] = job.resend_of.clone().into();
        }
        if !job.resent_as.is_empty() {
            status["resent_as"] = serde_json::to_value(&job.resent_as).unwrap_or_default();
        }
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
pub(super) fn read_form_file(path: &Path) -> Result<Vec<u8>, String> {
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

/// The least advanced state over all recipients: "sent" until each reported something.
fn overall_state(to: &[String], recipients: &BTreeMap<String, DeliveryStatus>) -> DeliveryState {
    to.iter()
        .map(|r| recipients.get(r).map_or(DeliveryState::Sent, |s| s.state))
        .min_by_key(|s| s.progress())
        .unwrap_or(DeliveryState::Sent)
}
