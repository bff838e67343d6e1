//! Relay configuration: one TOML file, environment overrides, validated before anything is opened.
//!
//! Every key, its default and its meaning are in `relay/silta-relay.example.toml`. An environment
//! variable `SILTA_RELAY__<SECTION>__<KEY>` overrides the key `<section>.<key>` (value in TOML
//! syntax, or a bare string), e.g. `SILTA_RELAY__LIMITS__MAX_RECIPIENTS=4`.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "SILTA_RELAY__";

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Network and API.
    pub server: ServerConfig,
    /// Where and how data is stored.
    pub storage: StorageConfig,
    /// Certificates, CAs and CRLs.
    pub tls: TlsConfig,
    /// Limits on what one request or one principal may use.
    pub limits: LimitsConfig,
    /// Logging.
    pub log: LogConfig,
    /// How long messages are kept: expiry, purge, metadata.
    pub retention: RetentionConfig,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// How long a TLS handshake may take before the connection is dropped.
    pub handshake_timeout_ms: u64,
    /// After a shutdown signal, how long in-flight requests get to finish.
    pub shutdown_grace_ms: u64,
    /// Serve gRPC server reflection (v1 and v1alpha) to authenticated clients.
    pub reflection: bool,
    /// Close connections older than this, so revocations reach long-lived connections.
    pub max_connection_age_s: u64,
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Folder of the database (and of the development PKI in development mode).
    pub data_dir: PathBuf,
    /// Flush to disk before answering a write. `false` loses acknowledged messages on a crash:
    /// only for measuring what durability costs.
    pub sync: bool,
    /// Sends are refused (`RESOURCE_EXHAUSTED`) when the data folder's filesystem would have less
    /// than this many bytes free after them; 0 turns the check off.
    pub min_free_bytes: u64,
    /// A write not on disk within this many milliseconds stops the relay (fail-stop).
    pub write_timeout_ms: u64,
    /// Receipts of one write batch share one signed checkpoint of the log as the batch left it
    /// (`true`), or each gets a checkpoint of exactly its index + 1 entries (`false`: what
    /// clients before shared checkpoints accept; slower).
    pub shared_receipt_checkpoints: bool,
}

/// `[tls]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Create and use a development PKI under `<data_dir>/dev-pki`. Never in production.
    pub development: bool,
    /// Trust domain of client identities (`spiffe://<trust_domain>/<role>/<id>`).
    pub trust_domain: String,
    /// PEM files with the CA certificates that issue client certificates.
    pub ca: Vec<PathBuf>,
    /// PEM files with the CRLs of those CAs. At least one: revocation is always checked.
    pub crls: Vec<PathBuf>,
    /// The relay's certificate chain (PEM).
    pub cert: PathBuf,
    /// The relay's private key (PEM, PKCS#8).
    pub key: PathBuf,
    /// Refuse every client once a CRL is past its nextUpdate (so a stale CRL cannot hide a
    /// revocation).
    pub enforce_crl_expiry: bool,
    /// How often (seconds) to look for changed CA, CRL, certificate or key files and reload them.
    pub reload_interval_s: u64,
    /// Warn in the log (at start and daily) about certificates and CRLs that expire within this
    /// many days: principals' certificates seen at handshake, the relay's own, the CAs, the
    /// CRLs' nextUpdate. Also the default window of the Admin service's `Expiring`.
    pub expiry_warning_days: u32,
}

