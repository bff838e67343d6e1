//! Test support for Silta's system tests: a PKI minted in code, a real relay on `127.0.0.1:0`
//! with real TLS and sled in a temporary folder, and clients for any identity.
//!
//! Nothing here is a mock: every test talks gRPC over TLS over loopback to the same code the
//! `silta-relay` binary runs.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use sha2::{Digest as _, Sha256};
use silta_certs::{
    Principal,
    ca::{CertificateAuthority, IssuedCert, LeafSpec, Revocation, Validity},
};
use silta_client::{Connection, RelayConfig};
use silta_proto::pb;
pub use silta_relay::clock::TestClock;
use silta_relay::{
    Relay,
    clock::{Clock, SystemClock},
    config::Config,
    metrics::Metrics,
    store::Store,
};
use tempfile::TempDir;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// Trust domain of the test PKI.
pub const TRUST_DOMAIN: &str = "silta.example";

/// A test PKI: a CA, the relay's certificate, a CRL, and whatever client certificates a test asks for.
pub struct TestPki {
    /// The CA.
    pub ca: CertificateAuthority,
    /// Folder with ca.pem, crl.pem, relay.pem, relay.key.
    pub dir: TempDir,
    revoked: Vec<Revocation>,
    crl_number: u64,
}

/// A client certificate and key.
#[derive(Clone, Debug)]
pub struct TestIdentity {
    /// Certificate PEM.
    pub cert_pem: String,
    /// Key PEM.
    pub key_pem: String,
    /// Serial, hex.
    pub serial: String,
}

impl From<IssuedCert> for TestIdentity {
    fn from(c: IssuedCert) -> Self {
        TestIdentity {
            cert_pem: c.cert_pem,
            key_pem: c.key_pem,
            serial: c.serial,
        }
    }
}

