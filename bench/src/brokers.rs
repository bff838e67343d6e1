//! What `rabbit-load` and `nats-load` share: the broker connection flags, the common load flags,
//! a closed-loop (or open-loop) driver that records latencies in an HDR histogram, and the
//! server's CPU time and peak RSS read from `/proc`.
//!
//! Part A of issue 14 writes the general versions of these helpers for every load client; this
//! module is the brokers' own until they are unified.

use std::{
    future::Future,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow};
use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::Outcome;

/// Flags every load client takes (bench/README.md, contract of issue 14).
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// The measured window in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Seconds of load before the window (not measured).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Messages in flight (closed loop), or the number of workers in open loop.
    #[arg(long = "in-flight", default_value_t = 64)]
    pub in_flight: u32,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 4096)]
    pub size: u32,
    /// Which interleaved round this is (1-based; recorded in the outcome).
    #[arg(long, default_value_t = 1)]
    pub round: u32,
    /// Open loop at this many messages per second; 0 = closed loop.
    #[arg(long, default_value_t = 0)]
    pub rate: u32,
    /// Connections to the server (the in-flight messages are spread over them).
    #[arg(long, default_value_t = 4)]
    pub connections: u32,
}

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

impl CommonArgs {
    /// Checks the flags; every bad value is a clear error.
    pub fn check(&self) -> Result<()> {
        if !(self.seconds.is_finite() && self.seconds > 0.0) {
            return Err(anyhow!("--seconds must be a positive number"));
        }
        if !(self.warmup.is_finite() && self.warmup >= 0.0) {
            return Err(anyhow!("--warmup must be zero or more"));
        }
        if self.in_flight == 0 {
            return Err(anyhow!("--in-flight must be at least 1"));
        }
        if self.connections == 0 {
            return Err(anyhow!("--connections must be at least 1"));
        }
        Ok(())
    }

    /// An outcome with the run's configuration filled in.
    pub fn outcome(&self, system: &str, mode: &str) -> Outcome {
        Outcome {
            system: system.into(),
            mode: mode.into(),
            round: self.round,
            in_flight: if self.rate == 0 { self.in_flight } else { 0 },
            rate: self.rate,
            size: self.size,
            ..Outcome::default()
        }
    }
}

/// A latency histogram in microseconds, 1 µs to 10 min, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Records `d` (clamped into the histogram's range).
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    h.saturating_record(us.max(1));
}

/// Fills count, seconds, throughput and the latency percentiles (ms) of `o`.
pub fn fill_latency(o: &mut Outcome, h: &Histogram<u64>, count: u64, seconds: f64) {
    let ms = |us: u64| us as f64 / 1000.0;
    o.count = count;
    o.seconds = seconds;
    o.throughput = if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    };
    if !h.is_empty() {
        o.p50_ms = ms(h.value_at_quantile(0.50));
        o.p99_ms = ms(h.value_at_quantile(0.99));
        o.p999_ms = ms(h.value_at_quantile(0.999));
        o.max_ms = ms(h.max());
    }
}

/// A server process watched through `/proc`.
#[derive(Debug, Clone, Copy)]
pub struct ServerProc {
    pid: u32,
}

impl ServerProc {
    pub fn new(pid: u32) -> Result<Self> {
        let p = ServerProc { pid };
        p.cpu_time().with_context(|| format!("server pid {pid}"))?;
        Ok(p)
    }

    /// User + system CPU time of the whole process (every thread, live or finished), from
    /// `/proc/PID/stat` (utime and stime, in clock ticks).
    pub fn cpu_time(&self) -> Result<Duration> {
        let path = format!("/proc/{}/stat", self.pid);
        let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        parse_cpu_ticks(&stat)
            .map(|ticks| {
                let hz = rustix::param::clock_ticks_per_second().max(1);
                Duration::from_micros(ticks.saturating_mul(1_000_000) / hz)
            })
            .ok_or_else(|| anyhow!("{path}: unexpected format"))
    }

    /// Peak resident set size (VmHWM) in KiB, from `/proc/PID/status`.
    pub fn peak_rss_kib(&self) -> Result<u64> {
        let path = format!("/proc/{}/status", self.pid);
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        parse_vm_hwm(&status).ok_or_else(|| anyhow!("{path}: no VmHWM"))
    }
}

/// utime + stime (clock ticks) from the text of `/proc/PID/stat`. The command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last ')'.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: field 3 (state) is fields[0]; utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The measured window: load runs from `start`, is measured from `measure_from` to `until`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub measure_from: Instant,
    pub until: Instant,
}

impl Window {
    pub fn starting_now(common: &CommonArgs) -> Self {
        let start = Instant::now();
        let measure_from = start + Duration::from_secs_f64(common.warmup);
        Window {
            start,
            measure_from,
            until: measure_from + Duration::from_secs_f64(common.seconds),
        }
    }

    pub fn contains(&self, t: Instant) -> bool {
        t >= self.measure_from && t <= self.until
    }
}

