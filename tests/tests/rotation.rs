//! Rotation without downtime (issue 12): the relay's certificate swapped on disk while a
//! subscription stays open; device keys rotated with the old identities kept; the delivery log's
//! signing key rotated with dual-signed checkpoints; key files other tools read; expiry warnings.

use std::{os::unix::fs::PermissionsExt as _, sync::Arc, time::Duration};

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject as _};
use silta_client::audit::{AuditError, LogProblem, check_receipt, verify};
use silta_proto::pb::{self, MessageKind};
use silta_tests::{TestPki, TestRelay, envelope, envelope_of, take_items};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const CENTRE: &str = "centre/joutseno";
const NAS: &str = "assistance/nas";
const WAIT: Duration = Duration::from_secs(10);
const RELAY: &str = env!("CARGO_BIN_EXE_silta-relay-under-test");

/// The serial (hex) of the certificate the relay presents to a new TLS connection.
async fn served_serial(pki: &TestPki, relay: &TestRelay) -> String {
    let config = pki
        .client_config(relay.addr, Some(&pki.client("centre/probe")))
        .tls_config()
        .unwrap();
    let tcp = TcpStream::connect(relay.addr).await.unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake");
    let der = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    serial_of(&der)
}

fn serial_of(der: &CertificateDer<'_>) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    hex::encode(cert.raw_serial())
}

#[tokio::test]
async fn the_relay_certificate_is_swapped_on_disk_while_a_subscription_stays_open() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.tls.reload_interval_s = 1).await;
    let old_serial = serial_of(
        &CertificateDer::from_pem_slice(&std::fs::read(pki.path("relay.pem")).unwrap()).unwrap(),
    );
    assert_eq!(served_serial(&pki, &relay).await, old_serial);

    let (nas, _keys) = relay.connect_with_keys(&pki, NAS).await;
    let centre = relay.connect_as(&pki, CENTRE).await;
    let mut stream = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let before = envelope(MessageKind::Referral, &[NAS], b"before the swap");
    centre.mailbox().send(before.clone()).await.unwrap();
    let got = take_items(&mut stream, 1, WAIT).await;
    assert_eq!(
        envelope_of(&got[0]).unwrap().envelope.as_ref(),
        Some(&before)
    );

    // The operator puts a new certificate (new serial, same CA) and key in place, each file
    // replaced by a rename as a deployment tool does.
    let next = pki
        .ca
        .issue_server(&["localhost".into(), "127.0.0.1".into()], 30)
        .unwrap();
    let new_serial = serial_of(&CertificateDer::from_pem_slice(next.cert_pem.as_bytes()).unwrap());
    assert_ne!(new_serial, old_serial);
    for (name, text) in [("relay.key", &next.key_pem), ("relay.pem", &next.cert_pem)] {
        let tmp = pki.path(&format!("{name}.new"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, pki.path(name)).unwrap();
    }

    // A new connection gets the new certificate once the relay looked (every second here).
    let mut served = String::new();
    for _ in 0..100 {
        served = served_serial(&pki, &relay).await;
        if served == new_serial {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        served, new_serial,
        "the relay still serves the old certificate"
    );

    // The stream opened before the swap still delivers what is sent after it.
    let after = envelope(MessageKind::Referral, &[NAS], b"after the swap");
    centre.mailbox().send(after.clone()).await.unwrap();
    let got = take_items(&mut stream, 1, WAIT).await;
    assert_eq!(
        got.first()
            .and_then(envelope_of)
            .and_then(|d| d.envelope.as_ref()),
        Some(&after),
        "the open subscription did not survive the certificate swap"
    );
    relay.stop().await;
}

/// Runs an outside tool: `None` when it is not installed (outside CI the test then says so and
/// passes; under CI=true a missing tool fails the test, the CI script installs it).
fn outside_tool(program: &str, args: &[&str]) -> Option<std::process::Output> {
    match std::process::Command::new(program).args(args).output() {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{program} is not installed; .ci/run installs it"
            );
            eprintln!("skipped: {program} is not installed");
            None
        }
        Err(e) => panic!("{program}: {e}"),
    }
}

