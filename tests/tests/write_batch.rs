//! Sends queued together share one storage transaction (the writer's batch): a refused send
//! among them changes nothing and gets its own exact error, the others are accepted with
//! receipts that check out, and the log stays contiguous. With the real relay (TLS, sled).

use std::collections::BTreeSet;

use silta_proto::pb::{self, MessageKind};
use silta_tests::{TestPki, TestRelay, envelope};

const NAS: &str = "assistance/nas";
const CENTRE: &str = "centre/joutseno";

/// Holds the relay's writer in a write of its own until `release` gets a message (at most
/// 10 s): requests that arrive meanwhile queue behind it and run as one batch.
fn hold_writer(
    relay: &TestRelay,
) -> (
    std::sync::mpsc::Sender<()>,
    tokio::task::JoinHandle<Result<(), silta_relay::error::RelayError>>,
) {
    let (release, held) = std::sync::mpsc::channel::<()>();
    let store = relay.store.clone();
    let hold = tokio::spawn(async move {
        store
            .write(move |_| {
                let _ = held.recv_timeout(std::time::Duration::from_secs(10));
                Ok(())
            })
            .await
    });
    (release, hold)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_sends_in_a_batch_leave_the_others_whole() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, silta_tests::unlimited).await;
    let _nas = relay.connect_as(&pki, NAS).await;
    let centre = relay.connect_as(&pki, CENTRE).await;
    // Its id is taken: a different message under it is ALREADY_EXISTS.
    let first = envelope(MessageKind::Referral, &[NAS], b"first");
    centre.mailbox().send(first.clone()).await.unwrap();
    let events_before = relay.events().len() as u64;

    // 0 mod 4: accepted; 1: unknown recipient; 2: accepted; 3: the taken id, other content.
    let n = 64;
    let envelopes: Vec<pb::Envelope> = (0..n)
        .map(|i| match i % 4 {
            1 => envelope(MessageKind::Referral, &["assistance/nobody"], b"lost"),
            3 => pb::Envelope {
                ciphertext: format!("other {i}").into_bytes().into(),
                ciphertext_sha256: silta_tests::sha256(format!("other {i}").as_bytes()),
                ..first.clone()
            },
            _ => envelope(MessageKind::Referral, &[NAS], format!("m{i}").as_bytes()),
        })
        .collect();
    // Hold the writer while the sends queue behind it, so they run as one batch (the shared
    // receipt checkpoints below show that they did).
    let (release, hold) = hold_writer(&relay);
    let sends: Vec<_> = envelopes
        .iter()
        .cloned()
        .map(|env| {
            let mut mailbox = centre.mailbox();
            tokio::spawn(async move { mailbox.send(env).await.map(|r| r.into_inner()) })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    release.send(()).unwrap();
    hold.await.unwrap().unwrap();
    let mut results = Vec::with_capacity(n);
    for send in sends {
        results.push(send.await);
    }
    let mut per_checkpoint = std::collections::BTreeMap::<String, usize>::new();

    let mut indexes = BTreeSet::new();
    for (i, (env, result)) in envelopes.iter().zip(results).enumerate() {
        let result = result.unwrap();
        match i % 4 {
            1 => assert_eq!(
                result.unwrap_err().code(),
                tonic::Code::NotFound,
                "send {i}"
            ),
            3 => assert_eq!(
                result.unwrap_err().code(),
                tonic::Code::AlreadyExists,
                "send {i}"
            ),
            _ => {
                let receipt = result.unwrap_or_else(|e| panic!("send {i}: {e}"));
                silta_client::audit::check_receipt(
                    &receipt,
                    &relay.log_key,
                    &env.message_id,
                    CENTRE,
                    &env.ciphertext_sha256,
                )
                .unwrap_or_else(|e| panic!("receipt {i}: {e}"));
                assert!(indexes.insert(receipt.log_index), "index reused");
                *per_checkpoint
                    .entry(receipt.checkpoint.clone())
                    .or_default() += 1;
                // An idempotent retry is answered with the identical receipt.
                let again = centre
                    .mailbox()
                    .send(env.clone())
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(again, receipt, "resent receipt {i}");
            }
        }
    }
    // Accepted sends shared a batch with the refused ones between them: their receipts share
    // the batch's checkpoint.
    assert!(
        per_checkpoint.values().any(|&n| n >= 2),
        "no two receipts share a batch: {per_checkpoint:?}"
    );
    // Exactly the accepted sends were logged, at contiguous indexes after what was there.
    let accepted = (n / 2) as u64;
    let expected: BTreeSet<u64> = (events_before..events_before + accepted).collect();
    assert_eq!(indexes, expected);
    let events = relay.events();
    assert_eq!(events.len() as u64, events_before + accepted);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.index, i as u64);
    }
    // Nothing of a refused send was stored.
    for (i, env) in envelopes.iter().enumerate() {
        if i % 4 == 1 {
            assert!(relay.store.message(&env.message_id).unwrap().is_none());
        }
    }
    let first_stored = relay.store.message(&first.message_id).unwrap().unwrap();
    assert_eq!(
        first_stored.envelope.unwrap().ciphertext_sha256,
        first.ciphertext_sha256
    );
    relay.stop().await;
}

