//! Plain configuration structs, validated once before use.

use std::time::Duration;

use crate::error::ClientError;

/// Most messages in one Publish request (the server's limit).
pub const BATCH_MESSAGES_MAX: usize = raftq_core::limits::PUBLISH_MESSAGES_MAX;
/// Most message bytes (bodies plus attribute keys and values) in one Publish
/// request (the server's limit).
pub const BATCH_BYTES_MAX: usize = raftq_core::limits::PUBLISH_BYTES_MAX;
/// Largest gRPC message the client encodes or decodes: a full 4 MiB batch
/// or a full receive, with every message's envelope (the server's limit).
pub const GRPC_MESSAGE_BYTES_MAX: usize = raftq_core::limits::CLIENT_MESSAGE_BYTES_MAX;
/// Most Publish requests a [`crate::Publisher`] keeps in flight at once.
pub const INFLIGHT_BATCHES_MAX: usize = 64;
/// Longest a [`crate::Publisher`] may hold a partial batch back.
pub const LINGER_MAX: Duration = Duration::from_secs(10);
/// Longest long poll the server accepts for one Receive call.
pub const RECEIVE_WAIT_MAX: Duration = Duration::from_millis(raftq_core::limits::RECEIVE_WAIT_MS_MAX);

/// Default [`ClientConfig::connect_timeout`].
pub const CONNECT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(3);
/// Default [`ClientConfig::request_timeout`].
pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// Default [`RetryPolicy::max_attempts`].
pub const RETRY_ATTEMPTS_DEFAULT: u32 = 60;
/// Default [`RetryPolicy::base_backoff`].
pub const RETRY_BASE_BACKOFF_DEFAULT: Duration = Duration::from_millis(50);
/// Default [`RetryPolicy::max_backoff`].
pub const RETRY_MAX_BACKOFF_DEFAULT: Duration = Duration::from_secs(1);
/// Default [`RetryPolicy::deadline`].
pub const RETRY_DEADLINE_DEFAULT: Duration = Duration::from_secs(30);
/// Default [`PublisherConfig::max_batch_messages`].
pub const PUBLISHER_BATCH_MESSAGES_DEFAULT: usize = 500;
/// Default [`PublisherConfig::max_batch_bytes`].
pub const PUBLISHER_BATCH_BYTES_DEFAULT: usize = 1024 * 1024;
/// Default [`PublisherConfig::linger`].
pub const PUBLISHER_LINGER_DEFAULT: Duration = Duration::from_millis(5);
/// Default [`PublisherConfig::max_inflight_batches`].
pub const PUBLISHER_INFLIGHT_BATCHES_DEFAULT: usize = 4;

const _: () = assert!(GRPC_MESSAGE_BYTES_MAX >= 2 * BATCH_BYTES_MAX);
const _: () = assert!(PUBLISHER_BATCH_MESSAGES_DEFAULT <= BATCH_MESSAGES_MAX);
const _: () = assert!(PUBLISHER_BATCH_BYTES_DEFAULT <= BATCH_BYTES_MAX);
const _: () = assert!(PUBLISHER_INFLIGHT_BATCHES_DEFAULT <= INFLIGHT_BATCHES_MAX);

/// How to reach the cluster and how hard to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Seed addresses (`host:port`) of the nodes' gRPC listeners. Any subset
    /// of the cluster works: the client follows leader hints to the rest.
    pub servers: Vec<String>,
    /// Limit on establishing a TCP + HTTP/2 connection to one node.
    pub connect_timeout: Duration,
    /// Limit on one attempt of one unary call (long polls get their wait on
    /// top), so a node that accepted the connection but hangs is given up on.
    pub request_timeout: Duration,
    /// When and how often to retry a failed call.
    pub retry: RetryPolicy,
    /// Sent as `authorization: Bearer <token>` with every call, for a
    /// cluster with auth on. `None`: no token.
    pub token: Option<BearerToken>,
    /// TLS to the servers; `None`: plain HTTP/2.
    pub tls: Option<TlsConfig>,
}

