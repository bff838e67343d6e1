//! The client's configuration (`silta.toml`): the relay, the certificate and key, the state
//! folder, and the settings of receiving and of the centre daemon.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use crate::{
    connection::{Connection, RelayConfig},
    error::ClientError,
};

/// The client's configuration file (`silta.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The relay, `host:port`.
    pub relay: String,
    /// The name in the relay's certificate; default: the host part of `relay`.
    #[serde(default)]
    pub server_name: Option<String>,
    /// CA certificate(s), PEM.
    pub ca: PathBuf,
    /// This installation's role certificate, PEM.
    pub cert: PathBuf,
    /// Its private key, PEM.
    pub key: PathBuf,
    /// Where device keys and local state live.
    pub state_dir: PathBuf,
    /// Extra CRLs (PEM) to check key bundles with, besides those the relay hands out.
    #[serde(default)]
    pub crls: Vec<PathBuf>,
    /// The delivery log's verifier key (`silta-relay log-key`). When set, every receipt is
    /// checked: signed checkpoint, this message's acceptance, inclusion proof. A list of keys
    /// (`log_key = ["...", "..."]`) while the relay's log key is rotated: a checkpoint signed by
    /// any of them is good ([`silta_proto::tlog::verify_checkpoint`]). Held as one string, the
    /// keys separated by newlines.
    #[serde(default, deserialize_with = "one_or_more_keys")]
    pub log_key: Option<String>,
    /// The centre daemon's settings (`silta daemon`).
    #[serde(default)]
    pub daemon: DaemonConfig,
    /// How received messages that cannot be processed yet are retried.
    #[serde(default)]
    pub receive: ReceiveConfig,
    /// How long this installation keeps plaintext ([`crate::retention`]).
    #[serde(default)]
    pub retention: RetentionConfig,
    /// When expiring certificates and CRLs are warned about ([`crate::expiry`]).
    #[serde(default)]
    pub expiry: ExpiryConfig,
    /// `[inbox]`: what `silta inbox due` and the daemon's notifications count as due.
    #[serde(default)]
    pub inbox: InboxConfig,
}

/// `[expiry]` in the client configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExpiryConfig {
    /// Warn this many days before this installation's certificate or a CRL it holds expires.
    pub warn_days: u32,
}

impl Default for ExpiryConfig {
    fn default() -> Self {
        ExpiryConfig { warn_days: 30 }
    }
}

impl ExpiryConfig {
    /// The warning window.
    pub fn window(&self) -> Duration {
        Duration::from_secs(u64::from(self.warn_days) * 86_400)
    }
}

/// `log_key`: a string (one key, or several separated by white space) or a list of strings.
fn one_or_more_keys<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Keys {
        One(String),
        More(Vec<String>),
    }
    let keys: Vec<String> = match Keys::deserialize(d)? {
        Keys::One(s) => s.split_whitespace().map(str::to_owned).collect(),
        Keys::More(v) => v
            .iter()
            .flat_map(|s| s.split_whitespace())
            .map(str::to_owned)
            .collect(),
    };
    if keys.is_empty() {
        return Err(serde::de::Error::custom("log_key: no verifier key"));
    }
    for k in &keys {
        silta_proto::tlog::parse_verifier_key(k).map_err(serde::de::Error::custom)?;
    }
    Ok(Some(keys.join("\n")))
}

/// `[retention]` in the client configuration: when this installation's copies of messages
/// (plaintext in the inbox store and the daemon's folders, kept sealed copies) are deleted.
/// Silta's copies are transit copies; the case system of record keeps what the law says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Days after `silta case close` (or after a later message of the closed case arrived)
    /// before the case's messages are deleted here. 0: at the next sweep once they may go
    /// (received ones acknowledged or expired, sent ones final for every recipient).
    pub closed_case_days: u32,
    /// Days after which a message with no case (and answered in no case) is deleted here. 0:
    /// at the next sweep once it may go, as above.
    pub uncased_max_days: u32,
    /// How often the daemon sweeps, in milliseconds.
    pub sweep_interval_ms: u64,
    /// Days a device identity is kept after `silta keys rotate` (so messages sealed to it,
    /// still at the relay or kept here sealed, open), before the sweep deletes it.
    pub retired_key_days: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            closed_case_days: 30,
            uncased_max_days: 90,
            sweep_interval_ms: 3_600_000,
            retired_key_days: 90,
        }
    }
}

/// `[inbox]` in the client configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboxConfig {
    /// An urgent or emergency message received and not acknowledged for this many minutes is
    /// due (`silta inbox due`, the daemon's notifications). 1 to 10080 (a week).
    pub urgent_unacked_minutes: u32,
}

