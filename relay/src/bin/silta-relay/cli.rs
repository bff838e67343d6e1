//! Command-line definition of `silta-relay`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Silta relay: mutual-TLS store-and-forward of end-to-end encrypted referrals.
///
/// With no configuration it serves on 127.0.0.1:7443 from ./silta-data with a development PKI.
#[derive(Parser)]
#[command(version, about)]
pub(crate) struct Cli {
    /// Configuration file (TOML). Keys can be overridden with SILTA_RELAY__<SECTION>__<KEY>.
    #[arg(long, short, env = "SILTA_RELAY_CONFIG", global = true)]
    pub(crate) config: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Serve (the default).
    Serve,
    /// Validate the configuration and print it; opens no port and no file but the configuration.
    CheckConfig,
    /// Print the delivery log's verifier key for auditors (creates the log key on first use).
    LogKey,
}
