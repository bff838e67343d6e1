//! The verifiable delivery log through a real relay: receipts carry a signed checkpoint and an
//! inclusion proof that verify offline; proofs and checkpoints stay consistent as the log grows;
//! queries are filtered by role and logged with their purpose.

use silta_proto::{
    pb::{self, MessageKind},
    tlog,
};
use silta_tests::{TestPki, TestRelay, envelope};
use tonic::Code;

/// Receipts of sends the relay writes in one batch share the batch's checkpoint (one
/// signature): each is still checked by the client's own verifier, and a retry later, after
/// other batches, gets the identical receipt. A receipt whose checkpoint is larger than its
/// batch's (a later one, with the proof against it) also holds; one that does not cover the
/// entry does not.
#[tokio::test]
async fn receipts_share_a_batch_checkpoint_and_the_client_checks_each() {
    use silta_client::audit::{ReceiptError, check_receipt};
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let _nas = relay.connect_as(&pki, "assistance/nas").await;
    let centre = relay.connect_as(&pki, "centre/a").await;
    let envelopes: Vec<_> = (0..48)
        .map(|i| {
            envelope(
                MessageKind::Referral,
                &["assistance/nas"],
                format!("b{i}").as_bytes(),
            )
        })
        .collect();
    // Before the sends: a checkpoint that covers none of them.
    let before = centre
        .audit()
        .checkpoint(pb::CheckpointRequest {})
        .await
        .unwrap()
        .into_inner();
    let sends: Vec<_> = envelopes
        .iter()
        .map(|env| {
            let mut mailbox = centre.mailbox();
            let env = env.clone();
            tokio::spawn(async move { mailbox.send(env).await.unwrap().into_inner() })
        })
        .collect();
    let mut receipts = Vec::new();
    for send in sends {
        receipts.push(send.await.unwrap());
    }
    for (env, receipt) in envelopes.iter().zip(&receipts) {
        check_receipt(
            receipt,
            &relay.log_key,
            &env.message_id,
            "centre/a",
            &env.ciphertext_sha256,
        )
        .unwrap();
    }
    let sizes: std::collections::BTreeSet<u64> = receipts
        .iter()
        .map(|r| {
            tlog::verify_checkpoint(&r.checkpoint, &relay.log_key)
                .unwrap()
                .size
        })
        .collect();
    println!("48 concurrent sends: {} distinct checkpoints", sizes.len());
    for (env, receipt) in envelopes.iter().zip(&receipts) {
        assert_eq!(
            &centre
                .mailbox()
                .send(env.clone())
                .await
                .unwrap()
                .into_inner(),
            receipt,
            "a retry after later batches gets the identical receipt"
        );
    }
    // The first receipt, re-proved against the latest checkpoint: still a valid receipt.
    let first = &receipts[0];
    let latest = centre
        .audit()
        .checkpoint(pb::CheckpointRequest {})
        .await
        .unwrap()
        .into_inner();
    let proof = centre
        .audit()
        .inclusion_proof(pb::InclusionProofRequest {
            index: first.log_index,
            tree_size: latest.tree_size,
        })
        .await
        .unwrap()
        .into_inner();
    let later = pb::Receipt {
        checkpoint: latest.checkpoint.clone(),
        inclusion_proof: proof.hashes,
        ..first.clone()
    };
    check_receipt(
        &later,
        &relay.log_key,
        &envelopes[0].message_id,
        "centre/a",
        &envelopes[0].ciphertext_sha256,
    )
    .unwrap();
    // A checkpoint that ends before the entry proves nothing about it.
    assert!(before.tree_size <= first.log_index);
    assert_eq!(
        check_receipt(
            &pb::Receipt {
                checkpoint: before.checkpoint,
                ..first.clone()
            },
            &relay.log_key,
            &envelopes[0].message_id,
            "centre/a",
            &envelopes[0].ciphertext_sha256,
        ),
        Err(ReceiptError::WrongEntry)
    );
    relay.stop().await;
}

