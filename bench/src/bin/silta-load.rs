//! `silta-load`: the Silta load generator against the REAL relay binary in its own process.
//!
//! Mints a PKI into a temporary folder, writes a relay configuration (`storage.sync` per
//! `--durable`/`--no-sync`, the quotas lifted, log level warn), starts `silta-relay`, and
//! measures with N centres (each its own certificate and connections) sending random
//! sealed-size envelopes to `assistance/nas`:
//! - mode "send": send → durable receipt; with `--consume` the Assistance System subscribes at
//!   the same time and acknowledges every item with a real signed ack, and send → NAS holds it
//!   is measured too (deliver p50/p99).
//! - mode "consume": preloads `--preload` messages, then measures the NAS draining them, each
//!   signed ack awaited (latency: ack sent → the relay's answer).
//!
//! Each mode runs against a fresh relay; prints one Outcome line per mode (system "silta" or
//! "silta-nosync").

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use silta_bench::{
    Outcome,
    hist::Latency,
    load::{Common, Measured, ServerProcess, Window, drive, sibling_binary},
    procstat::ProcStat,
};
use silta_client::{Connection, keys::DeviceKeys};
use silta_proto::pb;
use silta_tests::{TestPki, UNLIMITED_TOML, ack_of, envelope, envelope_of, publish_test_keys};
use tokio::time::Instant;

const NAS: &str = "assistance/nas";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Send until durable.
    Send,
    /// Drain a preloaded mailbox with signed acks.
    Consume,
    /// Both, each on a fresh relay.
    All,
}

#[derive(Parser, Debug)]
#[command(about = "load on the real silta-relay process")]
struct Args {
    #[command(flatten)]
    common: Common,
    /// The relay binary (default: silta-relay next to this one, i.e. target/release).
    #[arg(long)]
    relay_bin: Option<PathBuf>,
    /// Centres sending, each with its own certificate; --connections are spread over them
    /// (at least one each).
    #[arg(long, default_value_t = 4)]
    centres: u32,
    /// storage.sync = true: every receipt waits for the fsync (the default).
    #[arg(long, conflicts_with = "no_sync")]
    durable: bool,
    /// storage.sync = false (system "silta-nosync"): what durability costs.
    #[arg(long)]
    no_sync: bool,
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Mode::Send)]
    mode: Mode,
    /// In mode send: the Assistance System subscribes and acknowledges at the same time.
    #[arg(long)]
    consume: bool,
    /// In mode consume: messages stored before the window (more than it can drain).
    #[arg(long, default_value_t = 50_000)]
    preload: u64,
    /// Parent folder of the relay's data (default: the system's temporary folder; choose the
    /// disk under test).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// A relay process with its PKI and data, and the connections to it.
struct Rig {
    /// Kept alive while the relay runs (it reads the CRL from there).
    _pki: TestPki,
    relay: ServerProcess,
    _data: tempfile::TempDir,
    centres: Vec<Connection>,
    nas: Connection,
    nas_keys: Arc<DeviceKeys>,
}

