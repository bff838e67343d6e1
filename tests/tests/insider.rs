//! Attacks by a participant that holds a valid certificate (issue 9): each test performs the
//! attack as a hostile centre or a careless desk would, over real TLS against the real relay, and
//! asserts that the relay stays available to everyone else, its log stays small and verifiable,
//! and nothing is stored that should not be.

use std::time::Duration;

use silta_proto::pb::{self, MessageKind};
use silta_tests::{TestPki, TestRelay, envelope, publish_test_keys, take_items};
use tonic::Code;

const NAS: &str = "assistance/nas";

fn bundle_for(
    identity: &silta_tests::TestIdentity,
    principal: &str,
    device: &str,
    created_at: std::time::SystemTime,
    padding: usize,
) -> pb::KeyBundle {
    let keys = silta_client::keys::DeviceKeys::generate(device).unwrap();
    bundle_with(&keys, identity, principal, created_at, padding)
}

fn bundle_with(
    keys: &silta_client::keys::DeviceKeys,
    identity: &silta_tests::TestIdentity,
    principal: &str,
    created_at: std::time::SystemTime,
    padding: usize,
) -> pb::KeyBundle {
    let mut bundle = silta_client::bundle::build(
        keys,
        &principal.parse().unwrap(),
        identity.cert_pem.as_bytes(),
        &identity.key_pem,
    )
    .unwrap();
    // Re-sign content with another creation time where asked.
    let mut content: pb::KeyBundleContent =
        prost::Message::decode(bundle.content.as_slice()).unwrap();
    content.created_at = Some(prost_types::Timestamp::from(created_at));
    bundle.content = prost::Message::encode_to_vec(&content);
    bundle.device_signature = keys
        .sign(silta_proto::context::KEY_POSSESSION, &bundle.content)
        .to_vec();
    bundle.signature = silta_certs::signing::sign_with_key_pem(
        &identity.key_pem,
        silta_proto::context::KEY_BUNDLE,
        &bundle.content,
    )
    .unwrap();
    if padding > 0 {
        bundle.certificate_chain.push(vec![0x30; padding]);
    }
    bundle
}

