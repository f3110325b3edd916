//! # Multi-process cluster tests
//!
//! Each test starts real `raftq server` processes (the binary cargo built,
//! `CARGO_BIN_EXE_raftq`) on loopback, each with its own temporary data dir,
//! and drives them through the Rust client and the raw gRPC stubs while it
//! kills, stops, restarts, adds and removes nodes. They check the contract
//! of PRODUCT.md end to end: durability across crashes (G1), at-least-once
//! delivery (G2), leases (G3), idempotent publish (G5), availability after a
//! leader dies (G7), snapshots and membership changes (§4), bad input (§6).
//!
//! ## Layout
//!
//! - `harness`: [`harness::Cluster`] — ports, data dirs, processes, per-node
//!   status, bounded waits; prints every node's log tail when a test fails.
//! - `workload`: concurrent keyed publishing and full draining.
//! - one module per area: `failover`, `restart`, `snapshot_catchup`,
//!   `membership`, `leases`, `bad_input`, `auth` (tokens and permissions), `tls`, `bench` (a smoke run of `raftq bench`),
//!   `backlog` (memory stays flat under a large backlog).
//!
//! ## Rules
//!
//! - Every wait is bounded and panics saying what it waited for. Waits are
//!   on observable events (a status RPC polled until it says so); the only
//!   sleep is the one that lets a lease run out, the behaviour under test.
//! - Each cluster gets its own ports and directories, so tests run in
//!   parallel. The whole binary stays within a few minutes on two cores.
//! - Run with `-- --nocapture` to see each test's summary line, e.g.
//!   `leader-kill: published=… lost=0 …`.

mod admin;
mod auth;
mod backlog;
mod bad_input;
mod bench;
mod consume_stream;
mod disk;
mod error_reasons;
mod errors;
mod failover;
mod harness;
mod leases;
mod membership;
mod publish_stream;
mod restart;
mod snapshot_catchup;
mod stale_read;
mod tls;
mod topics;
mod workload;
