//! `raftq auth`: make tokens and auth-file entries, hash a token, check a
//! file, show what a principal may do. Also the server's side of the auth
//! file: loading it, and reloading it on change or SIGHUP.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use raftq_server::auth::{Auth, AuthFile, Grant, Permission, Policy, Principal, token_hash};

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Make a new random token and the auth-file entry of its principal.
    /// The token is printed once: only its hash goes into the file.
    Token(TokenArgs),
    /// Print the hash (`sha256:...`) of the token read from stdin, to add a
    /// token you already have to a principal's `tokens`.
    Hash,
    /// Check an auth file and say how many principals it has.
    Check(FileArgs),
    /// Show what a principal may do: by name, or by the token on stdin.
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The principal's name.
    #[arg(long)]
    pub name: String,
    /// Queue-name patterns (`*` matches any run) this principal may publish to.
    #[arg(long = "publish", value_name = "PATTERN")]
    pub publish: Vec<String>,
    /// Queue-name patterns it may consume from (receive, subscribe, ack,
    /// nack, extend).
    #[arg(long = "consume", value_name = "PATTERN")]
    pub consume: Vec<String>,
    /// Queue-name patterns it may manage (create, update, delete, purge,
    /// redrive, peek, inspect).
    #[arg(long = "manage", value_name = "PATTERN")]
    pub manage: Vec<String>,
    /// Topic-name patterns it may publish to.
    #[arg(long = "topic-publish", value_name = "PATTERN")]
    pub topic_publish: Vec<String>,
    /// Topic-name patterns it may manage (create, delete, bind, unbind;
    /// binding also needs `--manage` on the queue).
    #[arg(long = "topic-manage", value_name = "PATTERN")]
    pub topic_manage: Vec<String>,
    /// Cluster administration: membership, leadership transfer, snapshots.
    #[arg(long)]
    pub admin: bool,
    /// The Raft transport: for the nodes' own token only.
    #[arg(long)]
    pub peer: bool,
}

#[derive(Debug, Args)]
pub struct FileArgs {
    /// The auth file (JSON).
    #[arg(long, env = "RAFTQ_AUTH_FILE")]
    pub auth_file: PathBuf,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub file: FileArgs,
    /// The principal's name; without it, the token is read from stdin.
    #[arg(long)]
    pub name: Option<String>,
}

pub fn run(command: AuthCommand, json: bool) -> Result<()> {
    match command {
        AuthCommand::Token(args) => {
            let token = new_token();
            let principal = principal_for(&args, &token)?;
            if json {
                println!("{}", serde_json::json!({ "token": token, "principal": principal }));
            } else {
                println!("token (shown once; give it to the client, e.g. RAFTQ_TOKEN):\n  {token}");
                println!("auth-file entry (add it to \"principals\"):");
                println!("{}", serde_json::to_string_pretty(&principal)?);
            }
        }
        AuthCommand::Hash => {
            let token = read_token_from_stdin()?;
            println!("{}", token_hash(&token));
        }
        AuthCommand::Check(args) => {
            let policy = load_policy(&args.auth_file)?;
            if json {
                println!("{}", serde_json::json!({ "ok": true, "principals": policy.len() }));
            } else {
                println!("{}: OK, {} principals", args.auth_file.display(), policy.len());
            }
        }
        AuthCommand::Show(args) => {
            let policy = load_policy(&args.file.auth_file)?;
            let principal = match &args.name {
                Some(name) => policy.named(name).with_context(|| format!("no principal named {name:?}"))?,
                None => policy.principal(&read_token_from_stdin()?).context("no principal holds this token")?,
            };
            if json {
                println!("{}", serde_json::to_string(&*principal)?);
            } else {
                print!("{}", describe(&principal));
            }
        }
    }
    Ok(())
}