/// Item 2: a padded certificate chain, an oversized bundle, a bundle dated in the future, too
/// many devices and too many bundles are refused precisely, and nothing is stored for them.
#[tokio::test]
async fn the_key_directory_is_bounded() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| {
        c.limits.max_devices_per_principal = 3;
        c.limits.max_bundles_per_device = 4;
    })
    .await;
    let id = pki.client("centre/hostile");
    let conn = relay.connect(&pki, &id).await;
    let now = std::time::SystemTime::now();
    let before = relay.fingerprint();
    let publish = |b: pb::KeyBundle| {
        let conn = conn.clone();
        async move { conn.directory().publish_keys(b).await }
    };
    // Junk after the certificate: the chain holds certificates only.
    let err = publish(bundle_for(&id, "centre/hostile", "d1", now, 2000))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().contains("certificate_chain[1]"),
        "{}",
        err.message()
    );
    // Padded beyond the size limit (the historical attack: 64 KiB of junk per bundle).
    let err = publish(bundle_for(&id, "centre/hostile", "d1", now, 60_000))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    // Dated 2100: it would outrank every later bundle for the device in a client that trusted it.
    let year_2100 = std::time::UNIX_EPOCH + Duration::from_secs(4_102_444_800);
    let err = publish(bundle_for(&id, "centre/hostile", "default", year_2100, 0))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("future"), "{}", err.message());
    // Another device's public keys, without proof of holding its private key.
    let mut stolen = bundle_for(&id, "centre/hostile", "d1", now, 0);
    stolen.device_signature = vec![0; 64];
    let err = publish(stolen).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().contains("device_signature"),
        "{}",
        err.message()
    );
    assert_eq!(
        relay.fingerprint(),
        before,
        "nothing stored for refused bundles"
    );

    // Devices and bundles per device are capped, naming the limit.
    for d in ["d1", "d2", "d3"] {
        publish(bundle_for(&id, "centre/hostile", d, now, 0))
            .await
            .unwrap();
    }
    let err = publish(bundle_for(&id, "centre/hostile", "d4", now, 0))
        .await
        .unwrap_err();
    // Waiting does not lift it: FAILED_PRECONDITION, not RESOURCE_EXHAUSTED.
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("limits.max_devices_per_principal"),
        "{}",
        err.message()
    );
    for _ in 0..3 {
        publish(bundle_for(&id, "centre/hostile", "d1", now, 0))
            .await
            .unwrap();
    }
    let err = publish(bundle_for(&id, "centre/hostile", "d1", now, 0))
        .await
        .unwrap_err();
    // Waiting does not lift it: FAILED_PRECONDITION, not RESOURCE_EXHAUSTED.
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("limits.max_bundles_per_device"),
        "{}",
        err.message()
    );

    // GetKeys: the active bundles only, unless the history is asked for.
    let keys = relay.connect_as(&pki, NAS).await;
    let resp = keys
        .directory()
        .get_keys(pb::GetKeysRequest {
            principal: "centre/hostile".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.active.len(), 3);
    assert!(resp.history.is_empty());
    assert!(resp.next_page_token.is_empty());
    let resp = keys
        .directory()
        .get_keys(pb::GetKeysRequest {
            principal: "centre/hostile".into(),
            include_history: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.history.len(), 6);
    let indexes: Vec<u64> = resp.history.iter().map(|b| b.log_index).collect();
    assert!(indexes.windows(2).all(|w| w[0] < w[1]), "in log order");
    assert_eq!(resp.history.iter().filter(|b| b.active).count(), 3);
    relay.stop().await;
}

/// Item 2: the history comes in pages bounded by count, and a page token carries on.
#[tokio::test]
async fn key_history_is_paginated() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.limits.max_bundles_per_device = 500).await;
    let id = pki.client("centre/busy");
    let conn = relay.connect(&pki, &id).await;
    let now = std::time::SystemTime::now();
    for _ in 0..130 {
        conn.directory()
            .publish_keys(bundle_for(&id, "centre/busy", "default", now, 0))
            .await
            .unwrap();
    }
    let reader = relay.connect_as(&pki, NAS).await;
    let mut token = String::new();
    let mut pages = Vec::new();
    loop {
        let resp = reader
            .directory()
            .get_keys(pb::GetKeysRequest {
                principal: "centre/busy".into(),
                include_history: true,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.active.len(), 1);
        pages.push(resp.history.len());
        if resp.next_page_token.is_empty() {
            break;
        }
        token = resp.next_page_token;
        assert!(pages.len() < 10, "bounded");
    }
    assert_eq!(pages, vec![100, 30]);
    relay.stop().await;
}

