//! The client against scriptable in-process fake nodes: leader discovery,
//! retries and their limits, idempotency keys, the publisher and the
//! consumer. One test binary, one module per area.

mod consumer;
mod fake;
mod publish_stream;
mod publisher;
mod retries;
