//! Content-free notifications: so a case system or a desktop can alert a person without the
//! content leaving Silta.
//!
//! For every new message and every item that falls due or overdue ([`crate::due`]) the daemon
//! writes one JSON file into `notify/` (mode 0600, `<unix-ms>-<event>-<message-id>.json`) and, if
//! `[daemon] notify_command` is set, runs it (an argument list, no shell) with the event, kind,
//! urgency and message id as arguments and the same JSON on stdin, stopped after
//! `notify_timeout_ms`. A notification carries the event, kind, urgency, message id, case
//! reference and due time: never content, names or senders' free text. At most `notify_keep`
//! files are kept (the oldest go first). A failing hook or file is logged, never fatal.

use std::{collections::HashSet, path::PathBuf, sync::Mutex, time::Duration};

use serde::Serialize;

use crate::{config::ClientConfig, due::DueItem, record::MessageRecord};

/// One notification.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    /// `message` (a new message), `due` (due, not yet overdue) or `overdue`.
    pub event: &'static str,
    /// What is due (`information-response`, `meeting`, ...) for `due`/`overdue`.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub what: &'static str,
    /// The message's kind.
    pub kind: String,
    /// Its urgency.
    pub urgency: String,
    /// Its id.
    pub message_id: String,
    /// Its case (32 hex digits), or empty.
    pub case: String,
    /// When it is due, for `due`/`overdue`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub due: String,
    /// When the notification was made (RFC 3339).
    pub time: String,
}

impl Notification {
    /// A new message.
    pub fn message(record: &MessageRecord) -> Self {
        Notification {
            event: "message",
            what: "",
            kind: record.kind.clone(),
            urgency: record.urgency.clone(),
            message_id: record.message_id.to_string(),
            case: if record.case.is_none() {
                String::new()
            } else {
                hex::encode(record.case.0)
            },
            due: String::new(),
            time: crate::times::now_rfc3339(),
        }
    }

    /// An item due or overdue.
    pub fn due(item: &DueItem) -> Self {
        Notification {
            event: if item.overdue { "overdue" } else { "due" },
            what: item.what,
            kind: item.kind.clone(),
            urgency: item.urgency.clone(),
            message_id: item.message_id.clone(),
            case: item.case.clone(),
            due: item.due.clone(),
            time: crate::times::now_rfc3339(),
        }
    }
}

/// Writes notifications and runs the hook.
pub struct Notifier {
    dir: PathBuf,
    keep: usize,
    command: Vec<String>,
    timeout: Duration,
    /// Due items already notified: (message id, what, overdue).
    sent: Mutex<HashSet<(String, &'static str, bool)>>,
}

impl Notifier {
    /// From the configuration, writing into `dir` (the daemon's notify/).
    pub fn new(config: &ClientConfig, dir: PathBuf) -> Self {
        Notifier {
            dir,
            keep: config.daemon.notify_keep,
            command: config.daemon.notify_command.clone(),
            timeout: Duration::from_millis(config.daemon.notify_timeout_ms.max(1)),
            sent: Mutex::default(),
        }
    }

    /// Notifies each item of `items` once as due and once as overdue.
    pub async fn due(&self, items: &[DueItem]) {
        for item in items {
            let fresh = self.sent.lock().unwrap_or_else(|e| e.into_inner()).insert((
                item.message_id.clone(),
                item.what,
                item.overdue,
            ));
            if fresh {
                self.notify(&Notification::due(item)).await;
            }
        }
    }

    /// Writes `n` into notify/ and runs the hook; problems are logged.
    pub async fn notify(&self, n: &Notification) {
        let json = serde_json::to_string(n).expect("json serialises");
        if self.keep > 0 {
            let ms = crate::times::unix_ms(std::time::SystemTime::now());
            let path = self
                .dir
                .join(format!("{ms:013}-{}-{}.json", n.event, n.message_id));
            if let Err(e) = crate::fsutil::write_atomic(&path, json.as_bytes()) {
                tracing::warn!(error = %e, "could not write a notification into notify/");
            }
            self.prune();
        }
        if let Some((program, args)) = self.command.split_first() {
            let result = tokio::time::timeout(self.timeout, async {
                let mut child = tokio::process::Command::new(program)
                    .args(args)
                    .args([n.event, &n.kind, &n.urgency, &n.message_id])
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .spawn()?;
                if let Some(mut stdin) = child.stdin.take() {
                    use tokio::io::AsyncWriteExt as _;
                    // A hook that does not read its stdin is fine.
                    let _ = stdin.write_all(json.as_bytes()).await;
                }
                child.wait().await
            })
            .await;
            match result {
                Ok(Ok(status)) if status.success() => {}
                Ok(Ok(status)) => {
                    tracing::warn!(program = %program, status = %status, "the notify command failed")
                }
                Ok(Err(e)) => {
                    tracing::warn!(program = %program, error = %e, "the notify command could not run")
                }
                Err(_) => tracing::warn!(
                    program = %program,
                    timeout_ms = self.timeout.as_millis() as u64,
                    "the notify command did not finish in time; stopped"
                ),
            }
        }
    }

    /// Keeps at most `keep` notification files: the oldest (by name: time first) go.
    fn prune(&self) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut names: Vec<_> = dir
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
            .collect();
        if names.len() <= self.keep {
            return;
        }
        names.sort();
        for n in &names[..names.len() - self.keep] {
            let _ = std::fs::remove_file(self.dir.join(n));
        }
    }
}
