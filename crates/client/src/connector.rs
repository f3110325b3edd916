//! The seam where channels are made: TCP by default, anything (turmoil
//! sockets, in-memory pipes, TLS later) through [`Connector`].

use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::{config::ClientConfig, error::ClientError};

/// Makes a gRPC channel to one node address (`host:port`). Called at most
/// once per address per [`crate::Client`]; the channel is cached and must
/// connect lazily (it may not block or do I/O here).
///
/// Closures `Fn(&str) -> Result<Channel, ClientError>` are connectors. The
/// simulation builds its channels over turmoil sockets this way, with
/// [`endpoint`]'s settings and `Endpoint::connect_with_connector_lazy`:
///
/// ```no_run
/// use raftq_client::{Client, ClientConfig, ClientError, endpoint};
///
/// let config = ClientConfig::new(["127.0.0.1:7001"]);
/// let settings = config.clone();
/// let client = Client::with_connector(config, move |addr: &str| {
///     // Here: `.connect_with_connector_lazy(turmoil_connector)`.
///     Ok::<_, ClientError>(endpoint(addr, &settings)?.connect_lazy())
/// })?;
/// # Ok::<(), ClientError>(())
/// ```
pub trait Connector: Send + Sync + 'static {
    /// A lazily connecting channel to `addr`.
    fn connect(&self, addr: &str) -> Result<Channel, ClientError>;
}

impl<F> Connector for F
where
    F: Fn(&str) -> Result<Channel, ClientError> + Send + Sync + 'static,
{
    fn connect(&self, addr: &str) -> Result<Channel, ClientError> {
        self(addr)
    }
}

/// The default connector: plain HTTP/2 over TCP, connected on first use.
#[derive(Debug, Clone)]
pub struct TcpConnector {
    /// Endpoint settings are taken from this config.
    config: ClientConfig,
}

impl TcpConnector {
    /// A connector using `config`'s timeouts.
    pub fn new(config: &ClientConfig) -> Self {
        Self { config: config.clone() }
    }
}

impl Connector for TcpConnector {
    fn connect(&self, addr: &str) -> Result<Channel, ClientError> {
        Ok(endpoint(addr, &self.config)?.connect_lazy())
    }
}

/// How often an idle connection is pinged, so a dead node (a leader killed
/// without closing its sockets) is noticed without waiting for a call.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// How long a keep-alive ping may go unanswered before the connection is
/// dropped.
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// The endpoint settings every raftq channel uses (for connectors that bring
/// their own transport and call `connect_with_connector_lazy`).
pub fn endpoint(addr: &str, config: &ClientConfig) -> Result<Endpoint, ClientError> {
    crate::config::validate_address(addr).map_err(ClientError::InvalidArgument)?;
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
        .map_err(|e| ClientError::InvalidArgument(format!("{addr:?}: {e}")))?;
    if let Some(tls) = &config.tls {
        let mut settings = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&tls.ca_pem));
        if let Some((cert, key)) = &tls.identity {
            settings = settings.identity(Identity::from_pem(cert, key));
        }
        if let Some(domain) = &tls.domain {
            settings = settings.domain_name(domain.clone());
        }
        endpoint = endpoint.tls_config(settings).map_err(|e| ClientError::InvalidArgument(format!("tls: {e}")))?;
    }
    Ok(endpoint
        .connect_timeout(config.connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
        .keep_alive_while_idle(true))
}
