//! bench/brokers.sh with rabbit-load and nats-load, end to end against the real brokers.
//!
//! The broker tests install (if missing) and start real servers, so they are `#[ignore]`d:
//! run them with `cargo test -p silta-bench --test brokers -- --ignored --test-threads 1`.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use silta_bench::Outcome;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("brokers.sh")
}

fn brokers(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(script())
        .args(args)
        .env("BENCH_PKI", env!("CARGO_BIN_EXE_bench-pki"))
        .output()
        .expect("running brokers.sh")
}

/// The `KEY=value` pairs of `start`'s one line (values without spaces here: temp paths).
fn assignments(stdout: &[u8]) -> std::collections::HashMap<String, String> {
    let text = String::from_utf8(stdout.to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "start prints exactly one line on stdout: {text:?}"
    );
    lines[0]
        .split(' ')
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("KEY=value");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn alive(pid: &str) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_bad_command_line_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for args in [
        vec!["start", "kafka", d],
        vec!["restart", "nats", d],
        vec!["start", "nats"],
    ] {
        let out = brokers(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn stopping_what_is_not_running_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    let out = brokers(&["stop", "nats", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no nats-server running"));
}

/// Stops the broker started in a directory when the test ends, failed or not.
struct StopOnDrop<'a> {
    system: &'a str,
    dir: &'a str,
}

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = brokers(&["stop", self.system, self.dir]);
    }
}

/// Starts `system`, runs its load client for a second, checks the two outcome lines, checks
/// that a client with a certificate from another CA is refused, and stops the server.
fn end_to_end(system: &str, load: &str, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = brokers(&["start", system, d]);
    let _stop = StopOnDrop { system, dir: d };
    assert!(
        out.status.success(),
        "start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = assignments(&out.stdout);
    let pid = env["PID"].clone();
    assert!(alive(&pid));
    for f in ["CA", "CERT", "KEY"] {
        assert!(Path::new(&env[f]).is_file(), "{f}");
    }
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&env["KEY"]).unwrap().permissions(),
    );
    assert_eq!(key_mode & 0o777, 0o600);
    // Started twice in one DIR: refused, the first left alone.
    let again = brokers(&["start", system, d]);
    assert_eq!(again.status.code(), Some(1));
    assert!(alive(&pid));

    let run = |cert: &str, key: &str| {
        Command::new(load)
            .args([
                "--url",
                &env["URL"],
                "--ca",
                &env["CA"],
                "--cert",
                cert,
                "--key",
                key,
            ])
            .args(["--server-pid", &pid, "--seconds", "1", "--warmup", "0.5"])
            .args(["--in-flight", "8", "--connections", "2", "--size", "1024"])
            .output()
            .unwrap()
    };
    let ok = run(&env["CERT"], &env["KEY"]);
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "{load}: {stderr}");
    let outcomes: Vec<Outcome> = String::from_utf8(ok.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one Outcome per line"))
        .collect();
    assert_eq!(outcomes.len(), 2);
    let (send, consume) = (&outcomes[0], &outcomes[1]);
    assert_eq!((send.system.as_str(), send.mode.as_str()), (name, "send"));
    assert_eq!(
        (consume.system.as_str(), consume.mode.as_str()),
        (name, "consume")
    );
    for o in &outcomes {
        assert!(o.count > 0 && o.throughput > 0.0, "{o:?}");
        assert!(
            o.p50_ms > 0.0 && o.p50_ms <= o.p99_ms && o.p99_ms <= o.max_ms,
            "{o:?}"
        );
        assert!(o.server_cpu_us_per_msg.is_some_and(|c| c > 0.0), "{o:?}");
        assert!(o.server_peak_rss_kib.is_some_and(|k| k > 1024), "{o:?}");
        assert_eq!((o.in_flight, o.size, o.round), (8, 1024, 1));
    }

    // A client whose certificate another CA signed is refused in the TLS handshake.
    let other = dir.path().join("other-pki");
    let minted = Command::new(env!("CARGO_BIN_EXE_bench-pki"))
        .arg(&other)
        .output()
        .unwrap();
    assert!(minted.status.success());
    let refused = run(
        other.join("client.pem").to_str().unwrap(),
        other.join("client.key").to_str().unwrap(),
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(refused.stdout.is_empty());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("connecting to"));

    let stop = brokers(&["stop", system, d]);
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    assert!(!alive(&pid), "the server is gone after stop");
}

#[test]
#[ignore = "installs and starts a real RabbitMQ (slow); run with --ignored"]
fn rabbitmq_end_to_end() {
    end_to_end("rabbitmq", env!("CARGO_BIN_EXE_rabbit-load"), "rabbitmq");
}

#[test]
#[ignore = "installs and starts a real nats-server; run with --ignored"]
fn nats_end_to_end() {
    end_to_end("nats", env!("CARGO_BIN_EXE_nats-load"), "nats");
}
