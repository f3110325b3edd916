//! The audit log: one structured line (tracing target `raftq::audit`, level
//! INFO) for every administrative or destructive request — queue create,
//! update, delete, purge and redrive; membership changes, leadership
//! transfer and snapshots — naming who asked (the peer address; the
//! principal too once tokens exist), the action, its subject and the answer.
//! Refused requests are logged as well: a denied purge is worth knowing.

use std::net::SocketAddr;

use tonic::{Request, Status};

/// An audited request, from its arrival to its answer.
#[derive(Debug)]
pub(crate) struct Audit {
    action: &'static str,
    peer: Option<SocketAddr>,
}

impl Audit {
    pub(crate) fn start<T>(request: &Request<T>, action: &'static str) -> Self {
        Self { action, peer: request.remote_addr() }
    }

    /// Logs the answer to the request about `subject`, and returns it.
    pub(crate) fn finish<T>(self, subject: &str, result: Result<T, Status>) -> Result<T, Status> {
        let peer = self.peer.map_or_else(|| "unknown".to_string(), |addr| addr.to_string());
        match &result {
            Ok(_) => tracing::info!(target: "raftq::audit", action = self.action, subject, peer, outcome = "OK"),
            Err(status) => tracing::info!(
                target: "raftq::audit",
                action = self.action,
                subject,
                peer,
                outcome = ?status.code(),
                message = status.message()
            ),
        }
        result
    }
}