/// TLS settings of a client: the servers' CA and, for servers that ask
/// for client certificates, the client's own certificate and key.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM of the CA certificate(s) the servers' certificates chain to.
    pub ca_pem: Vec<u8>,
    /// PEM certificate chain and private key of this client, if any.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// The name to check the servers' certificates against; `None`: the
    /// host of each address (its IP address or DNS name).
    pub domain: Option<String>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_pem_bytes", &self.ca_pem.len())
            .field("identity", &self.identity.as_ref().map(|_| "<certificate and key>"))
            .field("domain", &self.domain)
            .finish()
    }
}

/// A bearer token. Its `Debug` does not print it, so a logged config does
/// not leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    /// A token; [`ClientConfig::validate`] checks that it can be sent.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl ClientConfig {
    /// A config for these servers with default timeouts and retries.
    pub fn new<S: Into<String>>(servers: impl IntoIterator<Item = S>) -> Self {
        Self { servers: servers.into_iter().map(Into::into).collect(), ..Self::default() }
    }

    /// Checks every field; the client refuses a config that fails.
    pub fn validate(&self) -> Result<(), ClientError> {
        if self.servers.is_empty() {
            return Err(config_error("servers: at least one host:port is needed"));
        }
        for (i, server) in self.servers.iter().enumerate() {
            validate_address(server).map_err(|why| config_error(format!("servers[{i}]: {why}")))?;
        }
        if self.connect_timeout.is_zero() {
            return Err(config_error("connect_timeout: must be positive"));
        }
        if self.request_timeout.is_zero() {
            return Err(config_error("request_timeout: must be positive"));
        }
        if let Some(tls) = &self.tls
            && tls.ca_pem.is_empty()
        {
            return Err(config_error("tls.ca_pem: the CA certificate is needed"));
        }
        if let Some(token) = &self.token
            && (token.0.is_empty() || !token.0.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(config_error("token: must be printable ASCII without spaces"));
        }
        self.retry.validate()
    }
}

impl Default for ClientConfig {
    /// No servers (set them), 3 s to connect, 10 s per attempt (a commit is
    /// a majority's fsync: milliseconds normally, seconds under load), and
    /// the default [`RetryPolicy`].
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            connect_timeout: CONNECT_TIMEOUT_DEFAULT,
            request_timeout: REQUEST_TIMEOUT_DEFAULT,
            retry: RetryPolicy::default(),
            token: None,
            tls: None,
        }
    }
}

/// Retry budget and exponential backoff for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most attempts of one call, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubled for each further one.
    pub base_backoff: Duration,
    /// Upper bound of one backoff.
    pub max_backoff: Duration,
    /// Overall deadline of one call, from its start: no attempt starts after
    /// it and no attempt runs past it (long polls extend it by their wait).
    pub deadline: Duration,
}

impl RetryPolicy {
    /// A policy that never retries (one attempt).
    pub fn no_retry() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), ClientError> {
        if self.max_attempts == 0 {
            return Err(config_error("retry.max_attempts: must be at least 1"));
        }
        if self.base_backoff.is_zero() {
            return Err(config_error("retry.base_backoff: must be positive"));
        }
        if self.max_backoff < self.base_backoff {
            return Err(config_error("retry.max_backoff: must be at least base_backoff"));
        }
        if self.deadline.is_zero() {
            return Err(config_error("retry.deadline: must be positive"));
        }
        Ok(())
    }
}

impl Default for RetryPolicy {
    /// Up to 60 attempts, 50 ms doubling to 1 s, within 30 s: enough to
    /// ride out a leader election (PRODUCT.md G7: about two election
    /// timeouts) even while followers still name the dead leader, which
    /// costs an attempt per redirect.
    fn default() -> Self {
        Self {
            max_attempts: RETRY_ATTEMPTS_DEFAULT,
            base_backoff: RETRY_BASE_BACKOFF_DEFAULT,
            max_backoff: RETRY_MAX_BACKOFF_DEFAULT,
            deadline: RETRY_DEADLINE_DEFAULT,
        }
    }
}

/// How a [`crate::Publisher`] groups messages into Publish requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherConfig {
    /// Most messages per request, 1..=1000.
    pub max_batch_messages: usize,
    /// Most message bytes per request, 1..=4 MiB. A single message larger
    /// than this is sent alone (and the server judges it).
    pub max_batch_bytes: usize,
    /// How long a partial batch waits for more messages before it is sent.
    pub linger: Duration,
    /// Most requests in flight at once, 1..=64. Above 1, batches may commit
    /// out of order (each batch is still all-or-nothing).
    pub max_inflight_batches: usize,
}

