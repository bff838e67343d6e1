//! The bench programs as a user runs them: the real binaries, the real relay process, real TLS.
//! Windows are short (these check the programs, not the figures).

use std::process::{Command, Output};

use silta_bench::Outcome;

const RELAY: &str = env!("CARGO_BIN_EXE_silta-relay-under-bench");

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin).args(args).output().expect("program runs")
}

/// The Outcome lines of a successful run.
fn outcomes(out: &Output) -> Vec<Outcome> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

fn assert_measured(o: &Outcome) {
    assert!(o.count > 0, "{o:?}");
    assert!(o.throughput > 0.0, "{o:?}");
    assert!(o.p50_ms > 0.0 && o.p50_ms <= o.p99_ms, "{o:?}");
    assert!(o.p99_ms <= o.p999_ms && o.p999_ms <= o.max_ms, "{o:?}");
}

const QUICK: [&str; 10] = [
    "--seconds",
    "1",
    "--warmup",
    "0.5",
    "--in-flight",
    "8",
    "--connections",
    "2",
    "--size",
    "1024",
];

#[test]
fn silta_load_send_with_the_nas_consuming() {
    let mut args = vec![
        "--relay-bin",
        RELAY,
        "--centres",
        "2",
        "--consume",
        "--round",
        "3",
    ];
    args.extend(QUICK);
    let out = run(env!("CARGO_BIN_EXE_silta-load"), &args);
    let o = outcomes(&out);
    assert_eq!(o.len(), 1, "{o:?}");
    let o = &o[0];
    assert_eq!(
        (o.system.as_str(), o.mode.as_str(), o.round),
        ("silta", "cycle", 3)
    );
    assert_eq!((o.in_flight, o.size, o.rate), (8, 1024, 0));
    assert_measured(o);
    // The NAS held messages and the relay process was read from /proc.
    assert!(o.deliver_p50_ms.is_some_and(|d| d > 0.0), "{o:?}");
    assert!(o.deliver_p99_ms >= o.deliver_p50_ms, "{o:?}");
    assert!(o.server_cpu_us_per_msg.is_some_and(|c| c > 0.0), "{o:?}");
    assert!(o.server_peak_rss_kib.is_some_and(|k| k > 1024), "{o:?}");
    // Durable: the relay did not warn about storage.sync = false (it does when it is off).
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("storage.sync = false"), "{stderr}");
}

