//! Who ran when: a bounded recorder of switches, written as Chrome
//! trace-event JSON.
//!
//! Every lesson in this workspace is about *when* control moves from one
//! piece of code to another. A table of medians says how much that costs;
//! a timeline shows it happen: eat, then play, then eat again; three naps
//! sleeping side by side; a greenlet that is never resumed. This crate
//! records such timelines, whatever does the switching:
//!
//! - a **track** is one thing that runs: a greenlet, a generator, the hub,
//!   `main`. Tracks are named by a key of the caller's choosing (a greenlet's
//!   id) within the OS thread that records them;
//! - a **slice** is one interval during which a track ran. The switching
//!   code calls [`Trace::switch`] at every transfer of control: the slice of
//!   the track that gives up the CPU ends, the slice of the one that gets it
//!   begins, and remembers how it was entered (`start`, `switch`, `throw`,
//!   `resume`, …) and from whom;
//! - an **instant** marks a moment on a track: why a greenlet parked, that
//!   a greenlet ended; a **span** is a nested interval (the hub's `poll`).
//!
//! A [`Trace`] keeps at most a fixed number of events, so tracing a server
//! until it is stopped cannot eat the machine; past the cap it only counts
//! what it dropped, and the file says so. [`Trace::write`] produces the
//! Chrome trace-event format (JSON): Perfetto (`ui.perfetto.dev`) and
//! `chrome://tracing` open it, with one named track per greenlet, grouped
//! by OS thread.
//!
//! ```
//! let trace = trace::Trace::new(1_000);
//! let name = |key: u64| if key == 0 { "main".to_string() } else { format!("g{key}") };
//! trace.switch(0, 1, "start", name); // main hands the CPU to g1
//! trace.switch(1, 0, "return", name); // g1 hands it back
//! let mut json = Vec::new();
//! trace.write(&mut json, "doc")?;
//! let recorded = trace::read::Recorded::parse(&json)?;
//! let g1 = recorded.track("g1").expect("g1 has a track");
//! assert_eq!(recorded.slices_of(g1).len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A program turns tracing on for its whole run with [`TraceArgs`] (the
//! `--trace FILE` and `--trace-limit N` options every switching stage binary
//! takes): it makes a trace [`active`](fn@active), and the stage crates record into the
//! active trace when there is one. With none, recording code costs one
//! predictable branch.
//!
//! # Layout
//!
//! - [`record`]: the recorder — [`Trace`], tracks, slices, instants, the cap.
//! - [`mod@active`]: the one trace a program records into, if any.
//! - [`write`](mod@write): the Chrome trace-event JSON writer.
//! - [`read`]: reading such a file back into slices and waits (tests, timelines).
//! - [`cli`]: `--trace FILE` and `--trace-limit N`, and the [`Session`] they start.

pub mod active;
pub mod cli;
pub mod read;
pub mod record;
pub mod write;

pub use active::{active, is_active};
pub use cli::{Session, TraceArgs, TraceError, DEFAULT_LIMIT, MAX_LIMIT};
pub use record::{Arg, Args, Trace};
