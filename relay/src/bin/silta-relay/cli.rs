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
    Serve {
        /// Start even though the delivery log is shorter than (or differs from) what the log key
        /// signed before — after restoring an older backup. Recorded as a LOG_ROLLBACK event;
        /// receipts given after the backup no longer match the log. Use once, deliberately.
        #[arg(long)]
        accept_rollback: bool,
    },
    /// Validate the configuration and print it; opens no port and no file but the configuration.
    CheckConfig,
    /// Print the delivery log's verifier key for auditors (creates the log key on first use);
    /// during a rotation both keys, the current one first. `rotate` and `finish` change the key
    /// (relay stopped); see "Rotating the delivery-log key" in the README.
    LogKey {
        #[command(subcommand)]
        step: Option<LogKeyStep>,
    },
    /// Write a consistent backup of the database into DIR (new or empty). A running relay makes
    /// it without stopping (asked through <data_dir>/admin.sock); a stopped one is read directly.
    Backup {
        /// The backup folder (created; must not hold anything).
        dir: PathBuf,
    },
    /// Rebuild the database of the configured data folder from a backup. The relay must be
    /// stopped; the data folder must hold the log key and no database.
    Restore {
        /// The backup folder.
        from: PathBuf,
    },
}

#[derive(Subcommand, Clone, Copy)]
pub(crate) enum LogKeyStep {
    /// Create the next log key (log-key-next.pem); from the next start the relay signs every
    /// checkpoint with both keys. The relay must be stopped. Recorded as LOG_KEY_ROTATED.
    Rotate,
    /// Retire the old key once every auditor has the new verifier key: it is kept as
    /// log-key-retired-<key id>.pem and the next key becomes log-key.pem. The relay must be
    /// stopped. Recorded as LOG_KEY_ROTATED.
    Finish,
}
