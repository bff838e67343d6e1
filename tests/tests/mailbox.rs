//! The mailbox end to end: real relay, real TLS on loopback, real sled.

use std::time::Duration;

use silta_proto::pb::{self, DeliveryState, MessageKind};
use silta_tests::{TestPki, TestRelay, ack_of, envelope, envelope_of, status_of, take_items};
use tonic::Code;

const CENTRE: &str = "centre/joutseno";
const NAS: &str = "assistance/nas";
const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn centre_sends_assistance_receives_acknowledges_and_centre_sees_it() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (nas, keys) = relay.connect_with_keys(&pki, NAS).await;
    let centre = relay.connect_as(&pki, CENTRE).await;

    let ciphertext: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 251) as u8).collect();
    let env = envelope(MessageKind::Referral, &[NAS], &ciphertext);
    let receipt = centre
        .mailbox()
        .send(env.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(receipt.message_id, env.message_id);
    assert_eq!(receipt.sender, CENTRE);
    assert_eq!(receipt.ciphertext_sha256, env.ciphertext_sha256);
    assert!(receipt.accepted_at.is_some());

    let mut stream = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest {
            after_seq: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let items = take_items(&mut stream, 1, WAIT).await;
    let delivered = envelope_of(&items[0]).expect("an envelope");
    assert_eq!(delivered.sender, CENTRE);
    assert_eq!(delivered.log_index, receipt.log_index);
    let got = delivered.envelope.as_ref().unwrap();
    assert_eq!(got.ciphertext, ciphertext, "exact bytes");
    assert_eq!(got, &env, "every envelope field as sent");

    let ack = nas
        .mailbox()
        .ack(ack_of(&keys, &env))
        .await
        .unwrap()
        .into_inner();
    assert!(ack.log_index > receipt.log_index);

    let status = centre
        .mailbox()
        .status(pb::StatusRequest {
            message_id: env.message_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.recipients.len(), 1);
    assert_eq!(status.recipients[0].recipient, NAS);
    assert_eq!(
        status.recipients[0].state,
        i32::from(DeliveryState::Acknowledged)
    );

    // The centre's own mailbox holds the status events: delivered, then acknowledged.
    let mut mine = centre
        .mailbox()
        .subscribe(pb::SubscribeRequest {
            after_seq: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let events = take_items(&mut mine, 2, WAIT).await;
    let states: Vec<i32> = events.iter().map(|i| status_of(i).unwrap().state).collect();
    assert_eq!(
        states,
        [
            DeliveryState::Delivered as i32,
            DeliveryState::Acknowledged as i32
        ]
    );
    // Confirming a status item removes it; confirming it twice is NOT_FOUND.
    let seq = events[0].seq;
    let confirm = pb::AckRequest {
        device_id: String::new(),
        target: Some(pb::ack_request::Target::StatusSeq(seq)),
    };
    centre.mailbox().ack(confirm.clone()).await.unwrap();
    assert_eq!(
        centre.mailbox().ack(confirm).await.unwrap_err().code(),
        Code::NotFound
    );

    // The acknowledged message is gone from the recipient's mailbox.
    let mut again = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest {
            after_seq: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        take_items(&mut again, 1, Duration::from_millis(300))
            .await
            .is_empty()
    );
    relay.stop().await;
}

#[tokio::test]
async fn sending_twice_is_idempotent_and_other_content_is_already_exists() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let _nas = relay.connect_as(&pki, NAS).await;
    let centre = relay.connect_as(&pki, CENTRE).await;

    let env = envelope(MessageKind::AnonymousConsultation, &[NAS], b"sealed bytes");
    let centre2 = relay.connect_as(&pki, "centre/other").await;
    let first = centre
        .mailbox()
        .send(env.clone())
        .await
        .unwrap()
        .into_inner();
    let before = relay.fingerprint();
    let second = centre
        .mailbox()
        .send(env.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, second, "the identical receipt");
    assert_eq!(relay.fingerprint(), before, "nothing stored twice");
    assert_eq!(
        relay.store.recipient_states(&env.message_id).unwrap().len(),
        1
    );

    let mut other = env.clone();
    other.ciphertext = b"other sealed bytes".to_vec().into();
    other.ciphertext_sha256 = silta_tests::sha256(&other.ciphertext);
    let err = centre.mailbox().send(other).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    // Same ciphertext, other metadata: also a different message.
    let mut other = env.clone();
    other.urgency = pb::Urgency::Emergency.into();
    assert_eq!(
        centre.mailbox().send(other).await.unwrap_err().code(),
        Code::AlreadyExists
    );
    // Another sender cannot reuse the id either.
    assert_eq!(
        centre2
            .mailbox()
            .send(env.clone())
            .await
            .unwrap_err()
            .code(),
        Code::AlreadyExists
    );
    assert_eq!(relay.fingerprint(), before);

    // Exactly one copy is delivered.
    let nas = relay.connect_as(&pki, NAS).await;
    let mut stream = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let items = take_items(&mut stream, 2, Duration::from_millis(500)).await;
    assert_eq!(items.len(), 1);
    relay.stop().await;
}

#[tokio::test]
async fn unacknowledged_items_are_redelivered_and_new_ones_pushed_live() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (nas, keys) = relay.connect_with_keys(&pki, NAS).await;
    let centre = relay.connect_as(&pki, CENTRE).await;

    let a = envelope(MessageKind::Referral, &[NAS], b"a");
    let b = envelope(MessageKind::ConsentRecord, &[NAS], b"b");
    centre.mailbox().send(a.clone()).await.unwrap();
    centre.mailbox().send(b.clone()).await.unwrap();

    // First subscription sees both, acknowledges only `a`.
    let mut s1 = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let items = take_items(&mut s1, 2, WAIT).await;
    let ids: Vec<_> = items
        .iter()
        .map(|i| {
            envelope_of(i)
                .unwrap()
                .envelope
                .as_ref()
                .unwrap()
                .message_id
                .clone()
        })
        .collect();
    assert_eq!(
        ids,
        [a.message_id.clone(), b.message_id.clone()],
        "in order"
    );
    assert!(items[0].seq < items[1].seq);
    nas.mailbox().ack(ack_of(&keys, &a)).await.unwrap();
    drop(s1);

    // A new subscription gets `b` again, then a message sent while it is open, live.
    let mut s2 = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let again = take_items(&mut s2, 1, WAIT).await;
    assert_eq!(
        envelope_of(&again[0])
            .unwrap()
            .envelope
            .as_ref()
            .unwrap()
            .message_id,
        b.message_id
    );
    let c = envelope(MessageKind::StatusUpdate, &[NAS], b"c");
    centre.mailbox().send(c.clone()).await.unwrap();
    let live = take_items(&mut s2, 1, WAIT).await;
    assert_eq!(
        envelope_of(&live[0])
            .unwrap()
            .envelope
            .as_ref()
            .unwrap()
            .message_id,
        c.message_id
    );

    // after_seq skips what this session already has.
    let mut s3 = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest {
            after_seq: again[0].seq,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let rest = take_items(&mut s3, 1, WAIT).await;
    assert_eq!(
        envelope_of(&rest[0])
            .unwrap()
            .envelope
            .as_ref()
            .unwrap()
            .message_id,
        c.message_id
    );
    relay.stop().await;
}

/// A stored ciphertext that no longer opens with its storage key (damaged storage) must not
/// block the recipient's mailbox: the item is skipped and counted, the ones after it arrive.
#[tokio::test]
async fn a_damaged_ciphertext_is_skipped_and_the_rest_of_the_mailbox_delivered() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (nas, _keys) = relay.connect_with_keys(&pki, NAS).await;
    let centre = relay.connect_as(&pki, CENTRE).await;
    let sent: Vec<pb::Envelope> = ["a", "b", "c"]
        .iter()
        .map(|body| envelope(MessageKind::Referral, &[NAS], body.as_bytes()))
        .collect();
    for env in &sent {
        centre.mailbox().send(env.clone()).await.unwrap();
    }
    // Damage `b` as stored (sealed at rest): one bit of its sealed bytes.
    let stored = relay.store.raw_tree("msgid_ciphertext").unwrap();
    let mut sealed = stored.get(&sent[1].message_id).unwrap().unwrap().to_vec();
    let last = sealed.len() - 1;
    sealed[last] ^= 1;
    stored.insert(&sent[1].message_id, sealed).unwrap();

    let id_of = |item: &pb::MailboxItem| {
        envelope_of(item)
            .unwrap()
            .envelope
            .as_ref()
            .unwrap()
            .message_id
            .clone()
    };
    let subscribe = || async {
        nas.mailbox()
            .subscribe(pb::SubscribeRequest::default())
            .await
            .unwrap()
            .into_inner()
    };
    let mut sub = subscribe().await;
    let items = take_items(&mut sub, 2, WAIT).await;
    let ids: Vec<Vec<u8>> = items.iter().map(id_of).collect();
    assert_eq!(
        ids,
        [sent[0].message_id.clone(), sent[2].message_id.clone()]
    );
    // The subscription stays open for what comes next.
    let d = envelope(MessageKind::Referral, &[NAS], b"d");
    centre.mailbox().send(d.clone()).await.unwrap();
    let live = take_items(&mut sub, 1, WAIT).await;
    assert_eq!(live.len(), 1, "the subscription ended");
    assert_eq!(id_of(&live[0]), d.message_id);
    drop(sub);
    // Every later subscription gets past it too (`b` stays until it expires).
    let mut sub = subscribe().await;
    let ids: Vec<Vec<u8>> = take_items(&mut sub, 3, WAIT)
        .await
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(
        ids,
        [
            sent[0].message_id.clone(),
            sent[2].message_id.clone(),
            d.message_id.clone()
        ]
    );
    assert_eq!(relay.metrics.snapshot().ciphertexts_unreadable, 2);
    relay.stop().await;
}

#[tokio::test]
async fn rejection_is_recorded_and_reported_to_the_sender() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (nas, keys) = relay.connect_with_keys(&pki, NAS).await;
    let centre = relay.connect_as(&pki, CENTRE).await;
    let env = envelope(MessageKind::Referral, &[NAS], b"cannot be opened");
    centre.mailbox().send(env.clone()).await.unwrap();

    let reject = pb::AckRequest {
        device_id: String::new(),
        target: Some(pb::ack_request::Target::Reject(pb::Rejection {
            message_id: env.message_id.clone(),
            reason: pb::RejectionReason::CannotDecrypt.into(),
            detail: "no matching device key".into(),
        })),
    };
    let first = nas
        .mailbox()
        .ack(reject.clone())
        .await
        .unwrap()
        .into_inner();
    // A retry of the same answer is fine and changes nothing; a different answer is refused.
    assert_eq!(nas.mailbox().ack(reject).await.unwrap().into_inner(), first);
    let err = nas.mailbox().ack(ack_of(&keys, &env)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    let event = relay.store.event(first.log_index).unwrap().unwrap();
    assert_eq!(event.r#type, pb::EventType::Rejected as i32);
    assert_eq!(event.actor, NAS);
    assert_eq!(
        event.rejection_reason,
        pb::RejectionReason::CannotDecrypt as i32
    );

    let status = centre
        .mailbox()
        .status(pb::StatusRequest {
            message_id: env.message_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.recipients[0].state, DeliveryState::Rejected as i32);
    assert_eq!(status.recipients[0].detail, "no matching device key");
    relay.stop().await;
}

#[tokio::test]
async fn events_record_every_state_change_with_metadata_only() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (nas, keys) = relay.connect_with_keys(&pki, NAS).await;
    let centre = relay.connect_as(&pki, CENTRE).await;
    let env = envelope(MessageKind::Referral, &[NAS], b"opaque");
    let receipt = centre
        .mailbox()
        .send(env.clone())
        .await
        .unwrap()
        .into_inner();
    let mut s = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    take_items(&mut s, 1, WAIT).await;
    nas.mailbox().ack(ack_of(&keys, &env)).await.unwrap();

    let count = relay.store.event_count().unwrap();
    let events: Vec<pb::Event> = (0..count)
        .map(|i| relay.store.event(i).unwrap().unwrap())
        .collect();
    let types: Vec<i32> = events.iter().map(|e| e.r#type).collect();
    use pb::EventType as T;
    assert_eq!(
        types,
        [
            T::PrincipalRegistered,
            T::KeyPublished,
            T::PrincipalRegistered,
            T::Accepted,
            T::Delivered,
            T::Acknowledged
        ]
        .map(|t| t as i32)
    );
    // The acknowledgement is evidence: the signature and the device that made it.
    let acked = events.last().unwrap();
    assert_eq!(acked.ack_device, "test");
    assert_eq!(acked.ack_signature.len(), 64);
    let accepted = &events[receipt.log_index as usize];
    assert_eq!(accepted.sender, CENTRE);
    assert_eq!(accepted.recipients, [NAS]);
    assert_eq!(accepted.ciphertext_sha256, env.ciphertext_sha256);
    assert_eq!(accepted.ciphertext_size, 6);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.index, i as u64, "contiguous indices");
    }
    relay.stop().await;
}
