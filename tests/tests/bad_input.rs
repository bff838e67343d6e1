//! Bad input gets the exact gRPC code and a message that says what is wrong, and changes nothing.

use silta_proto::pb::{self, MessageKind};
use silta_tests::{TestPki, TestRelay, envelope, sha256};
use tonic::Code;

const NAS: &str = "assistance/nas";

#[tokio::test]
async fn each_bad_envelope_is_refused_precisely_and_stores_nothing() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| {
        c.limits.max_ciphertext_bytes = 1024;
        c.limits.max_recipients = 3;
    })
    .await;
    let _nas = relay.connect_as(&pki, NAS).await;
    let _nas2 = relay.connect_as(&pki, "assistance/b").await;
    let _nas3 = relay.connect_as(&pki, "assistance/c").await;
    let _nas4 = relay.connect_as(&pki, "assistance/d").await;
    let centre = relay.connect_as(&pki, "centre/joutseno").await;
    let good = || envelope(MessageKind::Referral, &[NAS], b"sealed");

    type Case = (
        &'static str,
        Box<dyn Fn(&mut pb::Envelope)>,
        Code,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "oversized",
            Box::new(|e| {
                e.ciphertext = vec![1; 1025].into();
                e.ciphertext_sha256 = sha256(&e.ciphertext);
            }),
            // Never fits: not RESOURCE_EXHAUSTED, which clients retry.
            Code::InvalidArgument,
            "limits.max_ciphertext_bytes",
        ),
        (
            "far beyond the transport limit",
            Box::new(|e| {
                e.ciphertext = vec![1; 3 * 1024 * 1024].into();
                e.ciphertext_sha256 = sha256(&e.ciphertext);
            }),
            // Never fits: not RESOURCE_EXHAUSTED, which clients retry.
            Code::InvalidArgument,
            "limits.max_ciphertext_bytes",
        ),
        (
            "too many recipients",
            Box::new(|e| {
                e.recipients = [
                    "assistance/nas",
                    "assistance/b",
                    "assistance/c",
                    "assistance/d",
                ]
                .map(String::from)
                .to_vec()
            }),
            Code::InvalidArgument,
            "limits.max_recipients",
        ),
        (
            "duplicate recipients",
            Box::new(|e| e.recipients = vec![NAS.into(), NAS.into()]),
            Code::InvalidArgument,
            "listed twice",
        ),
        (
            "no recipients",
            Box::new(|e| e.recipients.clear()),
            Code::InvalidArgument,
            "at least one recipient",
        ),
        (
            "malformed recipient",
            Box::new(|e| e.recipients = vec!["spiffe://silta.example/assistance/nas".into()]),
            Code::InvalidArgument,
            "recipient",
        ),
        (
            "huge malformed recipient (echo is clipped)",
            Box::new(|e| e.recipients = vec!["x".repeat(100_000)]),
            Code::InvalidArgument,
            "xxx...",
        ),
        (
            "unknown recipient",
            Box::new(|e| e.recipients = vec!["assistance/nobody".into()]),
            Code::NotFound,
            "unknown recipient assistance/nobody",
        ),
        (
            "empty ciphertext",
            Box::new(|e| {
                e.ciphertext.clear();
                e.ciphertext_sha256 = sha256(b"");
            }),
            Code::InvalidArgument,
            "ciphertext is empty",
        ),
        (
            "wrong digest",
            Box::new(|e| e.ciphertext_sha256 = sha256(b"other")),
            Code::InvalidArgument,
            "ciphertext_sha256",
        ),
        (
            "message id too short",
            Box::new(|e| e.message_id = vec![1; 15]),
            Code::InvalidArgument,
            "message_id",
        ),
        (
            "message id missing",
            Box::new(|e| e.message_id.clear()),
            Code::InvalidArgument,
            "message_id",
        ),
        (
            "nil message id",
            Box::new(|e| e.message_id = vec![0; 16]),
            Code::InvalidArgument,
            "message_id",
        ),
        (
            "case_ref wrong size",
            Box::new(|e| e.case_ref = vec![1; 3]),
            Code::InvalidArgument,
            "case_ref",
        ),
        (
            "no kind",
            Box::new(|e| e.kind = 0),
            Code::InvalidArgument,
            "kind",
        ),
        (
            "unknown kind",
            Box::new(|e| e.kind = 99),
            Code::InvalidArgument,
            "kind",
        ),
        (
            "no urgency",
            Box::new(|e| e.urgency = 0),
            Code::InvalidArgument,
            "urgency",
        ),
        (
            "no legal basis",
            Box::new(|e| e.legal_basis = 0),
            Code::InvalidArgument,
            "legal_basis",
        ),
        (
            "no creation time",
            Box::new(|e| e.created_at = None),
            Code::InvalidArgument,
            "created_at",
        ),
        (
            "bad in_reply_to",
            Box::new(|e| e.in_reply_to = vec![1; 5]),
            Code::InvalidArgument,
            "in_reply_to",
        ),
        (
            "sender as recipient",
            Box::new(|e| {
                e.kind = MessageKind::StatusUpdate.into();
                e.recipients = vec!["centre/joutseno".into()]
            }),
            Code::InvalidArgument,
            "sender itself",
        ),
    ];

    let before = relay.fingerprint();
    for (name, mutate, code, says) in &cases {
        let mut env = good();
        mutate(&mut env);
        let err = centre.mailbox().send(env).await.expect_err(name);
        assert_eq!(err.code(), *code, "{name}: {err:?}");
        assert!(
            err.message().contains(says),
            "{name}: message {:?} should mention {says:?}",
            err.message()
        );
        assert_eq!(relay.fingerprint(), before, "{name}: the store changed");
    }
    // The same good envelope still goes through afterwards.
    centre.mailbox().send(good()).await.unwrap();
    relay.stop().await;
}