/// Item 10: a device id is bound to its keys and the certificate that published them. Another
/// desk of the same principal cannot replace its keys; the same keys under a renewed
/// certificate are fine; once the first certificate is revoked (an operator change), the
/// successor may publish its own keys under the id.
#[tokio::test]
async fn a_device_id_belongs_to_its_certificate_until_that_is_revoked() {
    let mut pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.tls.reload_interval_s = 1).await;
    let old = pki.client("centre/joutseno");
    let new = pki.client("centre/joutseno");
    let old_conn = relay.connect(&pki, &old).await;
    let new_conn = relay.connect(&pki, &new).await;
    let now = std::time::SystemTime::now();
    let old_keys = silta_client::keys::DeviceKeys::generate("default").unwrap();
    old_conn
        .directory()
        .publish_keys(bundle_with(&old_keys, &old, "centre/joutseno", now, 0))
        .await
        .unwrap();
    // The same device with a renewed certificate re-publishes its keys.
    let renewed = pki.client("centre/joutseno");
    relay
        .connect(&pki, &renewed)
        .await
        .directory()
        .publish_keys(bundle_with(&old_keys, &renewed, "centre/joutseno", now, 0))
        .await
        .unwrap();
    let before = relay.fingerprint();
    let err = new_conn
        .directory()
        .publish_keys(bundle_for(&new, "centre/joutseno", "default", now, 0))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains(&renewed.serial), "{}", err.message());
    assert_eq!(relay.fingerprint(), before);
    // Another device id is fine.
    new_conn
        .directory()
        .publish_keys(bundle_for(&new, "centre/joutseno", "desk-2", now, 0))
        .await
        .unwrap();
    // The old operator's certificates are revoked: the id is free for the successor.
    pki.revoke(&old);
    pki.revoke(&renewed);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match new_conn
            .directory()
            .publish_keys(bundle_for(&new, "centre/joutseno", "default", now, 0))
            .await
        {
            Ok(_) => break,
            Err(e) if e.code() == Code::PermissionDenied => {
                assert!(tokio::time::Instant::now() < deadline, "CRL never reloaded");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    let resp = new_conn
        .directory()
        .get_keys(pb::GetKeysRequest {
            principal: "centre/joutseno".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // Both active bundles now carry the successor's certificate.
    assert_eq!(resp.active.len(), 2);
    let new_der = {
        use rustls_pki_types::pem::PemObject as _;
        rustls_pki_types::CertificateDer::from_pem_slice(new.cert_pem.as_bytes())
            .unwrap()
            .to_vec()
    };
    for b in &resp.active {
        assert_eq!(b.bundle.as_ref().unwrap().certificate_chain[0], new_der);
    }
    relay.stop().await;
}

fn query(filter: pb::QueryFilter) -> pb::QueryRequest {
    pb::QueryRequest {
        filter: Some(filter),
        purpose: "checking bounds".into(),
        purpose_code: pb::PurposeCode::Supervision.into(),
        page_size: 10,
        page_token: String::new(),
    }
}

/// Item 3: a huge filter is refused before anything reaches the permanent log; the largest leaf
/// stays small whatever a participant sends.
#[tokio::test]
async fn huge_queries_never_reach_the_log() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let auditor = relay.connect_as(&pki, "auditor/dpo").await;
    let centre = relay.connect_as(&pki, "centre/hostile").await;
    let events_before = relay.store.event_count().unwrap();
    let huge = "x".repeat(1_500_000);
    let bad = [
        // The historical attack: a 1.5 MB principal became a 4.5 MB leaf.
        pb::QueryFilter {
            principal: huge.clone(),
            ..Default::default()
        },
        pb::QueryFilter {
            principal: "centre/\u{1b}[2J".into(),
            ..Default::default()
        },
        pb::QueryFilter {
            case_ref: vec![1; 17],
            ..Default::default()
        },
        pb::QueryFilter {
            message_id: vec![1; 1000],
            ..Default::default()
        },
        pb::QueryFilter {
            kinds: vec![1; 33],
            ..Default::default()
        },
        pb::QueryFilter {
            types: vec![99],
            ..Default::default()
        },
    ];
    for filter in bad {
        for conn in [&auditor, &centre] {
            let err = conn.audit().query(query(filter.clone())).await.unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
            assert!(
                err.message().len() < 300,
                "the error does not echo the input"
            );
        }
    }
    let mut long_purpose = query(pb::QueryFilter::default());
    long_purpose.purpose = huge;
    assert_eq!(
        auditor
            .audit()
            .query(long_purpose)
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    assert_eq!(relay.store.event_count().unwrap(), events_before);
    // The largest filter that is allowed still makes a small leaf.
    let widest = pb::QueryFilter {
        principal: format!("centre/{}", "a".repeat(64)),
        case_ref: vec![7; 16],
        message_id: vec![7; 16],
        kinds: vec![1; 32],
        types: vec![1; 32],
        from: Some(prost_types::Timestamp::default()),
        until: Some(prost_types::Timestamp::default()),
    };
    let mut q = query(widest);
    q.purpose = "n".repeat(120);
    auditor.audit().query(q).await.unwrap();
    let largest = (0..relay.store.event_count().unwrap())
        .map(|i| relay.store.leaf(i).unwrap().unwrap().len())
        .max()
        .unwrap();
    assert!(largest < 1024, "largest leaf {largest} bytes");
    relay.stop().await;
}

/// Item 5: one centre floods the Assistance System: it stops at its own quota for that
/// recipient while another centre still sends.
#[tokio::test]
async fn one_sender_cannot_fill_a_shared_mailbox() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| {
        c.limits.max_pending_per_sender = 20;
        c.limits.max_pending_items = 100;
    })
    .await;
    let (nas, keys) = relay.connect_with_keys(&pki, NAS).await;
    let hostile = relay.connect_as(&pki, "centre/hostile").await;
    let good = relay.connect_as(&pki, "centre/good").await;
    let mut refused = None;
    for i in 0..200 {
        match hostile
            .mailbox()
            .send(envelope(
                MessageKind::AnonymousConsultation,
                &[NAS],
                b"junk",
            ))
            .await
        {
            Ok(_) => {}
            Err(e) => {
                refused = Some((i, e));
                break;
            }
        }
    }
    let (sent, err) = refused.expect("the flood was stopped");
    assert_eq!(sent, 20);
    silta_tests::assert_passing(&err);
    assert!(
        err.message().contains("limits.max_pending_per_sender"),
        "{}",
        err.message()
    );
    // Another centre still reaches the Assistance System.
    let referral = envelope(MessageKind::Referral, &[NAS], b"a real referral");
    good.mailbox().send(referral.clone()).await.unwrap();
    // Acknowledging one of the hostile messages gives that sender room for exactly one more.
    let mut s = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let items = take_items(&mut s, 21, Duration::from_secs(10)).await;
    assert_eq!(items.len(), 21);
    let first = silta_tests::envelope_of(&items[0])
        .unwrap()
        .envelope
        .clone()
        .unwrap();
    nas.mailbox()
        .ack(silta_tests::ack_of(&keys, &first))
        .await
        .unwrap();
    hostile
        .mailbox()
        .send(envelope(
            MessageKind::AnonymousConsultation,
            &[NAS],
            b"junk",
        ))
        .await
        .unwrap();
    let err = hostile
        .mailbox()
        .send(envelope(
            MessageKind::AnonymousConsultation,
            &[NAS],
            b"junk",
        ))
        .await
        .unwrap_err();
    silta_tests::assert_passing(&err);
    relay.stop().await;
}

/// Item 5: requests per second per principal (every call counts, health checks and refused calls
/// too), with the time to wait in the standard google.rpc.RetryInfo detail; another principal is
/// not slowed down. Audit reads have their own, smaller budget; so do sent bytes.
#[tokio::test]
async fn requests_are_rate_limited_per_principal() {
    use tonic_types::StatusExt as _;
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| {
        c.limits.requests_per_second = 2;
        c.limits.request_burst = 5;
        c.limits.audit_queries_per_minute = 3;
    })
    .await;
    let busy = relay.connect_as(&pki, "centre/busy").await;
    let calm = relay.connect_as(&pki, "centre/calm").await;
    let status = |c: &silta_client::Connection| {
        let c = c.clone();
        async move {
            c.mailbox()
                .status(pb::StatusRequest {
                    message_id: uuid::Uuid::now_v7().as_bytes().to_vec(),
                })
                .await
        }
    };
    // The connect's health check is free; the burst allows a few calls, then the limit applies.
    let mut limited = None;
    for _ in 0..10 {
        match status(&busy).await {
            Err(e) if e.code() == Code::ResourceExhausted => {
                limited = Some(e);
                break;
            }
            Err(e) => assert_eq!(e.code(), Code::NotFound),
            Ok(_) => panic!("no such message"),
        }
    }
    let err = limited.expect("rate limited");
    assert!(
        err.message().contains("limits.requests_per_second"),
        "{}",
        err.message()
    );
    let retry = err.get_details_retry_info().expect("RetryInfo detail");
    let delay = retry.retry_delay.expect("a delay");
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_secs(1),
        "{delay:?}"
    );
    // Another principal is unaffected.
    assert_eq!(status(&calm).await.unwrap_err().code(), Code::NotFound);
    // After the delay, the busy principal may call again.
    tokio::time::sleep(delay + Duration::from_millis(50)).await;
    assert_eq!(status(&busy).await.unwrap_err().code(), Code::NotFound);
    assert!(relay.metrics.snapshot().requests_limited >= 1);

    // Audit reads: 3 per minute for this principal.
    let auditor = relay.connect_as(&pki, "auditor/dpo").await;
    let events_before = relay.store.event_count().unwrap();
    for _ in 0..3 {
        auditor
            .audit()
            .query(query(pb::QueryFilter::default()))
            .await
            .unwrap();
    }
    let err = auditor
        .audit()
        .query(query(pb::QueryFilter::default()))
        .await
        .unwrap_err();
    silta_tests::assert_passing(&err);
    assert!(
        err.message().contains("limits.audit_queries_per_minute"),
        "{}",
        err.message()
    );
    assert_eq!(
        relay.store.event_count().unwrap(),
        events_before + 3,
        "a refused read is not logged"
    );
    relay.stop().await;
}

