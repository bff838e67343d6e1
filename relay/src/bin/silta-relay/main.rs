//! `silta-relay`: parse the command line and configuration, set up logging, bind, serve until
//! SIGTERM or Ctrl-C.
//!
//! Exit codes: 0 stopped cleanly; 64 the configuration is invalid (EX_USAGE), including a data
//! folder that other users can access; 65 the delivery log was rolled back (restored from an
//! older backup: start with --accept-rollback) or, for `restore`, the backup is damaged
//! (EX_DATAERR); 74 the storage failed while serving and the relay stopped (fail-stop, EX_IOERR),
//! or a backup or restore could not be written; 1 any other failure (certificates, opening the
//! storage, port in use, the data folder in use by another silta-relay process).

mod backup_cmd;
mod cli;

use std::process::ExitCode;

use clap::Parser as _;
use silta_relay::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const EX_USAGE: u8 = 64;
const EX_DATAERR: u8 = 65;
const EX_IOERR: u8 = 74;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("hint: every key is documented in relay/silta-relay.example.toml");
            return ExitCode::from(EX_USAGE);
        }
    };
    match cli.command.unwrap_or(Command::Serve {
        accept_rollback: false,
    }) {
        Command::Backup { dir } => {
            init_tracing(&config);
            backup_cmd::backup(&config, &dir)
        }
        Command::Restore { from } => {
            init_tracing(&config);
            backup_cmd::restore(&config, &from)
        }
        Command::LogKey { step: Some(step) } => {
            init_tracing(&config);
            log_key_step(&config, step)
        }
        Command::LogKey { step: None } => match log_key(&config) {
            Ok(keys) => {
                for key in keys {
                    println!("{key}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                exit_code(&*e)
            }
        },
        Command::CheckConfig => {
            println!("configuration is valid\n{config:#?}");
            ExitCode::SUCCESS
        }
        Command::Serve { accept_rollback } => {
            init_tracing(&config);
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let start = silta_relay::StartOptions { accept_rollback };
            let data = config.storage.data_dir.clone();
            let db = data.join("db");
            // Held until the recovery snapshot is written: no restore, offline backup or
            // second relay can use the folder meanwhile.
            let lock = match silta_relay::datadir::prepare(&data)
                .and_then(|()| silta_relay::datadir::lock(&data))
            {
                Ok(lock) => lock,
                Err(e) => {
                    tracing::error!(error = %e, "relay failed");
                    eprintln!("error: {e}");
                    return exit_code(&e);
                }
            };
            let result = runtime.block_on(serve(config, start));
            // A storage writer hung in sled may still hold a blocking thread; dropping the
            // runtime would wait for it for ever. `serve` has finished everything that matters
            // (everything receipted is on disk), so nothing is left to wait for.
            runtime.shutdown_background();
            match result {
                Ok(()) => {
                    if lock.still_in(&data) {
                        refresh_snapshot(&db);
                    } else {
                        tracing::warn!(
                            "the data folder was moved or replaced while the relay ran; no recovery snapshot written (the next start replays this run's writes)"
                        );
                    }
                    drop(lock);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    tracing::error!(error = %e, "relay failed");
                    eprintln!("error: {e}");
                    if matches!(
                        e.downcast_ref::<silta_relay::StartError>(),
                        Some(silta_relay::StartError::StorageFailed(_))
                    ) {
                        eprintln!(
                            "hint: nothing the relay gave a receipt for is lost; check the disk of storage.data_dir (free space, errors), then start the relay again"
                        );
                        return ExitCode::from(EX_IOERR);
                    }
                    if matches!(
                        e.downcast_ref::<silta_relay::StartError>(),
                        Some(silta_relay::StartError::Rollback(_))
                    ) {
                        eprintln!(
                            "hint: if you restored a backup on purpose, read \"Backup and restore\" in the README, then start once with `silta-relay serve --accept-rollback`; otherwise restore the newest data"
                        );
                        return ExitCode::from(EX_DATAERR);
                    }
                    exit_code(&*e)
                }
            }
        }
    }
}

/// After a clean stop, lets sled write a recovery snapshot covering the whole database, so the
/// next start does not replay everything written during this run (see
/// `silta_relay::store::refresh_recovery_snapshot`). Everything is already on disk: if this
/// fails or is cut short, the next start only takes longer. The runtime's tasks may still be
/// letting go of the database for a moment, hence the bounded retries.
fn refresh_snapshot(db: &std::path::Path) {
    let started = std::time::Instant::now();
    for attempt in 0..20 {
        match silta_relay::store::refresh_recovery_snapshot(db) {
            Ok(()) => {
                tracing::info!(
                    ms = started.elapsed().as_millis() as u64,
                    "recovery snapshot written; the next start reads it instead of replaying the log"
                );
                return;
            }
            Err(e) if attempt < 19 && e.to_string().contains("could not acquire lock") => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not write a recovery snapshot; the next start replays this run's writes");
                return;
            }
        }
    }
}

