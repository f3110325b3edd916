//! The seams of the real code, filled with turmoil sockets: the server's
//! `incoming` stream, the Raft transport's [`Connector`], and the client's
//! connector. Nothing here binds or dials a real socket.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
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
/// The port every node's peer (Raft transport) listener binds.
pub const PEER_PORT: u16 = 7001;
/// Limit on dialling a peer, as the real `TcpConnector` sets it.
const RAFT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// HTTP/2 pings on Raft channels, as the real `TcpConnector` sets them. They
/// matter more here: turmoil's TCP never retransmits, so a segment dropped by
/// a partition wedges its connection until a ping times out.
const RAFT_KEEP_ALIVE: Duration = Duration::from_secs(5);

/// One host's TCP connections, numbered in the order they were made.
///
/// When a host crashes, tokio drops its tasks in an order set by task ids,
/// which are process-global: they depend on how many tasks every other
/// thread has spawned (another seed running beside this one, or the seeds
/// run before it). Each turmoil stream dropped sends a FIN or RST, and each
/// of those draws a latency from the seed's generator, so that order leaked
/// into everything after the crash and a seed did not replay to the same
/// trace. During a crash the streams are therefore held back as they are
/// dropped; the last one closes them all in the order they were made, still
/// inside the crash (turmoil sends the FINs only there).
#[derive(Debug, Default)]
pub struct HostSockets(Mutex<SocketsState>);

#[derive(Debug, Default)]
struct SocketsState {
    /// The number the next connection gets.
    next: u64,
    /// Connections made and not yet dropped.
    live: usize,
    /// Set while the driver crashes the host.
    crashing: bool,
    /// Connections dropped during the crash, not yet closed.
    held: Vec<(u64, TcpStream)>,
}

impl HostSockets {
    fn state(&self) -> MutexGuard<'_, SocketsState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wraps a new connection of this host.
    fn adopt(self: &Arc<Self>, stream: TcpStream) -> SimStream {
        let mut state = self.state();
        let number = state.next;
        state.next += 1;
        state.live += 1;
        SimStream { stream: Some(stream), number, sockets: self.clone() }
    }

    /// The host is about to crash: hold back its dropped connections.
    pub fn begin_crash(&self) {
        self.state().crashing = true;
    }

    /// The crash is over. Every connection must have been closed by then
    /// (dropping the host's runtime drops them all).
    pub fn end_crash(&self) {
        let mut state = self.state();
        state.crashing = false;
        assert!(
            state.held.is_empty() && state.live == 0,
            "a crashed host kept {} connection(s) open and {} unclosed",
            state.live,
            state.held.len()
        );
    }

    fn dropped(&self, number: u64, stream: TcpStream) {
        let mut state = self.state();
        state.live -= 1;
        if !state.crashing {
            drop(state);
            drop(stream);
            return;
        }
        state.held.push((number, stream));
        if state.live == 0 {
            let mut held = std::mem::take(&mut state.held);
            drop(state);
            held.sort_by_key(|(number, _)| *number);
            // Closed one by one, in the order they were made.
            for (_, stream) in held {
                drop(stream);
            }
        }
    }
}

/// A turmoil connection of a host whose crash closes connections in a
/// fixed order ([`HostSockets`]).
#[derive(Debug)]
pub struct SimStream {
    /// Taken only by `drop`.
    stream: Option<TcpStream>,
    number: u64,
    sockets: Arc<HostSockets>,
}

impl SimStream {
    fn stream(&mut self) -> Pin<&mut TcpStream> {
        Pin::new(self.stream.as_mut().expect("a stream is only taken when dropped"))
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        if let Some(stream) = self.stream.take() {
            self.sockets.dropped(self.number, stream);
        }
    }
}

impl AsyncRead for SimStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_read(cx, buf)
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.stream().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_shutdown(cx)
    }
}

/// An accepted turmoil connection, as tonic's server wants it.
#[derive(Debug)]
pub struct Accepted(pub SimStream);

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
pub fn incoming(
    listener: TcpListener,
    sockets: Arc<HostSockets>,
) -> impl Stream<Item = io::Result<Accepted>> + Send + 'static {
    futures_util::stream::unfold(listener, move |listener| {
        let sockets = sockets.clone();
        async move {
            let accepted = listener.accept().await.map(|(stream, _peer)| Accepted(sockets.adopt(stream)));
            Some((accepted, listener))
        }
    })
}

type Dialled = Pin<Box<dyn Future<Output = io::Result<TokioIo<SimStream>>> + Send>>;

/// Opens a turmoil TCP connection to the URI's `host:port`.
fn dial(sockets: Arc<HostSockets>, uri: Uri) -> Dialled {
    Box::pin(async move {
        let authority = uri.authority().map(|a| a.as_str().to_owned());
        let authority =
            authority.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "URI without authority"))?;
        let stream = TcpStream::connect(authority).await?;
        Ok(TokioIo::new(sockets.adopt(stream)))
    })
}

/// A lazily connecting channel to `endpoint` over turmoil.
fn lazy_channel(endpoint: Endpoint, sockets: Arc<HostSockets>) -> Channel {
    endpoint.connect_with_connector_lazy(tower::service_fn(move |uri| dial(sockets.clone(), uri)))
}

/// The Raft transport's dialler: turmoil sockets with the settings of the
/// real `raftq_raft::network::TcpConnector`; the connections are the host's.
#[derive(Clone, Debug)]
pub struct RaftConnector(pub Arc<HostSockets>);

impl raftq_raft::network::Connector for RaftConnector {
    fn channel(&self, _target: u64, addr: &str) -> Result<Channel, String> {
        let endpoint =
            Endpoint::from_shared(format!("http://{addr}")).map_err(|e| format!("bad address {addr:?}: {e}"))?;
        Ok(lazy_channel(
            endpoint
                .connect_timeout(RAFT_CONNECT_TIMEOUT)
                .http2_keep_alive_interval(RAFT_KEEP_ALIVE)
                .keep_alive_timeout(RAFT_KEEP_ALIVE),
            self.0.clone(),
        ))
    }
}

/// The client's connector: the client's own endpoint settings
/// ([`raftq_client::endpoint`]) over turmoil sockets. Client hosts never
/// crash, so their connections need no ordering of their own.
pub fn client_connector(config: &ClientConfig) -> impl raftq_client::Connector + use<> {
    let config = config.clone();
    let sockets = Arc::new(HostSockets::default());
    move |addr: &str| -> Result<Channel, ClientError> {
        Ok(lazy_channel(raftq_client::endpoint(addr, &config)?, sockets.clone()))
    }
}
