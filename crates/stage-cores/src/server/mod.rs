//! The notes' echo server with CPU work per message, on every core of one
//! process: T hubs (each with its own listening socket on the shared port),
//! or the two peers it is compared with — tokio's multi-thread runtime and a
//! thread per connection.
//!
//! - [`listener`]: `SO_REUSEPORT` sockets, so many listeners share one port.
//! - [`hub`]: one hub server per hub thread, stopped through a channel.
//! - [`tokio_mt`]: tokio's multi-thread runtime with T workers.
//! - [`threads`]: one OS thread per connection.
//!
//! Counters are atomics here: for the first time, the greenlets that update
//! them run on several threads at once.

pub mod hub;
pub mod listener;
pub mod threads;
pub mod tokio_mt;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stage_hub::echo::stats::ServerSummary;

use crate::work::Work;

/// Which server runs in a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// T hub threads, a greenlet per connection, a listener per hub.
    Hub,
    /// tokio's multi-thread runtime with T worker threads, a task per connection.
    Tokio,
    /// One OS thread per connection (T is ignored).
    Threads,
}

impl Flavor {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Hub => "hub",
            Flavor::Tokio => "tokio",
            Flavor::Threads => "threads",
        }
    }
}

/// What one process serves with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// The kind of server.
    pub flavor: Flavor,
    /// Hub threads (or tokio workers) in this process.
    pub hubs: usize,
    /// CPU work per message.
    pub work: Work,
}

/// What every connection adds to, from whichever thread serves it.
#[derive(Debug, Default)]
pub struct Counters {
    connections: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    pub(crate) fn connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn echoed(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn summary(&self) -> ServerSummary {
        ServerSummary {
            connections: self.connections.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// A server running in this process; [`Running::stop`] ends it.
pub struct Running {
    addr: SocketAddr,
    counters: Arc<Counters>,
    stop: Box<dyn FnOnce() + Send>,
}

impl Running {
    pub(crate) fn new(
        addr: SocketAddr,
        counters: Arc<Counters>,
        stop: impl FnOnce() + Send + 'static,
    ) -> Running {
        Running {
            addr,
            counters,
            stop: Box::new(stop),
        }
    }

    /// The address every listener of this server shares.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The live counters.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Stop accepting, close what is still open, and return the counts.
    pub fn stop(self) -> ServerSummary {
        (self.stop)();
        self.counters.summary()
    }
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Start `config`'s server on `addr` in this process (port 0 picks one;
/// every listener then shares it).
pub fn start(addr: SocketAddr, config: &ServerConfig) -> io::Result<Running> {
    let counters = Arc::new(Counters::default());
    match config.flavor {
        Flavor::Hub => hub::start(addr, config.hubs, config.work, counters),
        Flavor::Tokio => tokio_mt::start(addr, config.hubs, config.work, counters),
        Flavor::Threads => threads::start(addr, config.work, counters),
    }
}
