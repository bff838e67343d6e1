//! Several desks (devices) of one principal, each with its own certificate and device id: every
//! desk gets every message; the first desk's acknowledgement decides (one ACKNOWLEDGED event,
//! one status to the sender); the others see "handled by" with the signed acknowledgement and
//! finish with `done_seq`; a desk enrolled after a message was accepted gets it marked
//! `sealed_before_device`; status items reach every desk of the sender; a device id of another
//! certificate is refused; the `retention.handled_item_days` hold bounds what a desk that never
//! comes back holds (and only then is the ciphertext purged); per-device state survives a
//! restart. Real relay, real TLS, real sled.

use std::time::Duration;

use silta_client::{Connection, keys::DeviceKeys};
use silta_proto::pb::{self, DeliveryState, EventType, MessageKind};
use silta_tests::{
    TestClock, TestPki, TestRelay, ack_of, envelope, envelope_of, status_of, take_items,
};
use tonic::Code;

const CENTRE: &str = "centre/joutseno";
const NAS: &str = "assistance/nas";
const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(300);
const DAY: u64 = 24 * 3600;

/// One desk: its own certificate, connection and device keys (published under `device`).
struct Desk {
    identity: silta_tests::TestIdentity,
    conn: Connection,
    keys: DeviceKeys,
    device: String,
}

async fn desk(relay: &TestRelay, pki: &TestPki, principal: &str, device: &str) -> Desk {
    let identity = pki.client(principal);
    let conn = relay.connect(pki, &identity).await;
    let keys = DeviceKeys::generate(device).unwrap();
    let bundle = silta_client::bundle::build(
        &keys,
        &principal.parse().unwrap(),
        identity.cert_pem.as_bytes(),
        &identity.key_pem,
    )
    .unwrap();
    conn.directory().publish_keys(bundle).await.unwrap();
    Desk {
        identity,
        conn,
        keys,
        device: device.to_owned(),
    }
}

