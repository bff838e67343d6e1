//! A hostile or broken sender cannot hold up anyone else's messages (issue 9).
//!
//! A message whose sender's keys cannot be fetched is sent to the Assistance System, and another
//! centre sends a referral behind it. The referral must arrive and be acknowledged (through
//! `silta inbox sync` and through `silta daemon`); the blocked message is skipped, tried again
//! after a delay, and after the configured number of tries rejected with a reason its sender
//! sees. Real relay, real TLS, the real `silta` binary.
//!
//! How the lookup is made to fail: the historical attack (bundles padded with junk until the
//! directory's answer exceeded every client's limit) is refused by the relay now (see
//! insider.rs), so the sender's directory entry is damaged in the relay's storage instead, which
//! makes the relay answer INTERNAL for that one principal — the same effect on the receiver.

use std::{process::Command, time::Duration};

use silta_client::{
    client::{Client, ClientError},
    form::read_envelope_form,
    seal::Draft,
};
use silta_proto::pb::{self, MessageKind, RejectionReason};
use silta_tests::{TestPki, TestRelay, TestUser, send_raw, send_sealed_raw, status_of, take_items};

const SILTA: &str = env!("CARGO_BIN_EXE_silta-under-test");
const NAS: &str = "assistance/nas";
const GOOD: &str = "centre/joutseno";
const HOSTILE: &str = "centre/hostile";
/// Tries before a message that cannot be processed is rejected (set in the NAS's silta.toml).
const TRIES: u32 = 3;
/// Delay between tries (ms).
const RETRY_MS: u64 = 300;

fn referral(to: &str) -> Draft {
    let form = "account = \"MARKER-REFERRAL\"\n[person]\nname = \"A. Person\"\nage_group = \"AGE_GROUP_ADULT\"\n[consent]\nperson_name = \"A. Person\"\ndate = \"2026-11-20\"\ninformed_about = [\"services\"]\n\n[envelope]\nkind = \"referral\"\nto = \"assistance/nas\"\n";
    let (_, payload) = read_envelope_form(form, false).unwrap();
    Draft::new(
        MessageKind::Referral,
        *uuid::Uuid::now_v7().as_bytes(),
        vec![to.parse().unwrap()],
        payload,
    )
}

/// The NAS installation, retrying quickly, keys published.
async fn nas(pki: &TestPki, relay: &TestRelay, daemon: bool) -> TestUser {
    let mut user = TestUser::new(pki, relay.addr, NAS, "desk-1");
    let path = user.dir.path().join("silta.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "\n[receive]\nretry_initial_ms = {RETRY_MS}\nretry_max_ms = {RETRY_MS}\nmax_attempts = {TRIES}\n"
    ));
    if daemon {
        text.push_str("\n[daemon]\nfolder = \"folders\"\nscan_interval_ms = 100\n");
    }
    std::fs::write(&path, text).unwrap();
    user.config = silta_client::ClientConfig::load(&path).unwrap();
    user.published().await;
    user
}

/// The hostile centre: seals a message to the NAS while its directory entry is still usable,
/// then its entry is damaged so that no client can fetch its keys, then it sends the message.
/// Returns its client and the message id.
async fn hostile_sends(pki: &TestPki, relay: &TestRelay, nas: &Client) -> (Client, Vec<u8>) {
    let user = TestUser::new(pki, relay.addr, HOSTILE, "default");
    let hostile = user.published().await;
    let envelope = hostile.seal(&referral(NAS)).await.unwrap();
    let id = envelope.message_id.clone();
    // A damaged record in the sender's directory entry: GetKeys for it fails, for it alone.
    relay
        .store
        .raw_tree("principaldevice_device")
        .unwrap()
        .insert(
            [HOSTILE.as_bytes(), b"\0zz-damaged"].concat(),
            b"\xff\xff\xff not a record".as_slice(),
        )
        .unwrap();
    // The precondition: the sender's keys cannot be fetched.
    let p = HOSTILE.parse().unwrap();
    match nas.keys_of(&p).await {
        Err(ClientError::Relay(s)) => assert_ne!(s.code(), tonic::Code::Unavailable, "{s}"),
        other => panic!("the hostile directory entry should not be fetchable: {other:?}"),
    }
    send_sealed_raw(&hostile, envelope).await.unwrap();
    (hostile, id)
}

