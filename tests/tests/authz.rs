//! Authorization: every forbidden combination is PERMISSION_DENIED, and nobody reads another
//! principal's mailbox or messages. The expected policy is written out here from DESIGN §5,
//! independently of the relay's own table.

use std::time::Duration;

use silta_client::Connection;
use silta_proto::pb::{self, MessageKind};
use silta_tests::{TestPki, TestRelay, ack_of, envelope, envelope_of, take_items};
use tokio_stream::StreamExt as _;
use tonic::Code;

const ROLES: [&str; 4] = ["centre", "assistance", "auditor", "admin"];

/// DESIGN §5, "may send": centre → assistance.
const CENTRE_TO_ASSISTANCE: &[MessageKind] = &[
    MessageKind::AnonymousConsultation,
    MessageKind::Referral,
    MessageKind::ConsentRecord,
    MessageKind::InformationResponse,
    MessageKind::MeetingReply,
    MessageKind::StatusUpdate,
    MessageKind::ConsentWithdrawal,
    MessageKind::ServiceAgreementAnswer,
];

/// DESIGN §5, "may send": assistance → centre.
const ASSISTANCE_TO_CENTRE: &[MessageKind] = &[
    MessageKind::ConsultationReply,
    MessageKind::EmergencyReferralConfirmation,
    MessageKind::InformationRequest,
    MessageKind::AdmissionDecisionNotice,
    MessageKind::MeetingProposal,
    MessageKind::MeetingConfirmation,
    MessageKind::MeetingCancellation,
    MessageKind::JointAssessmentRecord,
    MessageKind::ServiceAgreement,
    MessageKind::StatusUpdate,
    MessageKind::CaseTransfer,
    MessageKind::ExitNotice,
    MessageKind::ConsentWithdrawal,
];

/// Which roles may call each RPC.
fn expected_roles(rpc: &str) -> &'static [&'static str] {
    match rpc {
        "Send" | "Subscribe" | "Ack" | "Status" | "PublishKeys" => &["centre", "assistance"],
        "GetKeys" | "Checkpoint" | "InclusionProof" | "ConsistencyProof" | "Query" => {
            &["centre", "assistance", "auditor"]
        }
        "Entries" => &["auditor"],
        "ListPrincipals" | "Expiring" | "DisablePrincipal" | "EnablePrincipal"
        | "RetireDevices" => &["admin"],
        "Health" | "Reflection" => &["centre", "assistance", "auditor", "admin"],
        other => panic!("unknown rpc {other}"),
    }
}

const RPCS: [&str; 18] = [
    "Send",
    "Subscribe",
    "Ack",
    "Status",
    "PublishKeys",
    "GetKeys",
    "Checkpoint",
    "Entries",
    "InclusionProof",
    "ConsistencyProof",
    "Query",
    "ListPrincipals",
    "Expiring",
    "DisablePrincipal",
    "EnablePrincipal",
    "RetireDevices",
    "Health",
    "Reflection",
];

