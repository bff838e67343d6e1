//! Acknowledgements and receipts as evidence, with the real relay and the real `silta` binary:
//! an acknowledgement counts only if the recipient's device signed it (checked against the CA,
//! offline in evidence files, by `audit verify`, and by the sender); receipts a party holds are
//! checked against the log the auditor verifies; what the relay or a participant wrote is shown
//! neutralised in tables and CSV.

use std::process::Command;

use prost::Message as _;
use silta_proto::pb;
use silta_tests::{TestPki, TestRelay, TestUser, append_event};

const SILTA: &str = env!("CARGO_BIN_EXE_silta-under-test");
const NAS: &str = "assistance/nas";

fn silta(user: &TestUser, args: &[&str]) -> std::process::Output {
    Command::new(SILTA)
        .arg("--config")
        .arg(user.dir.path().join("silta.toml"))
        .args(args)
        .env("SILTA_USER", "tester")
        .env_remove("SILTA_PURPOSE")
        .stdin(std::process::Stdio::null())
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

/// Sends an anonymous consultation with the `consultation` command; returns its message id.
fn consult(centre: &TestUser, question: &str) -> String {
    let o = silta(
        centre,
        &[
            "consultation",
            "--to",
            NAS,
            "--questions",
            question,
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["message_id"].as_str().unwrap().to_owned()
}

/// What a hostile relay writes to claim that `NAS` acknowledged `id`: an ACKNOWLEDGED event
/// copied from the ACCEPTED one, naming NAS's real device, with an all-zero signature.
async fn forge_ack(relay: &TestRelay, id: &str) -> u64 {
    let id = uuid::Uuid::parse_str(id).unwrap();
    let accepted = relay
        .events()
        .into_iter()
        .find(|e| e.message_id == id.as_bytes() && e.r#type == pb::EventType::Accepted as i32)
        .unwrap();
    let forged = pb::Event {
        r#type: pb::EventType::Acknowledged.into(),
        time: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        actor: NAS.into(),
        recipients: vec![NAS.into()],
        ack_signature: vec![0; 64],
        ack_device: "desk-1".into(),
        detail: "device desk-1".into(),
        ..accepted
    };
    append_event(relay, forged).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_are_checked_against_the_recipients_key() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = TestUser::new(&pki, relay.addr, "centre/joutseno", "server-1");
    let nas = TestUser::new(&pki, relay.addr, NAS, "desk-1");
    let auditor = TestUser::new(&pki, relay.addr, "auditor/dpo", "laptop");
    for u in [&centre, &nas] {
        assert!(silta(u, &["keys", "publish"]).status.success());
    }
    let key = relay.log_key.clone();
    let ca = centre.dir.path().join("ca.pem");

    // A real acknowledgement: the NAS receives (opens, signs, acknowledges).
    let real = consult(&centre, "what now?");
    let o = silta(&nas, &["receive", "--wait", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    // The sender's inbox checks the signature before it shows "acknowledged".
    let o = silta(&centre, &["inbox", "sync", "--purpose", "delivery check"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = silta(
        &centre,
        &[
            "inbox",
            "show",
            &real,
            "--json",
            "--purpose",
            "delivery check",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let record: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let status = &record["recipients"][NAS];
    assert_eq!(status["state"], "acknowledged", "{record}");
    assert_eq!(status["ack_device"], "desk-1", "{record}");
    assert!(!status["ack_key"].as_str().unwrap().is_empty(), "{record}");

    let verify = |extra: &[&str]| {
        let mut args = vec![
            "audit",
            "verify",
            "--log-key",
            &key,
            "--purpose",
            "log-verification: monthly check",
        ];
        args.extend_from_slice(extra);
        silta(&auditor, &args)
    };
    let o = verify(&[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("1 acknowledgement signature(s) verified"),
        "{}",
        text(&o)
    );

    let prove = |id: &str, file: &std::path::Path| {
        silta(
            &centre,
            &[
                "audit",
                "prove",
                id,
                "--purpose",
                "delivery-check",
                "--out",
                file.to_str().unwrap(),
            ],
        )
    };
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
    let good = centre.dir.path().join("good.evidence.json");
    let o = prove(&real, &good);
    assert!(o.status.success(), "{}", text(&o));
    let evidence: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&good).unwrap()).unwrap();
    assert_eq!(evidence["version"], 2);
    assert!(
        !evidence["keys"].as_array().unwrap().is_empty(),
        "{evidence}"
    );
    assert!(
        !evidence["crls"].as_array().unwrap().is_empty(),
        "{evidence}"
    );

    // A hostile relay logs an acknowledgement nobody made, in a properly signed log.
    let unacked = consult(&centre, "and now?");
    let forged_index = forge_ack(&relay, &unacked).await;
    let forged = centre.dir.path().join("forged.evidence.json");
    let o = prove(&unacked, &forged);
    assert!(o.status.success(), "{}", text(&o));
    // The auditor's verification names the forged acknowledgement: exit 2.
    let o = verify(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "index {forged_index}: acknowledgement by assistance/nas: the signature does NOT verify"
        )),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("1 of 2 acknowledgement(s) do NOT verify"),
        "{}",
        text(&o)
    );
    // Offline, without a CA the acknowledgement cannot be checked: a usage error.
    let o = Command::new(SILTA)
        .args([
            "--config",
            "/nonexistent/silta.toml",
            "audit",
            "check-evidence",
        ])
        .arg(&good)
        .args(["--log-key", &key])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(text(&o).contains("--ca"), "{}", text(&o));
    relay.stop().await;

    let o = check(&good);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("acknowledgement signed by assistance/nas device desk-1"),
        "{}",
        text(&o)
    );
    let o = check(&forged);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("does NOT hold"), "{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "index {forged_index}: the acknowledgement by assistance/nas is NOT proven: the signature does NOT verify"
        )),
        "{}",
        text(&o)
    );

    // The real evidence with its acknowledgement's signature zeroed: does not hold either.
    let original = std::fs::read_to_string(&good).unwrap();
    let v: serde_json::Value = serde_json::from_str(&original).unwrap();
    let ack_leaf = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["leaf"].as_str().unwrap().to_owned())
        .find(|l| {
            pb::Event::decode(b64_decode(l).as_slice()).unwrap().r#type
                == pb::EventType::Acknowledged as i32
        })
        .unwrap();
    let mut event = pb::Event::decode(b64_decode(&ack_leaf).as_slice()).unwrap();
    event.ack_signature = vec![0; 64];
    let tampered = centre.dir.path().join("tampered.evidence.json");
    std::fs::write(
        &tampered,
        original.replace(&ack_leaf, &b64_encode(&event.encode_to_vec())),
    )
    .unwrap();
    let o = check(&tampered);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("does NOT hold"), "{}", text(&o));
}

fn b64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn b64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Receipts a party holds are checked against the log the auditor verified: a real one matches,
/// one whose log entry differs from the leaf at its index is reported (exit 2). Event fields a
/// relay or participant wrote come out neutralised in the table and the CSV.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_are_checked_against_the_log_and_outputs_are_neutralised() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = TestUser::new(&pki, relay.addr, "centre/joutseno", "server-1");
    let nas = TestUser::new(&pki, relay.addr, NAS, "desk-1");
    let auditor = TestUser::new(&pki, relay.addr, "auditor/dpo", "laptop");
    for u in [&centre, &nas] {
        assert!(silta(u, &["keys", "publish"]).status.success());
    }
    let key = relay.log_key.clone();
    let id = consult(&centre, "what now?");
    let o = silta(
        &centre,
        &[
            "inbox",
            "show",
            &id,
            "--json",
            "--purpose",
            "delivery check",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let record: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        !record["receipt"]["checkpoint"].as_str().unwrap().is_empty(),
        "{record}"
    );
    let good = centre.dir.path().join("good.receipt.json");
    std::fs::write(&good, serde_json::to_vec(&record).unwrap()).unwrap();
    // The same receipt with another log entry (another digest) than the log holds.
    let mut entry =
        pb::Event::decode(b64_decode(record["receipt"]["log_entry"].as_str().unwrap()).as_slice())
            .unwrap();
    entry.ciphertext_sha256 = vec![7; 32];
    let mut split = record.clone();
    split["receipt"]["log_entry"] = b64_encode(&entry.encode_to_vec()).into();
    let bad = centre.dir.path().join("split.receipt.json");
    std::fs::write(&bad, serde_json::to_vec(&split).unwrap()).unwrap();

    // A relay (or a participant through it) puts terminal escapes and a formula into an event.
    let accepted = relay
        .events()
        .into_iter()
        .find(|e| e.r#type == pb::EventType::Accepted as i32)
        .unwrap();
    append_event(
        &relay,
        pb::Event {
            r#type: pb::EventType::Rejected.into(),
            actor: "=HYPERLINK(\"http://x\")".into(),
            detail: "\x1b[2K\x1b[1A\x1b]0;owned\x07rows erased".into(),
            ..accepted
        },
    )
    .await;

    let base = [
        "audit",
        "verify",
        "--log-key",
        &key,
        "--purpose",
        "log-verification",
    ];
    let mut args = base.to_vec();
    args.extend(["--receipts", good.to_str().unwrap()]);
    let o = silta(&auditor, &args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("1 receipt(s) match the verified log"),
        "{}",
        text(&o)
    );
    let mut args = base.to_vec();
    args.extend(["--receipts", good.to_str().unwrap(), bad.to_str().unwrap()]);
    let o = silta(&auditor, &args);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("is NOT the leaf at index")
            && text(&o).contains("1 of 2 receipt(s) do NOT match"),
        "{}",
        text(&o)
    );

    let query = |format: &str| {
        silta(
            &auditor,
            &[
                "audit",
                "query",
                "--purpose",
                "supervision",
                "--message-id",
                &id,
                "--format",
                format,
            ],
        )
    };
    let o = query("table");
    assert!(o.status.success(), "{}", text(&o));
    let table = String::from_utf8(o.stdout).unwrap();
    assert!(
        !table.contains('\x1b') && !table.contains('\x07'),
        "{table:?}"
    );
    assert!(table.contains("\u{FFFD}[2K\u{FFFD}[1A"), "{table}");
    assert!(table.contains("rows erased"), "{table}");
    let o = query("csv");
    assert!(o.status.success(), "{}", text(&o));
    let csv = String::from_utf8(o.stdout).unwrap();
    assert!(!csv.contains('\x1b'), "{csv:?}");
    assert!(csv.contains("\"'=HYPERLINK(\"\"http://x\"\")\""), "{csv}");
    assert!(!csv.contains(",\"=HYPERLINK"), "{csv}");
}

/// What a hostile relay could tell a sender: an ACKNOWLEDGED status with an all-zero signature
/// for a message the recipient never received. The sender's inbox does not call it acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_does_not_believe_a_forged_acknowledgement() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = TestUser::new(&pki, relay.addr, "centre/joutseno", "server-1");
    let nas = TestUser::new(&pki, relay.addr, NAS, "desk-1");
    for u in [&centre, &nas] {
        assert!(silta(u, &["keys", "publish"]).status.success());
    }
    let id = consult(&centre, "anyone there?");
    let message_id = uuid::Uuid::parse_str(&id).unwrap().as_bytes().to_vec();
    // The forged status item, written into the sender's mailbox as the relay itself would.
    let sender: silta_certs::Principal = "centre/joutseno".parse().unwrap();
    relay
        .store
        .write(move |trees| {
            trees.transaction(|tx| {
                let name = sender.to_string();
                let mut rec = tx.principal(&name)?.unwrap_or_default();
                let item = silta_relay::store::ItemRecord {
                    message_id: Vec::new(),
                    status: Some(pb::StatusEvent {
                        message_id: message_id.clone(),
                        recipient: NAS.into(),
                        state: pb::DeliveryState::Acknowledged.into(),
                        time: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
                        ack_signature: vec![0; 64],
                        ack_device: "desk-1".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                tx.push_item(&sender, &mut rec, &item)?;
                tx.put_principal(&name, &rec)?;
                Ok(())
            })
        })
        .await
        .unwrap();
    // A real status for the centre afterwards makes the relay hand out its mailbox up to there.
    let other = relay.connect_as(&pki, "assistance/other").await;
    let centre_conn = relay.connect(&pki, &centre.identity).await;
    centre_conn
        .mailbox()
        .send(silta_tests::envelope(
            pb::MessageKind::AnonymousConsultation,
            &["assistance/other"],
            b"opaque",
        ))
        .await
        .unwrap();
    let mut s = other
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        silta_tests::take_items(&mut s, 1, std::time::Duration::from_secs(10))
            .await
            .len(),
        1
    );
    drop(s);

    let o = silta(&centre, &["inbox", "sync", "--purpose", "delivery check"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = silta(
        &centre,
        &[
            "inbox",
            "show",
            &id,
            "--json",
            "--purpose",
            "delivery check",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let record: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let status = &record["recipients"][NAS];
    assert_eq!(
        status["state"],
        silta_client::client::ACK_NOT_VERIFIED,
        "{record}"
    );
    relay.stop().await;
}
