//! Cases bound at the relay (issue 12): who takes part in a case is learned from the envelopes
//! the relay accepts (metadata only), a CaseTransfer moves the case, a consent withdrawal stops
//! consent-based sends, the legal basis each kind may name, and `Envelope.resend_of`. Real relay,
//! real TLS on loopback, real sled; the CLI as the `silta` binary.

use std::{path::Path, process::Command, time::Duration};

use silta_proto::pb::{self, EventType, LegalBasis, MessageKind};
use silta_tests::{
    TestClock, TestPki, TestRelay, TestUser, ack_of, case_ref, envelope, envelope_of, status_of,
    take_items,
};
use tonic::Code;

const NAS: &str = "assistance/nas";
const OLD: &str = "centre/old-operator";
const NEW: &str = "centre/new-operator";
const OTHER: &str = "centre/elsewhere";
const WAIT: Duration = Duration::from_secs(10);

/// An envelope of `kind` in `case` on legal basis `basis`.
fn in_case(kind: MessageKind, case: &[u8], basis: LegalBasis, to: &[&str]) -> pb::Envelope {
    let mut env = envelope(kind, to, b"opaque to the relay");
    env.case_ref = case.to_vec();
    env.legal_basis = basis.into();
    env
}

/// Sends and returns the gRPC code (`Ok` when accepted) and the message.
async fn send(conn: &silta_client::Connection, env: pb::Envelope) -> (Code, String) {
    match conn.mailbox().send(env).await {
        Ok(_) => (Code::Ok, String::new()),
        Err(s) => (s.code(), s.message().to_owned()),
    }
}

