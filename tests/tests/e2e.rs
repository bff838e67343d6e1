//! End-to-end sealed messages through a real relay: every kind both ways, and every forgery the
//! recipient must catch, each rejected with its reason and recorded at the relay.

use std::time::Duration;

use silta_client::{
    client::{Client, Received},
    payload::read_form,
    seal::{Draft, seal},
};
use silta_proto::pb::{self, MessageKind, RejectionReason, Urgency, payload::payload::Body};
use silta_tests::{TestPki, TestRelay, TestUser, send_raw};

const CENTRE: &str = "centre/joutseno";
const NAS: &str = "assistance/nas";

/// A minimal valid form for each kind.
pub fn form(kind: MessageKind) -> &'static str {
    use MessageKind as K;
    match kind {
        K::AnonymousConsultation => {
            "indicators = [\"passport held by employer\"]\nexploitation_type = \"EXPLOITATION_TYPE_FORCED_LABOUR\"\nage_group = \"AGE_GROUP_ADULT\"\nquestions = \"Should we refer?\""
        }
        K::ConsultationReply => "advice = \"Refer with consent.\"\nproceed_to_referral = true",
        K::ConsentRecord => {
            "person_name = \"A. Person\"\ndate = \"2026-11-20\"\ninformed_about = [\"services\", \"no police report by the Assistance System\"]\nscope = \"referral\""
        }
        K::Referral => {
            "account = \"MARKER-REFERRAL-ACCOUNT\"\n[person]\nname = \"A. Person\"\nage_group = \"AGE_GROUP_ADULT\"\n[consent]\nperson_name = \"A. Person\"\ndate = \"2026-11-20\"\ninformed_about = [\"services\"]"
        }
        K::EmergencyReferralConfirmation => {
            "case_ref = \"AAAAAAAAAAAAAAAAAAAAAQ==\"\ninterim_measures = [\"safe housing\"]\nwritten_referral_deadline = \"2026-12-01\""
        }
        K::InformationRequest => "items = [\"current address\"]\ndeadline = \"2026-12-05\"",
        K::InformationResponse => "[[answers]]\nitem = \"current address\"\nnot_held = true",
        K::AdmissionDecisionNotice => {
            "outcome = \"ADMISSION_OUTCOME_ADMITTED\"\ndecision_date = \"2026-11-27\""
        }
        K::MeetingProposal => {
            "place = \"Assistance System office\"\nclient_attends = true\n[[slots]]\nstart = \"2026-12-03T10:00:00Z\"\nduration_minutes = 60"
        }
        K::MeetingConfirmation => {
            "place = \"Assistance System office\"\n[slot]\nstart = \"2026-12-03T10:00:00Z\"\nduration_minutes = 60"
        }
        K::MeetingCancellation => "reason = \"interpreter unavailable\"",
        K::MeetingReply => "answer = \"MEETING_ANSWER_ACCEPT\"",
        K::JointAssessmentRecord => {
            "meeting_date = \"2026-12-03\"\noverall_situation = \"stable\"\nsecurity_threat = \"THREAT_LEVEL_LOW\"\ncriminal_case = \"CRIMINAL_CASE_STATUS_NONE\"\nsupport_person = \"SUPPORT_PERSON_NEED_NO\"\nclient_view = \"wants to stay\""
        }
        K::ServiceAgreement => {
            "version = 1\nstatus = \"AGREEMENT_STATUS_AGREED\"\n[[items]]\nservice = \"accommodation\"\nresponsible = \"RESPONSIBLE_PARTY_CENTRE\""
        }
        K::StatusUpdate => "change = \"CHANGE_KIND_SECURITY_SITUATION\"\ndescription = \"calmer\"",
        K::CaseTransfer => {
            "effective_date = \"2027-01-01\"\nreceiving_centre = \"centre/other\"\nclient_informed = true"
        }
        K::ConsentWithdrawal => {
            "date = \"2026-11-20\"\nwithdrawn = \"whole_referral\"\nreceived_how = \"oral\""
        }
        K::ExitNotice => {
            "reason = \"EXIT_REASON_LEFT_VOLUNTARILY\"\neffective_date = \"2027-02-01\""
        }
        K::ServiceAgreementAnswer => {
            "version = 1\nagreement = \"AAAAAAAAAAAAAAAAAAAAAQ==\"\nanswer = \"AGREEMENT_ANSWER_ACCEPT\""
        }
        K::CaseClaim => "action = \"CLAIM_ACTION_CLAIM\"\nholder = \"anna\"",
        K::AccessLogShare => "desk = \"desk-1\"",
        K::Unspecified => unreachable!(),
    }
}

