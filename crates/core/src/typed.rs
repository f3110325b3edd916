//! Commands with typed answers. A [`Command`] applied answers an
//! [`Outcome`], one enum for every kind; a caller that proposed a publish
//! wants its publish results, not a match over every kind. Each constructor
//! here builds the command together with the function that takes its answer
//! out of the outcome, so the pairing of command and answer is written once,
//! here, and tested ([`tests`]), instead of in every caller.

use std::fmt;

use crate::command::{Command, NewMessage, Receipt};
use crate::config::ConfigUpdate;
use crate::response::{Delivery, NackOutcome, Outcome, PublishResult, QueueInfo};
use crate::topic::{Filter, TopicConfig, TopicInfo, TopicPublishResult};

/// Takes a command's answer out of an outcome; the outcome back if it is
/// another kind's.
pub type Answer<A> = fn(Outcome) -> Result<A, Box<Outcome>>;

/// A command and how to read its answer.
pub struct Typed<A> {
    pub command: Command,
    answer: Answer<A>,
}

impl<A> fmt::Debug for Typed<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Typed").field("command", &self.command).finish_non_exhaustive()
    }
}

impl<A> Typed<A> {
    /// The command, and the reader of its answer.
    pub fn into_parts(self) -> (Command, Answer<A>) {
        (self.command, self.answer)
    }

    /// This command's answer out of `outcome`; the outcome back if it is
    /// another kind's (a bug in the state machine).
    pub fn answer(&self, outcome: Outcome) -> Result<A, Box<Outcome>> {
        (self.answer)(outcome)
    }
}

macro_rules! typed {
    ($command:expr, $answer:pat => $value:expr) => {
        Typed {
            command: $command,
            answer: |outcome| match outcome {
                $answer => Ok($value),
                other => Err(Box::new(other)),
            },
        }
    };
}

impl Command {
    /// Creates a queue; answers its info.
    pub fn create_queue(name: String, config: ConfigUpdate) -> Typed<QueueInfo> {
        typed!(Command::CreateQueue { name, config }, Outcome::QueueCreated(info) => info)
    }

    /// Changes a queue's config; answers its info.
    pub fn update_queue(name: String, update: ConfigUpdate) -> Typed<QueueInfo> {
        typed!(Command::UpdateQueue { name, update }, Outcome::QueueUpdated(info) => info)
    }

    /// Deletes a queue; answers how many messages went with it.
    pub fn delete_queue(name: String) -> Typed<u64> {
        typed!(Command::DeleteQueue { name }, Outcome::QueueDeleted { messages_deleted } => messages_deleted)
    }

    /// Empties a queue; answers how many messages were purged.
    pub fn purge_queue(name: String) -> Typed<u64> {
        typed!(Command::PurgeQueue { name }, Outcome::QueuePurged { messages_purged } => messages_purged)
    }

    /// Publishes a batch; answers one result per message, in order.
    pub fn publish(queue: String, messages: Vec<NewMessage>) -> Typed<Vec<PublishResult>> {
        typed!(Command::Publish { queue, messages }, Outcome::Published(results) => results)
    }

    /// Leases up to `max_messages`; answers the deliveries.
    pub fn receive(queue: String, max_messages: u32, lease_ms: Option<u64>) -> Typed<Vec<Delivery>> {
        typed!(Command::Receive { queue, max_messages, lease_ms }, Outcome::Received(deliveries) => deliveries)
    }

    /// Acks a batch of receipts; answers how many were acked.
    pub fn ack(receipts: Vec<Receipt>) -> Typed<u64> {
        typed!(Command::Ack { receipts }, Outcome::Acked { count } => count)
    }

    /// Gives a leased message back; answers what became of it.
    pub fn nack(receipt: Receipt, delay_ms: Option<u64>, dead_letter: bool, reason: String) -> Typed<NackOutcome> {
        typed!(Command::Nack { receipt, delay_ms, dead_letter, reason }, Outcome::Nacked(outcome) => outcome)
    }

    /// Moves a lease's deadline; answers the new deadline (ms).
    pub fn extend_lease(receipt: Receipt, lease_ms: u64) -> Typed<u64> {
        typed!(Command::ExtendLease { receipt, lease_ms }, Outcome::LeaseExtended { lease_expires_at_ms } => lease_expires_at_ms)
    }

