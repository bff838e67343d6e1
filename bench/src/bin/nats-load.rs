//! `nats-load`: NATS JetStream's side of the comparison (issue 14). Publishes to a file-storage
//! stream and awaits each PubAck, C in flight over K connections (mode "send": latency publish →
//! PubAck), then consumes what it published with a durable pull consumer, explicit acks, each
//! ack confirmed by the server (double ack) (mode "consume"). Prints one Outcome JSON line per
//! mode on stdout; progress goes to stderr.
//!
//! TLS: async-nats with rustls on aws-lc-rs (the workspace's one provider), TLS required, the CA
//! of `--ca` and the client certificate of `--cert`/`--key`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, bail};
use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, pull},
    stream::{RetentionPolicy, StorageType},
};
use bytes::Bytes;
use clap::Parser;
use silta_bench::{
    brokers::{BrokerArgs, ConsumeRun},
    load::{Common, drive},
};

#[derive(Parser)]
#[command(about = "NATS JetStream load: file storage, PubAck awaited, then consume + acked ack")]
struct Args {
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(flatten)]
    common: Common,
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
    args.common.validate()?;
    let server = args.broker.server()?;
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

async fn send(args: &Args, contexts: &[jetstream::Context], server: Option<u32>) -> Result<u64> {
    let payload = Bytes::from(vec![0x5a; args.common.size as usize]);
    let ctxs: Arc<[jetstream::Context]> = contexts.to_vec().into();
    let stream_name: Arc<str> = args.stream.as_str().into();
    // Every acknowledged message, warm-up and tail included: what the consume run will drain.
    let stored = Arc::new(AtomicU64::new(0));
    let total = stored.clone();
    eprintln!(
        "nats-load: send, {} in flight over {} connections, {} s + {} s warm-up",
        args.common.in_flight, args.common.connections, args.common.seconds, args.common.warmup
    );
    let measured = drive(&args.common, server, move |seq| {
        let js = ctxs[(seq % ctxs.len() as u64) as usize].clone();
        let payload = payload.clone();
        let stream_name = stream_name.clone();
        let stored = stored.clone();
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
            stored.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    })
    .await?;
    let mut o = args.common.outcome("nats", "send", &measured);
    o.note = NOTE.into();
    o.print();
    let total = total.load(Ordering::Relaxed);
    eprintln!("nats-load: {total} messages acknowledged (PubAck) in all");
    Ok(total)
}

async fn consume(
    args: &Args,
    contexts: &[jetstream::Context],
    server: Option<u32>,
    total: u64,
) -> Result<()> {
    let k = contexts.len() as u32;
    let per_conn = args.common.in_flight.div_ceil(k) as usize;
    let mut run = ConsumeRun::begin(&args.common, server, total)?;
    for js in contexts {
        let consumer: jetstream::consumer::Consumer<pull::Config> = js
            .get_stream(&args.stream)
            .await
            .context("opening the stream")?
            .get_consumer(CONSUMER)
            .await
            .map_err(|e| anyhow!("opening the consumer: {e}"))?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(per_conn)
            .messages()
            .await
            .context("pulling messages")?;
        // At most `per_conn` acks in flight on this connection, each awaited until the server
        // confirms it.
        run.consumer(
            messages,
            per_conn,
            |message: jetstream::Message| async move {
                message
                    .double_ack()
                    .await
                    .map_err(|e| anyhow!(e).context("acknowledging"))
            },
        );
    }
    let mut o = run.finish(&args.common, "nats").await?;
    o.note = NOTE.into();
    o.print();
    eprintln!("nats-load: consumed and acked {} of {total}", o.count);
    Ok(())
}
