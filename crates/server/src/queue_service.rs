//! The client-facing `Queue` service. Mutations (receive included) are
//! proposed through Raft; reads go through a read-index barrier.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use raftq_core::limits::{ACK_RECEIPTS_MAX, LIST_QUEUES_MAX, LIST_TOPICS_MAX, PEEK_MESSAGES_MAX, REDRIVE_MESSAGES_MAX};
use raftq_core::{Command, NackOutcome, Typed, validate_queue_name};
use raftq_proto::v1 as pb;
use raftq_proto::v1::queue_server::{Queue, QueueServer};
use tokio::time::Instant;
use tonic::{Request, Response, Status, Streaming};

use crate::audit::Audit;
use crate::auth::{Caller, Permission, require, require_topic};
use crate::convert;
use crate::error::{invalid, queue_error};
use crate::node::{Node, QueueMachine};
use crate::publish_stream::rejection;
use crate::{consume, publish_stream, subscribe};

/// Longest long-poll a receive may ask for (PRODUCT.md: up to 20 s).
pub const RECEIVE_WAIT_MS_MAX: u64 = raftq_core::limits::RECEIVE_WAIT_MS_MAX;
/// Largest gRPC message a client may send or receive: a 4 MiB publish batch
/// or an 8 MiB receive, with room for framing (see the core's assertions).
pub const CLIENT_MESSAGE_BYTES_MAX: usize = raftq_core::limits::CLIENT_MESSAGE_BYTES_MAX;
/// Items in a ListQueues or Peek page when the request names no limit.
const PAGE_SIZE_DEFAULT: u32 = 100;
/// A rate-limited redrive moves at most `messages_per_second` per this period.
const REDRIVE_RATE_PERIOD: Duration = Duration::from_secs(1);

pub struct QueueService<SM: QueueMachine> {
    node: Arc<Node<SM>>,
    /// The policy in force (auth on), for streams that check again.
    auth: Option<Arc<crate::auth::Auth>>,
}

impl<SM: QueueMachine> std::fmt::Debug for QueueService<SM> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueService").field("node", &self.node).finish()
    }
}

impl<SM: QueueMachine> QueueService<SM> {
    pub fn server(node: Arc<Node<SM>>, auth: Option<Arc<crate::auth::Auth>>) -> QueueServer<Self> {
        QueueServer::new(Self { node, auth })
            .max_decoding_message_size(CLIENT_MESSAGE_BYTES_MAX)
            .max_encoding_message_size(CLIENT_MESSAGE_BYTES_MAX)
    }
}

/// Create and update need `manage` on the queue, and on the dead-letter
/// queue the config names (its messages will be moved there).
fn require_manage<T>(request: &Request<T>, name: &str, config: Option<&pb::QueueConfig>) -> Result<(), Status> {
    require(request, Permission::Manage, name)?;
    match config.and_then(|c| c.dead_letter_queue.as_deref()) {
        Some(dlq) if !dlq.is_empty() => require(request, Permission::Manage, dlq),
        _ => Ok(()),
    }
}

/// GetQueue needs any permission on the queue.
fn require_any<T>(request: &Request<T>, name: &str) -> Result<(), Status> {
    let permissions = [Permission::Publish, Permission::Consume, Permission::Manage];
    if permissions.into_iter().any(|p| require(request, p, name).is_ok()) {
        return Ok(());
    }
    let who = crate::auth::caller(request).map_or("-", Caller::name);
    Err(crate::error::permission_denied(format!("principal {who:?} has no permission on queue {name:?}")))
}

/// GetTopic needs any topic permission on the topic.
fn require_topic_any<T>(request: &Request<T>, name: &str) -> Result<(), Status> {
    if [Permission::Publish, Permission::Manage].into_iter().any(|p| require_topic(request, p, name).is_ok()) {
        return Ok(());
    }
    let who = crate::auth::caller(request).map_or("-", Caller::name);
    Err(crate::error::permission_denied(format!("principal {who:?} has no permission on topic {name:?}")))
}

/// The queue a receipt names ("" if none: the validation answers for it).
pub(crate) fn receipt_queue(receipt: Option<&pb::Receipt>) -> &str {
    receipt.map_or("", |r| r.queue.as_str())
}