impl Desk {
    /// What the desk's subscription hands out within `wait` (at most `n` items).
    async fn items(&self, n: usize, wait: Duration) -> Vec<pb::MailboxItem> {
        let mut stream = self
            .conn
            .mailbox()
            .subscribe(pb::SubscribeRequest {
                after_seq: 0,
                device_id: self.device.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        take_items(&mut stream, n, wait).await
    }

    fn ack(&self, env: &pb::Envelope) -> pb::AckRequest {
        pb::AckRequest {
            device_id: self.device.clone(),
            ..ack_of(&self.keys, env)
        }
    }

    fn done(&self, seq: u64) -> pb::AckRequest {
        pb::AckRequest {
            device_id: self.device.clone(),
            target: Some(pb::ack_request::Target::DoneSeq(seq)),
        }
    }

    fn status_done(&self, seq: u64) -> pb::AckRequest {
        pb::AckRequest {
            device_id: self.device.clone(),
            target: Some(pb::ack_request::Target::StatusSeq(seq)),
        }
    }
}

fn events_of(relay: &TestRelay, kind: EventType, id: &[u8]) -> Vec<pb::Event> {
    relay
        .events()
        .into_iter()
        .filter(|e| e.r#type == kind as i32 && e.message_id == id)
        .collect()
}

/// Waits (bounded) for the DELIVERED event of `id`, written just after an item is handed out.
async fn delivered(relay: &TestRelay, id: &[u8]) {
    for _ in 0..250 {
        if !events_of(relay, EventType::Delivered, id).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no DELIVERED event");
}

fn reject(desk: &Desk, env: &pb::Envelope, reason: pb::RejectionReason) -> pb::AckRequest {
    pb::AckRequest {
        device_id: desk.device.clone(),
        target: Some(pb::ack_request::Target::Reject(pb::Rejection {
            message_id: env.message_id.clone(),
            reason: reason as i32,
            detail: "test".into(),
        })),
    }
}

/// NAS's delivery state of message `id`, as the relay holds it.
fn state_of(relay: &TestRelay, id: &[u8]) -> i32 {
    relay
        .store
        .recipient_states(id)
        .unwrap()
        .into_iter()
        .find(|(r, _)| r == NAS)
        .unwrap()
        .1
        .state
}

/// Waits (bounded) until the sweeper completed a round that started after this call.
async fn sweeper_round(relay: &TestRelay) {
    let start = relay.metrics.snapshot().sweep_rounds;
    for _ in 0..500 {
        // One round may be under way (it read the clock before); the next one started after.
        if relay.metrics.snapshot().sweep_rounds >= start + 2 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no sweeper round");
}

fn nas_items(relay: &TestRelay) -> usize {
    relay
        .store
        .mailbox_items(&NAS.parse().unwrap(), 0, u64::MAX - 1, 100)
        .unwrap()
        .len()
}

async fn referral(relay: &TestRelay, pki: &TestPki) -> (Connection, pb::Envelope, pb::Receipt) {
    let centre = relay.connect_as(pki, CENTRE).await;
    let env = envelope(MessageKind::Referral, &[NAS], b"sealed referral");
    let receipt = centre
        .mailbox()
        .send(env.clone())
        .await
        .unwrap()
        .into_inner();
    (centre, env, receipt)
}

#[tokio::test]
async fn every_desk_gets_the_message_the_first_ack_decides_and_the_other_desk_sees_it_handled() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let desk1 = desk(&relay, &pki, NAS, "desk1").await;
    let desk2 = desk(&relay, &pki, NAS, "desk2").await;
    let (centre, env, receipt) = referral(&relay, &pki).await;
    let id = env.message_id.clone();

    // Both desks receive it, unhandled, sealed to them.
    for d in [&desk1, &desk2] {
        let items = d.items(1, WAIT).await;
        let got = envelope_of(&items[0]).expect("an envelope");
        assert_eq!(got.envelope.as_ref().unwrap().ciphertext, env.ciphertext);
        assert_eq!(got.handled, None);
        assert!(!got.sealed_before_device);
    }
    // Delivered once for the principal, however many desks fetched it.
    delivered(&relay, &id).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(events_of(&relay, EventType::Delivered, &id).len(), 1);

    // Desk 1 acknowledges: the copy is decided.
    let first = desk1
        .conn
        .mailbox()
        .ack(desk1.ack(&env))
        .await
        .unwrap()
        .into_inner();
    let status = centre
        .mailbox()
        .status(pb::StatusRequest {
            message_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.recipients[0].state,
        DeliveryState::Acknowledged as i32
    );
    let acks = events_of(&relay, EventType::Acknowledged, &id);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].ack_device, "desk1");
    assert_eq!(acks[0].index, first.log_index);
    assert_eq!(first.decided_by, "desk1");

    // Desk 1 is done with it; desk 2 still gets it, handled by desk 1 with the signature.
    assert!(desk1.items(1, QUIET).await.is_empty());
    let items = desk2.items(1, WAIT).await;
    let got = envelope_of(&items[0]).expect("still for desk 2");
    let handled = got.handled.as_ref().expect("handled by desk 1");
    assert_eq!(handled.device, "desk1");
    assert_eq!(handled.state, DeliveryState::Acknowledged as i32);
    assert_eq!(handled.log_index, first.log_index);
    let pb::ack_request::Target::Acknowledge(signed) = desk1.ack(&env).target.unwrap() else {
        unreachable!()
    };
    assert_eq!(handled.ack_signature, signed.signature);
    assert!(handled.time.is_some());
    assert!(!got.sealed_before_device);
    assert_eq!(nas_items(&relay), 1, "kept for desk 2");
    assert!(relay.store.ciphertext(&id).unwrap().is_some());

    // Desk 2's own acknowledgement of the decided message changes nothing and logs nothing:
    // it answers with the first decision's index and names desk 1 as the one that decided;
    // desk 2 still gets the item (with the signed decision to check) until done_seq.
    let events_before = relay.events().len();
    let second = desk2
        .conn
        .mailbox()
        .ack(desk2.ack(&env))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.log_index, first.log_index);
    assert_eq!(second.decided_by, "desk1");
    assert_eq!(
        relay.events().len(),
        events_before,
        "no event for a later desk"
    );
    let items = desk2.items(1, WAIT).await;
    assert_eq!(
        envelope_of(&items[0])
            .unwrap()
            .handled
            .as_ref()
            .unwrap()
            .device,
        "desk1"
    );
    let done = desk2
        .conn
        .mailbox()
        .ack(desk2.done(items[0].seq))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.decided_by, "", "done_seq decides nothing");
    assert!(desk2.items(1, QUIET).await.is_empty());
    // Every desk done: the item left the mailbox.
    assert_eq!(nas_items(&relay), 0);

    // The centre's status items: delivered, acknowledged (once, by desk 1).
    let mut mine = centre
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let statuses = take_items(&mut mine, 3, QUIET * 3).await;
    let states: Vec<(i32, String)> = statuses
        .iter()
        .map(|i| status_of(i).unwrap())
        .map(|s| (s.state, s.ack_device.clone()))
        .collect();
    assert_eq!(
        states,
        [
            (DeliveryState::Delivered as i32, String::new()),
            (DeliveryState::Acknowledged as i32, "desk1".to_owned())
        ]
    );
    assert_eq!(receipt.message_id, id);
    relay.stop().await;
}

#[tokio::test]
async fn done_seq_finishes_a_handled_item_and_is_refused_on_an_open_copy() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let desk1 = desk(&relay, &pki, NAS, "desk1").await;
    let desk2 = desk(&relay, &pki, NAS, "desk2").await;
    let (_centre, env, _) = referral(&relay, &pki).await;
    let seq = desk2.items(1, WAIT).await[0].seq;
    delivered(&relay, &env.message_id).await;

