//! # raftq-simulation: raftq under a deterministic nemesis
//!
//! Runs the real `raftq_server::serve`, the in-memory twin of the storage
//! (`MemStore` on a `MemDisk`) and the real `raftq_client::Client` inside a
//! turmoil simulation: simulated network, simulated time, one thread. One
//! seed derives the cluster (3 or 5 voters, maybe a spare), Raft timing,
//! latency, the workload and every fault. A run is: bootstrap, a workload
//! under faults, a final heal, a full drain, and a check of the history and
//! of the replicas' state digests.
//!
//! ## Layout
//! - [`plan`]: fault kinds, run options, and the [`Plan`] derived from a seed.
//! - [`net`]: turmoil sockets in the real code's seams — the server's
//!   `incoming` stream, the Raft [`Connector`](raftq_raft::network::Connector),
//!   the client's connector.
//! - [`node`]: a node as a turmoil host; the clock from simulated time; the
//!   state machine wrapper that reports applied index and state digest.
//! - [`workload`]: producers and consumers, recording every call.
//! - [`history`]: the operation history (invoke time, completion, ok / fail /
//!   info) and the trace hash.
//! - [`nemesis`]: faults, alone and combined; the final heal, drain watch and
//!   convergence wait.
//! - [`checker`]: the total-queue checker and the lease/delay/dedup rules.
//! - [`run`]: the driver of one seed; [`batch`]: many seeds on threads, and
//!   the regression-seed file.
//! - `panics`: a hook that turns any panic in a simulated node into a failure.
//!
//! ## Fault model
//! Network: partitions that drop (halves, one node or the leader isolated,
//! a majority ring), one-way partitions, holds (delay, then deliver — like
//! TCP retransmitting across a partition), latency spikes. Processes and
//! disks: crash and restart of a minority (each crashed disk drops its
//! unsynced writes), crash of every node at once, a torn newest log record,
//! a flipped bit in a committed record (that node must refuse to start).
//! Membership: a spare node added as learner and promoted, a node removed,
//! while the other faults go on. The nemesis never takes more voters away
//! than a majority can spare; then it heals everything.
//!
//! ## Invariants
//! - Nothing in a run depends on anything but its seed: a seed replays to
//!   the same trace hash alone, in a batch, beside other seeds on other
//!   threads (`README.md` in this crate, "Determinism", lists the seams that
//!   make it so and the little a simulation cannot control).
//! - Nodes never read a real clock, socket or disk: time is turmoil's,
//!   sockets are turmoil's, disks are `MemDisk`s owned by the driver (they
//!   survive host crashes).
//! - A seed fails on any violation, and prints the command that replays it.

pub mod batch;
pub mod checker;
pub mod history;
pub mod nemesis;
pub mod net;
pub mod node;
mod panics;
pub mod plan;
pub mod run;
pub mod workload;

pub use batch::{BatchSummary, REGRESSION_FILE, read_regression_seeds, record_regression_seed, run_batch};
pub use plan::{Fault, FaultSet, Plan, SimOptions};
pub use run::{SeedReport, run_seed};
