//! The one benchmark harness every stage shares.
//!
//! Each lesson makes a claim — "switching on every iteration slows CPU work",
//! "three overlapping sleeps finish in the time of the longest" — and the
//! claim is only as good as the figure that backs it. This crate is how every
//! stage produces those figures the same way:
//!
//! 1. A stage declares [`Case`]s: a name, a workload, the baseline it is
//!    compared with, how many operations one run performs, and the result the
//!    workload must return (a sum or a count), so that neither the optimizer
//!    nor a bug can skip the work unnoticed.
//! 2. Cases are gathered in a [`Group`]: the cases that answer one question,
//!    plus any figures *quoted* from the lesson notes (CPython timings) so our
//!    numbers stand beside theirs.
//! 3. [`Report::measure`] warms each case up, runs the group's cases in
//!    turns (one run of each per round, so a noisy neighbour slows them
//!    alike and their ratios hold), takes each case's median and prints one table — case, median, cost per operation, and
//!    the ratio of that cost to the baseline's, measured in the same run —
//!    headed by the build profile that produced it. With
//!    `--json` the same rows come out as JSON lines ([`Row`]).
//!
//! The same `Group`s feed criterion in the workspace's `benches/`: one
//! definition of each workload, never two.
//!
//! ```
//! use harness::{Case, Group, Plan, Report, Output};
//!
//! let group = Group::new("sums")
//!     .case(Case::new("loop", 1_000, || (0..1_000u64).sum::<u64>()).expect(499_500))
//!     .case(
//!         Case::new("iterator", 1_000, || (0..1_000u64).fold(0, |a, b| a + b))
//!             .baseline("loop")
//!             .expect(499_500),
//!     );
//! let mut report = Report::new("doc", Output::silent());
//! let rows = report.measure(group, &Plan::quick()).unwrap();
//! assert_eq!(rows.len(), 2);
//! assert!(rows[1].ratio.is_some());
//! ```
//!
//! # Layout
//!
//! - [`case`]: what to measure — [`Case`], [`Group`], [`Quote`], [`Outcome`].
//! - [`count`]: instructions per operation, counted by callgrind in a child
//!   process: the figure a noisy machine cannot move.
//! - [`measure`]: how — warm-up, repeated runs, the median ([`Plan`]).
//! - [`report`]: what comes out — [`Row`], the table, JSON lines, [`Report`].
//! - [`output`]: where it goes — narration vs. report, stdout vs. stderr.
//! - [`cpython`]: the notes' listings run in CPython here, when it can, for
//!   the rows beside ours (else the quoted figures, labelled as quoted).
//! - [`json`]: reading a `--json` report back, held to the rows\' promised fields.
//! - [`cli`]: the options every stage binary shares (`--quick`, `--json`).
//! - [`profile`]: which build produced the figures.
//! - [`rss`]: how much memory the process holds right now.

pub mod case;
pub mod cli;
pub mod count;
pub mod cpython;
pub mod json;
pub mod measure;
pub mod output;
pub mod profile;
pub mod report;
pub mod rss;

pub use case::{Case, CheckError, Group, Outcome, Quote};
pub use cli::CommonArgs;
pub use measure::Plan;
pub use output::Output;
pub use profile::Profile;
pub use report::{Headline, Report, Row};
