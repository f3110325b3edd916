//! G6: a deposed leader never answers a read from its old state. The leader
//! is frozen (SIGSTOP) while the others elect a new one and take a write;
//! thawed, the old leader believes for a moment that it still leads, and a
//! read sent to it right then must either be refused (it cannot confirm
//! its leadership with a majority) or see the write: never the state from
//! before it.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use raftq_client::{Code, proto};

use crate::harness::{Cluster, Options};

fn ready(info: proto::GetQueueResponse) -> u64 {
    info.queue.and_then(|q| q.stats).map_or(0, |s| s.ready)
}

fn publish(body: &str) -> proto::PublishRequest {
    proto::PublishRequest {
        queue: "q".into(),
        messages: vec![proto::PublishMessage { body: body.to_owned().into(), ..Default::default() }],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deposed_leader_serves_no_stale_read() {
    let mut cluster = Cluster::start("stale-read", 3, Options::default()).await;
    let old = cluster.leader_id().await;
    let mut stub = cluster.queue_stub(old);
    stub.create_queue(proto::CreateQueueRequest { queue: "q".into(), config: None }).await.expect("create");
    stub.publish(publish("before")).await.expect("publish before");
    let get = proto::GetQueueRequest { queue: "q".into() };
    assert_eq!(ready(stub.get_queue(get.clone()).await.expect("read").into_inner()), 1);

    let pid = Pid::from_raw(i32::try_from(cluster.pid(old).expect("pid")).expect("pid fits"));
    kill(pid, Signal::SIGSTOP).expect("SIGSTOP");
    let new = cluster.wait_for_leader(Some(old)).await;
    cluster.queue_stub(new).publish(publish("after")).await.expect("publish on the new leader");
    kill(pid, Signal::SIGCONT).expect("SIGCONT");

    // At once, before the old leader has heard of the new term.
    match stub.get_queue(get).await {
        Ok(info) => assert_eq!(ready(info.into_inner()), 2, "a read after the write must see it"),
        Err(refused) => assert_eq!(refused.code(), Code::Unavailable, "{refused:?}"),
    }
}
