//! Expiry and purge at the relay (`[retention]`), with real TLS, real sled and an injected
//! clock that moves days in an instant: an unfetched copy expires at 5 days and the sender is
//! told; ciphertext goes after the purge delay with a PURGED tombstone, and the log still
//! verifies and proves; nothing outlives `max_age_s`.

use std::time::Duration;

use silta_proto::pb::{self, DeliveryState, EventType, MessageKind};
use silta_tests::{TestClock, TestPki, TestRelay, ack_of, envelope, status_of, take_items};
use tonic::Code;

const CENTRE: &str = "centre/joutseno";
const NAS: &str = "assistance/nas";
const DAY: u64 = 24 * 3600;

/// The sweeper runs every 20 ms of real time in these tests.
fn fast_sweeps(c: &mut silta_relay::config::Config) {
    c.retention.sweep_interval_ms = 20;
}

/// Waits (at most 10 s of real time) until `f` holds.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Lets the sweeper run a few rounds (for asserting that nothing happens).
async fn a_few_sweeps() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

fn events_of(relay: &TestRelay, kind: EventType, id: &[u8]) -> Vec<pb::Event> {
    relay
        .events()
        .into_iter()
        .filter(|e| e.r#type == kind as i32 && e.message_id == id)
        .collect()
}

async fn state_of(conn: &silta_client::Connection, id: &[u8]) -> Result<i32, tonic::Status> {
    let s = conn
        .mailbox()
        .status(pb::StatusRequest {
            message_id: id.to_vec(),
        })
        .await?
        .into_inner();
    Ok(s.recipients[0].state)
}

#[tokio::test]
async fn an_unfetched_copy_expires_at_five_days_and_the_sender_is_told() {
    let pki = TestPki::new();
    let clock = TestClock::new();
    let relay = TestRelay::start_clocked(&pki, &clock, fast_sweeps).await;
    let (nas, keys) = relay.connect_with_keys(&pki, NAS).await;
    let centre = relay.connect_as(&pki, CENTRE).await;
    let env = envelope(MessageKind::Referral, &[NAS], b"never fetched");
    centre.mailbox().send(env.clone()).await.unwrap();
    let id = env.message_id.clone();

    // A minute short of five days: still pending.
    clock.advance(Duration::from_secs(5 * DAY - 60));
    a_few_sweeps().await;
    assert_eq!(
        state_of(&centre, &id).await.unwrap(),
        i32::from(DeliveryState::Pending)
    );
    assert!(events_of(&relay, EventType::Expired, &id).is_empty());

    // Five days: expired, in the log, and the sender's status item says so.
    clock.advance(Duration::from_secs(61));
    eventually("the EXPIRED event", || {
        !events_of(&relay, EventType::Expired, &id).is_empty()
    })
    .await;
    let expired = events_of(&relay, EventType::Expired, &id);
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].recipients, [NAS]);
    assert_eq!(expired[0].ciphertext_sha256, env.ciphertext_sha256);
    assert!(
        expired[0]
            .detail
            .contains("retention.expire_after_s=432000"),
        "{}",
        expired[0].detail
    );
    assert_eq!(
        state_of(&centre, &id).await.unwrap(),
        i32::from(DeliveryState::Expired)
    );
    let mut mine = centre
        .mailbox()
        .subscribe(pb::SubscribeRequest {
            after_seq: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let items = take_items(&mut mine, 1, Duration::from_secs(10)).await;
    let status = status_of(&items[0]).expect("a status item");
    assert_eq!(status.message_id, id);
    assert_eq!(status.recipient, NAS);
    assert_eq!(status.state, i32::from(DeliveryState::Expired));
    assert_eq!(status.log_index, expired[0].index);

    // The copy left the recipient's mailbox, and a late acknowledgement is refused.
    let mut theirs = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest {
            after_seq: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        take_items(&mut theirs, 1, Duration::from_millis(300))
            .await
            .is_empty()
    );
    let late = nas.mailbox().ack(ack_of(&keys, &env)).await.unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition, "{late}");
    assert!(late.message().contains("expired"), "{}", late.message());
    assert!(events_of(&relay, EventType::Acknowledged, &id).is_empty());

    // The pending counters went back: the per-sender quota is free again.
    let counters = relay.store.raw_tree("name_counter").unwrap();
    assert!(
        counters.scan_prefix(b"pending\0").next().is_none(),
        "a pending counter is left"
    );

    // The ciphertext goes purge_after_final_s (1 h) after the expiry, with a tombstone.
    assert!(relay.store.ciphertext(&id).unwrap().is_some());
    clock.advance(Duration::from_secs(3600));
    eventually("the PURGED event", || {
        !events_of(&relay, EventType::Purged, &id).is_empty()
    })
    .await;
    assert!(relay.store.ciphertext(&id).unwrap().is_none());
    let purged = events_of(&relay, EventType::Purged, &id);
    assert_eq!(purged[0].ciphertext_sha256, env.ciphertext_sha256);
    assert_eq!(purged[0].ciphertext_size, env.ciphertext.len() as u64);
    assert!(
        purged[0]
            .detail
            .contains("policy retention.purge_after_final_s=3600"),
        "{}",
        purged[0].detail
    );
    // The counters are raised after the sweeper's write returns: a moment after the event.
    eventually("the expiry and purge counters", || {
        let m = relay.metrics.snapshot();
        m.copies_expired >= 1 && m.messages_purged >= 1
    })
    .await;
    relay.stop().await;
}