/// Calls `rpc` with an empty request; returns the status code (Ok for success).
async fn call(conn: &Connection, rpc: &str) -> Code {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest,
    };
    fn code<T>(r: Result<T, tonic::Status>) -> Code {
        r.map(|_| Code::Ok).unwrap_or_else(|s| s.code())
    }
    let (mut mb, mut dir, mut audit) = (conn.mailbox(), conn.directory(), conn.audit());
    match rpc {
        "Send" => code(mb.send(pb::Envelope::default()).await),
        "Subscribe" => code(mb.subscribe(pb::SubscribeRequest::default()).await),
        "Ack" => code(mb.ack(pb::AckRequest::default()).await),
        "Status" => code(mb.status(pb::StatusRequest::default()).await),
        "PublishKeys" => code(dir.publish_keys(pb::KeyBundle::default()).await),
        "GetKeys" => code(dir.get_keys(pb::GetKeysRequest::default()).await),
        "Checkpoint" => code(audit.checkpoint(pb::CheckpointRequest::default()).await),
        "Entries" => code(audit.entries(pb::EntriesRequest::default()).await),
        "InclusionProof" => code(
            audit
                .inclusion_proof(pb::InclusionProofRequest::default())
                .await,
        ),
        "ConsistencyProof" => code(
            audit
                .consistency_proof(pb::ConsistencyProofRequest::default())
                .await,
        ),
        "Query" => code(audit.query(pb::QueryRequest::default()).await),
        "ListPrincipals" => code(
            conn.admin()
                .list_principals(pb::ListPrincipalsRequest::default())
                .await,
        ),
        "Expiring" => code(conn.admin().expiring(pb::ExpiringRequest::default()).await),
        "DisablePrincipal" => code(
            conn.admin()
                .disable_principal(pb::DisablePrincipalRequest::default())
                .await,
        ),
        "EnablePrincipal" => code(
            conn.admin()
                .enable_principal(pb::EnablePrincipalRequest::default())
                .await,
        ),
        "RetireDevices" => code(
            conn.admin()
                .retire_devices(pb::RetireDevicesRequest::default())
                .await,
        ),
        "Health" => code(
            conn.health()
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await,
        ),
        "Reflection" => {
            let req = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let mut client = ServerReflectionClient::new(conn.channel());
            match client
                .server_reflection_info(tokio_stream::iter([req]))
                .await
            {
                Err(s) => s.code(),
                Ok(r) => match r.into_inner().next().await {
                    Some(Ok(_)) => Code::Ok,
                    Some(Err(s)) => s.code(),
                    None => Code::Unknown,
                },
            }
        }
        other => panic!("unknown rpc {other}"),
    }
}

#[tokio::test]
async fn every_role_and_rpc_combination_follows_the_policy() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    for role in ROLES {
        let conn = relay.connect_as(&pki, &format!("{role}/someone")).await;
        for rpc in RPCS {
            let got = call(&conn, rpc).await;
            if expected_roles(rpc).contains(&role) {
                assert_ne!(
                    got,
                    Code::PermissionDenied,
                    "{role} must be allowed to call {rpc}"
                );
            } else {
                assert_eq!(got, Code::PermissionDenied, "{role} must not call {rpc}");
            }
        }
    }
    relay.stop().await;
}

#[tokio::test]
async fn every_forbidden_sender_kind_recipient_combination_is_denied() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let mut conns = Vec::new();
    for role in ROLES {
        conns.push((role, relay.connect_as(&pki, &format!("{role}/x")).await));
        relay.connect_as(&pki, &format!("{role}/y")).await;
    }
    let mut allowed = 0;
    for (sender, conn) in &conns {
        for recipient in ROLES {
            for k in 1..=21 {
                let kind = MessageKind::try_from(k).unwrap();
                let ok = match (*sender, recipient) {
                    ("centre", "assistance") => CENTRE_TO_ASSISTANCE.contains(&kind),
                    ("assistance", "centre") => ASSISTANCE_TO_CENTRE.contains(&kind),
                    _ => false,
                };
                let to = format!("{recipient}/y");
                let env = envelope(kind, &[&to], b"sealed");
                let result = conn.mailbox().send(env).await;
                if ok {
                    allowed += 1;
                    result.unwrap_or_else(|e| panic!("{sender} -> {recipient} {kind:?}: {e:?}"));
                } else {
                    let err = result
                        .expect_err(&format!("{sender} -> {recipient} {kind:?} was accepted"));
                    // A principal-internal kind (case claim, access-log share) to anyone but
                    // the sender itself is a malformed envelope, refused before the policy;
                    // an auditor or admin may not call Send at all.
                    let code = if silta_proto::policy::is_internal(kind)
                        && matches!(*sender, "centre" | "assistance")
                    {
                        Code::InvalidArgument
                    } else {
                        Code::PermissionDenied
                    };
                    assert_eq!(
                        err.code(),
                        code,
                        "{sender} -> {recipient} {kind:?}: {err:?}"
                    );
                }
            }
        }
    }
    assert_eq!(
        allowed,
        CENTRE_TO_ASSISTANCE.len() + ASSISTANCE_TO_CENTRE.len()
    );

    // The principal-internal kinds go to the sender's own principal only: allowed for a centre
    // and the Assistance System (with a case reference and legal basis INTERNAL), refused for
    // auditors and admins (who send nothing), and never together with another recipient.
    for (sender, conn) in &conns {
        for kind in silta_proto::policy::INTERNAL {
            let me = format!("{sender}/x");
            let mut env = envelope(kind, &[&me], b"sealed");
            env.legal_basis = silta_proto::pb::LegalBasis::Internal as i32;
            let result = conn.mailbox().send(env).await;
            if matches!(*sender, "centre" | "assistance") {
                result.unwrap_or_else(|e| panic!("{sender} -> itself {kind:?}: {e:?}"));
                let mut both = envelope(kind, &[&me, &format!("{sender}/y")], b"sealed");
                both.legal_basis = silta_proto::pb::LegalBasis::Internal as i32;
                let err = conn.mailbox().send(both).await.unwrap_err();
                assert_eq!(
                    err.code(),
                    Code::InvalidArgument,
                    "{sender} {kind:?}: {err:?}"
                );
            } else {
                let err = result.expect_err(&format!("{sender} -> itself {kind:?} was accepted"));
                assert_eq!(
                    err.code(),
                    Code::PermissionDenied,
                    "{sender} {kind:?}: {err:?}"
                );
            }
        }
    }

    // One forbidden recipient among allowed ones denies the whole message and stores nothing.
    let centre = &conns[0].1;
    let env = envelope(
        MessageKind::Referral,
        &["assistance/y", "centre/other"],
        b"sealed",
    );
    let _other = relay.connect_as(&pki, "centre/other").await;
    let before_other = relay.fingerprint();
    assert_eq!(
        centre.mailbox().send(env).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(relay.fingerprint(), before_other);
    relay.stop().await;
}

