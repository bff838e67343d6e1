//! Authentication: every kind of bad client certificate is refused in the TLS handshake, before
//! any handler runs.

use std::time::{Duration, Instant};

use silta_certs::{
    Principal,
    ca::{CertificateAuthority, Eku, LeafSpec, Validity},
};
use silta_client::{ConnectError, Connection};
use silta_proto::pb::{self, MessageKind};
use silta_tests::{TRUST_DOMAIN, TestIdentity, TestPki, TestRelay, envelope};

fn spec(uri: &str, ekus: Vec<Eku>, validity: Validity) -> LeafSpec {
    let principal: Principal = "centre/joutseno".parse().unwrap();
    let mut s = LeafSpec::client(&principal, TRUST_DOMAIN, validity);
    s.uris = vec![uri.to_owned()];
    s.ekus = ekus;
    s
}

const GOOD_URI: &str = "spiffe://silta.example/centre/joutseno";

/// Each bad identity, with the TLS alert the relay answers it with (None: any rejection alert).
fn bad_identities(pki: &mut TestPki) -> Vec<(&'static str, Option<TestIdentity>, &'static str)> {
    let other_ca =
        CertificateAuthority::generate("Other CA", TRUST_DOMAIN, Validity::days_from_now(30))
            .unwrap();
    let other: TestIdentity = other_ca
        .issue_client(&"centre/joutseno".parse().unwrap(), 7)
        .unwrap()
        .into();
    let revoked = pki.client("centre/joutseno");
    pki.revoke(&revoked);
    let valid = Validity::days_from_now(7);
    vec![
        ("no client certificate", None, "CertificateRequired"),
        ("certificate from another CA", Some(other), "UnknownCA"),
        (
            "expired",
            Some(pki.issue(&spec(GOOD_URI, vec![Eku::ClientAuth], Validity::expired()))),
            "CertificateExpired",
        ),
        (
            "not yet valid",
            Some(pki.issue(&spec(
                GOOD_URI,
                vec![Eku::ClientAuth],
                Validity::not_yet_valid(),
            ))),
            "CertificateExpired",
        ),
        ("revoked in the CRL", Some(revoked), "CertificateRevoked"),
        (
            "serverAuth only",
            Some(pki.issue(&spec(GOOD_URI, vec![Eku::ServerAuth], valid))),
            "UnsupportedCertificate",
        ),
        (
            "no extended key usage at all",
            Some(pki.issue(&spec(GOOD_URI, vec![], valid))),
            "AccessDenied",
        ),
        (
            "unknown role",
            Some(pki.issue(&spec(
                "spiffe://silta.example/police/x",
                vec![Eku::ClientAuth],
                valid,
            ))),
            "AccessDenied",
        ),
        (
            "foreign trust domain",
            Some(pki.issue(&spec(
                "spiffe://other.example/centre/joutseno",
                vec![Eku::ClientAuth],
                valid,
            ))),
            "AccessDenied",
        ),
        (
            "no spiffe identity",
            Some(pki.issue(&spec(
                "https://silta.example/centre/joutseno",
                vec![Eku::ClientAuth],
                valid,
            ))),
            "AccessDenied",
        ),
        (
            "two identities",
            {
                let mut s = spec(GOOD_URI, vec![Eku::ClientAuth], valid);
                s.uris.push("spiffe://silta.example/assistance/nas".into());
                Some(pki.issue(&s))
            },
            "AccessDenied",
        ),
    ]
}