#[tokio::test]
async fn an_acknowledgement_just_before_expiry_wins_and_the_copy_never_expires() {
    let pki = TestPki::new();
    let clock = TestClock::new();
    let relay = TestRelay::start_clocked(&pki, &clock, fast_sweeps).await;
    let (nas, keys) = relay.connect_with_keys(&pki, NAS).await;
    let centre = relay.connect_as(&pki, CENTRE).await;
    let env = envelope(MessageKind::Referral, &[NAS], b"answered in time");
    centre.mailbox().send(env.clone()).await.unwrap();
    clock.advance(Duration::from_secs(5 * DAY - 1));
    nas.mailbox().ack(ack_of(&keys, &env)).await.unwrap();
    clock.advance(Duration::from_secs(10));
    a_few_sweeps().await;
    assert!(events_of(&relay, EventType::Expired, &env.message_id).is_empty());
    assert_eq!(
        state_of(&centre, &env.message_id).await.unwrap(),
        i32::from(DeliveryState::Acknowledged)
    );
    relay.stop().await;
}

#[tokio::test]
async fn urgent_messages_expire_sooner_after_an_alert() {
    let pki = TestPki::new();
    let clock = TestClock::new();
    let relay = TestRelay::start_clocked(&pki, &clock, fast_sweeps).await;
    relay.connect_as(&pki, NAS).await;
    let centre = relay.connect_as(&pki, CENTRE).await;
    let mut env = envelope(MessageKind::Referral, &[NAS], b"urgent");
    env.urgency = pb::Urgency::Emergency.into();
    centre.mailbox().send(env.clone()).await.unwrap();
    let id = env.message_id.clone();

    clock.advance(Duration::from_secs(4 * 3600 - 10));
    a_few_sweeps().await;
    assert_eq!(relay.metrics.snapshot().urgent_alerts, 0);
    // At urgent_alert_after_s (4 h): an alert, once.
    clock.advance(Duration::from_secs(10));
    eventually("the urgent alert", || {
        relay.metrics.snapshot().urgent_alerts == 1
    })
    .await;
    assert!(events_of(&relay, EventType::Expired, &id).is_empty());
    clock.advance(Duration::from_secs(3600));
    a_few_sweeps().await;
    assert_eq!(relay.metrics.snapshot().urgent_alerts, 1);
    // At urgent_expire_after_s (1 day): expired, not at 5 days.
    clock.advance(Duration::from_secs(DAY - 4 * 3600 - 3600));
    eventually("the EXPIRED event", || {
        !events_of(&relay, EventType::Expired, &id).is_empty()
    })
    .await;
    let e = &events_of(&relay, EventType::Expired, &id)[0];
    assert!(
        e.detail.contains("retention.urgent_expire_after_s=86400"),
        "{}",
        e.detail
    );
    relay.stop().await;
}

