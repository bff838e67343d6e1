//! `bench-pki DIR`: mints the certificates the brokers of the comparison run with (RabbitMQ and
//! NATS, see bench/brokers.sh): a CA, a server certificate for 127.0.0.1 and localhost, and one
//! client certificate. Writes ca.pem, server.pem, server.key, client.pem and client.key into DIR
//! (keys 0600, never overwritten). Made at run time; never committed.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Parser;
use silta_certs::{
    Principal, Role,
    ca::{CertificateAuthority, Validity},
    files::{PUBLIC_MODE, SECRET_MODE, write_new},
};

#[derive(Parser)]
#[command(
    about = "Mint a CA, a loopback server certificate and a client certificate for the brokers"
)]
struct Args {
    /// Directory to write ca.pem, server.pem, server.key, client.pem, client.key into.
    dir: PathBuf,
    /// Validity of the certificates in days.
    #[arg(long, default_value_t = 30)]
    days: u32,
}

fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let ca = CertificateAuthority::generate(
        "silta-bench CA",
        "bench.silta.example",
        Validity::days_from_now(args.days),
    )?;
    let server = ca.issue_server(&["127.0.0.1".into(), "localhost".into()], args.days)?;
    let client = ca.issue_client(&Principal::new(Role::Centre, "bench-client")?, args.days)?;
    let files: [(&str, &str, u32); 5] = [
        ("ca.pem", ca.cert_pem(), PUBLIC_MODE),
        ("server.pem", &server.cert_pem, PUBLIC_MODE),
        ("server.key", &server.key_pem, SECRET_MODE),
        ("client.pem", &client.cert_pem, PUBLIC_MODE),
        ("client.key", &client.key_pem, SECRET_MODE),
    ];
    for (name, contents, mode) in files {
        write_new(&args.dir.join(name), contents.as_bytes(), mode)?;
    }
    eprintln!(
        "bench-pki: wrote ca.pem, server.pem, server.key, client.pem, client.key in {}",
        args.dir.display()
    );
    Ok(())
}