/// Item 4: subscriptions per principal are capped.
#[tokio::test]
async fn subscriptions_per_principal_are_capped() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.limits.max_subscriptions_per_principal = 2).await;
    let nas = relay.connect_as(&pki, NAS).await;
    let other = relay.connect_as(&pki, "assistance/other").await;
    let open = |c: &silta_client::Connection| {
        let c = c.clone();
        async move { c.mailbox().subscribe(pb::SubscribeRequest::default()).await }
    };
    let s1 = open(&nas).await.unwrap();
    let _s2 = open(&nas).await.unwrap();
    let err = open(&nas).await.unwrap_err();
    silta_tests::assert_passing(&err);
    assert!(
        err.message()
            .contains("limits.max_subscriptions_per_principal"),
        "{}",
        err.message()
    );
    let _s3 = open(&other).await.unwrap();
    // Closing one frees its slot.
    drop(s1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match open(&nas).await {
            Ok(_) => break,
            Err(e) if e.code() == Code::ResourceExhausted => {
                assert!(tokio::time::Instant::now() < deadline, "slot never freed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    relay.stop().await;
}

/// Item 10: an open stream ends with the certificate that opened it, with the connection's
/// maximum age, and when the CRL goes stale.
#[tokio::test]
async fn streams_end_when_their_authority_ends() {
    let mut pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.tls.reload_interval_s = 1).await;
    // A certificate that expires in 3 seconds.
    let now = time::OffsetDateTime::now_utc();
    let short = pki.issue(&silta_certs::ca::LeafSpec::client(
        &NAS.parse().unwrap(),
        silta_tests::TRUST_DOMAIN,
        silta_certs::ca::Validity {
            not_before: now - time::Duration::hours(1),
            not_after: now + time::Duration::seconds(3),
        },
    ));
    let conn = relay.connect(&pki, &short).await;
    let mut s = conn
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let started = std::time::Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(15), s.message())
        .await
        .expect("the stream ended");
    let status = end.expect_err("ended with a status");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("expired"), "{}", status.message());
    assert!(started.elapsed() < Duration::from_secs(6));
    // And the same connection gets nothing more.
    let err = conn
        .mailbox()
        .status(pb::StatusRequest {
            message_id: uuid::Uuid::now_v7().as_bytes().to_vec(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.code(),
            Code::Unauthenticated | Code::Unavailable | Code::Unknown
        ),
        "{err:?}"
    );
    relay.stop().await;

    // A CRL that goes stale while a stream is open ends it (tls.enforce_crl_expiry).
    pki.write_crl_until(time::OffsetDateTime::now_utc() + time::Duration::seconds(4));
    let relay = TestRelay::start(&pki, |_| {}).await;
    let conn = relay.connect_as(&pki, NAS).await;
    let mut s = conn
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let end = tokio::time::timeout(Duration::from_secs(15), s.message())
        .await
        .expect("the stream ended");
    let status = end.expect_err("ended with a status");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("CRL"), "{}", status.message());
    relay.stop().await;

    // The connection's maximum age ends the stream too.
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.server.max_connection_age_s = 2).await;
    let conn = relay.connect_as(&pki, NAS).await;
    let mut s = conn
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let end = tokio::time::timeout(Duration::from_secs(15), s.message())
        .await
        .expect("the stream ended");
    match end {
        Err(status) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
        Ok(None) => {} // the connection itself was closed at its age
        Ok(Some(item)) => panic!("unexpected item {item:?}"),
    }
    relay.stop().await;
}

