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
    /// (`<node>.pem`, `<node>-key.pem`, naming the node, `localhost` and
    /// 127.0.0.1) and per client (`client-<name>.pem`, `client-<name>-key.pem`).
    Gen(GenArgs),
}

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Directory to write into (created if missing). Refused if it already
    /// holds a `ca.pem`.
    #[arg(long)]
    pub dir: PathBuf,
    /// A node's host name (repeat for each node).
    #[arg(long = "node", required = true)]
    pub nodes: Vec<String>,
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

pub fn generate(args: &GenArgs) -> Result<()> {
    for name in args.nodes.iter().chain(&args.clients) {
        check_name(name)?;
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
    for node in &args.nodes {
        let mut names = vec![node.clone(), "localhost".to_owned(), "127.0.0.1".to_owned()];
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
}