impl Default for InboxConfig {
    fn default() -> Self {
        InboxConfig {
            urgent_unacked_minutes: 30,
        }
    }
}

/// What happens to a received message that cannot be processed now (its sender's keys cannot be
/// fetched, say): it is skipped, so the messages behind it still arrive, and left
/// unacknowledged; it is tried again on a later subscription once its delay has passed (doubled
/// each try), and after `max_attempts` tries it is rejected, so its sender learns of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiveConfig {
    /// Delay before the second try, in milliseconds.
    pub retry_initial_ms: u64,
    /// Longest delay between tries, in milliseconds.
    pub retry_max_ms: u64,
    /// Tries before the message is rejected.
    pub max_attempts: u32,
}

impl Default for ReceiveConfig {
    fn default() -> Self {
        ReceiveConfig {
            retry_initial_ms: 60_000,
            retry_max_ms: 3_600_000,
            max_attempts: 8,
        }
    }
}

impl ReceiveConfig {
    /// The delay after the `attempts`-th failed try.
    pub fn delay(&self, attempts: u32) -> Duration {
        Duration::from_millis(
            self.retry_initial_ms
                .saturating_mul(1u64 << attempts.saturating_sub(1).min(30))
                .min(self.retry_max_ms.max(self.retry_initial_ms)),
        )
    }
}

impl ClientConfig {
    /// Reads a configuration file; relative paths are taken from the file's folder.
    pub fn load(path: &Path) -> Result<Self, ClientError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ClientError::Config(format!("{}: {e}", path.display())))?;
        let mut c: ClientConfig = toml::from_str(&text)
            .map_err(|e| ClientError::Config(format!("{}: {e}", path.display())))?;
        if !(1..=10_080).contains(&c.inbox.urgent_unacked_minutes) {
            return Err(ClientError::Config(format!(
                "{}: [inbox] urgent_unacked_minutes = {}: give 1 to 10080 (minutes)",
                path.display(),
                c.inbox.urgent_unacked_minutes
            )));
        }
        if c.daemon
            .notify_command
            .first()
            .is_some_and(|p| p.trim().is_empty())
        {
            return Err(ClientError::Config(format!(
                "{}: [daemon] notify_command: the first element is the program to run",
                path.display()
            )));
        }
        if !(1..=MAX_NOTIFY_TIMEOUT_MS).contains(&c.daemon.notify_timeout_ms) {
            return Err(ClientError::Config(format!(
                "{}: [daemon] notify_timeout_ms = {}: give 1 to {MAX_NOTIFY_TIMEOUT_MS} (ms)",
                path.display(),
                c.daemon.notify_timeout_ms
            )));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut c.ca,
            &mut c.cert,
            &mut c.key,
            &mut c.state_dir,
            &mut c.daemon.folder,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        // The CRL files too, as the documentation says of every path (they were taken from the
        // working folder before).
        for p in &mut c.crls {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(c)
    }

    /// The device-key folder.
    pub fn key_dir(&self) -> PathBuf {
        self.state_dir.join("keys")
    }

    /// How to reach the relay, with the given PEM material.
    pub fn relay_config(
        &self,
        ca_pem: Vec<u8>,
        cert_pem: Vec<u8>,
        key_pem: Vec<u8>,
    ) -> RelayConfig {
        let server_name = self.server_name.clone().unwrap_or_else(|| {
            self.relay
                .rsplit_once(':')
                .map(|(h, _)| h)
                .unwrap_or(&self.relay)
                .trim_matches(['[', ']'])
                .to_owned()
        });
        RelayConfig {
            address: self.relay.clone(),
            server_name,
            ca_pem,
            identity: Some((cert_pem, key_pem)),
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// Connects without device keys (what an auditor needs: no messages are sealed or opened).
    pub async fn connect(&self) -> Result<Connection, ClientError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| ClientError::Config(format!("{}: {e}", p.display())))
        };
        let relay = self.relay_config(read(&self.ca)?, read(&self.cert)?, read(&self.key)?);
        Ok(Connection::connect(&relay).await?)
    }
}

