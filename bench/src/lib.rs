//! Shared parts of Silta's benchmarks: the result line every load client prints, latency
//! histograms, and a server process's CPU time and peak memory read from `/proc`.
//!
//! Every load client (`silta-load`, `echo-load`, `fsync-load`, `rabbit-load`, `nats-load`)
//! prints exactly one JSON line on stdout, an [`Outcome`]; `bench/compare.sh` collects them and
//! `bench-report` turns them into the tables and the plot of docs/PERFORMANCE.md.

use serde::{Deserialize, Serialize};

pub mod echo;
pub mod hist;
pub mod load;
pub mod procstat;
pub mod report;

/// One measured run of one system, as one JSON line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outcome {
    /// "silta", "silta-nosync", "echo", "echo-fsync", "fsync", "rabbitmq", "nats".
    pub system: String,
    /// "send" (publish until durable), "consume" (consume + acknowledge), "cycle".
    pub mode: String,
    /// Which interleaved round this was (1-based).
    pub round: u32,
    /// Messages in flight (closed loop), or 0 for open loop.
    pub in_flight: u32,
    /// Open-loop target rate in messages per second, or 0 for closed loop.
    pub rate: u32,
    /// Payload bytes per message.
    pub size: u32,
    /// Messages completed in the measured window.
    pub count: u64,
    /// Length of the measured window in seconds.
    pub seconds: f64,
    /// count / seconds.
    pub throughput: f64,
    /// Latency percentiles in milliseconds (send → durable receipt / confirm).
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Send → the recipient holds it (Silta and brokers: the consumer got it), if measured.
    #[serde(default)]
    pub deliver_p50_ms: Option<f64>,
    #[serde(default)]
    pub deliver_p99_ms: Option<f64>,
    /// Server CPU time (user + system) over the window divided by count, in microseconds.
    #[serde(default)]
    pub server_cpu_us_per_msg: Option<f64>,
    /// Server peak resident set (VmHWM) in KiB.
    #[serde(default)]
    pub server_peak_rss_kib: Option<u64>,
    /// Free-form notes (configuration).
    #[serde(default)]
    pub note: String,
}

impl Outcome {
    /// Prints the outcome as one JSON line on stdout.
    pub fn print(&self) {
        println!(
            "{}",
            serde_json::to_string(self).expect("an outcome serialises")
        );
    }
}

/// What the brokers' load clients (rabbit-load, nats-load) add to the harness: the broker
/// connection flags and the consume run's pipelined acks.
pub mod brokers;
