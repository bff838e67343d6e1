//! An operator handover played end to end, as README's "Operator handover" says, with real TLS,
//! the real relay and the real `silta` program for what people run: the admin retires the old
//! operator's devices (or disables the old centre), the CA's keeper revokes its certificate and
//! the relay reloads the CRL, the pending message is reported undeliverable with its reason,
//! the new operator enrols (same centre id, or a new one the case is transferred to), the sender
//! re-sends, the new operator opens it, the old centre's sends are refused, and an auditor sees
//! every step in the delivery log.

use std::{path::Path, process::Command, time::Duration};

use silta_proto::pb;
use silta_tests::{TestIdentity, TestPki, TestRelay, TestUser};
use tonic::Code;

const SILTA: &str = env!("CARGO_BIN_EXE_silta-under-test");

fn silta(user: &TestUser, args: &[&str]) -> std::process::Output {
    Command::new(SILTA)
        .arg("--config")
        .arg(user.dir.path().join("silta.toml"))
        .args(args)
        .env("SILTA_PURPOSE", "handover test")
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

#[track_caller]
fn ok(o: std::process::Output) -> std::process::Output {
    assert!(o.status.success(), "{}", text(&o));
    o
}

fn referral_form(account: &str) -> String {
    format!(
        "account = \"{account}\"\n[person]\nname = \"A. Person\"\nage_group = \"AGE_GROUP_ADULT\"\n[consent]\nperson_name = \"A. Person\"\ndate = \"2026-11-20\"\ninformed_about = [\"services\"]\n"
    )
}

/// The message id in `sent <kind> <id> to ...`.
fn sent_id(o: &std::process::Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.starts_with("sent "))
        .unwrap_or_else(|| panic!("{}", text(o)));
    line.split(' ').nth(2).unwrap().to_owned()
}

/// The new id in `re-sent <kind> <old> to <who> as <new>: ...`.
fn resent_id(o: &std::process::Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.starts_with("re-sent "))
        .unwrap_or_else(|| panic!("{}", text(o)));
    let after = line.split(" as ").nth(1).unwrap();
    after.split(':').next().unwrap().to_owned()
}

/// The JSON files `silta receive --out DIR` wrote.
fn received(dir: &Path) -> Vec<serde_json::Value> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap())
        .collect()
}

/// `user` sends the form `form` (written to its folder as `name`) as `kind` to `to` in `case`.
fn send(
    user: &TestUser,
    kind: &str,
    to: &[&str],
    case: &str,
    name: &str,
    form: &str,
) -> std::process::Output {
    let path = user.dir.path().join(name);
    std::fs::write(&path, form).unwrap();
    let mut args = vec!["send", "--kind", kind];
    for t in to {
        args.extend(["--to", t]);
    }
    args.extend(["--case", case, path.to_str().unwrap()]);
    silta(user, &args)
}

