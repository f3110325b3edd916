//! The fault injector: `docker` commands on the cluster's containers, run
//! off the async workers (each is a short blocking process).

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// What `docker inspect` says about one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    pub running: bool,
    pub paused: bool,
    /// The networks it is attached to.
    pub networks: Vec<String>,
}

/// Runs `docker` against the containers of one compose cluster.
#[derive(Debug, Clone)]
pub struct Docker {
    /// The private network the nodes talk over (partitions detach from it).
    pub network: String,
    /// Grace period of `docker stop`/`restart` before SIGKILL.
    pub stop_timeout: Duration,
}

impl Docker {
    /// Runs `docker ARGS` and returns its stdout; fails with its stderr.
    pub async fn run(&self, args: Vec<String>) -> Result<String> {
        let shown = args.join(" ");
        if args.first().is_some_and(|verb| verb == "inspect") {
            tracing::debug!("docker {shown}");
        } else {
            tracing::info!("docker {shown}");
        }
        let output = tokio::task::spawn_blocking(move || Command::new("docker").args(&args).output())
            .await
            .context("docker task")?
            .context("running docker")?;
        if !output.status.success() {
            bail!("docker {shown}: {}", String::from_utf8_lossy(&output.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    async fn each(&self, verb: &[&str], containers: &[&str]) -> Result<()> {
        let args = verb.iter().chain(containers).map(|s| (*s).to_owned()).collect();
        self.run(args).await.map(drop)
    }

    /// SIGKILL: no clean shutdown, unsynced page cache is the kernel's.
    pub async fn kill(&self, containers: &[&str]) -> Result<()> {
        self.each(&["kill", "-s", "KILL"], containers).await
    }

    /// SIGTERM, then SIGKILL after `stop_timeout`.
    pub async fn stop(&self, containers: &[&str]) -> Result<()> {
        let timeout = self.stop_timeout.as_secs().to_string();
        self.each(&["stop", "-t", &timeout], containers).await
    }

    pub async fn start(&self, containers: &[&str]) -> Result<()> {
        self.each(&["start"], containers).await
    }

    /// Stop (SIGTERM) and start again.
    pub async fn restart(&self, container: &str) -> Result<()> {
        let timeout = self.stop_timeout.as_secs().to_string();
        self.each(&["restart", "-t", &timeout], &[container]).await
    }

    /// Freezes every process of the container (SIGSTOP-like, via cgroups):
    /// its sockets stay open but nothing answers.
    pub async fn pause(&self, container: &str) -> Result<()> {
        self.each(&["pause"], &[container]).await
    }

    pub async fn unpause(&self, container: &str) -> Result<()> {
        self.each(&["unpause"], &[container]).await
    }

    /// Detaches the container from the cluster network: it can reach no
    /// peer and no client (its published ports go with it).
    pub async fn disconnect(&self, container: &str) -> Result<()> {
        self.each(&["network", "disconnect", &self.network], &[container]).await
    }

    pub async fn connect(&self, container: &str) -> Result<()> {
        self.each(&["network", "connect", &self.network], &[container]).await
    }

    pub async fn state(&self, container: &str) -> Result<ContainerState> {
        let format = "{{.State.Running}} {{.State.Paused}} {{range $k, $v := .NetworkSettings.Networks}}{{$k}},{{end}}";
        let out = self.run(vec!["inspect".into(), "-f".into(), format.into(), container.into()]).await?;
        parse_state(&out).with_context(|| format!("docker inspect {container}: {out:?}"))
    }

    /// Undoes every fault this suite injects: reattaches, unpauses, starts.
    pub async fn heal(&self, container: &str) -> Result<()> {
        let state = self.state(container).await?;
        if !state.networks.iter().any(|n| n == &self.network) {
            self.connect(container).await?;
        }
        if state.paused {
            self.unpause(container).await?;
        }
        if !state.running {
            self.start(&[container]).await?;
        }
        Ok(())
    }
}

/// Parses `"true false net-a,net-b,"`.
fn parse_state(out: &str) -> Option<ContainerState> {
    let mut words = out.split_whitespace();
    let running = words.next()?.parse().ok()?;
    let paused = words.next()?.parse().ok()?;
    let networks = words.next().unwrap_or("").split(',').filter(|n| !n.is_empty()).map(str::to_owned).collect();
    Some(ContainerState { running, paused, networks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_output_parses() {
        let state = parse_state("true false raftq-net,other,\n").unwrap();
        assert_eq!(
            state,
            ContainerState { running: true, paused: false, networks: vec!["raftq-net".into(), "other".into()] }
        );
        let detached = parse_state("false true \n").unwrap();
        assert!(!detached.running && detached.paused && detached.networks.is_empty());
        assert!(parse_state("yes no").is_none());
        assert!(parse_state("").is_none());
    }
}