/// `[limits]`: what one request and one principal may use, so that no participant can take
/// the relay or another participant's mailbox from the others.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest ciphertext accepted in one envelope, in bytes.
    pub max_ciphertext_bytes: u64,
    /// Most recipients of one message.
    pub max_recipients: u32,
    /// Most unacknowledged messages waiting in one mailbox.
    pub max_pending_items: u64,
    /// Most unacknowledged messages from one sender waiting in one recipient's mailbox, so one
    /// sender cannot fill a mailbox that every other sender needs too.
    pub max_pending_per_sender: u64,
    /// Ciphertext bytes per second one principal may send (token bucket; a burst of one
    /// largest envelope is always allowed), so that no sender can fill the disk or the
    /// writer's queue for everyone.
    pub send_bytes_per_second: u64,
    /// Requests per second one principal may make (token bucket, refilled continuously).
    pub requests_per_second: u32,
    /// How many requests one principal may make at once before the rate applies.
    pub request_burst: u32,
    /// Audit-log reads (Query and Entries pages) one principal may make per minute; each is
    /// itself an event in the log, which never shrinks.
    pub audit_queries_per_minute: u32,
    /// Most open Subscribe streams of one principal (one per desk or daemon, and a few spare).
    pub max_subscriptions_per_principal: u32,
    /// Most devices with published keys per principal.
    pub max_devices_per_principal: u32,
    /// Most key bundles one device may publish (its key history is kept for ever).
    pub max_bundles_per_device: u32,
    /// SEND_REFUSED events one sender may cause per hour across all cases (token bucket, in
    /// memory); refusals beyond it are answered the same but not logged (metric
    /// `refusals_unlogged`), so a centre that left many cases cannot grow the log without bound.
    pub refusal_events_per_hour: u32,
}

/// `[retention]`: storage limitation. A recipient's copy not acknowledged (or rejected) in time
/// expires; a message's ciphertext is purged once every copy is final, and in any case at
/// `max_age_s`; what the relay keeps of it afterwards (metadata for status queries and retries)
/// goes `keep_metadata_s` later. The delivery log's events are never removed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// A copy not acknowledged or rejected within this many seconds of acceptance expires.
    pub expire_after_s: u64,
    /// The same for urgent and emergency messages (at most `expire_after_s`).
    pub urgent_expire_after_s: u64,
    /// An urgent or emergency message with a copy still open this many seconds after
    /// acceptance raises an alert in the relay's log and metrics (less than
    /// `urgent_expire_after_s`).
    pub urgent_alert_after_s: u64,
    /// Once every copy is acknowledged, rejected or expired, the ciphertext is purged this many
    /// seconds after the last of them.
    pub purge_after_final_s: u64,
    /// Every ciphertext is purged at the latest this many seconds after acceptance.
    pub max_age_s: u64,
    /// After the purge, the message's metadata (envelope fields without ciphertext, per-recipient
    /// states) stays this many seconds for status queries and idempotent retries, then goes.
    pub keep_metadata_s: u64,
    /// A mailbox item some device of the principal is done with (an envelope another desk
    /// acknowledged or rejected, a status item a desk confirmed) stays for the principal's other
    /// devices at most this many days, so a desk that never comes back cannot hold items (and
    /// the message's ciphertext) for ever. 1..=3650.
    pub handled_item_days: u32,
    /// How often the sweeper looks for due messages, in milliseconds.
    pub sweep_interval_ms: u64,
    /// Most messages the sweeper handles per round (each in its own small write).
    pub sweep_batch: u32,
}

impl RetentionConfig {
    /// `handled_item_days` in seconds.
    pub fn handled_hold_s(&self) -> i64 {
        i64::from(self.handled_item_days) * 86_400
    }

    /// `expire_after_s` or `urgent_expire_after_s`, by urgency.
    pub fn expire_after(&self, urgency: i32) -> u64 {
        if is_urgent(urgency) {
            self.urgent_expire_after_s
        } else {
            self.expire_after_s
        }
    }
}

/// Urgent or emergency.
pub fn is_urgent(urgency: i32) -> bool {
    urgency == silta_proto::pb::Urgency::Urgent as i32
        || urgency == silta_proto::pb::Urgency::Emergency as i32
}