/// A new random token: `rq_` and 64 hex digits (244 random bits).
pub fn new_token() -> String {
    format!("rq_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// Grants by pattern, each with every permission asked for it.
fn grants(asked: &[(Permission, &Vec<String>)]) -> Vec<Grant> {
    let mut by_pattern: Vec<Grant> = Vec::new();
    for &(permission, patterns) in asked {
        for pattern in patterns {
            match by_pattern.iter_mut().find(|g| &g.pattern == pattern) {
                Some(grant) => grant.allow.push(permission),
                None => by_pattern.push(Grant { pattern: pattern.clone(), allow: vec![permission] }),
            }
        }
    }
    by_pattern
}

fn principal_for(args: &TokenArgs, token: &str) -> Result<Principal> {
    let queues = grants(&[
        (Permission::Publish, &args.publish),
        (Permission::Consume, &args.consume),
        (Permission::Manage, &args.manage),
    ]);
    let topics = grants(&[(Permission::Publish, &args.topic_publish), (Permission::Manage, &args.topic_manage)]);
    let principal = Principal {
        name: args.name.clone(),
        tokens: vec![token_hash(token)],
        queues,
        topics,
        admin: args.admin,
        peer: args.peer,
    };
    // The same checks the server makes.
    Policy::new(AuthFile { principals: vec![principal.clone()] }).map_err(anyhow::Error::msg)?;
    Ok(principal)
}

fn describe(principal: &Principal) -> String {
    let mut out = format!("principal {:?}\n", principal.name);
    out.push_str(&format!("  tokens: {}\n", principal.tokens.len()));
    out.push_str(&format!("  admin: {}\n  peer: {}\n", principal.admin, principal.peer));
    if principal.queues.is_empty() {
        out.push_str("  queues: none\n");
    }
    for grant in &principal.queues {
        let allow: Vec<&str> = grant.allow.iter().map(|p| p.name()).collect();
        out.push_str(&format!("  queues {:?}: {}\n", grant.pattern, allow.join(", ")));
    }
    for grant in &principal.topics {
        let allow: Vec<&str> = grant.allow.iter().map(|p| p.name()).collect();
        out.push_str(&format!("  topics {:?}: {}\n", grant.pattern, allow.join(", ")));
    }
    out
}

fn read_token_from_stdin() -> Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the token from stdin")?;
    let token = line.trim();
    if token.is_empty() {
        bail!("no token on stdin");
    }
    Ok(token.to_owned())
}

/// Reads and checks the auth file at `path`.
pub fn load_policy(path: &Path) -> Result<Policy> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Policy::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Keeps `auth` in step with the file at `path` (see [`crate::reload`]): a
/// valid new file is put in force; one that fails its checks is logged
/// (`auth file refused`) and the policy in force stays. `first`: the bytes
/// of the policy in force.
pub fn spawn_reloader(path: PathBuf, auth: Arc<Auth>, first: Vec<u8>) -> tokio::task::JoinHandle<()> {
    let read_path = path.clone();
    let read = move || std::fs::read(&read_path).with_context(|| format!("reading {}", read_path.display()));
    crate::reload::spawn("auth file", first, read, move |bytes: &Vec<u8>| {
        let text = std::str::from_utf8(bytes).with_context(|| format!("{}: not UTF-8", path.display()))?;
        let policy = Policy::from_json(text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        tracing::info!(target: "raftq::audit", path = %path.display(), principals = policy.len(), "auth policy replaced");
        auth.replace(policy);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_token_resolves_to_its_principal() {
        let args = TokenArgs {
            name: "orders-app".into(),
            publish: vec!["orders*".into()],
            consume: vec!["orders*".into(), "audit".into()],
            manage: vec![],
            topic_publish: vec!["events.*".into()],
            topic_manage: vec!["events.*".into()],
            admin: false,
            peer: false,
        };
        let token = new_token();
        assert!(token.starts_with("rq_") && token.len() == 67, "{token}");
        assert_ne!(token, new_token());
        let principal = principal_for(&args, &token).unwrap();
        assert_eq!(principal.queues.len(), 2, "one grant per pattern: {principal:?}");
        let policy = Policy::new(AuthFile { principals: vec![principal] }).unwrap();
        let found = policy.principal(&token).unwrap();
        assert!(found.allows(Permission::Publish, "orders-eu") && found.allows(Permission::Consume, "orders-eu"));
        assert!(found.allows(Permission::Consume, "audit") && !found.allows(Permission::Publish, "audit"));
        assert!(describe(&found).contains("\"orders*\": publish, consume"), "{}", describe(&found));
        assert!(found.allows_topic(Permission::Manage, "events.x") && !found.allows(Permission::Manage, "events.x"));
        assert!(describe(&found).contains("topics \"events.*\": publish, manage"), "{}", describe(&found));
        let bad = TokenArgs { publish: vec!["a/b".into()], ..args };
        assert!(principal_for(&bad, &token).is_err());
    }
}
