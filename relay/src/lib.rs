//! The Silta relay: a mutual-TLS gRPC server that stores and forwards end-to-end encrypted
//! envelopes between reception centres and the Assistance System, and records every state
//! change as a delivery-log event. It never sees plaintext.
//!
//! # Layout
//! - [`config`]: the TOML configuration, environment overrides, validation.
//! - [`tls`]: rustls configuration, client-certificate verification, the accept loop.
//! - [`authz`]: the policy table and the layer that attaches a [`authz::Permit`] to requests.
//! - [`mailbox`]: send, subscribe, acknowledge, status.
//! - [`admin`]: the Admin service (role admin): principals, expiry, disable/enable, retiring
//!   devices; the daily expiry warnings.
//! - [`registry`]: principals seen (first/last, certificate) and disabled ones.
//! - [`revocation`]: a KEY_REVOKED event when the CRL revokes a device's certificate.
//! - [`store`]: sled trees and the group-committing writer.
//! - [`service`]: tonic services (thin).
//! - [`error`]: [`error::RelayError`] and its one mapping to gRPC codes.
//!
//! # Example
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = silta_relay::config::Config::development();
//! let relay = silta_relay::Relay::open(config)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! relay.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod admin;
pub mod audit;
pub mod authz;
pub mod backup;
pub mod cases;
pub mod clock;
pub mod config;
pub mod datadir;
pub mod directory;
pub mod disk;
pub mod error;
pub mod keyring;
pub mod log;
pub mod mailbox;
pub mod metrics;
pub mod quota;
pub mod registry;
pub mod retention;
pub mod revocation;
pub mod service;
pub mod store;
pub mod tls;

use std::{future::Future, path::PathBuf, sync::Arc, time::Duration};

use silta_certs::dev::{DEV_TRUST_DOMAIN, DevPki};
use silta_proto::pb::{
    admin_server::AdminServer, audit_log_server::AuditLogServer, directory_server::DirectoryServer,
    mailbox_server::MailboxServer,
};
use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
};
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    authz::AuthzLayer,
    config::Config,
    directory::Directory,
    mailbox::Mailbox,
    metrics::Metrics,
    registry::Registry,
    service::{AdminService, AuditLogService, DirectoryService, MailboxService},
    store::{Store, StoreError, StoreOptions},
    tls::{TlsMaterial, TlsSetupError, TlsState},
};

/// Why the relay could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The data folder is open to other users or unusable.
    #[error(transparent)]
    DataDir(#[from] datadir::DataDirError),
    /// The development PKI could not be created or refreshed.
    #[error("development PKI: {0}")]
    DevPki(#[from] silta_certs::CertsError),
    /// Certificates, keys or CRLs could not be loaded.
    #[error("TLS: {0}")]
    Tls(#[from] TlsSetupError),
    /// The database could not be opened.
    #[error("storage in {path}: {source}")]
    Store {
        /// The data folder.
        path: PathBuf,
        /// The cause.
        source: StoreError,
    },
    /// The gRPC server failed.
    #[error("server: {0}")]
    Server(String),
    /// The delivery log is older than (or differs from) what the log key signed before: a
    /// restore from an older backup. Refused unless the operator accepts it
    /// ([`StartOptions::accept_rollback`]).
    #[error(
        "{0}; refusing to start (see \"Backup and restore\" in the README; `--accept-rollback` starts anyway and records the rollback in the log)"
    )]
    Rollback(log::Rollback),
    /// The storage failed while serving (a write or flush failed, the writer hung or died, or
    /// the final flush did not finish in time); the relay stopped instead of running on a
    /// database in an unknown state. Everything it gave a receipt for is on disk.
    #[error("storage failed, relay stopped (fail-stop): {0}")]
    StorageFailed(String),
}

/// A relay whose storage and TLS configuration are ready; no port is open yet.
pub struct Relay {
    config: Config,
    tls: Arc<TlsState>,
    source: TlsSource,
    signer: Arc<log::LogSigner>,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    /// A rollback the operator accepted, recorded in the log when serving starts.
    rollback: Option<log::Rollback>,
}

