//! `silta resend ID` against a real relay with the real `silta` program: a message the
//! recipient could not open is re-sealed to the recipient's current keys under a new id that
//! names the original, delivered and opened with the same content; running it again sends
//! nothing more; the refusals have their exit codes. Two ways a copy fails: the recipient's
//! only desk lost the keys it was sealed to and published new ones (a real REJECTED
//! cannot_decrypt from the desk itself), and an operator handover whose old desk the admin
//! retired (UNDELIVERABLE devices_retired). At a centre with a daemon, the daemon does it on
//! request.

use std::{path::Path, process::Command, time::Duration};

use silta_proto::pb;
use silta_tests::{TestPki, TestRelay, TestUser};

const SILTA: &str = env!("CARGO_BIN_EXE_silta-under-test");
const CASE: &str = "0123456789abcdef0123456789abcdef";

fn silta(user: &TestUser, args: &[&str]) -> std::process::Output {
    Command::new(SILTA)
        .arg("--config")
        .arg(user.dir.path().join("silta.toml"))
        .args(args)
        .env("SILTA_PURPOSE", "resend test")
        .output()
        .unwrap()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn referral_form(account: &str) -> String {
    format!(
        "account = \"{account}\"\n[person]\nname = \"A. Person\"\nage_group = \"AGE_GROUP_ADULT\"\n[consent]\nperson_name = \"A. Person\"\ndate = \"2026-11-20\"\ninformed_about = [\"services\"]\n"
    )
}

/// The message id in `sent <kind> <id> to ...`.
fn sent_id(o: &std::process::Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out.lines().find(|l| l.starts_with("sent ")).unwrap();
    line.split(' ').nth(2).unwrap().to_owned()
}

/// The new id in `re-sent <kind> <old> to <who> as <new>: ...`.
fn resent_id(o: &std::process::Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.starts_with("re-sent "))
        .unwrap_or_else(|| panic!("{}", text(o)));
    let after = line.split(" as ").nth(1).unwrap();
    after.split(':').next().unwrap().to_owned()
}

/// The JSON files `silta receive --out DIR` wrote.
fn received(dir: &Path) -> Vec<serde_json::Value> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap())
        .collect()
}