/// A batch call carries 1..=1000 entries (as Ack's receipts).
fn check_batch(field: &str, count: usize) -> Result<(), Status> {
    if !(1..=ACK_RECEIPTS_MAX).contains(&count) {
        return Err(invalid(field, format!("{count} entries is outside 1..={ACK_RECEIPTS_MAX}")));
    }
    Ok(())
}

fn check_name(field: &str, name: &str) -> Result<(), Status> {
    validate_queue_name(name).map_err(|e| queue_error(e.in_field(field)))
}

/// The queues an Ack's receipts name, each once.
pub(crate) fn ack_queues(request: &pb::AckRequest) -> Vec<&str> {
    let mut queues: Vec<&str> = request.receipts.iter().map(|r| r.queue.as_str()).collect();
    queues.sort_unstable();
    queues.dedup();
    queues
}

/// The Ack command of a request. Its receipts are validated with the
/// command when it is submitted (a bad one is named `receipts[i]`).
pub(crate) fn ack_command(request: pb::AckRequest) -> Typed<u64> {
    Command::ack(request.receipts.into_iter().map(convert::receipt_of).collect())
}

/// The Nack command of a request; `field` names its receipt in errors.
pub(crate) fn nack_command(request: pb::NackRequest, field: &str) -> Result<Typed<NackOutcome>, Status> {
    let receipt = convert::receipt_from_pb(request.receipt, field)?;
    Ok(Command::nack(receipt, request.delay_ms, request.dead_letter, request.reason))
}

pub(crate) fn nack_response(outcome: NackOutcome) -> pb::NackResponse {
    match outcome {
        NackOutcome::Redeliver { visible_at_ms } => {
            pb::NackResponse { outcome: pb::NackOutcome::Redeliver as i32, visible_at_ms }
        }
        NackOutcome::DeadLettered { .. } => {
            pb::NackResponse { outcome: pb::NackOutcome::DeadLettered as i32, visible_at_ms: 0 }
        }
    }
}

/// The ExtendLease command of a request; `field` names its receipt in
/// errors.
pub(crate) fn extend_command(request: pb::ExtendLeaseRequest, field: &str) -> Result<Typed<u64>, Status> {
    let receipt = convert::receipt_from_pb(request.receipt, field)?;
    Ok(Command::extend_lease(receipt, request.lease_ms))
}

