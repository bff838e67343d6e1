//! `silta-scale`: how the relay grows with what it stores.
//!
//! For each size N (default 10k, 100k, 1M) it preloads a relay data folder under `--dir` with N
//! referrals from several centres to the Assistance System, in cases of a few messages each;
//! half of them delivered (DELIVERED events) and a quarter acknowledged with signed acks
//! (ACKNOWLEDGED events, status items). The preload runs the relay library in-process (real
//! TLS, the durable group-commit writer) and keeps the folder for later runs: a folder is only
//! used once complete (it is renamed into place last).
//!
//! Then it starts the REAL relay binary (`--relay-bin`, by default `silta-relay` beside this
//! program) as a separate process on that folder, with durable settings, and measures: start-up
//! (spawn → the first successful health-checked connection), resident memory after start and
//! the peak (VmHWM) after the queries, time to the first item of the Assistance System's
//! subscription, an auditor's query for one case (first page, whole result), an inclusion and a
//! consistency proof, and disk bytes per stored message. One JSON line per size on stdout; a
//! markdown table of how each figure grows on stderr at the end.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clap::Parser;
use serde::{Deserialize, Serialize};
use silta_client::Connection;
use silta_proto::pb;
use silta_tests::{TestPki, TestRelay, UNLIMITED_TOML, ack_of, envelope, unlimited};

const NAS: &str = "assistance/nas";
/// Where a complete preload records what the measurements need.
const MANIFEST: &str = "scale.json";

#[derive(Parser, Debug)]
#[command(about = "Preload a relay with 10k/100k/1M messages and measure how it grows")]
struct Args {
    /// Folder that keeps the preloaded data folders (`n-<N>`), reused by later runs.
    #[arg(long)]
    dir: PathBuf,
    /// Sizes to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    sizes: Vec<u64>,
    /// The relay binary (default: `silta-relay` beside this program).
    #[arg(long)]
    relay_bin: Option<PathBuf>,
    /// Centres sending.
    #[arg(long, default_value_t = 8)]
    centres: u32,
    /// Messages per case.
    #[arg(long, default_value_t = 4)]
    per_case: u64,
    /// Ciphertext bytes per message (a sealed referral).
    #[arg(long, default_value_t = 2048)]
    size: usize,
    /// Sends in flight while preloading.
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// Preload with durable writes (`storage.sync`, every batch fdatasync'd before its
    /// receipts). `--preload-sync false` writes the same records several times faster (the
    /// measured relay always runs durable; the preload ends with a flush either way).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    preload_sync: bool,
    /// Times each query is repeated (the median is reported; the first, cold, separately).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
}

/// What a preload left for the measurements.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    messages: u64,
    events: u64,
    /// The case the audit query asks for (from the middle of the log), and how many events
    /// of it the log holds.
    probe_case: Vec<u8>,
    probe_events: u64,
    preload_seconds: f64,
}

/// One size's figures, as one JSON line.
#[derive(Debug, Clone, Default, Serialize)]
struct ScaleOutcome {
    system: String,
    mode: String,
    messages: u64,
    events: u64,
    preload_seconds: f64,
    startup_ms: f64,
    rss_after_start_kib: u64,
    /// Of which heap and other anonymous memory (the rest: the binary and shared libraries).
    rss_anon_after_start_kib: u64,
    peak_rss_kib: u64,
    subscribe_first_item_ms: f64,
    subscribe_first_item_cold_ms: f64,
    query_case_first_page_ms: f64,
    query_case_first_page_cold_ms: f64,
    query_case_all_ms: f64,
    query_case_events: u64,
    inclusion_proof_ms: f64,
    consistency_proof_ms: f64,
    disk_bytes: u64,
    disk_bytes_per_message: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)?;
    let relay_bin = match &args.relay_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no folder of this program")?
            .join("silta-relay"),
    };
    if !relay_bin.exists() {
        bail!(
            "no relay binary at {} (build it: cargo build -p silta-relay, or give --relay-bin)",
            relay_bin.display()
        );
    }
    let mut outcomes = Vec::new();
    for &n in &args.sizes {
        let folder = args.dir.join(format!("n-{n}"));
        let manifest = match std::fs::read(folder.join(MANIFEST)) {
            Ok(bytes) => {
                eprintln!("n={n}: reusing {}", folder.display());
                serde_json::from_slice(&bytes)?
            }
            Err(_) => preload(&args, n, &folder).await?,
        };
        let outcome = measure(&args, &relay_bin, &folder, &manifest).await?;
        println!("{}", serde_json::to_string(&outcome)?);
        outcomes.push(outcome);
    }
    eprintln!("{}", table(&outcomes));
    Ok(())
}

