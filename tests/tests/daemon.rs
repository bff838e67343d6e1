//! The centre daemon as a real process against a real relay process: forms queued while the relay
//! is down are delivered once when it returns; a SIGKILLed daemon loses nothing and sends nothing
//! twice; invalid forms go to failed/ with the reason.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    time::Duration,
};

use silta_proto::pb;
use silta_tests::{RelayProcess, TestPki, TestUser, send_raw};

const RELAY: &str = env!("CARGO_BIN_EXE_silta-relay-under-test");
const SILTA: &str = env!("CARGO_BIN_EXE_silta-under-test");
const CENTRE: &str = "centre/joutseno";
const NAS: &str = "assistance/nas";

/// A relay process on a fixed loopback port, so it can be stopped and started again.
struct Relay {
    config: PathBuf,
    process: Option<RelayProcess>,
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

impl Relay {
    async fn start(pki: &TestPki) -> Relay {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("relay.toml");
        let text = pki
            .relay_config_toml(&dir.path().join("data"))
            .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
        std::fs::write(&config, text).unwrap();
        let process = RelayProcess::spawn(RELAY, &config).await;
        let addr = process.addr;
        Relay {
            config,
            process: Some(process),
            addr,
            _dir: dir,
        }
    }

    async fn stop(&mut self) {
        self.process.take().expect("running").kill().await;
    }

    async fn restart(&mut self) {
        assert!(self.process.is_none());
        // The port may take a moment to be free again.
        for _ in 0..50 {
            if std::net::TcpListener::bind(self.addr).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let p = RelayProcess::spawn(RELAY, &self.config).await;
        assert_eq!(p.addr, self.addr);
        self.process = Some(p);
    }
}

/// A `silta daemon` process for a centre installation.
struct DaemonProcess {
    child: tokio::process::Child,
}

impl DaemonProcess {
    fn spawn(user: &TestUser, log: &Path) -> DaemonProcess {
        let child = tokio::process::Command::new(SILTA)
            .arg("--config")
            .arg(user.dir.path().join("silta.toml"))
            .arg("daemon")
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .unwrap(),
            )
            .kill_on_drop(true)
            .spawn()
            .expect("start the daemon");
        DaemonProcess { child }
    }

