//! Re-sending at a centre whose daemon sent the message (`silta resend ID` while, or before, the
//! daemon runs). The daemon owns its queue database and sent/ files (one process holds the
//! lock), so `silta resend` does not touch them: it leaves a request `resend/<message-id>.request`
//! in the daemon's folder, and the daemon, connected to the relay, re-sends it through the
//! library ([`crate::resend`]): the form kept in `sent/` re-sealed to the recipients whose copy
//! is undeliverable or unreadable, under a new id naming the original. The new message is filed
//! as `sent/<new-id>.<name>` with its own status file (`"resend_of"`); the original's status file
//! lists it (`"resent_as"`). A request that cannot be done is answered in
//! `resend/<message-id>.error` (mode 0600) and removed; one that failed only for now (the relay
//! away) stays and is tried again after a backoff of its own, while the other requests go on;
//! only the queue database failing stops the daemon. A case-management system may drop request
//! files too (an empty file named `<message-id>.request` is enough; `silta resend` writes who
//! asked, which goes into the disclosure's access-log entry).
//!
//! Only the content sent as the message is re-sent: the form in sent/ must be the one filed
//! (its SHA-256 is kept in the queue), a regular file (never a symbolic link's target) of at
//! most the outbox's size limit. The new `sent/<new-id>.<name>` is that same form, so its
//! `[envelope]` still lists all the original's recipients; its status file's `"to"` says whom
//! the re-sending went to.

use std::{path::Path, time::Instant};

use silta_certs::Principal;

use crate::{
    client::{Client, ClientError},
    form::read_envelope_form,
    fsutil::write_atomic,
    ids::MessageId,
    outbox::{Disclosure, Outbox},
    record::Resent as RecordResent,
    resend::{Original, ResendError, Resent, resend},
    text::printable_line,
    times::now_rfc3339,
};

use super::{
    Daemon, DaemonError,
    folders::read_form_file,
    queue::{Job, JobState},
};

/// The daemon's folder of resend requests.
pub const RESEND_DIR: &str = "resend";

/// Where a request for `id` was left, and for which sent/ file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    /// The full message id.
    pub message_id: String,
    /// The form's name in sent/.
    pub file: String,
    /// Its status file in sent/.
    pub status_file: String,
    /// The request file.
    pub path: std::path::PathBuf,
}

/// Leaves a request for the daemon of `folder` to re-send the form it sent as `id` (the id or a
/// unique prefix of 8+ characters, looked up in `sent/*.status.json`). `None` if the daemon sent
/// no such message (it may be in the inbox's store).
pub fn request(folder: &Path, id: &str, who: &str) -> Result<Option<Requested>, String> {
    let id = id.trim().to_ascii_lowercase();
    let sent = folder.join("sent");
    if id.len() < 8 || !sent.is_dir() {
        return Ok(None);
    }
    let mut found = Vec::new();
    for e in std::fs::read_dir(&sent)
        .map_err(|e| format!("{}: {e}", sent.display()))?
        .filter_map(|e| e.ok())
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".status.json") {
            continue;
        }
        let Ok(bytes) = std::fs::read(e.path()) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        if let Some(m) = v["message_id"].as_str()
            && m.starts_with(&id)
        {
            found.push((
                m.to_owned(),
                v["file"].as_str().unwrap_or_default().to_owned(),
                name,
            ));
        }
    }
    found.sort();
    found.dedup_by(|a, b| a.0 == b.0);
    let (message_id, file, status_file) = match found.len() {
        0 => return Ok(None),
        1 => found.remove(0),
        n => return Err(format!("{id} matches {n} sent forms; give more of the id")),
    };
    // Only a message id makes a file name here (a status file is only a file in sent/).
    let Ok(message_id) = uuid::Uuid::parse_str(&message_id).map(|u| u.to_string()) else {
        return Ok(None);
    };
    let dir = folder.join(RESEND_DIR);
    crate::fsutil::ensure_private_dir(&dir)?;
    // An answer to an earlier request is not this one's.
    let error = dir.join(format!("{message_id}.error"));
    match std::fs::remove_file(&error) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", error.display())),
    }
    let path = dir.join(format!("{message_id}.request"));
    let body = serde_json::json!({
        "message_id": message_id,
        "requested_by": who,
        "requested_at": now_rfc3339(),
    });
    write_atomic(
        &path,
        serde_json::to_string_pretty(&body)
            .expect("json")
            .as_bytes(),
    )?;
    Ok(Some(Requested {
        message_id,
        file,
        status_file,
        path,
    }))
}

