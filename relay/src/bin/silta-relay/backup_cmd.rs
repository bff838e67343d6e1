//! `silta-relay backup` and `silta-relay restore`: adapters over `silta_relay::backup` that
//! print the outcome and pick the exit code.

use std::{path::Path, process::ExitCode, time::Duration};

use silta_relay::{
    backup::{self, BackupError, Reply, RestoreError},
    config::Config,
};

use crate::{EX_DATAERR, EX_IOERR, EX_USAGE};

/// Asks the running relay for a backup into `dir`; backs up directly if none is running.
pub(crate) fn backup(config: &Config, dir: &Path) -> ExitCode {
    let target = match std::path::absolute(dir) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", dir.display());
            return ExitCode::from(EX_USAGE);
        }
    };
    let socket = config.storage.data_dir.join(backup::SOCKET);
    match backup::request(&socket, &target, backup::REQUEST_TIMEOUT) {
        Ok(Reply::Done(summary)) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Ok(Reply::Refused(why)) => {
            eprintln!("error: {why}");
            ExitCode::from(EX_USAGE)
        }
        Ok(Reply::Failed(why)) => {
            eprintln!("error: {why}");
            eprintln!(
                "hint: nothing was left in {}; the relay carries on",
                target.display()
            );
            ExitCode::from(EX_IOERR)
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            // No relay is running on this data folder: read the database directly.
            stopped(config, &target)
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            eprintln!(
                "error: the relay at {} did not answer within {} s; it may still be writing the backup (check {} and the relay's log)",
                socket.display(),
                backup::REQUEST_TIMEOUT.as_secs(),
                target.display()
            );
            ExitCode::from(EX_IOERR)
        }
        Err(e) => {
            eprintln!("error: asking the relay at {}: {e}", socket.display());
            ExitCode::from(EX_IOERR)
        }
    }
}

fn stopped(config: &Config, target: &Path) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(backup::backup_stopped(
        &config.storage.data_dir,
        &crate::origin(config),
        target,
        Duration::from_millis(config.storage.write_timeout_ms),
    ));
    match result {
        Ok(m) => {
            println!("{} (relay stopped)", backup::summary(target, &m));
            ExitCode::SUCCESS
        }
        Err(e @ (BackupError::Target(_) | BackupError::Busy)) => {
            eprintln!("error: {e}");
            ExitCode::from(EX_USAGE)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EX_IOERR)
        }
    }
}

/// Rebuilds the configured data folder's database from the backup in `from`.
pub(crate) fn restore(config: &Config, from: &Path) -> ExitCode {
    let data = &config.storage.data_dir;
    match backup::restore(from, data, &crate::origin(config)) {
        Ok(m) => {
            println!(
                "restored {} log entries (root {}, verified against the backup's signed checkpoint) into {}",
                m.log_size,
                m.log_root,
                data.join("db").display()
            );
            println!(
                "next: start the relay once with --accept-rollback, which records the restore in the delivery log (without it the relay refuses to start, exit 65)"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(match e {
                RestoreError::Target(_) => EX_USAGE,
                RestoreError::Damaged(_) => EX_DATAERR,
                _ => EX_IOERR,
            })
        }
    }
}
