//! `rabbit-load`: RabbitMQ's side of the comparison (issue 14). Publishes persistent messages to
//! a durable quorum queue with publisher confirms, C in flight over K connections (mode "send":
//! latency publish → confirm), then consumes what it published with manual acks, prefetch C
//! (mode "consume"). Prints one Outcome JSON line per mode on stdout; progress goes to stderr.
//!
//! TLS: lapin with rustls on aws-lc-rs (the workspace's one provider), the CA of `--ca` as the
//! only trust anchor, and the client certificate of `--cert`/`--key`. The user and password, if
//! any, are in the URL (bench/brokers.sh prints it); they travel inside TLS only (amqps).

use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Parser;
use futures_util::StreamExt as _;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions, QueueDeclareOptions, QueuePurgeOptions,
    },
    tcp::{OwnedIdentity, OwnedTLSConfig},
    types::{AMQPValue, FieldTable},
};
use silta_bench::brokers::{
    BrokerArgs, CommonArgs, CpuProbe, Drain, ServerProc, Window, drive, fill_latency, fill_server,
    fill_server_since, new_histogram, record,
};
use tokio::time::Instant;

#[derive(Parser)]
#[command(about = "RabbitMQ load: quorum queue, publisher confirms, then consume + ack")]
struct Args {
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(flatten)]
    common: CommonArgs,
    /// The quorum queue to use (declared if missing, purged before the run).
    #[arg(long, default_value = "silta-bench")]
    queue: String,
}

const NOTE: &str = "RabbitMQ quorum queue (durable, single node; Raft log fsynced before the \
confirm), persistent messages (delivery_mode 2), publisher confirms; send latency = publish -> \
confirm. consume: basic.consume with manual ack, prefetch = in-flight spread over the channels; \
basic.ack has no reply in AMQP 0.9.1, so an ack is done when written to the socket (not \
confirmed by the broker); consume latency = delivery received -> ack written; the window is the \
whole drain (first delivery to last ack, capped at --seconds)";

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    args.common.check()?;
    let server = args.broker.server_pid.map(ServerProc::new).transpose()?;
    let tls = tls_config(&args.broker)?;
    let k = args.common.connections as usize;
    let mut conns = Vec::with_capacity(k);
    let mut channels = Vec::with_capacity(k);
    for _ in 0..k {
        let conn = Connection::connect_with_config(
            &args.broker.url,
            ConnectionProperties::default(),
            tls.clone(),
            lapin::runtime::default_runtime()?,
        )
        .await
        .context("connecting to RabbitMQ")?;
        let ch = conn.create_channel().await.context("opening a channel")?;
        conns.push(conn);
        channels.push(ch);
    }
    let mut qargs = FieldTable::default();
    qargs.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    channels[0]
        .queue_declare(
            args.queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            qargs,
        )
        .await
        .context("declaring the quorum queue")?;
    let purged = channels[0]
        .queue_purge(args.queue.as_str().into(), QueuePurgeOptions::default())
        .await
        .context("purging the queue")?;
    eprintln!(
        "rabbit-load: queue {} ready ({purged} old messages purged)",
        args.queue
    );

    let total = send(&args, &channels, server).await?;
    consume(&args, &channels, server, total).await?;
    for conn in conns {
        let _ = conn.close(200, "done".into()).await;
    }
    Ok(())
}

fn tls_config(b: &BrokerArgs) -> Result<OwnedTLSConfig> {
    let read =
        |p: &std::path::Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let ca = String::from_utf8(read(&b.ca)?).context("the CA file is not PEM text")?;
    Ok(OwnedTLSConfig {
        identity: Some(OwnedIdentity::PKCS8 {
            pem: read(&b.cert)?,
            key: read(&b.key)?,
        }),
        cert_chain: Some(ca),
    })
}

