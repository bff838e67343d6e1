//! The `silta` program against a real relay: keys, send, receive, and its error messages.

use std::process::Command;

use silta_tests::{TestPki, TestRelay, TestUser};

const SILTA: &str = env!("CARGO_BIN_EXE_silta-under-test");

fn silta(user: &TestUser, args: &[&str]) -> std::process::Output {
    Command::new(SILTA)
        .arg("--config")
        .arg(user.dir.path().join("silta.toml"))
        .args(args)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_and_receive_from_the_command_line() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = TestUser::new(&pki, relay.addr, "centre/joutseno", "server-1");
    let nas = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-1");
    for u in [&centre, &nas] {
        let o = silta(u, &["keys", "publish"]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("published keys"), "{}", text(&o));
    }
    let o = silta(&centre, &["keys", "show"]);
    assert!(text(&o).contains("fingerprint:"), "{}", text(&o));
    let o = silta(&centre, &["keys", "get", "assistance/nas"]);
    assert!(
        text(&o).contains("assistance/nas device desk-1"),
        "{}",
        text(&o)
    );

    let form = centre.dir.path().join("referral.toml");
    std::fs::write(
        &form,
        "account = \"met at the centre\"\n[person]\nname = \"A. Person\"\nage_group = \"AGE_GROUP_ADULT\"\n[consent]\nperson_name = \"A. Person\"\ndate = \"2026-11-20\"\ninformed_about = [\"services\"]\n",
    )
    .unwrap();
    let case = "0123456789abcdef0123456789abcdef";
    let o = silta(
        &centre,
        &[
            "send",
            "--kind",
            "referral",
            "--to",
            "assistance/nas",
            "--case",
            case,
            form.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("sent referral"), "{}", text(&o));

    let out = nas.dir.path().join("inbox");
    let o = silta(
        &nas,
        &["receive", "--out", out.to_str().unwrap(), "--wait", "2"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&files[0]).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(json["kind"], "referral");
    assert_eq!(json["from"], "centre/joutseno");
    assert_eq!(json["case_ref"], case);
    assert_eq!(json["payload"]["referral"]["account"], "met at the centre");

    // The centre sees the delivery and acknowledgement.
    let o = silta(&centre, &["receive", "--wait", "2"]);
    assert!(text(&o).contains("ACKNOWLEDGED"), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_is_wrong_and_send_nothing() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = TestUser::new(&pki, relay.addr, "centre/joutseno", "server-1");
    let nas = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-1");
    assert!(silta(&centre, &["keys", "publish"]).status.success());
    let before = relay.fingerprint();

    // A referral without consent: exit 65, the message names what is missing.
    let form = centre.dir.path().join("bad.toml");
    std::fs::write(
        &form,
        "[person]\nname = \"A\"\nage_group = \"AGE_GROUP_ADULT\"\n",
    )
    .unwrap();
    let o = silta(
        &centre,
        &[
            "send",
            "--kind",
            "referral",
            "--to",
            "assistance/nas",
            "--case",
            "none",
            form.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(65), "{}", text(&o));
    assert!(
        text(&o).contains("consent record is required"),
        "{}",
        text(&o)
    );

    // A consultation with a name field.
    std::fs::write(&form, "name = \"Jane Doe\"\nquestions = \"?\"\n").unwrap();
    let o = silta(
        &centre,
        &[
            "send",
            "--kind",
            "anonymous-consultation",
            "--to",
            "assistance/nas",
            "--case",
            "none",
            form.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(65), "{}", text(&o));
    assert!(text(&o).contains("name"), "{}", text(&o));

    // Recipient without published keys: says so, with what to do.
    std::fs::write(&form, "questions = \"what should we do?\"\n").unwrap();
    let o = silta(
        &centre,
        &[
            "send",
            "--kind",
            "anonymous-consultation",
            "--to",
            "assistance/nas",
            "--case",
            "none",
            form.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("has not published keys") && text(&o).contains("silta keys publish"),
        "{}",
        text(&o)
    );
    drop(nas);

    // Unknown kind: usage error listing the kinds.
    let o = silta(
        &centre,
        &[
            "send",
            "--kind",
            "gossip",
            "--to",
            "assistance/nas",
            "--case",
            "none",
            form.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(64));
    assert!(text(&o).contains("referral"), "{}", text(&o));
    assert_eq!(relay.fingerprint(), before, "nothing was sent");

    // Keys are never overwritten.
    let o = silta(&centre, &["keys", "init"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(text(&o).contains("never overwritten"), "{}", text(&o));
}

/// No plaintext reaches the relay: messages carrying unique markers go through a relay process
/// logging at debug level; its data folder and its logs are searched byte by byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_plaintext_in_the_relay_data_or_logs() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("relay.toml");
    std::fs::write(&config, pki.relay_config_toml(&data)).unwrap();
    let log_path = dir.path().join("relay.log");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_silta-relay-under-test"));
    cmd.arg("--config")
        .arg(&config)
        .env("SILTA_RELAY__LOG__LEVEL", "debug,silta_relay=trace")
        .env("SILTA_RELAY__LOG__FORMAT", "json")
        .env_remove("RUST_LOG")
        .stderr(std::fs::File::create(&log_path).unwrap());
    let relay = silta_tests::RelayProcess::spawn_command(cmd).await;
    let centre = TestUser::new(&pki, relay.addr, "centre/joutseno", "server-1");
    let nas = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-1");
    for u in [&centre, &nas] {
        assert!(silta(u, &["keys", "publish"]).status.success());
    }
    let markers = [
        "PLAINTEXT-ACCOUNT-4b1f",
        "PERSON-NAME-9c2e",
        "CONSULT-QUESTION-77d0",
    ];
    let form = centre.dir.path().join("referral.toml");
    std::fs::write(
        &form,
        format!(
            "account = \"{}\"\n[person]\nname = \"{}\"\nage_group = \"AGE_GROUP_ADULT\"\n[consent]\nperson_name = \"{}\"\ndate = \"2026-11-20\"\ninformed_about = [\"services\"]\n",
            markers[0], markers[1], markers[1]
        ),
    )
    .unwrap();
    let o = silta(
        &centre,
        &[
            "send",
            "--kind",
            "referral",
            "--to",
            "assistance/nas",
            "--case",
            "none",
            form.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(&form, format!("questions = \"{}\"\n", markers[2])).unwrap();
    let o = silta(
        &centre,
        &[
            "send",
            "--kind",
            "anonymous-consultation",
            "--to",
            "assistance/nas",
            "--case",
            "none",
            form.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = silta(&nas, &["receive", "--wait", "2"]);
    assert!(
        text(&o).contains(markers[0]) && text(&o).contains(markers[2]),
        "the recipient reads them: {}",
        text(&o)
    );
    assert!(relay.terminate().await.success());

    let mut files = vec![log_path.clone()];
    let mut stack = vec![data.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else {
                files.push(p)
            }
        }
    }
    assert!(
        std::fs::metadata(&log_path).unwrap().len() > 1000,
        "debug logs were written"
    );
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        for m in markers {
            assert!(
                !bytes.windows(m.len()).any(|w| w == m.as_bytes()),
                "{m} found in {}",
                f.display()
            );
        }
    }
}

/// The auditor's commands: verify, prove, and an evidence file checked offline (and refused with
/// one byte changed); query exports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_prove_and_check_evidence_offline() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = TestUser::new(&pki, relay.addr, "centre/joutseno", "server-1");
    let nas = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-1");
    let auditor = TestUser::new(&pki, relay.addr, "auditor/dpo", "laptop");
    for u in [&centre, &nas] {
        assert!(silta(u, &["keys", "publish"]).status.success());
    }
    let form = centre.dir.path().join("c.toml");
    std::fs::write(&form, "questions = \"what now?\"\n").unwrap();
    let o = silta(
        &centre,
        &[
            "send",
            "--kind",
            "anonymous-consultation",
            "--to",
            "assistance/nas",
            "--case",
            "none",
            form.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let id = text(&o).split_whitespace().nth(2).unwrap().to_owned();
    assert!(silta(&nas, &["receive", "--wait", "2"]).status.success());

    let key = relay.log_key.clone();
    let o = silta(
        &auditor,
        &[
            "audit",
            "verify",
            "--log-key",
            &key,
            "--purpose",
            "log-verification: monthly check",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("delivery log verified"), "{}", text(&o));

    // The sender proves acceptance and acknowledgement with a file anyone can check offline.
    let evidence = centre.dir.path().join("evidence.json");
    let o = silta(
        &centre,
        &[
            "audit",
            "prove",
            &id,
            "--purpose",
            "delivery-check: proof of delivery",
            "--out",
            evidence.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    relay.stop().await;
    let ca = centre.dir.path().join("ca.pem");
    let check = |file: &std::path::Path| {
        Command::new(SILTA)
            .args(["audit", "check-evidence"])
            .arg(file)
            .args(["--log-key", &key])
            .arg("--ca")
            .arg(&ca)
            .output()
            .unwrap()
    };
    let o = check(&evidence);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("ACCEPTED") && text(&o).contains("ACKNOWLEDGED"),
        "{}",
        text(&o)
    );
    // One byte changed anywhere that matters: refused.
    let original = std::fs::read_to_string(&evidence).unwrap();
    let json: serde_json::Value = serde_json::from_str(&original).unwrap();
    let leaf = json["entries"][0]["leaf"].as_str().unwrap().to_owned();
    let mut bytes = base64_decode(&leaf);
    bytes[3] ^= 1;
    let tampered = original.replace(&leaf, &base64_encode(&bytes));
    let bad = centre.dir.path().join("bad.json");
    std::fs::write(&bad, tampered).unwrap();
    let o = check(&bad);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("does NOT hold"), "{}", text(&o));
    // Evidence about another message than the one asked about: refused.
    let other_id = uuid::Uuid::now_v7().to_string();
    let o = Command::new(SILTA)
        .args(["audit", "check-evidence"])
        .arg(&evidence)
        .args(["--log-key", &key, "--message-id", &other_id])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // A different log key: refused.
    let other = silta_proto::tlog::verifier_key("silta.example/delivery-log", &[9; 32]);
    let o = Command::new(SILTA)
        .args(["audit", "check-evidence"])
        .arg(&evidence)
        .args(["--log-key", &other])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The `disclosed` entries of an installation's access log: (message ids, recipients, who).
fn disclosed(user: &TestUser) -> Vec<(Vec<String>, Vec<String>, String)> {
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    std::fs::read_to_string(user.dir.path().join("state/access.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["action"] == "disclosed")
        .map(|e| {
            (
                strings(&e["messages"]),
                strings(&e["recipients"]),
                e["who"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The ids of the messages the relay logged as accepted.
fn accepted(relay: &TestRelay) -> Vec<(String, u64)> {
    relay
        .events()
        .iter()
        .filter(|e| e.r#type == silta_proto::pb::EventType::Accepted as i32)
        .map(|e| {
            (
                uuid::Uuid::from_slice(&e.message_id).unwrap().to_string(),
                e.index,
            )
        })
        .collect()
}

/// `silta send` writes to the access log who disclosed which message to whom, before it leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_records_the_disclosure_in_the_access_log() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = TestUser::new(&pki, relay.addr, "centre/joutseno", "server-1");
    let nas = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-1");
    for u in [&centre, &nas] {
        assert!(silta(u, &["keys", "publish"]).status.success());
    }
    let form = centre.dir.path().join("referral.toml");
    std::fs::write(&form, referral_form("met at the centre")).unwrap();
    let o = Command::new(SILTA)
        .arg("--config")
        .arg(centre.dir.path().join("silta.toml"))
        .env("SILTA_USER", "caseworker-anna")
        .args(["send", "--kind", "referral", "--to", "assistance/nas"])
        .args(["--case", "none", form.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let id = sent_id(&o);
    assert_eq!(
        disclosed(&centre),
        [(
            vec![id.clone()],
            vec!["assistance/nas".to_owned()],
            // The OS user; the declared name is beside it, never instead.
            silta_client::access::os_user().name
        )]
    );
    let log = std::fs::read_to_string(centre.dir.path().join("state/access.log")).unwrap();
    assert!(
        log.contains("\"declared_user\":\"caseworker-anna\""),
        "{log}"
    );
    assert_eq!(accepted(&relay).len(), 1);
    assert_eq!(accepted(&relay)[0].0, id);
    relay.stop().await;
}

fn referral_form(account: &str) -> String {
    format!(
        "account = \"{account}\"\n[person]\nname = \"A. Person\"\nage_group = \"AGE_GROUP_ADULT\"\n[consent]\nperson_name = \"A. Person\"\ndate = \"2026-11-20\"\ninformed_about = [\"services\"]\n"
    )
}

/// The message id in `sent <kind> <id> to ...: accepted at log index <n>`.
fn sent_id(o: &std::process::Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out.lines().find(|l| l.starts_with("sent ")).unwrap();
    line.split(' ').nth(2).unwrap().to_owned()
}

/// The relay accepts a message but its answer is lost on the way back: `silta send` fails with
/// exit code 69, and the same command run again sends the same message (same id, same bytes),
/// which the relay answers with the receipt it gave the first time: one message in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_again_after_a_lost_answer_sends_the_same_message() {
    lost_answer_then_rerun(std::time::Duration::ZERO).await;
}

/// The same hours later: the relay is asked (`Status`) and, as it has the message, the kept
/// bytes are sent again; never a second copy under a new id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_again_after_a_lost_answer_hours_later_sends_the_same_message() {
    lost_answer_then_rerun(std::time::Duration::from_secs(3 * 3600)).await;
}

/// Moves the time the kept message was sealed `back` into the past (the command cannot take a
/// clock).
fn age_kept_messages(user: &TestUser, back: std::time::Duration) {
    let db = sled::open(user.dir.path().join("state/client-db")).unwrap();
    let tree = db.open_tree("outbox_key_record").unwrap();
    let mut aged = 0;
    for kv in tree.iter() {
        let (k, v) = kv.unwrap();
        let mut record: serde_json::Value = serde_json::from_slice(&v).unwrap();
        let at = record["sealed_at_ms"].as_u64().unwrap();
        record["sealed_at_ms"] = (at - back.as_millis() as u64).into();
        tree.insert(k, serde_json::to_vec(&record).unwrap())
            .unwrap();
        aged += 1;
    }
    assert_eq!(aged, 1, "one kept message");
    db.flush().unwrap();
}

/// `silta send` through a proxy that loses the relay's answer, then the same command directly,
/// `later` afterwards.
async fn lost_answer_then_rerun(later: std::time::Duration) {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = TestUser::new(&pki, relay.addr, "centre/joutseno", "server-1");
    let nas = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-1");
    for u in [&centre, &nas] {
        assert!(silta(u, &["keys", "publish"]).status.success());
    }
    // A form whose sealed message (padded to 32 KiB) is far larger than everything the client
    // sends before it (TLS handshake, health check, key lookups).
    let form = centre.dir.path().join("referral.toml");
    std::fs::write(&form, referral_form(&"long account ".repeat(1500))).unwrap();
    let proxy = silta_tests::AnswerLosingProxy::start(
        relay.addr,
        12 * 1024,
        std::time::Duration::from_millis(1000),
    )
    .await;
    let direct = centre.dir.path().join("silta.toml");
    let via_proxy = centre.dir.path().join("via-proxy.toml");
    std::fs::write(
        &via_proxy,
        std::fs::read_to_string(&direct).unwrap().replace(
            &format!("localhost:{}", relay.addr.port()),
            &format!("localhost:{}", proxy.addr.port()),
        ),
    )
    .unwrap();
    let send = |config: &std::path::Path| {
        Command::new(SILTA)
            .arg("--config")
            .arg(config)
            .args(["send", "--kind", "referral", "--to", "assistance/nas"])
            .args(["--case", "none", form.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let o = send(&via_proxy);
    assert_eq!(o.status.code(), Some(69), "{}", text(&o));
    assert!(text(&o).contains("hint:"), "{}", text(&o));
    // The relay has it: accepted once, under the id the access log recorded.
    let logged = disclosed(&centre);
    assert_eq!(logged.len(), 1, "{logged:?}");
    let id = logged[0].0[0].clone();
    let first = accepted(&relay);
    assert_eq!(first.len(), 1, "the relay never got the message: {first:?}");
    assert_eq!(first[0].0, id);
    if !later.is_zero() {
        age_kept_messages(&centre, later);
    }

    let o = send(&direct);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(sent_id(&o), id, "{}", text(&o));
    assert!(
        text(&o).contains(&format!("accepted at log index {}", first[0].1)),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains(&format!(
            "sending again the same message {id} (an earlier attempt did not finish at "
        )),
        "{}",
        text(&o)
    );
    assert_eq!(accepted(&relay), first, "one acceptance, no second copy");
    assert_eq!(disclosed(&centre).len(), 1, "the disclosure is logged once");
    drop(proxy);
    relay.stop().await;
}