/// The state and reason of `recipient`'s copy of `id` in the sender's inbox (`inbox show --json`).
fn copy_state(sender: &TestUser, id: &str, recipient: &str) -> (String, String) {
    let o = ok(silta(sender, &["inbox", "show", id, "--json"]));
    let shown: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let copy = &shown["recipients"][recipient];
    (
        copy["state"].as_str().unwrap_or_default().to_owned(),
        copy["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The CA's keeper revokes `id`; waits (bounded) until the relay has reloaded the CRL and
/// refuses a new connection with it.
async fn revoke_and_wait(pki: &mut TestPki, relay: &TestRelay, id: &TestIdentity) {
    pki.revoke(id);
    let cfg = pki.client_config(relay.addr, Some(id));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    // Refused at the handshake as revoked (a disabled principal is refused later, by its first
    // request: that is not the CRL yet).
    while !matches!(
        silta_client::Connection::connect(&cfg).await,
        Err(silta_client::ConnectError::CertificateRejected { .. })
    ) {
        assert!(
            std::time::Instant::now() < deadline,
            "CRL not reloaded after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every event of the log, read by an auditor through AuditLog.Query (bounded paging).
async fn audit_trail(relay: &TestRelay, pki: &TestPki) -> Vec<pb::Event> {
    let auditor = relay.connect_as(pki, "auditor/dpo").await;
    let mut out = Vec::new();
    let mut token = String::new();
    for _ in 0..100 {
        let r = auditor
            .audit()
            .query(pb::QueryRequest {
                filter: Some(pb::QueryFilter::default()),
                purpose: String::new(),
                page_size: 1000,
                page_token: token,
                purpose_code: pb::PurposeCode::Supervision.into(),
            })
            .await
            .expect("query")
            .into_inner();
        out.extend(r.events);
        if r.next_page_token.is_empty() {
            return out;
        }
        token = r.next_page_token;
    }
    panic!("query did not end");
}

fn id_bytes(id: &str) -> Vec<u8> {
    uuid::Uuid::parse_str(id).unwrap().as_bytes().to_vec()
}

/// The index of the first event after `after` satisfying `f` (panics naming `what`).
#[track_caller]
fn find(events: &[pb::Event], after: u64, what: &str, f: impl Fn(&pb::Event) -> bool) -> u64 {
    events
        .iter()
        .find(|e| e.index > after && f(e))
        .unwrap_or_else(|| panic!("no {what} after #{after} in the log:\n{events:#?}"))
        .index
}

fn is(e: &pb::Event, t: pb::EventType) -> bool {
    e.r#type == i32::from(t)
}

/// Act 1: the same centre id changes operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handover_under_the_same_centre_id() {
    const K: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
    let mut pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.tls.reload_interval_s = 1).await;
    let old = TestUser::new(&pki, relay.addr, "centre/joutseno", "desk-1");
    let nas = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-1");
    let admin = TestUser::new(&pki, relay.addr, "admin/ops", "unused");
    for u in [&old, &nas] {
        ok(silta(u, &["keys", "publish"]));
    }
    // The case K between the old operator and NAS.
    let o = ok(send(
        &old,
        "referral",
        &["assistance/nas"],
        K,
        "referral.toml",
        &referral_form("met at the centre on Monday"),
    ));
    let referral = sent_id(&o);
    let o = ok(silta(&nas, &["receive", "--wait", "2"]));
    assert!(text(&o).contains(&referral), "{}", text(&o));
    // NAS writes in K; the old operator never acknowledges it.
    let proposal_form = include_str!("../../client/forms/meeting-proposal.toml");
    let o = ok(send(
        &nas,
        "meeting-proposal",
        &["centre/joutseno"],
        K,
        "proposal.toml",
        proposal_form,
    ));
    let pending = sent_id(&o);

    // 1. The admin retires the old operator's devices.
    let o = ok(silta(
        &admin,
        &[
            "admin",
            "retire-devices",
            "centre/joutseno",
            "--reason",
            "operator handover",
        ],
    ));
    assert!(text(&o).contains("desk-1"), "{}", text(&o));
    // The pending message is reported undeliverable to NAS, saying what to do.
    let o = ok(silta(&nas, &["inbox", "sync", "--wait", "2"]));
    assert!(
        text(&o).contains(&format!("run `silta resend {pending}`")),
        "{}",
        text(&o)
    );
    assert_eq!(
        copy_state(&nas, &pending, "centre/joutseno"),
        ("undeliverable".into(), "devices_retired".into())
    );

    // 2. The old certificate is revoked; the relay reloads the CRL; the old operator is refused
    // at the handshake (77: "REVOKED").
    revoke_and_wait(&mut pki, &relay, &old.identity).await;
    let o = silta(&old, &["receive", "--wait", "1"]);
    assert_eq!(o.status.code(), Some(77), "{}", text(&o));
    assert!(text(&o).contains("REVOKED"), "{}", text(&o));

    // 3. The new operator enrols: a new certificate for centre/joutseno, the same device id.
    let new = TestUser::new(&pki, relay.addr, "centre/joutseno", "desk-1");
    ok(silta(&new, &["keys", "publish"]));

    // 4. NAS re-sends: sealed to the new keys, under a new id naming the original.
    let o = ok(silta(&nas, &["resend", &pending]));
    let resent = resent_id(&o);
    assert_ne!(resent, pending);
    assert!(
        text(&o).contains(&format!("to centre/joutseno as {resent}")),
        "{}",
        text(&o)
    );
    // The new operator opens it: the same content.
    let out = new.dir.path().join("in");
    ok(silta(
        &new,
        &["receive", "--out", out.to_str().unwrap(), "--wait", "2"],
    ));
    let got = received(&out);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["message_id"], resent);
    assert_eq!(got[0]["case_ref"], K);
    assert_eq!(got[0]["kind"], "meeting-proposal");
    let slots = &got[0]["payload"]["meeting_proposal"]["slots"];
    assert_eq!(slots[0]["start"], "2026-12-03T10:00:00Z", "{}", got[0]);
    assert_eq!(
        got[0]["payload"]["meeting_proposal"]["safety_precautions"],
        "Do not meet at the centre."
    );
    // The new operator writes in K.
    let o = ok(send(
        &new,
        "referral",
        &["assistance/nas"],
        K,
        "referral2.toml",
        &referral_form("the new operator's follow-up"),
    ));
    let follow_up = sent_id(&o);

    // 6. The auditor sees every step, in order.
    let log = audit_trail(&relay, &pki).await;
    let call = find(&log, 0, "ADMIN_CALL retire-devices", |e| {
        is(e, pb::EventType::AdminCall)
            && e.actor == "admin/ops"
            && e.detail.contains("operator handover")
            && e.recipients == ["centre/joutseno"]
    });
    let revoked = find(&log, call, "KEY_REVOKED desk-1", |e| {
        is(e, pb::EventType::KeyRevoked) && e.detail.contains("desk-1")
    });
    let undeliverable = find(&log, revoked, "UNDELIVERABLE devices_retired", |e| {
        is(e, pb::EventType::Undeliverable)
            && e.message_id == id_bytes(&pending)
            && e.recipients == ["centre/joutseno"]
            && e.undeliverable_reason == i32::from(pb::UndeliverableReason::DevicesRetired)
    });
    let published = find(
        &log,
        undeliverable,
        "KEY_PUBLISHED of the new device",
        |e| is(e, pb::EventType::KeyPublished) && e.actor == "centre/joutseno",
    );
    let accepted = find(&log, published, "ACCEPTED of the re-sending", |e| {
        is(e, pb::EventType::Accepted)
            && e.message_id == id_bytes(&resent)
            && e.resend_of == id_bytes(&pending)
            && e.recipients == ["centre/joutseno"]
    });
    find(&log, accepted, "ACCEPTED of the new operator's send", |e| {
        is(e, pb::EventType::Accepted)
            && e.message_id == id_bytes(&follow_up)
            && e.sender == "centre/joutseno"
    });
    // The retired device's key, not the new one, is the revoked one: KEY_REVOKED for the
    // retirement, and once more when the CRL revoked the certificate it was published with.
    let key_revoked: Vec<&pb::Event> = log
        .iter()
        .filter(|e| is(e, pb::EventType::KeyRevoked))
        .collect();
    assert_eq!(key_revoked.len(), 2, "{key_revoked:?}");
    assert_eq!(
        key_revoked
            .iter()
            .filter(|e| e.detail.contains("certificate revoked (CRL)"))
            .count(),
        1,
        "{key_revoked:?}"
    );
    assert!(
        key_revoked
            .iter()
            .all(|e| e.recipients == ["centre/joutseno"] && e.detail.contains("desk-1")),
        "{key_revoked:?}"
    );
    relay.stop().await;
}

/// Act 2: the old centre is disabled and revoked, the new operator enrols under a new centre
/// id, and the case is transferred to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handover_to_a_new_centre_id_moves_the_case() {
    const K2: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
    let mut pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.tls.reload_interval_s = 1).await;
    let old = TestUser::new(&pki, relay.addr, "centre/kotka", "desk-1");
    let nas = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-1");
    let admin = TestUser::new(&pki, relay.addr, "admin/ops", "unused");
    for u in [&old, &nas] {
        ok(silta(u, &["keys", "publish"]));
    }
    let o = ok(send(
        &old,
        "referral",
        &["assistance/nas"],
        K2,
        "referral.toml",
        &referral_form("met in Kotka"),
    ));
    let referral = sent_id(&o);
    let o = ok(silta(&nas, &["receive", "--wait", "2"]));
    assert!(text(&o).contains(&referral), "{}", text(&o));
    let proposal_form = include_str!("../../client/forms/meeting-proposal.toml");
    let o = ok(send(
        &nas,
        "meeting-proposal",
        &["centre/kotka"],
        K2,
        "proposal.toml",
        proposal_form,
    ));
    let pending = sent_id(&o);

    // The admin disables the old centre; its pending message is reported undeliverable.
    let o = ok(silta(
        &admin,
        &[
            "admin",
            "disable",
            "centre/kotka",
            "--reason",
            "operator contract ended",
        ],
    ));
    assert!(text(&o).contains("disabled centre/kotka"), "{}", text(&o));
    ok(silta(&nas, &["inbox", "sync", "--wait", "2"]));
    assert_eq!(
        copy_state(&nas, &pending, "centre/kotka"),
        ("undeliverable".into(), "recipient_disabled".into())
    );
    // Its certificate is revoked, too.
    revoke_and_wait(&mut pki, &relay, &old.identity).await;

    // The new operator enrols as centre/kotka-2.
    let new = TestUser::new(&pki, relay.addr, "centre/kotka-2", "desk-1");
    ok(silta(&new, &["keys", "publish"]));
    // NAS transfers the case with the example form.
    let form = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../client/forms/case-transfer.toml"),
    )
    .unwrap()
    .replace("centre/demo-centre-2", "centre/kotka-2");
    let o = ok(send(
        &nas,
        "case-transfer",
        &["centre/kotka-2"],
        K2,
        "case-transfer.toml",
        &form,
    ));
    let transfer = sent_id(&o);
    let out = new.dir.path().join("in");
    ok(silta(
        &new,
        &["receive", "--out", out.to_str().unwrap(), "--wait", "2"],
    ));
    let got = received(&out);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["message_id"], transfer);
    assert_eq!(
        got[0]["payload"]["case_transfer"]["receiving_centre"],
        "centre/kotka-2"
    );
    // The new centre writes in K2: accepted.
    let o = ok(send(
        &new,
        "referral",
        &["assistance/nas"],
        K2,
        "referral.toml",
        &referral_form("taken over from Kotka"),
    ));
    let new_send = sent_id(&o);

    // The old centre, revoked and disabled, is refused at the relay's door (77: REVOKED).
    let o = send(
        &old,
        "referral",
        &["assistance/nas"],
        K2,
        "referral2.toml",
        &referral_form("still here"),
    );
    assert_eq!(o.status.code(), Some(77), "{}", text(&o));
    assert!(text(&o).contains("REVOKED"), "{}", text(&o));

    // Re-enabled, with a second certificate of centre/kotka that was never revoked: the case
    // rule refuses it (PERMISSION_DENIED; `silta` exits 1 saying the relay refused).
    ok(silta(
        &admin,
        &[
            "admin",
            "enable",
            "centre/kotka",
            "--reason",
            "closing down, reads its mail",
        ],
    ));
    let second = TestUser::new(&pki, relay.addr, "centre/kotka", "desk-2");
    let o = send(
        &second,
        "referral",
        &["assistance/nas"],
        K2,
        "referral.toml",
        &referral_form("still here"),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("the relay refused"), "{}", text(&o));
    // The exact code, as the relay answers it.
    let conn = relay.connect(&pki, &second.identity).await;
    let mut env = silta_tests::envelope(pb::MessageKind::Referral, &["assistance/nas"], b"x");
    env.case_ref = hex::decode(K2).unwrap();
    let e = conn.mailbox().send(env).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // The auditor sees every step, in order.
    let log = audit_trail(&relay, &pki).await;
    let call = find(&log, 0, "ADMIN_CALL disable", |e| {
        is(e, pb::EventType::AdminCall)
            && e.detail.contains("operator contract ended")
            && e.recipients == ["centre/kotka"]
    });
    let disabled = find(&log, call, "PRINCIPAL_DISABLED", |e| {
        is(e, pb::EventType::PrincipalDisabled) && e.recipients == ["centre/kotka"]
    });
    let undeliverable = find(&log, disabled, "UNDELIVERABLE recipient_disabled", |e| {
        is(e, pb::EventType::Undeliverable)
            && e.message_id == id_bytes(&pending)
            && e.undeliverable_reason == i32::from(pb::UndeliverableReason::RecipientDisabled)
    });
    let published = find(
        &log,
        undeliverable,
        "KEY_PUBLISHED of centre/kotka-2",
        |e| is(e, pb::EventType::KeyPublished) && e.actor == "centre/kotka-2",
    );
    let moved = find(&log, published, "CASE_MOVED", |e| {
        is(e, pb::EventType::CaseMoved)
            && e.case_ref == hex::decode(K2).unwrap()
            && e.recipients == ["centre/kotka-2"]
            && e.detail.contains("centre/kotka")
    });
    let accepted = find(&log, moved, "ACCEPTED of centre/kotka-2's send", |e| {
        is(e, pb::EventType::Accepted) && e.message_id == id_bytes(&new_send)
    });
    let enable_call = find(&log, accepted, "ADMIN_CALL enable", |e| {
        is(e, pb::EventType::AdminCall) && e.detail.contains("closing down")
    });
    let enabled = find(&log, enable_call, "PRINCIPAL_ENABLED", |e| {
        is(e, pb::EventType::PrincipalEnabled) && e.recipients == ["centre/kotka"]
    });
    find(&log, enabled, "SEND_REFUSED", |e| {
        is(e, pb::EventType::SendRefused)
            && e.actor == "centre/kotka"
            && e.case_ref == hex::decode(K2).unwrap()
    });
    relay.stop().await;
}