fn of_type(relay: &TestRelay, t: EventType) -> Vec<pb::Event> {
    relay
        .events()
        .into_iter()
        .filter(|e| e.r#type == t as i32)
        .collect()
}

/// The user's report: after the Assistance System's CaseTransfer, the old centre could still
/// send in the case. Now its sends are refused, so are sends to it, the new centre takes its
/// place, and all of it is in the log an auditor reads.
#[tokio::test]
async fn after_a_case_transfer_the_old_centre_is_out_and_the_new_one_in() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (nas, _) = relay.connect_with_keys(&pki, NAS).await;
    let (old, _) = relay.connect_with_keys(&pki, OLD).await;
    let (new, _) = relay.connect_with_keys(&pki, NEW).await;
    let case = case_ref();
    let c = |kind, to: &[&str]| in_case(kind, &case, LegalBasis::Consent, to);

    assert_eq!(
        send(&old, c(MessageKind::Referral, &[NAS])).await.0,
        Code::Ok
    );
    assert_eq!(
        send(&nas, c(MessageKind::InformationRequest, &[OLD]))
            .await
            .0,
        Code::Ok
    );
    let transfer = c(MessageKind::CaseTransfer, &[OLD, NEW]);
    assert_eq!(send(&nas, transfer.clone()).await.0, Code::Ok);

    // The old centre's send in the case: refused, nothing stored.
    let late = c(MessageKind::StatusUpdate, &[NAS]);
    let (code, message) = send(&old, late.clone()).await;
    assert_eq!(code, Code::PermissionDenied, "{message}");
    assert!(
        message.contains("left case") && message.contains("CaseTransfer"),
        "{message}"
    );
    assert!(relay.store.message(&late.message_id).unwrap().is_none());
    // Nor does it receive the case's messages any more.
    let (code, message) = send(&nas, c(MessageKind::StatusUpdate, &[OLD])).await;
    assert_eq!(code, Code::PermissionDenied, "{message}");
    assert!(message.contains("no longer receives"), "{message}");
    // Outside the case the old centre is an ordinary centre.
    assert_eq!(
        send(&old, envelope(MessageKind::Referral, &[NAS], b"x"))
            .await
            .0,
        Code::Ok
    );

    // The new centre sends and receives in the case.
    assert_eq!(
        send(&new, c(MessageKind::StatusUpdate, &[NAS])).await.0,
        Code::Ok
    );
    let request = c(MessageKind::InformationRequest, &[NEW]);
    assert_eq!(send(&nas, request.clone()).await.0, Code::Ok);
    let mut stream = new
        .mailbox()
        .subscribe(pb::SubscribeRequest {
            after_seq: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let items = take_items(&mut stream, 2, WAIT).await;
    let got: Vec<_> = items
        .iter()
        .filter_map(envelope_of)
        .map(|d| d.envelope.as_ref().unwrap().message_id.clone())
        .collect();
    assert_eq!(
        got,
        [transfer.message_id.clone(), request.message_id.clone()]
    );

    // The record at the relay: who is in, who left.
    let record = relay.store.case(&case).unwrap().expect("a case record");
    assert_eq!(record.current().collect::<Vec<_>>(), [NAS, NEW]);
    assert_eq!(record.left().collect::<Vec<_>>(), [OLD]);

    // CASE_MOVED right after the transfer's ACCEPTED, and the refusal, as an auditor reads them.
    let auditor = relay.connect_as(&pki, "auditor/dpo").await;
    let events = auditor
        .audit()
        .query(pb::QueryRequest {
            filter: Some(pb::QueryFilter {
                case_ref: case.clone(),
                ..Default::default()
            }),
            purpose: String::new(),
            purpose_code: pb::PurposeCode::Supervision.into(),
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let moved: Vec<_> = events
        .iter()
        .filter(|e| e.r#type == EventType::CaseMoved as i32)
        .collect();
    assert_eq!(moved.len(), 1, "{events:#?}");
    assert_eq!(moved[0].actor, NAS);
    assert_eq!(moved[0].message_id, transfer.message_id);
    assert_eq!(moved[0].recipients, [NEW]);
    assert_eq!(moved[0].detail, format!("left the case: {OLD}"));
    let accepted = events
        .iter()
        .find(|e| e.r#type == EventType::Accepted as i32 && e.message_id == transfer.message_id)
        .unwrap();
    assert_eq!(moved[0].index, accepted.index + 1, "same transaction");
    let refused: Vec<_> = events
        .iter()
        .filter(|e| e.r#type == EventType::SendRefused as i32)
        .collect();
    assert_eq!(refused.len(), 2, "{events:#?}");
    assert_eq!(refused[0].actor, OLD);
    assert_eq!(refused[0].kind, MessageKind::StatusUpdate as i32);
    assert_eq!(refused[0].detail, "sender left the case by a CaseTransfer");
    assert!(refused[0].message_id.is_empty() && refused[0].ciphertext_sha256.is_empty());
    assert_eq!(refused[1].actor, NAS);
    assert_eq!(
        refused[1].detail,
        "recipient left the case by a CaseTransfer"
    );

    // What still waits for the old centre in the case: the transfer itself only (the
    // InformationRequest it never acknowledged was reported undeliverable, see below).
    let waiting =
        silta_relay::cases::pending_in_case(&relay.store, &case, &OLD.parse().unwrap()).unwrap();
    assert_eq!(waiting, std::slice::from_ref(&transfer.message_id));
    relay.stop().await;
}

/// A centre that left a case by a CaseTransfer no longer receives the case's messages, the ones
/// already waiting in its mailbox included: a message it was delivered but never acknowledged and
/// one it never fetched are reported to their sender as UNDELIVERABLE (CASE_MOVED), leave its
/// mailbox and its counters, can no longer be acknowledged, and their ciphertext is purged; the
/// CaseTransfer itself still reaches it, as the Assistance System's notice.
#[tokio::test]
async fn a_case_transfer_withdraws_what_waits_for_the_old_centre() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| {
        c.retention.purge_after_final_s = 0;
        c.retention.sweep_interval_ms = 50;
    })
    .await;
    let (nas, _) = relay.connect_with_keys(&pki, NAS).await;
    let (old, old_keys) = relay.connect_with_keys(&pki, OLD).await;
    let (_new, _) = relay.connect_with_keys(&pki, NEW).await;
    let case = case_ref();
    let c = |kind, to: &[&str]| in_case(kind, &case, LegalBasis::Consent, to);
    let old_principal = OLD.parse().unwrap();
    let pending = |relay: &TestRelay| {
        relay
            .store
            .principal(&old_principal)
            .unwrap()
            .unwrap()
            .pending
    };

    assert_eq!(
        send(&old, c(MessageKind::Referral, &[NAS])).await.0,
        Code::Ok
    );
    // One message the old centre fetched (DELIVERED) and never acknowledged ...
    let fetched = c(MessageKind::InformationRequest, &[OLD]);
    assert_eq!(send(&nas, fetched.clone()).await.0, Code::Ok);
    let mut first = old
        .mailbox()
        .subscribe(pb::SubscribeRequest {
            after_seq: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let got = take_items(&mut first, 1, WAIT).await;
    assert_eq!(
        envelope_of(&got[0])
            .unwrap()
            .envelope
            .as_ref()
            .unwrap()
            .message_id,
        fetched.message_id
    );
    drop(first);
    // ... one it never fetched (PENDING), and one outside the case, which stays.
    let waiting = c(MessageKind::MeetingProposal, &[OLD]);
    assert_eq!(send(&nas, waiting.clone()).await.0, Code::Ok);
    let unrelated = envelope(MessageKind::StatusUpdate, &[OLD], b"another case");
    assert_eq!(send(&nas, unrelated.clone()).await.0, Code::Ok);
    assert_eq!(pending(&relay), 3);

    let transfer = c(MessageKind::CaseTransfer, &[OLD, NEW]);
    assert_eq!(send(&nas, transfer.clone()).await.0, Code::Ok);

    // The sender sees both copies UNDELIVERABLE for CASE_MOVED: Mailbox.Status ...
    for msg in [&fetched, &waiting] {
        let status = nas
            .mailbox()
            .status(pb::StatusRequest {
                message_id: msg.message_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let copy = &status.recipients[0];
        assert_eq!(copy.recipient, OLD);
        assert_eq!(copy.state, pb::DeliveryState::Undeliverable as i32);
        assert_eq!(
            copy.undeliverable_reason,
            pb::UndeliverableReason::CaseMoved as i32
        );
    }
    // ... a status item in its mailbox ...
    let mut nas_stream = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest {
            after_seq: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // The referral, DELIVERED of `fetched`, then the two UNDELIVERABLE items.
    let items = take_items(&mut nas_stream, 4, WAIT).await;
    let undeliverable: Vec<_> = items
        .iter()
        .filter_map(status_of)
        .filter(|s| s.state == pb::DeliveryState::Undeliverable as i32)
        .map(|s| {
            assert_eq!(s.recipient, OLD);
            assert_eq!(
                s.undeliverable_reason,
                pb::UndeliverableReason::CaseMoved as i32
            );
            s.message_id.clone()
        })
        .collect();
    assert_eq!(
        undeliverable,
        [fetched.message_id.clone(), waiting.message_id.clone()],
        "{items:#?}"
    );
    // ... and an UNDELIVERABLE event each, after CASE_MOVED.
    let moved = of_type(&relay, EventType::CaseMoved);
    let events = of_type(&relay, EventType::Undeliverable);
    assert_eq!(events.len(), 2, "{events:#?}");
    for (event, msg) in events.iter().zip([&fetched, &waiting]) {
        assert_eq!(event.message_id, msg.message_id);
        assert_eq!(event.recipients, [OLD]);
        assert_eq!(
            event.undeliverable_reason,
            pb::UndeliverableReason::CaseMoved as i32
        );
        assert_eq!(event.actor, "", "the relay, by the case rule");
        assert!(event.index > moved[0].index);
    }

    // The old centre's stream hands out the transfer notice and the message outside the case,
    // nothing else.
    let mut stream = old
        .mailbox()
        .subscribe(pb::SubscribeRequest {
            after_seq: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let items = take_items(&mut stream, 3, Duration::from_secs(2)).await;
    let ids: Vec<_> = items
        .iter()
        .filter_map(envelope_of)
        .map(|d| d.envelope.as_ref().unwrap().message_id.clone())
        .collect();
    assert_eq!(
        ids,
        [unrelated.message_id.clone(), transfer.message_id.clone()],
        "{items:#?}"
    );
    // Its acknowledgement of a withdrawn message is refused, and changes nothing.
    for msg in [&fetched, &waiting] {
        let refused = old.mailbox().ack(ack_of(&old_keys, msg)).await.unwrap_err();
        assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
        assert!(
            refused.message().contains("CASE_MOVED"),
            "{}",
            refused.message()
        );
    }
    // Counters: what is left for it is the transfer and the other message.
    assert_eq!(pending(&relay), 2);
    old.mailbox()
        .ack(ack_of(&old_keys, &transfer))
        .await
        .unwrap();
    old.mailbox()
        .ack(ack_of(&old_keys, &unrelated))
        .await
        .unwrap();
    assert_eq!(pending(&relay), 0);

    // Every copy of the withdrawn messages is final: their ciphertext goes (bounded wait).
    let deadline = tokio::time::Instant::now() + WAIT;
    while [&fetched, &waiting]
        .iter()
        .any(|m| relay.store.ciphertext(&m.message_id).unwrap().is_some())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "ciphertext not purged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_withdrawal_finished(&relay, &case);
    relay.stop().await;
}

#[tokio::test]
async fn a_centre_outside_a_case_can_neither_write_in_it_nor_be_written_to() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (nas, _) = relay.connect_with_keys(&pki, NAS).await;
    let (old, _) = relay.connect_with_keys(&pki, OLD).await;
    let (other, _) = relay.connect_with_keys(&pki, OTHER).await;
    let case = case_ref();
    let c = |kind, to: &[&str]| in_case(kind, &case, LegalBasis::Consent, to);
    assert_eq!(
        send(&old, c(MessageKind::Referral, &[NAS])).await.0,
        Code::Ok
    );

    let (code, message) = send(&other, c(MessageKind::StatusUpdate, &[NAS])).await;
    assert_eq!(code, Code::PermissionDenied, "{message}");
    assert!(message.contains("does not take part"), "{message}");
    // The Assistance System cannot pull a centre in except by a CaseTransfer.
    let (code, message) = send(&nas, c(MessageKind::StatusUpdate, &[OTHER])).await;
    assert_eq!(code, Code::PermissionDenied, "{message}");
    // A CaseTransfer naming no centre that is not yet in the case moves nothing.
    let (code, message) = send(&nas, c(MessageKind::CaseTransfer, &[OLD])).await;
    assert_eq!(code, Code::FailedPrecondition, "{message}");
    assert!(
        message.contains("at least one centre not yet in case"),
        "{message}"
    );
    assert!(of_type(&relay, EventType::CaseMoved).is_empty());
    assert_eq!(
        send(&old, c(MessageKind::StatusUpdate, &[NAS])).await.0,
        Code::Ok
    );
    let refused = of_type(&relay, EventType::SendRefused);
    assert_eq!(
        refused
            .iter()
            .map(|e| e.detail.as_str())
            .collect::<Vec<_>>(),
        // The transfer's refusal is the Assistance System's second in this case within the
        // minute: answered, not logged (the bound).
        [
            "sender does not take part in the case",
            "recipient does not take part in the case",
        ]
    );
    // A zero case reference binds nothing: anyone sends "before a case exists".
    for conn in [&old, &other] {
        let mut env = envelope(MessageKind::AnonymousConsultation, &[NAS], b"x");
        env.case_ref = vec![0; 16];
        assert_eq!(send(conn, env).await.0, Code::Ok);
    }
    assert!(relay.store.case(&[0; 16]).unwrap().is_none());
    relay.stop().await;
}

/// A refused sender cannot grow the never-erased log: one SEND_REFUSED per sender and case per
/// minute (by the relay's clock), and its refused sends cost it its byte rate as any send.
#[tokio::test]
async fn refusals_are_logged_at_most_once_a_minute_and_cost_rate_tokens() {
    let pki = TestPki::new();
    let clock = TestClock::new();
    let relay = TestRelay::start_clocked(&pki, &clock, |c| {
        c.limits.max_ciphertext_bytes = 1000;
        c.limits.send_bytes_per_second = 1;
    })
    .await;
    let (_nas, _) = relay.connect_with_keys(&pki, NAS).await;
    let (old, _) = relay.connect_with_keys(&pki, OLD).await;
    let other = relay.connect_as(&pki, OTHER).await;
    let case = case_ref();
    let small = |from_case: &[u8]| {
        let mut env = envelope(MessageKind::StatusUpdate, &[NAS], &[1; 10]);
        env.case_ref = from_case.to_vec();
        env
    };
    assert_eq!(send(&old, small(&case)).await.0, Code::Ok);
    for _ in 0..5 {
        assert_eq!(send(&other, small(&case)).await.0, Code::PermissionDenied);
    }
    assert_eq!(of_type(&relay, EventType::SendRefused).len(), 1);
    clock.advance(Duration::from_secs(61));
    assert_eq!(send(&other, small(&case)).await.0, Code::PermissionDenied);
    assert_eq!(of_type(&relay, EventType::SendRefused).len(), 2);

    // The burst is 2000 bytes (twice the largest ciphertext) at 1 byte a second: refused sends
    // of 900 bytes use it up like accepted ones.
    let mut big = envelope(MessageKind::StatusUpdate, &[NAS], &[2; 900]);
    big.case_ref = case.clone();
    let mut codes = Vec::new();
    for _ in 0..3 {
        let mut env = big.clone();
        env.message_id = uuid::Uuid::now_v7().as_bytes().to_vec();
        codes.push(send(&other, env).await.0);
    }
    assert_eq!(
        codes,
        [
            Code::PermissionDenied,
            Code::PermissionDenied,
            Code::ResourceExhausted
        ]
    );
    relay.stop().await;
}

/// After a consent withdrawal, sends on legal basis consent stop in the case; bases that need no
/// consent go on; a new consent record restores it.
#[tokio::test]
async fn consent_withdrawal_stops_consent_based_sends_until_a_new_consent_record() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (nas, _) = relay.connect_with_keys(&pki, NAS).await;
    let (old, _) = relay.connect_with_keys(&pki, OLD).await;
    let case = case_ref();
    let c = |kind, basis, to: &[&str]| in_case(kind, &case, basis, to);
    use LegalBasis::*;
    assert_eq!(
        send(&old, c(MessageKind::Referral, Consent, &[NAS]))
            .await
            .0,
        Code::Ok
    );
    assert_eq!(
        send(&old, c(MessageKind::ConsentWithdrawal, Consent, &[NAS]))
            .await
            .0,
        Code::Ok
    );
    let (code, message) = send(&old, c(MessageKind::Referral, Consent, &[NAS])).await;
    assert_eq!(code, Code::FailedPrecondition, "{message}");
    assert!(message.contains("consent was withdrawn"), "{message}");
    let (code, _) = send(&nas, c(MessageKind::MeetingProposal, Consent, &[OLD])).await;
    assert_eq!(code, Code::FailedPrecondition);
    // Bases that are not consent stay allowed.
    assert_eq!(
        send(&old, c(MessageKind::Referral, AcuteDanger, &[NAS]))
            .await
            .0,
        Code::Ok
    );
    assert_eq!(
        send(
            &nas,
            c(
                MessageKind::InformationRequest,
                StatutoryInformationRight,
                &[OLD]
            )
        )
        .await
        .0,
        Code::Ok
    );
    let record = relay.store.case(&case).unwrap().unwrap();
    assert!(record.consent_withdrawn);
    // Fresh consent.
    assert_eq!(
        send(&old, c(MessageKind::ConsentRecord, Consent, &[NAS]))
            .await
            .0,
        Code::Ok
    );
    assert_eq!(
        send(&old, c(MessageKind::Referral, Consent, &[NAS]))
            .await
            .0,
        Code::Ok
    );
    assert!(!relay.store.case(&case).unwrap().unwrap().consent_withdrawn);
    let refused = of_type(&relay, EventType::SendRefused);
    assert_eq!(refused.len(), 2);
    assert!(
        refused
            .iter()
            .all(|e| e.detail == "consent withdrawn in the case")
    );
    relay.stop().await;
}

/// An anonymous consultation identifies nobody: its basis is no-personal-data, never consent.
/// The relay refuses the raw envelope; the client library refuses before it looks anything up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consultation_on_basis_consent_is_refused_by_the_relay_and_the_client() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (_nas, _) = relay.connect_with_keys(&pki, NAS).await;
    let centre = relay.connect_as(&pki, OLD).await;
    let mut env = envelope(MessageKind::AnonymousConsultation, &[NAS], b"x");
    assert_eq!(env.legal_basis, LegalBasis::NoPersonalData as i32);
    env.legal_basis = LegalBasis::Consent.into();
    let events = relay.store.event_count().unwrap();
    let (code, message) = send(&centre, env).await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(
        message.contains("anonymous-consultation")
            && message.contains("consent")
            && message.contains("allowed: no-personal-data"),
        "{message}"
    );
    assert_eq!(relay.store.event_count().unwrap(), events, "nothing logged");
    // The other way round too: a referral is about a person.
    let mut env = envelope(MessageKind::Referral, &[NAS], b"x");
    env.legal_basis = LegalBasis::NoPersonalData.into();
    assert_eq!(send(&centre, env).await.0, Code::InvalidArgument);

    // The library: with the relay gone, a wrong basis is still refused, as bad input (a lookup
    // would have failed on the network instead).
    let user = TestUser::new(&pki, relay.addr, OLD, "laptop");
    let client = user.published().await;
    let payload = silta_client::payload::read_form(
        MessageKind::AnonymousConsultation,
        include_str!("../../client/forms/anonymous-consultation.toml"),
        false,
    )
    .unwrap();
    let mut draft = silta_client::seal::Draft::new(
        MessageKind::AnonymousConsultation,
        [0; 16],
        vec![NAS.parse().unwrap()],
        payload,
    );
    assert_eq!(draft.legal_basis, LegalBasis::NoPersonalData, "the default");
    draft.legal_basis = LegalBasis::Consent;
    relay.stop().await;
    let e = client.seal(&draft).await.unwrap_err();
    assert!(
        matches!(
            &e,
            silta_client::ClientError::Seal(silta_client::seal::SealError::Invalid(_))
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("allowed: no-personal-data"), "{e}");
}

fn run(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_silta-under-test"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("SILTA_PURPOSE")
        .env("SILTA_USER", "tester")
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

/// `silta send` and the reply commands pick the kind's basis; a basis the kind may not name is a
/// usage error that lists the allowed ones, and nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_picks_the_kinds_default_basis() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let nas = TestUser::new(&pki, relay.addr, NAS, "desk");
    drop(nas.published().await);
    let centre = TestUser::new(&pki, relay.addr, OLD, "desk");
    drop(centre.published().await);
    let config = centre.dir.path().join("silta.toml");
    let form = centre.dir.path().join("consultation.toml");
    std::fs::write(
        &form,
        include_str!("../../client/forms/anonymous-consultation.toml"),
    )
    .unwrap();
    let form = form.display().to_string();
    let args = [
        "send",
        "--kind",
        "anonymous-consultation",
        "--to",
        NAS,
        "--case",
        "none",
    ];

    let events = relay.store.event_count().unwrap();
    let mut wrong = args.to_vec();
    wrong.extend(["--legal-basis", "consent", &form]);
    let o = run(&config, &wrong);
    assert_eq!(o.status.code(), Some(64), "{}", out(&o));
    assert!(
        out(&o).contains("--legal-basis: an anonymous-consultation may not have legal basis consent; allowed: no-personal-data"),
        "{}",
        out(&o)
    );
    assert_eq!(relay.store.event_count().unwrap(), events, "nothing sent");

    let mut right = args.to_vec();
    right.push(&form);
    let o = run(&config, &right);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let accepted = of_type(&relay, EventType::Accepted);
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].legal_basis, LegalBasis::NoPersonalData as i32);
    relay.stop().await;
}

/// `Envelope.resend_of`: 16 bytes, a message of the same sender, in the same case and of the same
/// kind; the ACCEPTED event carries it; a retry is still answered with the first receipt.
#[tokio::test]
async fn resend_of_names_an_earlier_message_of_the_same_sender_case_and_kind() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (nas, _) = relay.connect_with_keys(&pki, NAS).await;
    let (old, _) = relay.connect_with_keys(&pki, OLD).await;
    let (other, _) = relay.connect_with_keys(&pki, OTHER).await;
    let case = case_ref();
    let first = in_case(MessageKind::Referral, &case, LegalBasis::Consent, &[NAS]);
    assert_eq!(send(&old, first.clone()).await.0, Code::Ok);
    let theirs = envelope(MessageKind::Referral, &[NAS], b"x");
    assert_eq!(send(&other, theirs.clone()).await.0, Code::Ok);
    let again = |resend_of: &[u8]| {
        let mut env = in_case(MessageKind::Referral, &case, LegalBasis::Consent, &[NAS]);
        env.resend_of = resend_of.to_vec();
        env
    };

    let (code, message) = send(&old, again(&[1; 3])).await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(message.contains("resend_of"), "{message}");
    let (code, message) = send(&old, again(&[0; 16])).await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    let (code, message) = send(&old, again(uuid::Uuid::now_v7().as_bytes())).await;
    assert_eq!(code, Code::NotFound, "{message}");
    // Another sender's message is as unknown as a message that never was.
    let (code, other_message) = send(&old, again(&theirs.message_id)).await;
    assert_eq!(code, Code::NotFound, "{other_message}");
    let mut other_kind = again(&first.message_id);
    other_kind.kind = MessageKind::InformationResponse.into();
    let (code, message) = send(&old, other_kind).await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    let mut other_case = again(&first.message_id);
    other_case.case_ref = case_ref();
    let (code, message) = send(&old, other_case).await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(message.contains("same case and kind") || message.contains("case and kind"));
    let mut itself = again(&[0; 16]);
    itself.resend_of = itself.message_id.clone();
    assert_eq!(send(&old, itself).await.0, Code::InvalidArgument);

    // Only a copy that could not be read is re-sent (see below).
    reject(&nas, &first, pb::RejectionReason::CannotDecrypt).await;
    let resend = again(&first.message_id);
    let receipt = old
        .mailbox()
        .send(resend.clone())
        .await
        .unwrap()
        .into_inner();
    let event = relay.store.event(receipt.log_index).unwrap().unwrap();
    assert_eq!(event.r#type, EventType::Accepted as i32);
    assert_eq!(event.resend_of, first.message_id);
    // The same message again: the first receipt, nothing new in the log.
    let events = relay.store.event_count().unwrap();
    let retry = old.mailbox().send(resend).await.unwrap().into_inner();
    assert_eq!(retry.log_index, receipt.log_index);
    assert_eq!(retry.accepted_at, receipt.accepted_at);
    assert_eq!(relay.store.event_count().unwrap(), events);
    relay.stop().await;
}

/// A database written before case records existed: the relay builds them from its delivery log
/// at start, so the CaseTransfer sent then binds the old centre now.
#[tokio::test]
async fn cases_from_before_the_upgrade_are_rebuilt_from_the_log() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let case = case_ref();
    {
        let (nas, _) = relay.connect_with_keys(&pki, NAS).await;
        let (old, _) = relay.connect_with_keys(&pki, OLD).await;
        let (_new, _) = relay.connect_with_keys(&pki, NEW).await;
        let c = |kind, to: &[&str]| in_case(kind, &case, LegalBasis::Consent, to);
        assert_eq!(
            send(&old, c(MessageKind::Referral, &[NAS])).await.0,
            Code::Ok
        );
        assert_eq!(
            send(&nas, c(MessageKind::CaseTransfer, &[OLD, NEW]))
                .await
                .0,
            Code::Ok
        );
    }
    let data = relay.stop_keep().await;
    {
        // As an older relay left it: no case records, no marker.
        let store = silta_tests::open_store_offline(data.path());
        store.raw_tree("caseref_case").unwrap().clear().unwrap();
        let counters = store.raw_tree("name_counter").unwrap();
        assert!(counters.remove("case-index-built").unwrap().is_some());
        store.close().unwrap();
    }
    let relay = TestRelay::start_in(&pki, data, |_| {}).await;
    let record = relay.store.case(&case).unwrap().expect("rebuilt");
    assert_eq!(record.left().collect::<Vec<_>>(), [OLD]);
    let old = relay.connect_as(&pki, OLD).await;
    let late = in_case(
        MessageKind::StatusUpdate,
        &case,
        LegalBasis::Consent,
        &[NAS],
    );
    assert_eq!(send(&old, late).await.0, Code::PermissionDenied);
    // The rebuilt record's withdrawal (the old centre's copies) was indexed again and finished
    // at the start.
    assert_withdrawal_finished(&relay, &case);
    relay.stop().await;
}

/// Edits the case record of a stopped relay (offline), as a crash at a given point leaves it.
/// The case's withdrawal is finished: its record withdraws from nobody, and the case is out of
/// the relay's withdrawal index.
fn assert_withdrawal_finished(relay: &TestRelay, case: &[u8]) {
    let record = relay.store.case(case).unwrap().unwrap();
    assert!(record.withdrawing.is_empty(), "{:?}", record.withdrawing);
    assert!(
        relay.store.withdrawals_marked().unwrap().is_empty(),
        "the finished withdrawal is out of the index"
    );
}

fn edit_case(data: &Path, case: &[u8], edit: impl FnOnce(&mut silta_relay::cases::CaseRecord)) {
    use prost::Message as _;
    let store = silta_tests::open_store_offline(data);
    let tree = store.raw_tree("caseref_case").unwrap();
    let mut record =
        silta_relay::cases::CaseRecord::decode(tree.get(case).unwrap().unwrap().as_ref()).unwrap();
    edit(&mut record);
    tree.insert(case, record.encode_to_vec()).unwrap();
    if !record.withdrawing.is_empty() {
        // As the relay marks a case record written with a withdrawal under way.
        let index = store.raw_tree("name_counter").unwrap();
        index
            .insert(silta_relay::store::withdrawal_key(case), &[])
            .unwrap();
    }
    store.close().unwrap();
}

/// Between a CaseTransfer's commit and the end of its withdrawal (or when a crash cuts that
/// short) the old centre already gets nothing of the case: its stream skips the message and its
/// acknowledgement is refused; at the next start the withdrawal is finished.
#[tokio::test]
async fn a_withdrawal_cut_short_leaks_nothing_and_is_finished_at_start() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let case = case_ref();
    let waiting = in_case(
        MessageKind::InformationRequest,
        &case,
        LegalBasis::Consent,
        &[OLD],
    );
    let status_of_waiting = |nas: silta_client::Connection| {
        let id = waiting.message_id.clone();
        async move {
            let s = nas
                .mailbox()
                .status(pb::StatusRequest { message_id: id })
                .await
                .unwrap()
                .into_inner();
            (s.recipients[0].state, s.recipients[0].undeliverable_reason)
        }
    };
    let old_id = pki.client(OLD);
    let old_keys = {
        let (nas, _) = relay.connect_with_keys(&pki, NAS).await;
        let old = relay.connect(&pki, &old_id).await;
        let keys = silta_tests::publish_test_keys(&old, &old_id, OLD).await;
        let (_new, _) = relay.connect_with_keys(&pki, NEW).await;
        let referral = in_case(MessageKind::Referral, &case, LegalBasis::Consent, &[NAS]);
        assert_eq!(send(&old, referral).await.0, Code::Ok);
        assert_eq!(send(&nas, waiting.clone()).await.0, Code::Ok);
        keys
    };
    let data = relay.stop_keep().await;
    // The transfer committed (the old centre left), the withdrawal not yet begun.
    edit_case(data.path(), &case, |record| {
        let now = prost_types::Timestamp {
            seconds: 1,
            nanos: 0,
        };
        for m in &mut record.members {
            if m.principal == OLD {
                m.left_at = Some(now);
            }
        }
    });
    let relay = TestRelay::start_in(&pki, data, |_| {}).await;
    let nas = relay.connect_as(&pki, NAS).await;
    let old = relay.connect(&pki, &old_id).await;
    // A control: a message outside the case reaches the old centre on the same stream.
    let control = in_case(
        MessageKind::ConsultationReply,
        &[0; 16],
        LegalBasis::NoPersonalData,
        &[OLD],
    );
    assert_eq!(send(&nas, control.clone()).await.0, Code::Ok);
    let mut stream = old
        .mailbox()
        .subscribe(pb::SubscribeRequest {
            after_seq: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let items = take_items(&mut stream, 2, Duration::from_secs(1)).await;
    assert_eq!(items.len(), 1, "{items:#?}");
    assert_eq!(
        envelope_of(&items[0])
            .and_then(|d| d.envelope.as_ref())
            .map(|e| e.message_id.clone()),
        Some(control.message_id.clone()),
        "only the message outside the case: {items:#?}"
    );
    let refused = old
        .mailbox()
        .ack(silta_tests::ack_of(&old_keys, &waiting))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("left by a CaseTransfer"),
        "{}",
        refused.message()
    );
    assert_eq!(
        status_of_waiting(nas).await,
        (pb::DeliveryState::Pending as i32, 0),
        "still open, never delivered"
    );
    drop((stream, old));
    let data = relay.stop_keep().await;

    // The withdrawal was marked and cut short: the next start finishes it.
    edit_case(data.path(), &case, |record| {
        record.withdrawing = vec![OLD.to_owned()]
    });
    let relay = TestRelay::start_in(&pki, data, |_| {}).await;
    let nas = relay.connect_as(&pki, NAS).await;
    assert_eq!(
        status_of_waiting(nas).await,
        (
            pb::DeliveryState::Undeliverable as i32,
            pb::UndeliverableReason::CaseMoved as i32
        )
    );
    assert_withdrawal_finished(&relay, &case);
    assert_eq!(of_type(&relay, EventType::Undeliverable).len(), 1);
    relay.stop().await;
}

/// Review finding: a zero case reference went round every case rule. A centre that left a case
/// could still send status updates, information responses and consent withdrawals "outside any
/// case". Now only the kinds that come before a case may go without one, and the relay, the
/// client library and `silta send --case none` all refuse the others, naming the kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_kinds_before_a_case_may_go_without_a_case_reference() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (nas, _) = relay.connect_with_keys(&pki, NAS).await;
    let (old, _) = relay.connect_with_keys(&pki, OLD).await;
    let (_new, _) = relay.connect_with_keys(&pki, NEW).await;
    let case = case_ref();
    let c = |kind, to: &[&str]| in_case(kind, &case, LegalBasis::Consent, to);
    assert_eq!(
        send(&old, c(MessageKind::Referral, &[NAS])).await.0,
        Code::Ok
    );
    assert_eq!(
        send(&nas, c(MessageKind::CaseTransfer, &[OLD, NEW]))
            .await
            .0,
        Code::Ok
    );
    let events = relay.store.event_count().unwrap();
    let zero = |kind| {
        let mut env = envelope(kind, &[NAS], b"x");
        env.case_ref = vec![0; 16];
        env
    };
    for (kind, name) in [
        (MessageKind::StatusUpdate, "a status-update"),
        (MessageKind::InformationResponse, "an information-response"),
        (MessageKind::ConsentWithdrawal, "a consent-withdrawal"),
        (MessageKind::MeetingReply, "a meeting-reply"),
    ] {
        let env = zero(kind);
        let (code, message) = send(&old, env.clone()).await;
        assert_eq!(code, Code::InvalidArgument, "{kind:?}: {message}");
        assert!(
            message.contains(&format!("{name} needs a case reference")),
            "{message}"
        );
        assert!(relay.store.message(&env.message_id).unwrap().is_none());
    }
    let mut request = zero(MessageKind::InformationRequest);
    request.recipients = vec![OLD.into()];
    let (code, message) = send(&nas, request).await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert_eq!(relay.store.event_count().unwrap(), events, "nothing logged");
    // Before a case: the consultation, and a first written referral (the Assistance System
    // issues the reference when it gets it) with its consent record.
    for kind in [
        MessageKind::AnonymousConsultation,
        MessageKind::Referral,
        MessageKind::ConsentRecord,
    ] {
        assert_eq!(send(&old, zero(kind)).await.0, Code::Ok, "{kind:?}");
    }

    // The client library refuses before it looks anything up (the relay is gone by then).
    let user = TestUser::new(&pki, relay.addr, NAS, "desk");
    let client = user.published().await;
    let form = include_str!("../../client/forms/case-transfer.toml");
    let payload = silta_client::payload::read_form(MessageKind::CaseTransfer, form, false).unwrap();
    let draft = silta_client::seal::Draft::new(
        MessageKind::CaseTransfer,
        [0; 16],
        vec![OLD.parse().unwrap(), NEW.parse().unwrap()],
        payload,
    );
    // The command too, with exit 64 (usage) and nothing sent.
    let path = user.dir.path().join("transfer.toml");
    std::fs::write(&path, form).unwrap();
    let events = relay.store.event_count().unwrap();
    let o = run(
        &user.dir.path().join("silta.toml"),
        &[
            "send",
            "--kind",
            "case-transfer",
            "--to",
            NEW,
            "--to",
            OLD,
            "--case",
            "none",
            path.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(64), "{}", out(&o));
    assert!(
        out(&o).contains("--case: a case-transfer needs a case reference"),
        "{}",
        out(&o)
    );
    assert_eq!(relay.store.event_count().unwrap(), events, "nothing sent");
    relay.stop().await;
    let e = client.seal(&draft).await.unwrap_err();
    assert!(
        matches!(
            &e,
            silta_client::ClientError::Seal(silta_client::seal::SealError::Invalid(_))
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("a case-transfer needs a case reference"),
        "{e}"
    );
}

/// Rejects `env` at `conn` (a recipient) as `reason`.
async fn reject(conn: &silta_client::Connection, env: &pb::Envelope, reason: pb::RejectionReason) {
    conn.mailbox()
        .ack(pb::AckRequest {
            device_id: String::new(),
            target: Some(pb::ack_request::Target::Reject(pb::Rejection {
                message_id: env.message_id.clone(),
                reason: reason.into(),
                detail: String::new(),
            })),
        })
        .await
        .unwrap();
}

/// Review finding: `resend_of` was constrained by sender, case and kind only, so a sender could
/// re-send any of its messages as often as it liked, to anyone. Now a re-send goes only to a
/// recipient whose copy could not be read, once per copy; its identical retry still gets the
/// first receipt.
#[tokio::test]
async fn a_copy_is_resent_only_if_unreadable_and_only_once() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (nas, nas_keys) = relay.connect_with_keys(&pki, NAS).await;
    let (old, _) = relay.connect_with_keys(&pki, OLD).await;
    let (_nas2, _) = relay.connect_with_keys(&pki, "assistance/nas-2").await;
    let case = case_ref();
    let c = || {
        in_case(
            MessageKind::StatusUpdate,
            &case,
            LegalBasis::Consent,
            &[NAS],
        )
    };
    assert_eq!(send(&old, c()).await.0, Code::Ok);
    let (pending, acked, unreadable, misread) = (c(), c(), c(), c());
    for env in [&pending, &acked, &unreadable, &misread] {
        assert_eq!(send(&old, env.clone()).await.0, Code::Ok);
    }
    nas.mailbox().ack(ack_of(&nas_keys, &acked)).await.unwrap();
    reject(&nas, &unreadable, pb::RejectionReason::CannotDecrypt).await;
    reject(&nas, &misread, pb::RejectionReason::BadSignature).await;
    let again = |of: &pb::Envelope| {
        let mut env = c();
        env.resend_of = of.message_id.clone();
        env
    };

    for (of, state) in [
        (&pending, "pending"),
        (&acked, "acknowledged"),
        (&misread, "rejected (reason bad-signature)"),
    ] {
        let (code, message) = send(&old, again(of)).await;
        assert_eq!(code, Code::FailedPrecondition, "{state}: {message}");
        assert!(
            message.contains(&format!("{NAS}'s copy")) && message.contains(state),
            "{message}"
        );
    }
    // Someone who never had a copy.
    let mut elsewhere = again(&unreadable);
    elsewhere.recipients.push("assistance/nas-2".into());
    let (code, message) = send(&old, elsewhere.clone()).await;
    assert_eq!(code, Code::FailedPrecondition, "{message}");
    assert!(
        message.contains("assistance/nas-2 was not a recipient"),
        "{message}"
    );
    assert!(
        relay
            .store
            .message(&elsewhere.message_id)
            .unwrap()
            .is_none()
    );

    // The copy that could not be opened: re-sent once.
    let resend = again(&unreadable);
    let receipt = old
        .mailbox()
        .send(resend.clone())
        .await
        .unwrap()
        .into_inner();
    let copy = relay
        .store
        .recipient_states(&unreadable.message_id)
        .unwrap()
        .into_iter()
        .find(|(r, _)| r == NAS)
        .unwrap()
        .1;
    assert_eq!(copy.resent_as, resend.message_id);
    // Its identical retry: the first receipt, nothing new.
    let events = relay.store.event_count().unwrap();
    let retry = old.mailbox().send(resend).await.unwrap().into_inner();
    assert_eq!(
        (retry.log_index, retry.accepted_at),
        (receipt.log_index, receipt.accepted_at)
    );
    // A second re-send under another id.
    let second = again(&unreadable);
    let (code, message) = send(&old, second.clone()).await;
    assert_eq!(code, Code::AlreadyExists, "{message}");
    assert!(message.contains("already re-sent"), "{message}");
    assert!(relay.store.message(&second.message_id).unwrap().is_none());
    assert_eq!(relay.store.event_count().unwrap(), events);
    relay.stop().await;
}

/// Review finding: `in_reply_to` was never checked, so a centre that left a case could start a
/// fresh case (or none) with its first message "in reply to" one of the old case's, and a
/// client threading by in_reply_to would show it inside the old case. Now a reply stays in the
/// case of the message it answers, and must answer a message its sender sent or received.
#[tokio::test]
async fn a_reply_stays_in_the_case_of_the_message_it_answers() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (nas, _) = relay.connect_with_keys(&pki, NAS).await;
    let (old, _) = relay.connect_with_keys(&pki, OLD).await;
    let (_new, _) = relay.connect_with_keys(&pki, NEW).await;
    let (other, _) = relay.connect_with_keys(&pki, OTHER).await;
    let case = case_ref();
    let c = |kind, to: &[&str]| in_case(kind, &case, LegalBasis::Consent, to);
    let referral = c(MessageKind::Referral, &[NAS]);
    assert_eq!(send(&old, referral.clone()).await.0, Code::Ok);
    let mut request = c(MessageKind::InformationRequest, &[OLD]);
    request.in_reply_to = referral.message_id.clone();
    assert_eq!(send(&nas, request.clone()).await.0, Code::Ok, "same case");
    assert_eq!(
        send(&nas, c(MessageKind::CaseTransfer, &[OLD, NEW]))
            .await
            .0,
        Code::Ok
    );

    // The old centre, in a case of its own and with none, "in reply to" the old case.
    let mut fresh = envelope(MessageKind::Referral, &[NAS], b"x");
    fresh.in_reply_to = request.message_id.clone();
    let (code, message) = send(&old, fresh.clone()).await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(
        message.contains("in_reply_to") && message.contains(&hex::encode(&case)),
        "{message}"
    );
    fresh.case_ref = vec![0; 16];
    assert_eq!(send(&old, fresh.clone()).await.0, Code::InvalidArgument);
    assert!(relay.store.message(&fresh.message_id).unwrap().is_none());

    // A centre that never saw the message: NOT_FOUND, nothing about its case.
    let mut stranger = envelope(MessageKind::Referral, &[NAS], b"x");
    stranger.in_reply_to = referral.message_id.clone();
    let (code, message) = send(&other, stranger).await;
    assert_eq!(code, Code::NotFound, "{message}");
    assert!(!message.contains(&hex::encode(&case)), "{message}");

    // An id the relay does not know (never seen, or forgotten after retention) is allowed.
    let mut unknown = envelope(MessageKind::Referral, &[NAS], b"x");
    unknown.in_reply_to = uuid::Uuid::now_v7().as_bytes().to_vec();
    assert_eq!(send(&old, unknown).await.0, Code::Ok);
    // A reply to a message without a case may open one (a consultation's reply issues it).
    let mut consultation = envelope(MessageKind::AnonymousConsultation, &[NAS], b"x");
    consultation.case_ref = vec![0; 16];
    assert_eq!(send(&other, consultation.clone()).await.0, Code::Ok);
    let mut reply = envelope(MessageKind::ConsultationReply, &[OTHER], b"x");
    reply.in_reply_to = consultation.message_id.clone();
    assert_eq!(send(&nas, reply).await.0, Code::Ok);
    relay.stop().await;
}

/// Review finding: SEND_REFUSED was bounded per sender and case only, so a centre that left K
/// cases added K events a minute for ever. Now a sender's refusals are logged at most
/// `limits.refusal_events_per_hour` times an hour over all cases; the rest are answered the same
/// and counted.
#[tokio::test]
async fn refusal_events_are_bounded_per_sender_over_all_cases() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.limits.refusal_events_per_hour = 2).await;
    let (nas, _) = relay.connect_with_keys(&pki, NAS).await;
    let (old, _) = relay.connect_with_keys(&pki, OLD).await;
    let other = relay.connect_as(&pki, OTHER).await;
    let mut cases = Vec::new();
    for _ in 0..4 {
        let case = case_ref();
        let env = in_case(MessageKind::Referral, &case, LegalBasis::Consent, &[NAS]);
        assert_eq!(send(&old, env).await.0, Code::Ok);
        cases.push(case);
    }
    for case in &cases {
        let env = in_case(MessageKind::StatusUpdate, case, LegalBasis::Consent, &[NAS]);
        assert_eq!(send(&other, env).await.0, Code::PermissionDenied);
    }
    let refused = of_type(&relay, EventType::SendRefused);
    assert_eq!(
        refused
            .iter()
            .map(|e| e.case_ref.clone())
            .collect::<Vec<_>>(),
        cases[..2]
    );
    assert_eq!(relay.metrics.snapshot().refusals_unlogged, 2);
    // Another sender has its own bound.
    let env = in_case(
        MessageKind::StatusUpdate,
        &cases[0],
        LegalBasis::Consent,
        &[OTHER],
    );
    assert_eq!(send(&nas, env).await.0, Code::PermissionDenied);
    assert_eq!(of_type(&relay, EventType::SendRefused).len(), 3);
    relay.stop().await;
}

/// Review finding: one case record that does not decode kept the relay from starting (the start
/// looks for withdrawals cut short). It is skipped, said in the log, and the relay serves.
#[tokio::test]
async fn a_case_record_that_does_not_decode_does_not_stop_the_relay() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let case = case_ref();
    {
        let (_nas, _) = relay.connect_with_keys(&pki, NAS).await;
        let (old, _) = relay.connect_with_keys(&pki, OLD).await;
        let referral = in_case(MessageKind::Referral, &case, LegalBasis::Consent, &[NAS]);
        assert_eq!(send(&old, referral).await.0, Code::Ok);
    }
    let data = relay.stop_keep().await;
    {
        let store = silta_tests::open_store_offline(data.path());
        let tree = store.raw_tree("caseref_case").unwrap();
        assert!(tree.get(&case).unwrap().is_some());
        tree.insert(&case, vec![0xff; 7]).unwrap();
        store.close().unwrap();
    }
    let relay = TestRelay::start_in(&pki, data, |_| {}).await;
    let old = relay.connect_as(&pki, OLD).await;
    let other = in_case(
        MessageKind::Referral,
        &case_ref(),
        LegalBasis::Consent,
        &[NAS],
    );
    assert_eq!(send(&old, other).await.0, Code::Ok, "the relay serves");
    relay.stop().await;
}

/// Review finding: an identified message could answer the anonymous consultation (a desk
/// without the consultation kept locally skips the client's check), and the relay, which keeps
/// in_reply_to, would then tie the "no consequences" consultation to a case. The relay refuses
/// it; the consultation's own exchange (its reply) still threads.
#[tokio::test]
async fn nothing_identified_answers_the_anonymous_consultation() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (nas, _) = relay.connect_with_keys(&pki, NAS).await;
    let (centre, _) = relay.connect_with_keys(&pki, OLD).await;
    let mut consultation = envelope(MessageKind::AnonymousConsultation, &[NAS], b"x");
    consultation.case_ref = vec![0; 16];
    assert_eq!(send(&centre, consultation.clone()).await.0, Code::Ok);
    let mut reply = envelope(MessageKind::ConsultationReply, &[OLD], b"x");
    reply.case_ref = vec![0; 16];
    reply.in_reply_to = consultation.message_id.clone();
    let (code, message) = send(&nas, reply.clone()).await;
    assert_eq!(code, Code::Ok, "{message}");

    // A referral answering the reply, and an emergency confirmation issuing a case in answer to
    // the consultation: refused, nothing stored.
    let mut referral = envelope(MessageKind::Referral, &[NAS], b"x");
    referral.case_ref = vec![0; 16];
    referral.in_reply_to = reply.message_id.clone();
    let (code, message) = send(&centre, referral.clone()).await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(message.contains("unlinked"), "{message}");
    assert!(relay.store.message(&referral.message_id).unwrap().is_none());
    let mut confirmation = in_case(
        MessageKind::EmergencyReferralConfirmation,
        &case_ref(),
        LegalBasis::AcuteDanger,
        &[OLD],
    );
    confirmation.in_reply_to = consultation.message_id.clone();
    let (code, message) = send(&nas, confirmation.clone()).await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(
        relay
            .store
            .message(&confirmation.message_id)
            .unwrap()
            .is_none()
    );
    relay.stop().await;
}
