//! TLS on a real cluster, with certificates made here by rcgen: the nodes
//! serve TLS and dial each other over it; a plaintext client is refused;
//! with a client CA, a client without a certificate from it is refused; a
//! rotated certificate is served without a restart; the peer port admits
//! only certificates that name a member.

use std::sync::Arc;
use std::time::Duration;

use raftq_client::{OutgoingMessage, QueueConfig, TlsConfig, proto};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};

use crate::harness::{Cluster, Options, TlsOptions, WAIT};

/// A CA that signs certificates.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca");
        Self { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `names` and its key, both PEM.
    fn sign(&self, common_name: &str, names: &[&str]) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("params");
        params.distinguished_name.push(DnType::CommonName, common_name);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }
}

/// The names of the nodes' one shared certificate: the loopback host, and
/// the peer identity of every node id a test uses.
const NODE_NAMES: [&str; 6] =
    ["127.0.0.1", "localhost", "node-1.peer.raftq", "node-2.peer.raftq", "node-3.peer.raftq", "node-4.peer.raftq"];

fn tls_options(ca: &Ca, require_client_cert: bool) -> Options {
    let (node_cert, node_key) = ca.sign("raftq node", &NODE_NAMES);
    let (client_cert, client_key) = ca.sign("raftq test client", &[]);
    let tls = TlsOptions { ca: ca.pem(), node_cert, node_key, require_client_cert, client_cert, client_key };
    Options { tls: Some(tls), ..Options::default() }
}

async fn round_trip(client: &raftq_client::Client, queue: &str) -> Result<(), raftq_client::ClientError> {
    client.create_queue(queue, QueueConfig::default()).await?;
    client.publish(queue, vec![OutgoingMessage::new("over tls")]).await?;
    let got = client.receive(queue, 1, std::time::Duration::from_secs(5), None).await?;
    assert_eq!(got.len(), 1);
    got[0].ack().await
}

/// The cluster forms over TLS (the nodes dial each other with it) and
/// serves clients that trust its CA; a plaintext client, or one trusting
/// another CA, gets nowhere.
#[tokio::test(flavor = "multi_thread")]
async fn a_tls_cluster_serves_tls_clients_and_refuses_plaintext() {
    let ca = Ca::new("raftq test ca");
    let mut cluster = Cluster::start("tls", 3, tls_options(&ca, false)).await;
    round_trip(&cluster.client(), "over-tls").await.expect("a TLS client works");

    let plain = cluster.client_with_tls(None);
    let refused = plain.get_queue("over-tls").await.expect_err("plaintext on a TLS port");
    eprintln!("[tls] plaintext client: {refused}");
    assert_eq!(refused.code(), raftq_client::Code::Unavailable, "{refused}");
    let stranger = Ca::new("another ca");
    let other = TlsConfig { ca_pem: stranger.pem().into_bytes(), identity: None, domain: None };
    let refused = cluster.client_with_tls(Some(other)).get_queue("over-tls").await.expect_err("unknown server CA");
    eprintln!("[tls] client trusting another CA: {refused}");
    assert!(refused.to_string().contains("UnknownIssuer"), "the client refuses the node's certificate: {refused}");
    cluster.assert_running();
}

/// With `--tls-client-ca`, only clients with a certificate from that CA
/// get in.
#[tokio::test(flavor = "multi_thread")]
async fn with_a_client_ca_only_its_certificates_get_in() {
    let ca = Ca::new("raftq test ca");
    let mut cluster = Cluster::start("tls-mutual", 3, tls_options(&ca, true)).await;
    round_trip(&cluster.client(), "mutual").await.expect("a client with a certificate works");

    let no_cert = TlsConfig { ca_pem: ca.pem().into_bytes(), identity: None, domain: None };
    let refused = cluster.client_with_tls(Some(no_cert)).get_queue("mutual").await.expect_err("no client cert");
    eprintln!("[tls-mutual] no client certificate: {refused}");
    assert_eq!(refused.code(), raftq_client::Code::Unavailable, "{refused}");
    let stranger = Ca::new("another ca");
    let (cert, key) = stranger.sign("intruder", &[]);
    let foreign = TlsConfig { ca_pem: ca.pem().into_bytes(), identity: Some((cert.into(), key.into())), domain: None };
    let refused = cluster.client_with_tls(Some(foreign)).get_queue("mutual").await.expect_err("foreign client cert");
    eprintln!("[tls-mutual] certificate from another CA: {refused}");
    // TLS 1.3 sends the client's certificate after the client considers the
    // handshake done: the node's refusal shows as its alert (UnknownCA) or
    // as the connection it closed, depending on timing.
    assert_eq!(refused.code(), raftq_client::Code::Unavailable, "the node refuses the client's certificate: {refused}");
    cluster.assert_running();
}

/// The certificate a node presents to a new connection, read with rustls.
async fn served_certificate(addr: &str, ca_pem: &str) -> CertificateDer<'static> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("ca pem")).expect("ca");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let tls = connector.connect(name, tcp).await.expect("handshake");
    tls.get_ref().1.peer_certificates().expect("certificates")[0].clone().into_owned()
}

