//! Tests across both stores: openraft's conformance suite and the state
//! machine. Store-specific tests live beside each store.

mod conformance;
mod machine;

use std::collections::BTreeMap;

use bytes::Bytes;
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::log_id;
use openraft::type_config::TypeConfigExt;
use openraft::{EntryPayload, Membership};
use raftq_core::{Command, ConfigUpdate, NewMessage};

use crate::types::{Entry, IOFlushed, LogPayload, TypeConfig};

/// A normal entry at `index` (term 1, leader 1) carrying `commands`.
pub(crate) fn entry(index: u64, time_ms: u64, commands: Vec<Command>) -> Entry {
    Entry {
        log_id: log_id::<TypeConfig>(1, 1, index),
        payload: EntryPayload::Normal(LogPayload::new(time_ms, commands)),
    }
}

pub(crate) fn blank(index: u64) -> Entry {
    Entry { log_id: log_id::<TypeConfig>(1, 1, index), payload: EntryPayload::Blank }
}

pub(crate) fn membership(index: u64) -> Entry {
    let members = Membership::new_with_defaults(vec![[1, 2, 3].into()], []);
    Entry { log_id: log_id::<TypeConfig>(1, 1, index), payload: EntryPayload::Membership(members) }
}

pub(crate) fn publish(queue: &str, body: &'static str) -> Command {
    let message = NewMessage {
        body: Bytes::from_static(body.as_bytes()),
        attributes: BTreeMap::new(),
        delay_ms: None,
        idempotency_key: None,
    };
    Command::Publish { queue: queue.into(), messages: vec![message] }
}

/// Entries 1..=n after a membership entry at 0: a queue, then publishes and
/// receives, several commands per entry, time moving forward.
pub(crate) fn workload(n: u64) -> Vec<Entry> {
    let mut entries = vec![membership(0)];
    entries.push(entry(1, 1_000, vec![Command::CreateQueue { name: "jobs".into(), config: ConfigUpdate::default() }]));
    for index in 2..=n {
        let commands = if index % 3 == 0 {
            vec![Command::Receive { queue: "jobs".into(), max_messages: 2, lease_ms: None }]
        } else {
            vec![publish("jobs", "a"), publish("jobs", "b"), publish("missing", "c")]
        };
        entries.push(entry(index, 1_000 + index * 10, commands));
    }
    entries
}

/// Appends and waits until the store reports the entries flushed.
pub(crate) async fn append_synced(store: &mut impl RaftLogStorage<TypeConfig>, entries: Vec<Entry>) {
    let (tx, rx) = TypeConfig::oneshot();
    store.append(entries, IOFlushed::signal(tx)).await.expect("append");
    rx.await.expect("callback fired").expect("flushed without error");
}

/// Applies entries without responders, as openraft does on re-apply.
pub(crate) async fn apply(sm: &mut impl RaftStateMachine<TypeConfig>, entries: Vec<Entry>) {
    let stream = futures_util::stream::iter(entries.into_iter().map(|entry| Ok((entry, None))));
    sm.apply(stream).await.expect("apply");
}