struct Setup {
    pki: TestPki,
    relay: TestRelay,
    centre: Client,
    nas: Client,
    _users: Vec<TestUser>,
}

async fn setup() -> Setup {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let cu = TestUser::new(&pki, relay.addr, CENTRE, "server-1");
    let nu = TestUser::new(&pki, relay.addr, NAS, "desk-1");
    let centre = cu.published().await;
    let nas = nu.published().await;
    Setup {
        pki,
        relay,
        centre,
        nas,
        _users: vec![cu, nu],
    }
}

fn draft(kind: MessageKind, to: &str) -> Draft {
    let payload = read_form(kind, form(kind), false).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    let mut d = Draft::new(
        kind,
        *uuid::Uuid::new_v4().as_bytes(),
        vec![to.parse().unwrap()],
        payload,
    );
    d.urgency = Urgency::Normal;
    d
}

async fn receive_one(c: &Client) -> Received {
    let opener = silta_tests::TestOpener::new();
    let mut got = c
        .receive(&opener.opener(), Duration::from_secs(5), 1, |_, _| Ok(()))
        .await
        .unwrap();
    assert_eq!(got.len(), 1, "expected one item");
    got.remove(0)
}

/// Receives until an envelope item (skipping status items).
async fn receive_message(c: &Client) -> Received {
    for _ in 0..20 {
        match receive_one(c).await {
            Received::Status(_) => continue,
            other => return other,
        }
    }
    panic!("no message arrived")
}

