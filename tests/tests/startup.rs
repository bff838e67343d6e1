//! Start-up after a clean stop: the real relay binary leaves a sled recovery snapshot covering
//! everything it wrote, so the next start reads the snapshot instead of replaying the run's
//! log (which made the first start after a long run linear in what the run wrote).

use std::{path::Path, time::Duration};

use silta_client::Connection;
use silta_proto::pb::{self, MessageKind};
use silta_tests::{RelayProcess, TestPki, envelope, take_items};

const RELAY: &str = env!("CARGO_BIN_EXE_silta-relay-under-test");
const NAS: &str = "assistance/nas";

/// The log position (LSN) of the newest sled snapshot in `db`, from its `snap.<hex>` name.
fn newest_snapshot(db: &Path) -> Option<u64> {
    std::fs::read_dir(db)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().ok()?;
            u64::from_str_radix(name.strip_prefix("snap.")?, 16).ok()
        })
        .max()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_stop_leaves_a_snapshot_covering_the_run() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = data.join("db");
    let config = dir.path().join("relay.toml");
    std::fs::write(
        &config,
        pki.relay_config_toml(&data) + silta_tests::UNLIMITED_TOML,
    )
    .unwrap();
    let nas_id = pki.client(NAS);

    let relay = RelayProcess::spawn(RELAY, &config).await;
    let at_start = newest_snapshot(&db).unwrap_or(0);
    Connection::connect(&pki.client_config(relay.addr, Some(&nas_id)))
        .await
        .unwrap();
    let centre = Connection::connect(&pki.client_config(relay.addr, Some(&pki.client("centre/a"))))
        .await
        .unwrap();
    let mut sent = Vec::new();
    for i in 0..200u32 {
        let env = envelope(MessageKind::Referral, &[NAS], &[i as u8; 2048]);
        centre.mailbox().send(env.clone()).await.unwrap();
        sent.push(env.message_id);
    }
    drop(centre);
    assert!(relay.terminate().await.success(), "clean stop");

    let after_stop = newest_snapshot(&db).unwrap_or(0);
    assert!(
        after_stop > at_start,
        "the stop wrote a snapshot past the run's writes ({after_stop:#x} > {at_start:#x})"
    );

    // The next start finds nothing to replay: sled writes a new snapshot only when recovery
    // advanced past the newest one.
    let relay = RelayProcess::spawn(RELAY, &config).await;
    assert_eq!(
        newest_snapshot(&db),
        Some(after_stop),
        "the start after a clean stop replayed log the stop's snapshot did not cover"
    );
    // And everything is still there.
    let nas = Connection::connect(&pki.client_config(relay.addr, Some(&nas_id)))
        .await
        .unwrap();
    let mut stream = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let items = take_items(&mut stream, sent.len(), Duration::from_secs(20)).await;
    let got: Vec<_> = items
        .iter()
        .filter_map(silta_tests::envelope_of)
        .map(|d| d.envelope.as_ref().unwrap().message_id.clone())
        .collect();
    assert_eq!(got, sent, "every message, in order, after the restart");
    drop((stream, nas));
    assert!(relay.terminate().await.success());
}
