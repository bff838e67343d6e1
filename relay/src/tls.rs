//! Mutual TLS: the rustls server configuration, the client-certificate verifier and the accept
//! loop that hands authenticated connections to tonic.
//!
//! Security decisions live here:
//! - TLS 1.3 only, ALPN `h2`, a client certificate is mandatory.
//! - The chain, validity period, EKU and CRLs are checked by webpki; then the certificate must
//!   name exactly one `spiffe://<our trust domain>/<role>/<id>` with a known role and carry the
//!   clientAuth EKU explicitly. Anything else fails the handshake, so no handler ever runs for it.
//! - The identity is parsed once per connection and travels to handlers as [`PeerIdentity`].
//! - Every handshake runs in its own task under a timeout: a client that connects and never
//!   speaks cannot stall anyone else.
//! - Key exchange prefers the hybrid post-quantum group X25519MLKEM768 ([`KX_GROUPS`]), so that
//!   traffic recorded today cannot be decrypted later with a quantum computer; classical groups
//!   stay allowed for clients that lack it (e.g. stock grpcio), which the log shows per connection.
//! - Session resumption is disabled (no tickets, no session cache): a resumed TLS 1.3 session
//!   would skip the client-certificate check, and with it any revocation since.

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, SocketAddr},
    path::Path,
    pin::Pin,
    sync::{Arc, Mutex, RwLock},
    task::{Context, Poll},
    time::Duration,
};

use rustls::{
    DigitallySignedStruct, DistinguishedName, SignatureScheme,
    client::danger::HandshakeSignatureValid,
    crypto::CryptoProvider,
    server::{
        NoServerSessionStorage, ServerConfig, WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
};
use rustls_pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime, pem::PemObject as _,
};
use sha2::Digest as _;
use silta_certs::{Principal, identity::client_identity};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{mpsc, watch},
};
use tokio_rustls::TlsAcceptor;

use crate::metrics::Metrics;

/// The authenticated peer of a connection, as its certificate says.
#[derive(Clone, Debug)]
pub struct PeerIdentity {
    inner: Arc<PeerInner>,
}

#[derive(Debug)]
struct PeerInner {
    principal: Principal,
    serial: String,
    remote: SocketAddr,
    cert_sha256: [u8; 32],
    not_after: std::time::SystemTime,
    connected_at: tokio::time::Instant,
}

impl PeerIdentity {
    /// The principal (`<role>/<id>`) named in the certificate.
    pub fn principal(&self) -> &Principal {
        &self.inner.principal
    }

    /// The certificate's serial number (hex), for logs.
    pub fn serial(&self) -> &str {
        &self.inner.serial
    }

    /// The peer's address.
    pub fn remote(&self) -> SocketAddr {
        self.inner.remote
    }

    /// SHA-256 of the peer's certificate (DER), to match it against certificates in requests.
    pub fn cert_sha256(&self) -> &[u8; 32] {
        &self.inner.cert_sha256
    }

    /// When the peer's certificate expires: nothing on this connection lives beyond it.
    pub fn not_after(&self) -> std::time::SystemTime {
        self.inner.not_after
    }

    /// When the connection was authenticated.
    pub fn connected_at(&self) -> tokio::time::Instant {
        self.inner.connected_at
    }
}

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// A file could not be read or holds no usable PEM.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration rejected: {0}")]
    Rustls(String),
}