/// Waits (without polling) until `queue` may have a visible message, or
/// until `deadline`. Returns false at the deadline.
pub(crate) async fn wait_visible<SM: QueueMachine>(
    node: &Node<SM>,
    metrics: &mut crate::node::MetricsWatch,
    queue: &str,
    deadline: Instant,
) -> Result<bool, Status> {
    loop {
        let name = queue.to_string();
        // A queue deleted while a consumer waits ends the wait at once.
        if node.local_read(move |state| state.has_visible(&name)).await?.map_err(queue_error)? {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        node.wait_for_change(metrics, deadline - now).await;
    }
}

#[tonic::async_trait]
impl<SM: QueueMachine> Queue for QueueService<SM> {
    async fn create_queue(
        &self,
        request: Request<pb::CreateQueueRequest>,
    ) -> Result<Response<pb::CreateQueueResponse>, Status> {
        let audit = Audit::start(&request, "create_queue");
        require_manage(&request, &request.get_ref().queue, request.get_ref().config.as_ref())?;
        let r = request.into_inner();
        let name = r.queue.clone();
        let result = async {
            let config = convert::config_update(r.config)?;
            let info = self.node.propose_typed(Command::create_queue(r.queue, config)).await?;
            Ok(Response::new(pb::CreateQueueResponse { queue: Some(convert::queue_info_to_pb(&info)) }))
        };
        audit.finish(&name, result.await)
    }

    async fn get_queue(&self, request: Request<pb::GetQueueRequest>) -> Result<Response<pb::GetQueueResponse>, Status> {
        require_any(&request, &request.get_ref().queue)?;
        let name = request.into_inner().queue;
        check_name("queue", &name)?;
        let info = self.node.read(move |state| state.queue_info(&name)).await?.map_err(queue_error)?;
        Ok(Response::new(pb::GetQueueResponse { queue: Some(convert::queue_info_to_pb(&info)) }))
    }

    async fn list_queues(
        &self,
        request: Request<pb::ListQueuesRequest>,
    ) -> Result<Response<pb::ListQueuesResponse>, Status> {
        let caller = crate::auth::caller(&request).cloned();
        let r = request.into_inner();
        let limit = if r.limit == 0 { PAGE_SIZE_DEFAULT } else { r.limit };
        if limit > LIST_QUEUES_MAX {
            return Err(invalid("limit", format!("{limit} exceeds {LIST_QUEUES_MAX}")));
        }
        let (page, next) = self.node.read(move |state| state.list_queues(&r.prefix, &r.start_after, limit)).await?;
        // A principal sees only the queues it holds a permission on (a page
        // may come back shorter than asked; `next_start_after` still pages).
        let visible = |name: &str| match &caller {
            Some(Caller::Anyone) => true,
            Some(Caller::Principal(p)) => p.sees(name),
            None => false,
        };
        Ok(Response::new(pb::ListQueuesResponse {
            queues: page.iter().filter(|q| visible(&q.name)).map(convert::queue_info_to_pb).collect(),
            next_start_after: next.unwrap_or_default(),
        }))
    }

    async fn update_queue(
        &self,
        request: Request<pb::UpdateQueueRequest>,
    ) -> Result<Response<pb::UpdateQueueResponse>, Status> {
        let audit = Audit::start(&request, "update_queue");
        require_manage(&request, &request.get_ref().queue, request.get_ref().config.as_ref())?;
        let r = request.into_inner();
        let name = r.queue.clone();
        let result = async {
            let update = convert::config_update(r.config)?;
            let info = self.node.propose_typed(Command::update_queue(r.queue, update)).await?;
            Ok(Response::new(pb::UpdateQueueResponse { queue: Some(convert::queue_info_to_pb(&info)) }))
        };
        audit.finish(&name, result.await)
    }

    async fn delete_queue(
        &self,
        request: Request<pb::DeleteQueueRequest>,
    ) -> Result<Response<pb::DeleteQueueResponse>, Status> {
        let audit = Audit::start(&request, "delete_queue");
        if let Err(denied) = require(&request, Permission::Manage, &request.get_ref().queue) {
            return audit.finish(&request.get_ref().queue, Err(denied));
        }
        let name = request.into_inner().queue;
        let result = self.node.propose_typed(Command::delete_queue(name.clone())).await;
        audit.finish(&name, result.map(|messages_deleted| Response::new(pb::DeleteQueueResponse { messages_deleted })))
    }

    async fn purge_queue(
        &self,
        request: Request<pb::PurgeQueueRequest>,
    ) -> Result<Response<pb::PurgeQueueResponse>, Status> {
        let audit = Audit::start(&request, "purge_queue");
        if let Err(denied) = require(&request, Permission::Manage, &request.get_ref().queue) {
            return audit.finish(&request.get_ref().queue, Err(denied));
        }
        let name = request.into_inner().queue;
        let result = self.node.propose_typed(Command::purge_queue(name.clone())).await;
        audit.finish(&name, result.map(|messages_purged| Response::new(pb::PurgeQueueResponse { messages_purged })))
    }

    async fn publish(&self, request: Request<pb::PublishRequest>) -> Result<Response<pb::PublishResponse>, Status> {
        require(&request, Permission::Publish, &request.get_ref().queue)?;
        let r = request.into_inner();
        let messages = r.messages.into_iter().map(convert::new_message).collect();
        let results = self.node.propose_typed(Command::publish(r.queue, messages)).await?;
        Ok(Response::new(pb::PublishResponse {
            results: results.iter().map(|p| pb::PublishResult { message_id: p.id, duplicate: p.duplicate }).collect(),
        }))
    }

    type PublishStreamStream = Pin<Box<dyn Stream<Item = Result<pb::PublishStreamResponse, Status>> + Send + 'static>>;

    async fn publish_stream(
        &self,
        request: Request<Streaming<pb::PublishStreamRequest>>,
    ) -> Result<Response<Self::PublishStreamStream>, Status> {
        // Opened on the leader only, so a client finds the leader when it
        // opens the stream, as with a unary call.
        self.node.ensure_leader()?;
        // Each request is checked for its own queue; with auth on, the
        // token is checked again too (revoked meanwhile: rejected).
        let allowed = self.allowed(&request, Permission::Publish);
        let stream = publish_stream::start(self.node.clone(), request.into_inner(), allowed);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn receive(&self, request: Request<pb::ReceiveRequest>) -> Result<Response<pb::ReceiveResponse>, Status> {
        require(&request, Permission::Consume, &request.get_ref().queue)?;
        let r = request.into_inner();
        if r.wait_ms > RECEIVE_WAIT_MS_MAX {
            return Err(invalid("wait_ms", format!("{} exceeds {RECEIVE_WAIT_MS_MAX}", r.wait_ms)));
        }
        let deadline = Instant::now() + Duration::from_millis(r.wait_ms);
        let mut metrics = self.node.metrics();
        loop {
            let receive = Command::receive(r.queue.clone(), r.max_messages, r.lease_ms);
            let deliveries = self.node.propose_typed(receive).await?;
            if !deliveries.is_empty() || !wait_visible(&self.node, &mut metrics, &r.queue, deadline).await? {
                let deliveries = deliveries.iter().map(convert::delivery_to_pb).collect();
                return Ok(Response::new(pb::ReceiveResponse { deliveries }));
            }
        }
    }

    type SubscribeStream = Pin<Box<dyn Stream<Item = Result<pb::SubscribeResponse, Status>> + Send + 'static>>;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        require(&request, Permission::Consume, &request.get_ref().queue)?;
        // With auth on, the stream asks again before each receive: a token
        // revoked (or a grant withdrawn) while it runs ends it.
        let recheck: Option<subscribe::Recheck> =
            match (&self.auth, request.extensions().get::<crate::auth::TokenHash>()) {
                (Some(auth), Some(hash)) => {
                    let (auth, hash, queue) = (auth.clone(), *hash, request.get_ref().queue.clone());
                    Some(Box::new(move || auth.still_allows(&hash, Permission::Consume, &queue)))
                }
                _ => None,
            };
        let stream = subscribe::start(self.node.clone(), request.into_inner(), recheck).await?;
        Ok(Response::new(Box::pin(stream)))
    }

    type ConsumeStream = Pin<Box<dyn Stream<Item = Result<pb::ConsumeResponse, Status>> + Send + 'static>>;

    async fn consume(
        &self,
        request: Request<Streaming<pb::ConsumeRequest>>,
    ) -> Result<Response<Self::ConsumeStream>, Status> {
        let allowed = self.allowed(&request, Permission::Consume);
        let stream = consume::start(self.node.clone(), request.into_inner(), Arc::from(allowed)).await?;
        Ok(Response::new(Box::pin(stream)))
    }

    async fn ack(&self, request: Request<pb::AckRequest>) -> Result<Response<pb::AckResponse>, Status> {
        for queue in ack_queues(request.get_ref()) {
            require(&request, Permission::Consume, queue)?;
        }
        let acked = self.node.propose_typed(ack_command(request.into_inner())).await?;
        Ok(Response::new(pb::AckResponse { acked }))
    }

    async fn nack(&self, request: Request<pb::NackRequest>) -> Result<Response<pb::NackResponse>, Status> {
        require(&request, Permission::Consume, receipt_queue(request.get_ref().receipt.as_ref()))?;
        let outcome = self.node.propose_typed(nack_command(request.into_inner(), "receipt")?).await?;
        Ok(Response::new(nack_response(outcome)))
    }

    async fn extend_lease(
        &self,
        request: Request<pb::ExtendLeaseRequest>,
    ) -> Result<Response<pb::ExtendLeaseResponse>, Status> {
        require(&request, Permission::Consume, receipt_queue(request.get_ref().receipt.as_ref()))?;
        let lease_expires_at_ms = self.node.propose_typed(extend_command(request.into_inner(), "receipt")?).await?;
        Ok(Response::new(pb::ExtendLeaseResponse { lease_expires_at_ms }))
    }

    async fn nack_batch(
        &self,
        request: Request<pb::NackBatchRequest>,
    ) -> Result<Response<pb::NackBatchResponse>, Status> {
        use pb::nack_batch_result::Result as Entry;
        check_batch("nacks", request.get_ref().nacks.len())?;
        let allowed = self.allowed(&request, Permission::Consume);
        let results = self
            .settle_each(request.into_inner().nacks, &allowed, "nacks", |nack| nack.receipt.as_ref(), nack_command)
            .await
            .into_iter()
            .map(|(i, result)| pb::NackBatchResult {
                result: Some(match result {
                    Ok(outcome) => Entry::Nack(nack_response(outcome)),
                    Err(status) => Entry::Failed(rejection(i, &status)),
                }),
            })
            .collect();
        Ok(Response::new(pb::NackBatchResponse { results }))
    }

    async fn extend_lease_batch(
        &self,
        request: Request<pb::ExtendLeaseBatchRequest>,
    ) -> Result<Response<pb::ExtendLeaseBatchResponse>, Status> {
        use pb::extend_lease_batch_result::Result as Entry;
        check_batch("extensions", request.get_ref().extensions.len())?;
        let allowed = self.allowed(&request, Permission::Consume);
        let extensions = request.into_inner().extensions;
        let results = self
            .settle_each(extensions, &allowed, "extensions", |extend| extend.receipt.as_ref(), extend_command)
            .await
            .into_iter()
            .map(|(i, result)| pb::ExtendLeaseBatchResult {
                result: Some(match result {
                    Ok(lease_expires_at_ms) => Entry::Extended(pb::ExtendLeaseResponse { lease_expires_at_ms }),
                    Err(status) => Entry::Failed(rejection(i, &status)),
                }),
            })
            .collect();
        Ok(Response::new(pb::ExtendLeaseBatchResponse { results }))
    }

    async fn peek(&self, request: Request<pb::PeekRequest>) -> Result<Response<pb::PeekResponse>, Status> {
        require(&request, Permission::Manage, &request.get_ref().queue)?;
        let r = request.into_inner();
        check_name("queue", &r.queue)?;
        let filter = convert::state_filter(r.state)?;
        let limit = if r.limit == 0 { PAGE_SIZE_DEFAULT } else { r.limit };
        if limit > PEEK_MESSAGES_MAX {
            return Err(invalid("limit", format!("{limit} exceeds {PEEK_MESSAGES_MAX}")));
        }
        let page =
            self.node.read(move |state| state.peek(&r.queue, filter, r.after_id, limit)).await?.map_err(queue_error)?;
        Ok(Response::new(pb::PeekResponse {
            messages: page.messages.iter().map(|m| convert::message_to_pb(m, false)).collect(),
            next_after_id: page.next_after_id.unwrap_or(0),
        }))
    }

    async fn inspect(&self, request: Request<pb::InspectRequest>) -> Result<Response<pb::InspectResponse>, Status> {
        require(&request, Permission::Manage, &request.get_ref().queue)?;
        let r = request.into_inner();
        check_name("queue", &r.queue)?;
        let message = self.node.read(move |state| state.inspect(&r.queue, r.message_id)).await?.map_err(queue_error)?;
        Ok(Response::new(pb::InspectResponse { message: Some(convert::message_to_pb(&message, true)) }))
    }

    async fn redrive(&self, request: Request<pb::RedriveRequest>) -> Result<Response<pb::RedriveResponse>, Status> {
        let audit = Audit::start(&request, "redrive");
        if let Err(denied) = require(&request, Permission::Manage, &request.get_ref().queue) {
            return audit.finish(&request.get_ref().queue, Err(denied));
        }
        let r = request.into_inner();
        let name = r.queue.clone();
        audit.finish(&name, self.redrive_all(r).await)
    }

    async fn create_topic(
        &self,
        request: Request<pb::CreateTopicRequest>,
    ) -> Result<Response<pb::CreateTopicResponse>, Status> {
        let audit = Audit::start(&request, "create_topic");
        if let Err(denied) = require_topic(&request, Permission::Manage, &request.get_ref().topic) {
            return audit.finish(&request.get_ref().topic, Err(denied));
        }
        let r = request.into_inner();
        let name = r.topic.clone();
        let config = convert::topic_config_from_pb(r.config);
        let result = self.node.propose_typed(Command::create_topic(r.topic, config)).await;
        audit.finish(
            &name,
            result.map(|info| Response::new(pb::CreateTopicResponse { topic: Some(convert::topic_info_to_pb(&info)) })),
        )
    }

    async fn get_topic(&self, request: Request<pb::GetTopicRequest>) -> Result<Response<pb::GetTopicResponse>, Status> {
        require_topic_any(&request, &request.get_ref().topic)?;
        let name = request.into_inner().topic;
        check_name("topic", &name)?;
        let info = self.node.read(move |state| state.topic_info(&name)).await?.map_err(queue_error)?;
        Ok(Response::new(pb::GetTopicResponse { topic: Some(convert::topic_info_to_pb(&info)) }))
    }

    async fn list_topics(
        &self,
        request: Request<pb::ListTopicsRequest>,
    ) -> Result<Response<pb::ListTopicsResponse>, Status> {
        let caller = crate::auth::caller(&request).cloned();
        let r = request.into_inner();
        let limit = if r.limit == 0 { PAGE_SIZE_DEFAULT } else { r.limit };
        if limit > LIST_TOPICS_MAX {
            return Err(invalid("limit", format!("{limit} exceeds {LIST_TOPICS_MAX}")));
        }
        let (page, next) = self.node.read(move |state| state.list_topics(&r.prefix, &r.start_after, limit)).await?;
        let visible = |name: &str| match &caller {
            Some(Caller::Anyone) => true,
            Some(Caller::Principal(p)) => p.sees_topic(name),
            None => false,
        };
        Ok(Response::new(pb::ListTopicsResponse {
            topics: page.iter().filter(|t| visible(&t.name)).map(convert::topic_info_to_pb).collect(),
            next_start_after: next.unwrap_or_default(),
        }))
    }

    async fn delete_topic(
        &self,
        request: Request<pb::DeleteTopicRequest>,
    ) -> Result<Response<pb::DeleteTopicResponse>, Status> {
        let audit = Audit::start(&request, "delete_topic");
        if let Err(denied) = require_topic(&request, Permission::Manage, &request.get_ref().topic) {
            return audit.finish(&request.get_ref().topic, Err(denied));
        }
        let name = request.into_inner().topic;
        let result = self.node.propose_typed(Command::delete_topic(name.clone())).await;
        audit.finish(&name, result.map(|bindings_removed| Response::new(pb::DeleteTopicResponse { bindings_removed })))
    }

    async fn bind(&self, request: Request<pb::BindRequest>) -> Result<Response<pb::BindResponse>, Status> {
        let audit = Audit::start(&request, "bind");
        let what = format!("{} -> {}", request.get_ref().topic, request.get_ref().queue);
        // Binding lets the topic's publishers write into the queue: it
        // needs `manage` on both.
        let allowed = require_topic(&request, Permission::Manage, &request.get_ref().topic)
            .and_then(|()| require(&request, Permission::Manage, &request.get_ref().queue));
        if let Err(denied) = allowed {
            return audit.finish(&what, Err(denied));
        }
        let r = request.into_inner();
        let result = async {
            let filter = convert::filter_from_pb(r.filter)?;
            let info = self.node.propose_typed(Command::bind(r.topic, r.queue, filter)).await?;
            Ok(Response::new(pb::BindResponse { topic: Some(convert::topic_info_to_pb(&info)) }))
        };
        audit.finish(&what, result.await)
    }

    async fn unbind(&self, request: Request<pb::UnbindRequest>) -> Result<Response<pb::UnbindResponse>, Status> {
        let audit = Audit::start(&request, "unbind");
        let what = format!("{} -> {}", request.get_ref().topic, request.get_ref().queue);
        if let Err(denied) = require_topic(&request, Permission::Manage, &request.get_ref().topic) {
            return audit.finish(&what, Err(denied));
        }
        let r = request.into_inner();
        let result = self.node.propose_typed(Command::unbind(r.topic, r.queue)).await;
        audit.finish(
            &what,
            result.map(|info| Response::new(pb::UnbindResponse { topic: Some(convert::topic_info_to_pb(&info)) })),
        )
    }

    async fn publish_topic(
        &self,
        request: Request<pb::PublishTopicRequest>,
    ) -> Result<Response<pb::PublishTopicResponse>, Status> {
        require_topic(&request, Permission::Publish, &request.get_ref().topic)?;
        let r = request.into_inner();
        let messages = r.messages.into_iter().map(convert::new_message).collect();
        let results = self.node.propose_typed(Command::publish_topic(r.topic, messages)).await?;
        Ok(Response::new(pb::PublishTopicResponse {
            results: results.iter().map(convert::topic_result_to_pb).collect(),
        }))
    }
}

impl<SM: QueueMachine> QueueService<SM> {
    /// For a stream that acts on many queues: whether the request's caller
    /// has `permission` on a queue, and (auth on) whether its token still
    /// does, asked each time.
    fn allowed<T>(&self, request: &Request<T>, permission: Permission) -> publish_stream::Allowed {
        let caller = crate::auth::caller(request).cloned();
        let token = match (&self.auth, request.extensions().get::<crate::auth::TokenHash>()) {
            (Some(auth), Some(hash)) => Some((auth.clone(), *hash)),
            _ => None,
        };
        Box::new(move |queue| {
            crate::auth::caller_may(caller.as_ref(), permission, queue)?;
            match &token {
                Some((auth, hash)) => auth.still_allows(hash, permission, queue),
                None => Ok(()),
            }
        })
    }

    /// Each entry of a batch settle on its own: checked against `allowed`
    /// for its receipt's queue, built into a command (`{field}[i].receipt`
    /// names its receipt), all submitted in order and awaited together.
    /// One (index, answer) per entry, in order.
    async fn settle_each<R, A>(
        &self,
        entries: Vec<R>,
        allowed: &publish_stream::Allowed,
        field: &str,
        receipt: fn(&R) -> Option<&pb::Receipt>,
        command: fn(R, &str) -> Result<Typed<A>, Status>,
    ) -> Vec<(u64, Result<A, Status>)> {
        let answers: Vec<_> = entries
            .into_iter()
            .enumerate()
            .map(|(i, entry)| {
                let submitted = allowed(receipt_queue(receipt(&entry)))
                    .and_then(|()| self.node.submit_typed(command(entry, &format!("{field}[{i}].receipt"))?));
                async move {
                    let answer = match submitted {
                        Ok(answer) => answer.await,
                        Err(status) => Err(status),
                    };
                    (i as u64, answer)
                }
            })
            .collect();
        futures_util::future::join_all(answers).await
    }

    async fn redrive_all(&self, r: pb::RedriveRequest) -> Result<Response<pb::RedriveResponse>, Status> {
        check_name("queue", &r.queue)?;
        if r.messages_per_second == Some(0) {
            return Err(invalid("messages_per_second", "must be positive when set"));
        }
        let wanted = if r.max_messages == 0 { u64::MAX } else { u64::from(r.max_messages) };
        // Each command moves at most one batch; a rate limit makes batches
        // of one second's worth and paces them.
        let batch = r.messages_per_second.unwrap_or(REDRIVE_MESSAGES_MAX).min(REDRIVE_MESSAGES_MAX);
        let mut moved = 0u64;
        while moved < wanted {
            let started = Instant::now();
            let max_messages = (wanted - moved).min(u64::from(batch)) as u32;
            let now_moved = self.node.propose_typed(Command::redrive(r.queue.clone(), max_messages)).await?;
            moved += now_moved;
            if now_moved < u64::from(max_messages) {
                break;
            }
            if r.messages_per_second.is_some() {
                tokio::time::sleep_until(started + REDRIVE_RATE_PERIOD).await;
            }
        }
        Ok(Response::new(pb::RedriveResponse { moved }))
    }
}
