//! The Admin service against a real relay over mutual TLS: only the admin calls it, every call
//! is in the delivery log, principals are listed with what the relay saw of them, disabling
//! cuts a principal off and reports its pending messages to their senders, retiring devices
//! reports exactly the messages nobody left can read, and expiring certificates are listed and
//! warned about by the relay's (injected) clock.

use std::time::Duration;

use rustls_pki_types::pem::PemObject as _;
use silta_client::Connection;
use silta_proto::pb::{self, MessageKind};
use silta_tests::{
    TestClock, TestIdentity, TestPki, TestRelay, envelope, envelope_of, status_of, take_items,
};
use tonic::Code;

const WAIT: Duration = Duration::from_secs(10);

fn reason(text: &str) -> Option<pb::AdminReason> {
    Some(pb::AdminReason { text: text.into() })
}

async fn disable(admin: &Connection, principal: &str) -> pb::DisablePrincipalResponse {
    admin
        .admin()
        .disable_principal(pb::DisablePrincipalRequest {
            reason: reason("operator contract ended"),
            principal: principal.into(),
        })
        .await
        .expect("disable")
        .into_inner()
}

async fn enable(admin: &Connection, principal: &str) -> pb::EnablePrincipalResponse {
    admin
        .admin()
        .enable_principal(pb::EnablePrincipalRequest {
            reason: reason("new operator in place"),
            principal: principal.into(),
        })
        .await
        .expect("enable")
        .into_inner()
}