impl PublisherConfig {
    /// Checks every field against the server's limits.
    pub fn validate(&self) -> Result<(), ClientError> {
        if !(1..=BATCH_MESSAGES_MAX).contains(&self.max_batch_messages) {
            return Err(config_error(format!("max_batch_messages: must be 1..={BATCH_MESSAGES_MAX}")));
        }
        if !(1..=BATCH_BYTES_MAX).contains(&self.max_batch_bytes) {
            return Err(config_error(format!("max_batch_bytes: must be 1..={BATCH_BYTES_MAX}")));
        }
        if self.linger > LINGER_MAX {
            return Err(config_error(format!("linger: must be at most {LINGER_MAX:?}")));
        }
        if !(1..=INFLIGHT_BATCHES_MAX).contains(&self.max_inflight_batches) {
            return Err(config_error(format!("max_inflight_batches: must be 1..={INFLIGHT_BATCHES_MAX}")));
        }
        Ok(())
    }
}

impl Default for PublisherConfig {
    /// Up to 500 messages or 1 MiB per request, 5 ms linger, 4 in flight.
    fn default() -> Self {
        Self {
            max_batch_messages: PUBLISHER_BATCH_MESSAGES_DEFAULT,
            max_batch_bytes: PUBLISHER_BATCH_BYTES_DEFAULT,
            linger: PUBLISHER_LINGER_DEFAULT,
            max_inflight_batches: PUBLISHER_INFLIGHT_BATCHES_DEFAULT,
        }
    }
}

/// Checks that `addr` is a `host:port` (no scheme, no path).
pub fn validate_address(addr: &str) -> Result<(), String> {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(format!("{addr:?} is not host:port"));
    };
    if host.is_empty() || host.contains(['/', ' ']) || addr.contains("://") {
        return Err(format!("{addr:?} is not host:port"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("{addr:?} has no valid port")),
    }
}

fn config_error(message: impl Into<String>) -> ClientError {
    ClientError::Config(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_once_servers_are_set() {
        assert!(ClientConfig::default().validate().is_err(), "no servers");
        ClientConfig::new(["127.0.0.1:7001"]).validate().unwrap();
        PublisherConfig::default().validate().unwrap();
        RetryPolicy::no_retry().validate().unwrap();
    }

    #[test]
    fn bad_configs_name_the_field() {
        let check = |config: ClientConfig, field: &str| {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{err:?} should name {field}");
        };
        check(ClientConfig::new(["localhost"]), "servers[0]");
        check(ClientConfig::new(["a:1", "http://b:2"]), "servers[1]");
        check(ClientConfig::new(["a:0"]), "servers[0]");
        let mut config = ClientConfig::new(["a:1"]);
        config.retry.max_attempts = 0;
        check(config.clone(), "max_attempts");
        config.retry = RetryPolicy { max_backoff: Duration::from_millis(1), ..RetryPolicy::default() };
        check(config.clone(), "max_backoff");
        config.retry = RetryPolicy::default();
        config.request_timeout = Duration::ZERO;
        check(config, "request_timeout");
    }

    #[test]
    fn publisher_limits() {
        let base = PublisherConfig::default();
        assert!(PublisherConfig { max_batch_messages: 1001, ..base.clone() }.validate().is_err());
        assert!(PublisherConfig { max_batch_messages: 0, ..base.clone() }.validate().is_err());
        assert!(PublisherConfig { max_batch_bytes: BATCH_BYTES_MAX + 1, ..base.clone() }.validate().is_err());
        assert!(PublisherConfig { max_inflight_batches: 0, ..base.clone() }.validate().is_err());
        assert!(PublisherConfig { linger: Duration::from_secs(11), ..base.clone() }.validate().is_err());
        PublisherConfig { max_batch_messages: 1000, max_batch_bytes: BATCH_BYTES_MAX, ..base }.validate().unwrap();
    }

    #[test]
    fn addresses() {
        for ok in ["127.0.0.1:7001", "node-1.raftq:7001", "[::1]:7001"] {
            validate_address(ok).unwrap();
        }
        for bad in ["", ":7001", "host", "host:", "host:x", "host:70000", "http://host:1", "a b:1"] {
            assert!(validate_address(bad).is_err(), "{bad:?}");
        }
    }
}
