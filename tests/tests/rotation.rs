//! Rotation without downtime (issue 12): the relay's certificate swapped on disk while a
//! subscription stays open; device keys rotated with the old identities kept; the delivery log's
//! signing key rotated with dual-signed checkpoints; key files other tools read; expiry warnings.

use std::{sync::Arc, time::Duration};

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject as _};
use silta_proto::pb::{self, MessageKind};
use silta_tests::{TestPki, TestRelay, envelope, envelope_of, take_items};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const CENTRE: &str = "centre/joutseno";
const NAS: &str = "assistance/nas";
const WAIT: Duration = Duration::from_secs(10);

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