    // Not answered by anyone: done_seq is no way round acknowledging or rejecting.
    let before = relay.fingerprint();
    let err = desk2.conn.mailbox().ack(desk2.done(seq)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
    assert!(err.message().contains("acknowledge or reject it"), "{err}");
    assert_eq!(relay.fingerprint(), before, "nothing changed");

    desk1.conn.mailbox().ack(desk1.ack(&env)).await.unwrap();
    let first = events_of(&relay, EventType::Acknowledged, &env.message_id)[0].index;
    let events_before = relay.events().len();
    let done = desk2
        .conn
        .mailbox()
        .ack(desk2.done(seq))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.log_index, first);
    assert_eq!(relay.events().len(), events_before);
    assert!(desk2.items(1, QUIET).await.is_empty());
    assert_eq!(nas_items(&relay), 0);
    // Gone now: done again is NOT_FOUND.
    let err = desk2.conn.mailbox().ack(desk2.done(seq)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
    relay.stop().await;
}

#[tokio::test]
async fn a_device_id_of_another_certificate_is_permission_denied() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let desk1 = desk(&relay, &pki, NAS, "desk1").await;
    let desk2 = desk(&relay, &pki, NAS, "desk2").await;
    let (_centre, env, _) = referral(&relay, &pki).await;
    let seq = desk1.items(1, WAIT).await[0].seq;
    delivered(&relay, &env.message_id).await;

    // Desk 2's certificate claims desk 1 (subscribe, acknowledge, done), or a device nobody
    // published.
    for device in ["desk1", "nobody"] {
        let err = desk2
            .conn
            .mailbox()
            .subscribe(pb::SubscribeRequest {
                after_seq: 0,
                device_id: device.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{device}: {err}");
    }
    let before = relay.fingerprint();
    let mut ack = desk1.ack(&env);
    let err = desk2.conn.mailbox().ack(ack.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    assert!(err.message().contains("another certificate"), "{err}");
    assert!(
        err.message().contains("renewed") && err.message().contains("silta keys publish"),
        "a renewed desk is told to publish the same device again: {err}"
    );
    // Not naming a device but signing as desk 1: the signer is still not the calling desk.
    let err = desk2
        .conn
        .mailbox()
        .ack(pb::AckRequest {
            device_id: String::new(),
            ..ack_of(&desk1.keys, &env)
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    // Desk 2 naming itself but signing as desk 1.
    ack.device_id = "desk2".into();
    let err = desk2.conn.mailbox().ack(ack).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    let mut done = desk2.done(seq);
    done.device_id = "desk1".into();
    let err = desk2.conn.mailbox().ack(done).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    assert_eq!(relay.fingerprint(), before, "nothing changed");
    assert!(events_of(&relay, EventType::Acknowledged, &env.message_id).is_empty());

    // Without a device id, each certificate is its own one desk.
    desk1
        .conn
        .mailbox()
        .ack(pb::AckRequest {
            device_id: String::new(),
            ..ack_of(&desk1.keys, &env)
        })
        .await
        .unwrap();
    assert!(desk1.items(1, QUIET).await.is_empty());
    let items = desk2.items(1, WAIT).await;
    assert_eq!(
        envelope_of(&items[0])
            .unwrap()
            .handled
            .as_ref()
            .unwrap()
            .device,
        "desk1"
    );
    relay.stop().await;
}

#[tokio::test]
async fn a_desk_enrolled_after_the_message_gets_it_as_sealed_before_its_keys() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let desk1 = desk(&relay, &pki, NAS, "desk1").await;
    let (_centre, env, _) = referral(&relay, &pki).await;
    let late = desk(&relay, &pki, NAS, "desk3").await;

    let items = late.items(1, WAIT).await;
    let got = envelope_of(&items[0]).expect("the late desk sees the item");
    assert!(got.sealed_before_device);
    assert_eq!(got.handled, None);
    // The first desk to receive it cannot open it: that is no delivery.
    tokio::time::sleep(QUIET).await;
    assert!(events_of(&relay, EventType::Delivered, &env.message_id).is_empty());
    // It cannot have read it: it may not acknowledge it (signing the hash it was given)...
    let before = relay.fingerprint();
    let err = late.conn.mailbox().ack(late.ack(&env)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
    assert!(err.message().contains("sealed before this desk"), "{err}");
    // ... nor reject it for a reason that needs reading it...
    let err = late
        .conn
        .mailbox()
        .ack(reject(&late, &env, pb::RejectionReason::MalformedPayload))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
    assert_eq!(relay.fingerprint(), before, "nothing changed");
    // ... and its CANNOT_DECRYPT decides nothing: it is done with it, the copy stays open.
    let answer = late
        .conn
        .mailbox()
        .ack(reject(&late, &env, pb::RejectionReason::CannotDecrypt))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((answer.log_index, answer.decided_by.as_str()), (0, ""));
    assert!(events_of(&relay, EventType::Rejected, &env.message_id).is_empty());
    assert_eq!(
        state_of(&relay, &env.message_id),
        DeliveryState::Pending as i32
    );
    // It may finish with it while the copy is still open (again: fine)...
    late.conn
        .mailbox()
        .ack(late.done(items[0].seq))
        .await
        .unwrap();
    assert!(late.items(1, QUIET).await.is_empty());
    // ... which takes nothing from desk 1, which was there when it was sealed.
    let items = desk1.items(1, WAIT).await;
    let got = envelope_of(&items[0]).unwrap();
    assert!(!got.sealed_before_device);
    assert_eq!(nas_items(&relay), 1);
    desk1.conn.mailbox().ack(desk1.ack(&env)).await.unwrap();
    assert_eq!(nas_items(&relay), 0, "both desks done");
    relay.stop().await;
}

#[tokio::test]
async fn cannot_decrypt_at_one_desk_leaves_the_copy_to_the_desk_that_can_read_it() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let desk1 = desk(&relay, &pki, NAS, "desk1").await;
    let desk2 = desk(&relay, &pki, NAS, "desk2").await;
    // The centre sealed to desk 1's recipient only (it fetched the keys before desk 2
    // published): desk 2 cannot open it, though it is not sealed_before_device.
    let (centre, env, _) = referral(&relay, &pki).await;
    let id = env.message_id.clone();
    let items = desk2.items(1, WAIT).await;
    assert!(!envelope_of(&items[0]).unwrap().sealed_before_device);
    delivered(&relay, &id).await;
    let answer = desk2
        .conn
        .mailbox()
        .ack(reject(&desk2, &env, pb::RejectionReason::CannotDecrypt))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((answer.log_index, answer.decided_by.as_str()), (0, ""));
    // Not rejected for NAS: desk 1 may still read it. Desk 2 is done with it.
    assert_eq!(state_of(&relay, &id), DeliveryState::Delivered as i32);
    assert!(events_of(&relay, EventType::Rejected, &id).is_empty());
    assert!(desk2.items(1, QUIET).await.is_empty());
    assert_eq!(nas_items(&relay), 1);
    // Desk 1 reads and acknowledges it: that decides, and the item is gone.
    desk1.items(1, WAIT).await;
    let first = desk1
        .conn
        .mailbox()
        .ack(desk1.ack(&env))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.decided_by, "desk1");
    assert_eq!(state_of(&relay, &id), DeliveryState::Acknowledged as i32);
    assert_eq!(nas_items(&relay), 0);

    // When no desk can open it, the last one's CANNOT_DECRYPT decides: REJECTED for NAS.
    let env2 = envelope(MessageKind::Referral, &[NAS], b"sealed to nobody here");
    centre.mailbox().send(env2.clone()).await.unwrap();
    for d in [&desk2, &desk1] {
        d.items(1, WAIT).await;
    }
    let second = desk2
        .conn
        .mailbox()
        .ack(reject(&desk2, &env2, pb::RejectionReason::CannotDecrypt))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.decided_by, "");
    let last = desk1
        .conn
        .mailbox()
        .ack(reject(&desk1, &env2, pb::RejectionReason::CannotDecrypt))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(last.decided_by, "desk1");
    assert_eq!(
        state_of(&relay, &env2.message_id),
        DeliveryState::Rejected as i32
    );
    let rejected = events_of(&relay, EventType::Rejected, &env2.message_id);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].index, last.log_index);
    assert_eq!(nas_items(&relay), 0);
    relay.stop().await;
}