/// Item 6 (relay side) for a relay process: acknowledgements need published keys; see
/// bad_input.rs for the refusals. Here: a stalled reader does not make the relay hold every
/// waiting ciphertext in memory (item 4).
#[tokio::test]
async fn stalled_subscribers_pin_a_bounded_amount_of_memory() {
    let pki = TestPki::new();
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("relay.toml");
    let toml = pki.relay_config_toml(&data.path().join("data"))
        + "[limits]\nmax_subscriptions_per_principal = 4\nsend_bytes_per_second = 1000000000\n";
    std::fs::write(&config, toml).unwrap();
    let relay =
        silta_tests::RelayProcess::spawn(env!("CARGO_BIN_EXE_silta-relay-under-test"), &config)
            .await;
    let pid = relay.child.id().unwrap();
    let rss = || {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            / 1024
    };
    let client = |who: &str| {
        let cfg = pki.client_config(relay.addr, Some(&pki.client(who)));
        async move { silta_client::Connection::connect(&cfg).await.unwrap() }
    };
    let nas_id = pki.client(NAS);
    let nas = silta_client::Connection::connect(&pki.client_config(relay.addr, Some(&nas_id)))
        .await
        .unwrap();
    publish_test_keys(&nas, &nas_id, NAS).await;
    let centre = client("centre/big").await;
    const MESSAGES: usize = 12;
    const SIZE: usize = 8 * 1024 * 1024;
    let mut body = vec![0u8; SIZE];
    for (i, b) in body.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    for _ in 0..MESSAGES {
        centre
            .mailbox()
            .send(envelope(MessageKind::Referral, &[NAS], &body))
            .await
            .unwrap();
    }
    drop(body);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss();
    // Four subscriptions that never read, on four connections.
    let mut streams = Vec::new();
    for _ in 0..4 {
        let c = silta_client::Connection::connect(&pki.client_config(relay.addr, Some(&nas_id)))
            .await
            .unwrap();
        let s = c
            .mailbox()
            .subscribe(pb::SubscribeRequest::default())
            .await
            .unwrap();
        streams.push((c, s));
    }
    // A fifth is refused.
    let err = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap_err();
    silta_tests::assert_passing(&err);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stalled = rss();
    let growth = stalled.saturating_sub(before);
    println!(
        "relay RSS: {before} MiB with {MESSAGES} x 8 MiB waiting; {stalled} MiB with 4 stalled subscriptions (+{growth} MiB)"
    );
    // Each stalled stream may hold its one in-flight item plus the one being encoded and what
    // the transport buffers: a few messages, never all twelve.
    assert!(
        growth < 4 * 4 * 8 + 32,
        "4 stalled subscriptions grew the relay by {growth} MiB"
    );
    drop(streams);
    relay.kill().await;
}