async fn good_sends(pki: &TestPki, relay: &TestRelay) -> Vec<u8> {
    let user = TestUser::new(pki, relay.addr, GOOD, "server-1");
    let good = user.published().await;
    let d = referral(NAS);
    send_raw(&good, &d).await.unwrap();
    d.message_id.to_vec()
}

fn silta(user: &TestUser, args: &[&str]) -> std::process::Output {
    Command::new(SILTA)
        .arg("--config")
        .arg(user.dir.path().join("silta.toml"))
        .args(args)
        .env("SILTA_USER", "tester")
        .env("SILTA_PURPOSE", "case handling")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn out(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn uuid_of(id: &[u8]) -> String {
    uuid::Uuid::from_slice(id).unwrap().to_string()
}

/// The relay's log has an event of `kind` for message `id` by the NAS.
fn logged(relay: &TestRelay, kind: pb::EventType, id: &[u8]) -> Option<pb::Event> {
    relay
        .events()
        .into_iter()
        .find(|e| e.r#type == i32::from(kind) && e.message_id == id && e.actor == NAS)
}

/// The hostile sender sees its message rejected, with a reason and a content-free detail.
async fn sender_sees_rejection(hostile: &Client, id: &[u8]) {
    let mut stream = hostile
        .connection()
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let items = take_items(&mut stream, 2, Duration::from_secs(5)).await;
    let rejected = items
        .iter()
        .filter_map(status_of)
        .find(|s| s.message_id == id && s.state == i32::from(pb::DeliveryState::Rejected))
        .unwrap_or_else(|| panic!("no rejection status for the sender: {items:?}"));
    assert_eq!(
        rejected.rejection_reason,
        i32::from(RejectionReason::UntrustedSenderKey)
    );
    assert!(
        rejected
            .detail
            .starts_with(&format!("not processed after {TRIES} tries")),
        "{}",
        rejected.detail
    );
    assert!(!rejected.detail.contains("MARKER"), "{}", rejected.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_sync_is_not_held_up_by_a_sender_whose_keys_cannot_be_fetched() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let nas_user = nas(&pki, &relay, false).await;
    let (hostile, bad_id) = {
        let nas = nas_user.client().await;
        hostile_sends(&pki, &relay, &nas).await
    };
    let good_id = good_sends(&pki, &relay).await;

    // First sync: the referral behind the hostile message arrives; the hostile one is named.
    let o = silta(&nas_user, &["inbox", "sync", "--wait", "1"]);
    assert!(o.status.success(), "{}", out(&o));
    let text = out(&o);
    assert!(text.contains("1 new message"), "{text}");
    assert!(
        text.contains(&format!("from {HOSTILE}, message {}", uuid_of(&bad_id))),
        "{text}"
    );
    assert!(text.contains(&format!("try 1 of {TRIES} failed")), "{text}");
    let o = silta(&nas_user, &["inbox", "list", "--offline", "--json"]);
    assert!(o.status.success(), "{}", out(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["from"], GOOD);
    assert_eq!(list[0]["message_id"], uuid_of(&good_id));
    // A person acknowledges it; the relay records the acknowledgement.
    let o = silta(&nas_user, &["inbox", "ack", &uuid_of(&good_id)]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(logged(&relay, pb::EventType::Acknowledged, &good_id).is_some());

    // Tried again after the delay (each sync names it again), and rejected after the last try
    // (the schedule itself is checked by the clock in `tries_follow_the_clock...`).
    let mut rejected = false;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(RETRY_MS + 100)).await;
        let o = silta(&nas_user, &["inbox", "sync", "--wait", "1"]);
        assert!(o.status.success(), "{}", out(&o));
        assert!(out(&o).contains(HOSTILE), "{}", out(&o));
        if out(&o).contains(&format!("rejected a message from {HOSTILE}")) {
            assert!(
                out(&o).contains(&format!("not processed after {TRIES} tries")),
                "{}",
                out(&o)
            );
            rejected = true;
            break;
        }
    }
    assert!(rejected, "the hostile message was never rejected");
    let event = logged(&relay, pb::EventType::Rejected, &bad_id).expect("rejection logged");
    assert_eq!(
        event.rejection_reason,
        i32::from(RejectionReason::UntrustedSenderKey)
    );
    sender_sees_rejection(&hostile, &bad_id).await;
    // Nothing is left waiting: a further sync is quiet.
    let o = silta(&nas_user, &["inbox", "sync", "--wait", "1"]);
    assert!(!out(&o).contains(HOSTILE), "{}", out(&o));
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_is_not_held_up_by_a_sender_whose_keys_cannot_be_fetched() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let nas_user = nas(&pki, &relay, true).await;
    let (hostile, bad_id) = {
        let nas = nas_user.client().await;
        hostile_sends(&pki, &relay, &nas).await
    };
    let good_id = good_sends(&pki, &relay).await;

    let log = nas_user.dir.path().join("daemon.log");
    let mut daemon = tokio::process::Command::new(SILTA)
        .arg("--config")
        .arg(nas_user.dir.path().join("silta.toml"))
        .arg("daemon")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let inbox = nas_user.dir.path().join("folders").join("inbox");
    let good_file = inbox.join(format!("{}-referral.json", uuid_of(&good_id)));
    let mut done = false;
    for _ in 0..200 {
        if good_file.exists()
            && logged(&relay, pb::EventType::Acknowledged, &good_id).is_some()
            && logged(&relay, pb::EventType::Rejected, &bad_id).is_some()
        {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        done,
        "referral file {}, acknowledged {}, hostile rejected {}\n{log_text}",
        good_file.exists(),
        logged(&relay, pb::EventType::Acknowledged, &good_id).is_some(),
        logged(&relay, pb::EventType::Rejected, &bad_id).is_some(),
    );
    // Only the referral was taken in.
    assert_eq!(std::fs::read_dir(&inbox).unwrap().count(), 1);
    // The log names the sender and the message at each try.
    let tries = log_text
        .lines()
        .filter(|l| {
            l.contains("skipped, will retry")
                && l.contains(HOSTILE)
                && l.contains(&uuid_of(&bad_id))
        })
        .count();
    assert_eq!(tries as u32, TRIES - 1, "{log_text}");
    assert!(!log_text.contains("MARKER"), "content in the log");
    sender_sees_rejection(&hostile, &bad_id).await;
    relay.stop().await;
}

/// The schedule by the client's clock (injected, no sleeping): a skipped message is not tried
/// again before its delay has passed, its tries survive a restart of the client, and the last
/// try rejects it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tries_follow_the_clock_and_survive_a_restart() {
    use silta_client::client::Received;
    use std::sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    };
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let nas_user = nas(&pki, &relay, false).await;
    let (_hostile, bad_id) = {
        let nas = nas_user.client().await;
        hostile_sends(&pki, &relay, &nas).await
    };
    let good_id = good_sends(&pki, &relay).await;
    let start = std::time::SystemTime::now();
    let offset_ms = Arc::new(AtomicU64::new(0));
    let client = |offset: Arc<AtomicU64>| async {
        nas_user
            .client()
            .await
            .with_clock(move || start + Duration::from_millis(offset.load(Ordering::SeqCst)))
    };
    // What a receive did with the hostile message, and whether the good one came.
    async fn round(c: &Client, bad_id: &[u8]) -> (Option<(u32, bool)>, usize, bool) {
        let opener = silta_tests::TestOpener::new();
        let items = c
            .receive(
                &opener.opener(),
                Duration::from_secs(1),
                usize::MAX,
                |_, _| Ok(()),
            )
            .await
            .unwrap();
        let mut bad = None;
        let mut good = 0;
        let mut rejected = false;
        for i in &items {
            match i {
                Received::Deferred {
                    delivered,
                    retry,
                    tried,
                } if delivered.envelope.as_ref().unwrap().message_id == bad_id => {
                    bad = Some((retry.attempts, *tried))
                }
                Received::Rejected { delivered, .. }
                    if delivered.envelope.as_ref().unwrap().message_id == bad_id =>
                {
                    rejected = true
                }
                Received::Message { .. } => good += 1,
                _ => {}
            }
        }
        (bad, good, rejected)
    }
    let c = client(offset_ms.clone()).await;
    assert_eq!(round(&c, &bad_id).await, (Some((1, true)), 1, false));
    assert!(logged(&relay, pb::EventType::Acknowledged, &good_id).is_some());
    // Not due yet (clock unchanged): skipped without a try.
    assert_eq!(round(&c, &bad_id).await, (Some((1, false)), 0, false));
    // A restarted client remembers the try.
    drop(c);
    let c = client(offset_ms.clone()).await;
    assert_eq!(round(&c, &bad_id).await, (Some((1, false)), 0, false));
    // After the delay: the second try.
    offset_ms.store(RETRY_MS, Ordering::SeqCst);
    assert_eq!(round(&c, &bad_id).await, (Some((2, true)), 0, false));
    // After the next delay: the last try rejects it.
    offset_ms.store(2 * RETRY_MS, Ordering::SeqCst);
    assert_eq!(round(&c, &bad_id).await, (None, 0, true));
    assert!(logged(&relay, pb::EventType::Rejected, &bad_id).is_some());
    assert!(c.state().retry(&bad_id).unwrap().is_none());
    relay.stop().await;
}

/// An admission decision from the Assistance System dated `decision_date`.
fn decision(to: &str, decision_date: &str) -> Draft {
    use silta_proto::pb::payload::{self as pl, payload::Body};
    Draft::new(
        MessageKind::AdmissionDecisionNotice,
        *uuid::Uuid::now_v7().as_bytes(),
        vec![to.parse().unwrap()],
        pl::Payload {
            body: Some(Body::AdmissionDecisionNotice(pl::AdmissionDecisionNotice {
                outcome: pl::AdmissionOutcome::Admitted.into(),
                decision_date: decision_date.into(),
                ..Default::default()
            })),
        },
    )
}

/// A desk whose clock runs five days fast dates a decision by its own "today": its own check
/// passes (judged by its clock), and the signed `created_at` says the same day. The receiver
/// judges the date as of no later than a day after the relay accepted the message, so the
/// decision is refused as MALFORMED_PAYLOAD; one dated the real today from the same desk opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_dated_after_the_relay_accepted_it_is_refused_by_the_receiver() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre_user = TestUser::new(&pki, relay.addr, GOOD, "server-1");
    let centre = centre_user.published().await;
    // Keys published by the true clock (a bundle dated in the future is not used by anyone),
    // then the desk's clock runs five days ahead.
    let nas_user = TestUser::new(&pki, relay.addr, NAS, "desk-1");
    let skew = Duration::from_secs(5 * 86_400);
    let fast = nas_user
        .published()
        .await
        .with_clock(move || std::time::SystemTime::now() + skew);
    let day = |t: std::time::SystemTime| time::OffsetDateTime::from(t).date().to_string();
    let its_today = day(std::time::SystemTime::now() + skew);
    let real_today = day(std::time::SystemTime::now());

    let future = decision(GOOD, &its_today);
    send_raw(&fast, &future)
        .await
        .expect("the fast desk's own check passes");
    let fine = decision(GOOD, &real_today);
    send_raw(&fast, &fine).await.unwrap();

    let mut stream = centre
        .connection()
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let items = take_items(&mut stream, 2, Duration::from_secs(10)).await;
    let delivered: Vec<_> = items.iter().filter_map(silta_tests::envelope_of).collect();
    assert_eq!(delivered.len(), 2, "{items:?}");
    for d in delivered {
        let env = d.envelope.as_ref().unwrap();
        let opened = centre.open(d).await.expect("keys fetched");
        if env.message_id == future.message_id {
            let Err(r) = opened else {
                panic!("a decision dated after the relay had it is refused");
            };
            assert_eq!(r.reason, RejectionReason::MalformedPayload, "{r:?}");
            assert!(r.detail.contains("decision_date"), "{}", r.detail);
        } else {
            assert_eq!(env.message_id, fine.message_id);
            opened.expect("a decision dated the real today opens");
        }
    }
}
