//! The daemon's folders and queue without a relay: claiming, validation, the queue's states,
//! recovery after a crash. (Sending is covered by the system tests in `tests/tests/daemon.rs`.)

use std::path::Path;

use silta_certs::{Principal, Role, ca::CertificateAuthority, ca::Validity};

use super::{
    Daemon,
    queue::{Job, JobState},
};
use crate::config::{ClientConfig, DaemonConfig};

const NAS: &str = "assistance/nas";

/// A daemon over temporary folders, with a certificate minted here (nothing is sent).
fn daemon(dir: &Path) -> Daemon {
    let ca = CertificateAuthority::generate("test CA", "silta.test", Validity::days_from_now(1))
        .unwrap();
    let me = Principal::new(Role::Centre, "joutseno").unwrap();
    let cert = ca.issue_client(&me, 1).unwrap();
    std::fs::write(dir.join("cert.pem"), &cert.cert_pem).unwrap();
    let config = ClientConfig {
        relay: "127.0.0.1:9".into(),
        server_name: None,
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("cert.key"),
        state_dir: dir.join("state"),
        crls: Vec::new(),
        log_key: None,
        daemon: DaemonConfig {
            folder: dir.join("folders"),
            settle_ms: 0,
            ..DaemonConfig::default()
        },
        receive: Default::default(),
        retention: Default::default(),
        expiry: Default::default(),
        inbox: Default::default(),
    };
    Daemon::open(&config).unwrap()
}

fn form(n: usize) -> String {
    format!(
        "indicators = [\"indicator {n}\"]\nquestions = \"question {n}\"\n\n[envelope]\nkind = \"anonymous-consultation\"\nto = \"{NAS}\"\n"
    )
}

/// Two scans: the first sees a file, the second (settled) claims it.
fn scan(d: &Daemon) {
    d.scan_outbox().unwrap();
    d.scan_outbox().unwrap();
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn error_of(d: &Daemon, name: &str) -> String {
    std::fs::read_to_string(d.folders.failed.join(format!("{name}.error"))).unwrap()
}

#[test]
fn a_form_is_claimed_queued_and_leaves_the_queue_when_sent_or_failed() {
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(dir.path());
    std::fs::write(d.folders.outbox.join("a.toml"), form(1)).unwrap();
    scan(&d);
    assert!(names(&d.folders.outbox).is_empty());
    let pending = d.pending().unwrap();
    assert_eq!(pending.len(), 1);
    let mut job: Job = pending[0].clone();
    assert_eq!(job.state, JobState::Queued);
    assert_eq!(job.file_name, "a.toml");
    assert_eq!(
        names(&d.folders.queued),
        [format!("{}.a.toml", job.message_id)]
    );
    // Sealed (an earlier version's state) still waits.
    job.state = JobState::Sealed;
    d.put(&job).unwrap();
    assert_eq!(d.pending().unwrap().len(), 1);
    // Sent: out of the pending set; filing writes sent/ and removes the claimed file.
    job.state = JobState::Sent;
    d.put(&job).unwrap();
    assert!(d.pending().unwrap().is_empty());
    d.file_sent(&mut job).unwrap();
    assert!(names(&d.folders.queued).is_empty());
    assert_eq!(names(&d.folders.sent), ["a.toml", "a.toml.status.json"]);
    let stored = d.get(uuid::Uuid::parse_str(&job.message_id).unwrap().as_bytes());
    let stored = stored.unwrap().unwrap();
    assert!(
        stored.filed && stored.form.is_empty(),
        "filed, no copy kept"
    );
    // Failed: out of the pending set too.
    std::fs::write(d.folders.outbox.join("b.toml"), form(2)).unwrap();
    scan(&d);
    let mut b = d.pending().unwrap().remove(0);
    b.state = JobState::Failed;
    d.put(&b).unwrap();
    assert!(d.pending().unwrap().is_empty());
}

#[test]
fn the_same_form_dropped_twice_is_queued_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(dir.path());
    std::fs::write(d.folders.outbox.join("a.toml"), form(1)).unwrap();
    scan(&d);
    std::fs::write(d.folders.outbox.join("a.toml"), form(1)).unwrap();
    scan(&d);
    assert_eq!(d.pending().unwrap().len(), 1);
    let why = error_of(&d, "a.toml");
    assert!(why.contains("this exact form is already queued"), "{why}");
    // The same name with other content is a new form.
    std::fs::write(d.folders.outbox.join("a.toml"), form(2)).unwrap();
    scan(&d);
    assert_eq!(d.pending().unwrap().len(), 2);
}

