//! Which key a client uses for a device (issue 9): the relay's log orders bundles, never the
//! publisher's clock; a bundle dated in the future is ignored; a pinned key whose certificate was
//! revoked does not stand in the way of the successor's; a rollback is still refused.
//!
//! Some answers here are made by the test and fed to `Client::select_keys` (what `keys_of` does
//! with the relay's answer): a future-dated bundle, or a log index a stale or hostile relay might
//! claim. The client must not rely on the relay to filter them. The rest is the real relay.

use std::time::{Duration, SystemTime};

use prost::Message as _;
use rustls_pki_types::pem::PemObject as _;
use silta_client::{client::Client, keys::DeviceKeys};
use silta_proto::pb;
use silta_tests::{TestIdentity, TestPki, TestRelay, TestUser, send_raw};

const CENTRE: &str = "centre/joutseno";
const NAS: &str = "assistance/nas";

/// A bundle for `device` signed with `cert`'s key, dated `created_at`.
fn bundle_dated(cert: &TestIdentity, keys: &DeviceKeys, created_at: SystemTime) -> pb::KeyBundle {
    bundle_of(CENTRE, cert, keys, created_at, 2)
}

/// A bundle of `principal`'s device `keys`, signed with `cert`'s key, dated `created_at`,
/// announcing `opens_version` (0: not announced, as clients before sealed format 2).
fn bundle_of(
    principal: &str,
    cert: &TestIdentity,
    keys: &DeviceKeys,
    created_at: SystemTime,
    opens_version: u32,
) -> pb::KeyBundle {
    let content = pb::KeyBundleContent {
        version: 1,
        principal: principal.into(),
        device_id: keys.device_id().to_owned(),
        age_recipient: keys.age_recipient(),
        ed25519_public_key: keys.verifying_key().as_bytes().to_vec(),
        created_at: Some(prost_types::Timestamp::from(created_at)),
        opens_version,
    }
    .encode_to_vec();
    let signature = silta_certs::signing::sign_with_key_pem(
        &cert.key_pem,
        silta_proto::context::KEY_BUNDLE,
        &content,
    )
    .unwrap();
    let chain = rustls_pki_types::CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
        .map(|c| c.unwrap().to_vec())
        .collect();
    let device_signature = keys
        .sign(silta_proto::context::KEY_POSSESSION, &content)
        .to_vec();
    pb::KeyBundle {
        content,
        signature,
        certificate_chain: chain,
        device_signature,
    }
}

