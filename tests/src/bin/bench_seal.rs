//! Seal and open of Silta's end-to-end layer, next to the reference Go `age` CLI encrypting and
//! decrypting the same data, side by side in one run.
//!
//! `cargo run --release -p silta-tests --bin bench-seal [-- --size BYTES --reps N]`
//!
//! The data (default 10 MiB of text) is written to a file once. Each repetition, interleaved so
//! that load from other processes hits both alike:
//! - Silta seal: read the file, build the status update carrying it, and `seal` it (validate,
//!   sign, pad, encrypt with age to two X25519 recipients: recipient and sender, digest);
//! - `age -r R1 -r R2 -o ct plain` (the same recipient type and count), spawned;
//! - Silta open: `open` the delivered envelope (digest check, decrypt, decode, signature
//!   verification, envelope checks, payload rules);
//! - `age -d -i key -o back ct`, spawned (its process start-up is included, as is Silta's file
//!   read on the seal side).
//!
//! It prints median, min and max per operation and the ratio of the medians (Silta / age; below
//! 1 Silta is faster), in wall-clock time and in CPU time (user + system of every thread; for
//! age from the children's usage). On a busy machine the CPU figures are the steadier ones;
//! Silta's wall-clock time gains from a second core (it digests beside age). Without the `age`
//! CLI it measures Silta alone and says so.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use clap::Parser;
use nix::sys::resource::{UsageWho, getrusage};
use silta_client::{
    bundle::VerifiedBundle,
    keys::DeviceKeys,
    seal::{Draft, open, seal},
};
use silta_proto::pb::{
    self, MessageKind,
    payload::{ChangeKind, Payload, StatusUpdate, payload::Body},
};

#[derive(Parser)]
#[command(about = "Silta seal/open vs the age CLI encrypt/decrypt on the same data")]
struct Args {
    /// Bytes of message text.
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    size: usize,
    /// Repetitions of each operation (the figures are their median, min and max).
    #[arg(long, default_value_t = 9)]
    reps: usize,
}

fn main() {
    let args = Args::parse();
    assert!(args.reps > 0, "--reps must be at least 1");
    let sender: silta_certs::Principal = "centre/a".parse().unwrap();
    let recipient: silta_certs::Principal = "assistance/nas".parse().unwrap();
    let skeys = DeviceKeys::generate("s").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rkeys = DeviceKeys::init(&dir.path().join("keys"), "r").unwrap();
    let bundle = VerifiedBundle {
        principal: sender.clone(),
        device_id: "s".into(),
        age_recipient: skeys.age_recipient(),
        ed25519: *skeys.verifying_key().as_bytes(),
        fingerprint: skeys.fingerprint(),
        created_at: 0,
        opens_version: silta_client::seal::NEWEST_VERSION,
    };
    let to = [rkeys.age_recipient(), skeys.age_recipient()];
    let key_file = dir.path().join("keys").join(silta_client::keys::AGE_FILE);
    let age_version = Command::new("age")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());

    let plain = dir.path().join("plain");
    let text: String = (0..args.size)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    std::fs::write(&plain, &text).unwrap();
    drop(text);
    let ct = dir.path().join("ct.age");
    let back = dir.path().join("back");

    // Per operation (Silta seal, age encrypt, Silta open, age decrypt): wall-clock time and
    // CPU time (user + system, every thread; the age CLI's from the children's usage).
    let mut times: [Vec<Duration>; 4] = Default::default();
    let mut cpu: [Vec<Duration>; 4] = Default::default();
    for _ in 0..args.reps {
        // Silta seal, from the file.
        let start = Instant::now();
        let cpu_start = cpu_time(UsageWho::RUSAGE_SELF);
        let text = String::from_utf8(std::fs::read(&plain).unwrap()).unwrap();
        let payload = Payload {
            body: Some(Body::StatusUpdate(StatusUpdate {
                change: ChangeKind::AsylumStatus.into(),
                description: text,
                ..Default::default()
            })),
        };
        let d = Draft::new(
            MessageKind::StatusUpdate,
            [1; 16],
            vec![recipient.clone()],
            payload,
        );
        let env = seal(&d, &sender, &skeys, &to).unwrap();
        times[0].push(start.elapsed());
        cpu[0].push(cpu_time(UsageWho::RUSAGE_SELF) - cpu_start);
        drop(d);

        if age_version.is_some() {
            let start = Instant::now();
            let cpu_start = cpu_time(UsageWho::RUSAGE_CHILDREN);
            age(Command::new("age")
                .args(["-r", &to[0], "-r", &to[1], "-o"])
                .arg(&ct)
                .arg(&plain));
            times[1].push(start.elapsed());
            cpu[1].push(cpu_time(UsageWho::RUSAGE_CHILDREN) - cpu_start);
        }

        let delivered = pb::DeliveredEnvelope {
            envelope: Some(env),
            sender: sender.to_string(),
            accepted_at: None,
            log_index: 0,
            handled: None,
            sealed_before_device: false,
        };
        let start = Instant::now();
        let cpu_start = cpu_time(UsageWho::RUSAGE_SELF);
        let opened = open(&delivered, &recipient, &rkeys, |_, _| Some(bundle.clone())).unwrap();
        times[2].push(start.elapsed());
        cpu[2].push(cpu_time(UsageWho::RUSAGE_SELF) - cpu_start);
        match &opened.payload.body {
            Some(Body::StatusUpdate(s)) => assert_eq!(s.description.len(), args.size),
            _ => panic!("opened something else"),
        }
        drop((opened, delivered));

        if age_version.is_some() {
            let start = Instant::now();
            let cpu_start = cpu_time(UsageWho::RUSAGE_CHILDREN);
            age(Command::new("age")
                .args(["-d", "-i"])
                .arg(&key_file)
                .arg("-o")
                .arg(&back)
                .arg(&ct));
            times[3].push(start.elapsed());
            cpu[3].push(cpu_time(UsageWho::RUSAGE_CHILDREN) - cpu_start);
            assert_eq!(file_len(&back), args.size as u64);
        }
    }

    println!(
        "bench-seal: {} of text, {} repetitions, 2 X25519 recipients; {}",
        human(args.size),
        args.reps,
        age_version
            .as_deref()
            .map(|v| format!("age CLI {v}"))
            .unwrap_or_else(|| "age CLI not installed (apt-get install age)".into()),
    );
    table("wall-clock", &times, args.size);
    table("CPU time (user + system, all threads)", &cpu, args.size);
    println!(
        "ratio = Silta median / age CLI median (below 1: Silta is faster); MB/s = MiB per median second"
    );
}

