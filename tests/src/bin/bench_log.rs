//! Delivery-log costs at 10k, 100k and 1M events: appending (event + Merkle hashes in one
//! transaction, flushed per batch), proof generation from sled, and proof verification.
//!
//! `cargo run --release -p silta-tests --bin bench-log [MAX_EVENTS]` (default 1000000).
//! Appending is amortised O(1) hashes per event; proofs are O(log n) lookups and hashes: the
//! figures should grow with log n, not n.

use std::time::Instant;

use silta_proto::{pb, tlog};
use silta_relay::store::Store;

const BATCH: u64 = 1000;

#[tokio::main]
async fn main() {
    let max: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("a number"))
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), true).unwrap();
    println!(
        "bench-log: events appended in batches of {BATCH} (one transaction + one fsync per batch)"
    );
    println!(
        "{:>9} {:>14} {:>16} {:>14} {:>18} {:>16} {:>7}",
        "size",
        "append µs/ev",
        "incl. proof µs",
        "incl. verify µs",
        "consist. proof µs",
        "consist. verify µs",
        "hashes"
    );
    let mut size = 0u64;
    for target in [10_000u64, 100_000, 1_000_000]
        .into_iter()
        .filter(|t| *t <= max)
    {
        // Append up to the target; time the last 10 batches (the cost at this size).
        let mut timed = std::time::Duration::ZERO;
        let mut timed_events = 0u64;
        while size < target {
            let start = Instant::now();
            let n = BATCH.min(target - size);
            store
                .write(move |trees| {
                    trees.transaction(|tx| {
                        for i in 0..n {
                            tx.append_event(pb::Event {
                                r#type: pb::EventType::Accepted.into(),
                                actor: "centre/bench".into(),
                                message_id: (size + i).to_be_bytes().repeat(2),
                                ciphertext_sha256: vec![7; 32],
                                ..Default::default()
                            })?;
                        }
                        Ok(())
                    })
                })
                .await
                .unwrap();
            size += n;
            if target - size < 10 * BATCH {
                timed += start.elapsed();
                timed_events += n;
            }
        }
        let root = tlog::root(&store, size).unwrap();
        let rounds = 200u64;
        let (mut gen_i, mut ver_i, mut gen_c, mut ver_c) = (0.0, 0.0, 0.0, 0.0);
        let mut hashes = 0;
        for r in 0..rounds {
            let index = (r * 7919 * 104_729) % size;
            let t = Instant::now();
            let proof = tlog::inclusion_proof(&store, index, size).unwrap();
            gen_i += t.elapsed().as_secs_f64();
            hashes = proof.len();
            let leaf = tlog::leaf_hash(&store.leaf(index).unwrap().unwrap());
            let t = Instant::now();
            tlog::verify_inclusion(index, size, &leaf, &proof, &root).unwrap();
            ver_i += t.elapsed().as_secs_f64();

            let old = 1 + (r * 104_729) % (size - 1);
            let old_root = tlog::root(&store, old).unwrap();
            let t = Instant::now();
            let proof = tlog::consistency_proof(&store, old, size).unwrap();
            gen_c += t.elapsed().as_secs_f64();
            let t = Instant::now();
            tlog::verify_consistency(old, size, &proof, &old_root, &root).unwrap();
            ver_c += t.elapsed().as_secs_f64();
        }
        let us = |s: f64| s / rounds as f64 * 1e6;
        println!(
            "{:>9} {:>14.2} {:>16.1} {:>14.1} {:>18.1} {:>16.1} {:>7}",
            size,
            timed.as_secs_f64() / timed_events as f64 * 1e6,
            us(gen_i),
            us(ver_i),
            us(gen_c),
            us(ver_c),
            hashes
        );
    }
    store.shutdown();
}