/// OpenSSL 3 and Python's `cryptography` read the key file at `path` as an Ed25519 key.
fn other_tools_read(path: &std::path::Path) {
    let p = path.to_str().unwrap();
    if let Some(out) = outside_tool("openssl", &["pkey", "-in", p, "-noout"]) {
        assert!(
            out.status.success(),
            "openssl refused {p}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let script = "import sys\n\
        from cryptography.hazmat.primitives.serialization import load_pem_private_key\n\
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey\n\
        k = load_pem_private_key(open(sys.argv[1], 'rb').read(), password=None)\n\
        assert isinstance(k, Ed25519PrivateKey), type(k)\n";
    if let Some(out) = outside_tool("python3", &["-c", script, p]) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("No module named 'cryptography'") {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "python3 has no `cryptography`; .ci/run installs it"
            );
            eprintln!("skipped: python3 has no cryptography module");
            return;
        }
        assert!(
            out.status.success(),
            "python cryptography refused {p}: {stderr}"
        );
    }
}

#[tokio::test]
async fn the_log_key_and_the_device_signing_key_are_files_openssl_and_python_read() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    other_tools_read(&relay.data.path().join(silta_relay::log::LOG_KEY_FILE));
    let keys = tempfile::tempdir().unwrap();
    silta_client::keys::DeviceKeys::init(&keys.path().join("keys"), "laptop").unwrap();
    other_tools_read(
        &keys
            .path()
            .join("keys")
            .join(silta_client::keys::SIGNING_FILE),
    );
    relay.stop().await;
}

fn purpose() -> silta_client::audit::Purpose {
    "log-verification: key rotation".parse().unwrap()
}