/// Item 5: the bytes one principal sends per second are bounded too (the disk and the writer's
/// queue are shared by everyone).
#[tokio::test]
async fn sent_bytes_are_rate_limited_per_principal() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| {
        c.limits.max_ciphertext_bytes = 64 * 1024;
        c.limits.send_bytes_per_second = 100_000;
    })
    .await;
    let _nas = relay.connect_as(&pki, NAS).await;
    let big = relay.connect_as(&pki, "centre/big").await;
    let other = relay.connect_as(&pki, "centre/other").await;
    let body = vec![7u8; 60_000];
    // The burst is two largest envelopes (128 KiB): two go through, the third waits.
    let first = envelope(MessageKind::Referral, &[NAS], &body);
    let receipt = big
        .mailbox()
        .send(first.clone())
        .await
        .unwrap()
        .into_inner();
    big.mailbox()
        .send(envelope(MessageKind::Referral, &[NAS], &body))
        .await
        .unwrap();
    let err = big
        .mailbox()
        .send(envelope(MessageKind::Referral, &[NAS], &body))
        .await
        .unwrap_err();
    silta_tests::assert_passing(&err);
    assert!(
        err.message().contains("limits.send_bytes_per_second"),
        "{}",
        err.message()
    );
    // A retry of an accepted message stores nothing new: it gets its receipt even now.
    let again = big.mailbox().send(first).await.unwrap().into_inner();
    assert_eq!(again.log_index, receipt.log_index);
    // Another sender is not affected.
    other
        .mailbox()
        .send(envelope(MessageKind::Referral, &[NAS], &body))
        .await
        .unwrap();
    relay.stop().await;
}
