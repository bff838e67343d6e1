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
    /// The delivery log: verify, evidence, queries.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
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
pub(crate) enum AuditCommand {
    /// Verify the whole delivery log against the relay's signed checkpoint and what was verified
    /// before; names the first bad index if anything was rewritten, removed, reordered or forked.
    Verify {
        /// The log's verifier key (`silta-relay log-key` prints it).
        #[arg(long)]
        log_key: String,
        /// Why the log is read (recorded in the log).
        #[arg(long)]
        purpose: String,
        /// Where the last verified checkpoint and leaf hashes are kept (default STATE_DIR/audit).
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Write offline evidence for a message: its events, inclusion proofs and a checkpoint.
    Prove {
        /// The message id (UUID).
        message_id: String,
        /// Why (recorded in the log).
        #[arg(long)]
        purpose: String,
        /// The evidence file to write (default <message-id>.evidence.json).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check an evidence file offline, with no relay.
    CheckEvidence {
        /// The evidence file.
        file: PathBuf,
        /// The log's verifier key.
        #[arg(long)]
        log_key: String,
        /// Require the evidence to be about this message (UUID).
        #[arg(long)]
        message_id: Option<String>,
    },
    /// Query the delivery log.
    Query {
        /// Why (recorded in the log).
        #[arg(long)]
        purpose: String,
        /// Only this message (UUID).
        #[arg(long)]
        message_id: Option<String>,
        /// Only this case (32 hex digits).
        #[arg(long)]
        case: Option<String>,
        /// Only events involving this principal.
        #[arg(long)]
        principal: Option<String>,
        /// table, json or csv.
        #[arg(long, default_value = "table")]
        format: String,
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
