//! `silta-certs`: create a CA, issue relay and role certificates, revoke, publish a CRL, list.

mod cli;

use std::process::ExitCode;

use clap::Parser as _;
use silta_certs::{
    CertsError,
    store::{CaDir, RevokeTarget},
};

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            if let CertsError::AlreadyExists(_) = e {
                eprintln!(
                    "hint: keys and certificates are never overwritten; choose another --out folder or move the old files away"
                );
            }
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<(), CertsError> {
    match cli.command {
        Command::Init {
            dir,
            trust_domain,
            name,
            days,
        } => {
            let ca = CaDir::init(&dir, &name, &trust_domain, days)?;
            println!("created CA for trust domain {trust_domain}");
            println!("  certificate: {}", ca.ca_cert_path().display());
            println!(
                "  private key: {} (mode 0600; keep it offline)",
                dir.join("ca.key").display()
            );
            println!("  CRL:         {}", ca.crl_path().display());
        }
        Command::IssueRelay {
            dir,
            names,
            days,
            out,
        } => {
            let mut ca = CaDir::open(&dir)?;
            let out = out.unwrap_or_else(|| dir.join("issued"));
            let w = ca.issue_server(&names, days, &out)?;
            println!(
                "issued relay certificate {} for {}",
                w.serial,
                names.join(", ")
            );
            println!("  certificate: {}", w.cert_path.display());
            println!("  private key: {} (mode 0600)", w.key_path.display());
        }
        Command::Issue {
            dir,
            principal,
            days,
            out,
        } => {
            let mut ca = CaDir::open(&dir)?;
            let out = out.unwrap_or_else(|| dir.join("issued"));
            let w = ca.issue_client(&principal, days, &out)?;
            println!(
                "issued {} certificate {} for {}",
                principal.role(),
                w.serial,
                principal.to_uri(ca.ca().trust_domain())
            );
            println!("  certificate: {}", w.cert_path.display());
            println!("  private key: {} (mode 0600)", w.key_path.display());
        }
        Command::Revoke {
            dir,
            serial,
            principal,
        } => {
            let mut ca = CaDir::open(&dir)?;
            let target = match (serial, principal) {
                (Some(s), None) => RevokeTarget::Serial(s),
                (None, Some(p)) => RevokeTarget::Principal(p),
                _ => {
                    return Err(CertsError::Invalid(
                        "give exactly one of --serial or --principal".into(),
                    ));
                }
            };
            let serials = ca.revoke(&target)?;
            for s in &serials {
                println!("revoked {s}");
            }
            println!(
                "CRL written to {}; reload the relay to apply it",
                ca.crl_path().display()
            );
        }
        Command::Crl { dir } => {
            let mut ca = CaDir::open(&dir)?;
            let path = ca.write_crl()?;
            println!("CRL written to {}", path.display());
        }
        Command::List { dir, json } => {
            let ca = CaDir::open(&dir)?;
            let list = ca.list()?;
            if json {
                let text = serde_json::to_string_pretty(&list)
                    .map_err(|e| CertsError::Invalid(e.to_string()))?;
                println!("{text}");
            } else {
                println!(
                    "{:<34} {:<32} {:<12} {:<12} STATUS",
                    "SERIAL", "SUBJECT", "NOT BEFORE", "NOT AFTER"
                );
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                for r in list {
                    let status = match r.revoked_at {
                        Some(_) => "revoked",
                        None if r.not_after < now => "expired",
                        None => "valid",
                    };
                    println!(
                        "{:<34} {:<32} {:<12} {:<12} {status}",
                        r.serial,
                        r.subject,
                        date(r.not_before),
                        date(r.not_after)
                    );
                }
            }
        }
    }
    Ok(())
}

fn date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| "?".into())
}
