//! The `Queue` service calls of [`Client`], each with its retry safety.

use std::time::Duration;

use crate::client::Conn;
use futures_util::future::BoxFuture;
use raftq_proto::v1::{self as proto, queue_client::QueueClient};

use crate::{
    client::{Budget, CallSpec, Client},
    convert::{delivery, duration_ms, extend_request, missing, nack_request, state_filter},
    error::ClientError,
    publish_stream::rejected_error,
    retry::Safety::{Idempotent, NotIdempotent},
    types::{
        Delivery, Message, MessageState, Nack, NackOutcome, OutgoingMessage, PeekPage, PublishResult, QueueConfig,
        QueueInfo, Receipt,
    },
};

/// Most pages `list_queues` follows: the cluster holds at most 10,000
/// queues, 1,000 a page.
const LIST_PAGES_MAX: usize = 100;
/// Page size asked of ListQueues.
const LIST_PAGE_SIZE: u32 = 1_000;

/// One attempt of a `Queue` call: the stub and a copy of the request.
type QueueAttempt<Req, Resp> =
    fn(QueueClient<Conn>, Req) -> BoxFuture<'static, Result<tonic::Response<Resp>, tonic::Status>>;

impl Client {
    /// Sends `req` with `send` under `spec`, with a copy of `req` per
    /// attempt.
    async fn queue_call<Req, Resp>(
        &self,
        spec: CallSpec,
        req: Req,
        send: QueueAttempt<Req, Resp>,
    ) -> Result<Resp, ClientError>
    where
        Req: Clone,
    {
        self.call(spec, |channel| send(Self::queue_stub(channel), req.clone())).await.map(|(resp, _addr)| resp)
    }

    /// Creates a queue; unset config fields take their defaults.
    pub async fn create_queue(&self, name: &str, config: QueueConfig) -> Result<QueueInfo, ClientError> {
        let req = proto::CreateQueueRequest { queue: name.to_owned(), config: Some(config.into()) };
        let resp = self
            .queue_call(CallSpec::leader("create_queue", NotIdempotent), req, |mut c, r| {
                Box::pin(async move { c.create_queue(r).await })
            })
            .await?;
        resp.queue.ok_or_else(|| missing("CreateQueueResponse.queue"))?.try_into()
    }

    /// A queue's resolved config and current stats.
    pub async fn get_queue(&self, name: &str) -> Result<QueueInfo, ClientError> {
        let req = proto::GetQueueRequest { queue: name.to_owned() };
        let resp = self
            .queue_call(CallSpec::leader("get_queue", Idempotent), req, |mut c, r| {
                Box::pin(async move { c.get_queue(r).await })
            })
            .await?;
        resp.queue.ok_or_else(|| missing("GetQueueResponse.queue"))?.try_into()
    }

    /// Every queue whose name starts with `prefix`, in name order (follows
    /// the pages; each page is its own linearizable read).
    pub async fn list_queues(&self, prefix: &str) -> Result<Vec<QueueInfo>, ClientError> {
        let mut queues = Vec::new();
        let mut start_after = String::new();
        for _ in 0..LIST_PAGES_MAX {
            let req = proto::ListQueuesRequest {
                prefix: prefix.to_owned(),
                start_after: start_after.clone(),
                limit: LIST_PAGE_SIZE,
            };
            let page = self
                .queue_call(CallSpec::leader("list_queues", Idempotent), req, |mut c, r| {
                    Box::pin(async move { c.list_queues(r).await })
                })
                .await?;
            for queue in page.queues {
                queues.push(queue.try_into()?);
            }
            if page.next_start_after.is_empty() {
                return Ok(queues);
            }
            if page.next_start_after <= start_after {
                return Err(ClientError::Protocol("ListQueues page cursor did not advance".into()));
            }
            start_after = page.next_start_after;
        }
        Err(ClientError::Protocol(format!("ListQueues returned more than {LIST_PAGES_MAX} pages")))
    }

    /// Changes the config fields that are set in `config`.
    pub async fn update_queue(&self, name: &str, config: QueueConfig) -> Result<QueueInfo, ClientError> {
        let req = proto::UpdateQueueRequest { queue: name.to_owned(), config: Some(config.into()) };
        let resp = self
            .queue_call(CallSpec::leader("update_queue", NotIdempotent), req, |mut c, r| {
                Box::pin(async move { c.update_queue(r).await })
            })
            .await?;
        resp.queue.ok_or_else(|| missing("UpdateQueueResponse.queue"))?.try_into()
    }

    /// Deletes a queue and its messages; returns how many went with it.
    pub async fn delete_queue(&self, name: &str) -> Result<u64, ClientError> {
        let req = proto::DeleteQueueRequest { queue: name.to_owned() };
        let resp = self
            .queue_call(CallSpec::leader("delete_queue", NotIdempotent), req, |mut c, r| {
                Box::pin(async move { c.delete_queue(r).await })
            })
            .await?;
        Ok(resp.messages_deleted)
    }

