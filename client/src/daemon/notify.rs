//! Content-free notifications: so a case system or a desktop can alert a person without the
//! content leaving Silta.
//!
//! For every new message and every item that falls due or overdue ([`crate::due`]) the daemon
//! writes one JSON file into `notify/` (mode 0600, `<unix-ms>-<event>-<message-id>.json`) and, if
//! `[daemon] notify_command` is set, runs it (an argument list, no shell) with the event, kind,
//! urgency and message id as arguments and the JSON without the case reference on stdin, stopped
//! after `notify_timeout_ms`. A notification file carries the event, kind, urgency, message id,
//! case reference and due time: never content, names or senders' free text; the hook gets no
//! case reference (its arguments are visible to every local user in `ps`, and it may pass them
//! on to a desktop or a phone). At most `notify_keep` files are kept (the oldest go first).
//!
//! The hook runs off the receive path: at most [`HOOKS_AT_ONCE`] at a time; a notification that
//! comes while they all still run is not given to the hook (logged; its file is written). A
//! failing hook or file is logged, never fatal.

use std::{collections::HashSet, path::PathBuf, sync::Arc, sync::Mutex, time::Duration};

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

/// How many hooks may run at once.
pub const HOOKS_AT_ONCE: usize = 2;

/// Writes notifications and runs the hook.
pub struct Notifier {
    dir: PathBuf,
    keep: usize,
    command: Arc<Vec<String>>,
    timeout: Duration,
    /// Due items already notified: (message id, what, overdue). Only items still due or
    /// overdue stay ([`Notifier::due_all`]).
    sent: Mutex<HashSet<(String, &'static str, bool)>>,
    /// Permits for hooks running now.
    hooks: Arc<tokio::sync::Semaphore>,
}

impl Notifier {
    /// From the configuration, writing into `dir` (the daemon's notify/).
    pub fn new(config: &ClientConfig, dir: PathBuf) -> Self {
        Notifier {
            dir,
            keep: config.daemon.notify_keep,
            command: Arc::new(config.daemon.notify_command.clone()),
            timeout: Duration::from_millis(config.daemon.notify_timeout_ms.max(1)),
            sent: Mutex::default(),
            hooks: Arc::new(tokio::sync::Semaphore::new(HOOKS_AT_ONCE)),
        }
    }

    /// [`Notifier::due`] with every item due or overdue now (all of inbox/): then forgets the
    /// items no longer among them (answered, or gone from inbox/), so what it remembers stays
    /// as small as what is due.
    pub async fn due_all(&self, items: &[DueItem]) {
        self.due(items).await;
        let now: HashSet<(&str, &str, bool)> = items
            .iter()
            .map(|i| (i.message_id.as_str(), i.what, i.overdue))
            .collect();
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(id, what, overdue)| now.contains(&(id.as_str(), *what, *overdue)));
    }