/// Decisions the operator makes when starting the relay (not configuration: they hold for one
/// start).
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Start even though the log is shorter than (or differs from) what the log key signed
    /// before, and record that as a LOG_ROLLBACK event.
    pub accept_rollback: bool,
}

impl Relay {
    /// Creates the development PKI if configured, loads TLS material, opens the database.
    pub fn open(config: Config) -> Result<Relay, StartError> {
        Self::open_with(config, &StartOptions::default())
    }

    /// [`Relay::open`] with the operator's decisions for this start.
    pub fn open_with(config: Config, start: &StartOptions) -> Result<Relay, StartError> {
        Self::open_inner(config, start, Arc::new(clock::SystemClock))
    }

    /// [`Relay::open`] with the clock every calendar decision reads (acceptance times, expiry,
    /// purge, key-directory certificate expiry): a [`clock::TestClock`] in tests.
    pub fn open_with_clock(
        config: Config,
        clock: Arc<dyn clock::Clock>,
    ) -> Result<Relay, StartError> {
        Self::open_inner(config, &StartOptions::default(), clock)
    }

    fn open_inner(
        config: Config,
        start: &StartOptions,
        clock: Arc<dyn clock::Clock>,
    ) -> Result<Relay, StartError> {
        tls::install_crypto_provider();
        let data = config.storage.data_dir.clone();
        datadir::prepare(&data)?;
        let source = if config.tls.development {
            let pki = dev_pki(&data.join("dev-pki"), config.server.listen)?;
            TlsSource {
                ca: vec![pki.ca_cert],
                crls: vec![pki.crl],
                cert: pki.relay_cert,
                key: pki.relay_key,
                trust_domain: DEV_TRUST_DOMAIN.to_owned(),
                enforce_crl_expiry: true,
            }
        } else {
            let t = &config.tls;
            TlsSource {
                ca: t.ca.clone(),
                crls: t.crls.clone(),
                cert: t.cert.clone(),
                key: t.key.clone(),
                trust_domain: t.trust_domain.clone(),
                enforce_crl_expiry: t.enforce_crl_expiry,
            }
        };
        let (config_now, crls_now, dates) = source.load()?;
        let tls = Arc::new(TlsState::new(
            config_now,
            crls_now,
            source.enforce_crl_expiry,
        ));
        tls.set_certificates(dates);
        let db_path = data.join("db");
        let options = StoreOptions {
            sync: config.storage.sync,
            write_timeout: Duration::from_millis(config.storage.write_timeout_ms),
            min_free_bytes: config.storage.min_free_bytes,
            clock,
        };
        let store = Store::open_with(&db_path, &options).map_err(|source| StartError::Store {
            path: db_path.clone(),
            source,
        })?;
        if !config.storage.sync {
            tracing::warn!(
                "storage.sync = false: acknowledged messages can be lost on a crash; never run like this in production"
            );
        }
        let rollback = match log::check_high_water(&data, &store) {
            Ok(()) => None,
            Err(log::Rollback::Store(e)) => {
                return Err(StartError::Server(format!("reading the delivery log: {e}")));
            }
            Err(r) if start.accept_rollback => {
                tracing::warn!(reason = %r, "starting on a rolled-back delivery log (--accept-rollback)");
                Some(r)
            }
            Err(r) => return Err(StartError::Rollback(r)),
        };
        // A new relay records its (empty) high-water mark before anything is written: from now
        // on a log with entries and no high-water file is a rollback (see log::check_high_water),
        // even if the relay dies before the periodic write below.
        if rollback.is_none() && !data.join(log::HIGH_WATER_FILE).exists() {
            log::write_high_water(&data, &store).map_err(|e| {
                StartError::Server(format!("recording the log's high-water mark: {e}"))
            })?;
        }
        let signer = Arc::new(
            log::LogSigner::load_or_create(&data, &log::origin_for(&source.trust_domain))
                .map_err(|e| StartError::Server(e.to_string()))?,
        );
        // sled, the development PKI and older versions created their files with the umask.
        datadir::restrict(&data)?;
        Ok(Relay {
            config,
            tls,
            source,
            signer,
            store: Arc::new(store),
            metrics: Arc::new(Metrics::default()),
            rollback,
        })
    }

