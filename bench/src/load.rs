//! The load loop every client shares: closed loop (C in flight) or open loop (a rate), a warm-up,
//! then a measured window; the server's CPU and peak memory sampled at the window's edges.

use std::{
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use tokio::time::Instant;

use crate::{
    Outcome,
    hist::Latency,
    procstat::{ProcStat, ServerUsage},
};

/// The flags every load binary takes (see bench/README.md).
#[derive(clap::Args, Clone, Debug)]
pub struct Common {
    /// Length of the measured window, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Warm-up before the window, in seconds (not measured).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Requests in flight (closed loop).
    #[arg(long, default_value_t = 64)]
    pub in_flight: u32,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 4096)]
    pub size: u32,
    /// Interleaved round number, copied into the outcome.
    #[arg(long, default_value_t = 1)]
    pub round: u32,
    /// Open loop at this many messages per second; 0 = closed loop.
    #[arg(long, default_value_t = 0)]
    pub rate: u32,
    /// Connections to the server.
    #[arg(long, default_value_t = 4)]
    pub connections: u32,
}

impl Common {
    /// Checks the values make a measurement.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.seconds.is_finite() && self.seconds > 0.0,
            "--seconds must be > 0"
        );
        anyhow::ensure!(
            self.warmup.is_finite() && self.warmup >= 0.0,
            "--warmup must be >= 0"
        );
        anyhow::ensure!(self.in_flight > 0, "--in-flight must be > 0");
        anyhow::ensure!(self.connections > 0, "--connections must be > 0");
        Ok(())
    }

    /// The measured window, starting `warmup` after `origin`.
    pub fn window(&self, origin: Instant) -> Window {
        let start = origin + Duration::from_secs_f64(self.warmup);
        Window {
            start,
            end: start + Duration::from_secs_f64(self.seconds),
        }
    }

    /// A random payload of `--size` bytes (the relay sees ciphertext only).
    pub fn payload(&self) -> Vec<u8> {
        let mut p = vec![0u8; self.size as usize];
        getrandom::fill(&mut p).expect("random bytes");
        p
    }

    /// An outcome of this configuration with `measured`'s figures.
    pub fn outcome(&self, system: &str, mode: &str, measured: &Measured) -> Outcome {
        let p = measured.latency.percentiles();
        let count = measured.count;
        Outcome {
            system: system.into(),
            mode: mode.into(),
            round: self.round,
            in_flight: if self.rate == 0 { self.in_flight } else { 0 },
            rate: self.rate,
            size: self.size,
            count,
            seconds: measured.seconds,
            throughput: if measured.seconds > 0.0 {
                count as f64 / measured.seconds
            } else {
                0.0
            },
            p50_ms: p.p50_ms,
            p99_ms: p.p99_ms,
            p999_ms: p.p999_ms,
            max_ms: p.max_ms,
            deliver_p50_ms: None,
            deliver_p99_ms: None,
            server_cpu_us_per_msg: measured
                .server
                .filter(|_| count > 0)
                .map(|s| s.cpu_us as f64 / count as f64),
            server_peak_rss_kib: measured.server.map(|s| s.peak_rss_kib),
            note: String::new(),
        }
    }
}

/// The measured window.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Start (end of the warm-up).
    pub start: Instant,
    /// End.
    pub end: Instant,
}

impl Window {
    /// Whether an operation completing at `t` counts.
    pub fn contains(&self, t: Instant) -> bool {
        t >= self.start && t < self.end
    }

    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        (self.end - self.start).as_secs_f64()
    }
}

/// The figures of one measured window.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    /// Latency of each operation completed in the window.
    pub latency: Latency,
    /// Operations completed in the window.
    pub count: u64,
    /// Length of the window.
    pub seconds: f64,
    /// What the server process used in the window, if one was watched.
    pub server: Option<ServerUsage>,
}

/// Samples `server` at the window's start and end (runs alongside the load).
pub async fn watch_server(
    server: Option<u32>,
    window: Window,
) -> anyhow::Result<Option<ServerUsage>> {
    let Some(pid) = server else {
        return Ok(None);
    };
    let mut stat = ProcStat::new(pid);
    tokio::time::sleep_until(window.start).await;
    stat.start()
        .context("reading the server's /proc at the window's start")?;
    tokio::time::sleep_until(window.end).await;
    Ok(Some(stat.finish().context(
        "reading the server's /proc at the window's end",
    )?))
}

/// Runs `op(seq)` under load as `common` says and measures its latency in the window. Closed
/// loop: `in_flight` workers each start the next operation when the last one answered. Open
/// loop: operations start at `rate` per second on schedule, and latency counts from the
/// scheduled start (so a stalled server is not hidden by the client waiting for it). Any
/// failed operation ends the run with that error.
pub async fn drive<F, Fut>(common: &Common, server: Option<u32>, op: F) -> anyhow::Result<Measured>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    common.validate()?;
    let op = Arc::new(op);
    let origin = Instant::now();
    let window = common.window(origin);
    let watcher = tokio::spawn(watch_server(server, window));
    let latency = if common.rate == 0 {
        closed_loop(common.in_flight, window, op).await?
    } else {
        open_loop(common.rate, window, op).await?
    };
    let server = watcher.await??;
    Ok(Measured {
        count: latency.len(),
        latency,
        seconds: window.seconds(),
        server,
    })
}