/// ACCEPTED events of the relay's log, by message id.
fn accepted(relay: &TestRelay) -> Vec<String> {
    relay
        .events()
        .into_iter()
        .filter(|e| e.r#type == pb::EventType::Accepted as i32)
        // Not the desks' own bookkeeping (desk-1 and desk-2 share their access logs at a sync).
        .filter(|e| {
            !silta_proto::policy::is_internal(pb::MessageKind::try_from(e.kind).unwrap_or_default())
        })
        .map(|e| uuid::Uuid::from_slice(&e.message_id).unwrap().to_string())
        .collect()
}

/// The recipient's operator changed: a new installation of `assistance/nas` (new certificate,
/// new device `desk-2`) published its keys; the message was sealed to `desk-1` only.
async fn new_operator(pki: &TestPki, relay: &TestRelay) -> TestUser {
    // The operator handover of the README: the admin retires the old operator's desk first, so
    // the copies sealed only to it are reported undeliverable (devices_retired). (A desk that
    // merely joins gets such a message as sealed before its keys and leaves it to the desks
    // that can open it: several desks of one principal.)
    let admin = relay.connect_as(pki, "admin/ops").await;
    admin
        .admin()
        .retire_devices(silta_proto::pb::RetireDevicesRequest {
            reason: Some(silta_proto::pb::AdminReason {
                text: "operator handover".into(),
            }),
            principal: "assistance/nas".into(),
            device_ids: vec!["desk-1".into()],
        })
        .await
        .unwrap();
    let nas2 = TestUser::new(pki, relay.addr, "assistance/nas", "desk-2");
    let o = silta(&nas2, &["keys", "publish"]);
    assert!(o.status.success(), "{}", text(&o));
    nas2
}

/// The recipient's only desk lost its keys (a reinstalled computer, same certificate and
/// device id) after the sender sealed to them: it cannot open the message, rejects it
/// CANNOT_DECRYPT (no other desk could read it, so that decides), and `silta resend` re-seals
/// it to the keys it published since; it arrives and opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_the_only_desk_cannot_decrypt_is_rejected_and_resent_to_its_new_keys() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = TestUser::new(&pki, relay.addr, "centre/joutseno", "server-1");
    let nas = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-1");
    for u in [&centre, &nas] {
        let o = silta(u, &["keys", "publish"]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let form = centre.dir.path().join("referral.toml");
    std::fs::write(&form, referral_form("met at the centre on Tuesday")).unwrap();
    let o = silta(
        &centre,
        &[
            "send",
            "--kind",
            "referral",
            "--to",
            "assistance/nas",
            "--case",
            CASE,
            form.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let id = sent_id(&o);

    // desk-1's keys are lost; new ones under the same device id and certificate.
    let key_dir = nas.config.key_dir();
    std::fs::remove_dir_all(&key_dir).unwrap();
    silta_client::keys::DeviceKeys::init(&key_dir, "desk-1").unwrap();
    let o = silta(&nas, &["keys", "publish"]);
    assert!(o.status.success(), "{}", text(&o));

    // It cannot open the message: rejected, and that decides (desk-1 is the only desk).
    let out1 = nas.dir.path().join("in1");
    let o = silta(
        &nas,
        &["receive", "--out", out1.to_str().unwrap(), "--wait", "2"],
    );
    assert!(received(&out1).is_empty(), "{}", text(&o));
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    let rejected: Vec<pb::Event> = relay
        .events()
        .into_iter()
        .filter(|e| e.r#type == pb::EventType::Rejected as i32 && e.message_id == uuid.as_bytes())
        .collect();
    assert_eq!(rejected.len(), 1, "{}", text(&o));
    assert_eq!(
        rejected[0].rejection_reason,
        pb::RejectionReason::CannotDecrypt as i32
    );

    let o = silta(&centre, &["inbox", "sync", "--wait", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = silta(&centre, &["inbox", "show", &id, "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        shown["recipients"]["assistance/nas"]["state"], "rejected",
        "{shown}"
    );

    // Re-sent to the new keys, under a new id; it opens at desk-1.
    let o = silta(&centre, &["resend", &id]);
    assert!(o.status.success(), "{}", text(&o));
    let new_id = resent_id(&o);
    assert_ne!(new_id, id);
    assert_eq!(accepted(&relay), [id.clone(), new_id.clone()]);
    let out2 = nas.dir.path().join("in2");
    let o = silta(
        &nas,
        &["receive", "--out", out2.to_str().unwrap(), "--wait", "2"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let got = received(&out2);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["message_id"], new_id);
    assert_eq!(
        got[0]["payload"]["referral"]["account"],
        "met at the centre on Tuesday"
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_copy_is_resealed_to_the_current_keys_once() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = TestUser::new(&pki, relay.addr, "centre/joutseno", "server-1");
    let nas = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-1");
    for u in [&centre, &nas] {
        let o = silta(u, &["keys", "publish"]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let form = centre.dir.path().join("referral.toml");
    std::fs::write(&form, referral_form("met at the centre on Monday")).unwrap();
    let o = silta(
        &centre,
        &[
            "send",
            "--kind",
            "referral",
            "--to",
            "assistance/nas",
            "--case",
            CASE,
            "--urgency",
            "urgent",
            form.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let id = sent_id(&o);

    // Nothing failed yet: nothing to re-send (exit 1), and nothing was sent.
    let o = silta(&centre, &["resend", &id]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("no copy of message") && text(&o).contains("assistance/nas: pending"),
        "{}",
        text(&o)
    );
    assert_eq!(accepted(&relay), [id.as_str()]);

    // The new operator's device cannot open it: the old operator's desk was retired, so the
    // copy is reported undeliverable (devices_retired).
    let nas2 = new_operator(&pki, &relay).await;
    let out1 = nas2.dir.path().join("in1");
    let o = silta(
        &nas2,
        &["receive", "--out", out1.to_str().unwrap(), "--wait", "2"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(received(&out1).is_empty());

    // The sender's inbox learns it and says what to do.
    let o = silta(&centre, &["inbox", "sync", "--wait", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("run `silta resend {id}` once they have new keys")),
        "{}",
        text(&o)
    );
    let o = silta(&centre, &["inbox", "show", &id, "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let copy = &shown["recipients"]["assistance/nas"];
    assert_eq!(copy["state"], "undeliverable", "{shown}");
    assert_eq!(copy["reason"], "devices_retired", "{shown}");
    assert!(
        copy["what_to_do"]
            .as_str()
            .unwrap()
            .contains("silta resend"),
        "{shown}"
    );

    // Re-sent: to the current keys (the new device is shown as a key change), a new id.
    let o = silta(&centre, &["resend", &id[..8]]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("desk-2"),
        "key change shown: {}",
        text(&o)
    );
    let new_id = resent_id(&o);
    assert_ne!(new_id, id);
    assert!(
        text(&o).contains(&format!(
            "re-sent referral {id} to assistance/nas as {new_id}"
        )),
        "{}",
        text(&o)
    );
    // Again: the same resend, not a second copy.
    let o = silta(&centre, &["resend", &id]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(resent_id(&o), new_id);
    assert!(text(&o).contains("made before"), "{}", text(&o));
    assert_eq!(accepted(&relay), [id.clone(), new_id.clone()]);

    // The new operator opens it: the same content, the same case and kind.
    let out2 = nas2.dir.path().join("in2");
    let o = silta(
        &nas2,
        &["receive", "--out", out2.to_str().unwrap(), "--wait", "2"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let got = received(&out2);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["message_id"], new_id);
    assert_eq!(got[0]["case_ref"], CASE);
    assert_eq!(got[0]["kind"], "referral");
    assert_eq!(got[0]["urgency"], "urgent");
    assert_eq!(got[0]["to"], serde_json::json!(["assistance/nas"]));
    assert_eq!(
        got[0]["payload"]["referral"]["account"],
        "met at the centre on Monday"
    );

    // The records link both ways.
    let o = silta(&centre, &["inbox", "sync", "--wait", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = silta(&centre, &["inbox", "show", &new_id, "--json"]);
    let new: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(new["resend_of"], id, "{new}");
    assert_eq!(new["recipients"]["assistance/nas"]["state"], "acknowledged");
    let o = silta(&centre, &["inbox", "show", &id, "--json"]);
    let old: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(old["resent_as"][0]["message_id"], new_id, "{old}");
    assert_eq!(
        old["resent_as"][0]["to"],
        serde_json::json!(["assistance/nas"])
    );
    let o = silta(&centre, &["inbox", "show", &id]);
    assert!(
        text(&o).contains(&format!("re-sent as {new_id}")),
        "{}",
        text(&o)
    );

    // Still only one re-sending, even now that it was acknowledged.
    let o = silta(&centre, &["resend", &id]);
    assert_eq!(resent_id(&o), new_id, "{}", text(&o));
    assert_eq!(accepted(&relay).len(), 2);
    // The re-sending itself has nothing to re-send.
    let o = silta(&centre, &["resend", &new_id]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("assistance/nas: acknowledged"),
        "{}",
        text(&o)
    );

    // The disclosure is in the access log like any send.
    let log = std::fs::read_to_string(centre.dir.path().join("state").join("access.log")).unwrap();
    let disclosed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"disclosed\"") && l.contains(&new_id))
        .collect();
    assert_eq!(disclosed.len(), 1, "{log}");

    // Unknown ids: a usage error (64).
    let o = silta(&centre, &["resend", "00000000-0000-7000-8000-000000000000"]);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(text(&o).contains("no message"), "{}", text(&o));
    let o = silta(&centre, &["resend", "abc"]);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    // A message received here is not this installation's to re-send.
    let form2 = centre.dir.path().join("referral2.toml");
    std::fs::write(&form2, referral_form("a second referral")).unwrap();
    let o = silta(
        &centre,
        &[
            "send",
            "--kind",
            "referral",
            "--to",
            "assistance/nas",
            "--case",
            CASE,
            form2.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let third = sent_id(&o);
    let o = silta(&nas2, &["inbox", "sync", "--wait", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = silta(&nas2, &["resend", &third]);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(text(&o).contains("received here"), "{}", text(&o));
    assert_eq!(accepted(&relay), [id.clone(), new_id.clone(), third]);

    // Retention deleted the content: refused (exit 1), saying so.
    let cfg = centre.dir.path().join("silta.toml");
    let mut t = std::fs::read_to_string(&cfg).unwrap();
    t.push_str("\n[retention]\nclosed_case_days = 0\n");
    std::fs::write(&cfg, t).unwrap();
    let o = silta(&centre, &["case", "close", CASE]);
    assert!(o.status.success(), "{}", text(&o));
    let o = silta(&centre, &["purge"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = silta(&centre, &["resend", &id]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("no longer kept"), "{}", text(&o));
    assert_eq!(accepted(&relay).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_resends_on_request() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = TestUser::new(&pki, relay.addr, "centre/joutseno", "server-1");
    let cfg = centre.dir.path().join("silta.toml");
    let mut t = std::fs::read_to_string(&cfg).unwrap();
    t.push_str(
        "\n[daemon]\nfolder = \"folders\"\nscan_interval_ms = 100\nretry_initial_ms = 100\nretry_max_ms = 800\nsettle_ms = 100\n",
    );
    std::fs::write(&cfg, t).unwrap();
    let nas = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-1");
    for u in [&centre, &nas] {
        let o = silta(u, &["keys", "publish"]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let folders = centre.dir.path().join("folders");
    let log = centre.dir.path().join("daemon.log");
    let mut daemon = tokio::process::Command::new(SILTA)
        .arg("--config")
        .arg(&cfg)
        .arg("daemon")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let outbox = folders.join("outbox");
    wait_for("the outbox", 20, || outbox.is_dir()).await;
    let mut form = referral_form("taken in by the daemon");
    form.push_str(&format!(
        "\n[envelope]\nkind = \"referral\"\nto = \"assistance/nas\"\ncase = \"{CASE}\"\nurgency = \"urgent\"\n"
    ));
    std::fs::write(outbox.join(".r.toml.part"), &form).unwrap();
    std::fs::rename(outbox.join(".r.toml.part"), outbox.join("r.toml")).unwrap();
    let status_path = folders.join("sent").join("r.toml.status.json");
    let status = || -> serde_json::Value {
        std::fs::read(&status_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    };
    wait_for("the form sent", 20, || status()["message_id"].is_string()).await;
    let id = status()["message_id"].as_str().unwrap().to_owned();

    // The new operator cannot open it; the status file says so and what to do.
    let nas2 = new_operator(&pki, &relay).await;
    let o = silta(&nas2, &["receive", "--wait", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    wait_for("the undeliverable copy in the status file", 20, || {
        status()["recipients"]["assistance/nas"]["state"] == "undeliverable"
    })
    .await;
    let copy = &status()["recipients"]["assistance/nas"];
    assert_eq!(copy["reason"], "devices_retired");
    assert!(
        copy["what_to_do"]
            .as_str()
            .unwrap()
            .contains(&format!("silta resend {id}")),
        "{copy}"
    );

    // Asked while the daemon runs: the daemon does it.
    let o = silta(&centre, &["resend", &id]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("asked the daemon"), "{}", text(&o));
    wait_for("the re-sending", 20, || status()["resent_as"].is_array()).await;
    let new_id = status()["resent_as"][0]["message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let request = folders.join("resend").join(format!("{id}.request"));
    wait_for("the request done", 20, || !request.exists()).await;
    let new_status: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            folders
                .join("sent")
                .join(format!("{new_id}.r.toml.status.json")),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(new_status["resend_of"], id, "{new_status}");
    assert_eq!(new_status["to"], serde_json::json!(["assistance/nas"]));
    let out = nas2.dir.path().join("in");
    let o = silta(
        &nas2,
        &["receive", "--out", out.to_str().unwrap(), "--wait", "2"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let got = received(&out);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["message_id"], new_id);
    assert_eq!(
        got[0]["payload"]["referral"]["account"],
        "taken in by the daemon"
    );

    // Asked again: the same re-sending, nothing sent a second time.
    let o = silta(&centre, &["resend", &id]);
    assert!(o.status.success(), "{}", text(&o));
    wait_for("the request done", 20, || !request.exists()).await;
    assert!(!folders.join("resend").join(format!("{id}.error")).exists());
    assert_eq!(status()["resent_as"].as_array().unwrap().len(), 1);
    assert_eq!(accepted(&relay), [id.clone(), new_id.clone()]);
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        !logged.contains("taken in by the daemon"),
        "content in the log"
    );
}

/// The example case-transfer form goes as it is (the handover runbook's last step).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_case_transfer_form_of_the_runbook_is_sent() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let nas = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-1");
    let old = TestUser::new(&pki, relay.addr, "centre/demo-centre", "server-1");
    let new = TestUser::new(&pki, relay.addr, "centre/demo-centre-2", "server-1");
    for u in [&nas, &old, &new] {
        let o = silta(u, &["keys", "publish"]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let form = Path::new(env!("CARGO_MANIFEST_DIR")).join("../client/forms/case-transfer.toml");
    let o = silta(
        &nas,
        &[
            "send",
            "--kind",
            "case-transfer",
            "--to",
            "centre/demo-centre-2",
            "--to",
            "centre/demo-centre",
            "--case",
            CASE,
            form.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let id = sent_id(&o);
    let out = new.dir.path().join("in");
    let o = silta(
        &new,
        &["receive", "--out", out.to_str().unwrap(), "--wait", "2"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let got = received(&out);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["message_id"], id);
    assert_eq!(
        got[0]["payload"]["case_transfer"]["receiving_centre"],
        "centre/demo-centre-2"
    );
}

async fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    for _ in 0..secs * 20 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A centre whose daemon runs with short timings (its folders under `folders/`), with its
/// log in `daemon.log`.
async fn centre_with_daemon(
    pki: &TestPki,
    relay: &TestRelay,
) -> (TestUser, tokio::process::Child, std::path::PathBuf) {
    let centre = TestUser::new(pki, relay.addr, "centre/joutseno", "server-1");
    let cfg = centre.dir.path().join("silta.toml");
    let mut t = std::fs::read_to_string(&cfg).unwrap();
    t.push_str(
        "\n[daemon]\nfolder = \"folders\"\nscan_interval_ms = 100\nretry_initial_ms = 100\nretry_max_ms = 800\nsettle_ms = 100\n",
    );
    std::fs::write(&cfg, t).unwrap();
    let o = silta(&centre, &["keys", "publish"]);
    assert!(o.status.success(), "{}", text(&o));
    let folders = centre.dir.path().join("folders");
    let daemon = tokio::process::Command::new(SILTA)
        .arg("--config")
        .arg(&cfg)
        .arg("daemon")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(centre.dir.path().join("daemon.log")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for("the outbox", 20, || folders.join("outbox").is_dir()).await;
    (centre, daemon, folders)
}

/// Drops `form` into the daemon's outbox as `name` and waits until it is sent; its id.
async fn daemon_sends(folders: &Path, name: &str, form: &str) -> String {
    let outbox = folders.join("outbox");
    let part = outbox.join(format!(".{name}.part"));
    std::fs::write(&part, form).unwrap();
    std::fs::rename(&part, outbox.join(name)).unwrap();
    let status_path = folders.join("sent").join(format!("{name}.status.json"));
    let status = || -> serde_json::Value {
        std::fs::read(&status_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    };
    wait_for("the form sent", 20, || status()["message_id"].is_string()).await;
    status()["message_id"].as_str().unwrap().to_owned()
}

fn daemon_form(account: &str) -> String {
    let mut form = referral_form(account);
    form.push_str(&format!(
        "\n[envelope]\nkind = \"referral\"\nto = \"assistance/nas\"\ncase = \"{CASE}\"\nurgency = \"urgent\"\n"
    ));
    form
}

/// Requests the daemon cannot do are answered in their `.error` file and do not stop it: a
/// file name that is no message id, an id it did not send, an `.error` path it cannot write, a
/// planted status file naming a path instead of an id. Its resend/ folder exists from the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_answers_bad_resend_requests_and_keeps_running() {
    use std::os::unix::fs::PermissionsExt as _;
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let nas = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-1");
    let o = silta(&nas, &["keys", "publish"]);
    assert!(o.status.success(), "{}", text(&o));
    let (centre, mut daemon, folders) = centre_with_daemon(&pki, &relay).await;
    let resend = folders.join("resend");
    let meta = std::fs::metadata(&resend).expect("resend/ created with the other folders");
    assert!(meta.is_dir());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    let id = daemon_sends(&folders, "r.toml", &daemon_form("first form")).await;

    // Not a message id.
    std::fs::write(resend.join("not-an-id.request"), "").unwrap();
    let error = resend.join("not-an-id.error");
    // The daemon writes its answer, then removes the request (an answer is never lost).
    let request = resend.join("not-an-id.request");
    wait_for("the bad name answered", 20, || {
        error.exists() && !request.exists()
    })
    .await;
    let said = std::fs::read_to_string(&error).unwrap();
    assert!(said.contains("does not name a message id"), "{said}");
    // A message this daemon did not send.
    let other = "0190c1d2-0000-7000-8000-0000000000aa";
    std::fs::write(resend.join(format!("{other}.request")), "").unwrap();
    let error = resend.join(format!("{other}.error"));
    wait_for("the unknown id answered", 20, || error.exists()).await;
    let said = std::fs::read_to_string(&error).unwrap();
    assert!(said.contains("sent no message"), "{said}");

    // Its answer cannot be written (the .error path is a folder): the request is refused
    // (nothing failed yet, so nothing to re-send), the daemon carries on.
    std::fs::create_dir(resend.join(format!("{id}.error"))).unwrap();
    let request = resend.join(format!("{id}.request"));
    std::fs::write(&request, "").unwrap();
    wait_for("the request handled", 20, || !request.exists()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(daemon.try_wait().unwrap().is_none(), "the daemon stopped");
    std::fs::remove_dir(resend.join(format!("{id}.error"))).unwrap();

    // A planted status file naming a path, not an id: no request is written outside resend/.
    std::fs::write(
        folders.join("sent").join("x.status.json"),
        r#"{"message_id": "../planted-request", "file": "x"}"#,
    )
    .unwrap();
    // (Not one the daemon sent, so the command looks in the inbox's store, which the running
    // daemon holds: exit 1, saying so.)
    let o = silta(&centre, &["resend", "../planted"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("in use"), "{}", text(&o));
    assert!(!folders.join("planted-request.request").exists());

    // Still sending.
    let id2 = daemon_sends(&folders, "r2.toml", &daemon_form("second form")).await;
    assert_eq!(accepted(&relay), [id, id2]);
    assert!(daemon.try_wait().unwrap().is_none(), "the daemon stopped");
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
}

/// The daemon re-sends only the content it sent as that message: a kept form changed (or
/// made unreadable) since is refused, saying why, and the daemon carries on; once it is as it
/// was, the re-sending goes, its disclosure names the person who asked, and the old answer goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_resends_only_the_content_it_sent() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let nas = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-1");
    let o = silta(&nas, &["keys", "publish"]);
    assert!(o.status.success(), "{}", text(&o));
    let (centre, mut daemon, folders) = centre_with_daemon(&pki, &relay).await;
    let form = daemon_form("what was sent");
    let id = daemon_sends(&folders, "r.toml", &form).await;
    let status_path = folders.join("sent").join("r.toml.status.json");
    let status = || -> serde_json::Value {
        std::fs::read(&status_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    };
    let nas2 = new_operator(&pki, &relay).await;
    let o = silta(&nas2, &["receive", "--wait", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    wait_for("the undeliverable copy in the status file", 20, || {
        status()["recipients"]["assistance/nas"]["state"] == "undeliverable"
    })
    .await;
    let kept = folders.join("sent").join("r.toml");
    let resend = folders.join("resend");
    let error = resend.join(format!("{id}.error"));
    let request = resend.join(format!("{id}.request"));

    // Not UTF-8 any more: refused, the daemon carries on.
    std::fs::write(&kept, [0xff, 0xfe, 0x00, 0x80]).unwrap();
    let o = silta(&centre, &["resend", &id]);
    assert!(o.status.success(), "{}", text(&o));
    wait_for("the refusal", 20, || error.exists()).await;
    let said = std::fs::read_to_string(&error).unwrap();
    assert!(said.contains("not UTF-8"), "{said}");
    assert!(daemon.try_wait().unwrap().is_none(), "the daemon stopped");
    // Other content (another case's account) under the same name: refused.
    std::fs::write(&kept, daemon_form("someone else entirely")).unwrap();
    let o = silta(&centre, &["resend", &id]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!error.exists(), "a new request clears the old answer");
    wait_for("the refusal", 20, || error.exists()).await;
    let said = std::fs::read_to_string(&error).unwrap();
    assert!(said.contains("changed after"), "{said}");
    // A symbolic link to other content: refused, its target not read.
    let elsewhere = centre.dir.path().join("elsewhere.toml");
    std::fs::write(&elsewhere, &form).unwrap();
    std::fs::remove_file(&kept).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &kept).unwrap();
    let o = silta(&centre, &["resend", &id]);
    assert!(o.status.success(), "{}", text(&o));
    wait_for("the refusal", 20, || error.exists()).await;
    let said = std::fs::read_to_string(&error).unwrap();
    assert!(said.contains("symbolic link"), "{said}");
    assert_eq!(accepted(&relay), [id.as_str()], "nothing re-sent");

    // As it was: re-sent, the answer of before gone.
    std::fs::remove_file(&kept).unwrap();
    std::fs::write(&kept, &form).unwrap();
    let o = silta(&centre, &["resend", &id]);
    assert!(o.status.success(), "{}", text(&o));
    wait_for("the re-sending", 20, || status()["resent_as"].is_array()).await;
    wait_for("the request done", 20, || !request.exists()).await;
    assert!(!error.exists());
    let new_id = status()["resent_as"][0]["message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(accepted(&relay), [id.clone(), new_id.clone()]);
    let log = std::fs::read_to_string(centre.dir.path().join("state").join("access.log")).unwrap();
    let entry = log
        .lines()
        .find(|l| l.contains("\"disclosed\"") && l.contains(&new_id))
        .unwrap_or_else(|| panic!("{log}"));
    let entry: serde_json::Value = serde_json::from_str(entry).unwrap();
    let who = entry["who"].as_str().unwrap();
    assert!(
        who.starts_with("process:silta-daemon (requested by "),
        "{who}"
    );
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
    let logged = std::fs::read_to_string(centre.dir.path().join("daemon.log")).unwrap();
    assert!(!logged.contains("what was sent"), "content in the log");
    assert!(!logged.contains("someone else"), "content in the log");
}

/// Two recipients, one of whose copies cannot be opened: the re-sending goes to that one only.
/// While that recipient has no current keys (every certificate of it revoked), it is refused
/// (exit 1) and nothing is sent; once its new operator has published keys, it goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_failed_recipient_of_two_is_resent_to_once_it_has_keys() {
    let mut pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.tls.reload_interval_s = 1).await;
    let centre = TestUser::new(&pki, relay.addr, "centre/joutseno", "server-1");
    let nas = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-1");
    let other = TestUser::new(&pki, relay.addr, "assistance/other", "desk-1");
    for u in [&centre, &nas, &other] {
        let o = silta(u, &["keys", "publish"]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let form = centre.dir.path().join("referral.toml");
    std::fs::write(&form, referral_form("to two desks")).unwrap();
    let o = silta(
        &centre,
        &[
            "send",
            "--kind",
            "referral",
            "--to",
            "assistance/nas",
            "--to",
            "assistance/other",
            "--case",
            CASE,
            form.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let id = sent_id(&o);
    // other opens its copy; nas's new operator cannot open its copy.
    let o = silta(&other, &["receive", "--wait", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let nas2 = new_operator(&pki, &relay).await;
    let o = silta(&nas2, &["receive", "--wait", "2"]);
    assert!(o.status.success(), "{}", text(&o));

    // Every certificate of nas revoked: no current keys to seal to. Refused, nothing sent.
    pki.revoke(&nas.identity);
    pki.revoke(&nas2.identity);
    let cfg = pki.client_config(relay.addr, Some(&nas2.identity));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while silta_client::Connection::connect(&cfg).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "CRL not reloaded after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let o = silta(&centre, &["resend", &id]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("no current keys"), "{}", text(&o));
    assert_eq!(accepted(&relay), [id.as_str()]);

    // The next operator enrols and publishes: re-sent to nas only.
    let nas3 = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-3");
    let o = silta(&nas3, &["keys", "publish"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = silta(&centre, &["resend", &id]);
    assert!(o.status.success(), "{}", text(&o));
    let new_id = resent_id(&o);
    assert!(
        text(&o).contains(&format!("to assistance/nas as {new_id}")),
        "{}",
        text(&o)
    );
    assert_eq!(accepted(&relay), [id.clone(), new_id.clone()]);
    let out = nas3.dir.path().join("in");
    let o = silta(
        &nas3,
        &["receive", "--out", out.to_str().unwrap(), "--wait", "2"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let got = received(&out);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["message_id"], new_id);
    assert_eq!(got[0]["to"], serde_json::json!(["assistance/nas"]));
    // other's copy was not re-sent: nothing new for it.
    let out = other.dir.path().join("in");
    let o = silta(
        &other,
        &["receive", "--out", out.to_str().unwrap(), "--wait", "1"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(received(&out).is_empty());
}