/// A new certificate written over the old one is served to new connections
/// once the nodes have read it, with no restart; the cluster keeps working.
#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_certificate_is_served_without_a_restart() {
    let ca = Ca::new("raftq test ca");
    let mut cluster = Cluster::start("tls-rotate", 3, tls_options(&ca, false)).await;
    let pids: Vec<Option<u32>> = cluster.running_ids().into_iter().map(|id| cluster.pid(id)).collect();
    let before = served_certificate(&cluster.addr(1), &ca.pem()).await;

    let (cert, key) = ca.sign("raftq node, rotated", &NODE_NAMES);
    let rotated = CertificateDer::from_pem_slice(cert.as_bytes()).expect("pem").into_owned();
    assert_ne!(before, rotated);
    let offsets = cluster.log_offsets();
    cluster.write_node_certificate(&cert, &key);
    cluster.wait_for_log_line(&offsets, "TLS certificate reloaded").await;
    // Each node's client port and peer port reload on their own and both
    // log that line, so the line may come from the peer port first: wait
    // for the client port to serve the new certificate.
    for id in cluster.running_ids() {
        let deadline = tokio::time::Instant::now() + WAIT;
        while served_certificate(&cluster.addr(id), &ca.pem()).await != rotated {
            assert!(tokio::time::Instant::now() < deadline, "node {id} still serves the old certificate");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    round_trip(&cluster.client(), "after-rotation").await.expect("the cluster works after the rotation");
    let now: Vec<Option<u32>> = cluster.running_ids().into_iter().map(|id| cluster.pid(id)).collect();
    assert_eq!(pids, now, "no node restarted");
    cluster.assert_running();
}

/// The peer port always asks for a client certificate, and admits only one
/// from the CA that names a member (`node-<id>.peer.raftq`): a client's
/// certificate from the right CA, a removed or never-added node's, one from
/// another CA, or none, get nowhere near Raft.
#[tokio::test(flavor = "multi_thread")]
async fn the_peer_port_admits_only_a_members_certificate() {
    use raftq_proto::v1::raft_transport_client::RaftTransportClient;
    let ca = Ca::new("raftq test ca");
    let mut cluster = Cluster::start("tls-peer", 3, tls_options(&ca, false)).await;
    let leader = cluster.leader_id().await;
    // Not a Raft message at all: a member gets past the identity check and
    // is refused by the decoder (INVALID_ARGUMENT), nothing else is.
    let junk = || proto::RaftPayload { format_version: 1, data: b"not a vote".to_vec().into() };
    let vote = async |identity: Option<(String, String)>| {
        RaftTransportClient::new(cluster.peer_stub(leader, None, identity)).vote(junk()).await
    };

    let member = ca.sign("node 2", &["node-2.peer.raftq"]);
    let answer = vote(Some(member)).await.expect_err("junk is no vote");
    assert_eq!(answer.code(), raftq_client::Code::InvalidArgument, "a member reaches the decoder: {answer:?}");

    let client = ca.sign("raftq test client", &["127.0.0.1"]);
    let refused = vote(Some(client)).await.expect_err("a client certificate on the peer port");
    eprintln!("[tls-peer] client certificate: {refused}");
    assert_eq!(refused.code(), raftq_client::Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("node-1.peer.raftq"), "names what it wants: {}", refused.message());

    let stranger_node = ca.sign("node 9", &["node-9.peer.raftq"]);
    let refused = vote(Some(stranger_node)).await.expect_err("not a member");
    assert_eq!(refused.code(), raftq_client::Code::PermissionDenied, "{refused:?}");

    let other_ca = Ca::new("another ca");
    let foreign = other_ca.sign("node 2", &["node-2.peer.raftq"]);
    // Refused in the handshake: the node's TLS alert (UnknownCA, or that a
    // certificate is required) or the connection it closed, which the
    // client reports as UNAVAILABLE, UNKNOWN or CANCELLED by timing (TLS 1.3
    // sends the client's certificate after the client considers the
    // handshake done). Never an answer from a handler.
    let in_handshake = |status: &tonic::Status| {
        use raftq_client::Code;
        matches!(status.code(), Code::Unavailable | Code::Unknown | Code::Cancelled)
            && format!("{status:?}").contains("tonic::transport::Error(Transport")
    };
    let refused = vote(Some(foreign)).await.expect_err("a certificate from another CA");
    eprintln!("[tls-peer] another CA: {refused:?}");
    assert!(in_handshake(&refused), "refused in the handshake: {refused:?}");

    let refused = vote(None).await.expect_err("no certificate");
    eprintln!("[tls-peer] no certificate: {refused:?}");
    assert!(in_handshake(&refused), "refused in the handshake: {refused:?}");

    // The cluster itself (dialling with its members' certificate) is fine.
    round_trip(&cluster.client(), "peer-port").await.expect("the cluster works");
    cluster.assert_running();
}
