//! The daemon's durable queue (sled, `STATE_DIR/daemon-db`): one [`Job`] per form, by message
//! id, in `msgid_job`; the ids still to send in `msgid_pending`; a form's name and content
//! digest to its id in `namedigest_msgid` (the same form dropped again is not sent again).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sled::Transactional as _;

use super::{Daemon, DaemonError};
use crate::{
    client::DeliveryStatus,
    form::{legal_basis_name, read_envelope_form, urgency_name},
    payload::kind_name,
};

/// Where a queued form is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum JobState {
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
pub(super) struct Job {
    pub(super) message_id: String,
    pub(super) file_name: String,
    pub(super) form: String,
    pub(super) json: bool,
    pub(super) state: JobState,
    pub(super) queued_at: String,
    pub(super) attempts: u32,
    /// Milliseconds since the Unix epoch.
    pub(super) next_attempt_ms: u64,
    #[serde(default)]
    pub(super) last_error: String,
    /// The base name in sent/ (the form is `sent/<base>`, its state `sent/<base>.status.json`).
    #[serde(default)]
    pub(super) sent_base: String,
    /// The outbox file was moved away.
    #[serde(default)]
    pub(super) filed: bool,
    #[serde(default)]
    pub(super) sent_at: String,
    #[serde(default)]
    pub(super) log_index: u64,
    #[serde(default)]
    pub(super) receipt_checked: bool,
    #[serde(default)]
    pub(super) receipt_problem: String,
    #[serde(default)]
    pub(super) recipients: BTreeMap<String, DeliveryStatus>,
    /// SHA-256 of the sealed message (hex): what recipients' acknowledgements sign.
    #[serde(default)]
    pub(super) ciphertext_sha256: String,
    /// The relay's receipt in full ([`crate::audit::receipt_json`]).
    #[serde(default)]
    pub(super) receipt: Option<serde_json::Value>,
    /// kind, to, case, urgency, legal basis: what sent/ status files show. Kept when the form
    /// text itself is dropped from the queue after filing.
    #[serde(default)]
    pub(super) summary: Option<Summary>,
    /// For a re-sending (`silta resend`): the original message's id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(super) resend_of: String,
    /// The re-sendings of this message to recipients who could not open it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) resent_as: Vec<crate::record::Resent>,
    /// SHA-256 (hex) of the form as filed in sent/: a re-sending sends only that content, not
    /// whatever the file holds later.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(super) form_sha256: String,
}

/// The envelope facts of a form, for status files.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Summary {
    pub(super) kind: String,
    pub(super) to: Vec<String>,
    pub(super) case: String,
    pub(super) urgency: String,
    pub(super) legal_basis: String,
}

impl Daemon {
    pub(super) fn queue_error(&self, e: sled::Error) -> DaemonError {
        DaemonError::Queue {
            path: self.config.state_dir.join("daemon-db"),
            error: e.to_string(),
        }
    }

    pub(super) fn put(&self, job: &Job) -> Result<(), DaemonError> {
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

    pub(super) fn get(&self, id: &[u8]) -> Result<Option<Job>, DaemonError> {
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

    /// The jobs still to send (queued or sealed), in message-id order (oldest first).
    pub(super) fn pending(&self) -> Result<Vec<Job>, DaemonError> {
        let mut jobs = Vec::new();
        for id in self.pending.iter().keys() {
            let id = id.map_err(|e| self.queue_error(e))?;
            if let Some(job) = self.get(&id)?
                && matches!(job.state, JobState::Queued | JobState::Sealed)
            {
                jobs.push(job);
            }
        }
        Ok(jobs)
    }
}

/// What identifies "the same form dropped again": its name and its content.
pub(super) fn form_key(name: &str, text: &str) -> aws_lc_rs::digest::Digest {
    aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        &[name.as_bytes(), &[0], text.as_bytes()].concat(),
    )
}

/// The envelope facts of a form (empty if it does not parse).
pub(super) fn summary_of(form: &str, json: bool) -> Summary {
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
