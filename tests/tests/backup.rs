//! Backup and restore of the relay, as an operator does them with the real `silta-relay`
//! binary: a backup taken while senders keep sending restores to a relay whose log verifies
//! and which delivers what was waiting; an older backup is a rollback the relay refuses unless
//! told; a tampered backup is refused by restore.

use std::{
    collections::HashMap,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use silta_client::Connection;
use silta_proto::pb::{self, MessageKind};
use silta_tests::{RelayProcess, TestPki, envelope, envelope_of, take_items};
use tokio::sync::Mutex;

const NAS: &str = "assistance/nas";
const CENTRE: &str = "centre/joutseno";
const RELAY: &str = env!("CARGO_BIN_EXE_silta-relay-under-test");

/// A relay's folder: configuration and data folder.
struct Site {
    config: PathBuf,
    data: PathBuf,
}

fn site(pki: &TestPki, root: &Path, name: &str) -> Site {
    let data = root.join(name);
    let config = root.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        pki.relay_config_toml(&data) + silta_tests::UNLIMITED_TOML,
    )
    .unwrap();
    Site { config, data }
}

/// Runs `silta-relay --config CONFIG ARGS...` to completion (bounded) and returns its output.
async fn relay_cmd(config: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(RELAY);
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("silta-relay {args:?} did not finish in 120 s"))
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A new data folder holding only the log key (and, with `high_water`, what that key signed)
/// copied from `from`: what an operator brings to a new machine.
fn data_folder_with_key(from: &Site, to: &Site, high_water: bool) {
    std::fs::create_dir_all(&to.data).unwrap();
    std::fs::set_permissions(&to.data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut files = vec!["log-key.pem"];
    if high_water {
        files.push("log-high-water");
    }
    for f in files {
        std::fs::copy(from.data.join(f), to.data.join(f)).unwrap();
    }
}

async fn connect(
    pki: &TestPki,
    relay: &RelayProcess,
    id: &silta_tests::TestIdentity,
) -> Connection {
    Connection::connect(&pki.client_config(relay.addr, Some(id)))
        .await
        .unwrap()
}

/// Sends `n` messages one after the other; returns their receipts by message id with digests.
async fn send_some(conn: &Connection, n: usize) -> Vec<(Vec<u8>, Vec<u8>, pb::Receipt)> {
    let mut out = Vec::new();
    for i in 0..n {
        let env = envelope(
            MessageKind::Referral,
            &[NAS],
            format!("sealed {i}").as_bytes(),
        );
        let r = conn.mailbox().send(env.clone()).await.unwrap().into_inner();
        out.push((env.message_id, env.ciphertext_sha256, r));
    }
    out
}

/// Everything waiting in `conn`'s mailbox: message id -> ciphertext digest (checked intact).
async fn drain(conn: &Connection) -> HashMap<Vec<u8>, Vec<u8>> {
    let mut stream = conn
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut seen = HashMap::new();
    loop {
        let items = take_items(&mut stream, 1, Duration::from_secs(2)).await;
        let Some(item) = items.first() else { break };
        let Some(env) = envelope_of(item).and_then(|e| e.envelope.clone()) else {
            continue;
        };
        assert_eq!(silta_tests::sha256(&env.ciphertext), env.ciphertext_sha256);
        assert!(
            seen.insert(env.message_id, env.ciphertext_sha256).is_none(),
            "delivered twice"
        );
    }
    seen
}

/// Verifies the whole log as a fresh auditor and checks `receipts` against it; returns the
/// receipts that do not hold.
async fn verify_log(
    pki: &TestPki,
    relay: &RelayProcess,
    log_key: &str,
    receipts: &[pb::Receipt],
) -> (
    silta_client::audit::Verified,
    Vec<(String, String)>,
    Vec<pb::Event>,
) {
    let auditor = connect(pki, relay, &pki.client("auditor/dpo")).await;
    let state = tempfile::tempdir().unwrap();
    let verified = silta_client::audit::verify(
        &mut auditor.audit(),
        state.path(),
        log_key,
        &"log-verification: backup test".parse().unwrap(),
        None,
    )
    .await
    .expect("the restored delivery log verifies");
    let named: Vec<(String, pb::Receipt)> = receipts
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("receipt {i}"), r.clone()))
        .collect();
    let problems = silta_client::audit::check_receipts(state.path(), log_key, &named).unwrap();
    let events = silta_client::audit::fetch_events(
        &mut auditor.audit(),
        pb::QueryFilter::default(),
        &"log-verification: backup test".parse().unwrap(),
    )
    .await
    .unwrap();
    (verified, problems, events)
}

