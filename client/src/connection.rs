//! The mutual-TLS connection to the relay.
//!
//! The connection is TLS 1.3 only, with ALPN `h2`, the relay verified against the configured CA
//! and our certificate presented. With TLS 1.3 a server refuses a client certificate only after
//! the client considers the handshake done, so [`Connection::connect`] makes one health call
//! right away and turns a refusal into [`ConnectError::CertificateRejected`] with the TLS alert,
//! instead of a bare transport error on the first real call.
//!
//! The key exchange prefers the hybrid post-quantum group X25519MLKEM768 ([`KX_GROUPS`]):
//! referrals stay sensitive for decades, and traffic recorded today must not become readable
//! once a quantum computer can break X25519 alone.

use std::{error::Error as StdError, path::Path, sync::Arc, time::Duration};

use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore, pki_types::ServerName};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};
use silta_proto::pb::{
    admin_client::AdminClient, audit_log_client::AuditLogClient, directory_client::DirectoryClient,
    mailbox_client::MailboxClient,
};
use tonic::transport::{Channel, Endpoint, Uri};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// Largest message the client accepts from the relay.
pub(crate) const MAX_MESSAGE_BYTES: usize = 300 * 1024 * 1024;

/// How to reach and authenticate to a relay.
#[derive(Clone)]
pub struct RelayConfig {
    /// `host:port` to connect to.
    pub address: String,
    /// The name the relay's certificate must carry (DNS name or IP address).
    pub server_name: String,
    /// CA certificates (PEM) that issued the relay's certificate.
    pub ca_pem: Vec<u8>,
    /// Our certificate chain and key (PEM). `None` connects without a client certificate,
    /// which a relay always refuses; useful only to test that.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// TCP connect plus TLS handshake timeout.
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayConfig")
            .field("address", &self.address)
            .field("server_name", &self.server_name)
            .field("identity", &self.identity.is_some())
            .finish_non_exhaustive()
    }
}

impl RelayConfig {
    /// Reads the CA and (optionally) our certificate and key from PEM files.
    pub fn from_files(
        address: &str,
        server_name: &str,
        ca: &Path,
        identity: Option<(&Path, &Path)>,
    ) -> Result<Self, ConnectError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| ConnectError::Config(format!("{}: {e}", p.display())))
        };
        Ok(RelayConfig {
            address: address.to_owned(),
            server_name: server_name.to_owned(),
            ca_pem: read(ca)?,
            identity: match identity {
                Some((c, k)) => Some((read(c)?, read(k)?)),
                None => None,
            },
            connect_timeout: Duration::from_secs(10),
        })
    }

    /// The rustls configuration every connection to this relay uses: TLS 1.3 only, ALPN `h2`,
    /// the key-exchange groups of [`KX_GROUPS`], our certificate if any.
    pub fn tls_config(&self) -> Result<ClientConfig, ConnectError> {
        let provider = Arc::new(crypto_provider());
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&self.ca_pem) {
            let cert = cert.map_err(|e| ConnectError::Config(format!("CA certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| ConnectError::Config(format!("CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(ConnectError::Config("no CA certificate given".into()));
        }
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| ConnectError::Config(e.to_string()))?
            .with_root_certificates(roots);
        let mut config = match &self.identity {
            Some((cert_pem, key_pem)) => {
                let chain = CertificateDer::pem_slice_iter(cert_pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| ConnectError::Config(format!("client certificate: {e}")))?;
                let key = PrivateKeyDer::from_pem_slice(key_pem)
                    .map_err(|e| ConnectError::Config(format!("client key: {e}")))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| ConnectError::Config(format!("client certificate/key: {e}")))?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
    }
}

/// The key-exchange groups a Silta client offers, most preferred first: the hybrid post-quantum
/// X25519MLKEM768, then classical groups so that a relay without it can still be reached.
pub(crate) static KX_GROUPS: &[&dyn rustls::crypto::SupportedKxGroup] = &[
    rustls::crypto::aws_lc_rs::kx_group::X25519MLKEM768,
    rustls::crypto::aws_lc_rs::kx_group::X25519,
    rustls::crypto::aws_lc_rs::kx_group::SECP256R1,
    rustls::crypto::aws_lc_rs::kx_group::SECP384R1,
];

/// The aws-lc-rs provider with [`KX_GROUPS`] (stated here, not left to a cargo feature).
fn crypto_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::CryptoProvider {
        kx_groups: KX_GROUPS.to_vec(),
        ..rustls::crypto::aws_lc_rs::default_provider()
    }
}

