//! `nats-load`: NATS JetStream's side of the comparison (issue 14). Publishes to a file-storage
//! stream and awaits each PubAck, C in flight over K connections (mode "send": latency publish →
//! PubAck), then consumes what it published with a durable pull consumer, explicit acks, each
//! ack confirmed by the server (double ack) (mode "consume"). Prints one Outcome JSON line per
//! mode on stdout; progress goes to stderr.
//!
//! TLS: async-nats with rustls on aws-lc-rs (the workspace's one provider), TLS required, the CA
//! of `--ca` and the client certificate of `--cert`/`--key`.

use std::{sync::Arc, time::Duration};

use anyhow::{Context as _, Result, anyhow, bail};
use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, pull},
    stream::{RetentionPolicy, StorageType},
};
use bytes::Bytes;
use clap::Parser;
use futures_util::StreamExt as _;
use silta_bench::brokers::{
    BrokerArgs, CommonArgs, CpuProbe, Drain, ServerProc, Window, drive, fill_latency, fill_server,
    fill_server_since, new_histogram, record,
};
use tokio::time::Instant;

#[derive(Parser)]
#[command(about = "NATS JetStream load: file storage, PubAck awaited, then consume + acked ack")]
struct Args {
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(flatten)]
    common: CommonArgs,
    /// The stream to use (deleted and made anew before the run, deleted after it).
    #[arg(long, default_value = "SILTA_BENCH")]
    stream: String,
}

const SUBJECT: &str = "silta.bench";
const CONSUMER: &str = "silta-bench";

const NOTE: &str = "NATS JetStream, file storage, 1 replica, work-queue retention (an acked \
message is removed); the server runs with sync_interval: always (fsync after every write, \
before the PubAck); send latency = publish -> PubAck. consume: durable pull consumer, explicit \
ack; every ack is a double ack (AckKind::Ack, awaited until the server confirms it); consume \
latency = message received -> ack confirmed; the window is the whole drain (first message to \
last ack, capped at --seconds)";

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    args.common.check()?;
    let server = args.broker.server_pid.map(ServerProc::new).transpose()?;
    let k = args.common.connections as usize;
    let mut contexts = Vec::with_capacity(k);
    for _ in 0..k {
        let client = async_nats::ConnectOptions::new()
            .require_tls(true)
            .add_root_certificates(args.broker.ca.clone())
            .add_client_certificate(args.broker.cert.clone(), args.broker.key.clone())
            .connection_timeout(Duration::from_secs(10))
            .max_reconnects(Some(0))
            .connect(args.broker.url.as_str())
            .await
            .context("connecting to NATS")?;
        contexts.push(jetstream::new(client));
    }
    let js = &contexts[0];
    // A fresh stream for every run: no messages left from an earlier one.
    match js.delete_stream(&args.stream).await {
        Ok(_) => eprintln!("nats-load: deleted the old stream {}", args.stream),
        Err(e) if e.to_string().contains("not found") => {}
        Err(e) => return Err(anyhow!(e).context("deleting the old stream")),
    }
    let stream = js
        .create_stream(jetstream::stream::Config {
            name: args.stream.clone(),
            subjects: vec![SUBJECT.into()],
            storage: StorageType::File,
            retention: RetentionPolicy::WorkQueue,
            num_replicas: 1,
            ..Default::default()
        })
        .await
        .context("creating the stream")?;
    stream
        .create_consumer(pull::Config {
            durable_name: Some(CONSUMER.into()),
            ack_policy: AckPolicy::Explicit,
            max_ack_pending: i64::from(args.common.in_flight).max(1000),
            ..Default::default()
        })
        .await
        .context("creating the consumer")?;
    eprintln!("nats-load: stream {} ready", args.stream);

    let total = send(&args, &contexts, server).await?;
    consume(&args, &contexts, server, total).await?;
    js.delete_stream(&args.stream)
        .await
        .context("deleting the stream")?;
    Ok(())
}

