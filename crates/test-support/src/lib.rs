//! What the stages' tests share to run their own binaries as a user would:
//! a command line that must finish in time, and a server that runs while
//! the test talks to it and stops when told.
//!
//! It is a dev-dependency only; no lesson uses it. Each child runs in a
//! process group of its own, so that a test that fails or times out kills
//! it and everything it started (echo-bench's servers, the cores lesson's
//! workers), and no process outlives the test.
//!
//! ```no_run
//! use std::process::Command;
//! use std::time::Duration;
//! use test_support::{connect, round_trip, Server, Signal};
//!
//! let mut server = Server::start(Command::new("stage-hub").args(["echo-server", "--addr", "127.0.0.1:0"]));
//! assert_eq!(round_trip(&mut connect(server.addr()), b"hi")?, b"HI");
//! let stopped = server.stop(Signal::SIGTERM);
//! assert!(stopped.status.success(), "{stopped}");
//! assert!(stopped.stdout.contains("echo server stopped"), "{stopped}");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Layout
//!
//! - [`cli`]: [`output_of`], a stage's command line run with a time limit,
//!   and the checks of what every stage's output must show: [`assert_success`],
//!   [`refused`] (clap's exit status and first line), [`outcome`] (its
//!   status and output as text),
//!   [`assert_one_heading_style`]; [`traced`], a run with `--trace` and the
//!   timeline it wrote; [`python_can_import`] for the figures measured
//!   against CPython.
//! - [`run`]: [`output_within`], a command's output, or a failed test if it
//!   takes too long; [`try_output_within`], the same for a tool a
//!   test skips without, which is no failure if it is not installed; [`rerun_test`], a test run again in a child to play a
//!   scenario that ends the process; [`alive`], whether a process is.
//! - [`lines`]: [`Lines`], a child's output read line by line, waited for
//!   with a deadline.
//! - [`server`]: [`Server`], a child that prints its address first
//!   (`listening on ADDR`, or in words of its own) and serves until
//!   signalled; [`connect`] and [`round_trip`] for its clients;
//!   [`thread_echo_server`], a plain peer for the load generators.
//! - [`temp`]: [`TempDir`], a test's own temporary folder, removed however
//!   the test ends.

pub mod cli;
pub mod lines;
pub mod run;
pub mod server;
pub mod temp;

pub use cli::{
    assert_one_heading_style, assert_success, outcome, output_of, python_can_import, refused,
    trace_file, traced,
};
pub use lines::Lines;
pub use nix::sys::signal::Signal;
pub use run::{alive, output_within, rerun_test, try_output_within};
pub use server::{connect, round_trip, thread_echo_server, Server, Stopped};
pub use temp::TempDir;
