//! The machine's gRPC ceiling: a one-method tonic service over the same mutual TLS as the relay
//! (TLS 1.3, client certificates required and checked against the CA and CRL, the relay's own
//! rustls configuration), optionally appending every request to a file with group commit.

use std::{
    convert::Infallible,
    io::Write as _,
    path::Path,
    pin::Pin,
    sync::{Arc, mpsc as std_mpsc},
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::oneshot,
};
use tonic::{
    Status,
    codegen::{Body, BoxFuture, StdError, http},
    transport::Channel,
};

/// The service's gRPC path.
pub const ECHO_PATH: &str = "/silta.bench.Echo/Echo";
/// The first stdout line of `echo-server`, followed by its address.
pub const LISTENING: &str = "echo-server listening on ";

/// The request: bytes to take.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoRequest {
    /// What to store (or drop).
    #[prost(bytes = "vec", tag = "1")]
    pub payload: Vec<u8>,
}

/// The small answer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoReply {
    /// How many bytes were taken.
    #[prost(uint64, tag = "1")]
    pub len: u64,
}

/// Calls the echo method over `channel`.
pub async fn call(channel: Channel, payload: Vec<u8>) -> Result<EchoReply, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("echo channel not ready: {e}")))?;
    let codec = tonic_prost::ProstCodec::<EchoRequest, EchoReply>::default();
    let path = http::uri::PathAndQuery::from_static(ECHO_PATH);
    grpc.unary(tonic::Request::new(EchoRequest { payload }), path, codec)
        .await
        .map(|r| r.into_inner())
}

/// A write waiting for the group commit, and who to tell.
type Job = (Vec<u8>, oneshot::Sender<Result<(), String>>);

/// Appends to a file from one thread: takes everything queued, writes it, fdatasyncs once,
/// then answers every request of the batch (Silta's writer does the same).
#[derive(Clone)]
pub struct GroupCommit {
    jobs: std_mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Opens (creates, appends to) `path` and starts the writer thread.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let (jobs, rx) = std_mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || {
                let mut batch: Vec<Job> = Vec::new();
                while let Ok(first) = rx.recv() {
                    batch.push(first);
                    batch.extend(rx.try_iter());
                    let written = batch
                        .iter()
                        .try_for_each(|(bytes, _)| file.write_all(bytes))
                        .and_then(|()| file.sync_data())
                        .map_err(|e| e.to_string());
                    for (_, reply) in batch.drain(..) {
                        let _ = reply.send(written.clone());
                    }
                }
            })?;
        Ok(GroupCommit { jobs })
    }

    /// Appends `bytes` and returns once they are on disk.
    pub async fn append(&self, bytes: Vec<u8>) -> Result<(), Status> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send((bytes, tx))
            .map_err(|_| Status::internal("writer thread gone"))?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Status::internal(format!("write failed: {e}"))),
            Err(_) => Err(Status::internal("writer thread gone")),
        }
    }
}

/// The echo service: answers with the length; with a [`GroupCommit`], only once the request
/// is on disk.
#[derive(Clone)]
pub struct EchoService {
    store: Option<GroupCommit>,
}

impl EchoService {
    /// A service that stores through `store` (or drops the bytes).
    pub fn new(store: Option<GroupCommit>) -> Self {
        EchoService { store }
    }

    async fn echo(self, req: EchoRequest) -> Result<EchoReply, Status> {
        let len = req.payload.len() as u64;
        if let Some(store) = &self.store {
            store.append(req.payload).await?;
        }
        Ok(EchoReply { len })
    }
}

impl tonic::server::NamedService for EchoService {
    const NAME: &'static str = "silta.bench.Echo";
}

struct EchoMethod(EchoService);

impl tonic::server::UnaryService<EchoRequest> for EchoMethod {
    type Response = EchoReply;
    type Future = BoxFuture<tonic::Response<EchoReply>, Status>;

    fn call(&mut self, request: tonic::Request<EchoRequest>) -> Self::Future {
        let svc = self.0.clone();
        Box::pin(async move {
            svc.echo(request.into_inner())
                .await
                .map(tonic::Response::new)
        })
    }
}

impl<B> tonic::codegen::Service<http::Request<B>> for EchoService
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() == ECHO_PATH {
            let method = EchoMethod(self.clone());
            Box::pin(async move {
                let codec = tonic_prost::ProstCodec::<EchoReply, EchoRequest>::default();
                let mut grpc = tonic::server::Grpc::new(codec);
                Ok(grpc.unary(method, req).await)
            })
        } else {
            Box::pin(async move { Ok(Status::unimplemented("no such method").into_http()) })
        }
    }
}

/// A TLS connection handed to tonic.
pub struct Tls(tokio_rustls::server::TlsStream<TcpStream>);

impl tonic::transport::server::Connected for Tls {
    type ConnectInfo = ();
    fn connect_info(&self) {}
}

impl AsyncRead for Tls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// Serves `svc` on `listener` with `tls` until the process ends: each handshake in its own task
/// under a 10 s timeout (one slow client never stalls the others), as the relay does.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    svc: EchoService,
) -> Result<(), tonic::transport::Error> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Tls>>(64);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                // Out of file descriptors or similar: wait instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                if let Ok(Ok(stream)) =
                    tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                {
                    let _ = tx.send(Ok(Tls(stream))).await;
                }
            });
        }
    });
    tonic::transport::Server::builder()
        .add_service(svc)
        .serve_with_incoming(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
}
