//! Client commands: `queue`, `topic`, `publish`, `consume`, `ack`, `nack`, `peek`,
//! `inspect`, `dlq`, `cluster`. Each parses its flags (clap), calls
//! [`raftq_client::Client`], and prints prose, or JSON with `--json`
//! (one object per result; one object per line for lists and streams).
//!
//! - `queue`: queue management and the queue config flags.
//! - `topic`: topics, bindings and their filters, publish to a topic.
//! - `messages`: publish, consume, ack, nack, peek, inspect, dlq redrive.
//! - `cluster`: cluster status and membership.
//! - `output`: every JSON shape and human line, as pure functions.

pub(crate) mod cluster;
mod messages;
pub(crate) mod output;
mod queue;
#[cfg(test)]
mod tests;
mod topic;

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use raftq_client::{Client, ClientConfig, Receipt};

pub use self::{
    cluster::ClusterCommand,
    messages::{AckArgs, ConsumeArgs, DlqCommand, InspectArgs, NackArgs, PeekArgs, PublishArgs},
    queue::QueueCommand,
    topic::TopicCommand,
};

/// The client commands, flattened into the binary's top-level commands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create, inspect, change and delete queues.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Publish messages: each BODY is one message; without BODY, each line
    /// of stdin is one. Prints the message ids.
    Publish(PublishArgs),
    /// Receive up to --max messages, print them and ack them.
    Consume(ConsumeArgs),
    /// Ack deliveries by receipt (`queue/id/attempt`).
    Ack(AckArgs),
    /// Give a delivery back for redelivery, or dead-letter it.
    Nack(NackArgs),
    /// List messages without consuming or changing them.
    Peek(PeekArgs),
    /// Show one message: state and history.
    Inspect(InspectArgs),
    /// Dead-letter queues.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Topics: publish once, a copy in every bound queue that matches.
    #[command(subcommand)]
    Topic(TopicCommand),
    /// Cluster status and membership.
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

/// Runs one client command against `servers` (`host:port`, any subset of
/// the cluster), printing JSON instead of prose with `json`.
pub async fn run(command: ClientCommand, servers: Vec<String>, base: ClientConfig, json: bool) -> Result<()> {
    let client = connect(servers, base)?;
    match command {
        ClientCommand::Queue(cmd) => queue::run(&client, cmd, json).await,
        ClientCommand::Publish(args) => messages::publish(&client, args, json).await,
        ClientCommand::Consume(args) => messages::consume(&client, args, json).await,
        ClientCommand::Ack(args) => messages::ack(&client, args, json).await,
        ClientCommand::Nack(args) => messages::nack(&client, args, json).await,
        ClientCommand::Peek(args) => messages::peek(&client, args, json).await,
        ClientCommand::Inspect(args) => messages::inspect(&client, args, json).await,
        ClientCommand::Dlq(cmd) => messages::dlq(&client, cmd, json).await,
        ClientCommand::Topic(cmd) => topic::run(&client, cmd, json).await,
        ClientCommand::Cluster(cmd) => cluster::run(&client, cmd, json).await,
    }
}

/// A client for the non-empty entries of `servers`, with `base`'s token
/// and TLS settings.
fn connect(servers: Vec<String>, base: ClientConfig) -> Result<Client> {
    let servers: Vec<String> =
        servers.iter().flat_map(|s| s.split(',')).map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
    if servers.is_empty() {
        bail!("no servers: pass --servers host:port,... or set RAFTQ_SERVERS");
    }
    Client::connect(ClientConfig { servers, ..base }).context("--servers / --token / --tls-*")
}

/// Parses a duration such as `30s`, `5m`, `250ms` or `1h 30m`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (examples: 250ms, 30s, 5m, 1h)"))
}

/// Parses `key=value` (the value may contain `=`; the key may not be empty).
pub(crate) fn parse_attribute(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{s:?}: expected key=value")),
    }
}

/// Parses a rate `N/s` (or plain `N`), N ≥ 1 messages per second.
pub(crate) fn parse_rate(s: &str) -> Result<u32, String> {
    let n = s.trim().strip_suffix("/s").unwrap_or(s.trim());
    match n.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?}: expected a rate like 100/s (at least 1/s)")),
    }
}

/// Parses a receipt `queue/id/attempt`.
pub(crate) fn parse_receipt(s: &str) -> Result<Receipt, String> {
    s.parse::<Receipt>().map_err(|_| format!("{s:?}: expected queue/message_id/delivery_count, e.g. orders/42/1"))
}
