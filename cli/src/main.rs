//! `silta`: the client program. Thin: parse, load configuration, call the library, print.
//!
//! Exit codes: see [`cli::EXIT_CODES`] (printed by `silta --help`).

/// A message in the reader's language (`silta_client::i18n`): a message id literal, then named
/// values (`name = value`).
/// Text values are made printable; numbers choose plural forms.
macro_rules! t {
    ($id:literal) => {
        silta_client::i18n::t($id, &[])
    };
    ($id:literal, $($k:ident = $v:expr),+ $(,)?) => {
        silta_client::i18n::t(
            $id,
            &[$((stringify!($k), silta_client::i18n::Arg::from($v))),+],
        )
    };
}

mod admin_cmd;
mod audit_cmd;
mod claims_cmd;
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
mod page;
mod receive_cmd;
mod reply_cmd;
mod resend_cmd;
mod resend_daemon;
mod retention_cmd;
mod send_cmd;

use std::{path::Path, process::ExitCode};

use clap::{CommandFactory as _, FromArgMatches as _};
use silta_client::ClientConfig;

use cli::{Cli, Command};

pub(crate) use failure::{EX_DATAERR, EX_NOPERM, EX_USAGE, Failure};
pub(crate) use output::print_key_changes;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let lang = cli::lang_in_args(&args).unwrap_or_else(silta_client::i18n::Lang::from_env);
    silta_client::i18n::set_current(lang);
    let cli = match cli::localised(Cli::command(), lang)
        .try_get_matches_from(&args)
        .and_then(|m| Cli::from_arg_matches(&m))
    {
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
            // Messages may quote the relay's status text or another party's words: no control
            // characters reach the terminal (line feeds of our own multi-line messages stay).
            eprintln!(
                "{} {}",
                t!("prefix-error"),
                silta_client::text::printable(&f.message)
            );
            if let Some(h) = f.hint {
                eprintln!(
                    "{} {}",
                    t!("prefix-hint"),
                    silta_client::text::printable(&h)
                );
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
        hint: Some(t!("hint-no-configuration")),
    })
}

/// One line on stderr for each expiring (or expired) thing this installation holds: its
/// certificate and its configured CRLs ([`silta_client::expiry`]). Every command that loads the
/// configuration says it, so nobody learns of an expiry from a failure.
pub(crate) fn warn_expiry(config: &ClientConfig) {
    for w in silta_client::expiry::installation(config, std::time::SystemTime::now(), &[]) {
        eprintln!("{} {w}", t!("prefix-warning"));
    }
}

/// Runs the command. `init`, `demo` and `audit` load the configuration themselves (or need
/// none); every other command needs it first.
async fn run(cli: Cli) -> Result<(), Failure> {
    let config = || {
        let config = load_config(&cli.config)?;
        warn_expiry(&config);
        Ok::<_, Failure>(config)
    };
    match cli.command {
        init @ Command::Init { .. } => init::run(&cli.config, init).await,
        Command::Demo { keep, handover } => demo(keep, handover).await,
        Command::Audit { command } => audit_cmd::run(&cli.config, command).await,
        Command::Languages => {
            languages();
            Ok(())
        }
        Command::Keys { command } => keys_cmd::run(&config()?, command).await,
        Command::Admin { command } => admin_cmd::run(&config()?, command).await,
        Command::Daemon => daemon_cmd::run(&config()?).await,
        Command::Inbox { purpose, command } => inbox_cmd::run(&config()?, purpose, command).await,
        Command::Case { command } => inbox_cmd::case(&config()?, command).await,
        Command::Purge { dry_run, json } => retention_cmd::purge(&config()?, dry_run, json),
        Command::Reply(command) => reply_cmd::run(&config()?, command).await,
        Command::Resend { id, json } => resend_cmd::run(&config()?, &id, json).await,
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
            send_cmd::run(&config()?, args).await
        }
        Command::Receive { out, wait, purpose } => {
            receive_cmd::run(&config()?, out, wait, purpose).await
        }
    }
}

/// `silta languages`: the ISO 639 codes language fields take, with their names in the reader's
/// language.
fn languages() {
    let lang = silta_client::i18n::current();
    let rows: Vec<[String; 2]> = silta_client::i18n::LANGUAGES
        .iter()
        .map(|code| {
            [
                (*code).to_owned(),
                silta_client::i18n::tr(lang, &format!("lang-{code}"), &[]),
            ]
        })
        .collect();
    output::print_table(&[&t!("col-code"), &t!("col-language")], &rows);
}

#[cfg(feature = "demo")]
async fn demo(keep: Option<std::path::PathBuf>, handover: bool) -> Result<(), Failure> {
    demo::run(keep, handover).await
}

#[cfg(not(feature = "demo"))]
async fn demo(_keep: Option<std::path::PathBuf>, _handover: bool) -> Result<(), Failure> {
    Err(Failure::usage(
        "this silta was built without the demo (cargo feature `demo`)",
    ))
}