#[tokio::test]
async fn a_certificate_without_a_live_desk_takes_nothing_from_the_desks() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let desk1 = desk(&relay, &pki, NAS, "desk1").await;
    let centre = desk(&relay, &pki, CENTRE, "front").await;
    let env = envelope(
        MessageKind::InformationRequest,
        &[CENTRE],
        b"sealed question",
    );
    desk1.conn.mailbox().send(env.clone()).await.unwrap();
    centre.items(1, WAIT).await;
    centre.conn.mailbox().ack(centre.ack(&env)).await.unwrap();
    let (_from, referral, _) = referral(&relay, &pki).await;

    // Another certificate of NAS that published no keys (a renewed one before republishing,
    // an old program): it may not confirm, finish or reject anything for the desks.
    let bare = relay.connect_as(&pki, NAS).await;
    let mut stream = bare
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let items = take_items(&mut stream, 3, WAIT).await;
    assert_eq!(items.len(), 3, "{items:?}");
    let before = relay.fingerprint();
    let status_seq = items.iter().find(|i| status_of(i).is_some()).unwrap().seq;
    let envelope_seq = items.iter().find(|i| envelope_of(i).is_some()).unwrap().seq;
    let requests = [
        pb::ack_request::Target::StatusSeq(status_seq),
        pb::ack_request::Target::DoneSeq(envelope_seq),
        pb::ack_request::Target::Reject(pb::Rejection {
            message_id: referral.message_id.clone(),
            reason: pb::RejectionReason::CannotDecrypt as i32,
            detail: String::new(),
        }),
    ];
    for target in requests {
        let err = bare
            .mailbox()
            .ack(pb::AckRequest {
                device_id: String::new(),
                target: Some(target.clone()),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{target:?}: {err}");
        assert!(err.message().contains("silta keys publish"), "{err}");
    }
    assert_eq!(relay.fingerprint(), before, "nothing changed");
    // What it was handed does not count as delivered for the desks (final review finding).
    let states = relay.store.recipient_states(&referral.message_id).unwrap();
    assert!(
        !states.is_empty()
            && states
                .iter()
                .all(|(_, s)| s.state == pb::DeliveryState::Pending as i32),
        "{states:?}"
    );
    // Desk 1 still gets all three.
    assert_eq!(desk1.items(3, WAIT).await.len(), 3);
    relay.stop().await;
}

#[tokio::test]
async fn when_the_last_desk_takes_a_held_item_the_content_goes_at_purge_after_final() {
    let pki = TestPki::new();
    let clock = TestClock::new();
    let relay = TestRelay::start_clocked(&pki, &clock, |c| {
        c.retention.sweep_interval_ms = 20;
        c.retention.handled_item_days = 3;
        c.retention.purge_after_final_s = 3600;
    })
    .await;
    let desk1 = desk(&relay, &pki, NAS, "desk1").await;
    let desk2 = desk(&relay, &pki, NAS, "desk2").await;
    let (_centre, env, _) = referral(&relay, &pki).await;
    let id = env.message_id.clone();
    desk1.items(1, WAIT).await;
    desk1.conn.mailbox().ack(desk1.ack(&env)).await.unwrap();
    // Past purge_after_final_s: the content is kept while desk 2 still holds the item.
    clock.advance(Duration::from_secs(2 * 3600));
    sweeper_round(&relay).await;
    assert!(relay.store.ciphertext(&id).unwrap().is_some());
    // Desk 2 takes it: nothing holds the content any more, and its time is up.
    let seq = desk2.items(1, WAIT).await[0].seq;
    desk2.conn.mailbox().ack(desk2.done(seq)).await.unwrap();
    assert_eq!(nas_items(&relay), 0);
    sweeper_round(&relay).await;
    assert!(
        relay.store.ciphertext(&id).unwrap().is_none(),
        "purged at purge_after_final_s, not at the end of the 3-day hold"
    );
    assert_eq!(events_of(&relay, EventType::Purged, &id).len(), 1);
    relay.stop().await;
}

#[tokio::test]
async fn status_items_reach_every_desk_of_the_sending_principal() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let desk1 = desk(&relay, &pki, NAS, "desk1").await;
    let desk2 = desk(&relay, &pki, NAS, "desk2").await;
    let centre = desk(&relay, &pki, CENTRE, "front").await;
    let env = envelope(
        MessageKind::InformationRequest,
        &[CENTRE],
        b"sealed question",
    );
    desk1.conn.mailbox().send(env.clone()).await.unwrap();
    centre.items(1, WAIT).await;
    centre.conn.mailbox().ack(centre.ack(&env)).await.unwrap();

    // Both desks of the sender get delivered and acknowledged.
    let states = |items: &[pb::MailboxItem]| -> Vec<i32> {
        items.iter().map(|i| status_of(i).unwrap().state).collect()
    };
    let want = [
        DeliveryState::Delivered as i32,
        DeliveryState::Acknowledged as i32,
    ];
    let one = desk1.items(2, WAIT).await;
    assert_eq!(states(&one), want);
    // Desk 1 confirms both; desk 2 still gets them.
    for i in &one {
        desk1
            .conn
            .mailbox()
            .ack(desk1.status_done(i.seq))
            .await
            .unwrap();
    }
    assert!(desk1.items(1, QUIET).await.is_empty());
    let two = desk2.items(2, WAIT).await;
    assert_eq!(states(&two), want);
    let ack = status_of(&two[1]).unwrap();
    assert_eq!(ack.ack_device, "front");
    for i in &two {
        desk2
            .conn
            .mailbox()
            .ack(desk2.status_done(i.seq))
            .await
            .unwrap();
    }
    assert!(desk2.items(1, QUIET).await.is_empty());
    assert_eq!(
        relay
            .store
            .mailbox_items(&NAS.parse().unwrap(), 0, u64::MAX - 1, 100)
            .unwrap()
            .len(),
        0
    );
    relay.stop().await;
}