async fn send(
    args: &Args,
    contexts: &[jetstream::Context],
    server: Option<ServerProc>,
) -> Result<u64> {
    let payload = Bytes::from(vec![0x5a; args.common.size as usize]);
    let ctxs: Arc<[jetstream::Context]> = contexts.to_vec().into();
    let stream_name: Arc<str> = args.stream.as_str().into();
    let window = Window::starting_now(&args.common);
    let probe = server.map(|s| CpuProbe::spawn(s, window.measure_from, window.until));
    eprintln!(
        "nats-load: send, {} in flight over {} connections, {} s + {} s warm-up",
        args.common.in_flight, args.common.connections, args.common.seconds, args.common.warmup
    );
    let run = drive(&args.common, window, move |worker| {
        let js = ctxs[worker % ctxs.len()].clone();
        let payload = payload.clone();
        let stream_name = stream_name.clone();
        async move {
            let ack = js
                .publish(SUBJECT, payload)
                .await
                .context("publishing")?
                .await
                .context("waiting for the PubAck")?;
            if ack.stream != *stream_name {
                bail!("PubAck from stream {:?}, not {stream_name:?}", ack.stream);
            }
            if ack.duplicate {
                bail!("the server took a message for a duplicate");
            }
            Ok(())
        }
    })
    .await?;
    let mut o = args.common.outcome("nats", "send");
    fill_latency(&mut o, &run.hist, run.count, args.common.seconds);
    fill_server(&mut o, server, probe).await?;
    o.note = NOTE.into();
    o.print();
    eprintln!(
        "nats-load: {} messages acknowledged (PubAck) in all",
        run.total
    );
    Ok(run.total)
}

async fn consume(
    args: &Args,
    contexts: &[jetstream::Context],
    server: Option<ServerProc>,
    total: u64,
) -> Result<()> {
    let k = contexts.len() as u32;
    let per_conn = args.common.in_flight.div_ceil(k) as usize;
    let deadline = Instant::now() + Duration::from_secs_f64(args.common.seconds);
    let drain = Drain::new(total);
    let cpu_before = server.map(|s| s.cpu_time()).transpose()?;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for js in contexts {
        let consumer: jetstream::consumer::Consumer<pull::Config> = js
            .get_stream(&args.stream)
            .await
            .context("opening the stream")?
            .get_consumer(CONSUMER)
            .await
            .map_err(|e| anyhow!("opening the consumer: {e}"))?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(per_conn)
            .messages()
            .await
            .context("pulling messages")?;
        let drain = drain.clone();
        tasks.spawn(async move {
            // At most `per_conn` acks in flight on this connection, each awaited until the
            // server confirms it.
            let permits = Arc::new(tokio::sync::Semaphore::new(per_conn));
            let mut acks = tokio::task::JoinSet::new();
            let mut hist = new_histogram();
            let (mut count, mut last) = (0u64, None::<Instant>);
            // Acks completing after the window closed are not counted.
            let mut tally = |done: Instant, latency: Duration| {
                if done <= deadline {
                    record(&mut hist, latency);
                    count += 1;
                    last = Some(last.map_or(done, |l: Instant| l.max(done)));
                }
            };
            loop {
                let permit = permits
                    .clone()
                    .acquire_owned()
                    .await
                    .context("ack permits")?;
                let message = tokio::select! {
                    next = messages.next() => next,
                    () = drain.all_done() => break,
                    () = tokio::time::sleep_until(deadline) => break,
                };
                let message = message
                    .ok_or_else(|| anyhow!("the pull consumer ended"))?
                    .map_err(|e| anyhow!(e).context("receiving"))?;
                let got = Instant::now();
                let drain = drain.clone();
                acks.spawn(async move {
                    message
                        .double_ack()
                        .await
                        .map_err(|e| anyhow!(e).context("acknowledging"))?;
                    let done = Instant::now();
                    drain.one_done();
                    drop(permit);
                    Ok::<_, anyhow::Error>((done, done - got))
                });
                while let Some(r) = acks.try_join_next() {
                    let (done, latency) = r.context("ack task")??;
                    tally(done, latency);
                }
            }
            while let Some(r) = acks.join_next().await {
                let (done, latency) = r.context("ack task")??;
                tally(done, latency);
            }
            Ok::<_, anyhow::Error>((hist, count, last))
        });
    }
    let mut hist = new_histogram();
    let (mut count, mut last) = (0u64, start);
    while let Some(r) = tasks.join_next().await {
        let (h, c, l) = r.context("consumer task")??;
        hist.add(h).map_err(|e| anyhow!("histogram: {e}"))?;
        count += c;
        last = last.max(l.unwrap_or(start));
    }
    let mut o = args.common.outcome("nats", "consume");
    fill_latency(&mut o, &hist, count, (last - start).as_secs_f64());
    fill_server_since(&mut o, server, cpu_before)?;
    o.note = NOTE.into();
    o.print();
    eprintln!("nats-load: consumed and acked {count} of {total}");
    Ok(())
}
