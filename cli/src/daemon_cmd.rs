//! `silta daemon`: the centre daemon until SIGTERM or Ctrl-C.

use silta_client::{
    ClientConfig,
    daemon::{Daemon, DaemonError},
};

use crate::Failure;

pub(crate) async fn run(config: &ClientConfig) -> Result<(), Failure> {
    let daemon = Daemon::open(config).map_err(|e| match e {
        DaemonError::Client(c) => Failure::from(c),
        other => Failure::failed(other.to_string()),
    })?;
    let f = daemon.folders();
    eprintln!(
        "silta daemon: outbox {}, inbox {} (stop with Ctrl-C or SIGTERM)",
        f.outbox.display(),
        f.inbox.display()
    );
    daemon
        .run(shutdown_signal())
        .await
        .map_err(|e| Failure::failed(e.to_string()))
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
