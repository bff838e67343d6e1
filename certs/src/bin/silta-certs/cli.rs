//! Command-line definition of `silta-certs`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use silta_certs::identity::Principal;

/// Silta PKI tool: certificate authority, relay and role certificates, revocation.
#[derive(Parser)]
#[command(version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Create a new CA in DIR (ca.pem, ca.key with mode 0600, issued.json, crl.pem).
    Init {
        /// CA folder.
        #[arg(long)]
        dir: PathBuf,
        /// Trust domain of the identities this CA issues, e.g. silta.example.
        #[arg(long)]
        trust_domain: String,
        /// Common name of the CA certificate.
        #[arg(long, default_value = "Silta CA")]
        name: String,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: u32,
    },
    /// Issue the relay's server certificate (serverAuth, DNS and IP SANs).
    IssueRelay {
        /// CA folder.
        #[arg(long)]
        dir: PathBuf,
        /// A DNS name or IP address clients use to reach the relay (repeat for several).
        #[arg(long = "name", required = true)]
        names: Vec<String>,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Where to write relay.pem and relay.key (default DIR/issued).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Issue a role certificate for a principal (clientAuth, spiffe:// URI SAN).
    Issue {
        /// CA folder.
        #[arg(long)]
        dir: PathBuf,
        /// The principal, <role>/<id>: centre/joutseno, assistance/nas, auditor/dpo, admin/ops.
        #[arg(long)]
        principal: Principal,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Where to write <role>-<id>.pem and .key (default DIR/issued).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Revoke a certificate by serial, or every certificate of a principal; rewrites the CRL.
    Revoke {
        /// CA folder.
        #[arg(long)]
        dir: PathBuf,
        /// Serial number (hex), as printed by `issue` and `list`.
        #[arg(long)]
        serial: Option<String>,
        /// Revoke every unrevoked certificate of this principal.
        #[arg(long)]
        principal: Option<Principal>,
    },
    /// Sign a fresh CRL (do this well before the old one's nextUpdate, 30 days).
    Crl {
        /// CA folder.
        #[arg(long)]
        dir: PathBuf,
    },
    /// List every certificate issued, with its status.
    List {
        /// CA folder.
        #[arg(long)]
        dir: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}
