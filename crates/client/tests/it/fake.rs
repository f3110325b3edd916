//! A scriptable in-process raftq node: the generated `Queue` and `Cluster`
//! traits over a listener bound to 127.0.0.1:0. It keeps just enough state
//! to check what the client sends: publishes with a dedup map, a ready list
//! for Receive/Subscribe, and a log of every call.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use futures_util::Stream;
use raftq_client::{ClientConfig, ResolvedQueueConfig, RetryPolicy, proto};
use raftq_proto::v1::{
    cluster_server::{Cluster, ClusterServer},
    queue_server::{Queue, QueueServer},
};
use tokio::{net::TcpListener, sync::oneshot};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

/// What the fake node does and has seen.
#[derive(Debug, Default)]
pub struct Script {
    /// Fail this many of the next calls (any method) with UNAVAILABLE.
    pub unavailable: usize,
    /// The `raftq-leader` hint on those failures.
    pub hint: Option<String>,
    /// Apply this many of the next publishes, then answer UNAVAILABLE (a
    /// leader that lost leadership after its entry committed).
    pub commit_then_fail: usize,
    /// PublishStream: after answering this many requests, the next one is
    /// stored but the stream ends with `stream_break_code` (UNAVAILABLE if
    /// unset) instead of its answer (a connection lost after the commit).
    pub stream_break_after: Option<usize>,
    pub stream_break_code: Option<tonic::Code>,
    /// PublishStream answers UNIMPLEMENTED (an older server).
    pub stream_unimplemented: bool,
    /// The window PublishStream grants, in requests (STREAM_WINDOW if 0).
    /// The fake enforces it: a request past it ends the stream with
    /// RESOURCE_EXHAUSTED and sets `window_overrun`.
    pub stream_window: u32,
    pub window_overrun: bool,
    /// PublishStream stores requests but holds their answers until
    /// [`Fake::release`].
    pub stream_hold: bool,
    /// PublishStream waits this long before each answer (a busy node).
    pub stream_answer_delay: Duration,
    /// Consume: a Nack is applied, then the stream ends with UNAVAILABLE
    /// instead of its answer.
    pub consume_break_on_nack: bool,
    /// Nacks applied (stream or unary), by message id.
    pub nacked: Vec<u64>,
    /// Every call hangs (a node that accepts but never answers).
    pub hang: bool,
    /// Subscribe streams end with UNAVAILABLE (and `hint`) after this many
    /// deliveries; `None` = they stay open.
    pub stream_fail_after: Option<usize>,
    /// Answer this many of the next TransferLeader calls with ABORTED
    /// (another node won the election); then OK.
    pub transfer_aborted: usize,
    /// AddLearner answers after this long (the server answers once the
    /// learner has caught up, which can take long).
    pub learner_catch_up: Duration,
    /// Cluster.Status: this node's id, the leader it knows, its address.
    pub node_id: u64,
    pub leader: Option<(u64, String)>,
    /// Every call, by method name.
    pub calls: Vec<&'static str>,
    /// Idempotency keys of every Publish request, in order, failed ones too.
    pub publish_keys: Vec<Vec<String>>,
    /// Key → id of every stored message.
    pub dedup: HashMap<String, u64>,
    /// Stored messages not yet delivered: (id, body).
    pub ready: Vec<(u64, bytes::Bytes)>,
    /// Receipts acked.
    pub acked: Vec<proto::Receipt>,
    pub next_id: u64,
}

/// A running fake node.
#[derive(Debug, Clone)]
pub struct Fake {
    pub addr: String,
    script: Arc<Mutex<Script>>,
    events: Arc<Events>,
    _shutdown: Arc<oneshot::Sender<()>>,
}

