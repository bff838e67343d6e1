//! Command-line definition of `silta`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Silta client: device keys, sending and receiving end-to-end encrypted case messages.
#[derive(Parser)]
#[command(version, about)]
pub(crate) struct Cli {
    /// Client configuration file.
    #[arg(
        long,
        short,
        env = "SILTA_CONFIG",
        default_value = "silta.toml",
        global = true
    )]
    pub(crate) config: PathBuf,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Device keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Seal a form and send it.
    Send {
        /// Message kind: referral, anonymous-consultation, information-response, ...
        #[arg(long)]
        kind: String,
        /// Recipient principal (<role>/<id>); repeat for several.
        #[arg(long = "to", required = true)]
        to: Vec<String>,
        /// Case reference: 32 hex digits, or "none" before a case exists.
        #[arg(long)]
        case: String,
        /// normal, urgent or emergency.
        #[arg(long, default_value = "normal")]
        urgency: String,
        /// consent, statutory-information-right, child-welfare-duty or acute-danger.
        #[arg(long, default_value = "consent")]
        legal_basis: String,
        /// The form: a TOML file, or JSON if it ends in .json.
        form: PathBuf,
    },
    /// Receive, open, verify and acknowledge what is waiting; print or write each message.
    Receive {
        /// Write each message as <message-id>.json into this folder (mode 0600) instead of
        /// printing it.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Stop after this many seconds without a new item.
        #[arg(long, default_value_t = 3)]
        wait: u64,
    },
}

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Create this device's keys (age identity and Ed25519 key, mode 0600; never overwritten).
    Init {
        /// Device name within the principal, e.g. server-1.
        #[arg(long, default_value = "default")]
        device: String,
    },
    /// Print this device's public keys and the fingerprint to compare by phone.
    Show,
    /// Publish this device's key bundle to the relay's directory.
    Publish,
    /// Print the verified keys of a principal (<role>/<id>).
    Get {
        /// Whose keys.
        principal: String,
    },
}
