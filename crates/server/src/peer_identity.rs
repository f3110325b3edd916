//! On the peer port with TLS on: a request is served only if the caller's
//! certificate names a member of the cluster.
//!
//! rustls has already checked the certificate against the peers' CA during
//! the handshake; this layer checks what it *names*. A node's certificate
//! carries the DNS subject alternative name
//! [`raftq_raft::network::peer_identity_name`] (`node-<id>.peer.raftq`) of
//! its node id; a caller is accepted if one of those ids is a member (voter
//! or learner) of this node's current membership, or one of the initial
//! voters of `--peers` (so a fresh node accepts its first leader before it
//! has any membership). A client certificate from the same CA, without such
//! a name, is refused with PERMISSION_DENIED; a connection without a
//! certificate with UNAUTHENTICATED. Nothing reaches Raft before this check.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls_pki_types::{CertificateDer, ServerName};
use tonic::Status;
use tonic::codegen::http;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

/// The node ids a peer may be: the current members and the initial voters.
pub(crate) type Members = Arc<dyn Fn() -> BTreeSet<u64> + Send + Sync>;

/// Which member, if any, `cert` names.
pub(crate) fn member_named(cert: &CertificateDer<'_>, members: &BTreeSet<u64>) -> Option<u64> {
    let cert = webpki::EndEntityCert::try_from(cert).ok()?;
    members.iter().copied().find(|id| {
        ServerName::try_from(raftq_raft::network::peer_identity_name(*id))
            .is_ok_and(|name| cert.verify_is_valid_for_subject_name(&name).is_ok())
    })
}

/// The decision for one request, from the TLS connection's certificates.
fn admit(certs: Option<&[CertificateDer<'static>]>, members: &BTreeSet<u64>) -> Result<u64, Status> {
    let Some(leaf) = certs.and_then(|c| c.first()) else {
        return Err(crate::error::unauthenticated("the peer port needs a node certificate (mutual TLS)"));
    };
    member_named(leaf, members).ok_or_else(|| {
        let names: Vec<String> = members.iter().map(|id| raftq_raft::network::peer_identity_name(*id)).collect();
        crate::error::permission_denied(format!(
            "the certificate names no member of this cluster: the peer port wants one of {names:?} as a DNS name"
        ))
    })
}

/// The tower layer on the peer port (see the module docs); `None` lets
/// every request through (TLS off: there is no certificate to check).
#[derive(Clone)]
pub(crate) struct PeerIdentityLayer {
    members: Option<Members>,
}

impl std::fmt::Debug for PeerIdentityLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerIdentityLayer").finish_non_exhaustive()
    }
}

impl PeerIdentityLayer {
    pub(crate) fn new(members: Option<Members>) -> Self {
        Self { members }
    }
}

impl<S> tower::Layer<S> for PeerIdentityLayer {
    type Service = PeerIdentity<S>;

    fn layer(&self, inner: S) -> PeerIdentity<S> {
        PeerIdentity { inner, members: self.members.clone() }
    }
}

#[derive(Clone)]
pub(crate) struct PeerIdentity<S> {
    inner: S,
    members: Option<Members>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for PeerIdentity<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerIdentity").field("inner", &self.inner).finish_non_exhaustive()
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> tower::Service<http::Request<B>> for PeerIdentity<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let Some(members) = &self.members else {
            return Box::pin(self.inner.call(request));
        };
        let certs = request.extensions().get::<TlsConnectInfo<TcpConnectInfo>>().and_then(|info| info.peer_certs());
        match admit(certs.as_deref().map(Vec::as_slice), &members()) {
            Ok(_) => Box::pin(self.inner.call(request)),
            Err(status) => {
                metrics::counter!("raftq_peer_requests_refused_total").increment(1);
                let peer = request
                    .extensions()
                    .get::<TlsConnectInfo<TcpConnectInfo>>()
                    .and_then(|info| info.get_ref().remote_addr());
                tracing::warn!(
                    target: "raftq::audit",
                    path = request.uri().path(),
                    ?peer,
                    outcome = ?status.code(),
                    message = status.message(),
                    "refused on the peer port"
                );
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(names: &[&str]) -> CertificateDer<'static> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let key = rcgen::KeyPair::generate().unwrap();
        rcgen::CertificateParams::new(names).unwrap().self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn a_certificate_is_admitted_only_if_it_names_a_member() {
        let members = BTreeSet::from([1, 2, 3]);
        let node2 = cert(&["raftq-2", "node-2.peer.raftq"]);
        assert_eq!(admit(Some(&[node2]), &members).unwrap(), 2);

        // From the same CA, but a client's: no node name.
        let client = cert(&["client-admin"]);
        let refused = admit(Some(&[client]), &members).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
        assert!(refused.message().contains("node-1.peer.raftq"), "{}", refused.message());

        // A node that was removed (4 is not a member).
        let removed = cert(&["node-4.peer.raftq"]);
        assert_eq!(admit(Some(&[removed]), &members).unwrap_err().code(), tonic::Code::PermissionDenied);
        // `node-1.peer.raftq` must not match node 11, nor a wildcard trick.
        let eleven = cert(&["node-11.peer.raftq"]);
        assert!(admit(Some(&[eleven]), &members).is_err());

        // No certificate at all (a plain connection).
        assert_eq!(admit(None, &members).unwrap_err().code(), tonic::Code::Unauthenticated);
        assert_eq!(admit(Some(&[]), &members).unwrap_err().code(), tonic::Code::Unauthenticated);
        // Not even a certificate.
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        assert!(admit(Some(&[garbage]), &members).is_err());
    }
}
