//! The topic calls of [`Client`] (on the `Queue` service), each with its
//! retry safety.

use raftq_proto::v1::{self as proto, queue_client::QueueClient};

use crate::client::Conn;
use crate::{
    client::{CallSpec, Client},
    convert::missing,
    error::ClientError,
    retry::Safety::{Idempotent, NotIdempotent},
    types::{Filter, OutgoingMessage, TopicConfig, TopicInfo, TopicPublishResult},
};

/// Most pages `list_topics` follows.
const LIST_PAGES_MAX: usize = 1_000;
/// Page size asked of ListTopics.
const LIST_PAGE_SIZE: u32 = 1_000;

type Attempt<Req, Resp> = fn(
    QueueClient<Conn>,
    Req,
) -> futures_util::future::BoxFuture<'static, Result<tonic::Response<Resp>, tonic::Status>>;

impl Client {
    async fn topic_call<Req: Clone, Resp>(
        &self,
        spec: CallSpec,
        req: Req,
        send: Attempt<Req, Resp>,
    ) -> Result<Resp, ClientError> {
        self.call(spec, |channel| send(Self::queue_stub(channel), req.clone())).await.map(|(resp, _addr)| resp)
    }

    /// Creates a topic.
    pub async fn create_topic(&self, name: &str, config: TopicConfig) -> Result<TopicInfo, ClientError> {
        let req = proto::CreateTopicRequest { topic: name.to_owned(), config: Some(config.into()) };
        let resp = self
            .topic_call(CallSpec::leader("create_topic", NotIdempotent), req, |mut c, r| {
                Box::pin(async move { c.create_topic(r).await })
            })
            .await?;
        resp.topic.ok_or_else(|| missing("CreateTopicResponse.topic"))?.try_into()
    }

    /// A topic's config, counters and bindings.
    pub async fn get_topic(&self, name: &str) -> Result<TopicInfo, ClientError> {
        let req = proto::GetTopicRequest { topic: name.to_owned() };
        let resp = self
            .topic_call(CallSpec::leader("get_topic", Idempotent), req, |mut c, r| {
                Box::pin(async move { c.get_topic(r).await })
            })
            .await?;
        resp.topic.ok_or_else(|| missing("GetTopicResponse.topic"))?.try_into()
    }

    /// Every topic whose name starts with `prefix`, in name order.
    pub async fn list_topics(&self, prefix: &str) -> Result<Vec<TopicInfo>, ClientError> {
        let mut topics = Vec::new();
        let mut start_after = String::new();
        for _ in 0..LIST_PAGES_MAX {
            let req = proto::ListTopicsRequest {
                prefix: prefix.to_owned(),
                start_after: start_after.clone(),
                limit: LIST_PAGE_SIZE,
            };
            let page = self
                .topic_call(CallSpec::leader("list_topics", Idempotent), req, |mut c, r| {
                    Box::pin(async move { c.list_topics(r).await })
                })
                .await?;
            for topic in page.topics {
                topics.push(topic.try_into()?);
            }
            if page.next_start_after.is_empty() {
                return Ok(topics);
            }
            if page.next_start_after <= start_after {
                return Err(ClientError::Protocol("ListTopics page cursor did not advance".into()));
            }
            start_after = page.next_start_after;
        }
        Err(ClientError::Protocol(format!("ListTopics returned more than {LIST_PAGES_MAX} pages")))
    }

    /// Deletes a topic and its bindings (the queues stay); returns how
    /// many bindings went with it.
    pub async fn delete_topic(&self, name: &str) -> Result<u64, ClientError> {
        let req = proto::DeleteTopicRequest { topic: name.to_owned() };
        let resp = self
            .topic_call(CallSpec::leader("delete_topic", NotIdempotent), req, |mut c, r| {
                Box::pin(async move { c.delete_topic(r).await })
            })
            .await?;
        Ok(resp.bindings_removed)
    }

    /// Binds `queue` to `topic` (or replaces its filter). Setting a binding
    /// twice leaves the same state, so it is retried after an ambiguous
    /// failure.
    pub async fn bind(&self, topic: &str, queue: &str, filter: Filter) -> Result<TopicInfo, ClientError> {
        let req = proto::BindRequest { topic: topic.to_owned(), queue: queue.to_owned(), filter: Some(filter.into()) };
        let resp = self
            .topic_call(CallSpec::leader("bind", Idempotent), req, |mut c, r| Box::pin(async move { c.bind(r).await }))
            .await?;
        resp.topic.ok_or_else(|| missing("BindResponse.topic"))?.try_into()
    }

    /// Removes a binding.
    pub async fn unbind(&self, topic: &str, queue: &str) -> Result<TopicInfo, ClientError> {
        let req = proto::UnbindRequest { topic: topic.to_owned(), queue: queue.to_owned() };
        let resp = self
            .topic_call(CallSpec::leader("unbind", NotIdempotent), req, |mut c, r| {
                Box::pin(async move { c.unbind(r).await })
            })
            .await?;
        resp.topic.ok_or_else(|| missing("UnbindResponse.topic"))?.try_into()
    }

    /// Publishes a batch (1..=1000 messages) to a topic: each message goes
    /// to every bound queue whose filter matches, all or none. A message
    /// without an idempotency key gets one from this client, so retries
    /// after an ambiguous failure never store a second copy anywhere.
    pub async fn publish_topic(
        &self,
        topic: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Vec<TopicPublishResult>, ClientError> {
        let messages = self.keyed(messages);
        let count = messages.len();
        let req = proto::PublishTopicRequest { topic: topic.to_owned(), messages };
        let resp = self
            .topic_call(CallSpec::leader("publish_topic", Idempotent), req, |mut c, r| {
                Box::pin(async move { c.publish_topic(r).await })
            })
            .await?;
        if resp.results.len() != count {
            return Err(ClientError::Protocol(format!("{} results for {count} messages", resp.results.len())));
        }
        Ok(resp.results.into_iter().map(Into::into).collect())
    }
}