impl TestPki {
    /// A fresh CA with a relay certificate for `localhost` and `127.0.0.1`, and an empty CRL.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca =
            CertificateAuthority::generate("Test CA", TRUST_DOMAIN, Validity::days_from_now(365))
                .unwrap();
        let relay = ca
            .issue_server(&["localhost".into(), "127.0.0.1".into()], 30)
            .unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
        std::fs::write(dir.path().join("relay.pem"), &relay.cert_pem).unwrap();
        std::fs::write(dir.path().join("relay.key"), &relay.key_pem).unwrap();
        let mut pki = TestPki {
            ca,
            dir,
            revoked: Vec::new(),
            crl_number: 0,
        };
        pki.write_crl();
        pki
    }

    fn write_crl(&mut self) {
        self.crl_number += 1;
        // Client certificates and CRLs outlast the 30-day expiry warning of the programs
        // (silta_client::expiry), so only the tests about expiry see warnings.
        let crl = self.ca.crl(&self.revoked, self.crl_number, 60).unwrap();
        std::fs::write(self.dir.path().join("crl.pem"), crl).unwrap();
    }

    /// Rewrites the CRL with its nextUpdate at `next_update` (to test a CRL going stale).
    pub fn write_crl_until(&mut self, next_update: time::OffsetDateTime) {
        self.crl_number += 1;
        let crl = self
            .ca
            .crl_until(&self.revoked, self.crl_number, next_update)
            .unwrap();
        std::fs::write(self.dir.path().join("crl.pem"), crl).unwrap();
    }

    /// Path of a file in the PKI folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A valid role certificate for `principal` (`<role>/<id>`).
    pub fn client(&self, principal: &str) -> TestIdentity {
        let p: Principal = principal.parse().unwrap();
        self.ca.issue_client(&p, 90).unwrap().into()
    }

    /// A certificate exactly as `spec` says (for negative fixtures).
    pub fn issue(&self, spec: &LeafSpec) -> TestIdentity {
        self.ca.issue(spec).unwrap().into()
    }

    /// Adds `id` to the CRL and rewrites it (a relay started afterwards sees it).
    pub fn revoke(&mut self, id: &TestIdentity) {
        self.revoked.push(Revocation {
            serial: id.serial.clone(),
            revoked_at: time::OffsetDateTime::now_utc() - time::Duration::minutes(1),
        });
        self.write_crl();
    }

    /// A relay configuration using this PKI and `data_dir`, listening anywhere (tests bind their own).
    pub fn relay_config(&self, data_dir: &Path) -> Config {
        let mut c = Config::default();
        c.storage.data_dir = data_dir.to_owned();
        c.tls.trust_domain = TRUST_DOMAIN.into();
        c.tls.ca = vec![self.path("ca.pem")];
        c.tls.crls = vec![self.path("crl.pem")];
        c.tls.cert = self.path("relay.pem");
        c.tls.key = self.path("relay.key");
        c.server.shutdown_grace_ms = 2_000;
        c.validate().unwrap();
        c
    }

    /// The same configuration as TOML, for a relay process.
    pub fn relay_config_toml(&self, data_dir: &Path) -> String {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_ms = 2000\n\
             [storage]\ndata_dir = {:?}\n\
             [tls]\ntrust_domain = {TRUST_DOMAIN:?}\nca = [{:?}]\ncrls = [{:?}]\ncert = {:?}\nkey = {:?}\n\
             [log]\nlevel = \"warn\"\n",
            data_dir,
            self.path("ca.pem"),
            self.path("crl.pem"),
            self.path("relay.pem"),
            self.path("relay.key"),
        )
    }

    /// How a client with `identity` reaches a relay at `addr`.
    pub fn client_config(&self, addr: SocketAddr, identity: Option<&TestIdentity>) -> RelayConfig {
        RelayConfig {
            address: addr.to_string(),
            server_name: "localhost".into(),
            ca_pem: self.ca.cert_pem().as_bytes().to_vec(),
            identity: identity.map(|i| {
                (
                    i.cert_pem.clone().into_bytes(),
                    i.key_pem.clone().into_bytes(),
                )
            }),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

/// A relay running in this process.
pub struct TestRelay {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its counters.
    pub metrics: Arc<Metrics>,
    /// Its database.
    pub store: Arc<Store>,
    /// The delivery log's verifier key.
    pub log_key: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    /// Its data folder (kept alive while the relay runs).
    pub data: TempDir,
}

impl TestRelay {
    /// Starts a relay with this PKI; `tweak` may change the configuration first.
    pub async fn start(pki: &TestPki, tweak: impl FnOnce(&mut Config)) -> TestRelay {
        Self::start_in(pki, tempfile::tempdir().unwrap(), tweak).await
    }

    /// Starts a relay whose calendar is `clock` (a [`TestClock`] moves days in an instant).
    pub async fn start_clocked(
        pki: &TestPki,
        clock: &TestClock,
        tweak: impl FnOnce(&mut Config),
    ) -> TestRelay {
        Self::start_in_clocked(
            pki,
            tempfile::tempdir().unwrap(),
            Arc::new(clock.clone()),
            tweak,
        )
        .await
    }

    /// Starts a relay on an existing data folder (to restart one on the same data).
    pub async fn start_in(
        pki: &TestPki,
        data: TempDir,
        tweak: impl FnOnce(&mut Config),
    ) -> TestRelay {
        Self::start_in_clocked(pki, data, Arc::new(SystemClock), tweak).await
    }

    /// Starts a relay on an existing data folder with `clock`.
    pub async fn start_in_clocked(
        pki: &TestPki,
        data: TempDir,
        clock: Arc<dyn Clock>,
        tweak: impl FnOnce(&mut Config),
    ) -> TestRelay {
        silta_relay::tls::install_crypto_provider();
        // tempfile makes folders with the umask (0755); the relay refuses one others can enter.
        std::fs::set_permissions(
            data.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let mut config = pki.relay_config(data.path());
        tweak(&mut config);
        config.validate().unwrap();
        // Restarting in the same process: a connection task of the previous relay may still hold
        // the database (and its file lock) for a moment after shutdown. Bounded retry.
        let mut tries = 0;
        let relay = loop {
            match Relay::open_with_clock(config.clone(), clock.clone()) {
                Ok(r) => break r,
                Err(e) if e.to_string().contains("could not acquire lock") && tries < 100 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("relay did not start: {e}"),
            }
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (metrics, store, log_key) = (relay.metrics(), relay.store(), relay.log_verifier_key());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            relay
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        TestRelay {
            addr,
            metrics,
            store,
            log_key,
            stop: Some(stop),
            task: Some(task),
            data,
        }
    }

    /// Connects as `identity` (health-checked).
    pub async fn connect(&self, pki: &TestPki, identity: &TestIdentity) -> Connection {
        Connection::connect(&pki.client_config(self.addr, Some(identity)))
            .await
            .expect("connect")
    }

    /// Connects as a new valid certificate for `principal`; the principal becomes known.
    pub async fn connect_as(&self, pki: &TestPki, principal: &str) -> Connection {
        self.connect(pki, &pki.client(principal)).await
    }

    /// Connects as a new valid certificate for `principal` and publishes a key bundle for the
    /// device `test`, so the principal can acknowledge messages (see [`ack_of`]).
    pub async fn connect_with_keys(
        &self,
        pki: &TestPki,
        principal: &str,
    ) -> (Connection, silta_client::keys::DeviceKeys) {
        let identity = pki.client(principal);
        let conn = self.connect(pki, &identity).await;
        let keys = publish_test_keys(&conn, &identity, principal).await;
        (conn, keys)
    }

    /// A digest of every key and value in the database: equal before and after means nothing
    /// was stored or changed.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.store.content_digest().unwrap()
    }

    /// Every event in the relay's delivery log, in order.
    pub fn events(&self) -> Vec<pb::Event> {
        let count = self.store.event_count().unwrap();
        (0..count)
            .filter_map(|i| self.store.event(i).unwrap())
            .collect()
    }

    /// Shuts the relay down gracefully and waits for it.
    pub async fn stop(self) {
        self.stop_keep().await;
    }

    /// Shuts the relay down and hands back its data folder (to edit or restart it).
    pub async fn stop_keep(mut self) -> TempDir {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
        let TestRelay { data, store, .. } = self;
        drop(store);
        data
    }
}

/// A `[limits]` table that lifts the per-principal quotas, for load and crash tests that send
/// as fast as they can (append it to [`TestPki::relay_config_toml`]); the quotas themselves are
/// tested in insider.rs.
pub const UNLIMITED_TOML: &str = "[limits]\nsend_bytes_per_second = 100000000000\nrequests_per_second = 1000000\nrequest_burst = 1000000\nmax_pending_per_sender = 1000000000\nmax_pending_items = 1000000000\n";

/// The same for an in-process relay's configuration.
pub fn unlimited(c: &mut Config) {
    c.limits.send_bytes_per_second = 100_000_000_000;
    c.limits.requests_per_second = 1_000_000;
    c.limits.request_burst = 1_000_000;
    c.limits.max_pending_per_sender = 1_000_000_000;
    c.limits.max_pending_items = 1_000_000_000;
}

/// A fresh random case reference.
pub fn case_ref() -> Vec<u8> {
    uuid::Uuid::new_v4().as_bytes().to_vec()
}

/// An envelope of `kind` to `recipients` carrying `ciphertext` (opaque to the relay), with a
/// fresh UUIDv7 message id, a fresh case, the kind's default legal basis and the right digest.
pub fn envelope(kind: pb::MessageKind, recipients: &[&str], ciphertext: &[u8]) -> pb::Envelope {
    pb::Envelope {
        message_id: uuid::Uuid::now_v7().as_bytes().to_vec(),
        case_ref: case_ref(),
        kind: kind.into(),
        urgency: pb::Urgency::Normal.into(),
        legal_basis: silta_proto::policy::default_basis(kind).into(),
        recipients: recipients.iter().map(|s| s.to_string()).collect(),
        created_at: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        ciphertext: ciphertext.to_vec().into(),
        ciphertext_sha256: Sha256::digest(ciphertext).to_vec(),
        in_reply_to: Vec::new(),
        resend_of: Vec::new(),
        attachment_sha256: Vec::new(),
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

/// Reads items from a subscription until `want` arrived or `timeout` passed.
pub async fn take_items(
    stream: &mut tonic::Streaming<pb::MailboxItem>,
    want: usize,
    timeout: Duration,
) -> Vec<pb::MailboxItem> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while out.len() < want {
        match tokio::time::timeout_at(deadline, stream.message()).await {
            Ok(Ok(Some(item))) => out.push(item),
            Ok(Ok(None)) | Err(_) => break,
            Ok(Err(status)) => panic!("subscription failed: {status}"),
        }
    }
    out
}

/// A mailbox item's envelope, if it is one.
pub fn envelope_of(item: &pb::MailboxItem) -> Option<&pb::DeliveredEnvelope> {
    match &item.item {
        Some(pb::mailbox_item::Item::Envelope(e)) => Some(e),
        _ => None,
    }
}

/// A mailbox item's status event, if it is one.
pub fn status_of(item: &pb::MailboxItem) -> Option<&pb::StatusEvent> {
    match &item.item {
        Some(pb::mailbox_item::Item::Status(s)) => Some(s),
        _ => None,
    }
}

/// Publishes a key bundle for the device `test` of `principal` over `conn` (authenticated as
/// `identity`) and returns the device's keys.
pub async fn publish_test_keys(
    conn: &Connection,
    identity: &TestIdentity,
    principal: &str,
) -> silta_client::keys::DeviceKeys {
    let keys = silta_client::keys::DeviceKeys::generate("test").unwrap();
    let bundle = silta_client::bundle::build(
        &keys,
        &principal.parse().unwrap(),
        identity.cert_pem.as_bytes(),
        &identity.key_pem,
    )
    .unwrap();
    conn.directory().publish_keys(bundle).await.unwrap();
    keys
}

/// An acknowledgement of `env`, signed by `keys` (published with
/// [`TestRelay::connect_with_keys`]).
pub fn ack_of(keys: &silta_client::keys::DeviceKeys, env: &pb::Envelope) -> pb::AckRequest {
    let msg = [env.message_id.as_slice(), env.ciphertext_sha256.as_slice()].concat();
    pb::AckRequest {
        device_id: String::new(),
        target: Some(pb::ack_request::Target::Acknowledge(pb::Acknowledgement {
            message_id: env.message_id.clone(),
            ciphertext_sha256: env.ciphertext_sha256.clone(),
            signature: keys.sign(silta_proto::context::ACK, &msg).to_vec(),
            signer_key: keys.device_id().to_owned(),
        })),
    }
}

/// A `silta-relay` process (the real binary's `main`, built in this package).
pub struct RelayProcess {
    /// The child.
    pub child: tokio::process::Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl RelayProcess {
    /// Starts the relay binary `bin` (in tests: `env!("CARGO_BIN_EXE_silta-relay-under-test")`)
    /// with `config` and waits until it prints its address.
    pub async fn spawn(bin: &str, config: &Path) -> RelayProcess {
        let mut cmd = tokio::process::Command::new(bin);
        cmd.arg("--config").arg(config);
        Self::spawn_command(cmd).await
    }

    /// Starts a prepared command (arguments, environment, working folder already set).
    pub async fn spawn_command(mut cmd: tokio::process::Command) -> RelayProcess {
        use tokio::io::AsyncBufReadExt as _;
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start relay process");
        let stdout = child.stdout.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("relay did not start in time")
            .unwrap()
            .expect("relay exited before listening");
        let addr = line
            .strip_prefix("silta-relay listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        RelayProcess { child, addr }
    }

    /// SIGKILL: the process gets no chance to flush anything.
    pub async fn kill(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    /// SIGTERM, then waits for the exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running").to_string();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(ok.success());
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("relay did not stop after SIGTERM")
            .unwrap()
    }
}

/// A `silta` client installation for a principal: config file, certificate, device keys, state.
pub struct TestUser {
    /// Its folder.
    pub dir: TempDir,
    /// Its configuration.
    pub config: silta_client::ClientConfig,
    /// Its certificate.
    pub identity: TestIdentity,
}

impl TestUser {
    /// Sets up `principal` (certificate from `pki`, device keys `device`) against `addr`.
    pub fn new(pki: &TestPki, addr: SocketAddr, principal: &str, device: &str) -> TestUser {
        Self::with_identity(pki, addr, pki.client(principal), device)
    }

    /// Same, with a given certificate.
    pub fn with_identity(
        pki: &TestPki,
        addr: SocketAddr,
        identity: TestIdentity,
        device: &str,
    ) -> TestUser {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), pki.ca.cert_pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), &identity.cert_pem).unwrap();
        std::fs::write(dir.path().join("cert.key"), &identity.key_pem).unwrap();
        let text = format!(
            "relay = \"localhost:{}\"\nca = \"ca.pem\"\ncert = \"cert.pem\"\nkey = \"cert.key\"\nstate_dir = \"state\"\n",
            addr.port()
        );
        std::fs::write(dir.path().join("silta.toml"), text).unwrap();
        let config = silta_client::ClientConfig::load(&dir.path().join("silta.toml")).unwrap();
        silta_client::keys::DeviceKeys::init(&config.key_dir(), device).unwrap();
        TestUser {
            dir,
            config,
            identity,
        }
    }

    /// Connects.
    pub async fn client(&self) -> silta_client::client::Client {
        silta_client::client::Client::start(&self.config)
            .await
            .expect("client start")
    }

    /// Connects and publishes the device keys.
    pub async fn published(&self) -> silta_client::client::Client {
        let c = self.client().await;
        c.publish_keys().await.expect("publish keys");
        c
    }
}

/// Who opens received messages in a test that calls the library directly: a test process,
/// its access log in a folder of its own (the library writes a `received` entry per opening).
pub struct TestOpener {
    _dir: TempDir,
    log: silta_client::access::AccessLog,
}

impl TestOpener {
    /// A fresh, empty access log.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let dir = TempDir::new().expect("temp dir");
        let log = silta_client::access::AccessLog::in_state_dir(dir.path());
        TestOpener { _dir: dir, log }
    }

    /// The opener to pass to `Client::receive` / `process`.
    pub fn opener(&self) -> silta_client::receive::Opener<'_> {
        silta_client::receive::Opener {
            log: &self.log,
            who: "process:test",
            principal: "test",
            purpose: "test",
        }
    }

    /// The entries written so far.
    pub fn entries(&self) -> Vec<silta_client::access::Entry> {
        self.log.read().expect("access log reads")
    }
}

/// Opens a stopped relay's database for offline edits, waiting (bounded) for the previous owner
/// in this process to let go of its file lock.
pub fn open_store_offline(data_dir: &Path) -> Store {
    for _ in 0..100 {
        match Store::open(&data_dir.join("db"), true) {
            Ok(s) => return s,
            Err(e) if e.to_string().contains("could not acquire lock") => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("cannot open the store: {e}"),
        }
    }
    panic!("the store stayed locked for 10 s");
}

/// Compares `actual` with the golden file `tests/golden/<name>.txt`, after `replace` (literal
/// pairs, e.g. the temporary folder -> `[DIR]`) and redacting what changes from run to run:
/// message ids, case references, times, fingerprints, log indexes, ports. `SILTA_BLESS=1`
/// writes the file instead (review the diff before committing it).
pub fn assert_golden(name: &str, actual: &str, replace: &[(&str, &str)]) {
    let mut text = actual.to_owned();
    for (from, to) in replace {
        if !from.is_empty() {
            text = text.replace(from, to);
        }
    }
    let rules: [(&str, &str); 8] = [
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[ID]",
        ),
        (r"\b[0-9a-f]{32}\b", "[CASE]"),
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[TIME]"),
        (r"\b[0-9a-f]{4}( [0-9a-f]{4}){4,}\b", "[FINGERPRINT]"),
        (r"log index \d+", "log index [N]"),
        (r"127\.0\.0\.1:\d+|localhost:\d+", "[RELAY]"),
        (r"\b[0-9a-f]{8}-[0-9a-f]{4}\b", "[SHORT-ID]"),
        (r"\b[0-9a-f]{12}\b", "[SHORT-CASE]"),
    ];
    for (pattern, to) in rules {
        text = regex::Regex::new(pattern)
            .expect("pattern")
            .replace_all(&text, to)
            .into_owned();
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(format!("{name}.txt"));
    if std::env::var_os("SILTA_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no golden file {}; run with SILTA_BLESS=1 to create it\n--- actual ---\n{text}",
            path.display()
        )
    });
    assert!(
        expected == text,
        "output differs from {} (SILTA_BLESS=1 rewrites it)\n--- expected ---\n{expected}\n--- actual ---\n{text}",
        path.display()
    );
}

