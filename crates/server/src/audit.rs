//! The audit log: one structured line (tracing target `raftq::audit`, level
//! INFO) for every administrative or destructive request — queue create,
//! update, delete, purge and redrive; membership changes, leadership
//! transfer and snapshots — naming who asked (the principal, `-` with auth
//! off, and the peer address), the action, its subject and the answer.
//! Refused requests are logged as well: a denied purge is worth knowing.
//! Requests the auth layer refuses before any handler runs are logged there
//! (same target, with the request path).

use std::net::SocketAddr;

use tonic::{Request, Status};

/// An audited request, from its arrival to its answer.
#[derive(Debug)]
pub(crate) struct Audit {
    action: &'static str,
    peer: Option<SocketAddr>,
    principal: String,
}

impl Audit {
    pub(crate) fn start<T>(request: &Request<T>, action: &'static str) -> Self {
        let principal = crate::auth::caller(request).map_or("<unauthenticated>", crate::auth::Caller::name).to_owned();
        Self { action, peer: request.remote_addr(), principal }
    }

    /// Logs the answer to the request about `subject`, and returns it.
    pub(crate) fn finish<T>(self, subject: &str, result: Result<T, Status>) -> Result<T, Status> {
        let peer = self.peer.map_or_else(|| "unknown".to_string(), |addr| addr.to_string());
        let principal = self.principal.as_str();
        match &result {
            Ok(_) => {
                tracing::info!(target: "raftq::audit", action = self.action, subject, principal, peer, outcome = "OK")
            }
            Err(status) => tracing::info!(
                target: "raftq::audit",
                action = self.action,
                subject,
                principal,
                peer,
                outcome = ?status.code(),
                message = status.message()
            ),
        }
        result
    }
}