impl Default for RetentionConfig {
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        RetentionConfig {
            expire_after_s: 5 * DAY,
            urgent_expire_after_s: DAY,
            urgent_alert_after_s: 4 * 3600,
            purge_after_final_s: 3600,
            max_age_s: 30 * DAY,
            keep_metadata_s: 30 * DAY,
            handled_item_days: 14,
            sweep_interval_ms: 60_000,
            sweep_batch: 256,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `silta_relay=debug,info`; `RUST_LOG` overrides it.
    pub level: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7443)),
            handshake_timeout_ms: 5_000,
            shutdown_grace_ms: 10_000,
            reflection: true,
            max_connection_age_s: 3600,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from("./silta-data"),
            sync: true,
            min_free_bytes: 256 * 1024 * 1024,
            write_timeout_ms: 30_000,
            shared_receipt_checkpoints: true,
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            development: false,
            trust_domain: String::new(),
            ca: Vec::new(),
            crls: Vec::new(),
            cert: PathBuf::new(),
            key: PathBuf::new(),
            enforce_crl_expiry: true,
            reload_interval_s: 30,
            expiry_warning_days: 30,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_ciphertext_bytes: 8 * 1024 * 1024,
            max_recipients: 16,
            max_pending_items: 10_000,
            max_pending_per_sender: 1_000,
            send_bytes_per_second: 16 * 1024 * 1024,
            requests_per_second: 100,
            request_burst: 200,
            audit_queries_per_minute: 60,
            max_subscriptions_per_principal: 16,
            max_devices_per_principal: 32,
            max_bundles_per_device: 100,
            refusal_events_per_hour: 60,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("configuration file {path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A key has a value of the wrong type, or is unknown.
    #[error("configuration key `{key}`: {message}")]
    Key {
        /// Dotted key path, e.g. `limits.max_recipients`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    fn key(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Key {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

impl Config {
    /// The embedded default: development mode on 127.0.0.1:7443 from `./silta-data`.
    pub fn development() -> Self {
        let mut c = Config::default();
        c.tls.development = true;
        c
    }

    /// Reads `path` (or the embedded default if `None`), applies the environment, validates.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let (text, origin) = match path {
            Some(p) => (
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_owned(),
                    source,
                })?,
                p.to_owned(),
            ),
            // No file: development mode, as if the file said only that.
            None => (
                "[tls]\ndevelopment = true\n".to_owned(),
                PathBuf::from("<embedded default>"),
            ),
        };
        Self::parse(&text, &origin, env)
    }

    /// Parses TOML text, applies environment overrides (`SILTA_RELAY__SECTION__KEY`), validates.
    pub fn parse(
        text: &str,
        origin: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    path: origin.to_owned(),
                    message: e.to_string(),
                })?;
        for (name, raw) in env {
            let Some(path) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let keys: Vec<String> = path.split("__").map(|k| k.to_ascii_lowercase()).collect();
            let dotted = keys.join(".");
            if keys.len() != 2 || keys.iter().any(String::is_empty) {
                return Err(ConfigError::key(
                    &dotted,
                    format!("environment variable {name} must name <section>__<key>"),
                ));
            }
            let value = parse_env_value(&raw);
            let section = table
                .entry(keys[0].clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match section {
                toml::Value::Table(t) => {
                    t.insert(keys[1].clone(), value);
                }
                _ => return Err(ConfigError::key(&keys[0], "must be a table")),
            }
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                let message = e.into_inner().message().to_owned();
                ConfigError::key(if key == "." { "(top level)" } else { &key }, message)
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that are well-typed but wrong. Opens no file.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        if s.handshake_timeout_ms == 0 || s.handshake_timeout_ms > 120_000 {
            return Err(ConfigError::key(
                "server.handshake_timeout_ms",
                "must be 1..=120000",
            ));
        }
        if s.shutdown_grace_ms > 600_000 {
            return Err(ConfigError::key(
                "server.shutdown_grace_ms",
                "must be at most 600000",
            ));
        }
        if s.max_connection_age_s == 0 || s.max_connection_age_s > 30 * 24 * 3600 {
            return Err(ConfigError::key(
                "server.max_connection_age_s",
                "must be 1..=2592000 (30 days)",
            ));
        }
        if self.storage.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::key("storage.data_dir", "must not be empty"));
        }
        if !(100..=600_000).contains(&self.storage.write_timeout_ms) {
            return Err(ConfigError::key(
                "storage.write_timeout_ms",
                "must be 100..=600000",
            ));
        }
        let l = &self.limits;
        if l.max_ciphertext_bytes == 0 || l.max_ciphertext_bytes > 256 * 1024 * 1024 {
            return Err(ConfigError::key(
                "limits.max_ciphertext_bytes",
                "must be 1..=268435456",
            ));
        }
        if l.max_recipients == 0 || l.max_recipients > 1000 {
            return Err(ConfigError::key(
                "limits.max_recipients",
                "must be 1..=1000",
            ));
        }
        for (key, value) in [
            ("limits.max_pending_items", l.max_pending_items),
            ("limits.max_pending_per_sender", l.max_pending_per_sender),
            ("limits.send_bytes_per_second", l.send_bytes_per_second),
            ("limits.requests_per_second", l.requests_per_second.into()),
            ("limits.request_burst", l.request_burst.into()),
            (
                "limits.audit_queries_per_minute",
                l.audit_queries_per_minute.into(),
            ),
            (
                "limits.max_subscriptions_per_principal",
                l.max_subscriptions_per_principal.into(),
            ),
            (
                "limits.max_devices_per_principal",
                l.max_devices_per_principal.into(),
            ),
            (
                "limits.max_bundles_per_device",
                l.max_bundles_per_device.into(),
            ),
            (
                "limits.refusal_events_per_hour",
                l.refusal_events_per_hour.into(),
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::key(key, "must be at least 1"));
            }
        }
        // Every active bundle (16 KiB at most) goes into one GetKeys answer, which must stay
        // within what clients accept.
        if l.max_devices_per_principal > 200 {
            return Err(ConfigError::key(
                "limits.max_devices_per_principal",
                "must be 1..=200 (all active bundles fit one directory answer)",
            ));
        }
        let r = &self.retention;
        if r.expire_after_s == 0 || r.expire_after_s > r.max_age_s {
            return Err(ConfigError::key(
                "retention.expire_after_s",
                "must be 1..=retention.max_age_s",
            ));
        }
        if r.urgent_expire_after_s == 0 || r.urgent_expire_after_s > r.expire_after_s {
            return Err(ConfigError::key(
                "retention.urgent_expire_after_s",
                "must be 1..=retention.expire_after_s",
            ));
        }
        if r.urgent_alert_after_s == 0 || r.urgent_alert_after_s >= r.urgent_expire_after_s {
            return Err(ConfigError::key(
                "retention.urgent_alert_after_s",
                "must be at least 1 and less than retention.urgent_expire_after_s (an alert after expiry comes too late)",
            ));
        }
        if r.max_age_s > 10 * 365 * 24 * 3600 {
            return Err(ConfigError::key(
                "retention.max_age_s",
                "must be at most 315360000 (10 years)",
            ));
        }
        if r.purge_after_final_s > r.max_age_s {
            return Err(ConfigError::key(
                "retention.purge_after_final_s",
                "must be at most retention.max_age_s",
            ));
        }
        if r.keep_metadata_s > 10 * 365 * 24 * 3600 {
            return Err(ConfigError::key(
                "retention.keep_metadata_s",
                "must be at most 315360000 (10 years)",
            ));
        }
        if !(1..=3650).contains(&r.handled_item_days) {
            return Err(ConfigError::key(
                "retention.handled_item_days",
                "must be 1..=3650",
            ));
        }
        if !(10..=3_600_000).contains(&r.sweep_interval_ms) {
            return Err(ConfigError::key(
                "retention.sweep_interval_ms",
                "must be 10..=3600000",
            ));
        }
        if !(1..=10_000).contains(&r.sweep_batch) {
            return Err(ConfigError::key(
                "retention.sweep_batch",
                "must be 1..=10000",
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(ConfigError::key(
                "log.level",
                format!("{:?} is not a valid filter", self.log.level),
            ));
        }
        let t = &self.tls;
        if t.reload_interval_s == 0 || t.reload_interval_s > 3600 {
            return Err(ConfigError::key(
                "tls.reload_interval_s",
                "must be 1..=3600",
            ));
        }
        if t.expiry_warning_days == 0 || t.expiry_warning_days > 365 {
            return Err(ConfigError::key(
                "tls.expiry_warning_days",
                "must be 1..=365",
            ));
        }
        if t.development {
            let given = !t.ca.is_empty() || !t.crls.is_empty() || !t.cert.as_os_str().is_empty();
            if given || !t.trust_domain.is_empty() {
                return Err(ConfigError::key(
                    "tls.development",
                    "development mode makes its own PKI; remove tls.ca, tls.crls, tls.cert, tls.key and tls.trust_domain, or set development = false",
                ));
            }
            return Ok(());
        }
        silta_certs::validate_trust_domain(&t.trust_domain)
            .map_err(|e| ConfigError::key("tls.trust_domain", e.to_string()))?;
        if t.ca.is_empty() {
            return Err(ConfigError::key(
                "tls.ca",
                "at least one CA certificate file is required",
            ));
        }
        if t.crls.is_empty() {
            return Err(ConfigError::key(
                "tls.crls",
                "at least one CRL file is required: without one, revoked certificates would be accepted",
            ));
        }
        if t.cert.as_os_str().is_empty() {
            return Err(ConfigError::key(
                "tls.cert",
                "the relay's certificate file is required",
            ));
        }
        if t.key.as_os_str().is_empty() {
            return Err(ConfigError::key(
                "tls.key",
                "the relay's private key file is required",
            ));
        }
        Ok(())
    }

    /// Handshake timeout.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.server.handshake_timeout_ms)
    }
}