/// One table: Silta seal, open and both next to age encrypt, decrypt and both.
fn table(what: &str, times: &[Vec<Duration>; 4], size: usize) {
    println!("{what}:");
    println!(
        "{:<14} {:>11} {:>9} {:>9} {:>9} | {:<12} {:>11} {:>9} {:>9} {:>9} | {:>6}",
        "silta",
        "median ms",
        "min",
        "max",
        "MB/s",
        "age CLI",
        "median ms",
        "min",
        "max",
        "MB/s",
        "ratio"
    );
    let mb = size as f64 / (1024.0 * 1024.0);
    let both = |a: usize, b: usize| -> Vec<Duration> {
        times[a]
            .iter()
            .zip(&times[b])
            .map(|(x, y)| *x + *y)
            .collect()
    };
    let rows = [
        ("seal", times[0].clone(), "encrypt", times[1].clone()),
        ("open", times[2].clone(), "decrypt", times[3].clone()),
        ("seal+open", both(0, 2), "enc+dec", both(1, 3)),
    ];
    for (sname, s, aname, a) in rows {
        let (smed, smin, smax) = stats(&s);
        let col = |v: Option<(f64, f64, f64)>| match v {
            Some((med, min, max)) => format!(
                "{:>11.2} {:>9.2} {:>9.2} {:>9.0}",
                med * 1e3,
                min * 1e3,
                max * 1e3,
                mb / med
            ),
            None => format!("{:>11} {:>9} {:>9} {:>9}", "n/a", "", "", ""),
        };
        let age_stats = (!a.is_empty()).then(|| stats(&a));
        println!(
            "{:<14} {} | {:<12} {} | {:>6}",
            sname,
            col(Some((smed, smin, smax))),
            aname,
            col(age_stats),
            age_stats
                .map(|(amed, _, _)| format!("{:.2}", smed / amed))
                .unwrap_or_else(|| "n/a".into()),
        );
    }
}

/// Runs an `age` command, which must succeed.
fn age(cmd: &mut Command) {
    let status = cmd.status().expect("running age");
    assert!(status.success(), "age CLI failed: {status}");
}

/// User + system CPU time of this process (every thread) or of its waited-for children.
fn cpu_time(who: UsageWho) -> Duration {
    let u = getrusage(who).expect("getrusage");
    let d = |t: nix::sys::time::TimeVal| {
        Duration::from_micros(t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64)
    };
    d(u.user_time()) + d(u.system_time())
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Median, min and max in seconds.
fn stats(v: &[Duration]) -> (f64, f64, f64) {
    let mut s: Vec<f64> = v.iter().map(Duration::as_secs_f64).collect();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    (median, s[0], s[n - 1])
}

fn human(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}