impl Rig {
    async fn start(args: &Args, bin: &Path) -> anyhow::Result<Rig> {
        let pki = TestPki::new();
        let data = match &args.data_dir {
            Some(d) => tempfile::tempdir_in(d),
            None => tempfile::tempdir(),
        }
        .context("cannot create the data folder")?;
        let db = data.path().join("relay");
        std::fs::create_dir(&db)?;
        // The relay refuses a data folder others can enter.
        std::fs::set_permissions(&db, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        let config = relay_config(&pki, &db, !args.no_sync);
        let config_path = data.path().join("relay.toml");
        std::fs::write(&config_path, config)?;
        let mut cmd = tokio::process::Command::new(bin);
        cmd.arg("--config").arg(&config_path);
        let relay = ServerProcess::spawn(cmd, "silta-relay listening on ").await?;
        let per_centre = args.common.connections.div_ceil(args.centres).max(1);
        let mut centres = Vec::new();
        for c in 0..args.centres {
            let id = pki.client(&format!("centre/c{c}"));
            for _ in 0..per_centre {
                centres.push(
                    Connection::connect(&pki.client_config(relay.addr, Some(&id)))
                        .await
                        .context("a centre cannot connect to the relay")?,
                );
            }
        }
        let nas_id = pki.client(NAS);
        let nas = Connection::connect(&pki.client_config(relay.addr, Some(&nas_id)))
            .await
            .context("the NAS cannot connect to the relay")?;
        let nas_keys = Arc::new(publish_test_keys(&nas, &nas_id, NAS).await);
        Ok(Rig {
            _pki: pki,
            relay,
            _data: data,
            centres,
            nas,
            nas_keys,
        })
    }
}

/// The relay's configuration: the test PKI, `sync`, no quotas, log level warn.
fn relay_config(pki: &TestPki, data_dir: &Path, sync: bool) -> String {
    let base = pki.relay_config_toml(data_dir);
    let with_sync = base.replacen("[storage]\n", &format!("[storage]\nsync = {sync}\n"), 1);
    assert_ne!(base, with_sync, "relay_config_toml has a [storage] table");
    format!("{with_sync}{UNLIMITED_TOML}")
}

fn status_error(what: &str, s: &tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{what} failed: {:?}: {}", s.code(), s.message())
}

/// Send times of messages not yet delivered, by message id.
type InFlight = Arc<Mutex<HashMap<Vec<u8>, Instant>>>;

/// What the Assistance System measured.
struct Consumed {
    /// Send → it holds the envelope.
    deliver: Latency,
    /// Ack sent → ack answered, for acks answered in the window.
    acks: Latency,
    /// When the last of `expect` items was acknowledged, if that was before the window's end.
    drained_at: Option<Instant>,
}

/// The Assistance System: subscribes, and for every envelope records send → holds it (if the
/// send time is known) and acknowledges it with a signed ack, `acks` at a time; stops at the
/// window's end or once `expect` envelopes are acknowledged.
fn spawn_consumer(
    nas: Connection,
    keys: Arc<DeviceKeys>,
    sent: Option<InFlight>,
    window: Window,
    acks: usize,
    expect: Option<u64>,
) -> tokio::task::JoinHandle<anyhow::Result<Consumed>> {
    tokio::spawn(async move {
        let mut stream = nas
            .mailbox()
            .subscribe(pb::SubscribeRequest::default())
            .await
            .map_err(|s| status_error("subscribe", &s))?
            .into_inner();
        let permits = Arc::new(tokio::sync::Semaphore::new(acks));
        let mut deliver = Latency::new();
        let ack_latency = Arc::new(Mutex::new(Latency::new()));
        let mut tasks = tokio::task::JoinSet::new();
        let mut seen = 0u64;
        while expect.is_none_or(|n| seen < n) {
            let next = tokio::time::timeout_at(window.end, stream.message()).await;
            let item = match next {
                Err(_) => break,
                Ok(Ok(Some(item))) => item,
                Ok(Ok(None)) => anyhow::bail!("the relay ended the subscription"),
                Ok(Err(s)) => return Err(status_error("subscription", &s)),
            };
            let received = Instant::now();
            let Some(env) = envelope_of(&item).and_then(|d| d.envelope.clone()) else {
                continue;
            };
            seen += 1;
            if let Some(sent) = &sent {
                let at = sent.lock().expect("lock").remove(&env.message_id);
                if let Some(at) = at.filter(|_| window.contains(received)) {
                    deliver.record(received - at);
                }
            }
            let permit = permits.clone().acquire_owned().await?;
            let (mut mailbox, keys, ack_latency) =
                (nas.mailbox(), keys.clone(), ack_latency.clone());
            tasks.spawn(async move {
                let _permit = permit;
                let asked = Instant::now();
                mailbox
                    .ack(ack_of(&keys, &env))
                    .await
                    .map_err(|s| status_error("ack", &s))?;
                let done = Instant::now();
                if window.contains(done) {
                    ack_latency.lock().expect("lock").record(done - asked);
                }
                anyhow::Ok(())
            });
            while let Some(r) = tasks.try_join_next() {
                r??;
            }
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        let now = Instant::now();
        let drained_at = (expect.is_some_and(|n| seen >= n) && now < window.end).then_some(now);
        let acks = ack_latency.lock().expect("lock").clone();
        Ok(Consumed {
            deliver,
            acks,
            drained_at,
        })
    })
}

/// Sends one envelope from the centre connection `seq` picks, until its receipt.
async fn send_one(
    conns: &[Connection],
    seq: u64,
    payload: &[u8],
    sent: Option<&InFlight>,
) -> anyhow::Result<()> {
    let env = envelope(pb::MessageKind::Referral, &[NAS], payload);
    if let Some(sent) = sent {
        sent.lock()
            .expect("lock")
            .insert(env.message_id.clone(), Instant::now());
    }
    conns[seq as usize % conns.len()]
        .mailbox()
        .send(env)
        .await
        .map_err(|s| status_error("send", &s))?;
    Ok(())
}

async fn measure_send(args: &Args, rig: &Rig, system: &str) -> anyhow::Result<Outcome> {
    let conns = Arc::new(rig.centres.clone());
    let payload = Arc::new(args.common.payload());
    let pid = rig.relay.pid()?;
    let sent: Option<InFlight> = args.consume.then(Default::default);
    // The consumer's window is the driver's: both start now.
    let consumer = args.consume.then(|| {
        spawn_consumer(
            rig.nas.clone(),
            rig.nas_keys.clone(),
            sent.clone(),
            args.common.window(Instant::now()),
            args.common.in_flight as usize,
            None,
        )
    });
    let op_sent = sent.clone();
    let measured = drive(&args.common, Some(pid), move |seq| {
        let (conns, payload, sent) = (conns.clone(), payload.clone(), op_sent.clone());
        async move { send_one(&conns, seq, &payload, sent.as_ref()).await }
    })
    .await?;
    // With the Assistance System consuming at the same time it is the full cycle (mode "cycle"),
    // not a pure send comparable with the brokers' publish runs.
    let mode = if args.consume { "cycle" } else { "send" };
    let mut outcome = args.common.outcome(system, mode, &measured);
    outcome.note = format!(
        "real silta-relay process, storage.sync = {}, {} centres over {} connections, random {}-byte ciphertexts to {NAS}",
        !args.no_sync,
        args.centres,
        rig.centres.len(),
        args.common.size
    );
    if let Some(consumer) = consumer {
        let Consumed { deliver, acks, .. } = consumer.await??;
        let d = deliver.percentiles();
        outcome.deliver_p50_ms = Some(d.p50_ms);
        outcome.deliver_p99_ms = Some(d.p99_ms);
        outcome.note.push_str(&format!(
            "; NAS subscribed and acknowledged at the same time ({} delivered and {} signed acks in the window)",
            deliver.len(),
            acks.len()
        ));
    }
    Ok(outcome)
}

async fn measure_consume(args: &Args, rig: &Rig, system: &str) -> anyhow::Result<Outcome> {
    // Preload as fast as the relay takes it (closed loop, C in flight), not measured.
    let conns = Arc::new(rig.centres.clone());
    let payload = Arc::new(args.common.payload());
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut senders = tokio::task::JoinSet::new();
    eprintln!("silta-load: preloading {} messages", args.preload);
    for _ in 0..args.common.in_flight {
        let (conns, payload, next, total) =
            (conns.clone(), payload.clone(), next.clone(), args.preload);
        senders.spawn(async move {
            loop {
                let seq = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if seq >= total {
                    return anyhow::Ok(());
                }
                send_one(&conns, seq, &payload, None).await?;
            }
        });
    }
    while let Some(r) = senders.join_next().await {
        r??;
    }
    let pid = rig.relay.pid()?;
    let window = args.common.window(Instant::now());
    // The server is read at the window's start, and at its end or when the mailbox is drained.
    let starter = tokio::spawn(async move {
        tokio::time::sleep_until(window.start).await;
        let mut stat = ProcStat::new(pid);
        stat.start().map(|()| stat)
    });
    let consumer = spawn_consumer(
        rig.nas.clone(),
        rig.nas_keys.clone(),
        None,
        window,
        args.common.in_flight as usize,
        Some(args.preload),
    );
    let consumed = consumer.await??;
    let end = consumed.drained_at.unwrap_or(window.end);
    if end <= window.start {
        starter.abort();
        anyhow::bail!(
            "the {} preloaded messages were drained during the warm-up: raise --preload",
            args.preload
        );
    }
    let server = Some(
        starter
            .await??
            .finish()
            .context("reading the relay's /proc")?,
    );
    let measured = Measured {
        count: consumed.acks.len(),
        latency: consumed.acks,
        seconds: (end - window.start).as_secs_f64(),
        server,
    };
    let mut outcome = args.common.outcome(system, "consume", &measured);
    outcome.note = format!(
        "real silta-relay process, storage.sync = {}, {} preloaded, NAS subscribe + signed ack, {} acks in flight each awaited; latency = signed ack sent -> relay's answer",
        !args.no_sync, args.preload, args.common.in_flight
    );
    if consumed.drained_at.is_some() {
        eprintln!(
            "silta-load: the {} preloaded messages were drained after {:.2} s: window shortened (raise --preload for a full window)",
            args.preload, measured.seconds
        );
        outcome
            .note
            .push_str("; preload drained early: window shortened to the drain");
    }
    Ok(outcome)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.common.validate()?;
    anyhow::ensure!(args.centres > 0, "--centres must be > 0");
    silta_relay::tls::install_crypto_provider();
    let bin = args
        .relay_bin
        .clone()
        .unwrap_or_else(|| sibling_binary("silta-relay"));
    anyhow::ensure!(
        bin.is_file(),
        "no relay binary at {} (build it: cargo build --release -p silta-relay, or give --relay-bin)",
        bin.display()
    );
    let system = if args.no_sync {
        "silta-nosync"
    } else {
        "silta"
    };
    if matches!(args.mode, Mode::Send | Mode::All) {
        let rig = Rig::start(&args, &bin).await?;
        eprintln!(
            "silta-load: {system} send, {} centres, {} connections, {} in flight, {} bytes, {} s (+{} s warm-up){}",
            args.centres,
            rig.centres.len(),
            args.common.in_flight,
            args.common.size,
            args.common.seconds,
            args.common.warmup,
            if args.consume { ", NAS consuming" } else { "" }
        );
        measure_send(&args, &rig, system).await?.print();
        rig.relay.stop().await;
    }
    if matches!(args.mode, Mode::Consume | Mode::All) {
        let rig = Rig::start(&args, &bin).await?;
        measure_consume(&args, &rig, system).await?.print();
        rig.relay.stop().await;
    }
    Ok(())
}
