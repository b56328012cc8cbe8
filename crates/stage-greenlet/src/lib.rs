//! Stage 3: greenlets — functions with their own stacks, switched by hand.
//!
//! A generator can only hand control back to whoever resumed it. A greenlet
//! can switch to *any* other greenlet on its thread, passing a value, and
//! each keeps its whole call stack while it waits. This crate builds a
//! greenlet library with Python greenlet's semantics, switching stacks with
//! ten instructions of assembly of its own on x86-64 (elsewhere, or with
//! the `context-switch` feature, with the `context` crate's
//! `jump_fcontext`, Boost.Context's assembly), then measures what a switch
//! costs.
//!
//! Run `cargo run --release -p stage-greenlet`: the notes' eat/play and
//! test1/test2 listings, then the switching-cost table. Expect a switch on
//! every iteration of a CPU loop to make it several times slower than
//! running the loops back to back (the notes saw 5.8× in CPython), one
//! greenlet switch round trip to cost about half a raw `context` round trip
//! (6 ns against 11 on our 2-core machine; some runs show more) in more
//! instructions (about 80 against 59, with valgrind installed to count
//! them: the raw round trip is mostly two `jump_fcontext`s of 24, ours is
//! mostly the bookkeeping around two switches of 11), against several
//! hundred nanoseconds for a round trip of CPython's greenlet (measured
//! beside ours by `python/greenlet_switch.py` when python3 has greenlet;
//! else worked out from the notes' f1/f2 runs and labelled so), and a
//! greenlet's whole life about eight raw round trips.
//!
//! ```
//! use stage_greenlet::{current, Greenlet};
//!
//! let echo = Greenlet::new(|mut word: String| loop {
//!     let main = current().parent().unwrap();
//!     word = main.switch(word.to_uppercase()).unwrap();
//! })?;
//! let a: String = echo.switch("hi".to_string())?;
//! let b: String = echo.switch("there".to_string())?;
//! assert_eq!((a.as_str(), b.as_str()), ("HI", "THERE"));
//! // Dropping the last handle kills the suspended greenlet.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//!
//! - [`greenlet`]: the safe API — [`Greenlet`], [`WeakGreenlet`], [`Builder`], [`current`].
//! - [`arch`]: the stack switch itself, a few instructions of assembly per
//!   architecture (read its diagrams first).
//! - [`switch`]: a greenlet switch around it: the type check, the value in
//!   flight, the per-thread bookkeeping.
//! - [`stack`]: guarded stacks, their size, their pools (hot per thread, cold per process).
//! - [`overflow`]: the SIGSEGV handler that names a greenlet that overflowed.
//! - [`error`]: [`SwitchError`] and [`GreenletError`].
//! - [`hook`]: the switch hook (`settrace`), and the tracer that records a
//!   timeline of who ran when (`--trace FILE`).
//! - [`listings`]: the notes' eat/play and test1/test2 listings.
//! - [`cost`]: the switching listing and the switch-cost workloads and groups.
//! - [`reference`](mod@reference): the same round trip on raw `context`, `generator` and
//!   `corosensei`, for the cost table.
//! - [`lesson`](mod@lesson): the lesson narrated in order (what the binary runs).
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod arch;
pub mod cost;
pub mod error;
pub mod greenlet;
pub mod hook;
pub mod lesson;
pub mod listings;
pub mod overflow;
pub mod reference;
pub mod stack;
pub mod switch;

pub use error::{GreenletError, SwitchError};
pub use greenlet::{
    current, current_id, switch_to_parent, Builder, Greenlet, GreenletExit, WeakGreenlet,
};
pub use stack::{DEFAULT_STACK_SIZE, MIN_STACK_SIZE};

/// Run the whole lesson as `cargo run -p stage-greenlet` does (without
/// `--full`), record its headlines and return the finished report.
pub fn lesson(common: &harness::CommonArgs) -> Result<harness::Report, Box<dyn std::error::Error>> {
    lesson::run(common, false)
}

/// The benchmark groups the lesson measures, for the criterion benches.
pub fn groups(quick: bool) -> Vec<harness::Group> {
    let (round_trips, lives) = cost::cost_counts(quick);
    vec![
        cost::switching_group(lesson::iterations(quick, false)),
        cost::switch_cost_group(round_trips, lives),
    ]
}