#[tokio::test]
async fn every_bad_certificate_is_refused_before_any_handler() {
    let mut pki = TestPki::new();
    let cases = bad_identities(&mut pki);
    let relay = TestRelay::start(&pki, |_| {}).await;

    for (name, identity, alert) in &cases {
        let before = relay.metrics.snapshot();
        let cfg = pki.client_config(relay.addr, identity.as_ref());
        match Connection::connect(&cfg).await {
            Err(ConnectError::CertificateRejected { alert: got }) => {
                assert_eq!(&got, alert, "{name}: wrong alert");
            }
            other => panic!("{name}: expected CertificateRejected, got {other:?}"),
        }
        // Also a real call over an unchecked connection fails, and reaches no handler.
        if let Ok(conn) = Connection::connect_unchecked(&cfg).await {
            let env = envelope(MessageKind::Referral, &["assistance/nas"], b"x");
            let err = conn.mailbox().send(env).await.unwrap_err();
            assert!(
                matches!(err.code(), tonic::Code::Unavailable | tonic::Code::Unknown),
                "{name}: {err:?}"
            );
        }
        let after = relay.metrics.snapshot();
        assert_eq!(
            after.requests_allowed, before.requests_allowed,
            "{name}: a handler ran"
        );
        assert_eq!(
            after.requests_denied, before.requests_denied,
            "{name}: reached the authz layer"
        );
        assert!(
            after.handshakes_rejected > before.handshakes_rejected,
            "{name}: handshake not rejected"
        );
        assert_eq!(
            after.handshakes_accepted, before.handshakes_accepted,
            "{name}: handshake accepted"
        );
    }
    // No principal was registered, no event written.
    assert_eq!(relay.store.event_count().unwrap(), 0);

    // And a good certificate works on the same relay.
    let good = pki.client("centre/joutseno");
    Connection::connect(&pki.client_config(relay.addr, Some(&good)))
        .await
        .expect("a valid certificate is accepted");
    assert_eq!(relay.metrics.snapshot().requests_allowed, 1);
    relay.stop().await;
}

#[tokio::test]
async fn clients_that_never_handshake_do_not_delay_others() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.server.handshake_timeout_ms = 30_000).await;
    // A host (127.0.0.2) opens 600 connections that never speak, plus one that sends half a
    // ClientHello: far more than its share of handshake slots.
    let mut idle = Vec::new();
    for _ in 0..600 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        idle.push(socket.connect(relay.addr).await.unwrap());
    }
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut partial = socket.connect(relay.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut partial, &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();

    // A normal client from another address is served at once.
    let started = Instant::now();
    let nas = relay.connect_as(&pki, "assistance/nas").await;
    let centre = relay.connect_as(&pki, "centre/joutseno").await;
    let env = envelope(MessageKind::Referral, &["assistance/nas"], b"x");
    centre.mailbox().send(env).await.unwrap();
    let mut s = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(s.message().await.unwrap().is_some());
    let took = started.elapsed();
    // Waiting for slots would take the 30 s handshake timeout of the idle connections.
    assert!(
        took < Duration::from_secs(10),
        "normal client took {took:?}"
    );
    // The flood beyond the per-address limit was closed on arrival, not queued.
    let refused = relay.metrics.snapshot().handshakes_rejected;
    assert!(
        refused >= 600 - silta_relay::tls::MAX_HANDSHAKES_PER_IP as u64,
        "only {refused} of the surplus connections were refused"
    );
    drop(idle);
    relay.stop().await;
}

#[tokio::test]
async fn handshakes_that_stall_are_cut_off_at_the_timeout() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.server.handshake_timeout_ms = 200).await;
    let mut idle = tokio::net::TcpStream::connect(relay.addr).await.unwrap();
    let mut buf = [0u8; 1];
    // The relay closes the connection on its own (read returns 0 or an error), within bounds.
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read(&mut idle, &mut buf),
    )
    .await
    .expect("relay did not close a stalled handshake");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    assert_eq!(relay.metrics.snapshot().handshakes_rejected, 1);
    relay.stop().await;
}

#[tokio::test]
async fn a_new_crl_applies_to_new_connections_without_restart() {
    let mut pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.tls.reload_interval_s = 1).await;
    let soon_revoked = pki.client("centre/joutseno");
    let other = pki.client("centre/other");
    let cfg = pki.client_config(relay.addr, Some(&soon_revoked));
    Connection::connect(&cfg)
        .await
        .expect("valid before revocation");

    pki.revoke(&soon_revoked);
    // Bounded wait for the reload (1 s interval).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match Connection::connect(&cfg).await {
            Err(ConnectError::CertificateRejected { alert }) => {
                assert_eq!(alert, "CertificateRevoked");
                break;
            }
            Ok(_) => assert!(
                Instant::now() < deadline,
                "revocation not applied after 20 s"
            ),
            Err(e) => panic!("unexpected {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Connection::connect(&pki.client_config(relay.addr, Some(&other)))
        .await
        .expect("others are unaffected");

    // A broken CRL file is not loaded: the last good one stays in force (fail closed).
    std::fs::write(pki.path("crl.pem"), "not a CRL").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(matches!(
        Connection::connect(&cfg).await,
        Err(ConnectError::CertificateRejected { .. })
    ));
    Connection::connect(&pki.client_config(relay.addr, Some(&other)))
        .await
        .expect("the previous configuration is kept");
    relay.stop().await;
}

