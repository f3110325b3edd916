//! TLS on the gRPC port, through rustls (ring provider; no OpenSSL).
//!
//! The server side: [`TlsFiles`] names the PEM files, [`ServerTls`] holds
//! the rustls config in force and rebuilds it when a file changes (polled
//! every [`crate::reload::FILE_POLL`]) or on SIGHUP, so a rotated certificate is served
//! without a restart; [`incoming`] accepts TCP connections and completes
//! each handshake on its own task, with a deadline, so a slow or silent
//! client holds neither the accept loop nor other handshakes.
//!
//! The client side (this node dialing its peers, and every client command)
//! is tonic's `ClientTlsConfig`, built by [`client_tls`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

/// Longest a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most handshakes in progress at once; further connections wait in the
/// kernel's accept queue.
const HANDSHAKES_IN_PROGRESS_MAX: usize = 1_024;

/// The PEM files of a node's TLS setup.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// This node's certificate chain (leaf first).
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// If set, every client (peers included) must present a certificate
    /// signed by one of these CAs.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    fn read(&self) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for path in [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()].into_iter().flatten() {
            out.push(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?);
        }
        Ok(out)
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not PEM certificates", path.display()))?;
    if certs.is_empty() {
        bail!("{}: no certificate in it", path.display());
    }
    Ok(certs)
}

/// Builds the rustls server config from the files' bytes.
fn server_config(files: &TlsFiles, bytes: &[Vec<u8>]) -> Result<Arc<rustls::ServerConfig>> {
    let chain = certs(&bytes[0], &files.cert)?;
    let key = PrivateKeyDer::from_pem_slice(&bytes[1])
        .with_context(|| format!("{}: no PEM private key in it", files.key.display()))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &files.client_ca {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs(&bytes[2], path)? {
                roots.add(cert).with_context(|| format!("{}: a CA certificate rustls refuses", path.display()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .with_context(|| format!("{}: client CA", path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .with_context(|| format!("{} and {} do not make a key pair", files.cert.display(), files.key.display()))?;
    // gRPC is HTTP/2 only.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// The server's TLS config in force, rebuilt when its files change.
#[derive(Debug)]
pub struct ServerTls {
    files: TlsFiles,
    config: RwLock<Arc<rustls::ServerConfig>>,
}

impl ServerTls {
    /// Loads the files; fails (the node does not start) if they are unusable.
    pub fn load(files: TlsFiles) -> Result<Arc<Self>> {
        let config = server_config(&files, &files.read()?)?;
        Ok(Arc::new(Self { files, config: RwLock::new(config) }))
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }

    /// Reads the files again on change or SIGHUP (see [`crate::reload`])
    /// and puts a new config in force when they make a valid one. New
    /// connections get the new certificate; open ones keep theirs.
    pub fn spawn_reloader(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let first = self.files.read().unwrap_or_default();
        let files = self.files.clone();
        let this = self.clone();
        crate::reload::spawn(
            "TLS certificate",
            first,
            move || files.read(),
            move |bytes| {
                let config = server_config(&this.files, bytes)?;
                *this.config.write().unwrap_or_else(std::sync::PoisonError::into_inner) = config;
                Ok(())
            },
        )
    }
}

/// TLS connections accepted on `listener`: each handshake runs on its own
/// task within [`HANDSHAKE_TIMEOUT`]; failed ones are logged and dropped.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<ServerTls>,
) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let permits = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES_IN_PROGRESS_MAX));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else { return };
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: say so, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if tx.is_closed() {
                return;
            }
            let _ = stream.set_nodelay(true);
            let acceptor = tls.acceptor();
            let tx = tx.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => {
                        let _ = tx.send(Ok(tls_stream)).await;
                    }
                    Ok(Err(e)) => {
                        metrics::counter!("raftq_tls_handshakes_failed_total").increment(1);
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    }
                    Err(_) => {
                        metrics::counter!("raftq_tls_handshakes_failed_total").increment(1);
                        tracing::debug!(%peer, "TLS handshake timed out");
                    }
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// What a client (a client command, or this node dialing its peers) needs
/// for TLS: the CA that signed the servers' certificates, and its own
/// certificate and key if the servers ask for one.
#[derive(Clone, Debug, Default)]
pub struct ClientTlsFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl ClientTlsFiles {
    pub fn is_set(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some()
    }

    /// The client's TLS settings, `None` if no file is named.
    pub fn load(&self) -> Result<Option<raftq_client::TlsConfig>> {
        if !self.is_set() {
            return Ok(None);
        }
        let read = |path: &PathBuf| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
        let ca_pem = match &self.ca {
            Some(path) => read(path)?,
            None => bail!("--tls-ca is needed with TLS: the CA that signed the servers' certificates"),
        };
        let identity = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
            (None, None) => None,
            _ => bail!("--tls-cert and --tls-key go together"),
        };
        Ok(Some(raftq_client::TlsConfig { ca_pem, identity, domain: None }))
    }
}

impl ClientTlsFiles {
    /// The files' bytes (CA, then certificate and key if named).
    fn read_all(&self) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for path in [self.ca.as_ref(), self.cert.as_ref(), self.key.as_ref()].into_iter().flatten() {
            out.push(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?);
        }
        Ok(out)
    }

    /// Reads the files again on change or SIGHUP (see [`crate::reload`])
    /// and hands the new settings to `apply` when they load.
    pub fn spawn_reloader(
        &self,
        apply: impl Fn(raftq_client::TlsConfig) + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let first = self.read_all().unwrap_or_default();
        let (reader, loader) = (self.clone(), self.clone());
        crate::reload::spawn(
            "TLS identity for dialling peers",
            first,
            move || reader.read_all(),
            move |_| {
                apply(loader.load()?.context("no TLS files")?);
                Ok(())
            },
        )
    }
}

/// tonic's client TLS settings for `tls` (the peers' CA, this node's
/// certificate as its client identity).
pub fn tonic_client_tls(tls: &raftq_client::TlsConfig) -> tonic::transport::ClientTlsConfig {
    let mut settings =
        tonic::transport::ClientTlsConfig::new().ca_certificate(tonic::transport::Certificate::from_pem(&tls.ca_pem));
    if let Some((cert, key)) = &tls.identity {
        settings = settings.identity(tonic::transport::Identity::from_pem(cert, key));
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_files_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, "not a certificate").unwrap();
        std::fs::write(&key, "not a key").unwrap();
        let files = TlsFiles { cert: cert.clone(), key, client_ca: None };
        let err = format!("{:#}", ServerTls::load(files).unwrap_err());
        assert!(err.contains("cert.pem"), "{err}");
        let missing = TlsFiles { cert: dir.path().join("nope.pem"), key: cert, client_ca: None };
        assert!(format!("{:#}", ServerTls::load(missing).unwrap_err()).contains("nope.pem"));
        let lone_cert =
            ClientTlsFiles { ca: Some(dir.path().join("ca.pem")), cert: Some(dir.path().join("c")), key: None };
        assert!(lone_cert.load().is_err());
        assert!(ClientTlsFiles::default().load().unwrap().is_none());
    }
}