fn log_key_of(site: &Site) -> String {
    let out = std::process::Command::new(RELAY)
        .arg("--config")
        .arg(&site.config)
        .arg("log-key")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_concurrent_sends_restores_to_a_relay_whose_log_verifies_and_delivers() {
    let pki = TestPki::new();
    let root = tempfile::tempdir().unwrap();
    let old = site(&pki, root.path(), "old");
    let log_key = log_key_of(&old);
    let (nas_id, centre_id) = (pki.client(NAS), pki.client(CENTRE));
    let relay = RelayProcess::spawn(RELAY, &old.config).await;
    connect(&pki, &relay, &nas_id).await;
    let centre = connect(&pki, &relay, &centre_id).await;

    // Receipted before the backup was asked for: these must all be in it.
    let before = send_some(&centre, 300).await;

    // Senders that keep going while the backup runs (bounded: at most 4 x 2000 sends).
    let stop = Arc::new(AtomicBool::new(false));
    let during: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (conn, stop, during) = (centre.clone(), stop.clone(), during.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..2000 {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let body = format!("sealed during {t}/{i} ").repeat(32);
                let env = envelope(MessageKind::Referral, &[NAS], body.as_bytes());
                // Every send is answered while the backup runs: it waits, it is not refused.
                conn.mailbox()
                    .send(env.clone())
                    .await
                    .expect("a send during the backup");
                during.lock().await.push(env.message_id);
            }
        }));
    }
    // Let the senders get going, then back up while they send.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while during.lock().await.len() < 50 {
        assert!(tokio::time::Instant::now() < deadline, "no sends");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let dir = root.path().join("backup-1");
    let out = relay_cmd(&old.config, &["backup", dir.to_str().unwrap()]).await;
    let sent_while = during.lock().await.len();
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(summary.contains("writes paused"), "{summary}");
    let manifest = silta_relay::backup::read_manifest(&dir).unwrap();
    eprintln!("{summary}sends answered before the backup returned: {sent_while}");
    // Written private, and nothing left beside it.
    assert_eq!(mode(&dir), 0o700);
    for f in std::fs::read_dir(&dir).unwrap() {
        assert_eq!(mode(&f.unwrap().path()), 0o600);
    }
    let leftovers: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The relay answers a second request for the same (now full) folder with a refusal.
    let again = relay_cmd(&old.config, &["backup", dir.to_str().unwrap()]).await;
    assert_eq!(again.status.code(), Some(64), "{}", text(&again));
    assert!(text(&again).contains("is not empty"), "{}", text(&again));
    assert!(relay.terminate().await.success());

    // Restore on "a new machine": a data folder with the log key only.
    let new = site(&pki, root.path(), "new");
    data_folder_with_key(&old, &new, false);
    let out = relay_cmd(&new.config, &["restore", dir.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("--accept-rollback"), "{}", text(&out));
    assert_eq!(mode(&new.data.join("db")), 0o700);
    // Without the high-water file nothing shows how far the key signed: a log with entries is
    // then refused like any rollback (the same key could otherwise sign a forked history).
    let out = relay_cmd(&new.config, &[]).await;
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("log-high-water is missing"), "{said}");
    assert!(said.contains("--accept-rollback"), "{said}");
    let mut cmd = tokio::process::Command::new(RELAY);
    cmd.arg("--config")
        .arg(&new.config)
        .args(["serve", "--accept-rollback"]);
    let relay = RelayProcess::spawn_command(cmd).await;

    // The log verifies, and every receipt given before the backup holds against it.
    let receipts: Vec<pb::Receipt> = before.iter().map(|(_, _, r)| r.clone()).collect();
    let (verified, problems, _) = verify_log(&pki, &relay, &log_key, &receipts).await;
    assert!(problems.is_empty(), "{problems:?}");
    assert!(verified.size > manifest.log_size);

    // Everything waiting at the backup is delivered: all sent before it, and exactly the
    // messages the backup holds.
    let nas = connect(&pki, &relay, &nas_id).await;
    let delivered = drain(&nas).await;
    for (id, digest, _) in &before {
        assert_eq!(
            delivered.get(id),
            Some(digest),
            "a message from before the backup is lost"
        );
    }
    let messages = manifest
        .trees
        .iter()
        .find(|t| t.name == "msgid_meta")
        .unwrap()
        .entries;
    assert_eq!(delivered.len() as u64, messages);
    assert_eq!(manifest.pending_messages, messages);
    assert!(
        delivered.len() > before.len(),
        "the backup holds sends made during it"
    );
    let during = during.lock().await;
    let known: std::collections::HashSet<&Vec<u8>> = before
        .iter()
        .map(|(id, _, _)| id)
        .chain(during.iter())
        .collect();
    assert!(delivered.keys().all(|id| known.contains(id)));
    assert!(relay.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restoring_an_older_backup_is_a_rollback_refused_unless_accepted() {
    let pki = TestPki::new();
    let root = tempfile::tempdir().unwrap();
    let old = site(&pki, root.path(), "old");
    let log_key = log_key_of(&old);
    let (nas_id, centre_id) = (pki.client(NAS), pki.client(CENTRE));
    let relay = RelayProcess::spawn(RELAY, &old.config).await;
    connect(&pki, &relay, &nas_id).await;
    let centre = connect(&pki, &relay, &centre_id).await;
    let before = send_some(&centre, 10).await;
    let dir = root.path().join("backup");
    let out = relay_cmd(&old.config, &["backup", dir.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Receipts the relay gives after the backup: checkpoints it signed since.
    let after = send_some(&centre, 10).await;
    assert!(relay.terminate().await.success());

    // The database is lost; the log key and its high-water mark are kept (or brought along).
    let new = site(&pki, root.path(), "new");
    data_folder_with_key(&old, &new, true);
    let out = relay_cmd(&new.config, &["restore", dir.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Serving it would fork the log: refused, exit 65, with what to do.
    let out = relay_cmd(&new.config, &[]).await;
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("restored from an older backup"), "{said}");
    assert!(said.contains("--accept-rollback"), "{said}");

    // Accepted deliberately: the relay starts and the rollback is an event in its log.
    let mut cmd = tokio::process::Command::new(RELAY);
    cmd.arg("--config")
        .arg(&new.config)
        .args(["serve", "--accept-rollback"]);
    let relay = RelayProcess::spawn_command(cmd).await;
    let old_receipts: Vec<pb::Receipt> = before.iter().map(|(_, _, r)| r.clone()).collect();
    let (_, problems, events) = verify_log(&pki, &relay, &log_key, &old_receipts).await;
    assert!(problems.is_empty(), "{problems:?}");
    let rollbacks: Vec<&pb::Event> = events
        .iter()
        .filter(|e| e.r#type == pb::EventType::LogRollback as i32)
        .collect();
    assert_eq!(rollbacks.len(), 1, "one LOG_ROLLBACK event");
    let manifest = silta_relay::backup::read_manifest(&dir).unwrap();
    assert_eq!(rollbacks[0].index, manifest.log_size, "recorded first");
    assert!(
        rollbacks[0].detail.contains("--accept-rollback")
            && rollbacks[0]
                .detail
                .contains(&format!("the log found had {} entries", manifest.log_size)),
        "{}",
        rollbacks[0].detail
    );
    // What a sender holding a receipt from after the backup sees: it does not match this log.
    let new_receipts: Vec<pb::Receipt> = after.iter().map(|(_, _, r)| r.clone()).collect();
    let (_, problems, _) = verify_log(&pki, &relay, &log_key, &new_receipts).await;
    assert_eq!(problems.len(), after.len(), "{problems:?}");
    assert!(relay.terminate().await.success());

    // Accepted once: the next ordinary start goes ahead.
    let relay = RelayProcess::spawn(RELAY, &new.config).await;
    connect(&pki, &relay, &nas_id).await;
    let status = relay.terminate().await;
    assert!(status.success(), "{status:?}");
}

/// Even a backup as new as everything the key signed (a stopped relay's) is a restore the
/// operator accepts once: the first start is refused, `--accept-rollback` records it in the
/// log, and later starts are ordinary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_start_after_any_restore_must_be_accepted_and_is_recorded() {
    let pki = TestPki::new();
    let root = tempfile::tempdir().unwrap();
    let old = site(&pki, root.path(), "old");
    let log_key = log_key_of(&old);
    let relay = RelayProcess::spawn(RELAY, &old.config).await;
    connect(&pki, &relay, &pki.client(NAS)).await;
    let centre = connect(&pki, &relay, &pki.client(CENTRE)).await;
    let before = send_some(&centre, 5).await;
    assert!(relay.terminate().await.success());
    let dir = root.path().join("backup");
    let out = relay_cmd(&old.config, &["backup", dir.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let new = site(&pki, root.path(), "new");
    data_folder_with_key(&old, &new, true);
    let out = relay_cmd(&new.config, &["restore", dir.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = relay_cmd(&new.config, &[]).await;
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("restored from a backup"), "{said}");
    assert!(said.contains("--accept-rollback"), "{said}");

    let mut cmd = tokio::process::Command::new(RELAY);
    cmd.arg("--config")
        .arg(&new.config)
        .args(["serve", "--accept-rollback"]);
    let relay = RelayProcess::spawn_command(cmd).await;
    let receipts: Vec<pb::Receipt> = before.iter().map(|(_, _, r)| r.clone()).collect();
    let (_, problems, events) = verify_log(&pki, &relay, &log_key, &receipts).await;
    assert!(problems.is_empty(), "{problems:?}");
    let manifest = silta_relay::backup::read_manifest(&dir).unwrap();
    let rollbacks: Vec<&pb::Event> = events
        .iter()
        .filter(|e| e.r#type == pb::EventType::LogRollback as i32)
        .collect();
    assert_eq!(rollbacks.len(), 1, "one LOG_ROLLBACK event");
    assert_eq!(rollbacks[0].index, manifest.log_size, "recorded first");
    assert!(
        rollbacks[0].detail.contains(&format!(
            "restored from a backup (backup made {}",
            manifest.created_at
        )),
        "{}",
        rollbacks[0].detail
    );
    assert!(relay.terminate().await.success());
    // Accepted once: the next ordinary start goes ahead.
    let relay = RelayProcess::spawn(RELAY, &new.config).await;
    connect(&pki, &relay, &pki.client(NAS)).await;
    let status = relay.terminate().await;
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_backup_is_refused_by_restore() {
    let pki = TestPki::new();
    let root = tempfile::tempdir().unwrap();
    let old = site(&pki, root.path(), "old");
    let relay = RelayProcess::spawn(RELAY, &old.config).await;
    connect(&pki, &relay, &pki.client(NAS)).await;
    let centre = connect(&pki, &relay, &pki.client(CENTRE)).await;
    send_some(&centre, 5).await;
    assert!(relay.terminate().await.success());
    // A stopped relay's database is backed up directly.
    let dir = root.path().join("backup");
    let out = relay_cmd(&old.config, &["backup", dir.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("(relay stopped)"), "{}", text(&out));

    let copy = |name: &str| {
        let to = root.path().join(name);
        std::fs::create_dir(&to).unwrap();
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
        }
        to
    };
    let edit_manifest = |dir: &Path, f: &dyn Fn(&mut silta_relay::backup::Manifest)| {
        let mut m = silta_relay::backup::read_manifest(dir).unwrap();
        f(&mut m);
        // Written back as TOML with the same serializer the relay uses.
        std::fs::write(dir.join("manifest.toml"), manifest_toml(&m)).unwrap();
    };

    // 1. One byte of a ciphertext changed.
    let flipped = copy("flipped");
    let file = flipped.join("msgid_ciphertext.tree");
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    // 2. An event rewritten and the manifest's checksum fixed up to match: the log catches it.
    let rewritten = copy("rewritten");
    let file = rewritten.join("index_event.tree");
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes
        .windows(4)
        .position(|w| w == b"cent")
        .expect("an actor in the events");
    bytes[at] = b'C';
    std::fs::write(&file, &bytes).unwrap();
    let digest = hex::encode(silta_tests::sha256(&bytes));
    edit_manifest(&rewritten, &|m| {
        let t = m
            .trees
            .iter_mut()
            .find(|t| t.name == "index_event")
            .unwrap();
        t.sha256 = digest.clone();
    });
    // 3. The manifest claims a shorter log than its signed checkpoint.
    let shortened = copy("shortened");
    edit_manifest(&shortened, &|m| m.log_size -= 1);
    // 4. A ciphertext changed and the manifest's checksum fixed up to match: it no longer opens
    //    with its storage key, so the restore refuses it instead of delivering it.
    let resealed = copy("resealed");
    let file = resealed.join("msgid_ciphertext.tree");
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let digest = hex::encode(silta_tests::sha256(&bytes));
    edit_manifest(&resealed, &|m| {
        let t = m
            .trees
            .iter_mut()
            .find(|t| t.name == "msgid_ciphertext")
            .unwrap();
        t.sha256 = digest.clone();
    });

    let cases: [(&Path, &str); 4] = [
        (
            &flipped,
            "msgid_ciphertext.tree: its checksum does not match",
        ),
        (&rewritten, "do not hash to the signed root"),
        (&shortened, "differs from its signed checkpoint"),
        (&resealed, "does not open with its key"),
    ];
    let new = site(&pki, root.path(), "new");
    data_folder_with_key(&old, &new, true);
    for (backup, why) in cases {
        let out = relay_cmd(&new.config, &["restore", backup.to_str().unwrap()]).await;
        assert_eq!(out.status.code(), Some(65), "{}", text(&out));
        assert!(text(&out).contains(why), "{why}: {}", text(&out));
        assert!(!new.data.join("db").exists(), "nothing restored");
        assert!(!new.data.join("db.restoring").exists(), "nothing left");
    }
    // A backup signed by another relay's log key is refused too.
    let stranger = site(&pki, root.path(), "stranger");
    std::fs::create_dir_all(&stranger.data).unwrap();
    std::fs::set_permissions(&stranger.data, std::fs::Permissions::from_mode(0o700)).unwrap();
    log_key_of(&stranger);
    let out = relay_cmd(&stranger.config, &["restore", dir.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));
    assert!(
        text(&out).contains("does not verify with the log key"),
        "{}",
        text(&out)
    );

    // The intact backup restores; a second restore onto the restored database is refused.
    let out = relay_cmd(&new.config, &["restore", dir.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = relay_cmd(&new.config, &["restore", dir.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(
        text(&out).contains("already holds a database"),
        "{}",
        text(&out)
    );
}

/// The manifest as TOML (what an attacker with the backup could write).
fn manifest_toml(m: &silta_relay::backup::Manifest) -> String {
    silta_relay::backup::manifest_text(m).unwrap()
}

/// What a backup costs the senders: how long writes wait while N messages (1 KiB each) are
/// copied. `SILTA_BACKUP_N` (default 20 000); run with `--ignored --nocapture` to see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; slow"]
async fn backup_pause_measurement() {
    let n: usize = std::env::var("SILTA_BACKUP_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let pki = TestPki::new();
    let root = tempfile::tempdir().unwrap();
    let old = site(&pki, root.path(), "old");
    let relay = RelayProcess::spawn(RELAY, &old.config).await;
    connect(&pki, &relay, &pki.client(NAS)).await;
    let centre = connect(&pki, &relay, &pki.client(CENTRE)).await;
    let mut tasks = Vec::new();
    for t in 0..16 {
        let conn = centre.clone();
        tasks.push(tokio::spawn(async move {
            for i in (t..n).step_by(16) {
                let body = vec![(i % 251) as u8; 1024];
                let env = envelope(MessageKind::Referral, &[NAS], &body);
                conn.mailbox().send(env).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let dir = root.path().join("backup");
    let started = std::time::Instant::now();
    let out = relay_cmd(&old.config, &["backup", dir.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let m = silta_relay::backup::read_manifest(&dir).unwrap();
    eprintln!(
        "{n} messages: writes paused {} ms, backup took {} ms in all",
        m.paused_ms,
        started.elapsed().as_millis()
    );
    assert_eq!(m.pending_messages, n as u64);
    // Well below half the default storage.write_timeout_ms (30 s), when the backup is abandoned.
    assert!(m.paused_ms < 15_000, "{}", m.paused_ms);
    assert!(relay.terminate().await.success());
}

/// The data folder's lock: while a relay serves (and until it has written its recovery
/// snapshot after a stop), a restore, a backup of a stopped relay, a log-key step and a second
/// relay are all refused, and the folder is left as it was, even after the operator moved the
/// database aside too early. Once the relay has stopped, each goes ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_else_uses_the_data_folder_of_a_running_relay() {
    let pki = TestPki::new();
    let root = tempfile::tempdir().unwrap();
    let old = site(&pki, root.path(), "old");
    let relay = RelayProcess::spawn(RELAY, &old.config).await;
    let centre = connect(&pki, &relay, &pki.client(CENTRE)).await;
    connect(&pki, &relay, &pki.client(NAS)).await;
    let before = send_some(&centre, 3).await;
    let dir = root.path().join("backup");
    let out = relay_cmd(&old.config, &["backup", dir.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Too early: the database moved aside while the relay still runs on it.
    std::fs::rename(old.data.join("db"), old.data.join("db.old")).unwrap();
    let in_use = |out: &std::process::Output| {
        let said = text(out);
        assert!(
            said.contains("is in use by another silta-relay process"),
            "{said}"
        );
    };
    let out = relay_cmd(&old.config, &["restore", dir.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    in_use(&out);
    assert!(!old.data.join("db").exists(), "nothing restored");
    assert!(!old.data.join("db.restoring").exists(), "nothing started");
    let out = relay_cmd(&old.config, &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    in_use(&out);
    assert!(!old.data.join("db").exists(), "no new database created");
    // The running relay still answers, from the database it holds.
    let after = send_some(&centre, 1).await;
    assert_eq!(after[0].2.log_index, before[2].2.log_index + 1);
    std::fs::rename(old.data.join("db.old"), old.data.join("db")).unwrap();
    let out = relay_cmd(&old.config, &["log-key", "rotate"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        !old.data.join("log-key-next.pem").exists(),
        "no rotation started"
    );
    in_use(&out);
    assert!(relay.terminate().await.success());

    // Stopped (and its snapshot written): each goes ahead.
    let out = relay_cmd(
        &old.config,
        &["backup", root.path().join("b2").to_str().unwrap()],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("(relay stopped)"), "{}", text(&out));
    std::fs::rename(old.data.join("db"), old.data.join("db.old")).unwrap();
    let out = relay_cmd(&old.config, &["restore", dir.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
