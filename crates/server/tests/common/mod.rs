//! A node's Raft over the in-memory store, for the tests that drive a
//! `Node` in process (no gRPC).

use std::sync::Arc;
use std::time::Duration;

use openraft::Raft;
use raftq_raft::RaftSettings;
use raftq_raft::network::{Network, TcpConnector};
use raftq_storage::{MemDisk, MemStateMachine, MemStore, TypeConfig};

/// Node 1's Raft on `disk`, not yet a member of anything.
pub async fn raft_on(disk: MemDisk, name: &str) -> Raft<TypeConfig, MemStateMachine> {
    let (log_store, machine) = MemStore::open(disk).await.expect("open");
    let config = RaftSettings::default().openraft_config(name).expect("config");
    Raft::new(1, config, Network::new(Arc::new(TcpConnector::default())), log_store, machine).await.expect("raft")
}

/// Makes node 1 the single voter of a new cluster and waits until it leads.
pub async fn lead_alone(raft: &Raft<TypeConfig, MemStateMachine>) {
    let peers = [(1, raftq_storage::NodeAddr::new("127.0.0.1:1", "127.0.0.1:2"))].into_iter().collect();
    raftq_raft::bootstrap(raft, 1, &peers).await.expect("initialize");
    raft.wait(Some(Duration::from_secs(10)))
        .state(openraft::ServerState::Leader, "the single voter leads")
        .await
        .expect("leader");
}