    /// How many due items are remembered as notified.
    pub fn remembered(&self) -> usize {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).len()
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
        if self.command.is_empty() {
            return;
        }
        let Ok(permit) = self.hooks.clone().try_acquire_owned() else {
            tracing::warn!(
                event = n.event,
                message_id = %n.message_id,
                "the notify command is still running for earlier notifications; not run for this one (its file is in notify/)"
            );
            return;
        };
        let (command, timeout) = (self.command.clone(), self.timeout);
        let (argv, stdin) = (hook_args(n), hook_json(n));
        tokio::spawn(async move {
            run_hook(&command, &argv, &stdin, timeout).await;
            drop(permit);
        });
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

/// The hook's arguments after the configured ones: event, kind, urgency, message id.
fn hook_args(n: &Notification) -> Vec<String> {
    vec![
        n.event.to_owned(),
        n.kind.clone(),
        n.urgency.clone(),
        n.message_id.clone(),
    ]
}

/// The JSON the hook reads on its stdin: the notification without its case reference.
fn hook_json(n: &Notification) -> String {
    let mut v = serde_json::to_value(n).expect("json serialises");
    if let Some(o) = v.as_object_mut() {
        o.remove("case");
    }
    v.to_string()
}

/// Runs `command` with `argv` and `stdin`, stopped after `timeout`; problems are logged.
async fn run_hook(command: &[String], argv: &[String], stdin: &str, timeout: Duration) {
    let Some((program, args)) = command.split_first() else {
        return;
    };
    let result = tokio::time::timeout(timeout, async {
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .args(argv)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        if let Some(mut pipe) = child.stdin.take() {
            use tokio::io::AsyncWriteExt as _;
            // A hook that does not read its stdin is fine.
            let _ = pipe.write_all(stdin.as_bytes()).await;
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
            timeout_ms = timeout.as_millis() as u64,
            "the notify command did not finish in time; stopped"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notifier(dir: PathBuf, command: Vec<String>) -> Notifier {
        Notifier {
            dir,
            keep: 100,
            command: Arc::new(command),
            timeout: Duration::from_secs(10),
            sent: Mutex::default(),
            hooks: Arc::new(tokio::sync::Semaphore::new(HOOKS_AT_ONCE)),
        }
    }

    fn item(id: &str, overdue: bool) -> DueItem {
        DueItem {
            what: "information-response",
            kind: "information-request".into(),
            case: "ab".repeat(16),
            message_id: id.into(),
            urgency: "normal".into(),
            due: "2026-12-01".into(),
            due_at: 0,
            overdue,
        }
    }

    #[test]
    fn the_hook_gets_no_case_reference() {
        let n = Notification::due(&item("m1", false));
        let json: serde_json::Value = serde_json::from_str(&hook_json(&n)).unwrap();
        assert!(json.get("case").is_none(), "{json}");
        assert_eq!(json["message_id"], "m1");
        assert_eq!(
            hook_args(&n),
            ["due", "information-request", "normal", "m1"]
        );
        // The file keeps it.
        let file: serde_json::Value = serde_json::to_value(&n).unwrap();
        assert_eq!(file["case"], "ab".repeat(16));
    }

    #[tokio::test]
    async fn what_is_remembered_is_what_is_still_due() {
        let dir = tempfile::tempdir().unwrap();
        let n = notifier(dir.path().to_owned(), Vec::new());
        n.due(&[item("m1", false), item("m2", false)]).await;
        assert_eq!(n.remembered(), 2);
        // m1 answered, m2 now overdue: m1 and m2-as-due are forgotten.
        n.due_all(&[item("m2", true)]).await;
        assert_eq!(n.remembered(), 1);
        n.due_all(&[]).await;
        assert_eq!(n.remembered(), 0);
    }

    #[tokio::test]
    async fn a_busy_hook_is_skipped_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("hook.log");
        let hook = dir.path().join("hook.sh");
        std::fs::write(
            &hook,
            format!("#!/bin/sh\necho \"$4\" >> {}\nsleep 3\n", log.display()),
        )
        .unwrap();
        std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let notify = dir.path().join("notify");
        std::fs::create_dir(&notify).unwrap();
        let n = notifier(notify.clone(), vec![hook.display().to_string()]);
        let started = std::time::Instant::now();
        for i in 0..4 {
            n.notify(&Notification::due(&item(&format!("m{i}"), false)))
                .await;
        }
        // Nothing waited for the hooks.
        assert!(started.elapsed() < Duration::from_secs(2));
        // Every notification has its file; only the first HOOKS_AT_ONCE reached the hook.
        assert_eq!(std::fs::read_dir(&notify).unwrap().count(), 4);
        let mut ran = String::new();
        for _ in 0..100 {
            ran = std::fs::read_to_string(&log).unwrap_or_default();
            if ran.lines().count() >= HOOKS_AT_ONCE {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut ran: Vec<&str> = ran.lines().collect();
        ran.sort();
        assert_eq!(ran, ["m0", "m1"]);
    }
}
