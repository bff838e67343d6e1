//! `silta`: the client program. Thin: parse, load configuration, call the library, print.
//!
//! Exit codes: see [`cli::EXIT_CODES`] (printed by `silta --help`).

mod audit_cmd;
mod cli;
mod compose;
mod daemon_cmd;
#[cfg(feature = "demo")]
mod demo;
mod failure;
mod inbox_cmd;
mod init;
mod keys_cmd;
mod output;
mod reply_cmd;
mod send_cmd;

use std::{path::Path, process::ExitCode, time::Duration};

use clap::Parser as _;
use silta_client::{
    ClientConfig,
    client::{Client, Received},
    payload::kind_name,
};
use silta_proto::pb;

use cli::{Cli, Command};
use silta_client::fsutil::{create_private_dir, write_atomic};

pub(crate) use failure::{EX_DATAERR, EX_NOPERM, EX_USAGE, Failure};
pub(crate) use output::print_key_changes;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            if let Some(h) = f.hint {
                eprintln!("hint: {h}");
            }
            ExitCode::from(f.code)
        }
    }
}

/// What clap says about the command line. A bad flag or value is a usage error (64), as the
/// exit codes say, not clap's own 2, which means here that the delivery log did not verify.
/// `--help` and `--version` succeed.
fn usage_error(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    if e.use_stderr() {
        ExitCode::from(EX_USAGE)
    } else {
        ExitCode::SUCCESS
    }
}

/// The configuration every command but `init`, `demo` and `audit check-evidence` needs.
pub(crate) fn load_config(path: &Path) -> Result<ClientConfig, Failure> {
    ClientConfig::load(path).map_err(|e| Failure {
        code: EX_USAGE,
        message: e.to_string(),
        hint: Some(
            "set this installation up with `silta init --role centre|assistance|auditor ...`, or pass --config FILE (or set SILTA_CONFIG); to try Silta first, run `silta demo`".into(),
        ),
    })
}

async fn run(cli: Cli) -> Result<(), Failure> {
    // Commands that load the configuration themselves, or need none.
    let command = match cli.command {
        init @ Command::Init { .. } => return init::run(&cli.config, init).await,
        Command::Demo { keep } => return demo(keep).await,
        Command::Audit { command } => return audit_cmd::run(&cli.config, command).await,
        other => other,
    };
    let config = load_config(&cli.config)?;
    match command {
        Command::Keys { command } => keys_cmd::run(&config, command).await?,
        Command::Daemon => daemon_cmd::run(&config).await?,
        Command::Inbox { purpose, command } => inbox_cmd::run(&config, purpose, command).await?,
        Command::Case { command } => inbox_cmd::case(&config, command).await?,
        Command::Reply(command) => reply_cmd::run(&config, command).await?,
        Command::Send {
            kind,
            to,
            case,
            urgency,
            legal_basis,
            form,
        } => {
            let args = send_cmd::SendArgs {
                kind,
                to,
                case,
                urgency,
                legal_basis,
                form,
            };
            send_cmd::run(&config, args).await?;
        }
        Command::Receive { out, wait } => {
            let client = Client::start(&config).await?;
            // Each message is written (or printed) before it is acknowledged.
            let keep = |delivered: &pb::DeliveredEnvelope,
                        opened: &silta_client::seal::Opened|
             -> Result<(), String> {
                let mut record = silta_client::client::message_record(delivered, opened);
                // `case_ref` (32 hex digits, zeros without a case): the name scripts read first.
                record["case_ref"] = hex::encode(&opened.signed.case_ref).into();
                let json = serde_json::to_string_pretty(&record).unwrap_or_default();
                let kind =
                    kind_name(pb::MessageKind::try_from(opened.signed.kind).unwrap_or_default());
                match &out {
                    Some(dir) => {
                        let id =
                            uuid::Uuid::from_slice(&opened.signed.message_id).unwrap_or_default();
                        let path = dir.join(format!("{id}.json"));
                        create_private_dir(dir)?;
                        if !path.exists() {
                            write_atomic(&path, json.as_bytes())?;
                        }
                        println!(
                            "received {kind} from {} -> {}",
                            opened.signed.sender,
                            path.display()
                        );
                    }
                    None => println!("{json}"),
                }
                Ok(())
            };
            let items = client
                .receive(Duration::from_secs(wait), usize::MAX, keep)
                .await?;
            let mut rejected = 0;
            for item in &items {
                match item {
                    Received::Message { .. } => {}
                    Received::Rejected {
                        delivered,
                        rejected: r,
                    } => {
                        rejected += 1;
                        eprintln!("rejected a message from {}: {r}", delivered.sender);
                    }
                    Received::Deferred {
                        delivered,
                        retry,
                        tried,
                    } => {
                        let id = delivered
                            .envelope
                            .as_ref()
                            .and_then(|e| uuid::Uuid::from_slice(&e.message_id).ok())
                            .unwrap_or_default();
                        let state = if *tried { "failed" } else { "is not due yet" };
                        eprintln!(
                            "could not process message {id} from {} now: {} (try {} {state}; it comes again on a later receive)",
                            delivered.sender, retry.error, retry.attempts
                        );
                    }
                    Received::Duplicate { message_id } => {
                        eprintln!(
                            "duplicate of {} (already processed) acknowledged again",
                            hex::encode(message_id)
                        );
                    }
                    Received::Status(s) => println!(
                        "status: {} for {}: {}",
                        uuid::Uuid::from_slice(&s.message_id).unwrap_or_default(),
                        s.recipient,
                        pb::DeliveryState::try_from(s.state)
                            .unwrap_or_default()
                            .as_str_name()
                    ),
                }
            }
            print_key_changes(&client);
            if rejected > 0 {
                return Err(Failure {
                    code: 1,
                    message: format!("{rejected} message(s) rejected"),
                    hint: None,
                });
            }
        }
        Command::Init { .. } | Command::Demo { .. } | Command::Audit { .. } => {
            unreachable!("handled above")
        }
    }
    Ok(())
}

#[cfg(feature = "demo")]
async fn demo(keep: Option<std::path::PathBuf>) -> Result<(), Failure> {
    demo::run(keep).await
}

#[cfg(not(feature = "demo"))]
async fn demo(_keep: Option<std::path::PathBuf>) -> Result<(), Failure> {
    Err(Failure::usage(
        "this silta was built without the demo (cargo feature `demo`)",
    ))
}
