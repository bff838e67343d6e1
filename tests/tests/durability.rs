//! Durability across crashes of the real relay process: every message the relay gave a receipt
//! for survives a SIGKILL, and graceful shutdown finishes in-flight writes.

use std::{collections::HashMap, sync::Arc, time::Duration};

use silta_client::Connection;
use silta_proto::pb::{self, MessageKind};
use silta_tests::{RelayProcess, TestPki, envelope, envelope_of, take_items};
use tokio::sync::Mutex;

const NAS: &str = "assistance/nas";
const RELAY: &str = env!("CARGO_BIN_EXE_silta-relay-under-test");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_receipted_message_survives_sigkill() {
    let pki = TestPki::new();
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("relay.toml");
    std::fs::write(
        &config,
        pki.relay_config_toml(&data.path().join("data")) + silta_tests::UNLIMITED_TOML,
    )
    .unwrap();
    let nas_id = pki.client(NAS);
    let centre_id = pki.client("centre/joutseno");

    let mut all: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    // Every checkpoint the relay ever signed (one per receipt), across all crashes.
    let checkpoints: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let log_key = {
        let out = std::process::Command::new(RELAY)
            .arg("--config")
            .arg(&config)
            .arg("log-key")
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let auditor_id = pki.client("auditor/dpo");
    for round in 0..3 {
        let relay = RelayProcess::spawn(RELAY, &config).await;
        // The recipient must be known before anyone can send to it.
        Connection::connect(&pki.client_config(relay.addr, Some(&nas_id)))
            .await
            .unwrap();
        let centre = Connection::connect(&pki.client_config(relay.addr, Some(&centre_id)))
            .await
            .unwrap();

        let receipted = Arc::new(Mutex::new(HashMap::new()));
        let mut tasks = Vec::new();
        for t in 0..16 {
            let conn = centre.clone();
            let receipted = receipted.clone();
            let checkpoints = checkpoints.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..2000u32 {
                    let body = format!("sealed {round}/{t}/{i} ").repeat(64);
                    let env = envelope(MessageKind::Referral, &[NAS], body.as_bytes());
                    match conn.mailbox().send(env.clone()).await {
                        Ok(r) => {
                            receipted
                                .lock()
                                .await
                                .insert(env.message_id, env.ciphertext_sha256);
                            checkpoints.lock().await.push(r.into_inner().checkpoint);
                        }
                        Err(_) => return,
                    }
                }
            }));
        }
        // Kill as soon as some receipts are in, while sends are still in flight.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while receipted.lock().await.len() < 100 + round * 50 {
            assert!(tokio::time::Instant::now() < deadline, "no receipts");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        relay.kill().await;
        for t in tasks {
            t.await.unwrap();
        }
        let got = std::mem::take(&mut *receipted.lock().await);
        eprintln!("round {round}: {} receipts before SIGKILL", got.len());
        all.extend(got);

        // Restart on the same data: every receipted message is there, exactly once.
        let relay = RelayProcess::spawn(RELAY, &config).await;
        let nas = Connection::connect(&pki.client_config(relay.addr, Some(&nas_id)))
            .await
            .unwrap();
        let mut stream = nas
            .mailbox()
            .subscribe(pb::SubscribeRequest::default())
            .await
            .unwrap()
            .into_inner();
        let mut seen: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        loop {
            let items = take_items(&mut stream, 1, Duration::from_secs(2)).await;
            let Some(item) = items.first() else { break };
            let env = envelope_of(item).unwrap().envelope.clone().unwrap();
            assert_eq!(
                silta_tests::sha256(&env.ciphertext),
                env.ciphertext_sha256,
                "intact ciphertext"
            );
            assert!(
                seen.insert(env.message_id, env.ciphertext_sha256).is_none(),
                "delivered twice"
            );
        }
        for (id, digest) in &all {
            assert_eq!(
                seen.get(id),
                Some(digest),
                "round {round}: receipted message lost"
            );
        }
        // Every checkpoint signed before any of the crashes is a prefix of today's log.
        let auditor = Connection::connect(&pki.client_config(relay.addr, Some(&auditor_id)))
            .await
            .unwrap();
        let now = auditor
            .audit()
            .checkpoint(pb::CheckpointRequest {})
            .await
            .unwrap()
            .into_inner();
        let now = silta_proto::tlog::verify_checkpoint(&now.checkpoint, &log_key).unwrap();
        let held = checkpoints.lock().await.clone();
        assert!(!held.is_empty());
        for note in &held {
            let old = silta_proto::tlog::verify_checkpoint(note, &log_key)
                .expect("signed by the log key");
            let proof = auditor
                .audit()
                .consistency_proof(pb::ConsistencyProofRequest {
                    old_size: old.size,
                    new_size: now.size,
                })
                .await
                .unwrap()
                .into_inner();
            let proof: Vec<silta_proto::tlog::Hash> = proof
                .hashes
                .iter()
                .map(|h| h.as_slice().try_into().unwrap())
                .collect();
            silta_proto::tlog::verify_consistency(old.size, now.size, &proof, &old.root, &now.root)
                .unwrap_or_else(|e| {
                    panic!(
                        "round {round}: checkpoint of size {} inconsistent with the log: {e}",
                        old.size
                    )
                });
        }
        eprintln!(
            "round {round}: {} signed checkpoints consistent with size {}",
            held.len(),
            now.size
        );
        relay.kill().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_sends_and_exits_cleanly() {
    let pki = TestPki::new();
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("relay.toml");
    std::fs::write(
        &config,
        pki.relay_config_toml(&data.path().join("data")) + silta_tests::UNLIMITED_TOML,
    )
    .unwrap();
    let nas_id = pki.client(NAS);
    let relay = RelayProcess::spawn(RELAY, &config).await;
    let nas = Connection::connect(&pki.client_config(relay.addr, Some(&nas_id)))
        .await
        .unwrap();
    let centre = Connection::connect(&pki.client_config(relay.addr, Some(&pki.client("centre/a"))))
        .await
        .unwrap();
    // An open subscription must not keep the relay from stopping.
    let _stream = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap();

    let receipted = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let conn = centre.clone();
        let receipted = receipted.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..500 {
                let env = envelope(MessageKind::Referral, &[NAS], b"sealed");
                match conn.mailbox().send(env.clone()).await {
                    Ok(_) => receipted.lock().await.push(env.message_id),
                    Err(_) => return,
                }
            }
        }));
    }
    while receipted.lock().await.len() < 50 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let status = relay.terminate().await;
    assert!(status.success(), "exit status {status:?}");
    for t in tasks {
        t.await.unwrap();
    }
    let receipted = receipted.lock().await.clone();

    let relay = RelayProcess::spawn(RELAY, &config).await;
    let nas = Connection::connect(&pki.client_config(relay.addr, Some(&nas_id)))
        .await
        .unwrap();
    let mut stream = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let items = take_items(&mut stream, receipted.len(), Duration::from_secs(20)).await;
    let ids: std::collections::HashSet<_> = items
        .iter()
        .map(|i| {
            envelope_of(i)
                .unwrap()
                .envelope
                .as_ref()
                .unwrap()
                .message_id
                .clone()
        })
        .collect();
    for id in &receipted {
        assert!(
            ids.contains(id),
            "receipted message lost in graceful shutdown"
        );
    }
    relay.kill().await;
}