async fn closed_loop<F, Fut>(in_flight: u32, window: Window, op: Arc<F>) -> anyhow::Result<Latency>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let seq = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (op, seq) = (op.clone(), seq.clone());
        workers.spawn(async move {
            let mut h = Latency::new();
            while Instant::now() < window.end {
                let t = Instant::now();
                op(seq.fetch_add(1, Ordering::Relaxed)).await?;
                let done = Instant::now();
                if window.contains(done) {
                    h.record(done - t);
                }
            }
            anyhow::Ok(h)
        });
    }
    let mut all = Latency::new();
    while let Some(r) = workers.join_next().await {
        all.merge(&r??);
    }
    Ok(all)
}

/// At most this many operations outstanding in open loop (beyond it the schedule slips, and
/// the slip shows as latency).
const OPEN_LOOP_MAX_OUTSTANDING: usize = 100_000;

async fn open_loop<F, Fut>(rate: u32, window: Window, op: Arc<F>) -> anyhow::Result<Latency>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let origin = Instant::now();
    let all = Arc::new(Mutex::new(Latency::new()));
    let permits = Arc::new(tokio::sync::Semaphore::new(OPEN_LOOP_MAX_OUTSTANDING));
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0u64.. {
        let Some(scheduled) = u32::try_from(k).ok().map(|k| origin + period * k) else {
            break;
        };
        if scheduled >= window.end {
            break;
        }
        tokio::time::sleep_until(scheduled).await;
        let permit = permits.clone().acquire_owned().await?;
        let (op, all) = (op.clone(), all.clone());
        tasks.spawn(async move {
            let _permit = permit;
            op(k).await?;
            let done = Instant::now();
            if window.contains(done) {
                all.lock().expect("latency lock").record(done - scheduled);
            }
            anyhow::Ok(())
        });
        // Reap what finished, so errors surface early and the set stays small.
        while let Some(r) = tasks.try_join_next() {
            r??;
        }
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let h = all.lock().expect("latency lock").clone();
    Ok(h)
}

/// A server process this client started; killed when dropped.
pub struct ServerProcess {
    /// The child.
    pub child: tokio::process::Child,
    /// Where it listens.
    pub addr: std::net::SocketAddr,
}

impl ServerProcess {
    /// Starts `cmd` and waits (30 s at most) for its first stdout line `<prefix><address>`.
    pub async fn spawn(mut cmd: tokio::process::Command, prefix: &str) -> anyhow::Result<Self> {
        use tokio::io::AsyncBufReadExt as _;
        let program = format!("{:?}", cmd.as_std().get_program());
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {program}"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .with_context(|| format!("{program} did not start within 30 s"))??
            .with_context(|| format!("{program} exited before listening"))?;
        let addr = line
            .strip_prefix(prefix)
            .with_context(|| format!("{program}: unexpected first line {line:?}"))?
            .trim()
            .parse()
            .with_context(|| format!("{program}: bad address in {line:?}"))?;
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(ServerProcess { child, addr })
    }

    /// Its process id.
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().context("the server process has exited")
    }

    /// SIGTERM, then waits (10 s, then SIGKILL).
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
                .await
                .is_err()
            {
                let _ = self.child.kill().await;
            }
        }
    }
}

/// A binary next to the running one (`target/release/<name>` when run from there).
pub fn sibling_binary(name: &str) -> std::path::PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| name.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(in_flight: u32, rate: u32) -> Common {
        Common {
            seconds: 0.3,
            warmup: 0.1,
            in_flight,
            size: 16,
            round: 1,
            rate,
            connections: 1,
        }
    }

    #[tokio::test]
    async fn closed_loop_counts_only_the_window() {
        // 4 workers, each op 10 ms: ~4 * 300 / 10 = 120 in the window (not the warm-up's 40).
        let m = drive(&quick(4, 0), None, |_| async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(())
        })
        .await
        .unwrap();
        // Lower bound lenient: other builds share the cores.
        assert!((40..=125).contains(&m.count), "{}", m.count);
        assert!(m.latency.percentiles().p50_ms >= 10.0);
        assert!((m.seconds - 0.3).abs() < 1e-9);
    }

    #[tokio::test]
    async fn open_loop_keeps_the_rate() {
        // 200/s over a 0.3 s window: ~60.
        let m = drive(&quick(1, 200), None, |_| async { Ok(()) })
            .await
            .unwrap();
        assert!((40..=62).contains(&m.count), "{}", m.count);
    }

    #[tokio::test]
    async fn a_failed_operation_fails_the_run() {
        let r = drive(&quick(2, 0), None, |seq| async move {
            anyhow::ensure!(seq < 5, "refused");
            Ok(())
        })
        .await;
        assert_eq!(r.unwrap_err().to_string(), "refused");
    }
}
