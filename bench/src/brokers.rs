//! What `rabbit-load` and `nats-load` share beyond the harness (the common flags, the load
//! driver, the histograms and the `/proc` readings are [`crate::load`], [`crate::hist`] and
//! [`crate::procstat`], as for every load client): the broker connection flags, the countdown
//! that ends a consume run when every message is in, and the tally of a consume run.

use std::{
    future::Future,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, anyhow};
use futures_util::{Stream, StreamExt as _};
use tokio::time::Instant;

use crate::{
    Outcome,
    hist::Latency,
    load::{Common, Measured},
    procstat::{self, ProcStat},
};

/// How to reach a broker (printed by `bench/brokers.sh start`).
#[derive(Debug, Clone, clap::Args)]
pub struct BrokerArgs {
    /// The broker's URL (amqps://… or tls://…).
    #[arg(long)]
    pub url: String,
    /// The CA certificate (PEM) the server certificate is checked against.
    #[arg(long)]
    pub ca: PathBuf,
    /// The client certificate (PEM).
    #[arg(long)]
    pub cert: PathBuf,
    /// The client's private key (PEM, PKCS#8).
    #[arg(long)]
    pub key: PathBuf,
    /// The server's process id, for its CPU time and peak RSS (all threads).
    #[arg(long = "server-pid")]
    pub server_pid: Option<u32>,
}

impl BrokerArgs {
    /// The server's pid, checked readable in `/proc` now (a wrong pid is an error at once,
    /// not after the run).
    pub fn server(&self) -> anyhow::Result<Option<u32>> {
        if let Some(pid) = self.server_pid {
            procstat::sample(pid).with_context(|| format!("server pid {pid}"))?;
        }
        Ok(self.server_pid)
    }
}

/// Counts down the messages a consume run expects, and tells every consumer when all are in.
#[derive(Clone)]
pub struct Drain {
    remaining: Arc<AtomicI64>,
    done: tokio::sync::watch::Sender<bool>,
}

impl Drain {
    /// Expects `expected` messages.
    pub fn new(expected: u64) -> Self {
        let (done, _) = tokio::sync::watch::channel(expected == 0);
        Drain {
            remaining: Arc::new(AtomicI64::new(i64::try_from(expected).unwrap_or(i64::MAX))),
            done,
        }
    }

    /// One more message consumed and acknowledged.
    pub fn one_done(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.send_replace(true);
        }
    }

    /// Resolves once every expected message is done.
    pub async fn all_done(&self) {
        let mut rx = self.done.subscribe();
        let _ = rx.wait_for(|d| *d).await;
    }
}

/// The acknowledgements of one consumer: their latencies (message received → ack done) and
/// when the last one completed. Acks completing after `deadline` are not counted.
#[derive(Clone, Debug)]
pub struct Acked {
    deadline: Instant,
    /// Latency of each counted ack.
    pub latency: Latency,
    /// When the last counted ack completed.
    pub last: Option<Instant>,
}

impl Acked {
    /// Counts acks completing by `deadline`.
    pub fn until(deadline: Instant) -> Self {
        Acked {
            deadline,
            latency: Latency::new(),
            last: None,
        }
    }

    /// One ack, done at `done`, `latency` after its message was received.
    pub fn tally(&mut self, done: Instant, latency: Duration) {
        if done <= self.deadline {
            self.latency.record(latency);
            self.last = Some(self.last.map_or(done, |l| l.max(done)));
        }
    }

    /// Adds another consumer's acks.
    pub fn merge(&mut self, other: &Acked) {
        self.latency.merge(&other.latency);
        self.last = match (self.last, other.last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// The figures of a consume run that began at `start`: its window is the whole drain
    /// (`start` to the last ack), and the server's usage over it.
    pub fn measured(&self, start: Instant, server: Option<ProcStat>) -> anyhow::Result<Measured> {
        let server = server
            .map(|s| s.finish())
            .transpose()
            .context("reading the server's /proc at the end of the drain")?;
        Ok(Measured {
            latency: self.latency.clone(),
            count: self.latency.len(),
            seconds: (self.last.unwrap_or(start) - start).as_secs_f64(),
            server,
        })
    }
}

/// One consumer of a consume run: acknowledges each message of `messages` as it arrives, with
/// at most `max_outstanding` acks not yet done (none waits for another), until `drain` says
/// every expected message is done or `deadline` passes. `ack` is what acknowledging means for
/// the broker (its future resolves when the ack is done). Any failed receive or ack fails the
/// run.
pub async fn ack_each<S, M, E, A, Fut>(
    mut messages: S,
    max_outstanding: usize,
    drain: Drain,
    deadline: Instant,
    ack: A,
) -> anyhow::Result<Acked>
where
    S: Stream<Item = Result<M, E>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
    A: Fn(M) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let max_outstanding = max_outstanding.max(1);
    let mut acks = tokio::task::JoinSet::new();
    let mut acked = Acked::until(deadline);
    loop {
        tokio::select! {
            // A failed ack ends the run as soon as it fails.
            Some(r) = acks.join_next(), if !acks.is_empty() => {
                let (done, latency) = r.context("ack task")??;
                acked.tally(done, latency);
            }
            next = messages.next(), if acks.len() < max_outstanding => {
                let message = next
                    .ok_or_else(|| anyhow!("the consumer's message stream ended"))?
                    .map_err(|e| anyhow::Error::new(e).context("receiving"))?;
                let got = Instant::now();
                let (done_one, acking) = (drain.clone(), ack(message));
                acks.spawn(async move {
                    acking.await?;
                    let done = Instant::now();
                    done_one.one_done();
                    anyhow::Ok((done, done - got))
                });
            }
            () = drain.all_done() => break,
            () = tokio::time::sleep_until(deadline) => break,
        }
    }
    while let Some(r) = acks.join_next().await {
        let (done, latency) = r.context("ack task")??;
        acked.tally(done, latency);
    }
    Ok(acked)
}

/// A consume run: C messages already stored, drained by one consumer per connection, each
/// acking with [`ack_each`]; its window runs from [`ConsumeRun::begin`] to the last ack (at most
/// `--seconds`).
pub struct ConsumeRun {
    start: Instant,
    deadline: Instant,
    drain: Drain,
    server: Option<ProcStat>,
    consumers: tokio::task::JoinSet<anyhow::Result<Acked>>,
}

impl ConsumeRun {
    /// Begins now: `expected` messages to drain, the server (if any) watched from now.
    pub fn begin(common: &Common, server: Option<u32>, expected: u64) -> anyhow::Result<Self> {
        let server = server
            .map(|pid| {
                let mut s = ProcStat::new(pid);
                s.start()
                    .context("reading the server's /proc at the start of the drain")?;
                anyhow::Ok(s)
            })
            .transpose()?;
        let start = Instant::now();
        Ok(ConsumeRun {
            start,
            deadline: start + Duration::from_secs_f64(common.seconds),
            drain: Drain::new(expected),
            server,
            consumers: tokio::task::JoinSet::new(),
        })
    }

