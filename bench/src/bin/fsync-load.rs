//! `fsync-load`: the disk's durable ceiling. Appends `--size` bytes and fdatasyncs, one message
//! at a time (mode "send"), then the same with one fdatasync per batch of `--in-flight`
//! messages (mode "batch"). System "fsync"; no server, so no server CPU.

use std::{
    io::Write as _,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clap::Parser;
use silta_bench::{
    hist::Latency,
    load::{Common, Measured},
};

#[derive(Parser, Debug)]
#[command(about = "raw write + fdatasync ceiling of the disk")]
struct Args {
    #[command(flatten)]
    common: Common,
    /// Folder for the file (default: the system's temporary folder; choose the disk under test).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Skip the batched measurement.
    #[arg(long)]
    no_batch: bool,
}

/// Writes batches of `batch` messages, one fdatasync each, for warm-up + window; every message
/// of a batch gets the batch's latency.
fn run(
    file: &mut std::fs::File,
    common: &Common,
    batch: u32,
    payload: &[u8],
) -> anyhow::Result<Measured> {
    let origin = Instant::now();
    let start = origin + Duration::from_secs_f64(common.warmup);
    let end = start + Duration::from_secs_f64(common.seconds);
    let mut latency = Latency::new();
    while Instant::now() < end {
        let t = Instant::now();
        for _ in 0..batch {
            file.write_all(payload)?;
        }
        file.sync_data()?;
        let done = Instant::now();
        if done >= start && done < end {
            for _ in 0..batch {
                latency.record(done - t);
            }
        }
    }
    Ok(Measured {
        count: latency.len(),
        latency,
        seconds: common.seconds,
        server: None,
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.common.validate()?;
    let dir = match &args.data_dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .context("cannot create the data folder")?;
    let path = dir.path().join("fsync.log");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let payload = args.common.payload();
    let mut per_message = args.common.clone();
    per_message.in_flight = 1;
    let m = run(&mut file, &args.common, 1, &payload)?;
    let mut o = per_message.outcome("fsync", "send", &m);
    o.note = "append + fdatasync per message, one writer".into();
    o.print();
    if !args.no_batch {
        let m = run(&mut file, &args.common, args.common.in_flight, &payload)?;
        let mut o = args.common.outcome("fsync", "batch", &m);
        o.note = format!(
            "append {} messages + one fdatasync, one writer",
            args.common.in_flight
        );
        o.print();
    }
    Ok(())
}