/// A directory answer holding `bundles` at the given log indexes.
fn answer(bundles: &[(&pb::KeyBundle, u64)]) -> pb::GetKeysResponse {
    pb::GetKeysResponse {
        active: bundles
            .iter()
            .map(|(b, i)| pb::PublishedBundle {
                bundle: Some((*b).clone()),
                log_index: *i,
                active: true,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// A valid anonymous consultation to the Assistance System, with a fresh id.
fn consultation_to_nas() -> silta_client::seal::Draft {
    let payload = silta_client::form::read_envelope_form(
        "indicators = [\"indicator\"]\nquestions = \"question\"\n[envelope]\nkind = \"anonymous-consultation\"\nto = \"assistance/nas\"\n",
        false,
    )
    .unwrap()
    .1;
    silta_client::seal::Draft::new(
        pb::MessageKind::AnonymousConsultation,
        *uuid::Uuid::now_v7().as_bytes(),
        vec![NAS.parse().unwrap()],
        payload,
    )
}

/// `client` receives, opens and acknowledges exactly one message.
async fn receives_one_message(client: &Client) {
    let opener = silta_tests::TestOpener::new();
    let received = client
        .receive(&opener.opener(), Duration::from_secs(2), 1, |_, _| Ok(()))
        .await
        .unwrap();
    assert!(
        matches!(
            received.as_slice(),
            [silta_client::client::Received::Message { .. }]
        ),
        "{received:?}"
    );
}

fn fingerprints(keys: &[silta_client::bundle::VerifiedBundle]) -> Vec<String> {
    keys.iter().map(|k| k.fingerprint.clone()).collect()
}

async fn nas(pki: &TestPki, relay: &TestRelay) -> (TestUser, Client) {
    let user = TestUser::new(pki, relay.addr, NAS, "desk-1");
    let c = user.published().await;
    // The CA's CRL, as the relay hands it out, is now known to the client (bundles are checked
    // against it; without one, revocation status is unknown and nothing verifies).
    c.keys_of(&NAS.parse().unwrap()).await.unwrap();
    (user, c)
}

#[tokio::test]
async fn a_future_dated_bundle_does_not_block_a_later_correctly_dated_one() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (_u, nas) = nas(&pki, &relay).await;
    let centre: silta_certs::Principal = CENTRE.parse().unwrap();
    let cert = pki.client(CENTRE);
    let now = SystemTime::now();
    let year_2100 = SystemTime::UNIX_EPOCH + Duration::from_secs(4_102_444_800);
    let poisoned = DeviceKeys::generate("default").unwrap();
    let honest = DeviceKeys::generate("default").unwrap();
    let future = bundle_dated(&cert, &poisoned, year_2100);
    let today = bundle_dated(&cert, &honest, now);

    // Dated 2100: ignored, and nothing is pinned by it.
    let got = nas
        .select_keys(&centre, &answer(&[(&future, 5)]), now)
        .unwrap();
    assert!(got.is_empty(), "a bundle dated 2100 was used");
    assert!(nas.state().pinned(CENTRE, "default").unwrap().is_none());
    // The later, correctly dated bundle is used.
    let got = nas
        .select_keys(&centre, &answer(&[(&future, 5), (&today, 9)]), now)
        .unwrap();
    assert_eq!(fingerprints(&got), vec![honest.fingerprint()]);
    // Even when the relay lists the future one as later: the log decides among bundles the
    // client accepts, and a date in 2100 is not accepted.
    let got = nas
        .select_keys(&centre, &answer(&[(&today, 9), (&future, 12)]), now)
        .unwrap();
    assert_eq!(fingerprints(&got), vec![honest.fingerprint()]);

    // Within 5 minutes of the client's clock is fine; beyond it is not.
    let skewed = DeviceKeys::generate("laptop").unwrap();
    let soon = bundle_dated(&cert, &skewed, now + Duration::from_secs(4 * 60));
    let got = nas
        .select_keys(&centre, &answer(&[(&soon, 10)]), now)
        .unwrap();
    assert_eq!(fingerprints(&got), vec![skewed.fingerprint()]);
    let too_soon = bundle_dated(&cert, &skewed, now + Duration::from_secs(6 * 60));
    let clocked = nas.with_clock(move || now);
    assert!(
        clocked
            .select_keys(&centre, &answer(&[(&too_soon, 11)]), clocked.now())
            .unwrap()
            .is_empty()
    );

    // A rollback is still refused: a bundle logged before the pinned one, though dated later.
    let rolled = DeviceKeys::generate("default").unwrap();
    let rollback = bundle_dated(&cert, &rolled, now + Duration::from_secs(60));
    let got = clocked
        .select_keys(&centre, &answer(&[(&rollback, 7)]), now)
        .unwrap();
    assert!(
        got.is_empty(),
        "a bundle logged before the pinned one was used"
    );
    assert_eq!(
        clocked
            .state()
            .pinned(CENTRE, "default")
            .unwrap()
            .unwrap()
            .fingerprint,
        honest.fingerprint()
    );
    relay.stop().await;
}

#[tokio::test]
async fn after_the_old_operators_certificate_is_revoked_the_new_operators_bundle_is_used() {
    let mut pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.tls.reload_interval_s = 1).await;
    let (_u, nas) = nas(&pki, &relay).await;
    let centre: silta_certs::Principal = CENTRE.parse().unwrap();

    // The old operator publishes device "default" (everyone's default device id).
    let old_user = TestUser::new(&pki, relay.addr, CENTRE, "default");
    let old = old_user.published().await;
    let got = nas.keys_of(&centre).await.unwrap();
    assert_eq!(fingerprints(&got), vec![old.keys().fingerprint()]);
    // A stale or hostile relay once claimed the old bundle at a log index far ahead of the real
    // one: the pin now stands above anything the real relay will log for a long time.
    let old_bundle = pb::KeyBundle::decode(
        nas.state()
            .pinned(CENTRE, "default")
            .unwrap()
            .unwrap()
            .bundle
            .as_slice(),
    )
    .unwrap();
    nas.select_keys(
        &centre,
        &answer(&[(&old_bundle, 1_000_000)]),
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(
        nas.state()
            .pinned(CENTRE, "default")
            .unwrap()
            .unwrap()
            .log_index,
        Some(1_000_000)
    );

    // The old operator's certificate is revoked; wait (bounded) until the relay enforces it.
    pki.revoke(&old_user.identity);
    let cfg = pki.client_config(relay.addr, Some(&old_user.identity));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while silta_client::Connection::connect(&cfg).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "CRL not reloaded after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The new operator (another certificate of the same principal) takes the device id over.
    let new_user = TestUser::new(&pki, relay.addr, CENTRE, "default");
    let new = new_user.published().await;
    let _ = nas.take_key_changes();
    let got = nas.keys_of(&centre).await.unwrap();
    assert_eq!(fingerprints(&got), vec![new.keys().fingerprint()]);
    let changes = nas.take_key_changes();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].old, old.keys().fingerprint());
    assert_eq!(changes[0].new, new.keys().fingerprint());

    // And messages reach the new operator.
    send_raw(&new, &consultation_to_nas()).await.unwrap();
    receives_one_message(&nas).await;
    relay.stop().await;
}

#[tokio::test]
async fn a_forged_crl_from_the_relay_is_never_stored_and_the_genuine_one_keeps_working() {
    use silta_certs::ca::{CertificateAuthority, Validity};
    let der_of = |pem: &str| {
        rustls_pki_types::CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    };
    let mut pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (_u, nas) = nas(&pki, &relay).await;
    let centre: silta_certs::Principal = CENTRE.parse().unwrap();
    // The CA revokes a centre certificate (genuine CRL number 2).
    let revoked = pki.client(CENTRE);
    pki.revoke(&revoked);
    let genuine = der_of(&std::fs::read_to_string(pki.path("crl.pem")).unwrap());
    // A CRL with the CA's name, another key, the largest CRL number and no revocations.
    let forger = CertificateAuthority::generate(
        "Test CA",
        silta_tests::TRUST_DOMAIN,
        Validity::days_from_now(30),
    )
    .unwrap();
    let forged = der_of(&forger.crl(&[], u64::MAX, 7).unwrap());
    let valid = pki.client(CENTRE);
    let (k1, k2) = (
        DeviceKeys::generate("revoked").unwrap(),
        DeviceKeys::generate("valid").unwrap(),
    );
    let now = SystemTime::now();
    let mut resp = answer(&[
        (&bundle_dated(&revoked, &k1, now), 3),
        (&bundle_dated(&valid, &k2, now), 4),
    ]);
    // Offered first and second: neither order lets it in.
    for crls in [
        vec![forged.clone(), genuine.clone()],
        vec![genuine.clone(), forged.clone()],
    ] {
        resp.crls = crls;
        let got = nas.select_keys(&centre, &resp, now).unwrap();
        // The genuine CRL still counts: the revoked certificate's bundle is not used.
        assert_eq!(fingerprints(&got), vec![k2.fingerprint()]);
        let stored = nas.state().crls().unwrap();
        assert!(!stored.contains(&forged), "the forged CRL was stored");
        assert_eq!(stored, vec![genuine.clone()]);
    }
    // Offered alone later, it changes nothing either.
    resp.crls = vec![forged.clone()];
    let got = nas.select_keys(&centre, &resp, now).unwrap();
    assert_eq!(fingerprints(&got), vec![k2.fingerprint()]);
    assert_eq!(nas.state().crls().unwrap(), vec![genuine]);
    relay.stop().await;
}

/// The sealed format is negotiated through key bundles: a centre seals to the Assistance System
/// in format 2 while every NAS device announces it; once a device publishes a bundle that does
/// not (as a client from before format 2 does), in format 1, which a current client still
/// receives and opens; after the device publishes a bundle announcing 2, in format 2 again; and
/// in format 1 once more when it goes back to a bundle that does not say.
#[tokio::test]
async fn the_sealed_format_is_the_oldest_a_recipient_device_announces() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (_u, _nas) = nas(&pki, &relay).await;
    let centre_user = TestUser::new(&pki, relay.addr, CENTRE, "default");
    let centre = centre_user.published().await;
    // The format of `env`, read by a device it is encrypted to.
    let version_of = |keys: &DeviceKeys, env: &pb::Envelope| {
        let plain = silta_client::seal::decrypt(keys.age_identity(), &env.ciphertext).unwrap();
        let sealed = pb::payload::SealedMessage::decode(plain.as_slice()).unwrap();
        pb::payload::SignedPayload::decode(sealed.signed_payload.as_slice())
            .unwrap()
            .version
    };
    let publish = |c: &Client, identity: &TestIdentity, opens: u32| {
        let bundle = bundle_of(NAS, identity, c.keys(), SystemTime::now(), opens);
        let conn = c.connection().clone();
        async move { conn.directory().publish_keys(bundle).await.unwrap() }
    };

    let env = centre.seal(&consultation_to_nas()).await.unwrap();
    assert_eq!(
        version_of(centre.keys(), &env),
        2,
        "every device announces 2"
    );

    // A second NAS device whose bundle does not announce a format (an older client).
    let old_user = TestUser::new(&pki, relay.addr, NAS, "desk-old");
    let old = old_user.client().await;
    publish(&old, &old_user.identity, 0).await;
    let env = centre.seal(&consultation_to_nas()).await.unwrap();
    assert_eq!(version_of(old.keys(), &env), 1);
    assert_eq!(version_of(centre.keys(), &env), 1);
    silta_tests::send_sealed_raw(&centre, env).await.unwrap();
    receives_one_message(&old).await;

    // The device is upgraded and announces format 2 (a later bundle, same keys).
    publish(&old, &old_user.identity, 2).await;
    let env = centre.seal(&consultation_to_nas()).await.unwrap();
    assert_eq!(version_of(old.keys(), &env), 2);

    // And back to an older client (same keys, a bundle that does not say).
    publish(&old, &old_user.identity, 0).await;
    let env = centre.seal(&consultation_to_nas()).await.unwrap();
    assert_eq!(version_of(old.keys(), &env), 1);
    relay.stop().await;
}