const SILTA: &str = env!("CARGO_BIN_EXE_silta-under-test");

fn silta(user: &silta_tests::TestUser, args: &[&str]) -> std::process::Output {
    std::process::Command::new(SILTA)
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

/// Sends an anonymous consultation with the real program; returns its message id.
fn consult(centre: &silta_tests::TestUser, question: &str) -> Vec<u8> {
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
    uuid::Uuid::parse_str(v["message_id"].as_str().unwrap())
        .unwrap()
        .as_bytes()
        .to_vec()
}

/// How many times `needle` occurs in the files under `dir`.
fn occurrences(dir: &std::path::Path, needle: &[u8]) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            n += occurrences(&path, needle);
        } else if let Ok(bytes) = std::fs::read(&path) {
            n += bytes.windows(needle.len()).filter(|w| *w == needle).count();
        }
    }
    n
}

/// The storage key of a stored message, read from the relay's key file.
fn storage_key(relay: &TestRelay, id: &[u8]) -> Vec<u8> {
    let slot = relay.store.message(id).unwrap().unwrap().key_slot;
    assert!(slot > 0, "stored with a key");
    let file = std::fs::read(
        relay
            .data
            .path()
            .join("db")
            .join(silta_relay::store::KEY_FILE),
    )
    .unwrap();
    let at = (slot as usize - 1) * silta_relay::keyring::KEY_LEN;
    file[at..at + silta_relay::keyring::KEY_LEN].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_are_purged_and_the_log_still_verifies_and_proves_them() {
    let pki = TestPki::new();
    let clock = TestClock::new();
    let relay = TestRelay::start_clocked(&pki, &clock, fast_sweeps).await;
    let centre = silta_tests::TestUser::new(&pki, relay.addr, CENTRE, "server-1");
    let nas = silta_tests::TestUser::new(&pki, relay.addr, NAS, "desk-1");
    let auditor = silta_tests::TestUser::new(&pki, relay.addr, "auditor/dpo", "laptop");
    for u in [&centre, &nas] {
        assert!(silta(u, &["keys", "publish"]).status.success());
    }
    let answered = consult(&centre, "who can help?");
    let o = silta(&nas, &["receive", "--wait", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        events_of(&relay, EventType::Acknowledged, &answered).len(),
        1
    );
    let unanswered = consult(&centre, "anyone there?");

    // At rest the ciphertexts are sealed: their bytes are nowhere in the data folder; their
    // keys are, in the key file.
    let data = relay.data.path().to_owned();
    let mut secrets = Vec::new();
    for id in [&answered, &unanswered] {
        let ciphertext = relay.store.ciphertext(id).unwrap().unwrap();
        assert_eq!(
            silta_tests::sha256(&ciphertext),
            events_of(&relay, EventType::Accepted, id)[0].ciphertext_sha256
        );
        assert_eq!(
            occurrences(&data, &ciphertext[..64]),
            0,
            "ciphertext in the clear"
        );
        let key = storage_key(&relay, id);
        assert_eq!(occurrences(&data, &key), 1, "the key is in the key file");
        secrets.push((ciphertext, key));
    }

    // A second short of the purge delay (1 h after the acknowledgement): still there.
    clock.advance(Duration::from_secs(3600 - 1));
    a_few_sweeps().await;
    assert!(relay.store.ciphertext(&answered).unwrap().is_some());
    assert!(events_of(&relay, EventType::Purged, &answered).is_empty());
    clock.advance(Duration::from_secs(1));
    eventually("the PURGED tombstone", || {
        !events_of(&relay, EventType::Purged, &answered).is_empty()
    })
    .await;
    assert!(relay.store.ciphertext(&answered).unwrap().is_none());
    assert!(relay.store.sealed_ciphertext(&answered).unwrap().is_none());
    // The key is gone from every file: what sled's old segments may still hold of the sealed
    // ciphertext cannot be opened any more.
    assert_eq!(
        occurrences(&data, &secrets[0].1),
        0,
        "a purged message's key survived"
    );
    assert_eq!(occurrences(&data, &secrets[0].0[..64]), 0);
    // The unanswered one is untouched.
    assert_eq!(occurrences(&data, &secrets[1].1), 1);
    let tomb = &events_of(&relay, EventType::Purged, &answered)[0];
    assert_eq!(tomb.ciphertext_sha256, silta_tests::sha256(&secrets[0].0));
    assert!(
        tomb.detail.contains("retention.purge_after_final_s"),
        "{}",
        tomb.detail
    );
    // The status survives the purge (metadata is kept for keep_metadata_s).
    let conn = relay.connect(&pki, &centre.identity).await;
    assert_eq!(
        state_of(&conn, &answered).await.unwrap(),
        i32::from(DeliveryState::Acknowledged)
    );

    // Five days on, the unanswered one expired; the sender's inbox shows it.
    clock.advance(Duration::from_secs(5 * DAY));
    eventually("the EXPIRED event", || {
        !events_of(&relay, EventType::Expired, &unanswered).is_empty()
    })
    .await;
    let o = silta(&centre, &["inbox", "sync", "--purpose", "delivery check"]);
    assert!(o.status.success(), "{}", text(&o));
    let id_text = uuid::Uuid::from_slice(&unanswered).unwrap().to_string();
    let o = silta(
        &centre,
        &[
            "inbox",
            "show",
            &id_text,
            "--json",
            "--purpose",
            "delivery check",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let record: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(record["recipients"][NAS]["state"], "expired", "{record}");

    // The log verifies, and proves the purged message's acceptance and acknowledgement.
    let key = relay.log_key.clone();
    let o = silta(
        &auditor,
        &[
            "audit",
            "verify",
            "--log-key",
            &key,
            "--purpose",
            "log-verification: after a purge",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let evidence = centre.dir.path().join("purged.evidence.json");
    let answered_text = uuid::Uuid::from_slice(&answered).unwrap().to_string();
    let o = silta(
        &centre,
        &[
            "audit",
            "prove",
            &answered_text,
            "--purpose",
            "delivery-check",
            "--out",
            evidence.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    relay.stop().await;
    let o = std::process::Command::new(SILTA)
        .args(["audit", "check-evidence"])
        .arg(&evidence)
        .args(["--log-key", &key])
        .arg("--ca")
        .arg(centre.dir.path().join("ca.pem"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("acknowledgement signed by assistance/nas device desk-1"),
        "{}",
        text(&o)
    );
}

#[tokio::test]
async fn nothing_but_the_log_survives_max_age_even_across_a_restart() {
    let pki = TestPki::new();
    let clock = TestClock::new();
    let tweak = |c: &mut silta_relay::config::Config| {
        fast_sweeps(c);
        // Copies never expire before max_age here, so max_age itself is what purges.
        c.retention.expire_after_s = c.retention.max_age_s;
        c.retention.keep_metadata_s = DAY;
    };
    let relay = TestRelay::start_clocked(&pki, &clock, tweak).await;
    let (nas, keys) = relay.connect_with_keys(&pki, NAS).await;
    relay.connect_as(&pki, "assistance/other").await;
    let centre = relay.connect_as(&pki, CENTRE).await;
    let env = envelope(MessageKind::Referral, &[NAS, "assistance/other"], b"old");
    let id = env.message_id.clone();
    centre.mailbox().send(env.clone()).await.unwrap();
    nas.mailbox().ack(ack_of(&keys, &env)).await.unwrap();
    drop((nas, centre));

    // Stopped and started again: the schedule is on disk.
    let data = relay.stop_keep().await;
    let relay =
        TestRelay::start_in_clocked(&pki, data, std::sync::Arc::new(clock.clone()), tweak).await;
    clock.advance(Duration::from_secs(30 * DAY - 10));
    a_few_sweeps().await;
    assert!(relay.store.ciphertext(&id).unwrap().is_some());
    clock.advance(Duration::from_secs(10));
    eventually("the purge at max_age", || {
        !events_of(&relay, EventType::Purged, &id).is_empty()
    })
    .await;
    let tomb = &events_of(&relay, EventType::Purged, &id)[0];
    assert!(
        tomb.detail.contains("retention.max_age_s=2592000"),
        "{}",
        tomb.detail
    );
    assert_eq!(
        events_of(&relay, EventType::Expired, &id)[0].recipients,
        ["assistance/other"]
    );
    assert!(
        relay.store.message(&id).unwrap().is_some(),
        "metadata kept a day"
    );

    // A day later the metadata goes too: only the log (and the principals) remain.
    clock.advance(Duration::from_secs(DAY));
    eventually("the metadata to go", || {
        relay.store.message(&id).unwrap().is_none()
    })
    .await;
    // (No request here: by the relay's clock, a month on, the test certificates and CRL have
    // expired, and it refuses every connection, as it should.)
    for (tree, n) in relay.store.tree_sizes() {
        if matches!(
            tree,
            "msgid_meta" | "msgid_ciphertext" | "msgidrecipient_state" | "timemsgid_due"
        ) {
            assert_eq!(n, 0, "{tree} still has {n} entries");
        }
    }
    // No mailbox item is left: not the copy, not the sender's status items it never took.
    let items = relay.store.raw_tree("principalseq_item").unwrap();
    assert_eq!(items.len(), 0, "mailbox items survived");
    assert!(relay.metrics.snapshot().metadata_dropped >= 1);
    relay.stop().await;
}

/// The real `silta daemon` of the sender: its status file says `expired`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_senders_daemon_records_the_expiry_in_its_status_file() {
    let pki = TestPki::new();
    let clock = TestClock::new();
    let relay = TestRelay::start_clocked(&pki, &clock, fast_sweeps).await;
    let nas = silta_tests::TestUser::new(&pki, relay.addr, NAS, "desk-1");
    nas.published().await;
    let centre = silta_tests::TestUser::new(&pki, relay.addr, CENTRE, "server-1");
    let config = centre.dir.path().join("silta.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "\n[daemon]\nfolder = \"folders\"\nscan_interval_ms = 100\nretry_initial_ms = 100\nretry_max_ms = 800\nsettle_ms = 100\n",
    );
    std::fs::write(&config, text).unwrap();
    centre.published().await;
    let folders = centre.dir.path().join("folders");
    let log = std::fs::File::create(centre.dir.path().join("daemon.log")).unwrap();
    let mut daemon = tokio::process::Command::new(SILTA)
        .arg("--config")
        .arg(&config)
        .arg("daemon")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let outbox = folders.join("outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    std::fs::write(
        outbox.join(".a.part"),
        format!(
            "indicators = [\"indicator\"]\nquestions = \"a question\"\n\n[envelope]\nkind = \"anonymous-consultation\"\nto = \"{NAS}\"\n"
        ),
    )
    .unwrap();
    std::fs::rename(outbox.join(".a.part"), outbox.join("a.toml")).unwrap();
    let status = || -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(folders.join("sent").join("a.toml.status.json")).ok()?;
        serde_json::from_str(&text).ok()
    };
    eventually("the form to be sent", || status().is_some()).await;
    assert_eq!(status().unwrap()["state"], "sent");

    clock.advance(Duration::from_secs(5 * DAY));
    eventually("the status file to say expired", || {
        status()
            .is_some_and(|s| s["state"] == "expired" && s["recipients"][NAS]["state"] == "expired")
    })
    .await;
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
    relay.stop().await;
}