impl Fake {
    /// Starts a node with `script`.
    pub async fn start(script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let script = Arc::new(Mutex::new(script));
        let events = Arc::new(Events::default());
        let node = Node { script: Arc::clone(&script), events: Arc::clone(&events) };
        let (tx, rx) = oneshot::channel();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(QueueServer::new(node.clone()))
                .add_service(ClusterServer::new(node))
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = rx.await;
                }),
        );
        Self { addr, script, events, _shutdown: Arc::new(tx) }
    }

    /// Waits until the fake has seen `n` PublishStream requests in all.
    pub async fn stream_requests_seen(&self, n: usize) {
        loop {
            let seen = self.events.request_seen.notified();
            if self.calls("publish_stream_request") >= n {
                return;
            }
            seen.await;
        }
    }

    /// Ends `stream_hold`: held answers are sent, later ones at once.
    pub fn release(&self) {
        self.script().stream_hold = false;
        self.events.release.notify_waiters();
    }

    /// The script, to read what happened or change what comes next.
    pub fn script(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap()
    }

    pub fn calls(&self, method: &str) -> usize {
        self.script().calls.iter().filter(|c| **c == method).count()
    }
}

/// A config with fast retries for tests.
pub fn config(servers: &[&str]) -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_millis(500),
        retry: RetryPolicy {
            max_attempts: 6,
            base_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            deadline: Duration::from_secs(5),
        },
        ..ClientConfig::new(servers.iter().copied())
    }
}

/// An address nothing listens on.
pub async fn dead_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().to_string()
}

#[derive(Debug, Clone)]
struct Node {
    script: Arc<Mutex<Script>>,
    events: Arc<Events>,
}

/// What tests wait on.
#[derive(Debug, Default)]
struct Events {
    /// Notified on every PublishStream request.
    request_seen: tokio::sync::Notify,
    /// Notified when held answers are released.
    release: tokio::sync::Notify,
}

fn unavailable(hint: Option<&str>) -> Status {
    let mut status = Status::unavailable("not the leader");
    if let Some(hint) = hint {
        status.metadata_mut().insert(raftq_proto::LEADER_METADATA_KEY, hint.parse().unwrap());
    }
    status
}

fn delivery(queue: &str, id: u64, body: bytes::Bytes) -> proto::Delivery {
    proto::Delivery {
        message: Some(proto::MessageView {
            message_id: id,
            body,
            delivery_count: 1,
            state: proto::MessageState::Leased.into(),
            lease_expires_at_ms: 1_000,
            ..Default::default()
        }),
        receipt: Some(proto::Receipt { queue: queue.to_owned(), message_id: id, delivery_count: 1 }),
        lease_expires_at_ms: 1_000,
    }
}

/// A new queue as the server describes it: the resolved default config.
fn queue_info(name: String) -> proto::QueueInfo {
    proto::QueueInfo {
        name,
        config: Some(ResolvedQueueConfig::default().into()),
        stats: Some(proto::QueueStats::default()),
        created_at_ms: 1,
    }
}

impl Node {
    fn lock(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap()
    }

    /// Logs the call, then hangs or fails it as scripted.
    async fn gate(&self, method: &'static str) -> Result<(), Status> {
        let (hang, fail) = {
            let mut s = self.lock();
            s.calls.push(method);
            let fail = s.unavailable > 0;
            if fail {
                s.unavailable -= 1;
            }
            (s.hang, fail.then(|| s.hint.clone()))
        };
        if hang {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        match fail {
            Some(hint) => Err(unavailable(hint.as_deref())),
            None => Ok(()),
        }
    }
}

type Deliveries = Pin<Box<dyn Stream<Item = Result<proto::SubscribeResponse, Status>> + Send>>;
type PublishAnswers = Pin<Box<dyn Stream<Item = Result<proto::PublishStreamResponse, Status>> + Send>>;

/// The window the fake's PublishStream grants.
pub const STREAM_WINDOW: u32 = 64;

/// Stores keyed messages as a publish does (a key seen before answers its
/// id as a duplicate); then fails as scripted by `commit_then_fail`.
fn store(s: &mut Script, messages: Vec<proto::PublishMessage>) -> Result<Vec<proto::PublishResult>, Status> {
    let mut results = Vec::new();
    for message in messages {
        if let Some(&id) = s.dedup.get(&message.idempotency_key) {
            results.push(proto::PublishResult { message_id: id, duplicate: true });
            continue;
        }
        s.next_id += 1;
        let id = s.next_id;
        s.dedup.insert(message.idempotency_key, id);
        s.ready.push((id, message.body));
        results.push(proto::PublishResult { message_id: id, duplicate: false });
    }
    if s.commit_then_fail > 0 {
        s.commit_then_fail -= 1;
        return Err(unavailable(s.hint.clone().as_deref()));
    }
    Ok(results)
}

#[tonic::async_trait]
impl Queue for Node {
    type SubscribeStream = Deliveries;

