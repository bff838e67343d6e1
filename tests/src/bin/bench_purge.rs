//! Disk usage before and after the relay purges a large backlog (real relay, TLS on loopback,
//! sled in a temp dir, an injected clock), and send latency while the sweeper works.
//!
//! `cargo run --release -p silta-tests --bin bench-purge -- [MESSAGES] [SIZE_BYTES]`
//! (defaults 100000, 2048). Sends MESSAGES messages nobody fetches, moves the clock past
//! `retention.expire_after_s` so every copy expires and is purged (`purge_after_final_s = 0`),
//! and prints the data folder's size (bytes of the files and blocks allocated) after the sends,
//! after the purge, and after sending as many messages again: sled does not shrink its files,
//! it reuses the space it freed.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use silta_proto::pb::MessageKind;
use silta_tests::{TestClock, TestPki, TestRelay, envelope};

/// (bytes in files, bytes of blocks allocated) under `dir`.
fn usage(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    let mut total = (0, 0);
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let m = entry.metadata().unwrap();
        if m.is_dir() {
            let (a, b) = usage(&entry.path());
            total.0 += a;
            total.1 += b;
        } else {
            total.0 += m.len();
            total.1 += m.blocks() * 512;
        }
    }
    total
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

/// Sends `n` messages of `size` bytes over 64 concurrent senders.
async fn send_wave(relay: &TestRelay, conns: &[silta_client::Connection], n: usize, size: usize) {
    let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let left = Arc::new(AtomicUsize::new(n));
    let mut tasks = Vec::new();
    for s in 0..64 {
        let mut mailbox = conns[s % conns.len()].mailbox();
        let payload = payload.clone();
        let left = left.clone();
        tasks.push(tokio::spawn(async move {
            while left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| l.checked_sub(1))
                .is_ok()
            {
                let env = envelope(MessageKind::Referral, &["assistance/nas"], &payload);
                mailbox.send(env).await.expect("send");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let _ = relay;
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let size: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2048);
    let pki = TestPki::new();
    let clock = TestClock::new();
    let relay = TestRelay::start_clocked(&pki, &clock, |c| {
        silta_tests::unlimited(c);
        c.log.level = "warn".into();
        c.retention.purge_after_final_s = 0;
        c.retention.keep_metadata_s = 0;
        c.retention.sweep_interval_ms = 10;
        c.retention.sweep_batch = 1000;
    })
    .await;
    let _nas = relay.connect_as(&pki, "assistance/nas").await;
    let mut conns = Vec::new();
    for i in 0..4 {
        conns.push(relay.connect_as(&pki, &format!("centre/c{i}")).await);
    }
    let data = relay.data.path().to_owned();
    println!("bench-purge: {n} messages of {size} bytes, sync = true");
    let (f0, b0) = usage(&data);
    println!(
        "empty relay:          files {:>12}  allocated {:>12}",
        mib(f0),
        mib(b0)
    );

    let t = Instant::now();
    send_wave(&relay, &conns, n, size).await;
    println!("sent in {:.1} s", t.elapsed().as_secs_f64());
    let (f1, b1) = usage(&data);
    println!(
        "after {n} sends:  files {:>12}  allocated {:>12}",
        mib(f1),
        mib(b1)
    );

    // Everything expires and is purged; meanwhile one sender measures its latency.
    clock.advance(Duration::from_secs(5 * 24 * 3600 + 1));
    let t = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let probe = {
        let mut mailbox = conns[0].mailbox();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let env = envelope(MessageKind::Referral, &["assistance/nas"], b"probe");
                let s = Instant::now();
                mailbox.send(env).await.expect("send during the sweep");
                lat.push(s.elapsed());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            lat
        })
    };
    let deadline = Instant::now() + Duration::from_secs(1800);
    while relay.metrics.snapshot().messages_purged < n as u64 {
        assert!(Instant::now() < deadline, "purge did not finish in 30 min");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut lat = probe.await.unwrap();
    lat.sort();
    let purge_s = t.elapsed().as_secs_f64();
    println!(
        "purged {n} in {purge_s:.1} s ({:.0}/s); {} sends during the sweep: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        n as f64 / purge_s,
        lat.len(),
        lat.get(lat.len() / 2)
            .map(|d| d.as_secs_f64() * 1e3)
            .unwrap_or(0.0),
        lat.get(lat.len() * 99 / 100)
            .map(|d| d.as_secs_f64() * 1e3)
            .unwrap_or(0.0),
        lat.last().map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0),
    );
    let sizes = relay.store.tree_sizes();
    println!("trees after the purge: {sizes:?}");
    let (f2, b2) = usage(&data);
    println!(
        "after the purge:      files {:>12}  allocated {:>12}",
        mib(f2),
        mib(b2)
    );

    let t = Instant::now();
    send_wave(&relay, &conns, n, size).await;
    println!("sent again in {:.1} s", t.elapsed().as_secs_f64());
    let (f3, b3) = usage(&data);
    println!(
        "after {n} more sends: files {:>12}  allocated {:>12}",
        mib(f3),
        mib(b3)
    );
    println!(
        "growth: first wave {} , second wave (into purged space) {}",
        mib(b1.saturating_sub(b0)),
        mib(b3.saturating_sub(b2))
    );
    relay.stop().await;
}
