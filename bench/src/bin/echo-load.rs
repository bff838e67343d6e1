//! `echo-load`: starts `echo-server` as a separate process (so its CPU and memory are its own),
//! drives it over K mutual-TLS connections with C requests in flight (or at a rate), and prints
//! one Outcome line: system "echo", or "echo-fsync" with `--fsync`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use silta_bench::{
    echo::{self, LISTENING},
    load::{Common, ServerProcess, drive, sibling_binary},
};
use silta_tests::TestPki;

#[derive(Parser, Debug)]
#[command(about = "load on the tonic mTLS echo server")]
struct Args {
    #[command(flatten)]
    common: Common,
    /// The echo-server binary (default: next to this one).
    #[arg(long)]
    echo_bin: Option<PathBuf>,
    /// Group-commit fdatasync of every request (system "echo-fsync").
    #[arg(long)]
    fsync: bool,
    /// Folder for the server's file (default: the system's temporary folder; choose the disk
    /// under test).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.common.validate()?;
    silta_relay::tls::install_crypto_provider();
    let bin = args
        .echo_bin
        .unwrap_or_else(|| sibling_binary("echo-server"));
    anyhow::ensure!(
        bin.is_file(),
        "no echo-server at {} (build it: cargo build --release -p silta-bench, or give --echo-bin)",
        bin.display()
    );
    let pki = TestPki::new();
    let data = match &args.data_dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .context("cannot create the data folder")?;
    let mut cmd = tokio::process::Command::new(&bin);
    cmd.arg("--ca")
        .arg(pki.path("ca.pem"))
        .arg("--crl")
        .arg(pki.path("crl.pem"))
        .arg("--cert")
        .arg(pki.path("relay.pem"))
        .arg("--key")
        .arg(pki.path("relay.key"));
    if args.fsync {
        cmd.arg("--fsync").arg(data.path().join("echo.log"));
    }
    let server = ServerProcess::spawn(cmd, LISTENING).await?;
    let pid = server.pid()?;
    let mut channels = Vec::new();
    for i in 0..args.common.connections {
        let id = pki.client(&format!("centre/c{i}"));
        let conn =
            silta_client::Connection::connect_unchecked(&pki.client_config(server.addr, Some(&id)))
                .await
                .context("cannot connect to echo-server")?;
        channels.push(conn.channel());
    }
    // Each connection answers once before the load, so a refused certificate shows here.
    for ch in &channels {
        echo::call(ch.clone(), Vec::new())
            .await
            .context("echo-server refused the first call")?;
    }
    let payload = args.common.payload();
    let system = if args.fsync { "echo-fsync" } else { "echo" };
    eprintln!(
        "echo-load: {system}, {} connections, {} in flight, {} bytes, {} s (+{} s warm-up)",
        channels.len(),
        args.common.in_flight,
        args.common.size,
        args.common.seconds,
        args.common.warmup
    );
    let measured = drive(&args.common, Some(pid), move |seq| {
        let ch = channels[seq as usize % channels.len()].clone();
        let payload = payload.clone();
        async move {
            echo::call(ch, payload)
                .await
                .map_err(|s| anyhow::anyhow!("echo failed: {:?}: {}", s.code(), s.message()))?;
            Ok(())
        }
    })
    .await?;
    let mut outcome = args.common.outcome(system, "send", &measured);
    outcome.note = format!(
        "tonic unary over mTLS (TLS 1.3, client cert required), {} connections{}",
        args.common.connections,
        if args.fsync {
            ", group-commit fdatasync before each answer"
        } else {
            ""
        }
    );
    outcome.print();
    server.stop().await;
    Ok(())
}
