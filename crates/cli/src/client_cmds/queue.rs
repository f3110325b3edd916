//! `raftq queue create|get|list|update|delete|purge`.

use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use raftq_client::{Client, Order, QueueConfig, QueueInfo};
use serde_json::json;

use super::{output, parse_duration};

/// Queue management.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Create a queue; unset settings take the server's defaults.
    Create {
        /// Queue name: 1..128 of [A-Za-z0-9._-].
        name: String,
        #[command(flatten)]
        config: QueueConfigArgs,
    },
    /// Show a queue's settings and statistics.
    Get {
        /// Queue name.
        name: String,
    },
    /// List queues in name order.
    List {
        /// Only queues whose name starts with this.
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Change the given settings of a queue.
    Update {
        /// Queue name.
        name: String,
        #[command(flatten)]
        config: QueueConfigArgs,
    },
    /// Delete a queue and every message in it.
    Delete {
        /// Queue name.
        name: String,
    },
    /// Remove every message from a queue, keeping the queue.
    Purge {
        /// Queue name.
        name: String,
    },
}

/// Delivery order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OrderArg {
    /// Oldest visible message first.
    Fifo,
    /// Newest visible message first.
    Lifo,
}

/// Queue settings; each flag left out is left to the server (default on
/// create, unchanged on update). Durations: `250ms`, `30s`, `5m`, `1h`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct QueueConfigArgs {
    /// Lease given to a delivery (default 30s).
    #[arg(long, value_parser = parse_duration)]
    pub lease: Option<Duration>,
    /// Deliveries before a message is dead-lettered; 0 = unlimited.
    #[arg(long)]
    pub max_deliveries: Option<u32>,
    /// Queue receiving this queue's dead letters; "" = none (park them).
    #[arg(long)]
    pub dead_letter_queue: Option<String>,
    /// Message time to live; 0s = forever.
    #[arg(long, value_parser = parse_duration)]
    pub ttl: Option<Duration>,
    /// Most messages held; 0 = unlimited.
    #[arg(long)]
    pub max_length: Option<u64>,
    /// Most message bytes held; 0 = unlimited.
    #[arg(long)]
    pub max_bytes: Option<u64>,
    /// Delivery order.
    #[arg(long, value_enum)]
    pub order: Option<OrderArg>,
    /// Delay for messages published without one.
    #[arg(long, value_parser = parse_duration)]
    pub delay: Option<Duration>,
    /// How long idempotency keys are remembered (default 5m).
    #[arg(long, value_parser = parse_duration)]
    pub dedup_window: Option<Duration>,
    /// Base of the redelivery backoff (default 0s: redeliver at once).
    #[arg(long, value_parser = parse_duration)]
    pub backoff_base: Option<Duration>,
    /// Cap of the redelivery backoff (default 5m).
    #[arg(long, value_parser = parse_duration)]
    pub backoff_max: Option<Duration>,
    /// Largest message accepted, in bytes (default 1 MiB, at most 4 MiB).
    #[arg(long)]
    pub max_message_bytes: Option<u32>,
}

impl QueueConfigArgs {
    /// The client's config: only the flags given are set.
    pub fn to_config(&self) -> QueueConfig {
        QueueConfig {
            order: self.order.map(|o| match o {
                OrderArg::Fifo => Order::Fifo,
                OrderArg::Lifo => Order::Lifo,
            }),
            lease: self.lease,
            max_deliveries: self.max_deliveries,
            dead_letter_queue: self.dead_letter_queue.clone(),
            message_ttl: self.ttl,
            max_length: self.max_length,
            max_bytes: self.max_bytes,
            default_delay: self.delay,
            dedup_window: self.dedup_window,
            backoff_base: self.backoff_base,
            backoff_max: self.backoff_max,
            max_message_bytes: self.max_message_bytes,
        }
    }
}

pub(super) async fn run(client: &Client, command: QueueCommand, json: bool) -> Result<()> {
    match command {
        QueueCommand::Create { name, config } => {
            let info = client.create_queue(&name, config.to_config()).await?;
            print_queue(&info, json, &format!("created queue {name}"));
        }
        QueueCommand::Get { name } => print_queue(&client.get_queue(&name).await?, json, ""),
        QueueCommand::List { prefix } => {
            let queues = client.list_queues(&prefix).await?;
            if json {
                for q in &queues {
                    println!("{}", output::queue_json(q));
                }
            } else {
                print!("{}", output::queue_table(&queues));
            }
        }
        QueueCommand::Update { name, config } => {
            if config == QueueConfigArgs::default() {
                bail!("nothing to update: give at least one setting, e.g. --lease 1m");
            }
            let info = client.update_queue(&name, config.to_config()).await?;
            print_queue(&info, json, &format!("updated queue {name}"));
        }
        QueueCommand::Delete { name } => {
            let deleted = client.delete_queue(&name).await?;
            if json {
                println!("{}", json!({ "deleted": name, "messages_deleted": deleted }));
            } else {
                println!("deleted queue {name} ({deleted} messages)");
            }
        }
        QueueCommand::Purge { name } => {
            let purged = client.purge_queue(&name).await?;
            if json {
                println!("{}", json!({ "purged": name, "messages_purged": purged }));
            } else {
                println!("purged {purged} messages from {name}");
            }
        }
    }
    Ok(())
}

fn print_queue(info: &QueueInfo, json: bool, headline: &str) {
    if json {
        println!("{}", output::queue_json(info));
        return;
    }
    if !headline.is_empty() {
        println!("{headline}");
    }
    println!("{}", output::queue_details(info));
}
