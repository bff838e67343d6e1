//! Send throughput of a real relay (TLS on loopback, sled in a temp dir), durable vs not.
//!
//! `cargo run --release -p silta-tests --bin bench-send -- [SENDERS] [SIZE_BYTES] [SECONDS]`
//! (defaults 64, 4096, 5). Runs the relay twice in this process, once with `storage.sync = true`
//! (every answer waits for an fsync, shared by concurrent sends) and once with `sync = false`,
//! and prints sends per second, latency percentiles and the ratio: the cost of durability,
//! measured side by side on the same machine in the same run.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use silta_proto::pb::MessageKind;
use silta_tests::{TestPki, TestRelay, envelope};

struct Run {
    sends: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

async fn run(pki: &TestPki, sync: bool, senders: usize, size: usize, seconds: u64) -> Run {
    let relay = TestRelay::start(pki, |c| {
        c.storage.sync = sync;
        silta_tests::unlimited(c);
        c.limits.max_pending_items = u64::MAX;
        c.log.level = "warn".into();
    })
    .await;
    let _nas = relay.connect_as(pki, "assistance/nas").await;
    // A few connections, as a few daemons would have; HTTP/2 multiplexes the senders over them.
    let mut conns = Vec::new();
    for i in 0..4 {
        conns.push(relay.connect_as(pki, &format!("centre/c{i}")).await);
    }
    let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let warmup = Duration::from_millis(500);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..senders {
        let conn = conns[s % conns.len()].clone();
        let payload = payload.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut mailbox = conn.mailbox();
            while !stop.load(Ordering::Relaxed) {
                let env = envelope(MessageKind::Referral, &["assistance/nas"], &payload);
                let t = Instant::now();
                mailbox.send(env).await.expect("send");
                if started.elapsed() > warmup {
                    lat.push(t.elapsed());
                }
            }
            lat
        }));
    }
    tokio::time::sleep(warmup + Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed() - warmup;
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    latencies.sort();
    relay.stop().await;
    Run {
        sends: latencies.len(),
        elapsed,
        latencies,
    }
}

fn pct(l: &[Duration], p: f64) -> f64 {
    if l.is_empty() {
        return 0.0;
    }
    let i = ((l.len() as f64 - 1.0) * p).round() as usize;
    l[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let senders = args.first().copied().unwrap_or(64);
    let size = args.get(1).copied().unwrap_or(4096);
    let seconds = args.get(2).copied().unwrap_or(5) as u64;
    silta_relay::tls::install_crypto_provider();
    let pki = TestPki::new();
    println!(
        "bench-send: {senders} concurrent senders, {size}-byte ciphertexts, {seconds} s per mode"
    );
    println!(
        "{:<22} {:>10} {:>10} {:>9} {:>9} {:>9}",
        "mode", "sends", "sends/s", "p50 ms", "p99 ms", "max ms"
    );
    let mut rates = Vec::new();
    for (name, sync) in [
        ("durable (sync=true)", true),
        ("no flush (sync=false)", false),
    ] {
        let r = run(&pki, sync, senders, size, seconds).await;
        let rate = r.sends as f64 / r.elapsed.as_secs_f64();
        rates.push(rate);
        println!(
            "{name:<22} {:>10} {:>10.0} {:>9.2} {:>9.2} {:>9.2}",
            r.sends,
            rate,
            pct(&r.latencies, 0.5),
            pct(&r.latencies, 0.99),
            pct(&r.latencies, 1.0)
        );
    }
    println!(
        "durable / no-flush throughput ratio: {:.2}",
        rates[0] / rates[1]
    );
}