#[tokio::test]
async fn per_device_state_survives_a_restart() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let desk1 = desk(&relay, &pki, NAS, "desk1").await;
    let desk2 = desk(&relay, &pki, NAS, "desk2").await;
    let (_centre, env, _) = referral(&relay, &pki).await;
    desk1.items(1, WAIT).await;
    desk1.conn.mailbox().ack(desk1.ack(&env)).await.unwrap();
    let data = relay.stop_keep().await;

    let relay = TestRelay::start_in(&pki, data, |_| {}).await;
    // Same certificates, new connections.
    let desk1 = Desk {
        conn: relay.connect(&pki, &desk1.identity).await,
        ..desk1
    };
    let desk2 = Desk {
        conn: relay.connect(&pki, &desk2.identity).await,
        ..desk2
    };
    assert!(desk1.items(1, QUIET).await.is_empty(), "desk 1 is done");
    let items = desk2.items(1, WAIT).await;
    assert_eq!(
        envelope_of(&items[0])
            .unwrap()
            .handled
            .as_ref()
            .unwrap()
            .device,
        "desk1"
    );
    relay.stop().await;
}

#[tokio::test]
async fn the_hold_removes_what_a_desk_that_never_comes_back_holds_and_only_then_the_ciphertext_goes()
 {
    let pki = TestPki::new();
    let clock = TestClock::new();
    let relay = TestRelay::start_clocked(&pki, &clock, |c| {
        c.retention.sweep_interval_ms = 20;
        c.retention.handled_item_days = 3;
    })
    .await;
    let desk1 = desk(&relay, &pki, NAS, "desk1").await;
    let _gone = desk(&relay, &pki, NAS, "desk2").await;
    let (_centre, env, _) = referral(&relay, &pki).await;
    let id = env.message_id.clone();
    desk1.items(1, WAIT).await;
    desk1.conn.mailbox().ack(desk1.ack(&env)).await.unwrap();

    // purge_after_final_s (1 h) passes: the item is still held for desk 2, so is the content.
    clock.advance(Duration::from_secs(2 * 3600));
    sweeper_round(&relay).await;
    assert_eq!(nas_items(&relay), 1);
    assert!(relay.store.ciphertext(&id).unwrap().is_some());
    assert!(events_of(&relay, EventType::Purged, &id).is_empty());
    clock.advance(Duration::from_secs(3 * DAY - 3 * 3600));
    sweeper_round(&relay).await;
    assert_eq!(nas_items(&relay), 1, "not yet 3 days");
    assert!(relay.store.ciphertext(&id).unwrap().is_some());

    // The hold ends: the item goes, and then the ciphertext.
    clock.advance(Duration::from_secs(2 * 3600));
    for _ in 0..500 {
        if relay.store.ciphertext(&id).unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(nas_items(&relay), 0);
    assert!(relay.store.ciphertext(&id).unwrap().is_none());
    let purged = events_of(&relay, EventType::Purged, &id);
    assert_eq!(purged.len(), 1);
    relay.stop().await;
}

// ---- The `silta` program at two desks, as a user would.

const SILTA: &str = env!("CARGO_BIN_EXE_silta-under-test");

fn silta(user: &silta_tests::TestUser, args: &[&str]) -> std::process::Output {
    std::process::Command::new(SILTA)
        .arg("--config")
        .arg(user.dir.path().join("silta.toml"))
        .args(args)
        .env("SILTA_PURPOSE", "case work")
        .env("SILTA_USER", "tester")
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

fn ok(user: &silta_tests::TestUser, args: &[&str]) -> String {
    let o = silta(user, args);
    assert!(o.status.success(), "silta {args:?}: {}", text(&o));
    text(&o)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_second_desk_silta_shows_the_referral_handled_by_the_first_with_its_signature_verified()
 {
    use silta_tests::TestUser;
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = TestUser::new(&pki, relay.addr, CENTRE, "server-1");
    let desk1 = TestUser::new(&pki, relay.addr, NAS, "desk-1");
    let desk2 = TestUser::new(&pki, relay.addr, NAS, "desk-2");
    for u in [&centre, &desk1, &desk2] {
        ok(u, &["keys", "publish"]);
    }
    let form = centre.dir.path().join("referral.toml");
    std::fs::write(
        &form,
        "account = \"met at the centre\"\n[person]\nname = \"A. Person\"\nage_group = \"AGE_GROUP_ADULT\"\n[consent]\nperson_name = \"A. Person\"\ndate = \"2026-11-20\"\ninformed_about = [\"services\"]\n",
    )
    .unwrap();
    let out = ok(
        &centre,
        &[
            "send",
            "--kind",
            "referral",
            "--to",
            NAS,
            "--case",
            "0123456789abcdef0123456789abcdef",
            form.to_str().unwrap(),
        ],
    );
    let line = out.lines().find(|l| l.starts_with("sent ")).unwrap();
    let id = line.split(' ').nth(2).unwrap().to_owned();

    // Both desks fetch it; desk 1 acknowledges.
    for d in [&desk1, &desk2] {
        let out = ok(d, &["inbox", "list"]);
        assert!(out.contains("Referral") && out.contains("new"), "{out}");
    }
    let out = ok(&desk1, &["inbox", "ack", &id]);
    assert!(out.contains("acknowledged Referral"), "{out}");

    // Desk 2 sees who handled it, verified against desk 1's published key.
    let out = ok(&desk2, &["inbox", "list"]);
    assert!(out.contains("handled by desk-1"), "{out}");
    assert!(out.contains("(signature verified)"), "{out}");
    let out = ok(&desk2, &["inbox", "list", "--new", "--offline"]);
    assert!(out.contains("no messages"), "{out}");
    let out = ok(&desk2, &["inbox", "show", &id]);
    assert!(out.contains("handled:     handled by desk-1 at "), "{out}");
    assert!(out.contains("(signature verified)"), "{out}");
    assert!(
        out.contains("met at the centre"),
        "the content opens here too: {out}"
    );
    // Acknowledging it at desk 2 sends nothing.
    let out = ok(&desk2, &["inbox", "ack", &id]);
    assert!(out.contains("not acknowledged from this desk"), "{out}");
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    let acks = events_of(&relay, EventType::Acknowledged, uuid.as_bytes());
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].ack_device, "desk-1");
    // Both desks done with it.
    assert_eq!(nas_items(&relay), 0);

    // The centre hears "acknowledged" once.
    let out = ok(&centre, &["receive", "--wait", "2"]);
    assert_eq!(out.matches("ACKNOWLEDGED").count(), 1, "{out}");

    // A desk enrolled after the message was accepted: nothing to open, says so.
    let centre_form = ok(
        &centre,
        &[
            "send",
            "--kind",
            "referral",
            "--to",
            NAS,
            "--case",
            "1123456789abcdef0123456789abcdef",
            form.to_str().unwrap(),
        ],
    );
    assert!(centre_form.contains("sent referral"), "{centre_form}");
    let desk3 = TestUser::new(&pki, relay.addr, NAS, "desk-3");
    ok(&desk3, &["keys", "publish"]);
    let out = ok(&desk3, &["inbox", "list"]);
    assert!(
        out.contains("sealed before this desk's keys were published"),
        "{out}"
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_handled_claim_is_kept_and_shown_unverified_and_not_acknowledged() {
    use silta_client::receive::Acknowledge;
    use silta_tests::{TestOpener, TestUser};
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = TestUser::new(&pki, relay.addr, CENTRE, "server-1");
    let desk1 = TestUser::new(&pki, relay.addr, NAS, "desk-1");
    let desk2 = TestUser::new(&pki, relay.addr, NAS, "desk-2");
    let centre_client = centre.published().await;
    let one = desk1.published().await;
    let two = desk2.published().await;
    let payload = silta_client::payload::read_form(
        MessageKind::Referral,
        "account = \"met at the centre\"\n[person]\nname = \"A. Person\"\nage_group = \"AGE_GROUP_ADULT\"\n[consent]\nperson_name = \"A. Person\"\ndate = \"2026-11-20\"\ninformed_about = [\"services\"]",
        false,
    )
    .unwrap();
    let draft = silta_client::seal::Draft::new(
        MessageKind::Referral,
        [7u8; 16],
        vec![NAS.parse().unwrap()],
        payload,
    );
    let env = centre_client.seal(&draft).await.unwrap();
    let id = env.message_id.clone();
    centre_client
        .connection()
        .mailbox()
        .send(env)
        .await
        .unwrap();

    // Desk 1 takes it in and acknowledges (its signature is genuine).
    let opener = TestOpener::new();
    let got = one
        .receive(&opener.opener(), Duration::from_secs(2), 1, |_, _| Ok(()))
        .await
        .unwrap();
    assert!(matches!(
        got[0],
        silta_client::client::Received::Message { .. }
    ));

    // At desk 2 the relay's claim arrives with a forged signature.
    let mut stream = two
        .connection()
        .mailbox()
        .subscribe(two.subscribe_request())
        .await
        .unwrap()
        .into_inner();
    let mut item = take_items(&mut stream, 1, WAIT).await.remove(0);
    let Some(pb::mailbox_item::Item::Envelope(delivered)) = &mut item.item else {
        panic!("an envelope")
    };
    let genuine = delivered.handled.clone().expect("handled by desk 1");
    assert!(two.check_handled(delivered).await.unwrap().verified);
    let handled = delivered.handled.as_mut().unwrap();
    handled.ack_signature[0] ^= 1;
    let verdict = two.check_handled(delivered).await.unwrap();
    assert!(!verdict.verified);
    assert!(verdict.line().contains("UNVERIFIED"), "{}", verdict.line());
    assert!(verdict.line().contains("handled by desk-1"));
    // A claim naming a device the principal never published.
    let mut other = delivered.clone();
    other.handled.as_mut().unwrap().device = "desk-9".into();
    other.handled.as_mut().unwrap().ack_signature = genuine.ack_signature.clone();
    assert!(!two.check_handled(&other).await.unwrap().verified);

    // Processed: kept (opened here, logged), marked unverified, and not acknowledged by desk 2.
    let events_before = relay.events().len();
    let opener2 = TestOpener::new();
    let state = two.state();
    let mut keep = |d: &pb::DeliveredEnvelope, o: &silta_client::seal::Opened| {
        let mut r = silta_client::record::MessageRecord::opened(d, o);
        r.direction = Some(silta_client::record::Direction::Received);
        r.state = Some(silta_client::record::RecordState::New);
        state
            .put_message(&r.message_id, &r)
            .map_err(|e| e.to_string())
    };
    let got = two
        .process_opts(item, &opener2.opener(), &mut keep, Acknowledge::ByPerson)
        .await
        .unwrap();
    assert!(matches!(
        got,
        silta_client::client::Received::Message { .. }
    ));
    let record = state.message(&id).unwrap().expect("kept");
    let h = record.handled_elsewhere.clone().expect("noted");
    assert!(!h.verified);
    assert!(record.handled_line().unwrap().contains("UNVERIFIED"));
    assert_eq!(opener2.entries().len(), 1, "the opening is logged");
    assert_eq!(
        relay.events().len(),
        events_before,
        "desk 2 wrote nothing to the log"
    );
    let acks = events_of(&relay, EventType::Acknowledged, &id);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].ack_device, "desk-1");
    relay.stop().await;
}

#[tokio::test]
async fn retiring_the_desk_that_never_came_back_releases_what_it_held() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let desk1 = desk(&relay, &pki, NAS, "desk1").await;
    let _gone = desk(&relay, &pki, NAS, "desk2").await;
    let (_centre, env, _) = referral(&relay, &pki).await;
    desk1.items(1, WAIT).await;
    desk1.conn.mailbox().ack(desk1.ack(&env)).await.unwrap();
    assert_eq!(nas_items(&relay), 1, "held for desk 2");

    let admin = relay.connect_as(&pki, "admin/ops").await;
    admin
        .admin()
        .retire_devices(pb::RetireDevicesRequest {
            reason: Some(pb::AdminReason {
                text: "laptop lost".into(),
            }),
            principal: NAS.into(),
            device_ids: vec!["desk2".into()],
        })
        .await
        .unwrap();
    assert_eq!(nas_items(&relay), 0, "nothing left for a retired desk");
    relay.stop().await;
}