    /// Removes every message of a queue; returns how many.
    pub async fn purge_queue(&self, name: &str) -> Result<u64, ClientError> {
        let req = proto::PurgeQueueRequest { queue: name.to_owned() };
        let resp = self
            .queue_call(CallSpec::leader("purge_queue", NotIdempotent), req, |mut c, r| {
                Box::pin(async move { c.purge_queue(r).await })
            })
            .await?;
        Ok(resp.messages_purged)
    }

    /// Publishes 1..=1000 messages (≤ 4 MiB) as one all-or-nothing batch.
    /// Messages without a key get one first, and every retry resends the
    /// same keys, so a retry after an ambiguous failure is answered from the
    /// dedup window (`duplicate = true`, original id) instead of storing the
    /// message twice. One result per message, in order.
    pub async fn publish(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Vec<PublishResult>, ClientError> {
        let messages = self.keyed(messages);
        self.publish_keyed(queue, messages).await
    }

    /// Publishes one message.
    pub async fn publish_one(&self, queue: &str, message: OutgoingMessage) -> Result<PublishResult, ClientError> {
        let mut results = self.publish(queue, vec![message]).await?;
        results.pop().ok_or_else(|| missing("PublishResponse.results"))
    }

    /// Publishes wire messages whose keys are already assigned.
    pub(crate) async fn publish_keyed(
        &self,
        queue: &str,
        messages: Vec<proto::PublishMessage>,
    ) -> Result<Vec<PublishResult>, ClientError> {
        debug_assert!(messages.iter().all(|m| !m.idempotency_key.is_empty()), "every publish carries a key");
        let count = messages.len();
        let req = proto::PublishRequest { queue: queue.to_owned(), messages };
        let resp = self
            .queue_call(CallSpec::leader("publish", Idempotent), req, |mut c, r| {
                Box::pin(async move { c.publish(r).await })
            })
            .await?;
        if resp.results.len() != count {
            return Err(ClientError::Protocol(format!("{} results for {count} messages", resp.results.len())));
        }
        Ok(resp.results.into_iter().map(Into::into).collect())
    }

    /// Leases up to `max_messages` (1..=1000) visible messages, waiting up
    /// to `wait` (≤ 20 s) for the first. `lease` overrides the queue's lease.
    /// Not retried after an ambiguous failure: leases granted by a lost
    /// answer would cost those messages a delivery attempt and a lease's
    /// wait.
    pub async fn receive(
        &self,
        queue: &str,
        max_messages: u32,
        wait: Duration,
        lease: Option<Duration>,
    ) -> Result<Vec<Delivery>, ClientError> {
        let req = proto::ReceiveRequest {
            queue: queue.to_owned(),
            max_messages,
            lease_ms: lease.map(duration_ms),
            wait_ms: duration_ms(wait),
        };
        let spec = CallSpec::leader("receive", NotIdempotent).budget(Budget::Extended(wait));
        let resp = self.queue_call(spec, req, |mut c, r| Box::pin(async move { c.receive(r).await })).await?;
        resp.deliveries.into_iter().map(|d| delivery(d, self)).collect()
    }

    /// Acks 1..=1000 deliveries, all or none; returns how many. Retried after
    /// ambiguous failures: if the first attempt did commit, the retry fails
    /// with FAILED_PRECONDITION (the receipts are now unknown), and that is
    /// what the caller sees. The messages are acked either way, but the
    /// client cannot tell that from a lease that ended.
    pub async fn ack(&self, receipts: &[Receipt]) -> Result<u64, ClientError> {
        let req = proto::AckRequest { receipts: receipts.iter().map(Into::into).collect() };
        let resp = self
            .queue_call(CallSpec::leader("ack", Idempotent), req, |mut c, r| Box::pin(async move { c.ack(r).await }))
            .await?;
        Ok(resp.acked)
    }

    /// Gives a delivery back: visible again after `delay` (`None` = the
    /// queue's backoff), or dead-lettered now with `dead_letter`.
    pub async fn nack(
        &self,
        receipt: &Receipt,
        delay: Option<Duration>,
        dead_letter: bool,
        reason: &str,
    ) -> Result<NackOutcome, ClientError> {
        let req = nack_request(receipt, delay, dead_letter, reason);
        self.queue_call(CallSpec::leader("nack", NotIdempotent), req, |mut c, r| {
            Box::pin(async move { c.nack(r).await })
        })
        .await?
        .try_into()
    }

    /// Sets a live lease to end `lease` from now; returns the new deadline.
    pub async fn extend_lease(&self, receipt: &Receipt, lease: Duration) -> Result<u64, ClientError> {
        let req = extend_request(receipt, lease);
        let resp = self
            .queue_call(CallSpec::leader("extend_lease", Idempotent), req, |mut c, r| {
                Box::pin(async move { c.extend_lease(r).await })
            })
            .await?;
        Ok(resp.lease_expires_at_ms)
    }

    /// Nacks 1..=1000 deliveries in one call, each on its own: one result
    /// per entry, in order (a stale receipt fails alone). Retried as
    /// [`Client::nack`] is: only when the server did nothing.
    pub async fn nack_batch(&self, nacks: &[Nack]) -> Result<Vec<Result<NackOutcome, ClientError>>, ClientError> {
        use proto::nack_batch_result::Result as Entry;
        let req = proto::NackBatchRequest {
            nacks: nacks.iter().map(|n| nack_request(&n.receipt, n.delay, n.dead_letter, &n.reason)).collect(),
        };
        let (resp, addr) = self
            .call(CallSpec::leader("nack_batch", NotIdempotent), |channel| {
                let (mut stub, req) = (Self::queue_stub(channel), req.clone());
                async move { stub.nack_batch(req).await }
            })
            .await?;
        if resp.results.len() != nacks.len() {
            return Err(ClientError::Protocol(format!("{} results for {} nacks", resp.results.len(), nacks.len())));
        }
        Ok(resp
            .results
            .into_iter()
            .map(|r| match r.result {
                Some(Entry::Nack(answer)) => answer.try_into(),
                Some(Entry::Failed(failed)) => Err(rejected_error(failed, &addr)),
                None => Err(missing("NackBatchResult.result")),
            })
            .collect())
    }

    /// Sets each live lease in `receipts` (1..=1000) to end `lease` from
    /// now, each on its own: one result (the new deadline) per receipt, in
    /// order. Retried as [`Client::extend_lease`] is.
    pub async fn extend_lease_batch(
        &self,
        receipts: &[Receipt],
        lease: Duration,
    ) -> Result<Vec<Result<u64, ClientError>>, ClientError> {
        use proto::extend_lease_batch_result::Result as Entry;
        let req =
            proto::ExtendLeaseBatchRequest { extensions: receipts.iter().map(|r| extend_request(r, lease)).collect() };
        let (resp, addr) = self
            .call(CallSpec::leader("extend_lease_batch", Idempotent), |channel| {
                let (mut stub, req) = (Self::queue_stub(channel), req.clone());
                async move { stub.extend_lease_batch(req).await }
            })
            .await?;
        if resp.results.len() != receipts.len() {
            let message = format!("{} results for {} receipts", resp.results.len(), receipts.len());
            return Err(ClientError::Protocol(message));
        }
        Ok(resp
            .results
            .into_iter()
            .map(|r| match r.result {
                Some(Entry::Extended(answer)) => Ok(answer.lease_expires_at_ms),
                Some(Entry::Failed(failed)) => Err(rejected_error(failed, &addr)),
                None => Err(missing("ExtendLeaseBatchResult.result")),
            })
            .collect())
    }

    /// One page of messages in `state` (`None` = any) with ids above
    /// `after_id` (`None` = from the first), without changing them; pass the
    /// page's `next_after_id` for the next. `limit` 0 = 100, at most 1000.
    pub async fn peek(
        &self,
        queue: &str,
        state: Option<MessageState>,
        after_id: Option<u64>,
        limit: u32,
    ) -> Result<PeekPage, ClientError> {
        let req = proto::PeekRequest {
            queue: queue.to_owned(),
            state: state_filter(state).into(),
            after_id: after_id.unwrap_or(0),
            limit,
        };
        self.queue_call(CallSpec::leader("peek", Idempotent), req, |mut c, r| Box::pin(async move { c.peek(r).await }))
            .await?
            .try_into()
    }

    /// One message by id, with its state and history.
    pub async fn inspect(&self, queue: &str, message_id: u64) -> Result<Message, ClientError> {
        let req = proto::InspectRequest { queue: queue.to_owned(), message_id };
        let resp = self
            .queue_call(CallSpec::leader("inspect", Idempotent), req, |mut c, r| {
                Box::pin(async move { c.inspect(r).await })
            })
            .await?;
        resp.message.ok_or_else(|| missing("InspectResponse.message"))?.try_into()
    }

    /// Moves up to `max_messages` (0 = all) dead letters back to their
    /// source queues, at most `per_second` a second; returns how many moved.
    /// A rate-limited redrive may run long, so it has no attempt timeout.
    pub async fn redrive(&self, queue: &str, max_messages: u32, per_second: Option<u32>) -> Result<u64, ClientError> {
        let req = proto::RedriveRequest { queue: queue.to_owned(), max_messages, messages_per_second: per_second };
        let budget = if per_second.is_some() { Budget::Unbounded } else { Budget::Standard };
        let spec = CallSpec::leader("redrive", NotIdempotent).budget(budget);
        let resp = self.queue_call(spec, req, |mut c, r| Box::pin(async move { c.redrive(r).await })).await?;
        Ok(resp.moved)
    }
}
