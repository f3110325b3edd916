//! `raftq cluster status|add|promote|remove|transfer-leader|snapshot`.

use std::fmt::Write as _;

use std::time::Duration;

use anyhow::{Result, bail};
use clap::Subcommand;
use raftq_client::{
    Client, ClusterStatus, DigestScan, Member, Membership, NodeDigest, NodeRole, NodeStatus, ReplicaCheck,
};
use serde_json::{Value, json};

/// Cluster administration.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Show the leader, the term and every node's progress (as the leader
    /// sees it, when one answers).
    Status {
        /// Ask only this node (host:port) and show its own view: its role,
        /// term and applied index, without going to the leader (a
        /// follower knows little of the others' progress).
        #[arg(long, value_name = "ADDR")]
        node: Option<String>,
    },
    /// Check that the replicas hold identical state: ask every member for
    /// its state digest until all answer at the same applied index, then
    /// compare. Fails if they differ, or do not settle within --wait.
    /// The digests compared are the stored ones, kept up to date by every
    /// write; with --full each node also recomputes its digest from every
    /// pair of its state (time grows with the backlog), and a node whose
    /// recount differs from its stored digest fails the check.
    Verify {
        /// Also recompute every node's digest by reading its whole state.
        #[arg(long)]
        full: bool,
        /// How long to wait for the members' applied indexes to match
        /// (writes in flight keep them apart).
        #[arg(long, value_parser = super::parse_duration, default_value = "10s")]
        wait: Duration,
    },
    /// Add a node as a learner (it catches up, then can be promoted).
    Add {
        /// The new node's id (its --node-id).
        id: u64,
        /// Its client address, host:port (its --listen, as clients reach it).
        addr: String,
        /// Its peer address, host:port (its --peer-listen, as the other
        /// nodes reach it).
        peer_addr: String,
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
        ClusterCommand::Status { node } => {
            let status = match node {
                Some(addr) => client.cluster_status_of(&addr).await?,
                None => client.cluster_status().await?,
            };
            if json {
                println!("{}", status_json(&status));
            } else {
                print!("{}", status_table(&status));
            }
        }
        ClusterCommand::Verify { wait, full } => {
            let scan = if full { DigestScan::Full } else { DigestScan::Stored };
            let check = client.verify_replicas(wait, scan).await?;
            if json {
                println!("{}", verify_json(&check));
            } else {
                print!("{}", verify_text(&check));
            }
            match check {
                ReplicaCheck::Agree { .. } => {}
                ReplicaCheck::Diverged { applied_index, .. } => {
                    bail!("replicas diverged: different state digests at applied index {applied_index}")
                }
                ReplicaCheck::Damaged { .. } => {
                    bail!("a node's state does not match its stored digest: damaged state or a bug")
                }
                ReplicaCheck::Unsettled { .. } => {
                    bail!("could not verify: the members did not all answer at one applied index within {wait:?}")
                }
            }
        }
        ClusterCommand::Add { id, addr, peer_addr } => print_membership(
            &client.add_learner(id, &addr, &peer_addr).await?,
            json,
            &format!("added node {id} as a learner"),
        ),
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

/// A node's role, lowercase. An unknown role (the answering node does not
/// know) is filled in where it is certain: the known leader is `leader`, a
/// non-voter is `learner`; otherwise `unknown`.
pub(crate) fn role_name(node: &NodeStatus, leader_id: Option<u64>) -> &'static str {
    match node.role {
        NodeRole::Leader => "leader",
        NodeRole::Follower => "follower",
        NodeRole::Candidate => "candidate",
        NodeRole::Learner => "learner",
        NodeRole::Unknown if leader_id == Some(node.node_id) => "leader",
        NodeRole::Unknown if !node.voter => "learner",
        NodeRole::Unknown => "unknown",
    }
}

/// `cluster status --json`.
pub(crate) fn status_json(s: &ClusterStatus) -> Value {
    let nodes: Vec<Value> = s
        .nodes
        .iter()
        .map(|n| {
            json!({
                "node_id": n.node_id,
                "address": n.address,
                "role": role_name(n, s.leader_id),
                "voter": n.voter,
                // Only the answering node knows its own indexes.
                "last_applied": own(s, n, n.last_applied_index),
                "last_log_index": own(s, n, n.last_log_index),
                "committed": own(s, n, n.committed_index),
                "snapshot_index": own(s, n, n.snapshot_index),
                "matched": n.matched_index,
                "reachable": n.reachable,
                "last_contact_ms": n.last_contact.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            })
        })
        .collect();
    let mut j = json!({
        "leader": s.leader_id,
        "leader_address": s.leader_address,
        "term": s.term,
        "answered_by": s.node_id,
        "version": s.version,
        "nodes": nodes,
    });
    if let Some(d) = &s.digest {
        j["digest"] = json!({ "applied_index": d.applied_index, "digest": d.digest });
    }
    j
}

/// `value` if `n` is the answering node's own entry, else `None`: the
/// others' indexes are not known to it.
fn own(s: &ClusterStatus, n: &NodeStatus, value: u64) -> Option<u64> {
    (n.node_id == s.node_id).then_some(value)
}

fn digest_json(d: &NodeDigest) -> Value {
    let mut j =
        json!({ "node_id": d.node_id, "address": d.address, "applied_index": d.applied_index, "digest": d.digest });
    if let Some(full) = &d.full_digest {
        j["full_digest"] = json!(full);
    }
    j
}

