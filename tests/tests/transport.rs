//! Post-quantum transport: a Silta client and the relay agree on the hybrid key exchange
//! X25519MLKEM768 (recorded traffic stays confidential against a future quantum computer), and
//! a client without it (classical groups only, like stock grpcio) still gets in with X25519.

use std::sync::Arc;

use hyper_util::rt::TokioIo;
use rustls::{
    ClientConfig, NamedGroup, ProtocolVersion,
    crypto::{CryptoProvider, aws_lc_rs},
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject as _},
};
use silta_tests::{TestIdentity, TestPki, TestRelay};
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client::TlsStream};
use tonic::transport::{Endpoint, Uri};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// A TLS connection to the relay made with `config`.
async fn handshake(relay: &TestRelay, config: ClientConfig) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(relay.addr).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake")
}

/// A health call over connections made with `config`: the relay accepted the client certificate
/// and serves gRPC over it.
async fn health_over(relay: &TestRelay, config: ClientConfig) {
    let tls = TlsConnector::from(Arc::new(config));
    let addr = relay.addr;
    let connector = tower::service_fn(move |_: Uri| {
        let tls = tls.clone();
        async move {
            let tcp = TcpStream::connect(addr).await?;
            let stream = tls
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await?;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    });
    let channel = Endpoint::from_static("http://relay.invalid")
        .connect_with_connector(connector)
        .await
        .unwrap();
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health call over the connection");
}

/// The configuration the Silta client library uses, for `identity`.
fn silta_client_config(pki: &TestPki, relay: &TestRelay, identity: &TestIdentity) -> ClientConfig {
    pki.client_config(relay.addr, Some(identity))
        .tls_config()
        .unwrap()
}

/// A client like the Silta one but offering only the classical group X25519.
fn classical_only_config(pki: &TestPki, identity: &TestIdentity) -> ClientConfig {
    let provider = CryptoProvider {
        kx_groups: vec![aws_lc_rs::kx_group::X25519],
        ..aws_lc_rs::default_provider()
    };
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca.cert_pem().as_bytes()).unwrap())
        .unwrap();
    let chain = vec![CertificateDer::from_pem_slice(identity.cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).unwrap();
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    config
}

#[tokio::test]
async fn a_silta_client_negotiates_the_hybrid_post_quantum_key_exchange() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let id = pki.client("centre/joutseno");

    let config = silta_client_config(&pki, &relay, &id);
    let offered: Vec<NamedGroup> = config
        .crypto_provider()
        .kx_groups
        .iter()
        .map(|g| g.name())
        .collect();
    assert_eq!(
        offered.first(),
        Some(&NamedGroup::X25519MLKEM768),
        "the client must prefer the hybrid group: {offered:?}"
    );

    let tls = handshake(&relay, config.clone()).await;
    let (_, conn) = tls.get_ref();
    assert_eq!(conn.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    assert_eq!(
        conn.negotiated_key_exchange_group().map(|g| g.name()),
        Some(NamedGroup::X25519MLKEM768)
    );
    drop(tls);

    // The same configuration carries real calls, and so does the client library itself.
    health_over(&relay, config).await;
    relay.connect(&pki, &id).await;
    relay.stop().await;
}

#[tokio::test]
async fn a_classical_only_client_still_connects_with_x25519() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let id = pki.client("centre/joutseno");

    let tls = handshake(&relay, classical_only_config(&pki, &id)).await;
    assert_eq!(
        tls.get_ref()
            .1
            .negotiated_key_exchange_group()
            .map(|g| g.name()),
        Some(NamedGroup::X25519)
    );
    drop(tls);

    let before = relay.metrics.snapshot();
    health_over(&relay, classical_only_config(&pki, &id)).await;
    let after = relay.metrics.snapshot();
    assert!(after.handshakes_accepted > before.handshakes_accepted);
    assert_eq!(after.requests_allowed, before.requests_allowed + 1);
    relay.stop().await;
}