async fn send(args: &Args, channels: &[Channel], server: Option<ServerProc>) -> Result<u64> {
    for ch in channels {
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .context("enabling publisher confirms")?;
    }
    let payload: Arc<[u8]> = vec![0x5a; args.common.size as usize].into();
    let queue: Arc<str> = args.queue.as_str().into();
    let chans: Arc<[Channel]> = channels.to_vec().into();
    let window = Window::starting_now(&args.common);
    let probe = server.map(|s| CpuProbe::spawn(s, window.measure_from, window.until));
    eprintln!(
        "rabbit-load: send, {} in flight over {} connections, {} s + {} s warm-up",
        args.common.in_flight, args.common.connections, args.common.seconds, args.common.warmup
    );
    let run = drive(&args.common, window, move |worker| {
        let ch = chans[worker % chans.len()].clone();
        let payload = payload.clone();
        let queue = queue.clone();
        async move {
            let confirm = ch
                .basic_publish(
                    "".into(),
                    queue.as_ref().into(),
                    BasicPublishOptions::default(),
                    &payload,
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .context("publishing")?
                .await
                .context("waiting for the publisher confirm")?;
            match confirm {
                Confirmation::Ack(None) => Ok(()),
                Confirmation::Ack(Some(_)) => bail!("the message was returned unroutable"),
                Confirmation::Nack(_) => bail!("the broker refused the message (nack)"),
                Confirmation::NotRequested => bail!("publisher confirms are not on"),
            }
        }
    })
    .await?;
    let mut o = args.common.outcome("rabbitmq", "send");
    fill_latency(&mut o, &run.hist, run.count, args.common.seconds);
    fill_server(&mut o, server, probe).await?;
    o.note = NOTE.into();
    o.print();
    eprintln!("rabbit-load: {} messages confirmed in all", run.total);
    Ok(run.total)
}

async fn consume(
    args: &Args,
    channels: &[Channel],
    server: Option<ServerProc>,
    total: u64,
) -> Result<()> {
    let k = channels.len() as u32;
    let prefetch = u16::try_from(args.common.in_flight.div_ceil(k)).unwrap_or(u16::MAX);
    let cap = std::time::Duration::from_secs_f64(args.common.seconds);
    let cpu_before = server.map(|s| s.cpu_time()).transpose()?;
    let start = Instant::now();
    let deadline = start + cap;
    let drain = Drain::new(total);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, ch) in channels.iter().enumerate() {
        ch.basic_qos(prefetch, BasicQosOptions::default())
            .await
            .context("setting the prefetch")?;
        let mut consumer = ch
            .basic_consume(
                args.queue.as_str().into(),
                format!("rabbit-load-{i}").as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .context("starting a consumer")?;
        let drain = drain.clone();
        tasks.spawn(async move {
            let mut hist = new_histogram();
            let (mut count, mut last) = (0u64, None);
            loop {
                let delivery = tokio::select! {
                    next = consumer.next() => next,
                    () = drain.all_done() => break,
                    () = tokio::time::sleep_until(deadline) => break,
                };
                let delivery = delivery
                    .ok_or_else(|| anyhow!("the consumer was cancelled"))?
                    .context("receiving")?;
                let got = Instant::now();
                delivery
                    .ack(BasicAckOptions::default())
                    .await
                    .context("acknowledging")?;
                let done = Instant::now();
                record(&mut hist, done - got);
                count += 1;
                last = Some(done);
                drain.one_done();
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
    let elapsed = (last - start).as_secs_f64();
    let mut o = args.common.outcome("rabbitmq", "consume");
    fill_latency(&mut o, &hist, count, elapsed);
    fill_server_since(&mut o, server, cpu_before)?;
    o.note = NOTE.into();
    o.print();
    eprintln!("rabbit-load: consumed and acked {count} of {total}");
    // Leave the queue empty (and its disk space free) for the next round.
    channels[0]
        .queue_purge(args.queue.as_str().into(), QueuePurgeOptions::default())
        .await
        .context("purging the queue")?;
    Ok(())
}