/// CPU time of the server over the window, sampled at its start and end.
pub struct CpuProbe {
    handle: tokio::task::JoinHandle<Result<Duration>>,
}

impl CpuProbe {
    /// Samples the server's CPU time at `from` and again at `until`.
    pub fn spawn(server: ServerProc, from: Instant, until: Instant) -> Self {
        let handle = tokio::spawn(async move {
            tokio::time::sleep_until(from).await;
            let a = server.cpu_time()?;
            tokio::time::sleep_until(until).await;
            let b = server.cpu_time()?;
            Ok(b.saturating_sub(a))
        });
        CpuProbe { handle }
    }

    pub async fn finish(self) -> Result<Duration> {
        self.handle.await.context("cpu probe")?
    }
}

/// Fills the server's CPU per message and its peak RSS, if a server was given.
pub async fn fill_server(
    o: &mut Outcome,
    server: Option<ServerProc>,
    probe: Option<CpuProbe>,
) -> Result<()> {
    if let (Some(server), Some(probe)) = (server, probe) {
        let cpu = probe.finish().await?;
        if o.count > 0 {
            o.server_cpu_us_per_msg = Some(cpu.as_secs_f64() * 1e6 / o.count as f64);
        }
        o.server_peak_rss_kib = Some(server.peak_rss_kib()?);
    }
    Ok(())
}

/// What a send run measured.
pub struct SendRun {
    pub hist: Histogram<u64>,
    /// Operations completed in the window.
    pub count: u64,
    /// Operations completed in all (warm-up and tail included): what is now stored.
    pub total: u64,
}

/// Runs `op(worker)` in `common.in_flight` workers until the window ends: closed loop (each
/// worker starts its next operation when the last one completed) or, with `--rate`, open loop
/// (operation k is due at start + k/rate, and its latency counts from when it was due, so a
/// late start is not hidden). Latencies of operations completing in the window are recorded.
pub async fn drive<F, Fut>(common: &CommonArgs, window: Window, op: F) -> Result<SendRun>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let next_slot = Arc::new(AtomicU64::new(0));
    let rate = common.rate;
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..common.in_flight as usize {
        let op = op.clone();
        let next_slot = next_slot.clone();
        tasks.spawn(async move {
            let mut hist = new_histogram();
            let (mut count, mut total) = (0u64, 0u64);
            loop {
                let due = if rate == 0 {
                    Instant::now()
                } else {
                    let k = next_slot.fetch_add(1, Ordering::Relaxed);
                    window.start + Duration::from_secs_f64(k as f64 / f64::from(rate))
                };
                if due >= window.until {
                    break;
                }
                tokio::time::sleep_until(due).await;
                op(worker).await?;
                total += 1;
                let done = Instant::now();
                if window.contains(done) {
                    record(&mut hist, done - due);
                    count += 1;
                }
            }
            Ok::<_, anyhow::Error>((hist, count, total))
        });
    }
    let mut run = SendRun {
        hist: new_histogram(),
        count: 0,
        total: 0,
    };
    while let Some(r) = tasks.join_next().await {
        let (hist, count, total) = r.context("load worker")??;
        run.hist.add(hist).map_err(|e| anyhow!("histogram: {e}"))?;
        run.count += count;
        run.total += total;
    }
    Ok(run)
}

/// Counts down the messages a consume run expects, and tells every consumer when all are in.
#[derive(Clone)]
pub struct Drain {
    remaining: Arc<std::sync::atomic::AtomicI64>,
    done: tokio::sync::watch::Sender<bool>,
}

impl Drain {
    pub fn new(expected: u64) -> Self {
        let (done, _) = tokio::sync::watch::channel(expected == 0);
        Drain {
            remaining: Arc::new(std::sync::atomic::AtomicI64::new(
                i64::try_from(expected).unwrap_or(i64::MAX),
            )),
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

/// Fills the server's CPU per message over a consume run (CPU time sampled before it) and its
/// peak RSS.
pub fn fill_server_since(
    o: &mut Outcome,
    server: Option<ServerProc>,
    cpu_before: Option<Duration>,
) -> Result<()> {
    if let (Some(s), Some(before)) = (server, cpu_before) {
        let cpu = s.cpu_time()?.saturating_sub(before);
        if o.count > 0 {
            o.server_cpu_us_per_msg = Some(cpu.as_secs_f64() * 1e6 / o.count as f64);
        }
        o.server_peak_rss_kib = Some(s.peak_rss_kib()?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_utime_plus_stime_even_with_odd_names() {
        let stat =
            "1234 (beam.smp) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 30 0 5 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn vm_hwm_in_kib() {
        let status =
            "Name:\tnats-server\nVmPeak:\t 900 kB\nVmHWM:\t   51234 kB\nVmRSS:\t 40000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(51234));
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let me = ServerProc::new(std::process::id()).unwrap();
        assert!(me.peak_rss_kib().unwrap() > 0);
        me.cpu_time().unwrap();
    }
}