#[test]
fn silta_load_consume_without_sync_drains_the_preload() {
    // A window far longer than the drain: the window ends when the last ack is answered.
    let args = [
        "--relay-bin",
        RELAY,
        "--mode",
        "consume",
        "--no-sync",
        "--preload",
        "200",
        "--seconds",
        "30",
        "--warmup",
        "0.2",
        "--in-flight",
        "8",
        "--connections",
        "2",
    ];
    let out = run(env!("CARGO_BIN_EXE_silta-load"), &args);
    let o = outcomes(&out);
    assert_eq!(o.len(), 1, "{o:?}");
    let o = &o[0];
    assert_eq!(
        (o.system.as_str(), o.mode.as_str()),
        ("silta-nosync", "consume")
    );
    assert_measured(o);
    assert!(o.count <= 200, "{o:?}");
    assert!(o.seconds < 30.0, "{o:?}");
    assert!(
        (o.throughput - o.count as f64 / o.seconds).abs() < 1e-6,
        "{o:?}"
    );
    assert!(o.server_cpu_us_per_msg.is_some_and(|c| c > 0.0), "{o:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("storage.sync = false"), "{stderr}");
    assert!(stderr.contains("window shortened"), "{stderr}");
}

#[test]
fn silta_load_without_a_relay_binary_says_so() {
    let out = run(
        env!("CARGO_BIN_EXE_silta-load"),
        &["--relay-bin", "/nonexistent/silta-relay", "--seconds", "1"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no relay binary at /nonexistent/silta-relay"),
        "{stderr}"
    );
}

#[test]
fn echo_load_with_group_commit() {
    let data = tempfile::tempdir().unwrap();
    let mut args = vec!["--fsync", "--data-dir", data.path().to_str().unwrap()];
    args.extend(QUICK);
    let o = outcomes(&run(env!("CARGO_BIN_EXE_echo-load"), &args));
    assert_eq!(o.len(), 1, "{o:?}");
    assert_eq!(
        (o[0].system.as_str(), o[0].mode.as_str()),
        ("echo-fsync", "send")
    );
    assert_measured(&o[0]);
    assert!(o[0].server_cpu_us_per_msg.is_some_and(|c| c > 0.0), "{o:?}");
    // The server's folder is gone afterwards (no leftovers on the disk under test).
    assert_eq!(std::fs::read_dir(data.path()).unwrap().count(), 0);
}

#[test]
fn fsync_load_per_message_and_batched() {
    let data = tempfile::tempdir().unwrap();
    let o = outcomes(&run(
        env!("CARGO_BIN_EXE_fsync-load"),
        &[
            "--seconds",
            "0.5",
            "--warmup",
            "0.1",
            "--in-flight",
            "16",
            "--data-dir",
            data.path().to_str().unwrap(),
        ],
    ));
    let modes: Vec<(&str, &str, u32)> = o
        .iter()
        .map(|o| (o.system.as_str(), o.mode.as_str(), o.in_flight))
        .collect();
    assert_eq!(modes, [("fsync", "send", 1), ("fsync", "batch", 16)]);
    o.iter().for_each(assert_measured);
    // Every message of a batch is counted.
    assert_eq!(o[1].count % 16, 0, "{o:?}");
}

#[test]
fn bench_report_tables_ratios_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let line = |system: &str, round: u32, throughput: f64, p99: f64, cpu: f64| {
        serde_json::to_string(&Outcome {
            system: system.into(),
            mode: "send".into(),
            round,
            throughput,
            p50_ms: p99 / 2.0,
            p99_ms: p99,
            p999_ms: p99,
            max_ms: p99,
            server_cpu_us_per_msg: Some(cpu),
            ..Outcome::default()
        })
        .unwrap()
    };
    let text = [
        line("silta", 1, 3000.0, 30.0, 400.0),
        line("echo-fsync", 1, 4000.0, 5.0, 40.0),
        "a log line that is not JSON".into(),
        line("silta", 2, 3600.0, 28.0, 380.0),
        line("silta", 3, 3300.0, 33.0, 390.0),
    ]
    .join("\n");
    let jsonl = dir.path().join("r.jsonl");
    std::fs::write(&jsonl, text).unwrap();
    let svg = dir.path().join("plot/throughput-p99.svg");
    let out = run(
        env!("CARGO_BIN_EXE_bench-report"),
        &[jsonl.to_str().unwrap(), "--svg", svg.to_str().unwrap()],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(
        md.contains("| silta | 3 | 3300 (3000–3600) | 15.00 (14.00–16.50) | 30.00 (28.00–33.00) |"),
        "{md}"
    );
    assert!(md.contains("| echo-fsync | 1 | 4000 |"), "{md}");
    // 3300 / 4000 = 0.825 ≥ 0.75; p99 30 / 5 = 6 > 2; CPU 390 / 40 = 9.75 > 2.
    assert!(
        md.contains("| silta / echo-fsync throughput | 0.82 | ≥ 0.75 | yes |"),
        "{md}"
    );
    assert!(
        md.contains("| silta / echo-fsync p99 | 6.00 | ≤ 2 | **no** |"),
        "{md}"
    );
    assert!(
        md.contains("| silta / echo-fsync server CPU per message | 9.75 | ≤ 2 | **no** |"),
        "{md}"
    );
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(
        plot.starts_with("<svg") && plot.trim_end().ends_with("</svg>"),
        "{plot}"
    );
    assert!(
        plot.contains("<title>silta: 3300.00 (3000.00–3600.00)</title>"),
        "{plot}"
    );

    // A broken result line is an error naming the file and line, and nothing is printed.
    std::fs::write(
        &jsonl,
        format!("{}\n{{\"system\": 1}}\n", line("silta", 1, 1.0, 1.0, 1.0)),
    )
    .unwrap();
    let out = run(
        env!("CARGO_BIN_EXE_bench-report"),
        &[jsonl.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("r.jsonl:2: not an Outcome"), "{stderr}");
}
