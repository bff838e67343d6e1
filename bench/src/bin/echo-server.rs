//! `echo-server`: the same machine's gRPC ceiling. One unary method over the relay's own mutual
//! TLS (TLS 1.3, client certificates required, CA + CRL); with `--fsync FILE` every request is
//! appended to FILE by one writer thread with group commit (one fdatasync per batch) before
//! the answer. Prints `echo-server listening on ADDR` first on stdout.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use silta_bench::echo::{EchoService, GroupCommit, LISTENING, serve};
use silta_relay::tls::TlsMaterial;

#[derive(Parser, Debug)]
#[command(about = "tonic mTLS echo server (the machine's gRPC ceiling)")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// CA certificate(s) of client certificates (PEM).
    #[arg(long)]
    ca: PathBuf,
    /// CRL of that CA (PEM).
    #[arg(long)]
    crl: PathBuf,
    /// Server certificate (PEM).
    #[arg(long)]
    cert: PathBuf,
    /// Server key (PEM).
    #[arg(long)]
    key: PathBuf,
    /// Trust domain of client identities.
    #[arg(long, default_value = silta_tests::TRUST_DOMAIN)]
    trust_domain: String,
    /// Append every request here with group-commit fdatasync before answering.
    #[arg(long)]
    fsync: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    silta_relay::tls::install_crypto_provider();
    let tls = TlsMaterial::load(
        &[&args.ca],
        &[&args.crl],
        &args.cert,
        &args.key,
        &args.trust_domain,
        false,
    )?
    .server_config()?;
    let store = match &args.fsync {
        Some(path) => Some(
            GroupCommit::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        ),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!("{LISTENING}{}", listener.local_addr()?);
    serve(listener, tls, EchoService::new(store)).await?;
    Ok(())
}
