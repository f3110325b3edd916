//! `raftq cluster status|add|promote|remove|transfer-leader|snapshot`.

use std::fmt::Write as _;

use anyhow::Result;
use clap::Subcommand;
use raftq_client::{Client, proto};
use serde_json::{Value, json};

/// Cluster administration.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Show the leader, the term and every node's progress.
    Status,
    /// Add a node as a learner (it catches up, then can be promoted).
    Add {
        /// The new node's id (its --node-id).
        id: u64,
        /// Its gRPC address, host:port.
        addr: String,
    },
    /// Make a learner a voter.
    Promote {
        /// Node id.
        id: u64,
    },
    /// Remove a node from the cluster.
    Remove {
        /// Node id.
        id: u64,
    },
    /// Hand leadership to a voter.
    TransferLeader {
        /// Node id.
        id: u64,
    },
    /// Snapshot a node's state machine and purge the log it covers.
    Snapshot {
        /// The node to snapshot, host:port (default: the leader).
        #[arg(long)]
        node: Option<String>,
    },
}

pub(super) async fn run(client: &Client, command: ClusterCommand, json: bool) -> Result<()> {
    match command {
        ClusterCommand::Status => {
            let status = client.cluster_status().await?;
            if json {
                println!("{}", status_json(&status));
            } else {
                print!("{}", status_table(&status));
            }
        }
        ClusterCommand::Add { id, addr } => {
            print_membership(&client.add_learner(id, &addr).await?, json, &format!("added node {id} as a learner"))
        }
        ClusterCommand::Promote { id } => {
            print_membership(&client.promote(id).await?, json, &format!("node {id} is a voter"))
        }
        ClusterCommand::Remove { id } => {
            print_membership(&client.remove_node(id).await?, json, &format!("removed node {id}"))
        }
        ClusterCommand::TransferLeader { id } => {
            client.transfer_leader(id).await?;
            if json {
                println!("{}", json!({ "transfer_to": id }));
            } else {
                println!("leadership transfer to node {id} started");
            }
        }
        ClusterCommand::Snapshot { node } => {
            let index = match &node {
                Some(addr) => client.trigger_snapshot_of(addr).await?,
                None => client.trigger_snapshot().await?,
            };
            if json {
                println!("{}", json!({ "snapshot_index": index }));
            } else {
                println!("snapshot taken at log index {index}");
            }
        }
    }
    Ok(())
}

/// A node's role, lowercase. UNSPECIFIED (the answering node does not know)
/// is filled in where it is certain: the known leader is `leader`, a
/// non-voter is `learner`; otherwise `unknown`.
pub(crate) fn role_name(node: &proto::NodeStatus, leader_id: Option<u64>) -> &'static str {
    match node.role() {
        proto::NodeRole::Leader => "leader",
        proto::NodeRole::Follower => "follower",
        proto::NodeRole::Candidate => "candidate",
        proto::NodeRole::Learner => "learner",
        proto::NodeRole::Unspecified if leader_id == Some(node.id) => "leader",
        proto::NodeRole::Unspecified if !node.voter => "learner",
        proto::NodeRole::Unspecified => "unknown",
    }
}

/// `cluster status --json`.
pub(crate) fn status_json(s: &proto::StatusResponse) -> Value {
    let nodes: Vec<Value> = s
        .nodes
        .iter()
        .map(|n| {
            json!({
                "id": n.id,
                "address": n.address,
                "role": role_name(n, s.leader_id),
                "voter": n.voter,
                "last_applied": n.last_applied_index,
                "last_log_index": n.last_log_index,
                "committed": n.committed_index,
                "reachable": n.reachable,
            })
        })
        .collect();
    json!({
        "leader": s.leader_id,
        "leader_address": (!s.leader_address.is_empty()).then_some(&s.leader_address),
        "term": s.term,
        "answered_by": s.node_id,
        "nodes": nodes,
    })
}

/// `cluster status` for prose.
pub(crate) fn status_table(s: &proto::StatusResponse) -> String {
    let leader = match s.leader_id {
        Some(id) => format!("node {id} ({})", s.leader_address),
        None => "none".into(),
    };
    let mut out = format!("term {}, leader {leader}, as seen by node {}\n", s.term, s.node_id);
    let width = s.nodes.iter().map(|n| n.address.len()).max().unwrap_or(0).max(7);
    let _ = writeln!(
        out,
        "{:>4}  {:<width$}  {:<9}  {:<5}  {:>10}  {:>10}  {:>10}  REACHABLE",
        "ID", "ADDRESS", "ROLE", "VOTER", "LAST_LOG", "COMMITTED", "APPLIED"
    );
    for n in &s.nodes {
        let _ = writeln!(
            out,
            "{:>4}  {:<width$}  {:<9}  {:<5}  {:>10}  {:>10}  {:>10}  {}",
            n.id,
            n.address,
            role_name(n, s.leader_id),
            yes_no(n.voter),
            n.last_log_index,
            n.committed_index,
            n.last_applied_index,
            yes_no(n.reachable)
        );
    }
    out
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// A membership for JSON: `voters` and `learners`, each `{id, address}`.
pub(crate) fn membership_json(m: &proto::Membership) -> Value {
    let members = |ms: &[proto::Member]| -> Vec<Value> {
        ms.iter().map(|m| json!({ "id": m.node_id, "address": m.address })).collect()
    };
    json!({ "voters": members(&m.voters), "learners": members(&m.learners) })
}

/// A membership for prose.
pub(crate) fn membership_text(m: &proto::Membership) -> String {
    let members = |ms: &[proto::Member]| {
        if ms.is_empty() {
            return "-".to_owned();
        }
        ms.iter().map(|m| format!("{} ({})", m.node_id, m.address)).collect::<Vec<_>>().join(", ")
    };
    format!("voters: {}\nlearners: {}", members(&m.voters), members(&m.learners))
}

fn print_membership(m: &proto::Membership, json: bool, headline: &str) {
    if json {
        println!("{}", membership_json(m));
    } else {
        println!("{headline}\n{}", membership_text(m));
    }
}
