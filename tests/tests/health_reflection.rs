//! Health and reflection answer standard clients: the stock grpc.health.v1 and
//! grpc.reflection.v1 / v1alpha stubs in Rust, and Python's grpcio (the reference C-core stack).

use std::{collections::BTreeSet, process::Command};

use silta_tests::{TestPki, TestRelay};
use tokio_stream::StreamExt as _;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

#[tokio::test]
async fn health_reports_serving() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let conn = relay.connect_as(&pki, "auditor/dpo").await;
    for service in ["", "silta.v1.Mailbox"] {
        let r = conn
            .health()
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service:?}");
    }
    let err = conn
        .health()
        .check(HealthCheckRequest {
            service: "no.Such".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    relay.stop().await;
}

const EXPECTED: [&str; 5] = [
    "grpc.health.v1.Health",
    "silta.v1.AuditLog",
    "silta.v1.Directory",
    "silta.v1.Mailbox",
    "grpc.reflection.v1.ServerReflection",
];

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_the_services() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let conn = relay.connect_as(&pki, "admin/ops").await;

    use tonic_reflection::pb::{v1, v1alpha};
    let req = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(conn.channel());
    let mut stream = client
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.next().await.unwrap().unwrap();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        resp.message_response
    else {
        panic!("unexpected response {resp:?}")
    };
    let names: BTreeSet<String> = list.service.into_iter().map(|s| s.name).collect();
    for name in &EXPECTED[..4] {
        assert!(names.contains(*name), "{name} missing from {names:?}");
    }

    // The descriptor of a Silta file is served, so a tool can build requests from it.
    let req = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1::server_reflection_request::MessageRequest::FileContainingSymbol(
                "silta.v1.Mailbox".into(),
            ),
        ),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.next().await.unwrap().unwrap();
    assert!(matches!(
        resp.message_response,
        Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(ref f)) if !f.file_descriptor_proto.is_empty()
    ));

    let req = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(conn.channel());
    let mut stream = client
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.next().await.unwrap().unwrap();
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        resp.message_response
    else {
        panic!("unexpected response {resp:?}")
    };
    assert!(list.service.iter().any(|s| s.name == "silta.v1.Mailbox"));
    relay.stop().await;
}

/// Python grpcio (BoringSSL, the C-core stack most gRPC tools use) checks health and lists
/// services over mutual TLS. Requires python3 with grpcio-health-checking and grpcio-reflection;
/// `.ci/run` installs them, and under CI=true their absence is a failure.
#[tokio::test]
async fn python_grpcio_health_and_reflection() {
    let probe = Command::new("python3")
        .args(["-c", "import grpc, grpc_health.v1, grpc_reflection.v1alpha"])
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 with grpcio-health-checking and grpcio-reflection is required under CI=true: {probe:?}"
        );
        eprintln!(
            "python grpcio not installed; skipping (pip install grpcio-health-checking grpcio-reflection)"
        );
        return;
    }
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let id = pki.client("auditor/dpo");
    std::fs::write(pki.path("client.pem"), &id.cert_pem).unwrap();
    std::fs::write(pki.path("client.key"), &id.key_pem).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/health_reflection.py");
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .arg(format!("localhost:{}", relay.addr.port()))
        .arg(pki.path("ca.pem"))
        .arg(pki.path("client.pem"))
        .arg(pki.path("client.key"))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("health: SERVING"), "{stdout}");
    for name in &EXPECTED[..4] {
        assert!(stdout.contains(name), "{name} not listed: {stdout}");
    }
    relay.stop().await;
}