async fn retire(
    admin: &Connection,
    principal: &str,
    devices: &[&str],
) -> Result<pb::RetireDevicesResponse, tonic::Status> {
    admin
        .admin()
        .retire_devices(pb::RetireDevicesRequest {
            reason: reason("handover"),
            principal: principal.into(),
            device_ids: devices.iter().map(|d| d.to_string()).collect(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn list(admin: &Connection, role: &str) -> Vec<pb::PrincipalInfo> {
    admin
        .admin()
        .list_principals(pb::ListPrincipalsRequest {
            reason: None,
            role: role.into(),
            page_token: String::new(),
        })
        .await
        .expect("list")
        .into_inner()
        .principals
}

/// Publishes `device` of `principal` with `identity` over `conn`.
async fn publish_device(
    conn: &Connection,
    identity: &TestIdentity,
    principal: &str,
    device: &str,
) -> Result<silta_client::keys::DeviceKeys, tonic::Status> {
    let keys = silta_client::keys::DeviceKeys::generate(device).unwrap();
    let bundle = silta_client::bundle::build(
        &keys,
        &principal.parse().unwrap(),
        identity.cert_pem.as_bytes(),
        &identity.key_pem,
    )
    .unwrap();
    conn.directory().publish_keys(bundle).await?;
    Ok(keys)
}

async fn status_of_message(
    sender: &Connection,
    id: &[u8],
) -> (pb::DeliveryState, pb::UndeliverableReason) {
    let r = sender
        .mailbox()
        .status(pb::StatusRequest {
            message_id: id.to_vec(),
        })
        .await
        .expect("status")
        .into_inner();
    let s = &r.recipients[0];
    (
        pb::DeliveryState::try_from(s.state).unwrap(),
        pb::UndeliverableReason::try_from(s.undeliverable_reason).unwrap(),
    )
}

/// Reads status items from `stream` until one says `state` for `message_id` (bounded).
async fn wait_status(
    stream: &mut tonic::Streaming<pb::MailboxItem>,
    message_id: &[u8],
    state: pb::DeliveryState,
) -> pb::StatusEvent {
    for _ in 0..20 {
        let items = take_items(stream, 1, WAIT).await;
        assert!(
            !items.is_empty(),
            "no status item {state:?} within {WAIT:?}"
        );
        if let Some(s) = status_of(&items[0])
            && s.message_id == message_id
            && s.state == i32::from(state)
        {
            return s.clone();
        }
    }
    panic!("no status item {state:?}");
}

/// Every event of `types` in the log, read by an auditor through AuditLog.Query.
async fn query_as_auditor(auditor: &Connection, types: &[pb::EventType]) -> Vec<pb::Event> {
    let mut out = Vec::new();
    let mut token = String::new();
    for _ in 0..100 {
        let r = auditor
            .audit()
            .query(pb::QueryRequest {
                filter: Some(pb::QueryFilter {
                    types: types.iter().map(|t| i32::from(*t)).collect(),
                    ..Default::default()
                }),
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

#[tokio::test]
async fn nobody_but_the_admin_calls_the_admin_service_and_the_admin_sends_nothing() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let _target = relay.connect_as(&pki, "centre/target").await;
    for who in ["centre/c", "assistance/nas", "auditor/dpo"] {
        let conn = relay.connect_as(&pki, who).await;
        let mut admin = conn.admin();
        let codes = [
            admin
                .list_principals(pb::ListPrincipalsRequest::default())
                .await
                .map(|_| ())
                .unwrap_err(),
            admin
                .expiring(pb::ExpiringRequest::default())
                .await
                .map(|_| ())
                .unwrap_err(),
            admin
                .disable_principal(pb::DisablePrincipalRequest {
                    reason: reason("x"),
                    principal: "centre/target".into(),
                })
                .await
                .map(|_| ())
                .unwrap_err(),
            admin
                .enable_principal(pb::EnablePrincipalRequest {
                    reason: reason("x"),
                    principal: "centre/target".into(),
                })
                .await
                .map(|_| ())
                .unwrap_err(),
            admin
                .retire_devices(pb::RetireDevicesRequest {
                    reason: reason("x"),
                    principal: "centre/target".into(),
                    device_ids: Vec::new(),
                })
                .await
                .map(|_| ())
                .unwrap_err(),
        ];
        for status in codes {
            assert_eq!(status.code(), Code::PermissionDenied, "{who}: {status:?}");
        }
    }
    // Nothing was disabled or logged as an admin call by them.
    assert!(
        !relay
            .events()
            .iter()
            .any(|e| e.r#type == i32::from(pb::EventType::AdminCall)
                || e.r#type == i32::from(pb::EventType::PrincipalDisabled))
    );
    // The admin may not take part in messaging.
    let admin = relay.connect_as(&pki, "admin/ops").await;
    let err = admin
        .mailbox()
        .send(envelope(
            MessageKind::Referral,
            &["centre/target"],
            b"sealed",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    relay.stop().await;
}

#[tokio::test]
async fn every_admin_call_is_an_admin_call_event_the_auditor_sees() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (_nas, _) = relay.connect_with_keys(&pki, "assistance/nas").await;
    let auditor = relay.connect_as(&pki, "auditor/dpo").await;
    let admin = relay.connect_as(&pki, "admin/ops").await;

    // Refused before anything happens: no reason, the caller itself, an unknown principal.
    let e = admin
        .admin()
        .disable_principal(pb::DisablePrincipalRequest {
            reason: None,
            principal: "assistance/nas".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = admin
        .admin()
        .disable_principal(pb::DisablePrincipalRequest {
            reason: reason("bad\nreason"),
            principal: "assistance/nas".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = admin
        .admin()
        .disable_principal(pb::DisablePrincipalRequest {
            reason: reason("oops"),
            principal: "admin/ops".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = admin
        .admin()
        .disable_principal(pb::DisablePrincipalRequest {
            reason: reason("typo"),
            principal: "centre/nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");

    list(&admin, "").await;
    admin
        .admin()
        .expiring(pb::ExpiringRequest {
            reason: reason("monthly check"),
            within_days: 10,
        })
        .await
        .unwrap();
    disable(&admin, "assistance/nas").await;
    enable(&admin, "assistance/nas").await;
    retire(&admin, "assistance/nas", &["test"]).await.unwrap();

    let calls = query_as_auditor(&auditor, &[pb::EventType::AdminCall]).await;
    let details: Vec<&str> = calls.iter().map(|e| e.detail.as_str()).collect();
    assert_eq!(
        details,
        [
            // The unknown principal's call is recorded too: it is what the admin asked.
            "Admin.DisablePrincipal principal=centre/nobody reason: typo",
            "Admin.ListPrincipals",
            "Admin.Expiring within_days=10 reason: monthly check",
            "Admin.DisablePrincipal principal=assistance/nas reason: operator contract ended",
            "Admin.EnablePrincipal principal=assistance/nas reason: new operator in place",
            "Admin.RetireDevices principal=assistance/nas devices=test reason: handover",
        ]
    );
    assert!(calls.iter().all(|e| e.actor == "admin/ops"));
    assert_eq!(calls[3].recipients, ["assistance/nas"]);
    // And the effects, each an event of its own.
    let effects = query_as_auditor(
        &auditor,
        &[
            pb::EventType::PrincipalDisabled,
            pb::EventType::PrincipalEnabled,
            pb::EventType::KeyRevoked,
        ],
    )
    .await;
    let types: Vec<i32> = effects.iter().map(|e| e.r#type).collect();
    assert_eq!(
        types,
        [
            pb::EventType::PrincipalDisabled as i32,
            pb::EventType::PrincipalEnabled as i32,
            pb::EventType::KeyRevoked as i32,
        ]
    );
    assert!(
        effects[2].detail.starts_with("device test key "),
        "{effects:?}"
    );
    relay.stop().await;
}

#[tokio::test]
async fn list_principals_shows_first_and_last_seen_certificate_devices_and_pending() {
    let pki = TestPki::new();
    let clock = TestClock::new();
    let relay = TestRelay::start_clocked(&pki, &clock, |_| {}).await;
    let nas_id = pki.client("assistance/nas");
    let nas = relay.connect(&pki, &nas_id).await;
    let keys = publish_device(&nas, &nas_id, "assistance/nas", "desk-1")
        .await
        .unwrap();
    let centre = relay.connect_as(&pki, "centre/c").await;
    centre
        .mailbox()
        .send(envelope(
            MessageKind::Referral,
            &["assistance/nas"],
            b"sealed",
        ))
        .await
        .unwrap();
    let admin = relay.connect_as(&pki, "admin/ops").await;

    let all = list(&admin, "").await;
    let names: Vec<&str> = all.iter().map(|p| p.principal.as_str()).collect();
    assert_eq!(names, ["admin/ops", "assistance/nas", "centre/c"]);
    let info = &all[1];
    assert_eq!(info.certificate_serial, nas_id.serial);
    let der = rustls_pki_types::CertificateDer::from_pem_slice(nas_id.cert_pem.as_bytes()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(
        info.certificate_not_after.unwrap().seconds,
        cert.validity().not_after.timestamp()
    );
    assert_eq!(info.first_seen, info.last_seen);
    assert_eq!((info.pending, info.pending_limit), (1, 10_000));
    assert_eq!((info.device_count, info.device_limit), (1, 32));
    assert_eq!(info.devices.len(), 1);
    assert_eq!(info.devices[0].device_id, "desk-1");
    assert_eq!(info.devices[0].key_fingerprint, keys.fingerprint());
    assert_eq!(info.devices[0].certificate_serial, nas_id.serial);
    assert!(!info.devices[0].retired && !info.disabled);

    // Last seen moves (at most once a minute), first seen stays.
    clock.advance(Duration::from_secs(120));
    nas.directory()
        .get_keys(pb::GetKeysRequest {
            principal: "centre/c".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let later = list(&admin, "assistance").await;
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].first_seen, info.first_seen);
    assert_eq!(
        later[0].last_seen.unwrap().seconds,
        info.first_seen.unwrap().seconds + 120
    );

    // Pages continue after the token; a bad role or token is INVALID_ARGUMENT.
    let rest = admin
        .admin()
        .list_principals(pb::ListPrincipalsRequest {
            page_token: "assistance/nas".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.principals.len(), 1);
    assert_eq!(rest.principals[0].principal, "centre/c");
    for (role, token) in [("boss", ""), ("", "not a principal")] {
        let e = admin
            .admin()
            .list_principals(pb::ListPrincipalsRequest {
                role: role.into(),
                page_token: token.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    }
    relay.stop().await;
}

#[tokio::test]
async fn disable_cuts_the_stream_refuses_requests_and_sends_and_reports_pending_messages() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (nas, nas_keys) = relay.connect_with_keys(&pki, "assistance/nas").await;
    let centre = relay.connect_as(&pki, "centre/c").await;
    let admin = relay.connect_as(&pki, "admin/ops").await;
    let auditor = relay.connect_as(&pki, "auditor/dpo").await;
    let mut centre_stream = centre
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut nas_stream = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();

    let env = envelope(MessageKind::Referral, &["assistance/nas"], b"sealed");
    centre.mailbox().send(env.clone()).await.unwrap();
    let got = take_items(&mut nas_stream, 1, WAIT).await;
    assert!(envelope_of(&got[0]).is_some());
    wait_status(
        &mut centre_stream,
        &env.message_id,
        pb::DeliveryState::Delivered,
    )
    .await;

    let answer = disable(&admin, "assistance/nas").await;
    assert_eq!(answer.undeliverable, 1);

    // The live stream ends, PERMISSION_DENIED (bounded wait).
    let end = tokio::time::timeout(WAIT, nas_stream.message())
        .await
        .expect("the disabled principal's stream ended");
    let status = end.expect_err("stream ended with an error");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("disabled"), "{status:?}");
    // Its next request, of any kind, is refused.
    let e = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = nas.ack(&nas_keys, &env).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // Sends to it are refused, naming it.
    let e = centre
        .mailbox()
        .send(envelope(
            MessageKind::Referral,
            &["assistance/nas"],
            b"sealed",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("assistance/nas"), "{e:?}");

    // The sender learns it: a status item, Mailbox.Status, an UNDELIVERABLE event.
    let item = wait_status(
        &mut centre_stream,
        &env.message_id,
        pb::DeliveryState::Undeliverable,
    )
    .await;
    assert_eq!(
        item.undeliverable_reason,
        i32::from(pb::UndeliverableReason::RecipientDisabled)
    );
    assert_eq!(item.recipient, "assistance/nas");
    assert_eq!(
        status_of_message(&centre, &env.message_id).await,
        (
            pb::DeliveryState::Undeliverable,
            pb::UndeliverableReason::RecipientDisabled
        )
    );
    let events = query_as_auditor(&auditor, &[pb::EventType::Undeliverable]).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].message_id, env.message_id);
    assert_eq!(events[0].recipients, ["assistance/nas"]);
    assert_eq!(
        events[0].undeliverable_reason,
        i32::from(pb::UndeliverableReason::RecipientDisabled)
    );
    let listed = list(&admin, "assistance").await;
    assert!(listed[0].disabled);
    assert_eq!(listed[0].disabled_reason, "operator contract ended");
    assert_eq!(listed[0].pending, 0);

    // Disabling again is idempotent.
    let again = disable(&admin, "assistance/nas").await;
    assert_eq!(
        (again.log_index, again.undeliverable),
        (answer.log_index, 0)
    );

    // Enabled again: served again, on the same connection; the reported message stays final.
    enable(&admin, "assistance/nas").await;
    let e = nas.ack(&nas_keys, &env).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    centre
        .mailbox()
        .send(envelope(
            MessageKind::Referral,
            &["assistance/nas"],
            b"sealed",
        ))
        .await
        .unwrap();
    let mut nas_stream = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(take_items(&mut nas_stream, 1, WAIT).await.len(), 1);
    relay.stop().await;
}

/// `Connection` has no ack helper; this one acknowledges `env` with `keys`.
trait AckExt {
    async fn ack(
        &self,
        keys: &silta_client::keys::DeviceKeys,
        env: &pb::Envelope,
    ) -> Result<(), tonic::Status>;
}

impl AckExt for Connection {
    async fn ack(
        &self,
        keys: &silta_client::keys::DeviceKeys,
        env: &pb::Envelope,
    ) -> Result<(), tonic::Status> {
        self.mailbox()
            .ack(silta_tests::ack_of(keys, env))
            .await
            .map(|_| ())
    }
}

#[tokio::test]
async fn retiring_devices_reports_only_what_no_remaining_device_can_read() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = relay.connect_as(&pki, "centre/c").await;
    let admin = relay.connect_as(&pki, "admin/ops").await;
    let mut centre_stream = centre
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let send = |tag: &'static [u8]| {
        let centre = centre.clone();
        async move {
            let env = envelope(MessageKind::Referral, &["assistance/nas"], tag);
            centre.mailbox().send(env.clone()).await.unwrap();
            env
        }
    };
    let active = |conn: Connection| async move {
        let r = conn
            .directory()
            .get_keys(pb::GetKeysRequest {
                principal: "assistance/nas".into(),
                include_history: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        (r.active.len(), r.history.len())
    };

    // The old operator's device, and a message sealed to it.
    let old_id = pki.client("assistance/nas");
    let old = relay.connect(&pki, &old_id).await;
    publish_device(&old, &old_id, "assistance/nas", "test")
        .await
        .unwrap();
    let m1 = send(b"m1").await;

    // Unknown device: NOT_FOUND, nothing retired.
    let e = retire(&admin, "assistance/nas", &["nope"])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = retire(&admin, "assistance/nobody", &[]).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");

    let r = retire(&admin, "assistance/nas", &[]).await.unwrap();
    assert_eq!(r.retired, ["test"]);
    assert_eq!(r.undeliverable, 1);
    let item = wait_status(
        &mut centre_stream,
        &m1.message_id,
        pb::DeliveryState::Undeliverable,
    )
    .await;
    assert_eq!(
        item.undeliverable_reason,
        i32::from(pb::UndeliverableReason::DevicesRetired)
    );
    // Out of the directory, kept in its history; the principal stays enabled.
    assert_eq!(active(centre.clone()).await, (0, 1));
    // The retired certificate cannot bring the device back.
    let e = publish_device(&old, &old_id, "assistance/nas", "test")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // The new operator enrols under the same id with a new certificate.
    let new_id = pki.client("assistance/nas");
    let new = relay.connect(&pki, &new_id).await;
    publish_device(&new, &new_id, "assistance/nas", "test")
        .await
        .unwrap();
    assert_eq!(active(centre.clone()).await, (1, 2));
    let m2 = send(b"m2").await;
    // A second desk joins after m2, then m3.
    let desk_id = pki.client("assistance/nas");
    let desk = relay.connect(&pki, &desk_id).await;
    publish_device(&desk, &desk_id, "assistance/nas", "desk-2")
        .await
        .unwrap();
    let m3 = send(b"m3").await;

    // Retiring the new "test" leaves desk-2: m2 predates it (nobody left can read m2), m3 was
    // sealed to desk-2 too and stays pending.
    let r = retire(&admin, "assistance/nas", &["test"]).await.unwrap();
    assert_eq!(r.retired, ["test"]);
    assert_eq!(r.undeliverable, 1);
    assert_eq!(
        status_of_message(&centre, &m2.message_id).await,
        (
            pb::DeliveryState::Undeliverable,
            pb::UndeliverableReason::DevicesRetired
        )
    );
    assert_eq!(
        status_of_message(&centre, &m3.message_id).await.0,
        pb::DeliveryState::Pending
    );
    // Retiring a retired device again changes nothing.
    let r = retire(&admin, "assistance/nas", &["test"]).await.unwrap();
    assert!(r.retired.is_empty());
    assert_eq!(r.undeliverable, 0);
    let info = list(&admin, "assistance").await;
    assert_eq!(info[0].device_count, 1);
    assert_eq!(info[0].pending, 1);
    assert!(!info[0].disabled);
    let revoked = relay
        .events()
        .into_iter()
        .filter(|e| e.r#type == i32::from(pb::EventType::KeyRevoked))
        .count();
    assert_eq!(revoked, 2);
    relay.stop().await;
}

#[tokio::test]
async fn expiring_lists_what_runs_out_within_the_window_by_the_relay_clock() {
    let pki = TestPki::new();
    let clock = TestClock::new();
    let relay = TestRelay::start_clocked(&pki, &clock, |_| {}).await;
    let _centre = relay.connect_as(&pki, "centre/c").await;
    let admin = relay.connect_as(&pki, "admin/ops").await;
    let expiring = |days: u32| {
        let admin = admin.clone();
        async move {
            admin
                .admin()
                .expiring(pb::ExpiringRequest {
                    reason: None,
                    within_days: days,
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let whats = |r: &pb::ExpiringResponse| {
        let mut w: Vec<String> = r
            .items
            .iter()
            .map(|i| format!("{} {}", i.what, i.subject))
            .collect();
        w.sort();
        w
    };
    // The test PKI: the relay certificate runs 30 days, the CRL 60, client certificates 90, the
    // CA 365 (tests/src/lib.rs).
    let r = expiring(0).await;
    assert_eq!(r.within_days, 30);
    let all = whats(&r);
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(all[0].starts_with("relay-certificate "), "{all:?}");
    assert!(r.items.iter().all(|i| !i.expired));
    let year = whats(&expiring(365).await);
    assert_eq!(year.len(), 5, "{year:?}");
    assert!(year.contains(&"principal-certificate centre/c".to_owned()));
    assert!(year.contains(&"principal-certificate admin/ops".to_owned()));
    assert!(year.iter().any(|w| w.starts_with("ca-certificate ")));
    assert!(year.iter().any(|w| w.starts_with("crl ")));
    // 56 days on by the relay's clock: the relay certificate is past (listed, marked expired),
    // the CRL has 4 days left, the client certificates 34, the CA is far off.
    clock.advance(Duration::from_secs(56 * 86_400));
    let r = expiring(5).await;
    let soon = whats(&r);
    assert_eq!(soon.len(), 2, "{soon:?}");
    for i in &r.items {
        assert!(i.what == "relay-certificate" || i.what == "crl", "{i:?}");
        assert_eq!(i.expired, i.what == "relay-certificate", "{i:?}");
    }
    let later = whats(&expiring(40).await);
    assert_eq!(later.len(), 4, "{later:?}");
    assert!(later.contains(&"principal-certificate admin/ops".to_owned()));
    assert!(later.contains(&"principal-certificate centre/c".to_owned()));
    let e = admin
        .admin()
        .expiring(pb::ExpiringRequest {
            reason: None,
            within_days: 100_000,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    relay.stop().await;
}

const SILTA: &str = env!("CARGO_BIN_EXE_silta-under-test");

fn silta(user: &silta_tests::TestUser, args: &[&str]) -> (i32, String) {
    let o = std::process::Command::new(SILTA)
        .arg("--config")
        .arg(user.dir.path().join("silta.toml"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silta_admin_from_the_command_line() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = silta_tests::TestUser::new(&pki, relay.addr, "centre/espoo-1", "server-1");
    let admin = silta_tests::TestUser::new(&pki, relay.addr, "admin/ops", "unused");
    let (code, out) = silta(&centre, &["keys", "publish"]);
    assert_eq!(code, 0, "{out}");

    let (code, out) = silta(
        &admin,
        &[
            "admin",
            "disable",
            "centre/espoo-1",
            "--reason",
            "operator contract ended",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("disabled centre/espoo-1"), "{out}");
    let (code, out) = silta(&admin, &["admin", "principals", "--role", "centre"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("centre/espoo-1") && out.contains("DISABLED operator contract ended"),
        "{out}"
    );
    assert!(out.contains("server-1"), "{out}");
    let (code, out) = silta(&admin, &["admin", "expiring", "--days", "100"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("expiring within 100 days"), "{out}");
    assert!(
        out.contains("principal-certificate  centre/espoo-1"),
        "{out}"
    );

    // Usage errors (64) before anything is sent: no reason, not a principal.
    let before = relay.events().len();
    let (code, out) = silta(&admin, &["admin", "enable", "centre/espoo-1"]);
    assert_eq!(code, 64, "{out}");
    let (code, out) = silta(&admin, &["admin", "enable", "Espoo", "--reason", "x"]);
    assert_eq!(code, 64, "{out}");
    assert_eq!(relay.events().len(), before);

    // The disabled centre is refused (1, the relay's reason said), and so is any non-admin.
    let (code, out) = silta(&centre, &["keys", "publish"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("disabled"), "{out}");
    let nas = silta_tests::TestUser::new(&pki, relay.addr, "assistance/nas", "desk-1");
    let (code, out) = silta(&nas, &["admin", "principals"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("the relay refused"), "{out}");

    let (code, out) = silta(
        &admin,
        &[
            "admin",
            "enable",
            "centre/espoo-1",
            "--reason",
            "new operator enrolled",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = silta(&centre, &["keys", "publish"]);
    assert_eq!(code, 0, "{out}");
    relay.stop().await;
}

#[tokio::test]
async fn an_undeliverable_message_is_purged_like_any_finished_one() {
    let pki = TestPki::new();
    let clock = TestClock::new();
    let relay = TestRelay::start_clocked(&pki, &clock, |c| {
        c.retention.sweep_interval_ms = 20;
        c.retention.purge_after_final_s = 60;
    })
    .await;
    let _nas = relay.connect_as(&pki, "assistance/nas").await;
    let centre = relay.connect_as(&pki, "centre/c").await;
    let admin = relay.connect_as(&pki, "admin/ops").await;
    let env = envelope(MessageKind::Referral, &["assistance/nas"], b"sealed");
    centre.mailbox().send(env.clone()).await.unwrap();
    assert_eq!(disable(&admin, "assistance/nas").await.undeliverable, 1);
    // Kept until retention.purge_after_final_s after the copy became final, then purged.
    assert!(
        relay
            .store
            .sealed_ciphertext(&env.message_id)
            .unwrap()
            .is_some()
    );
    clock.advance(Duration::from_secs(61));
    let deadline = tokio::time::Instant::now() + WAIT;
    while relay
        .store
        .sealed_ciphertext(&env.message_id)
        .unwrap()
        .is_some()
    {
        assert!(tokio::time::Instant::now() < deadline, "never purged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let purged: Vec<pb::Event> = relay
        .events()
        .into_iter()
        .filter(|e| e.r#type == i32::from(pb::EventType::Purged))
        .collect();
    assert_eq!(purged.len(), 1);
    assert_eq!(purged[0].message_id, env.message_id);
    assert!(
        purged[0].detail.contains("retention.purge_after_final_s"),
        "{purged:?}"
    );
    relay.stop().await;
}

#[tokio::test]
async fn a_large_mailbox_is_reported_in_batches_with_its_counters_right() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, silta_tests::unlimited).await;
    let _nas = relay.connect_as(&pki, "assistance/nas").await;
    let centre = relay.connect_as(&pki, "centre/c").await;
    let admin = relay.connect_as(&pki, "admin/ops").await;
    // More than one batch (64 items per transaction).
    let n = silta_relay::admin::BATCH as u64 * 2 + 5;
    for _ in 0..n {
        centre
            .mailbox()
            .send(envelope(
                MessageKind::Referral,
                &["assistance/nas"],
                b"sealed",
            ))
            .await
            .unwrap();
    }
    assert_eq!(list(&admin, "assistance").await[0].pending, n);
    assert_eq!(disable(&admin, "assistance/nas").await.undeliverable, n);
    assert_eq!(list(&admin, "assistance").await[0].pending, 0);
    let undeliverable = relay
        .events()
        .into_iter()
        .filter(|e| e.r#type == i32::from(pb::EventType::Undeliverable))
        .count() as u64;
    assert_eq!(undeliverable, n);
    // The per-sender count went down too: once enabled, the sender's quota is whole again.
    enable(&admin, "assistance/nas").await;
    relay
        .store
        .write(|trees| {
            trees.transaction(|tx| {
                assert_eq!(tx.pair_pending("centre/c", "assistance/nas")?, 0);
                Ok(())
            })
        })
        .await
        .unwrap();
    relay.stop().await;
}

/// Subscribes over `conn`; the refusal's status, whether it comes at once or as the stream's
/// first item.
async fn subscribe_refusal(conn: &Connection) -> tonic::Status {
    match conn
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
    {
        Err(e) => e,
        Ok(s) => tokio::time::timeout(WAIT, s.into_inner().message())
            .await
            .expect("the stream answered")
            .expect_err("the subscription was refused"),
    }
}

/// GetKeys with the whole history of `principal`.
async fn keys_with_history(conn: &Connection, principal: &str) -> pb::GetKeysResponse {
    conn.directory()
        .get_keys(pb::GetKeysRequest {
            principal: principal.into(),
            include_history: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn the_certificates_of_retired_devices_get_nothing_more() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = relay.connect_as(&pki, "centre/c").await;
    let admin = relay.connect_as(&pki, "admin/ops").await;
    // The old operator: two desks, each with its own certificate; one of them subscribed.
    let old_id = pki.client("assistance/nas");
    let old = relay.connect(&pki, &old_id).await;
    publish_device(&old, &old_id, "assistance/nas", "test")
        .await
        .unwrap();
    let spare_id = pki.client("assistance/nas");
    let spare = relay.connect(&pki, &spare_id).await;
    publish_device(&spare, &spare_id, "assistance/nas", "spare")
        .await
        .unwrap();
    let mut old_stream = old
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();

    // Handover: every device retired; nothing revoked yet.
    let r = retire(&admin, "assistance/nas", &[]).await.unwrap();
    assert_eq!(r.retired, ["spare", "test"]);
    // The open stream ends (bounded wait).
    let end = tokio::time::timeout(WAIT, old_stream.message())
        .await
        .expect("the retired certificate's stream ended");
    let e = end.expect_err("ended with an error");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message().contains("retired by the administrator"),
        "{e:?}"
    );
    // A new device id with the retired certificate: refused.
    let e = publish_device(&old, &old_id, "assistance/nas", "laptop-2")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message().contains("retired by the administrator"),
        "{e:?}"
    );
    // The retired id re-enrolled with the old operator's other (retired) certificate: refused.
    let e = publish_device(&spare, &spare_id, "assistance/nas", "test")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // The new operator enrols; the centre sends it a message.
    let new_id = pki.client("assistance/nas");
    let new = relay.connect(&pki, &new_id).await;
    let keys = publish_device(&new, &new_id, "assistance/nas", "test")
        .await
        .unwrap();
    let env = envelope(
        MessageKind::Referral,
        &["assistance/nas"],
        b"for the new operator",
    );
    centre.mailbox().send(env.clone()).await.unwrap();
    // The old operator's certificates read nothing and settle nothing of it.
    for conn in [&old, &spare] {
        let e = subscribe_refusal(conn).await;
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        let e = conn
            .mailbox()
            .ack(silta_tests::ack_of(&keys, &env))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        let e = conn
            .directory()
            .get_keys(pb::GetKeysRequest {
                principal: "centre/c".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    }
    // The new operator receives and acknowledges it.
    let mut new_stream = new
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let got = take_items(&mut new_stream, 1, WAIT).await;
    assert_eq!(
        envelope_of(&got[0])
            .unwrap()
            .envelope
            .as_ref()
            .unwrap()
            .message_id,
        env.message_id
    );
    new.mailbox()
        .ack(silta_tests::ack_of(&keys, &env))
        .await
        .unwrap();
    assert_eq!(
        status_of_message(&centre, &env.message_id).await.0,
        pb::DeliveryState::Acknowledged
    );
    // Known after a restart too (the store keeps the retired certificates).
    let data = relay.stop_keep().await;
    let relay = TestRelay::start_in(&pki, data, |_| {}).await;
    let Err(e) = Connection::connect(&pki.client_config(relay.addr, Some(&spare_id))).await else {
        panic!("the retired certificate passed the health check");
    };
    assert!(
        e.to_string().contains("retired by the administrator"),
        "{e}"
    );
    relay.stop().await;
}

#[tokio::test]
async fn get_keys_says_when_each_bundle_stopped_being_current() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = relay.connect_as(&pki, "centre/c").await;
    let admin = relay.connect_as(&pki, "admin/ops").await;
    let id = pki.client("assistance/nas");
    let nas = relay.connect(&pki, &id).await;
    publish_device(&nas, &id, "assistance/nas", "test")
        .await
        .unwrap();
    // New keys for the same device, then a second desk.
    publish_device(&nas, &id, "assistance/nas", "test")
        .await
        .unwrap();
    let desk_id = pki.client("assistance/nas");
    let desk = relay.connect(&pki, &desk_id).await;
    publish_device(&desk, &desk_id, "assistance/nas", "desk-2")
        .await
        .unwrap();

    let r = keys_with_history(&centre, "assistance/nas").await;
    let h: Vec<(u64, u64)> = r
        .history
        .iter()
        .map(|b| (b.log_index, b.superseded_at_index))
        .collect();
    assert_eq!(h.len(), 3);
    let (b1, b2, b3) = (h[0].0, h[1].0, h[2].0);
    assert_eq!(h, [(b1, b2), (b2, 0), (b3, 0)]);
    assert!(r.active.iter().all(|b| b.superseded_at_index == 0));

    // Retiring "test": its current bundle ends at the KEY_REVOKED event.
    let retired = retire(&admin, "assistance/nas", &["test"]).await.unwrap();
    let revoked_at = retired.log_index;
    assert!(revoked_at > b3);
    let r = keys_with_history(&centre, "assistance/nas").await;
    let h: Vec<(u64, u64)> = r
        .history
        .iter()
        .map(|b| (b.log_index, b.superseded_at_index))
        .collect();
    assert_eq!(h, [(b1, b2), (b2, revoked_at), (b3, 0)]);
    assert_eq!(r.active.len(), 1);
    assert_eq!(r.active[0].superseded_at_index, 0);

    // A successor enrols under the id: the retired bundle still ended at its retirement.
    let new_id = pki.client("assistance/nas");
    let new = relay.connect(&pki, &new_id).await;
    publish_device(&new, &new_id, "assistance/nas", "test")
        .await
        .unwrap();
    let r = keys_with_history(&centre, "assistance/nas").await;
    let h: Vec<u64> = r.history.iter().map(|b| b.superseded_at_index).collect();
    assert_eq!(h, [b2, revoked_at, 0, 0]);
    relay.stop().await;
}

#[tokio::test]
async fn a_disable_cut_short_finishes_at_start_with_only_what_was_accepted_before_it() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (_nas, _keys) = relay.connect_with_keys(&pki, "assistance/nas").await;
    let centre = relay.connect_as(&pki, "centre/c").await;
    let m1 = envelope(MessageKind::Referral, &["assistance/nas"], b"m1");
    let m2 = envelope(MessageKind::Referral, &["assistance/nas"], b"m2");
    centre.mailbox().send(m1.clone()).await.unwrap();
    let at = centre
        .mailbox()
        .send(m2.clone())
        .await
        .unwrap()
        .into_inner()
        .log_index;
    let data = relay.stop_keep().await;
    {
        // As a relay that crashed after recording the disable, before any report, would leave
        // it; the disable is dated m2's acceptance, so only m1 was accepted before it.
        let store = silta_tests::open_store_offline(data.path());
        let tree = store.raw_tree("principal_record").unwrap();
        let raw = tree.get("assistance/nas").unwrap().unwrap();
        let mut rec =
            <silta_relay::store::PrincipalRecord as prost::Message>::decode(&*raw).unwrap();
        rec.disabled = true;
        rec.disabled_index = at;
        tree.insert("assistance/nas", prost::Message::encode_to_vec(&rec))
            .unwrap();
        store.close().unwrap();
    }
    let relay = TestRelay::start_in(&pki, data, |_| {}).await;
    let centre = relay.connect_as(&pki, "centre/c").await;
    let mut reported = false;
    for _ in 0..100 {
        if status_of_message(&centre, &m1.message_id).await
            == (
                pb::DeliveryState::Undeliverable,
                pb::UndeliverableReason::RecipientDisabled,
            )
        {
            reported = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reported, "m1 was not reported within 10 s of the restart");
    assert_eq!(
        status_of_message(&centre, &m2.message_id).await.0,
        pb::DeliveryState::Pending
    );
    relay.stop().await;
}

#[tokio::test]
async fn retiring_counts_no_device_with_a_revoked_certificate_as_a_reader() {
    let mut pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.tls.reload_interval_s = 1).await;
    let centre = relay.connect_as(&pki, "centre/c").await;
    let admin = relay.connect_as(&pki, "admin/ops").await;
    let id = pki.client("assistance/nas");
    let nas = relay.connect(&pki, &id).await;
    publish_device(&nas, &id, "assistance/nas", "test")
        .await
        .unwrap();
    let lost_id = pki.client("assistance/nas");
    let lost = relay.connect(&pki, &lost_id).await;
    publish_device(&lost, &lost_id, "assistance/nas", "lost")
        .await
        .unwrap();
    // The lost desk's certificate is revoked: it leaves the directory (bounded wait for the
    // relay to reload the CRL).
    pki.revoke(&lost_id);
    let mut gone = false;
    for _ in 0..100 {
        if keys_with_history(&centre, "assistance/nas")
            .await
            .active
            .len()
            == 1
        {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the revoked desk still in the directory after 10 s");
    // Sealed to "test" only.
    let m = envelope(MessageKind::Referral, &["assistance/nas"], b"m");
    centre.mailbox().send(m.clone()).await.unwrap();
    // Retiring "test" leaves nobody who can read m.
    let r = retire(&admin, "assistance/nas", &["test"]).await.unwrap();
    assert_eq!(r.undeliverable, 1);
    assert_eq!(
        status_of_message(&centre, &m.message_id).await,
        (
            pb::DeliveryState::Undeliverable,
            pb::UndeliverableReason::DevicesRetired
        )
    );
    relay.stop().await;
}

#[tokio::test]
async fn a_reason_with_invisible_or_reordering_characters_is_refused() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let _nas = relay.connect_as(&pki, "assistance/nas").await;
    let admin = relay.connect_as(&pki, "admin/ops").await;
    let before = relay.events().len();
    for text in [
        "handover \u{202E}txt.exe",
        "hand\u{200B}over",
        "\u{2066}handover\u{2069}",
        "handover\u{FEFF}",
    ] {
        let e = admin
            .admin()
            .disable_principal(pb::DisablePrincipalRequest {
                reason: reason(text),
                principal: "assistance/nas".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{text:?}: {e:?}");
    }
    // Nothing reached the log; the principal is not disabled.
    assert_eq!(relay.events().len(), before);
    assert!(!list(&admin, "assistance").await[0].disabled);
    relay.stop().await;
}

#[test]
fn log_key_rotate_refuses_a_folder_without_a_log_key() {
    let pki = TestPki::new();
    let data = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        data.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let conf = tempfile::tempdir().unwrap();
    let config = conf.path().join("relay.toml");
    std::fs::write(&config, pki.relay_config_toml(data.path())).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_silta-relay-under-test"))
        .arg("--config")
        .arg(&config)
        .args(["log-key", "rotate"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no log key to rotate"), "{stderr}");
    // Nothing made: no key, no next key, no database.
    let left: Vec<_> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