    async fn create_queue(
        &self,
        req: Request<proto::CreateQueueRequest>,
    ) -> Result<Response<proto::CreateQueueResponse>, Status> {
        self.gate("create_queue").await?;
        Ok(Response::new(proto::CreateQueueResponse { queue: Some(queue_info(req.into_inner().queue)) }))
    }

    async fn get_queue(
        &self,
        req: Request<proto::GetQueueRequest>,
    ) -> Result<Response<proto::GetQueueResponse>, Status> {
        self.gate("get_queue").await?;
        Err(Status::not_found(format!("queue {:?} not found", req.into_inner().queue)))
    }

    async fn list_queues(
        &self,
        req: Request<proto::ListQueuesRequest>,
    ) -> Result<Response<proto::ListQueuesResponse>, Status> {
        self.gate("list_queues").await?;
        // Three queues a..c, one per page.
        let after = req.into_inner().start_after;
        let next = match after.as_str() {
            "" => "a",
            "a" => "b",
            "b" => "c",
            _ => return Ok(Response::new(proto::ListQueuesResponse::default())),
        };
        let queues = vec![queue_info(next.into())];
        let next_start_after = if next == "c" { String::new() } else { next.into() };
        Ok(Response::new(proto::ListQueuesResponse { queues, next_start_after }))
    }

    async fn update_queue(
        &self,
        _: Request<proto::UpdateQueueRequest>,
    ) -> Result<Response<proto::UpdateQueueResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn delete_queue(
        &self,
        _: Request<proto::DeleteQueueRequest>,
    ) -> Result<Response<proto::DeleteQueueResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn purge_queue(
        &self,
        _: Request<proto::PurgeQueueRequest>,
    ) -> Result<Response<proto::PurgeQueueResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn publish(&self, req: Request<proto::PublishRequest>) -> Result<Response<proto::PublishResponse>, Status> {
        let req = req.into_inner();
        self.lock().publish_keys.push(req.messages.iter().map(|m| m.idempotency_key.clone()).collect());
        self.gate("publish").await?;
        let results = store(&mut self.lock(), req.messages)?;
        Ok(Response::new(proto::PublishResponse { results }))
    }

    type PublishStreamStream = PublishAnswers;