    /// Creates a topic; answers its info.
    pub fn create_topic(name: String, config: TopicConfig) -> Typed<TopicInfo> {
        typed!(Command::CreateTopic { name, config }, Outcome::TopicCreated(info) => info)
    }

    /// Deletes a topic; answers how many bindings went with it.
    pub fn delete_topic(name: String) -> Typed<u64> {
        typed!(Command::DeleteTopic { name }, Outcome::TopicDeleted { bindings_removed } => bindings_removed)
    }

    /// Binds a queue to a topic; answers the topic's info.
    pub fn bind(topic: String, queue: String, filter: Filter) -> Typed<TopicInfo> {
        typed!(Command::Bind { topic, queue, filter }, Outcome::TopicBound(info) => info)
    }

    /// Unbinds a queue from a topic; answers the topic's info.
    pub fn unbind(topic: String, queue: String) -> Typed<TopicInfo> {
        typed!(Command::Unbind { topic, queue }, Outcome::TopicUnbound(info) => info)
    }

    /// Publishes a batch to a topic; answers one result per message.
    pub fn publish_topic(topic: String, messages: Vec<NewMessage>) -> Typed<Vec<TopicPublishResult>> {
        typed!(Command::PublishTopic { topic, messages }, Outcome::TopicPublished(results) => results)
    }

    /// Moves dead letters back; answers how many moved.
    pub fn redrive(queue: String, max_messages: u32) -> Typed<u64> {
        typed!(Command::Redrive { queue, max_messages }, Outcome::Redriven { moved } => moved)
    }
}

#[cfg(test)]
mod tests {
    use crate::QueueState;

    use super::*;

    const T: u64 = 1_700_000_000_000;

    /// Applies a typed command and reads its answer: a command paired with
    /// another kind's reader fails here.
    fn run<A>(state: &mut QueueState, typed: Typed<A>) -> A {
        let outcome = state.apply(T, &typed.command).expect("applied");
        typed.answer(outcome).unwrap_or_else(|other| panic!("{:?} answered {other:?}", typed.command))
    }

    #[test]
    fn every_constructor_reads_the_answer_its_command_gives() {
        let mut s = QueueState::new();
        let name = || "q".to_string();
        assert_eq!(run(&mut s, Command::create_queue(name(), ConfigUpdate::default())).name, "q");
        let update = ConfigUpdate { max_deliveries: Some(5), ..Default::default() };
        assert_eq!(run(&mut s, Command::update_queue(name(), update)).config.max_deliveries, 5);
        let message = || NewMessage {
            body: b"m".to_vec().into(),
            attributes: Default::default(),
            delay_ms: None,
            idempotency_key: None,
        };
        assert_eq!(run(&mut s, Command::publish(name(), vec![message(), message()])).len(), 2);
        let mut deliveries = run(&mut s, Command::receive(name(), 2, None));
        let (second, first) = (deliveries.pop().unwrap().receipt, deliveries.pop().unwrap().receipt);
        assert!(run(&mut s, Command::extend_lease(first.clone(), 60_000)) > T);
        assert_eq!(run(&mut s, Command::ack(vec![first])), 1);
        let nacked = run(&mut s, Command::nack(second, None, true, "bad".into()));
        assert_eq!(nacked, NackOutcome::DeadLettered { queue: None });
        assert_eq!(run(&mut s, Command::redrive(name(), 10)), 1);
        assert_eq!(run(&mut s, Command::purge_queue(name())), 1);
        let topic = || "t".to_string();
        assert_eq!(run(&mut s, Command::create_topic(topic(), Default::default())).name, "t");
        assert_eq!(run(&mut s, Command::bind(topic(), name(), Default::default())).bindings.len(), 1);
        assert_eq!(run(&mut s, Command::publish_topic(topic(), vec![message()]))[0].copies.len(), 1);
        assert!(run(&mut s, Command::unbind(topic(), name())).bindings.is_empty());
        assert_eq!(run(&mut s, Command::delete_topic(topic())), 0);
        assert_eq!(run(&mut s, Command::delete_queue(name())), 1);
    }

    #[test]
    fn another_kinds_outcome_is_handed_back() {
        let typed = Command::ack(Vec::new());
        assert_eq!(typed.answer(Outcome::Ticked), Err(Box::new(Outcome::Ticked)));
    }
}