#[tokio::test]
async fn connections_made_before_a_revocation_lose_access_at_the_next_crl_reload() {
    let mut pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.tls.reload_interval_s = 1).await;
    let nas_id = pki.client("assistance/nas");
    let nas = relay.connect(&pki, &nas_id).await;
    let centre = relay.connect_as(&pki, "centre/joutseno").await;
    let mut stream = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();

    pki.revoke(&nas_id);
    // The open subscription ends with UNAUTHENTICATED within the reload interval (bounded wait).
    let ended = tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("subscription still open 20 s after the revocation");
    let err = ended.expect_err("the stream must end with an error");
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    // And any new request on the old connection is refused the same way.
    let err = nas
        .mailbox()
        .status(pb::StatusRequest {
            message_id: vec![1; 16],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    // Others carry on.
    let env = envelope(MessageKind::Referral, &["assistance/nas"], b"x");
    centre.mailbox().send(env).await.unwrap();
    relay.stop().await;
}

/// Waits (bounded) until `identity` is refused at the handshake: the relay reloaded a CRL that
/// revokes it.
async fn wait_until_refused(pki: &TestPki, relay: &TestRelay, identity: &TestIdentity) {
    let cfg = pki.client_config(relay.addr, Some(identity));
    let deadline = Instant::now() + Duration::from_secs(20);
    while Connection::connect(&cfg).await.is_ok() {
        assert!(Instant::now() < deadline, "CRL not reloaded after 20 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn key_revoked(relay: &TestRelay) -> Vec<pb::Event> {
    relay
        .events()
        .into_iter()
        .filter(|e| e.r#type == pb::EventType::KeyRevoked as i32)
        .collect()
}

/// Revocation is a logged step: the CRL reload that revokes the certificate a device published
/// its keys with appends one KEY_REVOKED event for that device, and neither a later reload nor a
/// restart logs it again.
#[tokio::test]
async fn a_crl_revoking_a_device_certificate_is_one_key_revoked_event() {
    let mut pki = TestPki::new();
    let reload = |c: &mut silta_relay::config::Config| c.tls.reload_interval_s = 1;
    let relay = TestRelay::start(&pki, reload).await;
    let id = pki.client("centre/joutseno");
    let conn = relay.connect(&pki, &id).await;
    silta_tests::publish_test_keys(&conn, &id, "centre/joutseno").await;
    drop(conn);
    // Another device that stays valid, and a revoked certificate that published nothing.
    let (_other, _) = relay.connect_with_keys(&pki, "centre/other").await;
    let bystander = pki.client("centre/bystander");
    relay.connect(&pki, &bystander).await;
    let serial = relay
        .store
        .device(&"centre/joutseno".parse().unwrap(), "test")
        .unwrap()
        .unwrap()
        .cert_serial;
    assert!(key_revoked(&relay).is_empty());

    pki.revoke(&id);
    wait_until_refused(&pki, &relay, &id).await;
    // The event is written right after the reload (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(10);
    while key_revoked(&relay).is_empty() {
        assert!(Instant::now() < deadline, "no KEY_REVOKED event");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events = key_revoked(&relay);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].actor, "");
    assert_eq!(events[0].recipients, ["centre/joutseno"]);
    assert_eq!(
        events[0].detail,
        format!("device test serial {serial}: certificate revoked (CRL)")
    );

    // Another reload (a certificate without devices revoked): nothing new for the device.
    pki.revoke(&bystander);
    wait_until_refused(&pki, &relay, &bystander).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(key_revoked(&relay).len(), 1);

    // Nor after a restart, which checks the CRL in force once more.
    let data = relay.stop_keep().await;
    let relay = TestRelay::start_in(&pki, data, reload).await;
    relay.connect_as(&pki, "centre/other").await;
    assert_eq!(key_revoked(&relay), events);
    relay.stop().await;
}
