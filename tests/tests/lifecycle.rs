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
        .subscribe(pb::SubscribeRequest { after_seq: 0 })
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
        .subscribe(pb::SubscribeRequest { after_seq: 0 })
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
    assert!(relay.metrics.snapshot().copies_expired >= 1);
    assert!(relay.metrics.snapshot().messages_purged >= 1);
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
