//! `raftq topic create|get|list|delete|bind|unbind|publish`.

use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};
use raftq_client::{Client, Filter, TopicConfig, TopicInfo};
use serde_json::json;

use super::messages::{MessageArgs, Target, publish_to};
use super::{output, parse_duration};

/// Topics: publish once, a copy in every bound queue whose filter matches.
#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        /// Topic name: 1..128 of [A-Za-z0-9._-].
        name: String,
        /// Refuse messages that match no binding instead of counting them
        /// as unrouted.
        #[arg(long)]
        require_route: bool,
        /// How long the topic remembers an idempotency key (0 = no dedup;
        /// default 5m).
        #[arg(long, value_parser = parse_duration)]
        dedup_window: Option<Duration>,
    },
    /// Show a topic's counters and bindings.
    Get {
        /// Topic name.
        name: String,
    },
    /// List topics in name order.
    List {
        /// Only topics whose name starts with this.
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Delete a topic and its bindings (the queues stay).
    Delete {
        /// Topic name.
        name: String,
    },
    /// Bind a queue to a topic (binding again replaces the filter).
    Bind(BindArgs),
    /// Remove a queue's binding.
    Unbind {
        /// Topic name.
        topic: String,
        /// Queue name.
        queue: String,
    },
    /// Publish to a topic: each BODY is one message; without BODY, each
    /// line of stdin is one. Prints each message's id and its copies.
    Publish(TopicPublishArgs),
}

/// `topic bind TOPIC QUEUE [--where COND]...`.
#[derive(Debug, Args)]
pub struct BindArgs {
    /// Topic name.
    pub topic: String,
    /// Queue name.
    pub queue: String,
    /// A condition on an attribute; all must hold (none: every message).
    /// `key=value` equals, `key=a|b|c` one of, `key^=pre` starts with,
    /// `key` present, `!key` absent.
    #[arg(long = "where", value_name = "COND", value_parser = parse_condition)]
    pub conditions: Vec<raftq_client::Condition>,
}

/// `topic publish TOPIC [BODY]...`.
#[derive(Debug, Args)]
pub struct TopicPublishArgs {
    /// Topic to publish to.
    pub topic: String,
    #[command(flatten)]
    pub content: MessageArgs,
}

/// Parses one `--where` condition (see [`BindArgs::conditions`]).
pub(crate) fn parse_condition(s: &str) -> Result<raftq_client::Condition, String> {
    use raftq_client::Condition;
    let bad = || format!("{s:?}: expected key=value, key=a|b, key^=prefix, key or !key");
    if let Some((key, prefix)) = s.split_once("^=") {
        return if key.is_empty() { Err(bad()) } else { Ok(Condition::Prefix(key.into(), prefix.into())) };
    }
    if let Some((key, value)) = s.split_once('=') {
        if key.is_empty() {
            return Err(bad());
        }
        return Ok(if value.contains('|') {
            Condition::OneOf(key.into(), value.split('|').map(String::from).collect())
        } else {
            Condition::Equals(key.into(), value.into())
        });
    }
    match s.strip_prefix('!') {
        Some("") => Err(bad()),
        Some(key) => Ok(Condition::NotExists(key.into())),
        None if s.is_empty() => Err(bad()),
        None => Ok(Condition::Exists(s.into())),
    }
}

pub(super) async fn run(client: &Client, command: TopicCommand, json: bool) -> Result<()> {
    match command {
        TopicCommand::Create { name, require_route, dedup_window } => {
            let info = client.create_topic(&name, TopicConfig { require_route, dedup_window }).await?;
            print_topic(&info, json, &format!("created topic {name}"));
        }
        TopicCommand::Get { name } => print_topic(&client.get_topic(&name).await?, json, ""),
        TopicCommand::List { prefix } => {
            let topics = client.list_topics(&prefix).await?;
            if json {
                for t in &topics {
                    println!("{}", output::topic_json(t));
                }
            } else {
                print!("{}", output::topic_table(&topics));
            }
        }
        TopicCommand::Delete { name } => {
            let removed = client.delete_topic(&name).await?;
            if json {
                println!("{}", json!({ "deleted": name, "bindings_removed": removed }));
            } else {
                println!("deleted topic {name} ({removed} bindings)");
            }
        }
        TopicCommand::Bind(args) => {
            let filter = Filter { conditions: args.conditions };
            let info = client.bind(&args.topic, &args.queue, filter).await?;
            print_topic(&info, json, &format!("bound {} to {}", args.queue, args.topic));
        }
        TopicCommand::Unbind { topic, queue } => {
            let info = client.unbind(&topic, &queue).await?;
            print_topic(&info, json, &format!("unbound {queue} from {topic}"));
        }
        TopicCommand::Publish(args) => publish_to(client, Target::Topic(&args.topic), args.content, json).await?,
    }
    Ok(())
}

fn print_topic(info: &TopicInfo, json: bool, headline: &str) {
    if json {
        println!("{}", output::topic_json(info));
        return;
    }
    if !headline.is_empty() {
        println!("{headline}");
    }
    println!("{}", output::topic_details(info));
}
