//! `raftq tls gen`: a private CA and certificates for a cluster's nodes and
//! clients, made locally (rcgen, no network). For development, compose
//! and tests; production certificates come from your own PKI.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Make a CA (`ca.pem`, `ca-key.pem`), a certificate and key per node
    /// (`<node>.pem`, `<node>-key.pem`, naming the host, `localhost`,
    /// 127.0.0.1 and the node's peer identity `node-<id>.peer.raftq`) and per
    /// client (`client-<name>.pem`, `client-<name>-key.pem`).
    Gen(GenArgs),
}

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Directory to write into (created if missing). Refused if it already
    /// holds a `ca.pem`.
    #[arg(long)]
    pub dir: PathBuf,
    /// A node, as `ID=HOST` or just `HOST` (repeat for each node). Without
    /// an id, the node's id is its position in the list (1, 2, 3, ...). Its
    /// certificate names the host and `node-<id>.peer.raftq`, the identity
    /// the peer port checks.
    #[arg(long = "node", required = true)]
    pub nodes: Vec<String>,
    /// Node ids every node certificate names in addition to its own, e.g.
    /// `1,2,3` for one certificate shared by all pods of a StatefulSet.
    #[arg(long = "node-ids", value_delimiter = ',')]
    pub node_ids: Vec<u64>,
    /// A client certificate to make (repeat).
    #[arg(long = "client")]
    pub clients: Vec<String>,
    /// A further name every node certificate carries (repeat), e.g.
    /// `*.raftq-headless` for the pods of a StatefulSet sharing one.
    #[arg(long = "san")]
    pub sans: Vec<String>,
}

pub fn run(command: TlsCommand) -> Result<()> {
    match command {
        TlsCommand::Gen(args) => {
            generate(&args)?;
            println!(
                "wrote the CA and {} node and {} client certificates to {}",
                args.nodes.len(),
                args.clients.len(),
                args.dir.display()
            );
            Ok(())
        }
    }
}

fn write(dir: &Path, name: &str, pem: &str, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

/// Safe as a file name: host names and client names only.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')) {
        bail!("{name:?}: use letters, digits, '.', '-' and '_'");
    }
    Ok(())
}

/// `ID=HOST` or `HOST` (id: `position`).
fn parse_node(text: &str, position: usize) -> Result<(u64, &str)> {
    match text.split_once('=') {
        Some((id, host)) => match id.parse::<u64>() {
            Ok(id) if id > 0 => Ok((id, host)),
            _ => bail!("{text:?}: the node id before '=' must be a positive number"),
        },
        None => Ok((position as u64 + 1, text)),
    }
}

pub fn generate(args: &GenArgs) -> Result<()> {
    let nodes = args.nodes.iter().enumerate().map(|(i, n)| parse_node(n, i)).collect::<Result<Vec<_>>>()?;
    for name in nodes.iter().map(|(_, host)| *host).chain(args.clients.iter().map(String::as_str)) {
        check_name(name)?;
    }
    if args.node_ids.contains(&0) {
        bail!("--node-ids: node ids are positive");
    }
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    if args.dir.join("ca.pem").exists() {
        bail!("{} already holds a ca.pem; refusing to replace it", args.dir.display());
    }
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "raftq private CA");
    let ca_key = KeyPair::generate()?;
    let ca_key_pem = ca_key.serialize_pem();
    let ca = CertifiedIssuer::self_signed(params, ca_key)?;
    // Keys are readable by the containers' user through a bind mount in
    // compose, hence 0644 for them; the CA key stays private.
    write(&args.dir, "ca.pem", &ca.pem(), 0o644)?;
    write(&args.dir, "ca-key.pem", &ca_key_pem, 0o600)?;
    for &(id, node) in &nodes {
        let mut names = vec![node.to_owned(), "localhost".to_owned(), "127.0.0.1".to_owned()];
        let mut ids: Vec<u64> = std::iter::once(id).chain(args.node_ids.iter().copied()).collect();
        ids.sort_unstable();
        ids.dedup();
        names.extend(ids.into_iter().map(raftq_raft::network::peer_identity_name));
        names.extend(args.sans.iter().cloned());
        let mut params = CertificateParams::new(names)?;
        params.distinguished_name.push(DnType::CommonName, node);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &ca)?;
        write(&args.dir, &format!("{node}.pem"), &cert.pem(), 0o644)?;
        write(&args.dir, &format!("{node}-key.pem"), &key.serialize_pem(), 0o644)?;
    }
    for client in &args.clients {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, client);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &ca)?;
        write(&args.dir, &format!("client-{client}.pem"), &cert.pem(), 0o644)?;
        write(&args.dir, &format!("client-{client}-key.pem"), &key.serialize_pem(), 0o644)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_make_a_server_config_and_are_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let args = GenArgs {
            dir: dir.path().to_owned(),
            nodes: vec!["raftq-1".into()],
            node_ids: vec![],
            clients: vec!["admin".into()],
            sans: vec!["*.raftq-headless".into()],
        };
        generate(&args).unwrap();
        let files = crate::tls::TlsFiles {
            cert: dir.path().join("raftq-1.pem"),
            key: dir.path().join("raftq-1-key.pem"),
            client_ca: Some(dir.path().join("ca.pem")),
        };
        crate::tls::ServerTls::load(files).expect("the node certificate and key make a TLS config");
        let client = crate::tls::ClientTlsFiles {
            ca: Some(dir.path().join("ca.pem")),
            cert: Some(dir.path().join("client-admin.pem")),
            key: Some(dir.path().join("client-admin-key.pem")),
        };
        assert!(client.load().unwrap().is_some());
        assert!(generate(&args).is_err(), "an existing CA is never replaced");
        let bad = GenArgs { nodes: vec!["../x".into()], ..args };
        assert!(generate(&bad).is_err());
    }

    #[test]
    fn node_ids_come_from_the_position_or_the_prefix() {
        assert_eq!(parse_node("raftq-a", 0).unwrap(), (1, "raftq-a"));
        assert_eq!(parse_node("raftq-a", 2).unwrap(), (3, "raftq-a"));
        assert_eq!(parse_node("7=host", 0).unwrap(), (7, "host"));
        assert!(parse_node("0=host", 0).is_err());
        assert!(parse_node("x=host", 0).is_err());
    }
}