/// With `storage.shared_receipt_checkpoints = false` (for clients from before shared
/// checkpoints) every receipt's checkpoint has exactly its index + 1 entries, however many
/// sends share a batch.
#[tokio::test]
async fn receipts_can_keep_a_checkpoint_of_their_own() {
    use silta_client::audit::check_receipt;
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.storage.shared_receipt_checkpoints = false).await;
    let _nas = relay.connect_as(&pki, "assistance/nas").await;
    let centre = relay.connect_as(&pki, "centre/a").await;
    let sends: Vec<_> = (0..32)
        .map(|i| {
            let env = envelope(
                MessageKind::Referral,
                &["assistance/nas"],
                format!("own{i}").as_bytes(),
            );
            let mut mailbox = centre.mailbox();
            tokio::spawn(async move {
                let receipt = mailbox.send(env.clone()).await.unwrap().into_inner();
                (env, receipt)
            })
        })
        .collect();
    for send in sends {
        let (env, receipt) = send.await.unwrap();
        let cp = tlog::verify_checkpoint(&receipt.checkpoint, &relay.log_key).unwrap();
        assert_eq!(cp.size, receipt.log_index + 1);
        check_receipt(
            &receipt,
            &relay.log_key,
            &env.message_id,
            "centre/a",
            &env.ciphertext_sha256,
        )
        .unwrap();
    }
    relay.stop().await;
}