/// Runs `silta-relay log-key ARGS` on the stopped relay's data folder; (exit code, stdout,
/// stderr). The in-process relay that just stopped may hold the database's lock for a moment:
/// bounded retry on that alone (not with `--no-wait` among ARGS).
fn relay_log_key(pki: &TestPki, data: &TempDir, args: &[&str]) -> (i32, String, String) {
    let config = data.path().join("relay.toml");
    std::fs::write(&config, pki.relay_config_toml(data.path())).unwrap();
    for _ in 0..100 {
        let out = std::process::Command::new(RELAY)
            .arg("--config")
            .arg(&config)
            .arg("log-key")
            .args(args.iter().filter(|a| **a != "--no-wait"))
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        if stderr.contains("could not acquire lock") && !args.contains(&"--no-wait") {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        return (out.status.code().unwrap_or(-1), stdout, stderr);
    }
    panic!("the database stayed locked");
}

/// One message sent and its receipt checked against each of `good` (and refused by each of
/// `bad`, with the exact error); the log verified by an auditor for each `(state, keys)`.
async fn check(
    pki: &TestPki,
    relay: &TestRelay,
    good: &[&str],
    bad: &[&str],
    auditors: &[(&TempDir, &str)],
) {
    let centre = relay.connect_as(pki, CENTRE).await;
    let env = envelope(MessageKind::Referral, &[NAS], b"sealed elsewhere");
    let receipt = centre
        .mailbox()
        .send(env.clone())
        .await
        .unwrap()
        .into_inner();
    for key in good {
        check_receipt(
            &receipt,
            key,
            &env.message_id,
            CENTRE,
            &env.ciphertext_sha256,
        )
        .unwrap_or_else(|e| panic!("receipt refused by {key}: {e}"));
    }
    for key in bad {
        let e = check_receipt(
            &receipt,
            key,
            &env.message_id,
            CENTRE,
            &env.ciphertext_sha256,
        )
        .unwrap_err();
        assert!(
            matches!(e, silta_client::audit::ReceiptError::Checkpoint(ref m) if m.contains("is not signed by")),
            "{e:?}"
        );
    }
    let auditor = relay.connect_as(pki, "auditor/dpo").await;
    for (state, keys) in auditors {
        verify(&mut auditor.audit(), state.path(), keys, &purpose(), None)
            .await
            .unwrap_or_else(|e| panic!("auditor with {keys}: {e}"));
    }
}

/// A backup of the stopped relay's data folder into `target` (bounded wait for the lock the
/// relay that just stopped may still hold).
async fn backup_of(data: &TempDir, target: &std::path::Path) -> silta_relay::backup::Manifest {
    let origin = silta_relay::log::origin_for(silta_tests::TRUST_DOMAIN);
    for _ in 0..100 {
        match silta_relay::backup::backup_stopped(
            data.path(),
            &origin,
            target,
            Duration::from_secs(10),
        )
        .await
        {
            Ok(m) => return m,
            Err(e) if e.to_string().contains("could not acquire lock") => {
                let _ = std::fs::remove_dir_all(target);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("backup: {e}"),
        }
    }
    panic!("the database stayed locked");
}

fn rotated_events(relay: &TestRelay) -> Vec<String> {
    relay
        .events()
        .into_iter()
        .filter(|e| e.r#type == pb::EventType::LogKeyRotated as i32)
        .map(|e| e.detail)
        .collect()
}

#[tokio::test]
async fn the_log_key_is_rotated_and_auditors_move_to_the_new_key_without_a_gap() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    drop(relay.connect_as(&pki, NAS).await);
    let old = relay.log_key.clone();
    // Three auditors: one that stays on the old key, one that adds the new key during the
    // transition and later drops the old, one that does not run during the transition at all.
    let (stays, moves, sleeps) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    check(
        &pki,
        &relay,
        &[&old],
        &[],
        &[(&stays, &old), (&moves, &old), (&sleeps, &old)],
    )
    .await;

    // Rotating needs the relay stopped: while it runs the database is locked.
    let (code, _, stderr) = relay_log_key(&pki, &relay.data, &["rotate", "--no-wait"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("the relay must be stopped"), "{stderr}");
    assert!(!relay.data.path().join("log-key-next.pem").exists());

    let data = relay.stop_keep().await;
    // A backup made before the rotation, restored after it (below).
    let backups = tempfile::tempdir().unwrap();
    let before = backup_of(&data, &backups.path().join("before")).await;
    assert_eq!(before.checkpoint.matches('\u{2014}').count(), 1);
    let (code, stdout, stderr) = relay_log_key(&pki, &data, &["rotate"]);
    assert_eq!(code, 0, "{stderr}");
    let new = stdout
        .lines()
        .find_map(|l| l.strip_prefix("next:    "))
        .unwrap_or_else(|| panic!("{stdout}"))
        .to_owned();
    assert_ne!(new, old);
    let next_file = data.path().join(silta_relay::log::NEXT_LOG_KEY_FILE);
    assert_eq!(
        std::fs::metadata(&next_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    other_tools_read(&next_file);
    // `log-key` now prints both, the current key first.
    let (code, stdout, _) = relay_log_key(&pki, &data, &[]);
    assert_eq!((code, stdout.clone()), (0, format!("{old}\n{new}\n")));

    // During the transition every checkpoint carries both signatures: the old-key auditor, the
    // one with both and a new-key-only sender all verify.
    let relay = TestRelay::start_in(&pki, data, |_| {}).await;
    assert_eq!(
        relay.log_key, old,
        "the current key stays the relay's key until finish"
    );
    let both = format!("{old}\n{new}");
    check(
        &pki,
        &relay,
        &[&old, &new, &both],
        &[],
        &[(&stays, &old), (&moves, &both)],
    )
    .await;
    let auditor = relay.connect_as(&pki, "auditor/dpo").await;
    let note = auditor
        .audit()
        .checkpoint(pb::CheckpointRequest {})
        .await
        .unwrap()
        .into_inner()
        .checkpoint;
    assert_eq!(note.matches('\u{2014}').count(), 2, "{note}");
    drop(auditor);
    assert_eq!(rotated_events(&relay).len(), 1);
    assert!(rotated_events(&relay)[0].contains(&new));

    let data = relay.stop_keep().await;
    // A backup during the transition: its manifest's checkpoint is signed by both keys.
    let during = backup_of(&data, &backups.path().join("during")).await;
    assert_eq!(during.checkpoint.matches('\u{2014}').count(), 2);
    let (code, stdout, stderr) = relay_log_key(&pki, &data, &["finish"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&format!("retired: {old}")), "{stdout}");
    assert!(!next_file.exists());
    let retired: Vec<_> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("log-key-retired-")
        })
        .collect();
    assert_eq!(retired.len(), 1, "{retired:?}");
    assert_eq!(
        std::fs::metadata(&retired[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Finishing twice: nothing under way.
    let (code, _, stderr) = relay_log_key(&pki, &data, &["finish"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no log key rotation is under way"),
        "{stderr}"
    );
    let (_, stdout, _) = relay_log_key(&pki, &data, &[]);
    assert_eq!(stdout, format!("{new}\n"));

    // After: the new key alone. The auditor that moved drops the old key; the one that slept
    // through the transition (its last checkpoint signed by the old key only) goes on with the
    // new key alone; the one that never moved is refused, with the exact reason.
    let relay = TestRelay::start_in(&pki, data, |_| {}).await;
    assert_eq!(relay.log_key, new);
    check(
        &pki,
        &relay,
        &[&new, &both],
        &[&old],
        &[(&moves, &new), (&sleeps, &new)],
    )
    .await;
    let auditor = relay.connect_as(&pki, "auditor/dpo").await;
    let refused = verify(&mut auditor.audit(), stays.path(), &old, &purpose(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, AuditError::Problem(LogProblem::Signature(ref m)) if m.contains("is not signed by")),
        "{refused:?}"
    );
    // Both backups restore into a data folder holding the new key and the retired one; without
    // the retired key the one made before the rotation is refused.
    for (name, with_retired, ok) in [
        ("before", true, true),
        ("during", false, true),
        ("before", false, false),
    ] {
        let target = tempfile::tempdir().unwrap();
        std::fs::set_permissions(target.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut keys = vec![relay.data.path().join(silta_relay::log::LOG_KEY_FILE)];
        if with_retired {
            keys.push(retired[0].clone());
        }
        for k in keys {
            std::fs::copy(&k, target.path().join(k.file_name().unwrap())).unwrap();
        }
        let r = silta_relay::backup::restore(
            &backups.path().join(name),
            target.path(),
            &silta_relay::log::origin_for(silta_tests::TRUST_DOMAIN),
        );
        assert_eq!(r.is_ok(), ok, "{name}, retired key {with_retired}: {r:?}");
        if !ok {
            assert!(
                matches!(r, Err(silta_relay::backup::RestoreError::Damaged(ref m)) if m.contains("does not verify")),
                "{r:?}"
            );
        }
    }
    let events = rotated_events(&relay);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        events[1].contains("finished") && events[1].contains(&old),
        "{events:?}"
    );
    relay.stop().await;
}

const SILTA: &str = env!("CARGO_BIN_EXE_silta-under-test");

/// `silta keys rotate` for `user`, the real program; its stdout.
async fn silta_keys_rotate(user: &silta_tests::TestUser) -> String {
    // Asynchronously: the relay runs on this test's runtime.
    let out = tokio::process::Command::new(SILTA)
        .arg("--config")
        .arg(user.dir.path().join("silta.toml"))
        .args(["keys", "rotate"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "silta keys rotate failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// What happened to a received item, without its ciphertext.
fn summary(r: &silta_client::client::Received) -> String {
    use silta_client::client::Received;
    match r {
        Received::Message { delivered, .. } => {
            format!("opened (log index {})", delivered.log_index)
        }
        Received::Rejected { rejected, .. } => format!("rejected: {rejected}"),
        Received::Deferred { retry, .. } => format!("deferred: {retry:?}"),
        Received::Duplicate { .. } => "duplicate".into(),
        Received::Status(s) => format!("status {:?}", s.state),
        Received::NotForThisDesk { .. } => "not for this desk".into(),
    }
}

fn consultation(to: &str) -> silta_client::seal::Draft {
    let payload = silta_client::form::read_envelope_form(
        &format!(
            "indicators = [\"indicator\"]\nquestions = \"question\"\n[envelope]\nkind = \"anonymous-consultation\"\nto = \"{to}\"\n"
        ),
        false,
    )
    .unwrap()
    .1;
    silta_client::seal::Draft::new(
        MessageKind::AnonymousConsultation,
        *uuid::Uuid::now_v7().as_bytes(),
        vec![to.parse().unwrap()],
        payload,
    )
}

#[tokio::test]
async fn rotated_devices_open_older_messages_and_verify_older_signatures_but_not_revoked_ones() {
    use silta_client::client::Received;
    let mut pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.tls.reload_interval_s = 1).await;
    let centre = silta_tests::TestUser::new(&pki, relay.addr, CENTRE, "desk");
    let lahti_id = pki.client("centre/lahti");
    let lahti = silta_tests::TestUser::with_identity(&pki, relay.addr, lahti_id.clone(), "desk");
    let nas = silta_tests::TestUser::new(&pki, relay.addr, NAS, "server");
    let nas_old = nas.published().await.keys().fingerprint();
    let (centre_client, lahti_client) = (centre.published().await, lahti.published().await);
    let centre_old = centre_client.keys().fingerprint();

    // Sealed with (and to) the keys of the day.
    let old_msg = consultation(NAS);
    silta_tests::send_raw(&centre_client, &old_msg)
        .await
        .unwrap();
    let revoked_msg = consultation(NAS);
    silta_tests::send_raw(&lahti_client, &revoked_msg)
        .await
        .unwrap();
    drop((centre_client, lahti_client));

    // Before the recipient opens anything, all three rotate.
    for user in [&centre, &lahti, &nas] {
        let out = silta_keys_rotate(user).await;
        assert!(out.contains("rotated the keys of"), "{out}");
    }
    let centre_client = centre.client().await;
    assert_ne!(centre_client.keys().fingerprint(), centre_old);
    let retired = silta_client::keys::list_retired(&nas.config.key_dir()).unwrap();
    assert_eq!(retired.len(), 1);
    assert_eq!(
        std::fs::metadata(&retired[0].path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    // A message sealed after the rotation, to the new keys.
    let new_msg = consultation(NAS);
    silta_tests::send_raw(&centre_client, &new_msg)
        .await
        .unwrap();

    // The CA revokes lahti's certificate; the relay hands out the new CRL within a second.
    pki.revoke(&lahti_id);
    let nas_client = nas.client().await;
    assert_ne!(nas_client.keys().fingerprint(), nas_old);
    let lahti_p: silta_certs::Principal = "centre/lahti".parse().unwrap();
    for _ in 0..100 {
        if nas_client.keys_of(&lahti_p).await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(nas_client.keys_of(&lahti_p).await.unwrap().is_empty());

    let opener = silta_tests::TestOpener::new();
    let received = nas_client
        .receive(&opener.opener(), Duration::from_secs(2), 3, |_, _| Ok(()))
        .await
        .unwrap();
    let outcome = |id: &[u8; 16]| {
        received
            .iter()
            .find(|r| match r {
                Received::Message { delivered, .. } | Received::Rejected { delivered, .. } => {
                    delivered.envelope.as_ref().unwrap().message_id == id
                }
                _ => false,
            })
            .unwrap_or_else(|| {
                let got: Vec<String> = received.iter().map(summary).collect();
                panic!("not received: {got:?}")
            })
    };
    // Sealed to the recipient's old key and signed by the sender's old key: opens, and the
    // signature verifies against the key the sender had then.
    match outcome(&old_msg.message_id) {
        Received::Message { opened, .. } => {
            assert_eq!(opened.sender_key.fingerprint, centre_old);
        }
        other => panic!(
            "the message sealed before the rotations: {}",
            summary(other)
        ),
    }
    match outcome(&new_msg.message_id) {
        Received::Message { opened, .. } => {
            assert_eq!(
                opened.sender_key.fingerprint,
                centre_client.keys().fingerprint()
            );
        }
        other => panic!("the message sealed after the rotations: {}", summary(other)),
    }
    // A key whose certificate is revoked stays refused, current or earlier.
    match outcome(&revoked_msg.message_id) {
        Received::Rejected { rejected, .. } => {
            assert_eq!(rejected.reason, pb::RejectionReason::UntrustedSenderKey);
            assert_eq!(rejected.detail, "no valid key for centre/lahti device desk");
        }
        other => panic!("signed by a revoked certificate's key: {}", summary(other)),
    }

    // The retention sweep deletes the kept identity after retired_key_days, logged first.
    let actor = silta_client::retention::Actor {
        who: "process:test",
        principal: NAS,
    };
    let days = |d: u64| Duration::from_secs(d * 86_400);
    let at = retired[0].retired_at;
    let days_kept = u64::from(nas.config.retention.retired_key_days);
    assert!(
        silta_client::retention::sweep_retired_keys(&nas.config, actor, at + days(days_kept - 1))
            .unwrap()
            .is_empty()
    );
    assert!(retired[0].path.exists());
    // Opening the messages recorded the relay's time (now): a local clock that says the period
    // has passed while the relay's said minutes ago is running fast, and the key is kept.
    let seen = silta_client::retention::relay_time_seen(&nas.config.state_dir).unwrap();
    assert!(
        seen + days(1) > at,
        "relay time seen {seen:?}, retired {at:?}"
    );
    assert!(
        silta_client::retention::sweep_retired_keys(&nas.config, actor, at + days(days_kept))
            .unwrap()
            .is_empty()
    );
    assert!(retired[0].path.exists());
    // Once the relay's clock was seen past the period too, it goes.
    silta_client::retention::note_relay_time(
        &nas.config.state_dir,
        at + days(days_kept),
        at + days(days_kept),
    )
    .unwrap();
    let gone =
        silta_client::retention::sweep_retired_keys(&nas.config, actor, at + days(days_kept))
            .unwrap();
    assert_eq!(gone, retired);
    assert!(!retired[0].path.exists());
    let log = silta_client::access::AccessLog::in_state_dir(&nas.config.state_dir)
        .read()
        .unwrap();
    let entry = log.last().unwrap();
    assert_eq!(entry.action, silta_client::access::Action::KeyDeleted);
    assert!(entry.purpose.contains(&retired[0].fingerprint), "{entry:?}");
    assert!(entry.messages.is_empty());
    relay.stop().await;
}

/// What became of the message `id` among `received`.
fn outcome_of<'a>(
    received: &'a [silta_client::client::Received],
    id: &[u8; 16],
) -> &'a silta_client::client::Received {
    use silta_client::client::Received;
    received
        .iter()
        .find(|r| match r {
            Received::Message { delivered, .. } | Received::Rejected { delivered, .. } => {
                delivered.envelope.as_ref().unwrap().message_id == id
            }
            _ => false,
        })
        .unwrap_or_else(|| {
            let got: Vec<String> = received.iter().map(summary).collect();
            panic!("not received: {got:?}")
        })
}

#[tokio::test]
async fn a_key_rotated_away_from_does_not_verify_a_message_accepted_after_the_rotation() {
    use silta_client::client::Received;
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = silta_tests::TestUser::new(&pki, relay.addr, CENTRE, "desk");
    let nas = silta_tests::TestUser::new(&pki, relay.addr, NAS, "server");
    drop(nas.published().await);
    // The installation before the rotation, and its (soon old) device key.
    let before = centre.published().await;
    let old_key = before.keys().fingerprint();
    let older = consultation(NAS);
    silta_tests::send_raw(&before, &older).await.unwrap();
    let stolen = silta_client::keys::DeviceKeys::load(&centre.config.key_dir()).unwrap();
    assert_eq!(stolen.fingerprint(), old_key);
    drop(before);

    // The key is suspected compromised: rotated. The certificate stays (and is not revoked).
    let out = silta_keys_rotate(&centre).await;
    assert!(out.contains("rotated the keys of"), "{out}");
    let after = centre.client().await;
    assert_ne!(after.keys().fingerprint(), old_key);

    // Whoever holds the old key signs a NEW message with it, sealed to the recipient's current
    // keys and sent over the centre's own TLS connection: the relay accepts it (it sees only
    // ciphertext), after the rotation's KEY_PUBLISHED event.
    let forged = consultation(NAS);
    let to = after.age_recipients(&forged).await.unwrap();
    let envelope = silta_client::seal::seal(&forged, after.principal(), &stolen, &to).unwrap();
    silta_tests::send_sealed_raw(&after, envelope)
        .await
        .unwrap();

    let nas_client = nas.client().await;
    let opener = silta_tests::TestOpener::new();
    let received = nas_client
        .receive(&opener.opener(), Duration::from_secs(2), 2, |_, _| Ok(()))
        .await
        .unwrap();
    // Signed before the rotation: verifies with the key the device had then.
    match outcome_of(&received, &older.message_id) {
        Received::Message { opened, .. } => assert_eq!(opened.sender_key.fingerprint, old_key),
        other => panic!("the message signed before the rotation: {}", summary(other)),
    }
    // Signed after it with the key rotated away from: the device had a valid key then (the new
    // one), and the signature does not verify with it: BAD_SIGNATURE, not UNTRUSTED_SENDER_KEY
    // (that is for a device with no valid key at all, e.g. revoked or retired).
    match outcome_of(&received, &forged.message_id) {
        Received::Rejected { rejected, .. } => {
            assert_eq!(rejected.reason, pb::RejectionReason::BadSignature);
            assert_eq!(
                rejected.detail,
                "signature does not verify with centre/joutseno device desk"
            );
        }
        other => panic!(
            "signed with the key rotated away from, after the rotation: {}",
            summary(other)
        ),
    }
    relay.stop().await;
}

#[tokio::test]
async fn a_key_of_the_day_is_found_past_a_key_history_longer_than_the_client_used_to_read() {
    use silta_client::client::Received;
    // The relay sends 100 history bundles a page; the client used to stop at 1024 bundles,
    // oldest first. One device publishes more than that (the relay's default allowance is
    // 100 bundles per device).
    const BUNDLES: usize = 1030;
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| {
        c.limits.max_bundles_per_device = 2 * BUNDLES as u32;
    })
    .await;
    let centre = silta_tests::TestUser::new(&pki, relay.addr, CENTRE, "desk");
    let nas = silta_tests::TestUser::new(&pki, relay.addr, NAS, "server");
    drop(nas.published().await);
    let centre_client = centre.published().await;
    let mut of_the_day = None;
    for _ in 1..BUNDLES {
        let keys = silta_client::keys::DeviceKeys::generate("desk").unwrap();
        centre_client.publish_device_keys(&keys).await.unwrap();
        of_the_day = Some(keys);
    }
    let of_the_day = of_the_day.unwrap();
    // Signed with the device's key of the day, then the device rotates once more.
    let msg = consultation(NAS);
    let to = centre_client.age_recipients(&msg).await.unwrap();
    let envelope =
        silta_client::seal::seal(&msg, centre_client.principal(), &of_the_day, &to).unwrap();
    silta_tests::send_sealed_raw(&centre_client, envelope)
        .await
        .unwrap();
    let next = silta_client::keys::DeviceKeys::generate("desk").unwrap();
    centre_client.publish_device_keys(&next).await.unwrap();

    let nas_client = nas.client().await;
    let opener = silta_tests::TestOpener::new();
    let received = nas_client
        .receive(&opener.opener(), Duration::from_secs(2), 1, |_, _| Ok(()))
        .await
        .unwrap();
    match outcome_of(&received, &msg.message_id) {
        Received::Message { opened, .. } => {
            assert_eq!(opened.sender_key.fingerprint, of_the_day.fingerprint());
        }
        other => panic!(
            "signed with the key of the day, {BUNDLES} bundles into the history: {}",
            summary(other)
        ),
    }
    relay.stop().await;
}

/// `silta keys show` (offline) for `user`: (success, stderr).
fn keys_show(user: &silta_tests::TestUser) -> (bool, String) {
    let out = std::process::Command::new(SILTA)
        .arg("--config")
        .arg(user.dir.path().join("silta.toml"))
        .args(["keys", "show"])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_command_warns_of_its_certificate_and_crl_expiring_within_30_days() {
    let pki = TestPki::new();
    let addr: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let p: silta_certs::Principal = CENTRE.parse().unwrap();
    let user = |days: u32| {
        let id: silta_tests::TestIdentity = pki.ca.issue_client(&p, days).unwrap().into();
        silta_tests::TestUser::with_identity(&pki, addr, id, "desk")
    };
    // 20 days left: one line, what, when, what to do; the command still does its work.
    let soon = user(20);
    let (ok, stderr) = keys_show(&soon);
    assert!(ok, "{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    let line = warnings[0];
    assert!(
        line.starts_with("warning: this installation's certificate ")
            && line.contains("expires on ")
            && line.contains("days)")
            && line.contains("`silta keys publish`"),
        "{line}"
    );
    // 90 days left: nothing.
    let (ok, stderr) = keys_show(&user(90));
    assert!(ok && !stderr.contains("warning"), "{stderr}");
    // The window is configurable: with 10 days the 20-day certificate is not mentioned.
    let cfg = soon.dir.path().join("silta.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{text}[expiry]\nwarn_days = 10\n")).unwrap();
    let (ok, stderr) = keys_show(&soon);
    assert!(ok && !stderr.contains("warning"), "{stderr}");

    // A configured CRL whose next update is 5 days away.
    let quiet = user(90);
    let crl = pki
        .ca
        .crl_until(
            &[],
            9,
            time::OffsetDateTime::now_utc() + time::Duration::days(5),
        )
        .unwrap();
    std::fs::write(quiet.dir.path().join("crl.pem"), crl).unwrap();
    let cfg = quiet.dir.path().join("silta.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("crls = [\"crl.pem\"]\n{text}")).unwrap();
    let (ok, stderr) = keys_show(&quiet);
    assert!(ok, "{stderr}");
    assert!(
        stderr.lines().any(|l| l.starts_with("warning: the CRL ")
            && l.contains("crl.pem")
            && l.contains("expires on ")),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_daemon_logs_its_certificate_expiring_at_start() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let p: silta_certs::Principal = CENTRE.parse().unwrap();
    let id: silta_tests::TestIdentity = pki.ca.issue_client(&p, 20).unwrap().into();
    let user = silta_tests::TestUser::with_identity(&pki, relay.addr, id, "server-1");
    let log = user.dir.path().join("daemon.log");
    let mut child = tokio::process::Command::new(SILTA)
        .arg("--config")
        .arg(user.dir.path().join("silta.toml"))
        .arg("daemon")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The daemon's own log line (tracing, WARN), besides the command's stderr line.
    let logged = |text: &str| {
        text.lines().any(|l| {
            l.contains("WARN")
                && l.contains("this installation's certificate")
                && l.contains("expires on")
        })
    };
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if logged(&text) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    assert!(logged(&text), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("warning: this installation's certificate")),
        "{text}"
    );
    relay.stop().await;
}