/// 64 for a failure the operator fixes in the configuration or its folders, 1 for any other.
fn exit_code(e: &(dyn std::error::Error + 'static)) -> ExitCode {
    use silta_relay::{StartError, datadir::DataDirError};
    let open_folder = |d: &DataDirError| matches!(d, DataDirError::OpenToOthers { .. });
    let usage = match (
        e.downcast_ref::<StartError>(),
        e.downcast_ref::<DataDirError>(),
    ) {
        (Some(StartError::DataDir(d)), _) | (_, Some(d)) => open_folder(d),
        _ => false,
    };
    if usage {
        ExitCode::from(EX_USAGE)
    } else {
        ExitCode::FAILURE
    }
}

/// The log's origin for this configuration.
pub(crate) fn origin(config: &Config) -> String {
    let trust_domain = if config.tls.development {
        silta_certs::dev::DEV_TRUST_DOMAIN
    } else {
        &config.tls.trust_domain
    };
    silta_relay::log::origin_for(trust_domain)
}

/// The verifier keys of the delivery log in the configured data folder (two during a rotation,
/// the current one first).
fn log_key(config: &Config) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let data = &config.storage.data_dir;
    silta_relay::datadir::prepare(data)?;
    let signer = silta_relay::log::LogSigner::load_or_create(data, &origin(config))?;
    Ok(signer.verifier_keys())
}

/// `log-key rotate` / `log-key finish` on a stopped relay's data folder.
fn log_key_step(config: &Config, step: cli::LogKeyStep) -> ExitCode {
    let data = &config.storage.data_dir;
    let run = async {
        // Before anything is created in the folder.
        silta_relay::log::require_current_key(data).map_err(|e| e.to_string())?;
        silta_relay::datadir::prepare(data).map_err(|e| e.to_string())?;
        let _lock = silta_relay::datadir::lock(data).map_err(|e| e.to_string())?;
        let store = silta_relay::store::Store::open(&data.join("db"), true).map_err(|e| {
            format!("cannot open the database in {} ({e}); the relay must be stopped to change its log key", data.display())
        })?;
        let origin = origin(config);
        let result = match step {
            cli::LogKeyStep::Rotate => silta_relay::log::rotate(data, &origin, &store).await,
            cli::LogKeyStep::Finish => silta_relay::log::finish(data, &origin, &store).await,
        };
        let closed = store.close();
        let rotation = result.map_err(|e| e.to_string())?;
        closed.map_err(|e| e.to_string())?;
        Ok::<_, String>(rotation)
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run) {
        Ok(r) => {
            match step {
                cli::LogKeyStep::Rotate => println!(
                    "log key rotation started (log index {}): from the next start checkpoints are signed by both keys\ncurrent: {}\nnext:    {}\nnext: give auditors the next key to add beside the current one; once all have it, stop the relay and run `silta-relay log-key finish`",
                    r.log_index, r.old, r.new
                ),
                cli::LogKeyStep::Finish => println!(
                    "log key rotation finished (log index {}): from the next start checkpoints are signed by the new key only\nnew:     {}\nretired: {}\nnext: auditors may remove the retired key from their configuration",
                    r.log_index, r.new, r.old
                ),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    config: Config,
    start: silta_relay::StartOptions,
) -> Result<(), Box<dyn std::error::Error>> {
    let listen = config.server.listen;
    let relay = silta_relay::Relay::open_with(config, &start)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    // Tests and scripts start us on port 0 and read the real address from here.
    println!("silta-relay listening on {}", listener.local_addr()?);
    relay.serve(listener, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; only Ctrl-C will stop the relay");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received"),
    }
}

fn init_tracing(config: &Config) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.level));
    // Colour codes only for a person at a terminal, never into journald, a file or a pipe.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}