fn file_err(path: &Path, message: impl ToString) -> TlsSetupError {
    TlsSetupError::File {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

/// The material of a TLS configuration, already read from disk.
pub struct TlsMaterial {
    /// CA certificates that issue client certificates.
    pub client_cas: Vec<CertificateDer<'static>>,
    /// Their CRLs.
    pub crls: Vec<CertificateRevocationListDer<'static>>,
    /// The relay's chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The relay's key.
    pub key: PrivateKeyDer<'static>,
    /// The trust domain of client identities.
    pub trust_domain: String,
    /// Refuse clients once a CRL is stale.
    pub enforce_crl_expiry: bool,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("trust_domain", &self.trust_domain)
            .finish_non_exhaustive()
    }
}

impl TlsMaterial {
    /// Reads every file; fails closed if any is missing, empty or unparsable.
    pub fn load(
        ca: &[impl AsRef<Path>],
        crls: &[impl AsRef<Path>],
        cert: &Path,
        key: &Path,
        trust_domain: &str,
        enforce_crl_expiry: bool,
    ) -> Result<Self, TlsSetupError> {
        let mut client_cas = Vec::new();
        for p in ca {
            let p = p.as_ref();
            let certs = CertificateDer::pem_file_iter(p)
                .map_err(|e| file_err(p, e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| file_err(p, e))?;
            if certs.is_empty() {
                return Err(file_err(p, "no CERTIFICATE in file"));
            }
            client_cas.extend(certs);
        }
        let mut crl_list = Vec::new();
        for p in crls {
            let p = p.as_ref();
            let found = CertificateRevocationListDer::pem_file_iter(p)
                .map_err(|e| file_err(p, e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| file_err(p, e))?;
            if found.is_empty() {
                return Err(file_err(p, "no X509 CRL in file"));
            }
            crl_list.extend(found);
        }
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| file_err(cert, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| file_err(cert, e))?;
        if chain.is_empty() {
            return Err(file_err(cert, "no CERTIFICATE in file"));
        }
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_err(key, e))?;
        Ok(TlsMaterial {
            client_cas,
            crls: crl_list,
            chain,
            key: key_der,
            trust_domain: trust_domain.to_owned(),
            enforce_crl_expiry,
        })
    }

    /// When the CA certificates and the relay's own certificate run out (for expiry warnings).
    pub fn certificate_dates(&self) -> Vec<MaterialDate> {
        let mut out: Vec<MaterialDate> = self
            .client_cas
            .iter()
            .filter_map(|c| cert_date("ca-certificate", c))
            .collect();
        out.extend(
            self.chain
                .first()
                .and_then(|c| cert_date("relay-certificate", c)),
        );
        out
    }

    /// The CRLs, DER.
    pub fn crl_ders(&self) -> Vec<Vec<u8>> {
        self.crls.iter().map(|c| c.to_vec()).collect()
    }

    /// Builds the rustls server configuration.
    pub fn server_config(self) -> Result<Arc<ServerConfig>, TlsSetupError> {
        let provider = Arc::new(crypto_provider());
        let mut roots = rustls::RootCertStore::empty();
        for ca in &self.client_cas {
            roots
                .add(ca.clone())
                .map_err(|e| TlsSetupError::Rustls(format!("CA certificate: {e}")))?;
        }
        if self.crls.is_empty() {
            // Without CRLs webpki checks no revocation at all: never build that.
            return Err(TlsSetupError::Rustls("no CRL given".into()));
        }
        let mut builder =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .with_crls(self.crls);
        if self.enforce_crl_expiry {
            builder = builder.enforce_revocation_expiration();
        }
        let webpki = builder
            .build()
            .map_err(|e| TlsSetupError::Rustls(format!("client verifier: {e}")))?;
        let verifier = Arc::new(SiltaClientVerifier {
            inner: webpki,
            trust_domain: self.trust_domain,
        });
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| TlsSetupError::Rustls(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain, self.key)
            .map_err(|e| TlsSetupError::Rustls(format!("relay certificate/key: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        Ok(Arc::new(config))
    }
}

/// webpki's verifier plus the Silta identity rules.
#[derive(Debug)]
struct SiltaClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    trust_domain: String,
}

impl ClientCertVerifier for SiltaClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)?;
        client_identity(end_entity, &self.trust_domain).map_err(|e| {
            tracing::info!(error = %e, "client certificate rejected: identity");
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )
        })?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The key-exchange groups the relay accepts, most preferred first: the hybrid post-quantum
/// X25519MLKEM768, then classical groups for clients without it.
pub static KX_GROUPS: &[&dyn rustls::crypto::SupportedKxGroup] = &[
    rustls::crypto::aws_lc_rs::kx_group::X25519MLKEM768,
    rustls::crypto::aws_lc_rs::kx_group::X25519,
    rustls::crypto::aws_lc_rs::kx_group::SECP256R1,
    rustls::crypto::aws_lc_rs::kx_group::SECP384R1,
];

/// The aws-lc-rs provider with [`KX_GROUPS`] (stated here, not left to a cargo feature).
pub fn crypto_provider() -> CryptoProvider {
    CryptoProvider {
        kx_groups: KX_GROUPS.to_vec(),
        ..rustls::crypto::aws_lc_rs::default_provider()
    }
}

/// Installs aws-lc-rs (with [`KX_GROUPS`]) as the process-wide rustls provider if none is
/// installed yet. Everything in Silta passes its provider explicitly; this only guards
/// third-party code paths.
pub fn install_crypto_provider() {
    let _ = CryptoProvider::install_default(crypto_provider());
}

/// An authenticated TLS connection handed to tonic; its connect info is the peer identity.
pub struct TlsConnection {
    inner: tokio_rustls::server::TlsStream<TcpStream>,
    peer: PeerIdentity,
}

impl tonic::transport::server::Connected for TlsConnection {
    type ConnectInfo = PeerIdentity;

    fn connect_info(&self) -> PeerIdentity {
        self.peer.clone()
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Most handshakes in progress at once; a connection beyond that is closed at once.
const MAX_CONCURRENT_HANDSHAKES: usize = 1024;
/// Most handshakes in progress from one IP address: one host with silent connections cannot use
/// up the handshake slots of everyone else.
pub const MAX_HANDSHAKES_PER_IP: usize = 32;

/// The TLS configuration in force; replaced as a whole when certificates or CRLs change, so new
/// connections see a new CRL at once. (Each config has no session cache, so nothing that was
/// verified under an old CRL can be resumed.)
pub struct TlsState {
    current: RwLock<InForce>,
    /// Bumped whenever the material changes, so long-lived streams re-check their certificate.
    epoch: watch::Sender<u64>,
    enforce_crl_expiry: bool,
    /// The CA certificates and the relay's own certificate with their notAfter.
    certificates: RwLock<Vec<MaterialDate>>,
}

/// A server configuration, the CRLs (DER) it enforces, the serials they revoke, and when the
/// first of them goes stale.
struct InForce {
    config: Arc<ServerConfig>,
    crls: Arc<Vec<Vec<u8>>>,
    revoked: std::collections::HashSet<String>,
    next_update: Option<std::time::SystemTime>,
}

impl InForce {
    fn new(config: Arc<ServerConfig>, crls: Vec<Vec<u8>>) -> Self {
        InForce {
            config,
            revoked: revoked_serials(&crls),
            next_update: earliest_next_update(&crls),
            crls: Arc::new(crls),
        }
    }
}

/// The earliest nextUpdate of `crls` (None if none has one).
fn earliest_next_update(crls: &[Vec<u8>]) -> Option<std::time::SystemTime> {
    crls.iter()
        .filter_map(|der| x509_parser::parse_x509_crl(der).ok())
        .filter_map(|(_, crl)| crl.next_update())
        .map(|t| {
            std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(t.timestamp()).unwrap_or(0))
        })
        .min()
}

/// Serial numbers (hex of the DER integer, as [`PeerIdentity::serial`]) revoked by `crls`.
fn revoked_serials(crls: &[Vec<u8>]) -> std::collections::HashSet<String> {
    crls.iter()
        .filter_map(|der| x509_parser::parse_x509_crl(der).ok())
        .flat_map(|(_, crl)| {
            crl.iter_revoked_certificates()
                .map(|r| hex::encode(r.raw_serial()))
                .collect::<Vec<_>>()
        })
        .collect()
}

impl TlsState {
    /// Starts with `config`, which enforces `crls` (DER). With `enforce_crl_expiry`, nothing is
    /// served once a CRL is past its nextUpdate, on new and on existing connections.
    pub fn new(config: Arc<ServerConfig>, crls: Vec<Vec<u8>>, enforce_crl_expiry: bool) -> Self {
        TlsState {
            current: RwLock::new(InForce::new(config, crls)),
            epoch: watch::channel(0).0,
            enforce_crl_expiry,
            certificates: RwLock::new(Vec::new()),
        }
    }

    /// Records the CA certificates and the relay's certificate in force (see
    /// [`TlsMaterial::certificate_dates`]).
    pub fn set_certificates(&self, dates: Vec<MaterialDate>) {
        *self.certificates.write().unwrap_or_else(|e| e.into_inner()) = dates;
    }

    /// When the CA certificates, the relay's certificate and the CRLs in force run out.
    pub fn material_dates(&self) -> Vec<MaterialDate> {
        let mut out = self
            .certificates
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        out.extend(crl_dates(&self.crls()));
        out
    }

    /// When the CRLs in force go stale, if that ends access (`tls.enforce_crl_expiry`).
    pub fn crl_deadline(&self) -> Option<std::time::SystemTime> {
        if !self.enforce_crl_expiry {
            return None;
        }
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .next_update
    }

    /// Is a CRL in force past its nextUpdate (and does that end access)?
    pub fn crl_stale(&self, now: std::time::SystemTime) -> bool {
        self.crl_deadline().is_some_and(|d| now >= d)
    }

    /// The configuration for the next handshake.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .config
            .clone()
    }

    /// The CRLs (DER) in force, for clients to check key bundles with.
    pub fn crls(&self) -> Arc<Vec<Vec<u8>>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .crls
            .clone()
    }

    /// Is the certificate with this serial revoked by the CRLs in force? Connections made before
    /// a revocation are checked with this on every request and by long-lived streams.
    pub fn is_revoked(&self, serial: &str) -> bool {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .revoked
            .contains(serial)
    }

    /// Changes whenever the material is replaced.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.epoch.subscribe()
    }

    /// Replaces the configuration and its CRLs.
    pub fn replace(&self, config: Arc<ServerConfig>, crls: Vec<Vec<u8>>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = InForce::new(config, crls);
        self.epoch.send_modify(|e| *e += 1);
    }
}