/// An environment value in TOML syntax (`4`, `true`, `["a", "b"]`), or else a bare string.
fn parse_env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::parse(
            text,
            Path::new("test.toml"),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    const PROD: &str = r#"
        [tls]
        trust_domain = "silta.example"
        ca = ["/etc/silta/ca.pem"]
        crls = ["/etc/silta/crl.pem"]
        cert = "/etc/silta/relay.pem"
        key = "/etc/silta/relay.key"
    "#;

    #[test]
    fn embedded_default_is_development_on_7443() {
        let c = Config::load(None, []).unwrap();
        assert!(c.tls.development);
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:7443");
        assert_eq!(c.storage.data_dir, PathBuf::from("./silta-data"));
        assert!(c.storage.sync);
    }

    #[test]
    fn production_file_parses() {
        let c = parse(PROD, &[]).unwrap();
        assert!(!c.tls.development);
        assert_eq!(c.limits.max_recipients, 16);
    }

    #[test]
    fn env_overrides_keys() {
        let c = parse(
            PROD,
            &[
                ("SILTA_RELAY__LIMITS__MAX_RECIPIENTS", "4"),
                ("SILTA_RELAY__SERVER__LISTEN", "127.0.0.1:9000"),
                ("OTHER", "x"),
            ],
        )
        .unwrap();
        assert_eq!(c.limits.max_recipients, 4);
        assert_eq!(c.server.listen.port(), 9000);
    }

    fn key_of(e: ConfigError) -> String {
        match e {
            ConfigError::Key { key, .. } => key,
            other => panic!("expected a key error, got {other}"),
        }
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse(&format!("{PROD}\n[limits]\nmax_recipients = \"many\""), &[]).unwrap_err();
        assert_eq!(key_of(e), "limits.max_recipients");
        let e = parse(&format!("{PROD}\n[limits]\nmax_recipents = 3"), &[]).unwrap_err();
        assert!(e.to_string().contains("max_recipents"), "{e}");
        let e = parse(PROD, &[("SILTA_RELAY__LIMITS__MAX_RECIPIENTS", "0")]).unwrap_err();
        assert_eq!(key_of(e), "limits.max_recipients");
        let e = parse(PROD, &[("SILTA_RELAY__SERVER__LISTEN", "nowhere")]).unwrap_err();
        assert_eq!(key_of(e), "server.listen");
        let e = parse(&PROD.replace("crls = [\"/etc/silta/crl.pem\"]", ""), &[]).unwrap_err();
        assert_eq!(key_of(e), "tls.crls");
        let e = parse("[tls]\ndevelopment = true\ntrust_domain = \"x\"", &[]).unwrap_err();
        assert_eq!(key_of(e), "tls.development");
        let e = parse(PROD, &[("SILTA_RELAY__STORAGE__WRITE_TIMEOUT_MS", "0")]).unwrap_err();
        assert_eq!(key_of(e), "storage.write_timeout_ms");
        let e = parse(PROD, &[("SILTA_RELAY__STORAGE__MIN_FREE_BYTES", "-1")]).unwrap_err();
        assert_eq!(key_of(e), "storage.min_free_bytes");
        let e = parse(PROD, &[("SILTA_RELAY__RETENTION__MAX_AGE_S", "3600")]).unwrap_err();
        assert_eq!(key_of(e), "retention.expire_after_s");
        let e = parse(
            PROD,
            &[("SILTA_RELAY__RETENTION__URGENT_ALERT_AFTER_S", "86400")],
        )
        .unwrap_err();
        assert_eq!(key_of(e), "retention.urgent_alert_after_s");
        let e = parse(
            PROD,
            &[("SILTA_RELAY__RETENTION__URGENT_EXPIRE_AFTER_S", "999999")],
        )
        .unwrap_err();
        assert_eq!(key_of(e), "retention.urgent_expire_after_s");
        let e = parse(PROD, &[("SILTA_RELAY__RETENTION__SWEEP_BATCH", "0")]).unwrap_err();
        assert_eq!(key_of(e), "retention.sweep_batch");
        for days in ["0", "3651"] {
            let e =
                parse(PROD, &[("SILTA_RELAY__RETENTION__HANDLED_ITEM_DAYS", days)]).unwrap_err();
            assert_eq!(key_of(e), "retention.handled_item_days");
        }
        let c = parse(PROD, &[("SILTA_RELAY__RETENTION__HANDLED_ITEM_DAYS", "3")]).unwrap();
        assert_eq!(c.retention.handled_hold_s(), 3 * 86_400);
        let e = parse("", &[]).unwrap_err();
        assert_eq!(key_of(e), "tls.trust_domain");
        assert!(matches!(
            parse("[tls", &[]),
            Err(ConfigError::Syntax { .. })
        ));
    }
}

