//! raftq's gRPC wire protocol: the Rust types and tonic service stubs
//! generated from `proto/raftq/v1/*.proto`.
//!
//! This crate holds wire types only. It has no queue semantics and no
//! validation: the `.proto` files are the documented contract (units, limits,
//! status codes), and conversions between these types and the domain types of
//! the state machine live in the crates that use both (server and client).
//!
//! - [`v1::queue_server`] / [`v1::queue_client`]: the client API (`Queue`).
//! - [`v1::cluster_server`] / [`v1::cluster_client`]: cluster administration
//!   (`Cluster`).
//! - [`v1::raft_transport_server`] / [`v1::raft_transport_client`]: the
//!   internal node-to-node Raft transport (`RaftTransport`), whose payloads are
//!   opaque encoded openraft messages.
//!
//! Every protobuf `bytes` field is a [`bytes::Bytes`]. [`FILE_DESCRIPTOR_SET`]
//! is the encoded descriptor set of all three services, for gRPC server
//! reflection.

/// Package `raftq.v1`: services `Queue`, `Cluster` and `RaftTransport` and
/// their messages.
#[allow(missing_docs, missing_debug_implementations, clippy::all, clippy::pedantic, rustdoc::all)]
pub mod v1 {
    tonic::include_proto!("raftq.v1");
}

/// The encoded `google.protobuf.FileDescriptorSet` of `proto/raftq/v1/*.proto`
/// (with source info, so reflection clients can show the comments).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/raftq_v1_descriptor.bin"));

/// gRPC metadata key carrying the leader's client address (`host:port`) on an
/// UNAVAILABLE status from a node that is not the leader.
pub const LEADER_METADATA_KEY: &str = "raftq-leader";

/// gRPC metadata key on a RESOURCE_EXHAUSTED status that means "this node is
/// overloaded and did nothing with the request" (its proposal queue was
/// full): the value is a delay in milliseconds (decimal) to wait before
/// retrying. Any call may be retried after it, idempotent or not. A
/// RESOURCE_EXHAUSTED *without* this key is a replicated refusal (a full
/// queue, a message or batch too large) that a retry would only repeat.
pub const RETRY_AFTER_MS_METADATA_KEY: &str = "raftq-retry-after-ms";

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bytes::Bytes;
    use prost::Message as _;

    use prost_types::FileDescriptorSet;

    use super::v1::{PublishMessage, PublishRequest};

    #[test]
    fn publish_request_roundtrips() {
        let request = PublishRequest {
            queue: "orders".to_owned(),
            messages: vec![
                PublishMessage {
                    body: Bytes::from_static(b"\x00hello\xff"),
                    attributes: HashMap::from([("k".to_owned(), "v".to_owned())]),
                    delay_ms: Some(0),
                    idempotency_key: "key-1".to_owned(),
                },
                PublishMessage {
                    body: Bytes::new(),
                    attributes: HashMap::new(),
                    delay_ms: None,
                    idempotency_key: String::new(),
                },
            ],
        };
        let encoded = request.encode_to_vec();
        let decoded = PublishRequest::decode(encoded.as_slice()).expect("decodes");
        assert_eq!(decoded, request);
        // `optional` keeps an explicit zero distinct from unset.
        assert_eq!(decoded.messages[0].delay_ms, Some(0));
        assert_eq!(decoded.messages[1].delay_ms, None);
    }

    #[test]
    fn file_descriptor_set_has_the_three_services() {
        let fds = FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).expect("FILE_DESCRIPTOR_SET decodes");
        let mut services: Vec<&str> = fds
            .file
            .iter()
            .filter(|f| f.package() == "raftq.v1")
            .flat_map(|f| f.service.iter().map(|s| s.name()))
            .collect();
        services.sort_unstable();
        assert_eq!(services, ["Cluster", "Queue", "RaftTransport"]);
    }
}