    async fn kill(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().unwrap().to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("daemon did not stop after SIGTERM")
            .unwrap()
    }
}

/// A centre installation with a fast-retrying daemon section, keys published.
async fn centre(pki: &TestPki, addr: std::net::SocketAddr) -> TestUser {
    let user = TestUser::new(pki, addr, CENTRE, "server-1");
    let path = user.dir.path().join("silta.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(
        "\n[daemon]\nfolder = \"folders\"\nscan_interval_ms = 100\nretry_initial_ms = 100\nretry_max_ms = 800\nsettle_ms = 100\n",
    );
    std::fs::write(&path, text).unwrap();
    user.published().await;
    user
}

fn folder(user: &TestUser, name: &str) -> PathBuf {
    user.dir.path().join("folders").join(name)
}

fn consultation(n: usize) -> String {
    format!(
        "indicators = [\"indicator {n}\"]\nquestions = \"question number {}\"\n\n[envelope]\nkind = \"anonymous-consultation\"\nto = \"{NAS}\"\n",
        ["one", "two", "three", "four", "five"][n % 5]
    )
}

/// Writes a form the way a case-management system should: elsewhere, then a rename.
fn drop_form(user: &TestUser, name: &str, text: &str) {
    let outbox = folder(user, "outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    let tmp = outbox.join(format!(".{name}.part"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, outbox.join(name)).unwrap();
}

fn status(user: &TestUser, name: &str) -> Option<serde_json::Value> {
    let text =
        std::fs::read_to_string(folder(user, "sent").join(format!("{name}.status.json"))).ok()?;
    serde_json::from_str(&text).ok()
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

/// Every event in the relay's delivery log (as an auditor).
async fn events(pki: &TestPki, addr: std::net::SocketAddr) -> Vec<pb::Event> {
    let conn = silta_client::Connection::connect(
        &pki.client_config(addr, Some(&pki.client("auditor/dpo"))),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = conn
            .audit()
            .query(pb::QueryRequest {
                filter: None,
                purpose: "test".into(),
                page_size: 1000,
                page_token: token,
                purpose_code: pb::PurposeCode::Supervision.into(),
            })
            .await
            .unwrap()
            .into_inner();
        out.extend(page.events);
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

fn accepted_by(events: &[pb::Event], sender: &str) -> Vec<Vec<u8>> {
    events
        .iter()
        .filter(|e| e.r#type == pb::EventType::Accepted as i32 && e.sender == sender)
        .map(|e| e.message_id.clone())
        .collect()
}

/// The NAS side receives (and acknowledges) what is waiting; returns message id -> questions.
async fn nas_receive(nas: &TestUser) -> HashMap<String, String> {
    let client = nas.client().await;
    let mut got = HashMap::new();
    let opener = silta_tests::TestOpener::new();
    let items = client
        .receive(
            &opener.opener(),
            Duration::from_secs(2),
            usize::MAX,
            |_, opened| {
                let q = match &opened.payload.body {
                    Some(pb::payload::payload::Body::AnonymousConsultation(c)) => {
                        c.questions.clone()
                    }
                    _ => String::new(),
                };
                got.insert(
                    uuid::Uuid::from_slice(&opened.signed.message_id)
                        .unwrap()
                        .to_string(),
                    q,
                );
                Ok(())
            },
        )
        .await
        .unwrap();
    assert!(
        items
            .iter()
            .all(|i| !matches!(i, silta_client::client::Received::Rejected { .. })),
        "{items:?}"
    );
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_queued_while_the_relay_is_down_are_delivered_once_when_it_returns() {
    let pki = TestPki::new();
    let mut relay = Relay::start(&pki).await;
    let nas = TestUser::new(&pki, relay.addr, NAS, "desk-1");
    nas.published().await;
    let centre = centre(&pki, relay.addr).await;
    let log = centre.dir.path().join("daemon.log");
    let daemon = DaemonProcess::spawn(&centre, &log);

    drop_form(&centre, "a.toml", &consultation(0));
    wait_for("a.toml to be sent", 30, || {
        status(&centre, "a.toml").is_some()
    })
    .await;

    relay.stop().await;
    for (i, name) in ["b.toml", "c.toml", "d.toml"].iter().enumerate() {
        drop_form(&centre, name, &consultation(i + 1));
    }
    // Queued (the ids are assigned), retried, not sent while the relay is away.
    wait_for("the daemon to notice the relay is gone", 30, || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("will retry")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for name in ["b.toml", "c.toml", "d.toml"] {
        assert!(status(&centre, name).is_none(), "{name} sent with no relay");
        // Claimed: moved out of outbox/ into queued/ under its message id.
        assert!(!folder(&centre, "outbox").join(name).exists());
    }
    assert_eq!(
        std::fs::read_dir(folder(&centre, "queued"))
            .unwrap()
            .count(),
        3
    );
    // Another form under a name already queued is a new form, not a replacement.
    drop_form(&centre, "b.toml", &consultation(4));
    wait_for("the second b.toml to be claimed", 30, || {
        std::fs::read_dir(folder(&centre, "queued"))
            .unwrap()
            .count()
            == 4
    })
    .await;

    relay.restart().await;
    for name in ["b.toml", "c.toml", "d.toml"] {
        wait_for(&format!("{name} to be sent"), 60, || {
            status(&centre, name).is_some()
        })
        .await;
        assert!(folder(&centre, "sent").join(name).exists());
    }
    wait_for("queued/ to empty", 60, || {
        std::fs::read_dir(folder(&centre, "queued"))
            .unwrap()
            .count()
            == 0
    })
    .await;

    // Delivered once each: one ACCEPTED per form, and the recipient gets five distinct messages.
    let ev = events(&pki, relay.addr).await;
    let accepted = accepted_by(&ev, CENTRE);
    assert_eq!(accepted.len(), 5, "{accepted:?}");
    assert_eq!(accepted.iter().collect::<HashSet<_>>().len(), 5);
    let got = nas_receive(&nas).await;
    assert_eq!(got.len(), 5, "{got:?}");
    let questions: HashSet<&str> = got.values().map(String::as_str).collect();
    for q in [
        "question number one",
        "question number two",
        "question number three",
        "question number four",
        "question number five",
    ] {
        assert!(questions.contains(q), "{q} missing from {questions:?}");
    }
    // The recipient's acknowledgements come back into sent/ as states.
    for name in ["a.toml", "b.toml", "c.toml", "d.toml"] {
        wait_for(&format!("{name} acknowledged"), 30, || {
            status(&centre, name).is_some_and(|s| {
                s["state"] == "acknowledged" && s["recipients"][NAS]["state"] == "acknowledged"
            })
        })
        .await;
        let s = status(&centre, name).unwrap();
        assert!(got.contains_key(s["message_id"].as_str().unwrap()));
    }
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("relay unreachable; will retry")
            || log_text.contains("sending failed; will retry"),
        "{log_text}"
    );
    assert!(daemon.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_daemon_loses_nothing_and_sends_nothing_twice() {
    let pki = TestPki::new();
    let relay = Relay::start(&pki).await;
    let nas = TestUser::new(&pki, relay.addr, NAS, "desk-1");
    let nas_client = nas.published().await;
    let centre = centre(&pki, relay.addr).await;
    let log = centre.dir.path().join("daemon.log");

    const FORMS: usize = 30;
    const REPLIES: usize = 12;
    for i in 0..FORMS {
        drop_form(&centre, &format!("form-{i:02}.toml"), &consultation(i));
    }
    // Messages for the centre too, so the daemon is also killed while receiving.
    let mut sent_to_centre = HashSet::new();
    for i in 0..REPLIES {
        let payload = pb::payload::Payload {
            body: Some(pb::payload::payload::Body::ConsultationReply(
                pb::payload::ConsultationReply {
                    advice: format!("advice {i}"),
                    ..Default::default()
                },
            )),
        };
        let draft = silta_client::seal::Draft::new(
            pb::MessageKind::ConsultationReply,
            [0; 16],
            vec![CENTRE.parse().unwrap()],
            payload,
        );
        send_raw(&nas_client, &draft).await.unwrap();
        sent_to_centre.insert(uuid::Uuid::from_bytes(draft.message_id).to_string());
    }
    drop(nas_client);

    // Kill the daemon three times, at different points of the flow.
    let sent_count = || {
        std::fs::read_dir(folder(&centre, "sent"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".status.json"))
                    .count()
            })
            .unwrap_or(0)
    };
    for target in [3, 12, 21] {
        let daemon = DaemonProcess::spawn(&centre, &log);
        wait_for(&format!("{target} forms sent"), 60, || {
            sent_count() >= target
        })
        .await;
        daemon.kill().await;
    }
    let daemon = DaemonProcess::spawn(&centre, &log);
    wait_for("every form sent", 90, || sent_count() == FORMS).await;
    wait_for("every reply in inbox/", 60, || {
        std::fs::read_dir(folder(&centre, "inbox"))
            .map(|d| d.count())
            .unwrap_or(0)
            >= REPLIES
    })
    .await;
    assert!(daemon.terminate().await.success());

    // No form lost, none sent twice: one ACCEPTED per form.
    let ev = events(&pki, relay.addr).await;
    let accepted = accepted_by(&ev, CENTRE);
    assert_eq!(accepted.len(), FORMS, "forms accepted by the relay");
    assert_eq!(accepted.iter().collect::<HashSet<_>>().len(), FORMS);
    assert!(
        std::fs::read_dir(folder(&centre, "outbox"))
            .unwrap()
            .next()
            .is_none(),
        "outbox not empty"
    );
    assert!(
        std::fs::read_dir(folder(&centre, "failed"))
            .unwrap()
            .next()
            .is_none(),
        "something failed"
    );
    let got = nas_receive(&nas).await;
    assert_eq!(got.len(), FORMS);
    for i in 0..FORMS {
        let s = status(&centre, &format!("form-{i:02}.toml")).expect("status file");
        assert!(
            got.contains_key(s["message_id"].as_str().unwrap()),
            "form {i} not received"
        );
    }
    // No inbox message written twice: one file per message, each intact, 0600; each acknowledged
    // exactly once in the log.
    let mut in_inbox = HashSet::new();
    for e in std::fs::read_dir(folder(&centre, "inbox")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "temporary file left: {name}");
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(e.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap();
        assert!(in_inbox.insert(v["message_id"].as_str().unwrap().to_owned()));
    }
    assert_eq!(in_inbox, sent_to_centre);
    let acks: Vec<_> = ev
        .iter()
        .filter(|e| e.r#type == pb::EventType::Acknowledged as i32 && e.actor == CENTRE)
        .map(|e| e.message_id.clone())
        .collect();
    assert_eq!(acks.len(), REPLIES);
    assert_eq!(acks.iter().collect::<HashSet<_>>().len(), REPLIES);
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(!log_text.contains(" ERROR "), "{log_text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_forms_go_to_failed_with_the_reason() {
    let pki = TestPki::new();
    let relay = Relay::start(&pki).await;
    let nas = TestUser::new(&pki, relay.addr, NAS, "desk-1");
    nas.published().await;
    let centre = centre(&pki, relay.addr).await;
    let daemon = DaemonProcess::spawn(&centre, &centre.dir.path().join("daemon.log"));
    // One daemon per folder: a second one refuses to start, saying why.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = std::process::Command::new(SILTA)
        .arg("--config")
        .arg(centre.dir.path().join("silta.toml"))
        .arg("daemon")
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("another silta daemon is using"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    // A name too long to claim goes to failed/ under a short name, with the reason.
    let long = format!("{}.toml", "x".repeat(220));
    drop_form(&centre, &long, &consultation(0));
    wait_for("the long-named form in failed/", 30, || {
        std::fs::read_dir(folder(&centre, "failed"))
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .ends_with("name-too-long.toml.error")
            })
    })
    .await;

    // A language named in words, not by its ISO 639 code: refused by the daemon as by the
    // `silta` commands (the shared payload check), before anything is sealed.
    let dari = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../client/forms/outbox/referral.toml"
    ))
    .replace("mother_tongue = \"ar\"", "mother_tongue = \"Dari\"");
    assert!(dari.contains("\"Dari\"") && dari.contains(&format!("to = \"{NAS}\"")));
    let cases: [(&str, String, &str); 7] = [
        (
            "dari.toml",
            dari,
            "mother_tongue: \"Dari\" is not a language code silta knows",
        ),
        (
            "no-consent.toml",
            format!(
                "account = \"x\"\n[person]\nname = \"A\"\nage_group = \"AGE_GROUP_ADULT\"\n[envelope]\nkind = \"referral\"\nto = \"{NAS}\"\n"
            ),
            "consent",
        ),
        (
            "named.toml",
            format!(
                "name = \"A Person\"\nquestions = \"q\"\n[envelope]\nkind = \"anonymous-consultation\"\nto = \"{NAS}\"\n"
            ),
            "name",
        ),
        (
            "broken.toml",
            "questions = \"unterminated\n".into(),
            "not valid TOML",
        ),
        (
            "no-envelope.toml",
            "questions = \"q\"\n".into(),
            "no [envelope]",
        ),
        ("notes.txt", "hello".into(), "not a form"),
        (
            "wrong-direction.toml",
            format!("advice = \"a\"\n[envelope]\nkind = \"consultation-reply\"\nto = \"{NAS}\"\n"),
            "may not send",
        ),
    ];
    for (name, text, _) in &cases {
        drop_form(&centre, name, text);
    }
    drop_form(&centre, "good.toml", &consultation(0));
    for (name, _, why) in &cases {
        let error = folder(&centre, "failed").join(format!("{name}.error"));
        wait_for(&format!("{name} in failed/"), 30, || error.exists()).await;
        assert!(folder(&centre, "failed").join(name).exists());
        assert!(!folder(&centre, "outbox").join(name).exists());
        let text = std::fs::read_to_string(&error).unwrap();
        assert!(text.contains(why), "{name}: {text}");
        assert!(text.contains("What to do"), "{text}");
    }
    wait_for("good.toml sent", 30, || {
        status(&centre, "good.toml").is_some()
    })
    .await;

    // The same form dropped again after it was sent is not sent twice.
    drop_form(&centre, "good.toml", &consultation(0));
    let error = folder(&centre, "failed").join("good.toml.error");
    wait_for("the re-dropped form in failed/", 30, || error.exists()).await;
    assert!(
        std::fs::read_to_string(&error)
            .unwrap()
            .contains("already sent")
    );

    // A form that failed after it was queued (the recipient has no keys) can be put back under
    // the same name: it is tried again, and the earlier failed copy is not overwritten.
    let nokeys = "indicators = [\"x\"]\n[envelope]\nkind = \"anonymous-consultation\"\nto = \"assistance/elsewhere\"\n";
    drop_form(&centre, "nokeys.toml", nokeys);
    let error = folder(&centre, "failed").join("nokeys.toml.error");
    wait_for("nokeys.toml in failed/", 30, || error.exists()).await;
    assert!(
        std::fs::read_to_string(&error)
            .unwrap()
            .contains("has not published its keys")
    );
    drop_form(&centre, "nokeys.toml", nokeys);
    wait_for("the second nokeys.toml in failed/", 30, || {
        std::fs::read_dir(folder(&centre, "failed"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .ends_with(".nokeys.toml.error")
            })
            .any(|e| {
                std::fs::read_to_string(e.path())
                    .unwrap()
                    .contains("has not published its keys")
            })
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(folder(&centre, "failed").join("nokeys.toml")).unwrap(),
        nokeys
    );

    let ev = events(&pki, relay.addr).await;
    assert_eq!(
        accepted_by(&ev, CENTRE).len(),
        1,
        "only the valid form reached the relay"
    );
    assert!(daemon.terminate().await.success());
}

/// A symbolic link dropped into the outbox (here to a valid form elsewhere, which would be sent
/// if it were followed) goes to failed/ as the link itself, with the reason; the target is never
/// read or moved. A FIFO goes to failed/ too, without stalling the daemon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_in_the_outbox_is_refused_and_its_target_never_read() {
    let pki = TestPki::new();
    let relay = Relay::start(&pki).await;
    let nas = TestUser::new(&pki, relay.addr, NAS, "desk-1");
    nas.published().await;
    let centre = centre(&pki, relay.addr).await;
    let daemon = DaemonProcess::spawn(&centre, &centre.dir.path().join("daemon.log"));
    let outbox = folder(&centre, "outbox");
    std::fs::create_dir_all(&outbox).unwrap();

    let target = centre.dir.path().join("elsewhere.toml");
    std::fs::write(&target, consultation(1)).unwrap();
    let before = std::fs::metadata(&target).unwrap();
    std::os::unix::fs::symlink(&target, outbox.join("link.toml")).unwrap();
    let fifo = outbox.join("pipe.toml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    drop_form(&centre, "good.toml", &consultation(0));

    let failed = folder(&centre, "failed");
    for (name, why) in [
        ("link.toml", "symbolic link"),
        ("pipe.toml", "not a regular file"),
    ] {
        let error = failed.join(format!("{name}.error"));
        wait_for(&format!("{name} in failed/"), 30, || error.exists()).await;
        let text = std::fs::read_to_string(&error).unwrap();
        assert!(text.contains(why), "{name}: {text}");
        assert!(
            std::fs::symlink_metadata(outbox.join(name)).is_err(),
            "{name} left the outbox"
        );
    }
    // failed/ holds the link itself, still pointing where it did.
    let moved = failed.join("link.toml");
    assert!(
        std::fs::symlink_metadata(&moved)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_link(&moved).unwrap(), target);
    wait_for("good.toml sent", 30, || {
        status(&centre, "good.toml").is_some()
    })
    .await;
    // The target is where it was, unchanged, and was never sent.
    let after = std::fs::metadata(&target).unwrap();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), consultation(1));
    assert_eq!(before.modified().unwrap(), after.modified().unwrap());
    let ev = events(&pki, relay.addr).await;
    assert_eq!(
        accepted_by(&ev, CENTRE).len(),
        1,
        "only good.toml reached the relay"
    );
    assert!(daemon.terminate().await.success());
}

/// A queue written by an earlier version (job `sealed`, its envelope in `msgid_envelope`) keeps
/// working after an upgrade: the form is sent under its id and its disclosure is logged. What
/// the kept bytes were sealed to is unknown, so the relay is asked first; it never accepted
/// them, so they are sealed again to the current keys under the same id (the outbox's unit
/// tests cover the case where the relay has them: then exactly those bytes are sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_of_an_earlier_version_is_sent_with_its_sealed_bytes() {
    let pki = TestPki::new();
    let mut relay = Relay::start(&pki).await;
    let centre = centre(&pki, relay.addr).await;
    let nas = TestUser::new(&pki, relay.addr, NAS, "desk-1");
    nas.published().await;
    // What the earlier daemon had done before it stopped: claimed, queued, sealed, stored.
    let form = consultation(1);
    let id = uuid::Uuid::now_v7();
    let envelope = {
        let client = centre.client().await;
        let (header, payload) = silta_client::form::read_envelope_form(&form, false).unwrap();
        client
            .seal(&header.draft(*id.as_bytes(), payload))
            .await
            .unwrap()
    };
    for d in ["outbox", "queued", "sent", "failed", "inbox"] {
        std::fs::create_dir_all(folder(&centre, d)).unwrap();
    }
    std::fs::write(
        folder(&centre, "queued").join(format!("{id}.old.toml")),
        &form,
    )
    .unwrap();
    {
        use prost::Message as _;
        let db = sled::open(centre.dir.path().join("state/daemon-db")).unwrap();
        let job = serde_json::json!({
            "message_id": id.to_string(), "file_name": "old.toml", "form": form, "json": false,
            "state": "sealed", "queued_at": "2026-11-01T10:00:00Z", "attempts": 3,
            "next_attempt_ms": 0, "last_error": "relay unreachable",
        });
        db.open_tree("msgid_job")
            .unwrap()
            .insert(id.as_bytes(), serde_json::to_vec(&job).unwrap())
            .unwrap();
        db.open_tree("msgid_envelope")
            .unwrap()
            .insert(id.as_bytes(), envelope.encode_to_vec())
            .unwrap();
        db.open_tree("msgid_pending")
            .unwrap()
            .insert(id.as_bytes(), &[])
            .unwrap();
        db.flush().unwrap();
    }
    let log = centre.dir.path().join("daemon.log");
    let daemon = DaemonProcess::spawn(&centre, &log);
    wait_for("the old form sent", 30, || {
        status(&centre, "old.toml").is_some()
    })
    .await;
    let s = status(&centre, "old.toml").unwrap();
    assert_eq!(s["message_id"], id.to_string());
    assert_eq!(s["file"], "old.toml");
    let events = events(&pki, relay.addr).await;
    let accepted: Vec<&pb::Event> = events
        .iter()
        .filter(|e| e.r#type == pb::EventType::Accepted as i32 && e.sender == CENTRE)
        .collect();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].message_id, id.as_bytes());
    assert_ne!(
        accepted[0].ciphertext_sha256, envelope.ciphertext_sha256,
        "sealed again: the relay never had the bytes sealed before the upgrade"
    );
    let access = std::fs::read_to_string(centre.dir.path().join("state/access.log")).unwrap();
    let disclosed: Vec<&str> = access
        .lines()
        .filter(|l| l.contains("\"disclosed\""))
        .collect();
    assert_eq!(disclosed.len(), 1, "{access}");
    assert!(disclosed[0].contains(&id.to_string()));
    assert!(disclosed[0].contains("process:silta-daemon"));
    assert!(
        !folder(&centre, "queued")
            .join(format!("{id}.old.toml"))
            .exists()
    );
    daemon.terminate().await;
    relay.stop().await;
}

/// A form whose sealed message can never fit the relay's `max_ciphertext_bytes` goes to failed/
/// with the relay's reason, once: it is not retried for ever as if the relay were busy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_form_goes_to_failed_not_retried() {
    let pki = TestPki::new();
    let relay = silta_tests::TestRelay::start(&pki, |c| c.limits.max_ciphertext_bytes = 256).await;
    let nas = TestUser::new(&pki, relay.addr, NAS, "desk-1");
    nas.published().await;
    let centre = centre(&pki, relay.addr).await;
    let daemon = DaemonProcess::spawn(&centre, &centre.dir.path().join("daemon.log"));
    drop_form(&centre, "big.toml", &consultation(1));
    let error = folder(&centre, "failed").join("big.toml.error");
    wait_for("the oversize form in failed/", 30, || error.exists()).await;
    let text = std::fs::read_to_string(&error).unwrap();
    assert!(text.contains("limits.max_ciphertext_bytes"), "{text}");
    assert!(text.contains("InvalidArgument"), "{text}");
    assert!(folder(&centre, "failed").join("big.toml").exists());
    assert!(status(&centre, "big.toml").is_none());
    daemon.kill().await;
    relay.stop().await;
}

/// A case claim made at another desk of the daemon's own principal is desk bookkeeping, not a
/// case message: the daemon keeps it in internal/, never in inbox/, and makes no "message"
/// notification for it (a case system reading inbox/ or alerted by notify/ would take it for
/// correspondence about the case).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_from_another_desk_stays_out_of_the_daemons_inbox() {
    use silta_proto::pb::payload::{self as pl, payload::Body};
    let pki = TestPki::new();
    let relay = Relay::start(&pki).await;
    let centre = centre(&pki, relay.addr).await;
    let daemon = DaemonProcess::spawn(&centre, &centre.dir.path().join("daemon.log"));
    let desk2 = TestUser::new(&pki, relay.addr, CENTRE, "desk-2");
    let desk2 = desk2.published().await;
    let claim = silta_client::seal::Draft::new(
        pb::MessageKind::CaseClaim,
        *uuid::Uuid::now_v7().as_bytes(),
        vec![CENTRE.parse().unwrap()],
        pl::Payload {
            body: Some(Body::CaseClaim(pl::CaseClaim {
                action: pl::ClaimAction::Claim.into(),
                holder: "anna".into(),
                holder_device: "desk-2".into(),
                ..Default::default()
            })),
        },
    );
    send_raw(&desk2, &claim).await.unwrap();
    let id = uuid::Uuid::from_bytes(claim.message_id).to_string();
    let names = |dir: &str| -> Vec<String> {
        std::fs::read_dir(folder(&centre, dir))
            .map(|r| {
                r.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_for("the claim in internal/", 30, || {
        names("internal").iter().any(|n| n.starts_with(&id))
    })
    .await;
    // A case message behind it: once that is in inbox/ (and notified), the claim is long done.
    let nas = TestUser::new(&pki, relay.addr, NAS, "desk-1");
    let nas = nas.published().await;
    let reply = silta_client::seal::Draft::new(
        pb::MessageKind::ConsultationReply,
        *uuid::Uuid::now_v7().as_bytes(),
        vec![CENTRE.parse().unwrap()],
        pl::Payload {
            body: Some(Body::ConsultationReply(pl::ConsultationReply {
                advice: "refer".into(),
                ..Default::default()
            })),
        },
    );
    send_raw(&nas, &reply).await.unwrap();
    let reply_id = uuid::Uuid::from_bytes(reply.message_id).to_string();
    wait_for("the reply notified", 30, || {
        names("notify")
            .iter()
            .any(|n| !n.starts_with('.') && n.contains(&reply_id))
    })
    .await;
    let inbox = names("inbox");
    assert!(
        inbox.len() == 1 && inbox[0].starts_with(&reply_id),
        "{inbox:?}"
    );
    assert!(
        !names("notify").iter().any(|n| n.contains(&id)),
        "{:?}",
        names("notify")
    );
    assert!(daemon.terminate().await.success());
}