/// A certificate or CRL of the relay's TLS material and when it runs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaterialDate {
    /// `ca-certificate`, `relay-certificate` or `crl`.
    pub what: &'static str,
    /// The certificate's subject, or the CRL's issuer.
    pub subject: String,
    /// The certificate's serial (hex), or the CRL's number (decimal; empty without one).
    pub serial: String,
    /// notAfter, or the CRL's nextUpdate (unix seconds).
    pub expires: i64,
}

fn cert_date(what: &'static str, der: &[u8]) -> Option<MaterialDate> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(MaterialDate {
        what,
        subject: cert.subject().to_string(),
        serial: hex::encode(cert.raw_serial()),
        expires: cert.validity().not_after.timestamp(),
    })
}

/// nextUpdate of each CRL that has one.
fn crl_dates(crls: &[Vec<u8>]) -> Vec<MaterialDate> {
    crls.iter()
        .filter_map(|der| x509_parser::parse_x509_crl(der).ok())
        .filter_map(|(_, crl)| {
            Some(MaterialDate {
                what: "crl",
                subject: crl.issuer().to_string(),
                serial: crl.crl_number().map(|n| n.to_string()).unwrap_or_default(),
                expires: crl.next_update()?.timestamp(),
            })
        })
        .collect()
}

/// Handshakes in progress, in total and per IP address.
#[derive(Default)]
struct HandshakeSlots {
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    total: Mutex<usize>,
}