#[cfg(test)]
mod example_file {
    use super::*;

    /// The documented example is valid, names only real keys, and shows the real defaults.
    #[test]
    fn example_config_parses_and_shows_the_defaults() {
        let text = include_str!("../silta-relay.example.toml");
        let c = Config::parse(text, Path::new("silta-relay.example.toml"), []).unwrap();
        let d = Config::default();
        assert_eq!(c.server.listen, d.server.listen);
        assert_eq!(c.server.handshake_timeout_ms, d.server.handshake_timeout_ms);
        assert_eq!(c.server.shutdown_grace_ms, d.server.shutdown_grace_ms);
        assert_eq!(c.server.reflection, d.server.reflection);
        assert_eq!(c.server.max_connection_age_s, d.server.max_connection_age_s);
        assert_eq!(c.storage.data_dir, d.storage.data_dir);
        assert_eq!(c.storage.sync, d.storage.sync);
        assert_eq!(c.storage.min_free_bytes, d.storage.min_free_bytes);
        assert_eq!(c.storage.write_timeout_ms, d.storage.write_timeout_ms);
        assert_eq!(
            c.storage.shared_receipt_checkpoints,
            d.storage.shared_receipt_checkpoints
        );
        assert_eq!(c.tls.development, d.tls.development);
        assert_eq!(c.tls.enforce_crl_expiry, d.tls.enforce_crl_expiry);
        assert_eq!(c.tls.reload_interval_s, d.tls.reload_interval_s);
        assert_eq!(c.tls.expiry_warning_days, d.tls.expiry_warning_days);
        assert_eq!(c.limits, d.limits);
        assert_eq!(c.log.format, d.log.format);
        assert_eq!(c.log.level, d.log.level);
        assert_eq!(c.retention, d.retention);
        // Every key of every section appears in the file (deny_unknown_fields covers the other
        // direction).
        let table: toml::Table = text.parse().unwrap();
        let count = |s: &str| table[s].as_table().unwrap().len();
        assert_eq!(
            [
                count("server"),
                count("storage"),
                count("tls"),
                count("limits"),
                count("log"),
                count("retention")
            ],
            [5, 5, 9, 12, 2, 9]
        );
    }
}