/// `cluster verify --json`: `result` is `agree`, `diverged`, `damaged` or
/// `unsettled`.
pub(crate) fn verify_json(check: &ReplicaCheck) -> Value {
    match check {
        ReplicaCheck::Agree { applied_index, digest, nodes } => json!({
            "result": "agree", "applied_index": applied_index, "digest": digest,
            "nodes": nodes.iter().map(digest_json).collect::<Vec<_>>(),
        }),
        ReplicaCheck::Diverged { applied_index, nodes } => json!({
            "result": "diverged", "applied_index": applied_index,
            "nodes": nodes.iter().map(digest_json).collect::<Vec<_>>(),
        }),
        ReplicaCheck::Damaged { nodes } => json!({
            "result": "damaged",
            "nodes": nodes.iter().map(digest_json).collect::<Vec<_>>(),
        }),
        ReplicaCheck::Unsettled { nodes, silent } => json!({
            "result": "unsettled",
            "nodes": nodes.iter().map(digest_json).collect::<Vec<_>>(),
            "silent": silent.iter().map(|(id, addr)| json!({ "node_id": id, "address": addr })).collect::<Vec<_>>(),
        }),
    }
}

/// `cluster verify` for prose.
pub(crate) fn verify_text(check: &ReplicaCheck) -> String {
    let mut out = String::new();
    let nodes = match check {
        ReplicaCheck::Agree { nodes, .. } | ReplicaCheck::Diverged { nodes, .. } => nodes,
        ReplicaCheck::Unsettled { nodes, .. } | ReplicaCheck::Damaged { nodes } => nodes,
    };
    for d in nodes {
        let _ = write!(out, "node {} ({}): applied {}, digest {}", d.node_id, d.address, d.applied_index, d.digest);
        match &d.full_digest {
            Some(full) if *full == d.digest => _ = writeln!(out, ", full scan matches"),
            Some(full) => _ = writeln!(out, ", full scan gives {full}"),
            None => _ = writeln!(out),
        }
    }
    match check {
        ReplicaCheck::Agree { applied_index, nodes, .. } => {
            let _ = writeln!(
                out,
                "replicas agree: {} nodes hold the same state at applied index {applied_index}",
                nodes.len()
            );
        }
        ReplicaCheck::Diverged { applied_index, .. } => {
            let _ = writeln!(out, "replicas DIVERGED: different digests at applied index {applied_index}");
        }
        ReplicaCheck::Damaged { .. } => {
            let _ = writeln!(out, "state DAMAGED: a full scan disagrees with the stored digest on the nodes above");
        }
        ReplicaCheck::Unsettled { silent, .. } => {
            for (id, addr) in silent {
                let _ = writeln!(out, "node {id} ({addr}): no answer");
            }
            let _ = writeln!(out, "not verified: the members never all answered at one applied index");
        }
    }
    out
}

/// `cluster status` for prose.
pub(crate) fn status_table(s: &ClusterStatus) -> String {
    let leader = match s.leader_id {
        Some(id) => format!("node {id} ({})", s.leader_address.as_deref().unwrap_or_default()),
        None => "none".into(),
    };
    let mut out = format!("term {}, leader {leader}, as seen by node {} (raftq {})\n", s.term, s.node_id, s.version);
    let width = s.nodes.iter().map(|n| n.address.len()).max().unwrap_or(0).max(7);
    let _ = writeln!(
        out,
        "{:>4}  {:<width$}  {:<9}  {:<5}  {:>10}  {:>10}  {:>10}  {:>10}  REACHABLE",
        "ID", "ADDRESS", "ROLE", "VOTER", "LAST_LOG", "COMMITTED", "APPLIED", "MATCHED"
    );
    let number = |value: Option<u64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
    for n in &s.nodes {
        let _ = writeln!(
            out,
            "{:>4}  {:<width$}  {:<9}  {:<5}  {:>10}  {:>10}  {:>10}  {:>10}  {}",
            n.node_id,
            n.address,
            role_name(n, s.leader_id),
            yes_no(n.voter),
            number(own(s, n, n.last_log_index)),
            number(own(s, n, n.committed_index)),
            number(own(s, n, n.last_applied_index)),
            number(n.matched_index),
            yes_no(n.reachable)
        );
    }
    let _ = writeln!(
        out,
        "(a node's LAST_LOG, COMMITTED and APPLIED are known only to itself; MATCHED is how far the leader replicated to it)"
    );
    if let Some(d) = &s.digest {
        let _ = writeln!(out, "state digest of node {} at applied index {}: {}", s.node_id, d.applied_index, d.digest);
    }
    out
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// A membership for JSON: `voters` and `learners`, each `{id, address}`.
pub(crate) fn membership_json(m: &Membership) -> Value {
    let members = |ms: &[Member]| -> Vec<Value> {
        ms.iter()
            .map(|m| json!({ "node_id": m.node_id, "address": m.address, "peer_address": m.peer_address }))
            .collect()
    };
    json!({ "voters": members(&m.voters), "learners": members(&m.learners) })
}

/// A membership for prose.
pub(crate) fn membership_text(m: &Membership) -> String {
    let members = |ms: &[Member]| {
        if ms.is_empty() {
            return "-".to_owned();
        }
        ms.iter()
            .map(|m| format!("{} ({}, peers {})", m.node_id, m.address, m.peer_address))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("voters: {}\nlearners: {}", members(&m.voters), members(&m.learners))
}

fn print_membership(m: &Membership, json: bool, headline: &str) {
    if json {
        println!("{}", membership_json(m));
    } else {
        println!("{headline}\n{}", membership_text(m));
    }
}
