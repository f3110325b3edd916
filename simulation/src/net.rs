//! The seams of the real code, filled with turmoil sockets: the server's
//! `incoming` stream, the Raft transport's [`Connector`], and the client's
//! connector. Nothing here binds or dials a real socket.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use hyper_util::rt::TokioIo;
use raftq_client::{ClientConfig, ClientError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;
use tonic::transport::{Channel, Endpoint, Uri};
use turmoil::net::{TcpListener, TcpStream};

/// The port every node listens on (each node is its own turmoil host).
pub const NODE_PORT: u16 = 7000;
/// Limit on dialling a peer, as the real `TcpConnector` sets it.
const RAFT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// HTTP/2 pings on Raft channels, as the real `TcpConnector` sets them. They
/// matter more here: turmoil's TCP never retransmits, so a segment dropped by
/// a partition wedges its connection until a ping times out.
const RAFT_KEEP_ALIVE: Duration = Duration::from_secs(5);

/// An accepted turmoil connection, as tonic's server wants it.
#[derive(Debug)]
pub struct Accepted(pub TcpStream);

impl Connected for Accepted {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Accepted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Accepted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The connections accepted on `listener`, as `serve`'s `incoming` stream.
pub fn incoming(listener: TcpListener) -> impl Stream<Item = io::Result<Accepted>> + Send + 'static {
    futures_util::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _peer)| Accepted(stream));
        Some((accepted, listener))
    })
}

type Dialled = Pin<Box<dyn Future<Output = io::Result<TokioIo<TcpStream>>> + Send>>;

/// Opens a turmoil TCP connection to the URI's `host:port`.
fn dial(uri: Uri) -> Dialled {
    Box::pin(async move {
        let authority = uri.authority().map(|a| a.as_str().to_owned());
        let authority =
            authority.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "URI without authority"))?;
        let stream = TcpStream::connect(authority).await?;
        Ok(TokioIo::new(stream))
    })
}

/// A lazily connecting channel to `endpoint` over turmoil.
fn lazy_channel(endpoint: Endpoint) -> Channel {
    endpoint.connect_with_connector_lazy(tower::service_fn(dial))
}

/// The Raft transport's dialler: turmoil sockets with the settings of the
/// real `raftq_raft::network::TcpConnector`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RaftConnector;

impl raftq_raft::network::Connector for RaftConnector {
    fn channel(&self, addr: &str) -> Result<Channel, String> {
        let endpoint =
            Endpoint::from_shared(format!("http://{addr}")).map_err(|e| format!("bad address {addr:?}: {e}"))?;
        Ok(lazy_channel(
            endpoint
                .connect_timeout(RAFT_CONNECT_TIMEOUT)
                .http2_keep_alive_interval(RAFT_KEEP_ALIVE)
                .keep_alive_timeout(RAFT_KEEP_ALIVE),
        ))
    }
}

/// The client's connector: the client's own endpoint settings
/// ([`raftq_client::endpoint`]) over turmoil sockets.
pub fn client_connector(config: &ClientConfig) -> impl raftq_client::Connector + use<> {
    let config = config.clone();
    move |addr: &str| -> Result<Channel, ClientError> { Ok(lazy_channel(raftq_client::endpoint(addr, &config)?)) }
}