#[tokio::test]
async fn a_retirement_cut_short_before_the_release_is_finished_at_start() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let desk1 = desk(&relay, &pki, NAS, "desk1").await;
    let _gone = desk(&relay, &pki, NAS, "desk2").await;
    let (_centre, env, _) = referral(&relay, &pki).await;
    desk1.items(1, WAIT).await;
    desk1.conn.mailbox().ack(desk1.ack(&env)).await.unwrap();
    assert_eq!(nas_items(&relay), 1, "held for desk 2");
    // The retirement's transaction ran, then the relay stopped before removing the items.
    let data = relay.stop_keep().await;
    {
        let store = silta_tests::open_store_offline(data.path());
        let nas: silta_certs::Principal = NAS.parse().unwrap();
        store
            .write(move |trees| {
                trees.transaction(|tx| {
                    let mut d = tx.device(&nas, "desk2")?.unwrap();
                    d.retired = true;
                    tx.put_device(&nas, "desk2", &d)?;
                    Ok(())
                })
            })
            .await
            .unwrap();
        store.close().unwrap();
    }
    let relay = TestRelay::start_in(&pki, data, |_| {}).await;
    for _ in 0..250 {
        if nas_items(&relay) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(nas_items(&relay), 0, "released at start");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_desks_acknowledging_at_once_the_second_is_told_the_first_handled_it() {
    use silta_tests::TestUser;
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = TestUser::new(&pki, relay.addr, CENTRE, "server-1");
    let desk1 = TestUser::new(&pki, relay.addr, NAS, "desk-1");
    let desk2 = TestUser::new(&pki, relay.addr, NAS, "desk-2");
    for u in [&centre, &desk1, &desk2] {
        ok(u, &["keys", "publish"]);
    }
    let form = centre.dir.path().join("referral.toml");
    std::fs::write(
        &form,
        "account = \"met at the centre\"\n[person]\nname = \"A. Person\"\nage_group = \"AGE_GROUP_ADULT\"\n[consent]\nperson_name = \"A. Person\"\ndate = \"2026-11-20\"\ninformed_about = [\"services\"]\n",
    )
    .unwrap();
    let out = ok(
        &centre,
        &[
            "send",
            "--kind",
            "referral",
            "--to",
            NAS,
            "--case",
            "0123456789abcdef0123456789abcdef",
            form.to_str().unwrap(),
        ],
    );
    let line = out.lines().find(|l| l.starts_with("sent ")).unwrap();
    let id = line.split(' ').nth(2).unwrap().to_owned();
    // Both desks have it as new; both people acknowledge it, desk 1 a moment first.
    for d in [&desk1, &desk2] {
        let out = ok(d, &["inbox", "list"]);
        assert!(out.contains("new"), "{out}");
    }
    let out = ok(&desk1, &["inbox", "ack", &id]);
    assert!(out.contains("acknowledged Referral"), "{out}");
    let out = ok(&desk2, &["inbox", "ack", &id]);
    assert!(out.contains("not acknowledged from this desk"), "{out}");
    assert!(
        out.contains("handled by desk-1") && out.contains("not yet verified: run inbox sync"),
        "{out}"
    );
    let o = silta(&desk2, &["inbox", "show", &id, "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_ne!(shown["state"], "acknowledged", "{shown}");
    assert!(shown["acknowledged_by"].is_null(), "{shown}");
    assert_eq!(shown["handled_elsewhere"]["device"], "desk-1", "{shown}");
    assert_eq!(shown["handled_elsewhere"]["verified"], false, "{shown}");
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    let acks = events_of(&relay, EventType::Acknowledged, uuid.as_bytes());
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].ack_device, "desk-1");
    // The next sync brings desk 1's signed acknowledgement: checked, and desk 2 is done.
    let out = ok(&desk2, &["inbox", "list"]);
    assert!(out.contains("handled by desk-1"), "{out}");
    assert!(out.contains("(signature verified)"), "{out}");
    assert_eq!(nas_items(&relay), 0);
    relay.stop().await;
}