    /// Starts one consumer: [`ack_each`] over `messages`.
    pub fn consumer<S, M, E, A, Fut>(&mut self, messages: S, max_outstanding: usize, ack: A)
    where
        S: Stream<Item = Result<M, E>> + Unpin + Send + 'static,
        M: Send + 'static,
        E: std::error::Error + Send + Sync + 'static,
        A: Fn(M) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.consumers.spawn(ack_each(
            messages,
            max_outstanding,
            self.drain.clone(),
            self.deadline,
            ack,
        ));
    }

    /// Waits for every consumer; the outcome of the run (`common`'s configuration, `system`,
    /// mode "consume").
    pub async fn finish(mut self, common: &Common, system: &str) -> anyhow::Result<Outcome> {
        let mut acked = Acked::until(self.deadline);
        while let Some(r) = self.consumers.join_next().await {
            acked.merge(&r.context("consumer task")??);
        }
        let measured = acked.measured(self.start, self.server)?;
        Ok(common.outcome(system, "consume", &measured))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_ends_when_every_message_is_done() {
        let d = Drain::new(2);
        d.one_done();
        assert!(
            tokio::time::timeout(Duration::from_millis(20), d.all_done())
                .await
                .is_err()
        );
        d.one_done();
        tokio::time::timeout(Duration::from_secs(5), d.all_done())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), Drain::new(0).all_done())
            .await
            .unwrap();
    }

    #[test]
    fn acks_after_the_deadline_do_not_count() {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(1);
        let mut a = Acked::until(deadline);
        a.tally(start + Duration::from_millis(500), Duration::from_millis(2));
        a.tally(
            deadline + Duration::from_millis(1),
            Duration::from_millis(2),
        );
        let mut b = Acked::until(deadline);
        b.tally(start + Duration::from_millis(800), Duration::from_millis(4));
        a.merge(&b);
        let m = a.measured(start, None).unwrap();
        assert_eq!(m.count, 2);
        assert!((m.seconds - 0.8).abs() < 1e-9, "{}", m.seconds);
        assert!(m.server.is_none());
        assert_eq!(
            Acked::until(deadline).measured(start, None).unwrap().count,
            0
        );
    }

    #[tokio::test]
    async fn ack_each_acks_every_message_with_a_bounded_number_outstanding() {
        let messages = futures_util::stream::iter((0..50u32).map(Ok::<_, std::io::Error>))
            .chain(futures_util::stream::pending());
        let outstanding = Arc::new(AtomicI64::new(0));
        let most = Arc::new(AtomicI64::new(0));
        let drain = Drain::new(50);
        let deadline = Instant::now() + Duration::from_secs(30);
        let acked = ack_each(Box::pin(messages), 4, drain, deadline, |_| {
            let (outstanding, most) = (outstanding.clone(), most.clone());
            async move {
                let now = outstanding.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                outstanding.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .await
        .unwrap();
        assert_eq!(acked.latency.len(), 50);
        // Pipelined, but never more than the limit.
        assert!((2..=4).contains(&most.load(Ordering::SeqCst)), "{most:?}");
    }

    #[tokio::test]
    async fn ack_each_fails_on_a_failed_ack_or_an_ended_stream() {
        let deadline = Instant::now() + Duration::from_secs(30);
        let ok = futures_util::stream::iter((0..3u32).map(Ok::<_, std::io::Error>));
        let e = ack_each(ok, 2, Drain::new(10), deadline, |_| async { Ok(()) })
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "the consumer's message stream ended");
        let ok = futures_util::stream::iter((0..3u32).map(Ok::<_, std::io::Error>))
            .chain(futures_util::stream::pending());
        let e = ack_each(Box::pin(ok), 2, Drain::new(3), deadline, |m| async move {
            anyhow::ensure!(m != 1, "refused");
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(e.to_string(), "refused");
    }
}
