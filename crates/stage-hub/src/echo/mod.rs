//! The notes' TCP server: read up to 1024 bytes, send them back upper-cased
//! — served three ways and loaded by one generator, so the ways compare.
//!
//! - [`protocol`]: the protocol itself, once, generic over `Read + Write`.
//! - [`server`]: the hub server: a greenlet per connection, no locks.
//! - [`threads`]: a thread per connection, and the notes' 500-thread client.
//! - [`tokio_server`]: the stackless peer on tokio's current-thread runtime.
//! - [`stats`]: latency histograms, tallies, the messages clients send.
//! - [`load`]: `echo-load`, N clients in one hub.
//! - [`client`]: the interactive client and the hello/bye exchange.
//! - [`bench`](mod@bench): `echo-bench`, every server in its own process under load.
//! - [`cpu`]: a server process's user and system time, read from `/proc`.

pub mod bench;
pub mod client;
pub mod cpu;
pub mod load;
pub mod protocol;
pub mod server;
pub mod stats;
pub mod threads;
pub mod tokio_server;

/// Which echo server to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Flavor {
    /// Our hub: one greenlet per connection, one thread.
    Hub,
    /// One OS thread per connection, blocking std sockets.
    Threads,
    /// tokio's current-thread runtime: one task (a future) per connection.
    Tokio,
}

impl Flavor {
    /// Every flavor, in the order reports list them.
    pub const ALL: [Flavor; 3] = [Flavor::Hub, Flavor::Threads, Flavor::Tokio];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Hub => "hub",
            Flavor::Threads => "threads",
            Flavor::Tokio => "tokio",
        }
    }
}