#[tokio::test]
async fn receipts_prove_acceptance_offline_and_checkpoints_stay_consistent() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let verifier = relay.log_key.clone();
    let _nas = relay.connect_as(&pki, "assistance/nas").await;
    let centre = relay.connect_as(&pki, "centre/a").await;
    let auditor = relay.connect_as(&pki, "auditor/dpo").await;

    let mut held = Vec::new();
    for i in 0..20 {
        let env = envelope(
            MessageKind::Referral,
            &["assistance/nas"],
            format!("c{i}").as_bytes(),
        );
        let receipt = centre
            .mailbox()
            .send(env.clone())
            .await
            .unwrap()
            .into_inner();
        let cp =
            tlog::verify_checkpoint(&receipt.checkpoint, &verifier).expect("signed by the log key");
        assert!(
            cp.size > receipt.log_index,
            "the checkpoint covers the entry"
        );
        // The leaf is the ACCEPTED event of this message.
        let entries = auditor
            .audit()
            .entries(pb::EntriesRequest {
                start: receipt.log_index,
                end: receipt.log_index + 1,
                purpose: "test".into(),
                purpose_code: pb::PurposeCode::LogVerification.into(),
            })
            .await
            .unwrap()
            .into_inner();
        let leaf = &entries.entries[0].leaf;
        let event: pb::Event = prost::Message::decode(leaf.as_slice()).unwrap();
        assert_eq!(event.message_id, env.message_id);
        assert_eq!(event.r#type, pb::EventType::Accepted as i32);
        let proof: Vec<tlog::Hash> = receipt
            .inclusion_proof
            .iter()
            .map(|h| h.as_slice().try_into().unwrap())
            .collect();
        tlog::verify_inclusion(
            receipt.log_index,
            cp.size,
            &tlog::leaf_hash(leaf),
            &proof,
            &cp.root,
        )
        .unwrap();
        // The same send again gives the identical receipt, evidence included.
        assert_eq!(
            centre.mailbox().send(env).await.unwrap().into_inner(),
            receipt
        );
        held.push(cp);
    }
    // Every checkpoint held is a prefix of the latest one.
    let latest = auditor
        .audit()
        .checkpoint(pb::CheckpointRequest {})
        .await
        .unwrap()
        .into_inner();
    let now = tlog::verify_checkpoint(&latest.checkpoint, &verifier).unwrap();
    for old in &held {
        let proof = auditor
            .audit()
            .consistency_proof(pb::ConsistencyProofRequest {
                old_size: old.size,
                new_size: now.size,
            })
            .await
            .unwrap()
            .into_inner();
        let proof: Vec<tlog::Hash> = proof
            .hashes
            .iter()
            .map(|h| h.as_slice().try_into().unwrap())
            .collect();
        tlog::verify_consistency(old.size, now.size, &proof, &old.root, &now.root).unwrap();
    }
    // Out-of-range requests are refused precisely.
    let err = auditor
        .audit()
        .inclusion_proof(pb::InclusionProofRequest {
            index: 0,
            tree_size: now.size + 1000,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    relay.stop().await;
}

#[tokio::test]
async fn queries_are_filtered_by_role_and_logged_with_their_purpose() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let _nas = relay.connect_as(&pki, "assistance/nas").await;
    let a = relay.connect_as(&pki, "centre/a").await;
    let b = relay.connect_as(&pki, "centre/b").await;
    let auditor = relay.connect_as(&pki, "auditor/dpo").await;
    let env_a = envelope(MessageKind::Referral, &["assistance/nas"], b"a");
    a.mailbox().send(env_a.clone()).await.unwrap();
    b.mailbox()
        .send(envelope(MessageKind::Referral, &["assistance/nas"], b"b"))
        .await
        .unwrap();

    let query = |code: pb::PurposeCode, note: &str| pb::QueryRequest {
        filter: Some(pb::QueryFilter {
            types: vec![pb::EventType::Accepted as i32],
            ..Default::default()
        }),
        purpose: note.into(),
        purpose_code: code.into(),
        page_size: 0,
        page_token: String::new(),
    };
    // A purpose code is required; a note alone is not one.
    let before = relay.store.event_count().unwrap();
    for bad in [
        query(pb::PurposeCode::Unspecified, ""),
        query(pb::PurposeCode::Unspecified, "own records"),
        // The note is short and one printable line: the log can never be erased.
        query(pb::PurposeCode::Supervision, &"x".repeat(121)),
        query(pb::PurposeCode::Supervision, "line\nbreak"),
        query(pb::PurposeCode::Supervision, "\u{1b}[2Jerase"),
    ] {
        assert_eq!(
            a.audit().query(bad).await.unwrap_err().code(),
            Code::InvalidArgument
        );
    }
    assert_eq!(
        relay.store.event_count().unwrap(),
        before,
        "a refused query is not logged"
    );
    // A centre sees only its own messages; the auditor sees all.
    let mine = a
        .audit()
        .query(query(pb::PurposeCode::DeliveryCheck, "own records"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.events.len(), 1);
    assert_eq!(mine.events[0].message_id, env_a.message_id);
    let all = auditor
        .audit()
        .query(query(pb::PurposeCode::Supervision, "annual review"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.events.len(), 2);
    // Raw entries are for auditors only.
    let err = a
        .audit()
        .entries(pb::EntriesRequest {
            start: 0,
            end: 1,
            purpose: "x".into(),
            purpose_code: pb::PurposeCode::Supervision.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // Each query is an event naming the querier and the purpose.
    let logged = auditor
        .audit()
        .query(pb::QueryRequest {
            filter: Some(pb::QueryFilter {
                types: vec![pb::EventType::AuditQuery as i32],
                ..Default::default()
            }),
            purpose: "check the query log".into(),
            purpose_code: pb::PurposeCode::Supervision.into(),
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let details: Vec<(String, String, i32)> = logged
        .events
        .iter()
        .map(|e| (e.actor.clone(), e.detail.clone(), e.purpose))
        .collect();
    let code = |c: pb::PurposeCode| i32::from(c);
    assert!(
        details.iter().any(|(a, d, p)| a == "centre/a"
            && d.contains("own records")
            && *p == code(pb::PurposeCode::DeliveryCheck)),
        "{details:?}"
    );
    assert!(
        details.iter().any(|(a, d, p)| a == "auditor/dpo"
            && d.contains("annual review")
            && *p == code(pb::PurposeCode::Supervision)),
        "{details:?}"
    );
    relay.stop().await;
}