#[tokio::test]
async fn every_kind_travels_its_direction_sealed_and_verified() {
    let s = setup().await;
    for k in 1..=21 {
        let kind = MessageKind::try_from(k).unwrap();
        // The principal-internal kinds go to the sender's own principal (its other desks; here
        // the one device, which receives what its principal is sent).
        let (from, to, to_name) = if silta_proto::policy::is_internal(kind) {
            (&s.nas, &s.nas, NAS)
        } else if silta_proto::policy::may_send("centre", kind, "assistance") {
            (&s.centre, &s.nas, NAS)
        } else {
            (&s.nas, &s.centre, CENTRE)
        };
        let d = draft(kind, to_name);
        let receipt = send_raw(from, &d)
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(receipt.message_id, d.message_id);
        match receive_message(to).await {
            Received::Message { opened, delivered } => {
                assert_eq!(opened.payload, d.payload, "{kind:?}: payload round trip");
                assert_eq!(opened.signed.sender, from.principal().to_string());
                assert_eq!(delivered.envelope.unwrap().message_id, d.message_id);
                assert_eq!(opened.sender_key.fingerprint, from.keys().fingerprint());
                assert!(
                    matches!(opened.payload.body, Some(ref b) if silta_client::payload::kind_of(b) == kind)
                );
            }
            other => panic!("{kind:?}: {other:?}"),
        }
        let status = from
            .connection()
            .mailbox()
            .status(pb::StatusRequest {
                message_id: d.message_id.to_vec(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            status.recipients[0].state,
            pb::DeliveryState::Acknowledged as i32,
            "{kind:?}"
        );
    }
    // The acknowledgement event carries the recipient device's signature.
    let acks = s
        .relay
        .events()
        .into_iter()
        .filter(|e| e.r#type == pb::EventType::Acknowledged as i32)
        .count();
    assert_eq!(acks, 21);
}

#[tokio::test]
async fn the_relay_never_sees_plaintext() {
    let s = setup().await;
    let mut d = draft(MessageKind::Referral, NAS);
    if let Some(Body::Referral(r)) = &mut d.payload.body {
        r.account = "PLAINTEXT-MARKER-5d1e".into();
        r.person.as_mut().unwrap().name = "NAME-MARKER-77aa".into();
        r.consent.as_mut().unwrap().person_name = "NAME-MARKER-77aa".into();
    }
    send_raw(&s.centre, &d).await.unwrap();
    assert!(matches!(
        receive_message(&s.nas).await,
        Received::Message { .. }
    ));
    s.relay.store.shutdown();
    let mut hits = 0;
    for entry in walk(s.relay.data.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        for marker in [b"PLAINTEXT-MARKER".as_slice(), b"NAME-MARKER"] {
            hits += bytes.windows(marker.len()).filter(|w| *w == marker).count();
        }
    }
    assert_eq!(hits, 0, "plaintext found in the relay's data folder");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.is_file() {
            // Files only: the relay's admin socket (backups) holds no data and cannot be read.
            out.push(p);
        }
    }
    out
}

/// Sends `envelope` as `sender` (a raw envelope, as a misbehaving relay or sender would produce),
/// has `recipient` receive it, and returns the rejection and the relay's record of it.
async fn expect_rejection(
    s: &Setup,
    sender: &Client,
    envelope: pb::Envelope,
    reason: RejectionReason,
) {
    let id = envelope.message_id.clone();
    sender.connection().mailbox().send(envelope).await.unwrap();
    match receive_message(&s.nas).await {
        Received::Rejected { rejected, .. } => {
            assert_eq!(rejected.reason, reason, "{rejected}");
        }
        other => panic!("expected {reason:?}, got {other:?}"),
    }
    let status = sender
        .connection()
        .mailbox()
        .status(pb::StatusRequest {
            message_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.recipients[0].state,
        pb::DeliveryState::Rejected as i32
    );
    assert_eq!(status.recipients[0].rejection_reason, reason as i32);
    let recorded = s.relay.events().into_iter().any(|e| {
        e.r#type == pb::EventType::Rejected as i32
            && e.message_id == id
            && e.rejection_reason == reason as i32
    });
    assert!(recorded, "rejection not in the relay's event record");
}

#[tokio::test]
async fn a_flipped_byte_anywhere_is_rejected() {
    let s = setup().await;
    let env = s
        .centre
        .seal(&draft(MessageKind::Referral, NAS))
        .await
        .unwrap();
    // Header, middle and last byte.
    for pos in [30, env.ciphertext.len() / 2, env.ciphertext.len() - 1] {
        let mut bad = env.clone();
        bad.message_id = uuid::Uuid::now_v7().as_bytes().to_vec();
        let mut ciphertext = bad.ciphertext.to_vec();
        ciphertext[pos] ^= 0x01;
        bad.ciphertext = ciphertext.into();
        bad.ciphertext_sha256 = silta_tests::sha256(&bad.ciphertext);
        expect_rejection(&s, &s.centre, bad, RejectionReason::CannotDecrypt).await;
    }
}

#[tokio::test]
async fn signed_by_another_device_is_a_bad_signature() {
    let s = setup().await;
    // Sealed correctly, but with a key that is not the published one for that device id.
    let other = silta_client::keys::DeviceKeys::generate("server-1").unwrap();
    let d = draft(MessageKind::Referral, NAS);
    let nas_keys = s.centre.keys_of(&NAS.parse().unwrap()).await.unwrap();
    let to: Vec<String> = nas_keys.iter().map(|k| k.age_recipient.clone()).collect();
    let env = seal(&d, s.centre.principal(), &other, &to).unwrap();
    expect_rejection(&s, &s.centre, env, RejectionReason::BadSignature).await;
}

#[tokio::test]
async fn a_replay_under_a_new_message_id_is_rejected() {
    let s = setup().await;
    let env = s
        .centre
        .seal(&draft(MessageKind::Referral, NAS))
        .await
        .unwrap();
    s.centre
        .connection()
        .mailbox()
        .send(env.clone())
        .await
        .unwrap();
    assert!(matches!(
        receive_message(&s.nas).await,
        Received::Message { .. }
    ));
    let mut replay = env.clone();
    replay.message_id = uuid::Uuid::now_v7().as_bytes().to_vec();
    expect_rejection(&s, &s.centre, replay, RejectionReason::Replay).await;
}

#[tokio::test]
async fn a_message_signed_by_one_centre_and_sent_by_another_is_rejected() {
    let s = setup().await;
    let env = s
        .centre
        .seal(&draft(MessageKind::Referral, NAS))
        .await
        .unwrap();
    let mallory_user = TestUser::new(&s.pki, s.relay.addr, "centre/mallory", "m");
    let mallory = mallory_user.published().await;
    expect_rejection(&s, &mallory, env, RejectionReason::EnvelopeMismatch).await;
}

#[tokio::test]
async fn a_message_readdressed_to_another_recipient_is_misrouted() {
    let s = setup().await;
    // nas receives a message for itself, then (as an insider) re-encrypts the signed plaintext
    // to a colleague and has it delivered as if centre had sent it to the colleague.
    let branch_user = TestUser::new(&s.pki, s.relay.addr, "assistance/branch", "b");
    let branch = branch_user.published().await;
    let d = draft(MessageKind::Referral, NAS);
    let env = s.centre.seal(&d).await.unwrap();
    let plaintext =
        silta_client::seal::decrypt(s.nas.keys().age_identity(), &env.ciphertext).unwrap();
    let branch_key: age::x25519::Recipient = branch.keys().age_recipient().parse().unwrap();
    let ciphertext = silta_client::seal::encrypt(&[branch_key], &plaintext).unwrap();
    let mut forwarded = env.clone();
    forwarded.message_id = env.message_id.clone();
    forwarded.recipients = vec!["assistance/branch".into()];
    forwarded.ciphertext_sha256 = silta_tests::sha256(&ciphertext);
    forwarded.ciphertext = ciphertext.into();
    let id = forwarded.message_id.clone();
    s.centre
        .connection()
        .mailbox()
        .send(forwarded)
        .await
        .unwrap();
    match receive_message(&branch).await {
        Received::Rejected { rejected, .. } => {
            assert_eq!(rejected.reason, RejectionReason::Misrouted, "{rejected}")
        }
        other => panic!("{other:?}"),
    }
    let status = s
        .centre
        .connection()
        .mailbox()
        .status(pb::StatusRequest { message_id: id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.recipients[0].rejection_reason,
        RejectionReason::Misrouted as i32
    );
}

#[tokio::test]
async fn a_sender_whose_certificate_is_revoked_is_not_trusted() {
    let mut pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.tls.reload_interval_s = 1).await;
    let cu = TestUser::new(&pki, relay.addr, CENTRE, "server-1");
    let nu = TestUser::new(&pki, relay.addr, NAS, "desk-1");
    let centre = cu.published().await;
    let nas = nu.published().await;
    let env = centre
        .seal(&draft(MessageKind::Referral, NAS))
        .await
        .unwrap();
    centre.connection().mailbox().send(env).await.unwrap();
    // The centre's certificate is revoked before the message is opened.
    pki.revoke(&cu.identity);
    // Wait (bounded) until the relay serves the new CRL: the revoked certificate is refused.
    let cfg = pki.client_config(relay.addr, Some(&cu.identity));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while silta_client::Connection::connect(&cfg).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "CRL not reloaded after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    match receive_message(&nas).await {
        Received::Rejected { rejected, .. } => assert_eq!(
            rejected.reason,
            RejectionReason::UntrustedSenderKey,
            "{rejected}"
        ),
        other => panic!("{other:?}"),
    }
    relay.stop().await;
}

#[tokio::test]
async fn a_changed_device_key_is_shown_and_used_only_because_it_verifies() {
    let s = setup().await;
    let nas_keys = s.centre.keys_of(&NAS.parse().unwrap()).await.unwrap();
    assert!(
        s.centre.take_key_changes().is_empty(),
        "first sight is not a change"
    );
    // The same device re-installed with new keys (same certificate).
    let reinstalled =
        TestUser::with_identity(&s.pki, s.relay.addr, s._users[1].identity.clone(), "desk-1");
    let nas2 = reinstalled.published().await;
    let now = s.centre.keys_of(&NAS.parse().unwrap()).await.unwrap();
    assert_eq!(
        now.len(),
        1,
        "the new bundle replaces the old one for the device"
    );
    assert_eq!(now[0].fingerprint, nas2.keys().fingerprint());
    let changes = s.centre.take_key_changes();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].old, nas_keys[0].fingerprint);
    assert_eq!(changes[0].new, nas2.keys().fingerprint());
    // History keeps both.
    let resp = s
        .centre
        .connection()
        .directory()
        .get_keys(pb::GetKeysRequest {
            principal: NAS.into(),
            include_history: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.history.len(), 2);
    assert!(
        !resp.crls.is_empty(),
        "the relay hands out the CRLs it enforces"
    );
    // Messages now go to the new key.
    send_raw(&s.centre, &draft(MessageKind::Referral, NAS))
        .await
        .unwrap();
    assert!(matches!(
        receive_message(&nas2).await,
        Received::Message { .. }
    ));
}

#[tokio::test]
async fn the_relay_accepts_a_bundle_only_from_its_own_certificate() {
    let s = setup().await;
    // A bundle made with another certificate of the same principal is refused on this connection.
    let other_cert = s.pki.client(CENTRE);
    let keys = silta_client::keys::DeviceKeys::generate("x").unwrap();
    let bundle = silta_client::bundle::build(
        &keys,
        &CENTRE.parse().unwrap(),
        other_cert.cert_pem.as_bytes(),
        &other_cert.key_pem,
    )
    .unwrap();
    let err = s
        .centre
        .connection()
        .directory()
        .publish_keys(bundle.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    // A bundle whose signature does not match its content.
    let mine = &s._users[0].identity;
    let mut forged = silta_client::bundle::build(
        &keys,
        &CENTRE.parse().unwrap(),
        mine.cert_pem.as_bytes(),
        &mine.key_pem,
    )
    .unwrap();
    forged.content.push(0);
    let err = s
        .centre
        .connection()
        .directory()
        .publish_keys(forged)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    // Auditors cannot publish.
    let auditor = s.relay.connect_as(&s.pki, "auditor/dpo").await;
    assert_eq!(
        auditor
            .directory()
            .publish_keys(bundle)
            .await
            .unwrap_err()
            .code(),
        tonic::Code::PermissionDenied
    );
    // Every publish is an event.
    let published = s
        .relay
        .events()
        .into_iter()
        .filter(|e| e.r#type == pb::EventType::KeyPublished as i32)
        .count();
    assert_eq!(published, 2);
}

#[tokio::test]
async fn acknowledgements_must_carry_the_recipients_device_signature() {
    let s = setup().await;
    let env = s
        .centre
        .seal(&draft(MessageKind::Referral, NAS))
        .await
        .unwrap();
    s.centre
        .connection()
        .mailbox()
        .send(env.clone())
        .await
        .unwrap();
    let ack = |signature: Vec<u8>, signer: &str| pb::AckRequest {
        device_id: String::new(),
        target: Some(pb::ack_request::Target::Acknowledge(pb::Acknowledgement {
            message_id: env.message_id.clone(),
            ciphertext_sha256: env.ciphertext_sha256.clone(),
            signature,
            signer_key: signer.into(),
        })),
    };
    let mailbox = || s.nas.connection().mailbox();
    // A made-up signature, another device's name, another key's signature: all refused.
    assert_eq!(
        mailbox()
            .ack(ack(vec![7; 64], "desk-1"))
            .await
            .unwrap_err()
            .code(),
        tonic::Code::InvalidArgument
    );
    // Another device's name: not the calling desk.
    assert_eq!(
        mailbox()
            .ack(ack(vec![7; 64], "nope"))
            .await
            .unwrap_err()
            .code(),
        tonic::Code::PermissionDenied
    );
    let other = silta_client::keys::DeviceKeys::generate("desk-1").unwrap();
    let forged = silta_client::seal::sign_ack(&other, &env.message_id, &env.ciphertext_sha256);
    assert_eq!(
        mailbox()
            .ack(ack(forged.to_vec(), "desk-1"))
            .await
            .unwrap_err()
            .code(),
        tonic::Code::InvalidArgument
    );
    // The real device's signature is accepted and lands in the log.
    let real = silta_client::seal::sign_ack(s.nas.keys(), &env.message_id, &env.ciphertext_sha256);
    let index = mailbox()
        .ack(ack(real.to_vec(), "desk-1"))
        .await
        .unwrap()
        .into_inner()
        .log_index;
    let event = s.relay.store.event(index).unwrap().unwrap();
    assert_eq!(event.ack_signature, real.to_vec());
    assert_eq!(event.detail, "device desk-1");
}

#[tokio::test]
async fn senders_with_the_log_key_check_every_receipt() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let mut cu = TestUser::new(&pki, relay.addr, CENTRE, "server-1");
    cu.config.log_key = Some(relay.log_key.clone());
    let nu = TestUser::new(&pki, relay.addr, NAS, "desk-1");
    let _nas = nu.published().await;
    let centre = cu.published().await;
    let d = draft(MessageKind::Referral, NAS);
    // Checked inside send: signed checkpoint, the ACCEPTED entry of this message, the proof.
    let receipt = send_raw(&centre, &d).await.unwrap();
    let env_digest = {
        relay
            .events()
            .into_iter()
            .find(|e| e.message_id == d.message_id)
            .unwrap()
            .ciphertext_sha256
    };
    use silta_client::audit::{ReceiptError, check_receipt};
    check_receipt(&receipt, &relay.log_key, &d.message_id, CENTRE, &env_digest).unwrap();
    // A receipt for another message, a changed entry, another log key: all refused.
    assert_eq!(
        check_receipt(
            &receipt,
            &relay.log_key,
            uuid::Uuid::now_v7().as_bytes(),
            CENTRE,
            &env_digest
        ),
        Err(ReceiptError::WrongEntry)
    );
    let mut bad = receipt.clone();
    let n = bad.log_entry.len();
    bad.log_entry[n - 1] ^= 1;
    assert!(check_receipt(&bad, &relay.log_key, &d.message_id, CENTRE, &env_digest).is_err());
    let other_key = silta_proto::tlog::verifier_key("silta.example/delivery-log", &[5; 32]);
    assert!(matches!(
        check_receipt(&receipt, &other_key, &d.message_id, CENTRE, &env_digest),
        Err(ReceiptError::Checkpoint(_))
    ));
    relay.stop().await;
}