/// Largest request file read (its JSON names who asked).
const MAX_REQUEST_BYTES: u64 = 4096;

/// How a request ended.
enum Outcome {
    /// Done: the request goes.
    Done(String),
    /// Will never be done: the request goes, with an `.error` file saying why.
    Refused(String),
    /// Try again later, after a backoff (the relay away, a folder not writable now); whether
    /// the connection should be dropped.
    Later(String, bool),
}

/// Who asked for a request, from its file: `requested_by`, printable and bounded; empty if not
/// said (an empty file from a case system) or not readable.
fn requested_by(path: &Path) -> String {
    use std::{io::Read as _, os::unix::fs::OpenOptionsExt as _};
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    else {
        return String::new();
    };
    if !file.metadata().is_ok_and(|m| m.file_type().is_file()) {
        return String::new();
    }
    let mut bytes = Vec::new();
    if file
        .take(MAX_REQUEST_BYTES)
        .read_to_end(&mut bytes)
        .is_err()
    {
        return String::new();
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return String::new();
    };
    let who: String = printable_line(v["requested_by"].as_str().unwrap_or_default())
        .chars()
        .filter(|c| !c.is_whitespace() || *c == ' ')
        .take(64)
        .collect();
    who.trim().to_owned()
}

impl Daemon {
    /// Handles the resend requests waiting in `resend/`. A request that fails for now waits
    /// (its own backoff) and the others carry on; one that cannot be done is answered in its
    /// `.error` file. Only the queue database failing stops the daemon. Returns whether the
    /// connection should be dropped (the relay connection failed).
    pub(super) async fn resend_requested(&self, client: &Client) -> Result<bool, DaemonError> {
        let dir = self.config.daemon.folder.join(RESEND_DIR);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(false);
        };
        let mut requests: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|n| n.ends_with(".request") && !n.starts_with('.'))
            .collect();
        requests.sort();
        let now = Instant::now();
        {
            let mut waiting = self
                .resend_waiting
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            waiting.retain(|n, _| requests.contains(n));
            requests.retain(|n| waiting.get(n).is_none_or(|(_, at)| *at <= now));
        }
        for name in requests {
            let stem = name.trim_end_matches(".request");
            let path = dir.join(&name);
            let outcome = match uuid::Uuid::parse_str(stem) {
                Ok(id) if id.to_string() == stem => {
                    let who = requested_by(&path);
                    self.resend_one(client, id, &who).await?
                }
                _ => Outcome::Refused(format!(
                    "{} does not name a message id (<message-id>.request, the id in its usual form)",
                    printable_line(&format!("{name:?}"))
                )),
            };
            let error = dir.join(format!("{stem}.error"));
            match outcome {
                Outcome::Done(what) => {
                    tracing::info!(request = ?name, "{what}");
                    // An answer to an earlier request no longer holds.
                    if let Err(e) = std::fs::remove_file(&error)
                        && e.kind() != std::io::ErrorKind::NotFound
                    {
                        tracing::warn!(request = ?name, error = %e, "could not remove the old .error file of a request now done");
                    }
                }
                Outcome::Refused(why) => {
                    match write_atomic(&error, format!("{why}\n").as_bytes()) {
                        Ok(()) => {
                            tracing::warn!(request = ?name, error_file = ?error, "resend request refused; the .error file says why");
                        }
                        Err(e) => {
                            tracing::warn!(request = ?name, why = %why, error = %e, "resend request refused, and the .error file could not be written");
                        }
                    }
                }
                Outcome::Later(why, reconnect) => {
                    let mut waiting = self
                        .resend_waiting
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    let attempts = waiting.get(&name).map_or(0, |(a, _)| *a);
                    let delay = self.backoff(attempts);
                    waiting.insert(name.clone(), (attempts.saturating_add(1), now + delay));
                    tracing::warn!(request = ?name, error = %why, retry_in_s = delay.as_secs_f32(), "could not re-send now; trying again later");
                    if reconnect {
                        return Ok(true);
                    }
                    continue;
                }
            }
            let removed = match std::fs::remove_file(&path) {
                Ok(()) => crate::fsutil::sync_dir_of(&path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(format!("{}: {e}", path.display())),
            };
            if let Err(e) = removed {
                // Not looked at again until after a long wait (it would be answered the same).
                let mut waiting = self
                    .resend_waiting
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                waiting.insert(name.clone(), (u32::MAX, now + self.backoff(20)));
                tracing::warn!(request = ?name, error = %e, "a handled resend request could not be removed; remove it");
            }
        }
        Ok(false)
    }

    async fn resend_one(
        &self,
        client: &Client,
        id: uuid::Uuid,
        who: &str,
    ) -> Result<Outcome, DaemonError> {
        let Some(mut job) = self.get(id.as_bytes())? else {
            return Ok(Outcome::Refused(format!(
                "this daemon sent no message {id}"
            )));
        };
        if job.state != JobState::Sent || job.sent_base.is_empty() {
            return Ok(Outcome::Refused(format!(
                "message {id} ({}) was not sent (yet): nothing to re-send",
                printable_line(&job.file_name)
            )));
        }
        let form_path = self.folders.sent.join(&job.sent_base);
        let shown = printable_line(&form_path.display().to_string());
        let text = match std::fs::symlink_metadata(&form_path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Outcome::Refused(format!(
                    "the form of message {id} is no longer kept ({shown} is gone: retention deleted it, or it was moved); drop the form into outbox/ again to send it anew"
                )));
            }
            _ => match read_form_file(&form_path).map(String::from_utf8) {
                Ok(Ok(t)) => t,
                Ok(Err(_)) => {
                    return Ok(Outcome::Refused(format!(
                        "the kept form {shown} is not UTF-8 text: nothing was re-sent"
                    )));
                }
                Err(why) => {
                    return Ok(Outcome::Refused(format!(
                        "the kept form {shown} cannot be re-sent ({why}): nothing was re-sent"
                    )));
                }
            },
        };
        // Only what was sent as this message is re-sent as it, never what the file holds now.
        if !job.form_sha256.is_empty()
            && hex::encode(crate::seal::sha256(text.as_bytes())) != job.form_sha256
        {
            return Ok(Outcome::Refused(format!(
                "the kept form {shown} was changed after message {id} was sent: nothing was re-sent. A re-sending carries the same content; send changed content as a new form (outbox/)"
            )));
        }
        let (header, payload) = match read_envelope_form(&text, job.json) {
            Ok(x) => x,
            Err(e) => {
                return Ok(Outcome::Refused(format!(
                    "the kept form {shown} no longer reads: {e}"
                )));
            }
        };
        let mut draft = header.draft(*id.as_bytes(), payload);
        // The recipients it was sealed to, as the queue kept them.
        if let Some(sum) = &job.summary
            && !sum.to.is_empty()
        {
            match sum
                .to
                .iter()
                .map(|r| r.parse::<Principal>())
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(to) => draft.recipients = to,
                Err(e) => {
                    return Ok(Outcome::Refused(format!(
                        "the recipients kept for message {id} do not read: {e}"
                    )));
                }
            }
        }
        let ours: std::collections::BTreeSet<String> =
            draft.recipients.iter().map(|p| p.to_string()).collect();
        let (known, _) = crate::resend::only_recipients(&ours, job.recipients.clone());
        let original = Original {
            message_id: *id.as_bytes(),
            draft,
            known,
            resent: job
                .resent_as
                .iter()
                .map(|r| (r.message_id, r.to.clone()))
                .collect(),
        };
        let outbox = Outbox::open(client.state(), self.access.clone())?;
        let disclosure = Disclosure {
            who: if who.is_empty() {
                "process:silta-daemon".into()
            } else {
                format!("process:silta-daemon (requested by {who})")
            },
            purpose: format!("re-sending {id} to recipients who could not open it"),
            keep_copy: false,
        };
        let mut said = Vec::new();
        // One re-sending per call: an unfinished earlier one is finished (and filed) first.
        for _ in 0..8 {
            let resent = match resend(client, &outbox, &original, &disclosure).await {
                Ok(r) => r,
                Err(ResendError::NothingToResend(_)) if !said.is_empty() => break,
                // The client's database is the daemon's to stop for.
                Err(ResendError::Client(ClientError::State(e))) => {
                    return Err(DaemonError::Client(ClientError::State(e)));
                }
                Err(ResendError::Client(e))
                    if matches!(
                        e.kind(),
                        crate::ErrorKind::Retry { .. } | crate::ErrorKind::Local
                    ) =>
                {
                    let reconnect = matches!(e.kind(), crate::ErrorKind::Retry { .. })
                        && e.kind().needs_reconnect();
                    return Ok(Outcome::Later(e.to_string(), reconnect));
                }
                Err(e) => return Ok(Outcome::Refused(e.to_string())),
            };
            for w in &resent.warnings {
                tracing::warn!(message_id = %id, "{w}");
            }
            if let Err(e) = self.file_resent(&mut job, &resent, &text) {
                return match e {
                    DaemonError::Folder(why) => Ok(Outcome::Later(why, false)),
                    e => Err(e),
                };
            }
            said.push(format!(
                "re-sent {id} to {} as {} (log index {})",
                resent.to.join(", "),
                uuid::Uuid::from_bytes(resent.sent.message_id),
                resent.sent.receipt.log_index
            ));
            if !resent.finished_earlier {
                break;
            }
        }
        Ok(Outcome::Done(said.join("; ")))
    }

    /// Files a re-sending the relay accepted: its queue job and sent/ files (once, also after a
    /// crash between the two), and the original's `resent_as`.
    fn file_resent(&self, job: &mut Job, resent: &Resent, text: &str) -> Result<(), DaemonError> {
        let new_id = uuid::Uuid::from_bytes(resent.sent.message_id);
        match self.get(new_id.as_bytes())? {
            Some(mut j) if !j.filed => self.file_sent(&mut j)?,
            Some(_) => {}
            None => {
                let mut summary = job.summary.clone().unwrap_or_default();
                summary.to = resent.to.clone();
                let mut new_job = Job {
                    message_id: new_id.to_string(),
                    file_name: job.file_name.clone(),
                    form: text.to_owned(),
                    json: job.json,
                    state: JobState::Sent,
                    queued_at: now_rfc3339(),
                    attempts: 1,
                    next_attempt_ms: 0,
                    last_error: String::new(),
                    sent_base: format!("{new_id}.{}", job.file_name),
                    filed: false,
                    sent_at: now_rfc3339(),
                    log_index: resent.sent.receipt.log_index,
                    receipt_checked: resent.sent.receipt_checked,
                    receipt_problem: resent.sent.receipt_problem.clone().unwrap_or_default(),
                    recipients: Default::default(),
                    ciphertext_sha256: hex::encode(&resent.sent.ciphertext_sha256),
                    receipt: Some(crate::audit::receipt_json(&resent.sent.receipt)),
                    summary: Some(summary),
                    resend_of: job.message_id.clone(),
                    resent_as: Vec::new(),
                    form_sha256: String::new(),
                };
                self.put(&new_job)?;
                self.file_sent(&mut new_job)?;
            }
        }
        let new = MessageId(resent.sent.message_id);
        if !job.resent_as.iter().any(|r| r.message_id == new) {
            job.resent_as.push(RecordResent {
                message_id: new,
                to: resent.to.clone(),
                at: crate::times::rfc3339(resent.sent.receipt.accepted_at.as_ref()),
            });
            self.put(job)?;
        }
        self.write_status(job)?;
        Ok(())
    }
}