#[tokio::test]
async fn nobody_reads_another_principals_mailbox_or_messages() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let nas = relay.connect_as(&pki, "assistance/nas").await;
    let (nas2, keys) = relay.connect_with_keys(&pki, "assistance/branch").await;
    let a = relay.connect_as(&pki, "centre/a").await;
    let b = relay.connect_as(&pki, "centre/b").await;

    let to_nas = envelope(MessageKind::Referral, &["assistance/nas"], b"for nas only");
    a.mailbox().send(to_nas.clone()).await.unwrap();

    // Another assistance principal's subscription does not see it.
    let mut other = nas2
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        take_items(&mut other, 1, Duration::from_millis(300))
            .await
            .is_empty()
    );
    // ...and cannot acknowledge or reject it.
    assert_eq!(
        nas2.mailbox()
            .ack(ack_of(&keys, &to_nas))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );

    // The recipient gets it; centre b gets nothing, not even status events of a's message.
    let mut mine = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let items = take_items(&mut mine, 1, Duration::from_secs(10)).await;
    assert_eq!(
        envelope_of(&items[0])
            .unwrap()
            .envelope
            .as_ref()
            .unwrap()
            .message_id,
        to_nas.message_id
    );
    let mut bs = b
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        take_items(&mut bs, 1, Duration::from_millis(300))
            .await
            .is_empty()
    );

    // Status of someone else's message looks exactly like a message that does not exist.
    let status = pb::StatusRequest {
        message_id: to_nas.message_id.clone(),
    };
    let err = b.mailbox().status(status.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        nas.mailbox().status(status).await.unwrap_err().code(),
        Code::NotFound
    );
    let missing_id = uuid::Uuid::now_v7();
    let missing = pb::StatusRequest {
        message_id: missing_id.as_bytes().to_vec(),
    };
    let err2 = b.mailbox().status(missing).await.unwrap_err();
    assert_eq!(err2.code(), Code::NotFound);
    let existing_id = uuid::Uuid::from_slice(&to_nas.message_id).unwrap();
    assert_eq!(
        err.message().replace(&existing_id.to_string(), "ID"),
        err2.message().replace(&missing_id.to_string(), "ID"),
    );
    relay.stop().await;
}

#[tokio::test]
async fn reflection_can_be_switched_off() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.server.reflection = false).await;
    let conn = relay.connect_as(&pki, "centre/a").await;
    assert_eq!(call(&conn, "Reflection").await, Code::PermissionDenied);
    assert_eq!(call(&conn, "Health").await, Code::Ok);
    relay.stop().await;
}