/// One taken slot; given back on drop.
struct Slot {
    slots: Arc<HandshakeSlots>,
    ip: IpAddr,
}

impl HandshakeSlots {
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut total = self.total.lock().unwrap_or_else(|e| e.into_inner());
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = per_ip.entry(ip).or_insert(0);
        if *total >= MAX_CONCURRENT_HANDSHAKES || *n >= MAX_HANDSHAKES_PER_IP {
            return None;
        }
        *n += 1;
        *total += 1;
        Some(Slot {
            slots: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut total = self.slots.total.lock().unwrap_or_else(|e| e.into_inner());
        let mut per_ip = self.slots.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        *total -= 1;
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// Accepts TCP connections until `shutdown` flips, handshakes each in its own task under
/// `timeout`, and sends the authenticated ones to `out`. Accepting never waits for a
/// handshake: a connection that finds no free slot is closed immediately.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: Arc<TlsState>,
    trust_domain: String,
    timeout: Duration,
    out: mpsc::Sender<Result<TlsConnection, io::Error>>,
    mut shutdown: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
) {
    let slots = Arc::new(HandshakeSlots::default());
    loop {
        let (tcp, remote) = tokio::select! {
            () = stopped(&mut shutdown) => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(slot) = slots.take(remote.ip()) else {
            metrics.handshake_rejected();
            tracing::warn!(%remote, "too many handshakes in progress; connection closed");
            drop(tcp);
            continue;
        };
        let acceptor = TlsAcceptor::from(tls.current());
        let out = out.clone();
        let metrics = metrics.clone();
        let trust_domain = trust_domain.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let tls = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    metrics.handshake_rejected();
                    tracing::info!(%remote, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    metrics.handshake_rejected();
                    tracing::info!(%remote, "TLS handshake timed out");
                    return;
                }
            };
            drop(slot);
            // The verifier has already checked the identity; parse it once for the handlers.
            let Some(peer) = peer_identity(&tls, &trust_domain, remote) else {
                metrics.handshake_rejected();
                tracing::warn!(%remote, "authenticated connection without a usable identity; closed");
                return;
            };
            metrics.handshake_accepted();
            let kx_group = tls
                .get_ref()
                .1
                .negotiated_key_exchange_group()
                .map(|g| g.name());
            tracing::debug!(%remote, principal = %peer.principal(), serial = peer.serial(), ?kx_group, "client authenticated");
            let conn = TlsConnection { inner: tls, peer };
            let _ = out.send(Ok(conn)).await;
        });
    }
}

fn peer_identity(
    tls: &tokio_rustls::server::TlsStream<TcpStream>,
    trust_domain: &str,
    remote: SocketAddr,
) -> Option<PeerIdentity> {
    let leaf = tls.get_ref().1.peer_certificates()?.first()?;
    let id = client_identity(leaf, trust_domain).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).ok()?;
    let serial = hex::encode(cert.raw_serial());
    let not_after = std::time::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0));
    Some(PeerIdentity {
        inner: Arc::new(PeerInner {
            principal: id.principal,
            serial,
            remote,
            cert_sha256: sha2::Sha256::digest(leaf.as_ref()).into(),
            not_after,
            connected_at: tokio::time::Instant::now(),
        }),
    })
}

/// Completes once the shutdown flag is set (or its sender is gone).
pub(crate) async fn stopped(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|s| *s).await;
}