#[test]
fn bad_names_symlinks_and_oversize_files_go_to_failed_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(dir.path());
    let outbox = &d.folders.outbox;
    std::fs::write(outbox.join("notes.txt"), "hello").unwrap();
    std::fs::write(outbox.join("x.status.json"), "{}").unwrap();
    let secret = dir.path().join("secret.toml");
    std::fs::write(&secret, form(1)).unwrap();
    std::os::unix::fs::symlink(&secret, outbox.join("link.toml")).unwrap();
    std::fs::write(outbox.join("big.toml"), vec![b'#'; 1024 * 1024 + 1]).unwrap();
    std::fs::write(outbox.join("bad.toml"), "not = [a form").unwrap();
    std::fs::write(outbox.join(format!("{}.toml", "n".repeat(220))), form(1)).unwrap();
    // Hidden and temporary files are not touched.
    std::fs::write(outbox.join(".writing.toml"), form(1)).unwrap();
    std::fs::write(outbox.join("c.toml.part"), form(1)).unwrap();
    scan(&d);
    assert!(d.pending().unwrap().is_empty());
    assert_eq!(names(outbox), [".writing.toml", "c.toml.part"]);
    assert!(error_of(&d, "notes.txt").contains("not a form"));
    assert!(error_of(&d, "x.status.json").contains("reserved"));
    assert!(error_of(&d, "link.toml").contains("symbolic link"));
    // The link itself was moved, its target left alone.
    assert!(
        std::fs::symlink_metadata(d.folders.failed.join("link.toml"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), form(1));
    assert!(error_of(&d, "big.toml").contains("larger than 1024 KiB"));
    assert!(error_of(&d, "bad.toml").contains("the form is invalid"));
    let why = error_of(&d, "name-too-long.toml");
    assert!(why.contains("up to 200 bytes"), "{why}");
    assert!(names(&d.folders.queued).is_empty());
}

#[test]
fn recovery_after_a_crash_queues_files_and_sent_or_failed_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(dir.path());
    // A claimed file whose job was never written: queued under its id.
    let orphan = uuid::Uuid::now_v7();
    std::fs::write(d.folders.queued.join(format!("{orphan}.o.toml")), form(1)).unwrap();
    // A job sent but not filed.
    std::fs::write(d.folders.outbox.join("s.toml"), form(2)).unwrap();
    // A job failed but its file not yet moved.
    std::fs::write(d.folders.outbox.join("f.toml"), form(3)).unwrap();
    scan(&d);
    let jobs = d.pending().unwrap();
    assert_eq!(jobs.len(), 2);
    for mut job in jobs {
        if job.file_name == "s.toml" {
            job.state = JobState::Sent;
        } else {
            job.state = JobState::Failed;
            job.last_error = "the relay refused the message: no".into();
        }
        d.put(&job).unwrap();
    }
    d.recover().unwrap();
    let pending = d.pending().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].message_id, orphan.to_string());
    assert_eq!(pending[0].file_name, "o.toml");
    assert_eq!(names(&d.folders.sent), ["s.toml", "s.toml.status.json"]);
    assert!(names(&d.folders.failed).contains(&"f.toml".to_owned()));
    assert!(error_of(&d, "f.toml").contains("the relay refused the message: no"));
    assert_eq!(names(&d.folders.queued), [format!("{orphan}.o.toml")]);
    // Recovering again changes nothing.
    d.recover().unwrap();
    assert_eq!(d.pending().unwrap().len(), 1);
    assert_eq!(names(&d.folders.sent).len(), 2);
}
