//! `rabbit-load`: RabbitMQ's side of the comparison (issue 14). Publishes persistent messages to
//! a durable quorum queue with publisher confirms, C in flight over K connections (mode "send":
//! latency publish → confirm), then consumes what it published with manual acks, prefetch C
//! over the channels, each delivery acked as it arrives, the acks pipelined (mode "consume"). Prints one Outcome JSON line per mode on stdout; progress goes to stderr.
//!
//! TLS: lapin with rustls on aws-lc-rs (the workspace's one provider), the CA of `--ca` as the
//! only trust anchor, and the client certificate of `--cert`/`--key`. The user and password, if
//! any, are in the URL (bench/brokers.sh prints it); they travel inside TLS only (amqps).

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties,
    message::Delivery,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions, QueueDeclareOptions, QueuePurgeOptions,
    },
    tcp::{OwnedIdentity, OwnedTLSConfig},
    types::{AMQPValue, FieldTable},
};
use silta_bench::{
    brokers::{BrokerArgs, ConsumeRun},
    load::{Common, drive},
};

#[derive(Parser)]
#[command(about = "RabbitMQ load: quorum queue, publisher confirms, then consume + ack")]
struct Args {
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(flatten)]
    common: Common,
    /// The quorum queue to use (declared if missing, purged before the run).
    #[arg(long, default_value = "silta-bench")]
    queue: String,
}

const NOTE: &str = "RabbitMQ quorum queue (durable, single node; Raft log fsynced before the \
confirm), persistent messages (delivery_mode 2), publisher confirms; send latency = publish -> \
confirm. consume: basic.consume with manual ack, prefetch = in-flight spread over the channels; \
each delivery acked as it arrives (multiple = false), acks pipelined (none waits for another); \
basic.ack has no reply in AMQP 0.9.1, so an ack is done when written to the socket (the broker \
confirms nothing; it removes the message when the ack arrives); consume latency = delivery \
received -> ack written; the window is the whole drain (first delivery to \
last ack, capped at --seconds)";

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    args.common.validate()?;
    let server = args.broker.server()?;
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

async fn send(args: &Args, channels: &[Channel], server: Option<u32>) -> Result<u64> {
    for ch in channels {
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .context("enabling publisher confirms")?;
    }
    let payload: Arc<[u8]> = vec![0x5a; args.common.size as usize].into();
    let queue: Arc<str> = args.queue.as_str().into();
    let chans: Arc<[Channel]> = channels.to_vec().into();
    // Every confirmed message, warm-up and tail included: what the consume run will drain.
    let confirmed = Arc::new(AtomicU64::new(0));
    let total = confirmed.clone();
    eprintln!(
        "rabbit-load: send, {} in flight over {} connections, {} s + {} s warm-up",
        args.common.in_flight, args.common.connections, args.common.seconds, args.common.warmup
    );
    let measured = drive(&args.common, server, move |seq| {
        let ch = chans[(seq % chans.len() as u64) as usize].clone();
        let payload = payload.clone();
        let queue = queue.clone();
        let confirmed = confirmed.clone();
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
                Confirmation::Ack(None) => {
                    confirmed.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }
                Confirmation::Ack(Some(_)) => bail!("the message was returned unroutable"),
                Confirmation::Nack(_) => bail!("the broker refused the message (nack)"),
                Confirmation::NotRequested => bail!("publisher confirms are not on"),
            }
        }
    })
    .await?;
    let mut o = args.common.outcome("rabbitmq", "send", &measured);
    o.note = NOTE.into();
    o.print();
    let total = total.load(Ordering::Relaxed);
    eprintln!("rabbit-load: {total} messages confirmed in all");
    Ok(total)
}

async fn consume(args: &Args, channels: &[Channel], server: Option<u32>, total: u64) -> Result<()> {
    let k = channels.len() as u32;
    // The in-flight messages spread over the channels: at most C delivered and not yet acked.
    let prefetch = u16::try_from(args.common.in_flight.div_ceil(k)).unwrap_or(u16::MAX);
    let mut run = ConsumeRun::begin(&args.common, server, total)?;
    for (i, ch) in channels.iter().enumerate() {
        ch.basic_qos(prefetch, BasicQosOptions::default())
            .await
            .context("setting the prefetch")?;
        let consumer = ch
            .basic_consume(
                args.queue.as_str().into(),
                format!("rabbit-load-{i}").as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .context("starting a consumer")?;
        // Each delivery is acked as it arrives (multiple = false), the acks pipelined: none
        // waits for another; the prefetch bounds how many are outstanding.
        run.consumer(
            consumer,
            usize::from(prefetch),
            |delivery: Delivery| async move {
                let fresh = delivery
                    .ack(BasicAckOptions::default())
                    .await
                    .context("acknowledging")?;
                anyhow::ensure!(
                    fresh,
                    "a delivery was acknowledged twice or its channel failed"
                );
                Ok(())
            },
        );
    }
    let mut o = run.finish(&args.common, "rabbitmq").await?;
    o.note = NOTE.into();
    o.print();
    eprintln!("rabbit-load: consumed and acked {} of {total}", o.count);
    // Leave the queue empty (and its disk space free) for the next round.
    channels[0]
        .queue_purge(args.queue.as_str().into(), QueuePurgeOptions::default())
        .await
        .context("purging the queue")?;
    Ok(())
}
