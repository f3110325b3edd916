//! The cluster under test: its nodes (id, container, advertised address),
//! a client that reaches them from the host, and "is it whole again?".
//!
//! The nodes advertise `raftq-N:PORT` (names only Docker's DNS knows) and
//! publish the same port on the host's loopback, so the client keeps those
//! names — leader hints name them too — and its connector dials
//! `HOST:PORT` instead.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use raftq_client::{BearerToken, Client, ClientConfig, ClientError, ClusterStatus, RetryPolicy, TlsConfig, endpoint};
use tokio::time::Instant;

use crate::docker::Docker;

/// One node of the compose cluster.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Raft node id (its position in `--nodes`, from 1).
    pub id: u64,
    /// `host:port` as the nodes advertise it (the host part is the compose
    /// service's name; the port is published on the host as it is).
    pub addr: String,
    pub container: String,
}

/// The nodes, the docker handle, and a client for admin reads.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub nodes: Vec<NodeInfo>,
    pub docker: Docker,
    /// Where the published ports are (`127.0.0.1`).
    host: String,
    admin: Client,
}

impl Cluster {
    /// `addrs` are the advertised addresses in node-id order, `containers`
    /// the nodes' container names in the same order (empty: the host part
    /// of each address).
    pub fn new(addrs: &[String], containers: &[String], host: &str, docker: Docker) -> Result<Self> {
        if !containers.is_empty() && containers.len() != addrs.len() {
            bail!("{} containers named for {} nodes", containers.len(), addrs.len());
        }
        let mut nodes = Vec::new();
        for (i, addr) in addrs.iter().enumerate() {
            let (name, _port) = addr.rsplit_once(':').with_context(|| format!("{addr:?} is not host:port"))?;
            let container = containers.get(i).map_or(name, String::as_str).to_owned();
            nodes.push(NodeInfo { id: i as u64 + 1, addr: addr.clone(), container });
        }
        if nodes.len() < 3 {
            bail!("need at least three nodes, got {}", nodes.len());
        }
        let admin = client_for(addrs, host, Duration::from_secs(2))?;
        Ok(Self { nodes, docker, host: host.to_owned(), admin })
    }

    /// A fresh client (own channels, own idempotency-key prefix) whose
    /// calls give up after about `call_limit`, so one publish attempt is
    /// bounded and availability can be measured per attempt.
    pub fn client(&self, call_limit: Duration) -> Result<Client> {
        let addrs: Vec<String> = self.nodes.iter().map(|n| n.addr.clone()).collect();
        Ok(client_for(&addrs, &self.host, call_limit)?)
    }

    pub fn admin(&self) -> &Client {
        &self.admin
    }

    pub fn node(&self, id: u64) -> Result<&NodeInfo> {
        self.nodes.iter().find(|n| n.id == id).with_context(|| format!("no node {id}"))
    }

    pub fn containers(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.container.as_str()).collect()
    }

    /// The current leader, as the leader itself reports (waits at most
    /// `limit` for one).
    pub async fn leader(&self, limit: Duration) -> Result<u64> {
        let start = Instant::now();
        loop {
            if let Ok(status) = self.admin.cluster_status().await
                && let Some(leader) = status.leader_id
                && leader == status.node_id
            {
                return Ok(leader);
            }
            if start.elapsed() >= limit {
                bail!("no leader within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A node other than `leader`.
    pub fn follower_of(&self, leader: u64) -> &NodeInfo {
        self.nodes.iter().find(|n| n.id != leader).expect("three nodes")
    }

    /// Heals every container, then waits (at most `limit`) until the
    /// cluster is whole: every node answers, all name the same leader, and
    /// the leader reaches every node. Returns how long that took.
    pub async fn heal_and_converge(&self, limit: Duration) -> Result<Duration> {
        for node in &self.nodes {
            self.docker.heal(&node.container).await?;
        }
        self.converge(limit).await
    }

    /// Waits (at most `limit`) until the cluster is whole (see above).
    pub async fn converge(&self, limit: Duration) -> Result<Duration> {
        let start = Instant::now();
        loop {
            let Err(last) = self.whole().await else {
                return Ok(start.elapsed());
            };
            if start.elapsed() >= limit {
                bail!("cluster not whole after {limit:?}: {last}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn whole(&self) -> Result<(), String> {
        let mut leaders = std::collections::BTreeSet::new();
        let mut leader_view: Option<ClusterStatus> = None;
        for node in &self.nodes {
            let status =
                self.admin.cluster_status_of(&node.addr).await.map_err(|e| format!("node {}: {e}", node.id))?;
            let leader = status.leader_id.ok_or_else(|| format!("node {} knows no leader", node.id))?;
            if leader == node.id {
                leader_view = Some(status);
            }
            leaders.insert(leader);
        }
        if leaders.len() != 1 {
            return Err(format!("nodes disagree on the leader: {leaders:?}"));
        }
        let view = leader_view.ok_or("the named leader does not say it leads")?;
        if let Some(cut) = view.nodes.iter().find(|n| !n.reachable) {
            return Err(format!("leader does not reach node {}", cut.node_id));
        }
        Ok(())
    }
}

/// TLS settings from `RAFTQ_TLS_CA` (and `RAFTQ_TLS_CERT`, `RAFTQ_TLS_KEY`),
/// as the CLI reads them; `None` if `RAFTQ_TLS_CA` is not set.
fn tls_from_env() -> Result<Option<TlsConfig>, String> {
    let read = |var: &str| -> Result<Option<Vec<u8>>, String> {
        match std::env::var(var).ok().filter(|p| !p.is_empty()) {
            Some(path) => std::fs::read(&path).map(Some).map_err(|e| format!("{var}={path}: {e}")),
            None => Ok(None),
        }
    };
    let Some(ca_pem) = read("RAFTQ_TLS_CA")? else { return Ok(None) };
    let identity = match (read("RAFTQ_TLS_CERT")?, read("RAFTQ_TLS_KEY")?) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err("RAFTQ_TLS_CERT and RAFTQ_TLS_KEY go together".into()),
    };
    Ok(Some(TlsConfig { ca_pem, identity, domain: None }))
}

/// A client whose seeds and hints are the advertised names, dialed at
/// `host` on the same port.
fn client_for(addrs: &[String], host: &str, call_limit: Duration) -> Result<Client, ClientError> {
    let mut config = ClientConfig::new(addrs.iter().cloned());
    config.connect_timeout = Duration::from_secs(1);
    config.request_timeout = call_limit.min(Duration::from_secs(2));
    config.retry = RetryPolicy {
        max_attempts: 20,
        base_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        deadline: call_limit,
    };
    // The compose cluster runs with auth on: deploy/chaos/run.sh exports
    // the admin token.
    config.token = std::env::var("RAFTQ_TOKEN").ok().filter(|t| !t.is_empty()).map(BearerToken::new);
    config.tls = tls_from_env().map_err(ClientError::InvalidArgument)?;
    let settings = config.clone();
    let host = host.to_owned();
    Client::with_connector(config, move |addr: &str| {
        let port = addr.rsplit_once(':').map_or("", |(_, port)| port);
        Ok::<_, ClientError>(endpoint(&format!("{host}:{port}"), &settings)?.connect_lazy())
    })
}