/// Fills a new data folder with `n` messages and their events through an in-process relay,
/// then renames it to `folder` (so only a complete preload is ever reused).
async fn preload(args: &Args, n: u64, folder: &Path) -> anyhow::Result<Manifest> {
    let started = Instant::now();
    let pki = TestPki::new();
    let work = tempfile::Builder::new()
        .prefix(&format!(".n-{n}-"))
        .tempdir_in(&args.dir)?;
    let relay = TestRelay::start_in(&pki, work, |c| {
        unlimited(c);
        c.log.level = "warn".into();
        c.storage.sync = args.preload_sync;
    })
    .await;
    let (nas, keys) = relay.connect_with_keys(&pki, NAS).await;
    let mut centres = Vec::new();
    for c in 0..args.centres {
        centres.push(relay.connect_as(&pki, &format!("centre/c{c}")).await);
    }
    // Cases of `per_case` messages, round-robin over the centres; the probe case sits in the
    // middle of the log.
    let cases = n.div_ceil(args.per_case);
    let probe = cases / 2;
    let probe_case = case_of(n, probe);
    let ciphertext: Arc<[u8]> = vec![0x5a; args.size].into();
    // Tasks take whole cases (a case stays with the centre that opened it); task t sends for
    // centre t % centres.
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..args.in_flight {
        let conn = centres[t % centres.len()].clone();
        let (next, ciphertext, per_case) = (next.clone(), ciphertext.clone(), args.per_case);
        tasks.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let case = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if case >= cases {
                    return anyhow::Ok(mine);
                }
                for i in case * per_case..((case + 1) * per_case).min(n) {
                    let mut env = envelope(pb::MessageKind::Referral, &[NAS], &ciphertext);
                    env.case_ref = case_of(n, case);
                    conn.mailbox().send(env.clone()).await?;
                    mine.push((i, env));
                    if i % 10_000 == 0 {
                        eprintln!("n={n}: sending #{i}");
                    }
                }
            }
        });
    }
    let mut sent = Vec::with_capacity(n as usize);
    while let Some(r) = tasks.join_next().await {
        sent.extend(r??);
    }
    sent.sort_by_key(|(i, _)| *i);
    eprintln!(
        "n={n}: {} sent in {:.1}s ({:.0} msg/s, storage.sync = {})",
        sent.len(),
        started.elapsed().as_secs_f64(),
        sent.len() as f64 / started.elapsed().as_secs_f64(),
        args.preload_sync
    );
    // The Assistance System receives the first half (DELIVERED) and acknowledges every other
    // one of those (ACKNOWLEDGED).
    let mut stream = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await?
        .into_inner();
    let deliver = n / 2;
    let mut got = 0u64;
    while got < deliver {
        match tokio::time::timeout(Duration::from_secs(60), stream.message()).await {
            Ok(Ok(Some(_))) => got += 1,
            other => bail!("the subscription stopped after {got} items: {other:?}"),
        }
    }
    drop(stream);
    let acks: Vec<pb::AckRequest> = sent
        .iter()
        .take(deliver as usize)
        .step_by(2)
        .map(|(_, env)| ack_of(&keys, env))
        .collect();
    let acks = Arc::new(std::sync::Mutex::new(acks));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.in_flight {
        let (nas, acks) = (nas.clone(), acks.clone());
        tasks.spawn(async move {
            loop {
                let Some(ack) = acks.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                    return anyhow::Ok(());
                };
                nas.mailbox().ack(ack).await?;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let events = relay.store.event_count()?;
    let probe_events = (0..events)
        .filter_map(|i| relay.store.event(i).ok().flatten())
        .filter(|e| e.case_ref == probe_case)
        .count() as u64;
    drop((nas, centres));
    let work = relay.stop_keep().await;
    // As the relay binary does after a clean stop: a recovery snapshot covering the preload,
    // so the measured start reads it instead of replaying the preload's log.
    let refreshed = Instant::now();
    let db = work.path().join("db");
    for attempt in 0.. {
        match silta_relay::store::refresh_recovery_snapshot(&db) {
            Ok(()) => break,
            Err(e) if attempt < 100 && e.to_string().contains("could not acquire lock") => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => bail!("writing the recovery snapshot: {e}"),
        }
    }
    eprintln!(
        "n={n}: recovery snapshot written in {:.1}s",
        refreshed.elapsed().as_secs_f64()
    );
    let manifest = Manifest {
        messages: n,
        events,
        probe_case,
        probe_events,
        preload_seconds: started.elapsed().as_secs_f64(),
    };
    std::fs::write(
        work.path().join(MANIFEST),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    let work = work.keep();
    std::fs::rename(&work, folder)?;
    eprintln!(
        "n={n}: preloaded {events} events in {:.1}s",
        manifest.preload_seconds
    );
    Ok(manifest)
}

/// The case reference of case number `case` of the preload of `n`: fixed, so it is the same
/// whichever task sends it.
fn case_of(n: u64, case: u64) -> Vec<u8> {
    let mut r = [0u8; 16];
    r[..8].copy_from_slice(&n.to_be_bytes());
    r[8..].copy_from_slice(&case.to_be_bytes());
    // A UUIDv4 shape (version and variant bits), as clients make them.
    r[6] = (r[6] & 0x0f) | 0x40;
    r[8] = (r[8] & 0x3f) | 0x80;
    r.to_vec()
}

/// Starts the real relay binary on the preloaded folder and measures it.
async fn measure(
    args: &Args,
    relay_bin: &Path,
    folder: &Path,
    m: &Manifest,
) -> anyhow::Result<ScaleOutcome> {
    let n = m.messages;
    let pki = TestPki::new();
    let conf = tempfile::tempdir()?;
    let config = conf.path().join("relay.toml");
    // Durable settings (storage.sync = true, the default); quotas lifted as for every load.
    std::fs::write(
        &config,
        format!("{}{UNLIMITED_TOML}", pki.relay_config_toml(folder)),
    )?;
    let spawned = Instant::now();
    let relay = silta_tests::RelayProcess::spawn(&relay_bin.to_string_lossy(), &config).await;
    let pid = relay.child.id().context("relay pid")?;
    let auditor =
        Connection::connect(&pki.client_config(relay.addr, Some(&pki.client("auditor/dpo"))))
            .await?;
    let startup = spawned.elapsed();
    let rss_after_start = proc_status_kib(pid, "VmRSS:")?;
    let rss_anon_after_start = proc_status_kib(pid, "RssAnon:")?;
    eprintln!("n={n}: serving after {:.0} ms", ms(startup));

    // The first item of the Assistance System's subscription (cold, then warm repeats).
    let nas = Connection::connect(&pki.client_config(relay.addr, Some(&pki.client(NAS)))).await?;
    let mut first_item = Vec::new();
    for _ in 0..args.repeat.max(1) {
        let t = Instant::now();
        let mut stream = nas
            .mailbox()
            .subscribe(pb::SubscribeRequest::default())
            .await?
            .into_inner();
        match tokio::time::timeout(Duration::from_secs(60), stream.message()).await {
            Ok(Ok(Some(_))) => first_item.push(ms(t.elapsed())),
            other => bail!("no first item: {other:?}"),
        }
    }

    // An auditor's query for one case: the first page, then every page.
    let query = |token: String| pb::QueryRequest {
        filter: Some(pb::QueryFilter {
            case_ref: m.probe_case.clone(),
            ..Default::default()
        }),
        purpose: "scale benchmark".into(),
        purpose_code: pb::PurposeCode::Supervision.into(),
        page_size: 100,
        page_token: token,
    };
    let mut first_page = Vec::new();
    for _ in 0..args.repeat.max(1) {
        let t = Instant::now();
        auditor.audit().query(query(String::new())).await?;
        first_page.push(ms(t.elapsed()));
    }
    let t = Instant::now();
    let (mut token, mut found, mut pages) = (String::new(), 0u64, 0u32);
    loop {
        let page = auditor.audit().query(query(token)).await?.into_inner();
        found += page.events.len() as u64;
        pages += 1;
        if page.next_page_token.is_empty() || pages >= 10_000 {
            break;
        }
        token = page.next_page_token;
    }
    let query_all = ms(t.elapsed());
    if found != m.probe_events {
        eprintln!(
            "n={n}: the case query found {found} events, the preload wrote {}",
            m.probe_events
        );
    }

    // Proofs against the current tree: the middle leaf, and half the tree against all of it.
    let size = auditor
        .audit()
        .checkpoint(pb::CheckpointRequest::default())
        .await?
        .into_inner()
        .tree_size;
    let mut inclusion = Vec::new();
    let mut consistency = Vec::new();
    for _ in 0..args.repeat.max(1) {
        let t = Instant::now();
        auditor
            .audit()
            .inclusion_proof(pb::InclusionProofRequest {
                index: size / 2,
                tree_size: size,
            })
            .await?;
        inclusion.push(ms(t.elapsed()));
        let t = Instant::now();
        auditor
            .audit()
            .consistency_proof(pb::ConsistencyProofRequest {
                old_size: size / 2,
                new_size: size,
            })
            .await?;
        consistency.push(ms(t.elapsed()));
    }
    let peak = proc_status_kib(pid, "VmHWM:")?;
    drop((auditor, nas));
    let status = relay.terminate().await;
    if !status.success() {
        eprintln!("n={n}: the relay exited with {status}");
    }
    let disk = disk_bytes(folder)?;
    Ok(ScaleOutcome {
        system: "silta".into(),
        mode: "scale".into(),
        messages: n,
        events: m.events,
        preload_seconds: m.preload_seconds,
        startup_ms: ms(startup),
        rss_after_start_kib: rss_after_start,
        rss_anon_after_start_kib: rss_anon_after_start,
        peak_rss_kib: peak,
        subscribe_first_item_cold_ms: first_item[0],
        subscribe_first_item_ms: median(&first_item),
        query_case_first_page_cold_ms: first_page[0],
        query_case_first_page_ms: median(&first_page),
        query_case_all_ms: query_all,
        query_case_events: found,
        inclusion_proof_ms: median(&inclusion),
        consistency_proof_ms: median(&consistency),
        disk_bytes: disk,
        disk_bytes_per_message: disk as f64 / n.max(1) as f64,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// A `/proc/<pid>/status` figure in KiB (`VmRSS:`, `VmHWM:`).
fn proc_status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// Bytes allocated on disk under `dir` (as `du`).
fn disk_bytes(dir: &Path) -> anyhow::Result<u64> {
    use std::os::unix::fs::MetadataExt as _;
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            disk_bytes(&entry.path())?
        } else {
            meta.blocks() * 512
        };
    }
    Ok(total)
}

/// How each figure grows, smallest size first, as a markdown table.
fn table(outcomes: &[ScaleOutcome]) -> String {
    let mut t = String::from(
        "| messages | events | start-up ms | RSS after start MiB | peak RSS MiB | subscribe first item ms | case query first page ms | case query all ms | inclusion ms | consistency ms | disk bytes/msg |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for o in outcomes {
        t.push_str(&format!(
            "| {} | {} | {:.0} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} |\n",
            o.messages,
            o.events,
            o.startup_ms,
            o.rss_after_start_kib as f64 / 1024.0,
            o.peak_rss_kib as f64 / 1024.0,
            o.subscribe_first_item_ms,
            o.query_case_first_page_ms,
            o.query_case_all_ms,
            o.inclusion_proof_ms,
            o.consistency_proof_ms,
            o.disk_bytes_per_message,
        ));
    }
    if let (Some(a), Some(b)) = (outcomes.first(), outcomes.last())
        && outcomes.len() > 1
    {
        let r = |x: f64, y: f64| if x > 0.0 { y / x } else { 0.0 };
        t.push_str(&format!(
            "\n{} → {} messages: start-up ×{:.2}, peak RSS ×{:.2}, first item ×{:.2}, case query ×{:.2}, inclusion ×{:.2}, consistency ×{:.2}, disk/msg ×{:.2}\n",
            a.messages,
            b.messages,
            r(a.startup_ms, b.startup_ms),
            r(a.peak_rss_kib as f64, b.peak_rss_kib as f64),
            r(a.subscribe_first_item_ms, b.subscribe_first_item_ms),
            r(a.query_case_first_page_ms, b.query_case_first_page_ms),
            r(a.inclusion_proof_ms, b.inclusion_proof_ms),
            r(a.consistency_proof_ms, b.consistency_proof_ms),
            r(a.disk_bytes_per_message, b.disk_bytes_per_message),
        ));
    }
    t
}
