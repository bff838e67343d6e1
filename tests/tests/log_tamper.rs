//! A real relay's data folder edited offline between runs: `silta audit verify` names the first
//! bad index for each kind of tampering.

use prost::Message as _;
use silta_client::audit::{AuditError, LogProblem, verify};
use silta_proto::pb::{self, MessageKind};
use silta_relay::store::{Store, hash_key};
use silta_tests::{TestPki, TestRelay, envelope};
use tempfile::TempDir;

fn purpose() -> silta_client::audit::Purpose {
    "log-verification: tamper test".parse().unwrap()
}

/// A relay with `n` messages sent (each: ACCEPTED; plus registrations), verified once by an
/// auditor. Returns the stopped relay's data folder, the auditor state folder and the log key.
async fn logged(pki: &TestPki, n: usize) -> (TempDir, TempDir, String) {
    let relay = TestRelay::start(pki, |_| {}).await;
    let _nas = relay.connect_as(pki, "assistance/nas").await;
    let centre = relay.connect_as(pki, "centre/a").await;
    for i in 0..n {
        let env = envelope(
            MessageKind::Referral,
            &["assistance/nas"],
            format!("m{i}").as_bytes(),
        );
        centre.mailbox().send(env).await.unwrap();
    }
    let auditor = relay.connect_as(pki, "auditor/dpo").await;
    let state = tempfile::tempdir().unwrap();
    let key = relay.log_key.clone();
    let v = verify(&mut auditor.audit(), state.path(), &key, &purpose(), None)
        .await
        .expect("honest log verifies");
    assert!(v.size as usize >= n + 3);
    // Verifying again right away is fine too.
    verify(&mut auditor.audit(), state.path(), &key, &purpose(), None)
        .await
        .unwrap();
    // Close the clients first, so the relay's connection tasks end with it.
    drop((_nas, centre, auditor));
    (relay.stop_keep().await, state, key)
}

async fn verify_again(
    pki: &TestPki,
    data: TempDir,
    state: &TempDir,
    key: &str,
    grow: usize,
) -> Result<(), AuditError> {
    let relay = TestRelay::start_in(pki, data, |_| {}).await;
    if grow > 0 {
        let centre = relay.connect_as(pki, "centre/a").await;
        for i in 0..grow {
            let env = envelope(
                MessageKind::Referral,
                &["assistance/nas"],
                format!("new{i}").as_bytes(),
            );
            centre.mailbox().send(env).await.unwrap();
        }
    }
    let auditor = relay.connect_as(pki, "auditor/dpo").await;
    let r = verify(&mut auditor.audit(), state.path(), key, &purpose(), None)
        .await
        .map(|_| ());
    relay.stop().await;
    r
}

fn edit(data: &TempDir, f: impl FnOnce(&Store)) {
    let store = silta_tests::open_store_offline(data.path());
    f(&store);
    store.shutdown();
}

/// Whoever rewrites the database can rewrite the relay's high-water file to match (the relay's
/// own check then passes): what is left is the auditor's check.
fn forge_high_water(data: &TempDir) {
    edit(data, |s| {
        silta_relay::log::write_high_water(data.path(), s).unwrap();
    });
}

fn problem(r: Result<(), AuditError>) -> LogProblem {
    match r {
        Err(AuditError::Problem(p)) => p,
        other => panic!("expected a finding, got {other:?}"),
    }
}

#[tokio::test]
async fn a_changed_event_field_is_found_at_its_index() {
    let pki = TestPki::new();
    let (data, state, key) = logged(&pki, 6).await;
    edit(&data, |s| {
        let events = s.raw_tree("index_event").unwrap();
        let mut e =
            pb::Event::decode(events.get(4u64.to_be_bytes()).unwrap().unwrap().as_ref()).unwrap();
        e.actor = "centre/someone-else".into();
        events
            .insert(4u64.to_be_bytes(), e.encode_to_vec())
            .unwrap();
    });
    assert_eq!(
        problem(verify_again(&pki, data, &state, &key, 0).await),
        LogProblem::Rewritten { index: 4 }
    );
}

