//! Re-sending at a centre whose daemon sent the message (`silta resend ID` while, or before, the
//! daemon runs). The daemon owns its queue database and sent/ files (one process holds the
//! lock), so `silta resend` does not touch them: it leaves a request `resend/<message-id>.request`
//! in the daemon's folder, and the daemon, connected to the relay, re-sends it through the
//! library ([`crate::resend`]): the form kept in `sent/` re-sealed to the recipients whose copy
//! is undeliverable or unreadable, under a new id naming the original. The new message is filed
//! as `sent/<new-id>.<name>` with its own status file (`"resend_of"`); the original's status file
//! lists it (`"resent_as"`). A request that cannot be done is answered in
//! `resend/<message-id>.error` (mode 0600) and removed; one that failed only for now (the relay
//! away) stays for the next scan. A case-management system may drop request files too (an empty
//! file named `<message-id>.request` is enough).

use std::path::Path;

use crate::{
    client::{Client, ClientError},
    form::read_envelope_form,
    fsutil::write_atomic,
    ids::MessageId,
    outbox::{Disclosure, Outbox},
    record::Resent,
    resend::{Original, ResendError, resend},
    times::now_rfc3339,
};

use super::{
    Daemon, DaemonError,
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
    let dir = folder.join(RESEND_DIR);
    crate::fsutil::ensure_private_dir(&dir)?;
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

/// How a request ended.
enum Outcome {
    /// Done, or will never be done: the request goes (with an `.error` file if refused).
    Done(String),
    Refused(String),
    /// Try again at the next scan (the relay away).
    Later(ClientError),
}

impl Daemon {
    /// Handles the resend requests waiting in `resend/`. Returns whether the connection should
    /// be dropped (a request failed for now: it is tried again after reconnecting).
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
        for name in requests {
            let stem = name.trim_end_matches(".request");
            let outcome = match uuid::Uuid::parse_str(stem) {
                Ok(id) => self.resend_one(client, id).await?,
                Err(_) => Outcome::Refused(format!(
                    "{name:?} does not name a message id (<message-id>.request)"
                )),
            };
            let path = dir.join(&name);
            match outcome {
                Outcome::Done(what) => {
                    tracing::info!(request = %name, "{what}");
                }
                Outcome::Refused(why) => {
                    let error = dir.join(format!("{stem}.error"));
                    write_atomic(&error, format!("{why}\n").as_bytes())
                        .map_err(DaemonError::Folder)?;
                    tracing::warn!(request = %name, error_file = %error.display(), "resend request refused; the .error file says why");
                }
                Outcome::Later(e) => {
                    tracing::warn!(request = %name, error = %e, "could not re-send now; trying again later");
                    return Ok(true);
                }
            }
            match std::fs::remove_file(&path) {
                Ok(()) => crate::fsutil::sync_dir_of(&path).map_err(DaemonError::Folder)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(DaemonError::Folder(format!("{}: {e}", path.display()))),
            }
        }
        Ok(false)
    }

    async fn resend_one(&self, client: &Client, id: uuid::Uuid) -> Result<Outcome, DaemonError> {
        let Some(mut job) = self.get(id.as_bytes())? else {
            return Ok(Outcome::Refused(format!(
                "this daemon sent no message {id}"
            )));
        };
        if job.state != JobState::Sent || job.sent_base.is_empty() {
            return Ok(Outcome::Refused(format!(
                "message {id} ({}) was not sent (yet): nothing to re-send",
                job.file_name
            )));
        }
        let form_path = self.folders.sent.join(&job.sent_base);
        let text = match std::fs::read_to_string(&form_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Outcome::Refused(format!(
                    "the form of message {id} is no longer kept ({} is gone: retention deleted it, or it was moved); drop the form into outbox/ again to send it anew",
                    form_path.display()
                )));
            }
            Err(e) => return Err(DaemonError::Folder(format!("{}: {e}", form_path.display()))),
        };
        let (header, payload) = match read_envelope_form(&text, job.json) {
            Ok(x) => x,
            Err(e) => {
                return Ok(Outcome::Refused(format!(
                    "the kept form {} no longer reads: {e}",
                    form_path.display()
                )));
            }
        };
        let original = Original {
            message_id: *id.as_bytes(),
            draft: header.draft(*id.as_bytes(), payload),
            known: job.recipients.clone(),
            resent: job
                .resent_as
                .iter()
                .map(|r| (r.message_id, r.to.clone()))
                .collect(),
        };
        let outbox = Outbox::open(client.state(), self.access.clone())?;
        let disclosure = Disclosure {
            who: "process:silta-daemon".into(),
            purpose: format!("re-sending {id} to recipients who could not open it"),
            keep_copy: false,
        };
        let resent = match resend(client, &outbox, &original, &disclosure).await {
            Ok(r) => r,
            Err(ResendError::Client(e)) if matches!(e.kind(), crate::ErrorKind::Retry { .. }) => {
                return Ok(Outcome::Later(e));
            }
            Err(e) => return Ok(Outcome::Refused(e.to_string())),
        };
        let new_id = uuid::Uuid::from_bytes(resent.sent.message_id);
        if self.get(new_id.as_bytes())?.is_none() {
            let mut summary = job.summary.clone().unwrap_or_default();
            summary.to = resent.to.clone();
            let mut new_job = Job {
                message_id: new_id.to_string(),
                file_name: job.file_name.clone(),
                form: text,
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
                resend_of: id.to_string(),
                resent_as: Vec::new(),
            };
            self.put(&new_job)?;
            self.file_sent(&mut new_job)?;
        }
        let new = MessageId(resent.sent.message_id);
        if !job.resent_as.iter().any(|r| r.message_id == new) {
            job.resent_as.push(Resent {
                message_id: new,
                to: resent.to.clone(),
                at: crate::times::rfc3339(resent.sent.receipt.accepted_at.as_ref()),
            });
            self.put(&job)?;
            self.write_status(&job)?;
        }
        Ok(Outcome::Done(format!(
            "re-sent {id} to {} as {new_id} (log index {})",
            resent.to.join(", "),
            resent.sent.receipt.log_index
        )))
    }
}