/// Appends `event` to the relay's delivery log as the relay itself would, without any check (a
/// hostile or older relay); the checkpoints it signs afterwards include it. Returns its index.
pub async fn append_event(relay: &TestRelay, event: pb::Event) -> u64 {
    relay
        .store
        .write(move |trees| trees.transaction(|tx| tx.append_event(event.clone())))
        .await
        .expect("append an event")
}

/// A loopback TCP proxy in front of `target` that loses the answer to a large request: it
/// forwards everything the client sends, and what the server sends only until the client has
/// sent more than `threshold` bytes on that connection. The first server bytes after that are
/// discarded; `grace` later (time for the server to finish the request it has) both sides are
/// closed. The server has the request; the client never hears back.
pub struct AnswerLosingProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl AnswerLosingProxy {
    /// Starts it on 127.0.0.1:0.
    pub async fn start(target: SocketAddr, threshold: u64, grace: Duration) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let sent = Arc::new(AtomicU64::new(0));
                    let counted = sent.clone();
                    let up = tokio::spawn(async move {
                        let mut buf = vec![0u8; 16 * 1024];
                        while let Ok(n) = cr.read(&mut buf).await {
                            if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                            counted.fetch_add(n as u64, Ordering::SeqCst);
                        }
                    });
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = sr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        if sent.load(Ordering::SeqCst) > threshold {
                            // The answer: lost. Let the server finish, then hang up on both.
                            tokio::time::sleep(grace).await;
                            break;
                        }
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    up.abort();
                });
            }
        });
        AnswerLosingProxy { addr, task }
    }
}