#[tokio::test]
async fn a_changed_event_is_found_by_a_fresh_auditor_too() {
    let pki = TestPki::new();
    let (data, _state, key) = logged(&pki, 6).await;
    edit(&data, |s| {
        let events = s.raw_tree("index_event").unwrap();
        let mut e =
            pb::Event::decode(events.get(5u64.to_be_bytes()).unwrap().unwrap().as_ref()).unwrap();
        e.ciphertext_size += 1;
        events
            .insert(5u64.to_be_bytes(), e.encode_to_vec())
            .unwrap();
    });
    // An auditor that never saw the log before still finds it: the leaf is not in the signed tree.
    let fresh = tempfile::tempdir().unwrap();
    assert_eq!(
        problem(verify_again(&pki, data, &fresh, &key, 0).await),
        LogProblem::Changed { index: 5 }
    );
}

#[tokio::test]
async fn a_deleted_event_is_found() {
    let pki = TestPki::new();
    let (data, state, key) = logged(&pki, 6).await;
    edit(&data, |s| {
        s.raw_tree("index_event")
            .unwrap()
            .remove(3u64.to_be_bytes())
            .unwrap();
    });
    assert_eq!(
        problem(verify_again(&pki, data, &state, &key, 0).await),
        LogProblem::Missing { index: 3 }
    );
}

#[tokio::test]
async fn a_swapped_pair_is_found() {
    let pki = TestPki::new();
    let (data, _state, key) = logged(&pki, 6).await;
    edit(&data, |s| {
        let events = s.raw_tree("index_event").unwrap();
        let a = events.get(4u64.to_be_bytes()).unwrap().unwrap();
        let b = events.get(5u64.to_be_bytes()).unwrap().unwrap();
        events.insert(4u64.to_be_bytes(), b).unwrap();
        events.insert(5u64.to_be_bytes(), a).unwrap();
    });
    let fresh = tempfile::tempdir().unwrap();
    assert_eq!(
        problem(verify_again(&pki, data, &fresh, &key, 0).await),
        LogProblem::Reordered {
            index: 4,
            claims: 5
        }
    );
}

/// Removes every event from `k` on, and the subtree hashes that cover them. (The relay's
/// high-water mark is removed separately where a test plays an operator covering their tracks.)
fn rewind(s: &Store, k: u64) {
    let events = s.raw_tree("index_event").unwrap();
    let n = s.event_count().unwrap();
    for i in k..n {
        events.remove(i.to_be_bytes()).unwrap();
    }
    let hashes = s.raw_tree("levelindex_hash").unwrap();
    for level in 0u8..40 {
        let width = 1u64 << level;
        let mut i = k / width;
        while i * width < n {
            hashes.remove(hash_key(level, i)).unwrap();
            i += 1;
        }
    }
    s.raw_tree("name_counter")
        .unwrap()
        .insert("events", &k.to_be_bytes())
        .unwrap();
}

#[tokio::test]
async fn a_truncated_log_is_found() {
    let pki = TestPki::new();
    let (data, state, key) = logged(&pki, 8).await;
    edit(&data, |s| rewind(s, 6));
    forge_high_water(&data);
    let p = problem(verify_again(&pki, data, &state, &key, 0).await);
    assert!(matches!(p, LogProblem::Truncated { now: 6, .. }), "{p:?}");
}

#[tokio::test]
async fn a_log_rewound_and_regrown_differently_is_a_fork_found_at_the_first_rewritten_index() {
    let pki = TestPki::new();
    let (data, state, key) = logged(&pki, 8).await;
    edit(&data, |s| rewind(s, 6));
    forge_high_water(&data);
    // Regrow past the old size with different messages: the relay signs new checkpoints for a
    // tree that no longer extends the one the auditor holds.
    let p = problem(verify_again(&pki, data, &state, &key, 12).await);
    assert_eq!(p, LogProblem::Rewritten { index: 6 });
}

#[tokio::test]
async fn the_relay_refuses_to_start_on_a_log_shorter_than_it_signed() {
    let pki = TestPki::new();
    let (data, _state, _key) = logged(&pki, 8).await;
    edit(&data, |s| rewind(s, 6));
    // As if the database had been restored from an older backup under the same log key.
    let mut err = String::new();
    for _ in 0..100 {
        match silta_relay::Relay::open(pki.relay_config(data.path())) {
            Err(e) if e.to_string().contains("could not acquire lock") => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => {
                err = e.to_string();
                break;
            }
            Ok(_) => panic!("a relay must not start on a rewound log"),
        }
    }
    assert!(err.contains("would fork the log"), "{err}");
}