/// Review finding (issue 14): a send refused by the case rules took its SEND_REFUSED rate token
/// and counted `refusals_unlogged` inside the shared transaction, which runs again without a
/// later job another refusal aborted, so one refusal took two tokens (and, with the sender's
/// tokens gone, lost its event and was counted unlogged). The writer is held while the two
/// sends queue, so they are in one batch: exactly one event and one token per refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_refusal_in_a_batch_with_another_refusal_takes_one_token() {
    use silta_proto::pb::{EventType, LegalBasis};
    use std::time::Duration;
    const OLD: &str = "centre/old-operator";
    const OTHER: &str = "centre/elsewhere";
    let in_case = |kind, case: &[u8], to: &[&str]| {
        let mut env = envelope(kind, to, b"opaque to the relay");
        env.case_ref = case.to_vec();
        env.legal_basis = LegalBasis::Consent.into();
        env
    };
    let refused_events = |relay: &TestRelay| {
        relay
            .events()
            .into_iter()
            .filter(|e| e.r#type == EventType::SendRefused as i32)
            .count()
    };
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.limits.refusal_events_per_hour = 2).await;
    let (_nas, _) = relay.connect_with_keys(&pki, NAS).await;
    let (old, _) = relay.connect_with_keys(&pki, OLD).await;
    let other = relay.connect_as(&pki, OTHER).await;
    let cases: Vec<Vec<u8>> = (0..3).map(|_| silta_tests::case_ref()).collect();
    for case in &cases {
        old.mailbox()
            .send(in_case(MessageKind::Referral, case, &[NAS]))
            .await
            .unwrap();
    }

    // Hold the writer until both sends below are queued behind it.
    let (release, hold) = hold_writer(&relay);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // OTHER takes no part in the case: refused by the case rules (logged, one token)...
    let refused = {
        let mut mailbox = other.mailbox();
        let env = in_case(MessageKind::StatusUpdate, &cases[0], &[NAS]);
        tokio::spawn(async move { mailbox.send(env).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ... then, in the same batch, a send the transaction aborts (unknown recipient).
    let aborted = {
        let mut mailbox = other.mailbox();
        let env = envelope(MessageKind::Referral, &["assistance/nobody"], b"lost");
        tokio::spawn(async move { mailbox.send(env).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    release.send(()).unwrap();
    hold.await.unwrap().unwrap();
    assert_eq!(
        refused.await.unwrap().unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    assert_eq!(
        aborted.await.unwrap().unwrap_err().code(),
        tonic::Code::NotFound
    );
    assert_eq!(refused_events(&relay), 1);
    assert_eq!(relay.metrics.snapshot().refusals_unlogged, 0);

    // One token of two is left: the next refusal (another case) is logged, the one after not.
    let env = in_case(MessageKind::StatusUpdate, &cases[1], &[NAS]);
    let e = other.mailbox().send(env).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert_eq!(refused_events(&relay), 2);
    assert_eq!(relay.metrics.snapshot().refusals_unlogged, 0);
    let env = in_case(MessageKind::StatusUpdate, &cases[2], &[NAS]);
    let e = other.mailbox().send(env).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert_eq!(refused_events(&relay), 2);
    assert_eq!(relay.metrics.snapshot().refusals_unlogged, 1);
    relay.stop().await;
}
