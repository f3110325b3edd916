//! Arbitrary and damaged payloads given to the transport's decoder: each
//! decodes or is refused, never panics. Anyone who reaches a node's port
//! chooses these bytes. (Failing inputs proptest finds are kept in
//! `proptest-regressions/` next to this file and replayed first.)

use bytes::Bytes;
use openraft::raft::{AppendEntriesRequest, TransferLeaderRequest, VoteRequest};
use proptest::prelude::*;
use raftq_proto::v1::RaftPayload;
use raftq_raft::codec::{self, RAFT_PAYLOAD_FORMAT_VERSION};
use raftq_types::{SnapshotMeta, TypeConfig, Vote};

fn payload(data: Vec<u8>) -> RaftPayload {
    RaftPayload { format_version: RAFT_PAYLOAD_FORMAT_VERSION, data: Bytes::from(data) }
}

/// Every message type the transport decodes from a peer.
fn decode_all(payload: &RaftPayload) {
    let _ = codec::decode::<AppendEntriesRequest<TypeConfig>>(payload);
    let _ = codec::decode::<VoteRequest<TypeConfig>>(payload);
    let _ = codec::decode::<TransferLeaderRequest<TypeConfig>>(payload);
    let _ = codec::decode::<(Vote, SnapshotMeta)>(payload);
}

proptest! {
    // PROPTEST_CASES raises the count (ProptestConfig::default reads it).
    #![proptest_config(ProptestConfig::with_cases(ProptestConfig::default().cases.max(4_000)))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&payload(data));
    }

    #[test]
    fn a_damaged_append_entries_never_panics(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let valid = codec::encode(&sample_append_entries());
        let mut data = valid.data.to_vec();
        for (at, byte) in flips {
            let i = at.index(data.len());
            data[i] ^= byte;
        }
        data.truncate(cut.index(data.len() + 1));
        decode_all(&payload(data));
    }
}

#[test]
fn a_payload_of_another_format_version_is_refused() {
    let mut other = codec::encode(&sample_append_entries());
    other.format_version = RAFT_PAYLOAD_FORMAT_VERSION + 1;
    let err = codec::decode::<AppendEntriesRequest<TypeConfig>>(&other).unwrap_err();
    assert!(err.to_string().contains("not supported"), "{err}");
}

/// A real AppendEntries: a vote, a previous log id, entries with commands.
fn sample_append_entries() -> AppendEntriesRequest<TypeConfig> {
    use openraft::testing::log_id;
    use raftq_types::{Entry, LogPayload};
    let commands = vec![
        raftq_core::Command::Tick,
        raftq_core::Command::PurgeQueue { name: "orders".into() },
        raftq_core::Command::Receive { queue: "orders".into(), max_messages: 10, lease_ms: Some(30_000) },
    ];
    let entry = Entry {
        log_id: log_id::<TypeConfig>(3, 1, 8),
        payload: openraft::EntryPayload::Normal(LogPayload::new(1_000, commands)),
    };
    AppendEntriesRequest {
        vote: Vote::new_committed(3, 1),
        prev_log_id: Some(log_id::<TypeConfig>(3, 1, 7)),
        entries: vec![entry],
        leader_commit: Some(log_id::<TypeConfig>(3, 1, 6)),
    }
}
