//! Many processes: workers that are this very program started again, and the
//! supervisor that keeps them serving.
//!
//! A worker is never `fork`ed from the running (threaded) process — a child
//! of `fork` inherits one thread and every lock the others held. It is
//! *re-executed*: the current executable, started with the hidden first
//! argument [`WORKER_ARG`], which [`main_if_worker`] recognises before any
//! other parsing. Any binary that runs this stage's process cases (the stage
//! binary, the tour, the benches) calls it first thing in `main`.
//!
//! A worker talks to its supervisor over two pipes: its stdout carries
//! [`Report`]s (JSON lines: ready, counts, stopped), and its stdin is the
//! stop signal — when the supervisor closes it (or dies, even by SIGKILL),
//! the worker reads end-of-file, stops serving, reports its final counts and
//! exits. No worker outlives its supervisor.
//!
//! - [`worker`]: the worker side (CPU tasks, or an echo server).
//! - [`supervisor`]: start, watch, restart, stop, and sum the counts.

pub mod supervisor;
pub mod worker;

use serde::{Deserialize, Serialize};
use stage_hub::echo::stats::ServerSummary;

pub use supervisor::{Summary, SuperviseError, Supervisor};
pub use worker::main_if_worker;

/// The hidden first argument that makes this program a worker.
pub const WORKER_ARG: &str = "__cores-worker";

/// What a worker tells its supervisor, one JSON line each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Report {
    /// Listening, ready for clients.
    Ready {
        /// The worker's process id.
        pid: u32,
    },
    /// Its counts so far (sent when they change, a few times a second).
    Counts(ServerSummary),
    /// Its final counts, after it stopped serving.
    Stopped(ServerSummary),
}