    /// The relay's counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The verifier key of the delivery log (C2SP note format), for auditors.
    pub fn log_verifier_key(&self) -> String {
        self.signer.verifier_key()
    }

    /// The database (for diagnostics and tests).
    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    /// Serves on `listener` until `shutdown` completes or the storage fails, then reports
    /// NOT_SERVING, stops accepting, lets in-flight requests finish and flushes the database,
    /// all within `server.shutdown_grace_ms`. A storage failure (now or during the shutdown)
    /// ends it with [`StartError::StorageFailed`].
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), StartError> {
        let cfg = &self.config;
        let local = listener.local_addr().ok();
        let audit = Arc::new(
            audit::AuditLog::new(
                self.store.clone(),
                self.signer.clone(),
                cfg.storage.shared_receipt_checkpoints,
            )
            .map_err(StartError::Server)?,
        );
        // Before anything else is written or signed: the rollback goes into the log first.
        if let Some(rollback) = &self.rollback {
            log::accept_rollback(&cfg.storage.data_dir, &self.store, rollback)
                .await
                .map_err(StartError::Server)?;
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let (conn_tx, conn_rx) = mpsc::channel(128);
        tokio::spawn(tls::accept_loop(
            listener,
            self.tls.clone(),
            self.source.trust_domain.clone(),
            cfg.handshake_timeout(),
            conn_tx,
            stop_rx.clone(),
            self.metrics.clone(),
        ));

        let registry = Arc::new(Registry::new(self.store.clone()));
        let mailbox = Arc::new(
            Mailbox::new(
                self.store.clone(),
                cfg.limits.clone(),
                stop_rx.clone(),
                audit.clone(),
                self.tls.clone(),
                Duration::from_secs(cfg.server.max_connection_age_s),
                cfg.retention.clone(),
                self.metrics.clone(),
                registry.clone(),
            )
            .map_err(|e| StartError::Server(format!("reading mailboxes: {e}")))?,
        );
        // A CaseTransfer whose withdrawal of waiting messages was cut short (see cases::withdraw).
        mailbox
            .finish_case_withdrawals()
            .await
            .map_err(|e| StartError::Server(format!("reading cases: {e}")))?;
        let admin_service = Arc::new(admin::Admin::new(
            self.store.clone(),
            self.tls.clone(),
            registry.clone(),
            mailbox.clone(),
            cfg.limits.clone(),
            cfg.retention.clone(),
            cfg.tls.expiry_warning_days,
        ));
        tokio::spawn(warn_expiring(admin_service.clone(), stop_rx.clone()));
        // A disable cut short (a crash mid-batch) finishes reporting at start.
        tokio::spawn({
            let admin = admin_service.clone();
            async move {
                match admin.resume_disabled_reports().await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(
                        messages = n,
                        "finished reporting the pending messages of disabled principals"
                    ),
                    Err(e) => {
                        tracing::error!(error = %e, "could not finish reporting the pending messages of disabled principals; disable them again to retry")
                    }
                }
            }
        });
        // Items only retired devices held, if a retirement stopped before removing them.
        tokio::spawn({
            let mailbox = mailbox.clone();
            async move {
                match mailbox.release_retired().await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(
                        items = n,
                        "removed the items only retired devices still held (a retirement cut short)"
                    ),
                    Err(e) => {
                        tracing::error!(error = %e, "could not remove the items only retired devices held; they go at retention.handled_item_days")
                    }
                }
            }
        });
        tokio::spawn(
            retention::Sweeper::new(
                self.store.clone(),
                mailbox.clone(),
                cfg.retention.clone(),
                self.metrics.clone(),
            )
            .run(stop_rx.clone()),
        );
        // Leave room for the envelope's other fields; the handler enforces the real limit with
        // a precise error.
        let max_message = usize::try_from(cfg.limits.max_ciphertext_bytes)
            .unwrap_or(usize::MAX)
            .saturating_add(1024 * 1024);
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<MailboxServer<MailboxService>>().await;
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(silta_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| StartError::Server(e.to_string()))?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(silta_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .map_err(|e| StartError::Server(e.to_string()))?;

        let router = tonic::transport::Server::builder()
            .max_connection_age(Duration::from_secs(cfg.server.max_connection_age_s))
            .layer(AuthzLayer::new(
                self.tls.clone(),
                self.metrics.clone(),
                registry,
                cfg.server.reflection,
                &cfg.limits,
                self.store.clock().clone(),
            ))
            .add_service(
                MailboxServer::new(MailboxService { mailbox })
                    .max_decoding_message_size(max_message)
                    .max_encoding_message_size(max_message),
            )
            .add_service(DirectoryServer::new(DirectoryService {
                directory: Arc::new(Directory::new(
                    self.store.clone(),
                    self.tls.clone(),
                    cfg.limits.clone(),
                )),
            }))
            .add_service(AuditLogServer::new(AuditLogService { audit }))
            .add_service(AdminServer::new(AdminService {
                admin: admin_service,
            }))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha);

        // Certificates the CRLs revoked while the relay was down; then at every reload.
        log_revocations(&self.store, &self.tls).await;
        tokio::spawn(reload_tls(
            self.source.clone(),
            self.tls.clone(),
            self.store.clone(),
            Duration::from_secs(cfg.tls.reload_interval_s),
            stop_rx.clone(),
        ));
        // Every few seconds, remember how far the log has been signed (see log::check_high_water).
        tokio::spawn({
            let store = self.store.clone();
            let data = cfg.storage.data_dir.clone();
            let mut stop = stop_rx.clone();
            async move {
                let mut last = u64::MAX;
                loop {
                    let size = store.durable_size();
                    if size != last {
                        let (s, d) = (store.clone(), data.clone());
                        match tokio::task::spawn_blocking(move || log::write_high_water(&d, &s))
                            .await
                        {
                            Ok(Ok(())) => last = size,
                            Ok(Err(e)) => {
                                tracing::error!(error = %e, "could not record the log's high-water mark")
                            }
                            Err(e) => tracing::error!(error = %e, "high-water task failed"),
                        }
                    }
                    tokio::select! {
                        () = tls::stopped(&mut stop) => return,
                        () = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
            }
        });
        // Backups on the operator's request, through a socket only the relay's user can reach.
        let admin = backup::AdminSocket::bind(&cfg.storage.data_dir)
            .map_err(|e| StartError::Server(format!("admin socket: {e}")))?;
        tokio::spawn(admin.serve(
            self.store.clone(),
            self.signer.clone(),
            Duration::from_millis(cfg.storage.write_timeout_ms) / 2,
            stop_rx.clone(),
        ));
        tracing::info!(listen = ?local, trust_domain = %self.source.trust_domain, "relay serving");
        let mut stopped = stop_rx.clone();
        let serve = router.serve_with_incoming_shutdown(ReceiverStream::new(conn_rx), async move {
            let _ = stopped.wait_for(|s| *s).await;
        });
        tokio::pin!(serve);
        let grace = Duration::from_millis(cfg.server.shutdown_grace_ms);
        // What ends serving: the shutdown signal, or the storage failing (fail-stop: a database
        // in an unknown state must not take more writes, and a load balancer must see it).
        let failure = self.store.failure();
        let stop = async {
            tokio::select! {
                () = shutdown => None,
                reason = store_failed(failure) => Some(reason),
            }
        };
        let mut result = Ok(());
        let mut serving = true;
        tokio::select! {
            r = &mut serve => {
                serving = false;
                result = r.map_err(|e| StartError::Server(e.to_string()));
            }
            why = stop => match why {
                None => tracing::info!("shutting down: no new connections; finishing in-flight requests"),
                Some(reason) => tracing::error!(%reason, "storage failed: NOT_SERVING, stopping"),
            },
        }
        health
            .set_not_serving::<MailboxServer<MailboxService>>()
            .await;
        health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        let _ = stop_tx.send(true);
        // Everything below ends within the grace period, whatever the storage does: in-flight
        // requests get it less a reserve for the final flush, which gets the rest.
        let deadline = tokio::time::Instant::now() + grace;
        let reserve = Duration::from_millis(cfg.storage.write_timeout_ms).min(grace / 2);
        if serving
            && tokio::time::timeout_at(deadline - reserve, &mut serve)
                .await
                .is_err()
        {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
        // Let in-flight writes complete and reach the disk. On a blocking thread with a deadline:
        // a writer hung in sled must not keep the relay from stopping (the binary leaves the
        // runtime without waiting for that thread).
        let store = self.store.clone();
        let data = cfg.storage.data_dir.clone();
        let flush = tokio::task::spawn_blocking(move || {
            store.close()?;
            if let Err(e) = log::write_high_water(&data, &store) {
                tracing::error!(error = %e, "could not record the log's high-water mark");
            }
            Ok::<(), StoreError>(())
        });
        let until = deadline.max(tokio::time::Instant::now() + MIN_FINAL_FLUSH);
        match tokio::time::timeout_at(until, flush).await {
            Ok(Ok(Ok(()))) => tracing::info!("relay stopped; database flushed"),
            // The store has recorded why.
            Ok(Ok(Err(_))) => {}
            Ok(Err(e)) => self.store.fail(format!("the final flush panicked: {e}")),
            Err(_) => self
                .store
                .fail("the final flush did not finish within server.shutdown_grace_ms".to_owned()),
        }
        let failed = self.store.failure().borrow().clone();
        if let Some(reason) = failed {
            tracing::error!(%reason, "relay stopped after a storage failure; every receipted message is on disk");
            return Err(StartError::StorageFailed(reason.to_string()));
        }
        result
    }
}

/// Warns in the log about certificates and CRLs that expire within `tls.expiry_warning_days`:
/// at start, then whenever a day has passed by the relay's clock (looked at every minute, so a
/// test clock moved forward is noticed too).
async fn warn_expiring(admin: Arc<admin::Admin>, mut stop: watch::Receiver<bool>) {
    let clock = admin.clock();
    let mut last: Option<i64> = None;
    loop {
        let now = clock.unix_seconds();
        if last.is_none_or(|l| now.saturating_sub(l) >= 86_400) {
            match admin.warn_expiring() {
                Ok(n) => {
                    last = Some(now);
                    tracing::debug!(items = n, "expiry check");
                }
                Err(e) => tracing::error!(error = %e, "expiry check failed; retrying in a minute"),
            }
        }
        tokio::select! {
            () = tls::stopped(&mut stop) => return,
            () = tokio::time::sleep(EXPIRY_CHECK_EVERY) => {}
        }
    }
}

/// How often the expiry warner looks at the clock.
const EXPIRY_CHECK_EVERY: Duration = Duration::from_secs(60);

/// Completes when the store fails, with the reason.
async fn store_failed(mut failure: watch::Receiver<Option<Arc<str>>>) -> Arc<str> {
    loop {
        let reason = failure.borrow_and_update().clone();
        if let Some(reason) = reason {
            return reason;
        }
        if failure.changed().await.is_err() {
            // The store (the sender) outlives the server; never taken.
            std::future::pending::<()>().await;
        }
    }
}

/// The final flush gets at least this long, even with a (nearly) zero grace period.
const MIN_FINAL_FLUSH: Duration = Duration::from_millis(100);

/// Creates the development PKI on first start and refreshes its CRL on every start (the CRL is
/// enforced with its expiry, and nobody else signs one in development mode).
fn dev_pki(dir: &std::path::Path, listen: std::net::SocketAddr) -> Result<DevPki, StartError> {
    let pki = DevPki::at(dir);
    if !pki.exists() {
        DevPki::create(dir)?;
        tracing::warn!(dir = %dir.display(), "created a DEVELOPMENT PKI; its CA key lives next to the data");
    }
    silta_certs::store::CaDir::open(&dir.join("ca"))?.write_crl()?;
    // Ready-made `silta` client configurations for the demo principals, so a newcomer can try
    // sending at once: `silta --config <dir>/centre-demo-centre.toml keys init`.
    let port = listen.port();
    for p in [
        silta_certs::dev::DEV_CENTRE,
        silta_certs::dev::DEV_ASSISTANCE,
        silta_certs::dev::DEV_AUDITOR,
    ] {
        let stem = p.replace('/', "-");
        let path = dir.join(format!("{stem}.toml"));
        if !path.exists() {
            let text = format!(
                "# silta client configuration for the development principal {p}.\n\
                 relay = \"localhost:{port}\"\nca = \"ca/ca.pem\"\ncert = \"{stem}.pem\"\nkey = \"{stem}.key\"\n\
                 state_dir = \"{stem}-state\"\n"
            );
            std::fs::write(&path, text)
                .map_err(|e| StartError::Server(format!("{}: {e}", path.display())))?;
        }
    }
    const BANNER: &str = "\n\
        ************************************************************************\n\
        *  DEVELOPMENT MODE: this relay uses a self-made development PKI.      *\n\
        *  Anyone with access to the data folder can mint identities.         *\n\
        *  Never use it for real referrals. Configure [tls] for production.    *\n\
        ************************************************************************";
    tracing::warn!("development mode: development PKI in use; not for real referrals");
    eprintln!("{BANNER}\n  client certificates: {}\n", dir.display());
    Ok(pki)
}

/// Where the TLS material comes from, so it can be read again when it changes.
#[derive(Clone, Debug)]
struct TlsSource {
    ca: Vec<PathBuf>,
    crls: Vec<PathBuf>,
    cert: PathBuf,
    key: PathBuf,
    trust_domain: String,
    enforce_crl_expiry: bool,
}

/// A loaded TLS configuration: the server config, its CRLs (DER), and when the CA and relay
/// certificates run out.
type Loaded = (
    Arc<rustls::ServerConfig>,
    Vec<Vec<u8>>,
    Vec<tls::MaterialDate>,
);

/// What identifies a version of a file: modification time, size, inode.
type FileStamp = Option<(std::time::SystemTime, u64, u64)>;

impl TlsSource {
    fn load(&self) -> Result<Loaded, StartError> {
        let material = TlsMaterial::load(
            &self.ca,
            &self.crls,
            &self.cert,
            &self.key,
            &self.trust_domain,
            self.enforce_crl_expiry,
        )?;
        let crls = material.crl_ders();
        let dates = material.certificate_dates();
        Ok((material.server_config()?, crls, dates))
    }

    fn stamps(&self) -> Vec<FileStamp> {
        use std::os::unix::fs::MetadataExt as _;
        self.ca
            .iter()
            .chain(&self.crls)
            .chain([&self.cert, &self.key])
            .map(|p| {
                let m = std::fs::metadata(p).ok()?;
                Some((m.modified().ok()?, m.len(), m.ino()))
            })
            .collect()
    }
}

/// Re-reads CAs, CRLs, certificate and key whenever one of the files changes, so a new CRL takes
/// effect for new connections without a restart. A set that fails to load is logged and the
/// one in force is kept (fail closed: the old CRL stays, nothing is dropped).
async fn reload_tls(
    source: TlsSource,
    state: Arc<TlsState>,
    store: Arc<Store>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut seen = source.stamps();
    loop {
        tokio::select! {
            () = tls::stopped(&mut stop) => return,
            () = tokio::time::sleep(every) => {}
        }
        let now = source.stamps();
        if now == seen {
            continue;
        }
        match source.load() {
            Ok((config, crls, dates)) => {
                state.replace(config, crls);
                state.set_certificates(dates);
                seen = now;
                tracing::info!(
                    "TLS material changed on disk; reloaded (new CRLs apply to new connections)"
                );
                log_revocations(&store, &state).await;
            }
            Err(e) => {
                // Keep retrying on the next tick; the configuration in force stays.
                tracing::error!(error = %e, "TLS material changed but could not be loaded; keeping the previous one");
            }
        }
    }
}

/// KEY_REVOKED events for devices whose certificates the CRLs in force newly revoke (see
/// [`revocation`]). A failure is logged; the next reload or start tries again.
async fn log_revocations(store: &Store, tls: &TlsState) {
    if let Err(e) = revocation::log_revoked_devices(store, tls).await {
        tracing::error!(error = %e, "could not log the CRL's revocations of device certificates; retried at the next reload");
    }
}