/// Why a connection could not be made. Each says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// Our own configuration is unusable (unreadable files, bad PEM).
    #[error("client configuration: {0}")]
    Config(String),
    /// The relay could not be reached (refused, timed out, name not resolved).
    #[error("relay unreachable: {0}")]
    Unreachable(String),
    /// The relay refused our certificate; `alert` is the TLS alert it sent.
    #[error(
        "the relay rejected this client's certificate ({alert}): check that it is issued by the relay's CA, not revoked, not expired or not yet valid, and is a role certificate"
    )]
    CertificateRejected {
        /// E.g. `CertificateRevoked`, `CertificateExpired`, `AccessDenied`, `CertificateRequired`.
        alert: String,
    },
    /// We refused the relay's certificate.
    #[error("the relay's certificate is not trusted: {0}")]
    RelayCertificate(String),
    /// Anything else.
    #[error("connection failed: {0}")]
    Other(String),
}

/// Finds the TLS error behind a transport failure, if there is one.
pub(crate) fn tls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&'a (dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(t) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
        {
            return Some(t);
        }
        cur = e.source();
    }
    None
}

/// Turns a transport-level failure into the most precise [`ConnectError`].
pub(crate) fn classify(err: &(dyn StdError + 'static)) -> ConnectError {
    match tls_error(err) {
        Some(rustls::Error::AlertReceived(alert)) => ConnectError::CertificateRejected {
            alert: format!("{alert:?}"),
        },
        Some(rustls::Error::InvalidCertificate(e)) => {
            ConnectError::RelayCertificate(format!("{e:?}"))
        }
        Some(other) => ConnectError::Other(other.to_string()),
        None => {
            let mut text = err.to_string();
            let mut cur = err.source();
            while let Some(e) = cur {
                let part = e.to_string();
                if !text.contains(&part) {
                    text = format!("{text}: {part}");
                }
                cur = e.source();
            }
            // hyper and h2 flatten the TLS error into text on some paths; the alert name is
            // rustls' Debug form of AlertDescription either way.
            if let Some(rest) = text.split("received fatal alert: ").nth(1) {
                let alert: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                return ConnectError::CertificateRejected { alert };
            }
            if text.contains("Connection refused")
                || text.contains("timed out")
                || text.contains("dns")
            {
                ConnectError::Unreachable(text)
            } else {
                ConnectError::Other(text)
            }
        }
    }
}

/// Completes a TLS handshake and reads (never writes), so a certificate refusal, which TLS 1.3
/// sends after the client's Finished, arrives as the alert it is. `None` if none came.
async fn probe_alert(cfg: &RelayConfig) -> Option<String> {
    use tokio::io::AsyncReadExt as _;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg.tls_config().ok()?));
    let server_name = ServerName::try_from(cfg.server_name.clone()).ok()?;
    let work = async {
        let tcp = tokio::net::TcpStream::connect(&cfg.address).await.ok()?;
        let mut stream = tls.connect(server_name, tcp).await.ok()?;
        let mut buf = [0u8; 64];
        match stream.read(&mut buf).await {
            Err(e) => match tls_error(&e) {
                Some(rustls::Error::AlertReceived(alert)) => Some(format!("{alert:?}")),
                _ => None,
            },
            Ok(_) => None,
        }
    };
    tokio::time::timeout(cfg.connect_timeout.min(Duration::from_secs(5)), work)
        .await
        .ok()
        .flatten()
}