    async fn publish_stream(
        &self,
        req: Request<tonic::Streaming<proto::PublishStreamRequest>>,
    ) -> Result<Response<Self::PublishStreamStream>, Status> {
        use proto::publish_stream_response::Kind;
        self.gate("publish_stream").await?;
        let window_requests = {
            let s = self.lock();
            if s.stream_unimplemented {
                return Err(Status::unimplemented("PublishStream is not served here"));
            }
            if s.stream_window == 0 { STREAM_WINDOW } else { s.stream_window }
        };
        let mut inbound = req.into_inner();
        let script = Arc::clone(&self.script);
        let events = Arc::clone(&self.events);
        let (tx, rx) = tokio::sync::mpsc::channel(window_requests as usize + 2);
        let window = proto::PublishWindow { requests: window_requests, bytes: 4 << 20 };
        tx.try_send(Ok(proto::PublishStreamResponse { kind: Some(Kind::Window(window)) })).unwrap();
        tokio::spawn(async move {
            let mut held: Vec<Kind> = Vec::new();
            let mut unanswered = 0u32;
            loop {
                // Registered before the check, so a release in between is
                // not missed.
                let release = events.release.notified();
                if !held.is_empty() && !script.lock().unwrap().stream_hold {
                    for kind in held.drain(..) {
                        unanswered -= 1;
                        if tx.send(Ok(proto::PublishStreamResponse { kind: Some(kind) })).await.is_err() {
                            return;
                        }
                    }
                }
                let request = tokio::select! {
                    message = inbound.message() => match message {
                        Ok(Some(request)) => request,
                        _ => return,
                    },
                    () = release => continue,
                };
                // Decided under the lock, acted on after it.
                let step: Result<_, Status> = (|| {
                    let mut s = script.lock().unwrap();
                    s.calls.push("publish_stream_request");
                    events.request_seen.notify_waiters();
                    if unanswered >= window_requests {
                        s.window_overrun = true;
                        return Err(Status::resource_exhausted("window exceeded"));
                    }
                    s.publish_keys.push(request.messages.iter().map(|m| m.idempotency_key.clone()).collect());
                    let stored = store(&mut s, request.messages);
                    let break_now = s.stream_break_after == Some(0);
                    if let Some(n) = s.stream_break_after.as_mut() {
                        *n = n.saturating_sub(1);
                    }
                    if break_now {
                        s.stream_break_after = None;
                        let code = s.stream_break_code.unwrap_or(tonic::Code::Unavailable);
                        return Err(Status::new(code, "the stream broke"));
                    }
                    let kind = match stored {
                        Ok(results) => Kind::Confirm(proto::PublishConfirm { sequence: request.sequence, results }),
                        Err(status) => Kind::Rejected(proto::StreamRejection {
                            sequence: request.sequence,
                            code: status.code() as i32,
                            message: status.message().to_owned(),
                            details: status.details().to_vec().into(),
                            metadata: status
                                .metadata()
                                .get("raftq-leader")
                                .and_then(|v| v.to_str().ok())
                                .map(|leader| ("raftq-leader".to_owned(), leader.to_owned()))
                                .into_iter()
                                .collect(),
                        }),
                    };
                    Ok((kind, s.stream_hold, s.stream_answer_delay))
                })();
                let (kind, hold, delay) = match step {
                    Ok(step) => step,
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                };
                if hold {
                    unanswered += 1;
                    held.push(kind);
                    continue;
                }
                tokio::time::sleep(delay).await;
                if tx.send(Ok(proto::PublishStreamResponse { kind: Some(kind) })).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn receive(&self, req: Request<proto::ReceiveRequest>) -> Result<Response<proto::ReceiveResponse>, Status> {
        self.gate("receive").await?;
        let req = req.into_inner();
        let mut s = self.lock();
        let n = (req.max_messages as usize).min(s.ready.len());
        let deliveries = s.ready.drain(..n).map(|(id, body)| delivery(&req.queue, id, body)).collect();
        Ok(Response::new(proto::ReceiveResponse { deliveries }))
    }

    async fn subscribe(
        &self,
        req: Request<proto::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        self.gate("subscribe").await?;
        let queue = req.into_inner().queue;
        let mut s = self.lock();
        let n = s.stream_fail_after.unwrap_or(usize::MAX).min(s.ready.len());
        let mut items: Vec<Result<proto::SubscribeResponse, Status>> = s
            .ready
            .drain(..n)
            .map(|(id, body)| Ok(proto::SubscribeResponse { delivery: Some(delivery(&queue, id, body)) }))
            .collect();
        let stream: Deliveries = if s.stream_fail_after.is_some() {
            items.push(Err(unavailable(s.hint.as_deref())));
            Box::pin(tokio_stream::iter(items))
        } else {
            // Stay open after the ready messages, like a real subscription.
            Box::pin(futures_util::StreamExt::chain(tokio_stream::iter(items), futures_util::stream::pending()))
        };
        Ok(Response::new(stream))
    }

    type ConsumeStream = Pin<Box<dyn Stream<Item = Result<proto::ConsumeResponse, Status>> + Send>>;

    async fn consume(
        &self,
        req: Request<tonic::Streaming<proto::ConsumeRequest>>,
    ) -> Result<Response<Self::ConsumeStream>, Status> {
        use proto::consume_response::Kind;
        use proto::consume_settle::Action;
        use proto::consume_settled::Result as Settled;
        self.gate("consume").await?;
        let mut inbound = req.into_inner();
        let Ok(Some(proto::ConsumeRequest { kind: Some(proto::consume_request::Kind::Subscribe(subscribe)) })) =
            inbound.message().await
        else {
            return Err(Status::invalid_argument("subscribe: the first message must subscribe"));
        };
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        for (id, body) in self.lock().ready.drain(..) {
            let delivery = Kind::Delivery(delivery(&subscribe.queue, id, body));
            tx.try_send(Ok(proto::ConsumeResponse { kind: Some(delivery) })).unwrap();
        }
        let script = Arc::clone(&self.script);
        tokio::spawn(async move {
            while let Ok(Some(request)) = inbound.message().await {
                let Some(proto::consume_request::Kind::Settle(settle)) = request.kind else { return };
                let result = (|| {
                    let mut s = script.lock().unwrap();
                    Some(match settle.action {
                        Some(Action::Ack(ack)) => {
                            let acked = ack.receipts.len() as u64;
                            s.acked.extend(ack.receipts);
                            Settled::Ack(proto::AckResponse { acked })
                        }
                        Some(Action::Nack(nack)) => {
                            s.nacked.push(nack.receipt.map_or(0, |r| r.message_id));
                            if s.consume_break_on_nack {
                                return None;
                            }
                            Settled::Nack(proto::NackResponse {
                                outcome: proto::NackOutcome::Redeliver.into(),
                                visible_at_ms: 1,
                            })
                        }
                        _ => return None,
                    })
                })();
                let Some(result) = result else {
                    let _ = tx.send(Err(unavailable(None))).await;
                    return;
                };
                let settled = proto::ConsumeSettled { sequence: settle.sequence, result: Some(result) };
                if tx.send(Ok(proto::ConsumeResponse { kind: Some(Kind::Settled(settled)) })).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn ack(&self, req: Request<proto::AckRequest>) -> Result<Response<proto::AckResponse>, Status> {
        self.gate("ack").await?;
        let receipts = req.into_inner().receipts;
        let acked = receipts.len() as u64;
        self.lock().acked.extend(receipts);
        Ok(Response::new(proto::AckResponse { acked }))
    }

    async fn nack(&self, req: Request<proto::NackRequest>) -> Result<Response<proto::NackResponse>, Status> {
        self.gate("nack").await?;
        let id = req.into_inner().receipt.map_or(0, |r| r.message_id);
        self.lock().nacked.push(id);
        Ok(Response::new(proto::NackResponse { outcome: proto::NackOutcome::Redeliver.into(), visible_at_ms: 1 }))
    }

    async fn extend_lease(
        &self,
        _: Request<proto::ExtendLeaseRequest>,
    ) -> Result<Response<proto::ExtendLeaseResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn nack_batch(
        &self,
        _: Request<proto::NackBatchRequest>,
    ) -> Result<Response<proto::NackBatchResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn extend_lease_batch(
        &self,
        _: Request<proto::ExtendLeaseBatchRequest>,
    ) -> Result<Response<proto::ExtendLeaseBatchResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn peek(&self, _: Request<proto::PeekRequest>) -> Result<Response<proto::PeekResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn inspect(&self, _: Request<proto::InspectRequest>) -> Result<Response<proto::InspectResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn redrive(&self, _: Request<proto::RedriveRequest>) -> Result<Response<proto::RedriveResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn create_topic(
        &self,
        _: Request<proto::CreateTopicRequest>,
    ) -> Result<Response<proto::CreateTopicResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn get_topic(&self, _: Request<proto::GetTopicRequest>) -> Result<Response<proto::GetTopicResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn list_topics(
        &self,
        _: Request<proto::ListTopicsRequest>,
    ) -> Result<Response<proto::ListTopicsResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn delete_topic(
        &self,
        _: Request<proto::DeleteTopicRequest>,
    ) -> Result<Response<proto::DeleteTopicResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn bind(&self, _: Request<proto::BindRequest>) -> Result<Response<proto::BindResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn unbind(&self, _: Request<proto::UnbindRequest>) -> Result<Response<proto::UnbindResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    /// As `publish`, one copy in one queue per message: enough to see the
    /// keys a retried topic publish carries.
    async fn publish_topic(
        &self,
        req: Request<proto::PublishTopicRequest>,
    ) -> Result<Response<proto::PublishTopicResponse>, Status> {
        let req = req.into_inner();
        self.lock().publish_keys.push(req.messages.iter().map(|m| m.idempotency_key.clone()).collect());
        self.gate("publish_topic").await?;
        let mut s = self.lock();
        let mut results = Vec::new();
        for message in req.messages {
            if let Some(&id) = s.dedup.get(&message.idempotency_key) {
                results.push(proto::TopicPublishResult { message_id: id, duplicate: true, copies: vec![] });
                continue;
            }
            s.next_id += 1;
            let id = s.next_id;
            s.dedup.insert(message.idempotency_key, id);
            s.ready.push((id, message.body));
            let copy = proto::TopicCopy { queue: "q".into(), message_id: id, duplicate: false };
            results.push(proto::TopicPublishResult { message_id: id, duplicate: false, copies: vec![copy] });
        }
        if s.commit_then_fail > 0 {
            s.commit_then_fail -= 1;
            return Err(unavailable(s.hint.clone().as_deref()));
        }
        Ok(Response::new(proto::PublishTopicResponse { results }))
    }
}

#[tonic::async_trait]
impl Cluster for Node {
    async fn status(&self, _: Request<proto::StatusRequest>) -> Result<Response<proto::StatusResponse>, Status> {
        self.gate("status").await?;
        let s = self.lock();
        let (leader_id, leader_address) = match &s.leader {
            Some((id, addr)) => (Some(*id), addr.clone()),
            None => (None, String::new()),
        };
        Ok(Response::new(proto::StatusResponse {
            leader_id,
            leader_address,
            term: 3,
            nodes: vec![],
            node_id: s.node_id,
            digest: None,
            version: "fake".into(),
        }))
    }

    async fn add_learner(
        &self,
        req: Request<proto::AddLearnerRequest>,
    ) -> Result<Response<proto::AddLearnerResponse>, Status> {
        self.gate("add_learner").await?;
        let wait = self.lock().learner_catch_up;
        tokio::time::sleep(wait).await;
        let r = req.into_inner();
        let learner = proto::Member { node_id: r.node_id, address: r.address, peer_address: r.peer_address };
        Ok(Response::new(proto::AddLearnerResponse {
            membership: Some(proto::Membership { voters: vec![], learners: vec![learner] }),
        }))
    }

    async fn promote_node(
        &self,
        _: Request<proto::PromoteNodeRequest>,
    ) -> Result<Response<proto::PromoteNodeResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn remove_node(
        &self,
        _: Request<proto::RemoveNodeRequest>,
    ) -> Result<Response<proto::RemoveNodeResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn transfer_leader(
        &self,
        _: Request<proto::TransferLeaderRequest>,
    ) -> Result<Response<proto::TransferLeaderResponse>, Status> {
        self.gate("transfer_leader").await?;
        let mut s = self.lock();
        if s.transfer_aborted > 0 {
            s.transfer_aborted -= 1;
            return Err(Status::aborted("node 3 won the election instead"));
        }
        Ok(Response::new(proto::TransferLeaderResponse {}))
    }

    async fn trigger_snapshot(
        &self,
        _: Request<proto::TriggerSnapshotRequest>,
    ) -> Result<Response<proto::TriggerSnapshotResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
}
