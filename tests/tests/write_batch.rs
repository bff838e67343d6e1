//! Sends queued together share one storage transaction (the writer's batch): a refused send
//! among them changes nothing and gets its own exact error, the others are accepted with
//! receipts that check out, and the log stays contiguous. With the real relay (TLS, sled).

use std::collections::BTreeSet;

use silta_proto::pb::{self, MessageKind};
use silta_tests::{TestPki, TestRelay, envelope};

const NAS: &str = "assistance/nas";
const CENTRE: &str = "centre/joutseno";

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
                ciphertext: format!("other {i}").into_bytes(),
                ciphertext_sha256: silta_tests::sha256(format!("other {i}").as_bytes()),
                ..first.clone()
            },
            _ => envelope(MessageKind::Referral, &[NAS], format!("m{i}").as_bytes()),
        })
        .collect();
    let sends: Vec<_> = envelopes
        .iter()
        .cloned()
        .map(|env| {
            let mut mailbox = centre.mailbox();
            tokio::spawn(async move { mailbox.send(env).await.map(|r| r.into_inner()) })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for send in sends {
        results.push(send.await);
    }

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