/// An authenticated connection to a relay. Cheap to clone; calls are multiplexed over one
/// HTTP/2 connection that reconnects on demand.
#[derive(Clone, Debug)]
pub struct Connection {
    channel: Channel,
}

impl Connection {
    /// Connects, authenticates, and checks that the relay accepted us.
    pub async fn connect(cfg: &RelayConfig) -> Result<Self, ConnectError> {
        let conn = Self::connect_unchecked(cfg).await?;
        let checked = HealthClient::new(conn.channel.clone())
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(|status| match std::error::Error::source(&status) {
                Some(src) => classify(src),
                None => ConnectError::Other(status.to_string()),
            });
        match checked {
            Ok(_) => Ok(conn),
            // The relay's alert can lose the race with our first write ("broken pipe"): ask
            // again, only reading this time, so the alert is what we see.
            Err(ConnectError::Other(text)) => match probe_alert(cfg).await {
                Some(alert) => Err(ConnectError::CertificateRejected { alert }),
                None => Err(ConnectError::Other(text)),
            },
            Err(e) => Err(e),
        }
    }

    /// Connects without the health check: a rejected certificate surfaces on the first call.
    pub async fn connect_unchecked(cfg: &RelayConfig) -> Result<Self, ConnectError> {
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg.tls_config()?));
        let server_name = ServerName::try_from(cfg.server_name.clone())
            .map_err(|e| ConnectError::Config(format!("server name {:?}: {e}", cfg.server_name)))?;
        let address = cfg.address.clone();
        let timeout = cfg.connect_timeout;
        // The URI is only a label: the connector below dials `address` and does TLS itself.
        let endpoint = Endpoint::from_shared(format!("http://{}", cfg.address))
            .map_err(|e| ConnectError::Config(format!("relay address {:?}: {e}", cfg.address)))?
            .connect_timeout(timeout)
            // A half-open connection (a NAT forgetting it, the relay's machine losing power) is
            // found within ~30 s instead of a subscription waiting for ever.
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true);
        let connector = tower::service_fn(move |_: Uri| {
            let tls = tls.clone();
            let server_name = server_name.clone();
            let address = address.clone();
            async move {
                let work = async {
                    let tcp = tokio::net::TcpStream::connect(&address).await?;
                    tcp.set_nodelay(true)?;
                    let stream = tls.connect(server_name, tcp).await?;
                    tracing::debug!(
                        kx_group = ?stream.get_ref().1.negotiated_key_exchange_group().map(|g| g.name()),
                        "TLS connection to the relay established"
                    );
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                };
                tokio::time::timeout(timeout, work).await.map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
                })?
            }
        });
        let channel = endpoint
            .connect_with_connector(connector)
            .await
            .map_err(|e| classify(&e))?;
        Ok(Connection { channel })
    }

    /// The underlying channel.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A `silta.v1.Mailbox` client.
    pub fn mailbox(&self) -> MailboxClient<Channel> {
        MailboxClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// A `silta.v1.Directory` client.
    pub fn directory(&self) -> DirectoryClient<Channel> {
        DirectoryClient::new(self.channel.clone())
            .max_decoding_message_size(silta_proto::limits::CLIENT_DECODE_BYTES)
    }

    /// A `silta.v1.AuditLog` client.
    pub fn audit(&self) -> AuditLogClient<Channel> {
        AuditLogClient::new(self.channel.clone())
            .max_decoding_message_size(silta_proto::limits::CLIENT_DECODE_BYTES)
    }

    /// A `silta.v1.Admin` client (role `admin` only).
    pub fn admin(&self) -> AdminClient<Channel> {
        AdminClient::new(self.channel.clone())
            .max_decoding_message_size(silta_proto::limits::CLIENT_DECODE_BYTES)
    }

    /// A `grpc.health.v1.Health` client.
    pub fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel.clone())
    }
}