/// `[daemon]` in the client configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// The folder holding outbox/, sent/, failed/ and inbox/ (relative to the configuration).
    pub folder: PathBuf,
    /// How often the outbox is scanned, in milliseconds.
    pub scan_interval_ms: u64,
    /// First retry delay after a failed attempt, in milliseconds (doubled each time, with jitter).
    pub retry_initial_ms: u64,
    /// Longest retry delay, in milliseconds.
    pub retry_max_ms: u64,
    /// The purpose recorded in the access log when the daemon opens received messages.
    pub purpose: String,
    /// A file in outbox/ is picked up only when it has not changed for this long (ms), so a
    /// form copied in place is not read half-written.
    pub settle_ms: u64,
    /// At most this many notification files are kept in notify/ (the oldest go first); 0: none
    /// are written.
    pub notify_keep: usize,
    /// A program run for every notification, as an argument list (no shell), e.g.
    /// `["/usr/local/bin/alert", "--silta"]`; it gets the event, kind, urgency and message id as
    /// arguments and the notification's JSON on stdin (never content). Empty: none.
    pub notify_command: Vec<String>,
    /// How long the notify command may run before it is stopped (ms; at most
    /// 60000, a minute).
    pub notify_timeout_ms: u64,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            folder: PathBuf::from("silta-folders"),
            scan_interval_ms: 1000,
            retry_initial_ms: 1000,
            retry_max_ms: 60_000,
            purpose: "passing received messages to the case-management system".into(),
            settle_ms: 1000,
            notify_keep: 1000,
            notify_command: Vec::new(),
            notify_timeout_ms: 5000,
        }
    }
}

/// The longest `[daemon] notify_timeout_ms` may be (a minute): a hook that hangs holds one of
/// the few hook slots that long.
pub(crate) const MAX_NOTIFY_TIMEOUT_MS: u64 = 60_000;

/// The centre daemon's folders (`[daemon] folder`): where forms come in and go out. Here, not
/// in the daemon, because retention deletes from them too.
#[derive(Debug, Clone)]
pub struct Folders {
    /// Forms to send.
    pub outbox: PathBuf,
    /// Forms claimed from the outbox, waiting to be sent (`<message-id>.<name>`).
    pub queued: PathBuf,
    /// Sent forms and their state.
    pub sent: PathBuf,
    /// Forms that will not be sent, with the reason.
    pub failed: PathBuf,
    /// Received messages.
    pub inbox: PathBuf,
    /// Received case claims and access-log shares (a principal's own desks' bookkeeping; not
    /// case messages, so not in inbox/).
    pub internal: PathBuf,
    /// Content-free notifications (one JSON file per event).
    pub notify: PathBuf,
}

impl Folders {
    /// The folders under `base`.
    pub fn under(base: &Path) -> Self {
        Folders {
            outbox: base.join("outbox"),
            queued: base.join("queued"),
            sent: base.join("sent"),
            failed: base.join("failed"),
            inbox: base.join("inbox"),
            internal: base.join("internal"),
            notify: base.join("notify"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_log_key(line: &str) -> Result<ClientConfig, toml::de::Error> {
        toml::from_str(&format!(
            "relay = \"r:1\"\nca = \"ca\"\ncert = \"c\"\nkey = \"k\"\nstate_dir = \"s\"\n{line}\n"
        ))
    }

    #[test]
    fn a_notify_timeout_over_a_minute_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silta.toml");
        let load = |ms: u64| {
            std::fs::write(
                &path,
                format!(
                    "relay = \"r:1\"\nca = \"ca\"\ncert = \"c\"\nkey = \"k\"\nstate_dir = \"s\"\n[daemon]\nnotify_timeout_ms = {ms}\n"
                ),
            )
            .unwrap();
            ClientConfig::load(&path)
        };
        assert!(load(60_000).is_ok());
        let e = load(60_001).unwrap_err().to_string();
        assert!(
            e.contains("notify_timeout_ms = 60001: give 1 to 60000"),
            "{e}"
        );
        assert!(load(0).is_err());
    }

    #[test]
    fn log_key_is_one_key_or_a_list_during_a_rotation() {
        let key = |seed: u8| {
            silta_proto::tlog::verifier_key(
                "silta.example/delivery-log",
                &ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
                    .verifying_key()
                    .to_bytes(),
            )
        };
        let (a, b) = (key(1), key(2));
        assert_eq!(
            with_log_key(&format!("log_key = {a:?}")).unwrap().log_key,
            Some(a.clone())
        );
        assert_eq!(
            with_log_key(&format!("log_key = [{a:?}, {b:?}]"))
                .unwrap()
                .log_key,
            Some(format!("{a}\n{b}"))
        );
        assert!(with_log_key("").unwrap().log_key.is_none());
        // A mistyped key or an empty list is a configuration error, not a key skipped.
        assert!(with_log_key(&format!("log_key = [{a:?}, \"nonsense\"]")).is_err());
        assert!(with_log_key("log_key = []").is_err());
    }
}