impl Drop for AnswerLosingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Seals `draft` and sends it straight through the relay's `Send` RPC, WITHOUT the library's
/// outbox: no access-log entry, no kept sealed copy, no retry as the same bytes. Programs send
/// through `silta_client::outbox`; tests use this where they need a plain send. With a log key
/// configured, the receipt is checked as the outbox does.
pub async fn send_raw(
    client: &silta_client::client::Client,
    draft: &silta_client::seal::Draft,
) -> Result<pb::Receipt, silta_client::ClientError> {
    let envelope = client.seal(draft).await?;
    send_sealed_raw(client, envelope).await
}

/// Sends an already sealed envelope straight through the relay's `Send` RPC (see [`send_raw`]).
pub async fn send_sealed_raw(
    client: &silta_client::client::Client,
    envelope: pb::Envelope,
) -> Result<pb::Receipt, silta_client::ClientError> {
    let (id, digest) = (
        envelope.message_id.clone(),
        envelope.ciphertext_sha256.clone(),
    );
    let receipt = client
        .connection()
        .mailbox()
        .send(envelope)
        .await?
        .into_inner();
    client
        .check_receipt(&receipt, &id, &digest)
        .map_err(silta_client::ClientError::Receipt)?;
    Ok(receipt)
}

/// Asserts that `status` is a passing refusal: `RESOURCE_EXHAUSTED` with google.rpc `RetryInfo`
/// (the relay's rule: every `RESOURCE_EXHAUSTED` is passing and says when to retry). Returns the
/// delay.
#[track_caller]
pub fn assert_passing(status: &tonic::Status) -> std::time::Duration {
    use tonic_types::StatusExt as _;
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    status
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .unwrap_or_else(|| panic!("RESOURCE_EXHAUSTED without RetryInfo: {status:?}"))
}