#[tokio::test]
async fn a_full_mailbox_refuses_more_and_accepts_again_after_acknowledgement() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.limits.max_pending_items = 2).await;
    let (nas, keys) = relay.connect_with_keys(&pki, NAS).await;
    let centre = relay.connect_as(&pki, "centre/joutseno").await;
    let first = envelope(MessageKind::Referral, &[NAS], b"1");
    centre.mailbox().send(first.clone()).await.unwrap();
    centre
        .mailbox()
        .send(envelope(MessageKind::Referral, &[NAS], b"2"))
        .await
        .unwrap();
    let before = relay.fingerprint();
    let err = centre
        .mailbox()
        .send(envelope(MessageKind::Referral, &[NAS], b"3"))
        .await
        .unwrap_err();
    silta_tests::assert_passing(&err);
    assert!(
        err.message().contains("limits.max_pending_items"),
        "{err:?}"
    );
    assert_eq!(relay.fingerprint(), before);

    nas.mailbox()
        .ack(silta_tests::ack_of(&keys, &first))
        .await
        .unwrap();
    centre
        .mailbox()
        .send(envelope(MessageKind::Referral, &[NAS], b"3"))
        .await
        .unwrap();
    relay.stop().await;
}

#[tokio::test]
async fn bad_acknowledgements_are_refused_precisely() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (nas, keys) = relay.connect_with_keys(&pki, NAS).await;
    let centre = relay.connect_as(&pki, "centre/joutseno").await;
    let env = envelope(MessageKind::Referral, &[NAS], b"sealed");
    centre.mailbox().send(env.clone()).await.unwrap();
    let before = relay.fingerprint();

    // A correctly signed acknowledgement, then changed by `f`.
    let ack = |f: &dyn Fn(&mut pb::Acknowledgement)| {
        let Some(pb::ack_request::Target::Acknowledge(mut a)) =
            silta_tests::ack_of(&keys, &env).target
        else {
            unreachable!()
        };
        f(&mut a);
        pb::AckRequest {
            device_id: String::new(),
            target: Some(pb::ack_request::Target::Acknowledge(a)),
        }
    };
    let never_sent = envelope(MessageKind::Referral, &[NAS], b"never sent");
    let reject = |reason: pb::RejectionReason, detail: &str| pb::AckRequest {
        device_id: String::new(),
        target: Some(pb::ack_request::Target::Reject(pb::Rejection {
            message_id: env.message_id.clone(),
            reason: reason.into(),
            detail: detail.into(),
        })),
    };
    let cases: Vec<(&str, pb::AckRequest, Code)> = vec![
        (
            "empty request",
            pb::AckRequest::default(),
            Code::InvalidArgument,
        ),
        (
            "wrong digest",
            ack(&|a| a.ciphertext_sha256 = sha256(b"x")),
            Code::InvalidArgument,
        ),
        (
            "short signature",
            ack(&|a| a.signature = vec![1; 10]),
            Code::InvalidArgument,
        ),
        (
            "bad id",
            ack(&|a| a.message_id = vec![1; 4]),
            Code::InvalidArgument,
        ),
        (
            "unknown message",
            silta_tests::ack_of(&keys, &never_sent),
            Code::NotFound,
        ),
        (
            "forged (all-zero) signature",
            ack(&|a| a.signature = vec![0; 64]),
            Code::InvalidArgument,
        ),
        (
            "signature over another message",
            ack(&|a| a.message_id = never_sent.message_id.clone()),
            Code::InvalidArgument,
        ),
        (
            "signer is not a device id",
            ack(&|a| a.signer_key = "Desk 1\u{1b}[2J".into()),
            Code::InvalidArgument,
        ),
        (
            "signer is not the calling desk (nor a published device)",
            ack(&|a| a.signer_key = "desk-9".into()),
            Code::PermissionDenied,
        ),
        (
            "rejection detail with a line break",
            reject(pb::RejectionReason::Other, "bad\nsignature"),
            Code::InvalidArgument,
        ),
        (
            "rejection without reason",
            reject(pb::RejectionReason::Unspecified, ""),
            Code::InvalidArgument,
        ),
        (
            "rejection detail too long",
            reject(pb::RejectionReason::Other, &"x".repeat(513)),
            Code::InvalidArgument,
        ),
        (
            "status item that does not exist",
            pb::AckRequest {
                device_id: String::new(),
                target: Some(pb::ack_request::Target::StatusSeq(999)),
            },
            Code::NotFound,
        ),
        (
            "envelope item confirmed as status",
            pb::AckRequest {
                device_id: String::new(),
                target: Some(pb::ack_request::Target::StatusSeq(1)),
            },
            Code::InvalidArgument,
        ),
    ];
    for (name, req, code) in cases {
        let err = nas.mailbox().ack(req).await.expect_err(name);
        assert_eq!(err.code(), code, "{name}: {err:?}");
        assert_eq!(relay.fingerprint(), before, "{name}: the store changed");
    }
    // The genuine acknowledgement is accepted after all that.
    nas.mailbox().ack(ack(&|_| {})).await.unwrap();
    // Status with a malformed id.
    let err = centre
        .mailbox()
        .status(pb::StatusRequest { message_id: vec![] })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    relay.stop().await;
}

#[tokio::test]
async fn a_recipient_without_published_keys_cannot_acknowledge() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let nas = relay.connect_as(&pki, NAS).await;
    let centre = relay.connect_as(&pki, "centre/joutseno").await;
    let env = envelope(MessageKind::Referral, &[NAS], b"sealed");
    centre.mailbox().send(env.clone()).await.unwrap();
    let before = relay.fingerprint();
    // Signed with a key nobody can look up: no evidence, so no acknowledgement.
    let unpublished = silta_client::keys::DeviceKeys::generate("test").unwrap();
    let err = nas
        .mailbox()
        .ack(silta_tests::ack_of(&unpublished, &env))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("publish"), "{}", err.message());
    assert_eq!(relay.fingerprint(), before);
    // Rejecting needs no keys (a recipient that cannot open a message must be able to say so).
    nas.mailbox()
        .ack(pb::AckRequest {
            device_id: String::new(),
            target: Some(pb::ack_request::Target::Reject(pb::Rejection {
                message_id: env.message_id.clone(),
                reason: pb::RejectionReason::CannotDecrypt.into(),
                detail: "no device keys".into(),
            })),
        })
        .await
        .unwrap();
    relay.stop().await;
}
