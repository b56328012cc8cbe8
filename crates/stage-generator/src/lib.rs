//! Stage 2: generators — a function frozen half-way, `send`, and what a
//! switch costs.
//!
//! Concurrency is switching plus saving state. A generator does both in one
//! thread: `resume` switches onto the generator's own stack, `yield` switches
//! back and leaves the body's locals and position saved there. This stage
//! uses the stackful `generator` crate (whose 0.8.12 sets the workspace's
//! minimum Rust, 1.95) and shows:
//!
//! 1. a body frozen at a yield and resumed later (it runs only up to each
//!    yield);
//! 2. `send`: the first resume starts the body, and a value sent afterwards
//!    is what the paused yield returns;
//! 3. producer/consumer by `send`, 10,000,000 items, one at a time — beside
//!    the same hand-over done by a plain Rust [`Iterator`], a stackless state
//!    machine that never switches stacks;
//! 4. the two CPU loops of stage 1 interleaved with a switch on every
//!    iteration: **slower than running them serially**, because switching
//!    only pays when a task waits, and these never do;
//! 5. the bare cost of one `send` round trip, in nanoseconds.
//!
//! Run `cargo run -p stage-generator` (a debug build, which the tables say)
//! or `cargo run --release -p stage-generator` for representative figures;
//! `--help` lists the listings as sub-commands. On our 2-core machine the
//! release build ran the interleaved loops 7.5 to 12 times slower than
//! serially (the notes' CPython: 1.72x, 1.237 s against 2.125 s): our switch
//! is several times cheaper than CPython's, but our loop body is a hundred
//! times cheaper than theirs, so the switch weighs far more. A send round
//! trip cost about 22 ns (CPython: about 89 ns of overhead per `next(g)`).
//!
//! ```
//! use stage_generator::{interleave, pipeline};
//! assert_eq!(interleave::interleaved(100, &interleave::unwatched), 100 * 101);
//! assert_eq!(pipeline::by_send(100, &interleave::unwatched), 99 * 100 / 2);
//! ```
//!
//! # Layout
//!
//! - [`frozen`]: the first two listings — a frozen body, and `send`.
//! - [`pipeline`]: producer/consumer by `send`, and by a stackless `Iterator`.
//! - [`interleave`]: the CPU loops with a switch on every iteration.
//! - [`switch`]: one send round trip against one plain call.
//! - [`traced`]: generators whose resumes and yields a trace records (`--trace FILE`).
//! - [`lesson`] / [`groups`] (this file): the cases, in lesson order, with the
//!   CPython's figures beside ours (`python/generator.py` measures them here
//!   when python3 can; else the notes' are quoted, and labelled so).

pub mod frozen;
pub mod interleave;
pub mod pipeline;
pub mod switch;
pub mod traced;

use harness::cpython::Script;
use harness::report::human_seconds;
use harness::{Case, CheckError, CommonArgs, Group, Output, Plan, Quote, Report};
use stage_serial::{cpu, producer, thousands, Transcript, CPU_CASE, PC_CASE};

use interleave::unwatched;

/// The stage's name, as reports and the tour show it.
pub const STAGE: &str = "stage-generator";

/// The interleaved CPU case.
pub const INTERLEAVED_CASE: &str = "generator: switch every iteration";

/// The producer/consumer case by `send`.
pub const SEND_CASE: &str = "generator: send each item";

/// The producer/consumer case by `Iterator`.
pub const ITERATOR_CASE: &str = "Iterator: next each item (no switch)";

/// The plain-call reference case.
pub const CALL_CASE: &str = "plain call (no switch)";

/// The send round-trip reference case.
pub const ROUND_TRIP_CASE: &str = "generator: send round trip";

/// The notes' CPython time for the loops interleaved by `yield`, in seconds.
pub const NOTES_CPU_SWITCHING_SECONDS: f64 = 2.124_723_911_285_400_4;

/// The notes' CPython time for producer/consumer by `send`, in seconds.
pub const NOTES_PC_SEND_SECONDS: f64 = 1.120_979_785_919_189_5;

/// The notes' CPU ratio, switching over serial (2.125 s / 1.237 s).
pub fn notes_cpu_ratio() -> f64 {
    NOTES_CPU_SWITCHING_SECONDS / stage_serial::NOTES_CPU_SERIAL_SECONDS
}

/// How big this run is: loop counts and timed runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Iterations of each CPU loop, items produced, round trips made.
    pub count: u64,
    /// Warm-up and timed runs per case.
    pub plan: Plan,
}

impl Settings {
    /// The notes' sizes (10,000,000), or a tenth of them for `--quick`.
    pub fn new(quick: bool) -> Self {
        let base = stage_serial::Settings::new(quick);
        Settings {
            count: base.count,
            plan: base.plan,
        }
    }

    /// The settings the shared options ask for. An unoptimized build runs a
    /// tenth of the notes' counts (and says so): its figures are not
    /// representative anyway, and the full counts would take most of a
    /// minute.
    pub fn from_common(common: &CommonArgs) -> Self {
        let mut settings = Settings {
            plan: common.plan(),
            ..Settings::new(common.quick)
        };
        if !harness::Profile::current().optimized {
            settings.count = settings.count.min(stage_serial::QUICK_COUNT);
        }
        settings
    }
}

/// Our Python script of this stage's listings (`python/generator.py`).
pub const GENERATOR_PY: &str = include_str!("../python/generator.py");

/// `python/generator.py` running `listing` over `n` items (capped as stage
/// 1's scripts are).
fn generator_py(listing: &str, n: u64) -> Script {
    Script::new("generator.py", GENERATOR_PY)
        .arg(listing)
        .arg(n.min(stage_serial::CPYTHON_MAX_COUNT))
        .arg(stage_serial::CPYTHON_RUNS)
}

/// The name of CPython's row for `case` (stage 1's naming, shared).
pub use stage_serial::cpython;
/// Where the notes' figures come from, as quoted rows say (stage 1's).
pub use stage_serial::NOTES;

// ANCHOR: cpu_group
/// Serial loops against the same loops switching every iteration, with
/// CPython's pair beside ours (measured here, or the notes' quoted).
pub fn cpu_group(n: u64) -> Group {
    let ops = 2 * stage_serial::FULL_COUNT;
    Group::new("cpu")
        .title("Does switching on every iteration speed up CPU work?")
        .case(stage_serial::cpu_case(n))
        .case(
            Case::new(INTERLEAVED_CASE, 2 * n, move || {
                interleave::interleaved(n, &unwatched)
            })
            .baseline(CPU_CASE)
            .expect(cpu::expected(n)),
        )
        .cpython(
            generator_py("cpu", n)
                .row("serial", &cpython(CPU_CASE), None)
                .row(
                    "yield",
                    &cpython(INTERLEAVED_CASE),
                    Some(&cpython(CPU_CASE)),
                ),
        )
        .quote(Quote::new(
            NOTES,
            cpython(CPU_CASE),
            stage_serial::NOTES_CPU_SERIAL_SECONDS,
            ops,
        ))
        .quote(
            Quote::new(
                NOTES,
                cpython(INTERLEAVED_CASE),
                NOTES_CPU_SWITCHING_SECONDS,
                ops,
            )
            .baseline(cpython(CPU_CASE)),
        )
}
// ANCHOR_END: cpu_group

/// A full `Vec` against `send` against an `Iterator`.
pub fn producer_consumer_group(n: u64) -> Group {
    let ops = stage_serial::FULL_COUNT;
    Group::new("producer-consumer")
        .title("Producer/consumer: store everything, or hand over one at a time?")
        .case(stage_serial::producer_consumer_case(n))
        .case(
            Case::new(SEND_CASE, n, move || pipeline::by_send(n, &unwatched))
                .baseline(PC_CASE)
                .expect(producer::expected(n)),
        )
        .case(
            Case::new(ITERATOR_CASE, n, move || pipeline::by_iterator(n))
                .baseline(PC_CASE)
                .expect(producer::expected(n)),
        )
        .cpython(
            generator_py("producer-consumer", n)
                .row("list", &cpython(PC_CASE), None)
                .row("send", &cpython(SEND_CASE), Some(&cpython(PC_CASE))),
        )
        .quote(Quote::new(
            NOTES,
            cpython(PC_CASE),
            stage_serial::NOTES_PC_SERIAL_SECONDS,
            ops,
        ))
        .quote(
            Quote::new(NOTES, cpython(SEND_CASE), NOTES_PC_SEND_SECONDS, ops)
                .baseline(cpython(PC_CASE)),
        )
}

/// Name of CPython's switch-cost row.
pub const NEXT_CASE: &str = "next(g) over a plain loop (CPython)";

/// The reference rows: one send round trip against one plain call, and
/// CPython's cost of a switch, `(switching - serial) / count`, measured
/// here or worked out from the notes' `(2.125 s - 1.237 s) / 10,000,000`.
pub fn switch_group(n: u64) -> Group {
    Group::new("switch-cost")
        .title("What one switch costs (per op = one round trip)")
        .case(Case::new(CALL_CASE, n, move || switch::calls(n)).expect(switch::expected(n)))
        .case(
            Case::new(ROUND_TRIP_CASE, n, move || switch::round_trips(n))
                .baseline(CALL_CASE)
                .expect(switch::expected(n)),
        )
        .cpython(generator_py("switch-cost", n).row("next-overhead", NEXT_CASE, None))
        .quote(Quote::new(
            NOTES,
            NEXT_CASE,
            NOTES_CPU_SWITCHING_SECONDS - stage_serial::NOTES_CPU_SERIAL_SECONDS,
            stage_serial::FULL_COUNT,
        ))
}

/// The groups the criterion benches run: the same definitions the lesson
/// measures.
pub fn groups(quick: bool) -> Vec<Group> {
    let n = Settings::new(quick).count;
    vec![producer_consumer_group(n), cpu_group(n), switch_group(n)]
}

/// The lesson's listings, in order; each is also a sub-command of the
/// binary (the doc line of each is its `--help` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum Listing {
    /// A generator body frozen at each yield and resumed
    Frozen,
    /// send: the first resume starts the body, a sent value is what yield returns
    Send,
    /// Producer/consumer by send and by Iterator, against a full Vec
    ProducerConsumer,
    /// The two CPU loops switching on every iteration, against serial
    Cpu,
    /// One send round trip against one plain function call
    SwitchCost,
}

impl Listing {
    /// Every listing, in lesson order.
    pub const ALL: [Listing; 5] = [
        Listing::Frozen,
        Listing::Send,
        Listing::ProducerConsumer,
        Listing::Cpu,
        Listing::SwitchCost,
    ];
}

/// Run one listing: narrate it, and measure its group (if it has one) into
/// `report`.
pub fn run_listing(
    listing: Listing,
    settings: &Settings,
    report: &mut Report,
) -> Result<(), CheckError> {
    let out = report.output();
    let t = Transcript::new(out);
    let n = settings.count;
    let narrate = |who: &'static str, i: u64| t.say(format!("  {who} {i}"));
    match listing {
        Listing::Frozen => {
            out.say("\n## A function frozen at each yield");
            frozen::frozen(&t);
        }
        Listing::Send => {
            out.say("\n## send: a value in, the next yielded value out");
            frozen::send(&t);
        }
        Listing::ProducerConsumer => {
            out.say("\n## Producer/consumer by send, narrated for 3 items");
            pipeline::by_send(3, &narrate);
            out.say(format!(
                "Now {} items, unnarrated: stage 1's Vec, send, and a plain Iterator.",
                thousands(n)
            ));
            report.measure(producer_consumer_group(n), &settings.plan)?;
        }
        Listing::Cpu => {
            out.say("\n## The CPU loops, switching every iteration, narrated for 3");
            interleave::interleaved(3, &narrate);
            out.say(format!(
                "Now {} iterations each. Nothing ever waits, so every switch is pure cost.",
                thousands(n)
            ));
            report.measure(cpu_group(n), &settings.plan)?;
        }
        Listing::SwitchCost => {
            out.say("\n## The price of one switch");
            report.measure(switch_group(n), &settings.plan)?;
        }
    }
    Ok(())
}

/// Run the listings given, in order, recording the headlines whose figures
/// were measured.
pub fn run(
    listings: &[Listing],
    settings: &Settings,
    output: Output,
) -> Result<Report, CheckError> {
    let mut report = Report::new(STAGE, output);
    output.say(format!(
        "Stage 2: generators. Counts: {}.",
        thousands(settings.count)
    ));
    if !harness::Profile::current().optimized {
        output.say(format!(
            "This is a debug build: counts are cut to {} and every figure is distorted. \
             Add --release for the notes' {} and representative figures.",
            thousands(settings.count),
            thousands(stage_serial::FULL_COUNT)
        ));
    }
    for &listing in listings {
        run_listing(listing, settings, &mut report)?;
    }
    let build = if harness::Profile::current().optimized {
        ""
    } else {
        ", debug build"
    };
    let serial = report.row("cpu", CPU_CASE).map(|r| r.median_seconds);
    let switching = report
        .row("cpu", INTERLEAVED_CASE)
        .map(|r| r.median_seconds);
    if let (Some(serial), Some(switching)) = (serial, switching) {
        report.headline(
            "switching on every iteration slows CPU work",
            format!(
                "{:.2}x ({} vs {}{build})",
                switching / serial,
                human_seconds(serial),
                human_seconds(switching)
            ),
            cpython_ratio(&report, "cpu", CPU_CASE, INTERLEAVED_CASE),
        );
    }
    if let Some(row) = report.row("switch-cost", ROUND_TRIP_CASE) {
        let ours = format!("{}{build}", human_seconds(row.ns_per_op / 1e9));
        let cpython = report.cpython_row("switch-cost", NEXT_CASE).map(|r| {
            format!(
                "{} per next(g) ({})",
                human_seconds(r.ns_per_op / 1e9),
                r.origin()
            )
        });
        report.headline("one generator send round trip costs", ours, cpython);
    }
    Ok(report.finish())
}

/// CPython's `case` over `base` in `group`, as a headline shows it:
/// `"1.72x (1.24 s vs 2.12 s; quoted: CPython, the notes)"`.
pub fn cpython_ratio(report: &Report, group: &str, base: &str, case: &str) -> Option<String> {
    let base = report.cpython_row(group, &cpython(base))?;
    let case = report.cpython_row(group, &cpython(case))?;
    Some(format!(
        "{:.2}x ({} vs {}; {})",
        case.ns_per_op / base.ns_per_op,
        human_seconds(base.median_seconds),
        human_seconds(case.median_seconds),
        case.origin()
    ))
}

/// The whole lesson, as `cargo run -p stage-generator` runs it with no
/// sub-command (the tour calls this with `quick: true`).
pub fn lesson(common: &CommonArgs) -> Result<Report, Box<dyn std::error::Error>> {
    Ok(run(
        &Listing::ALL,
        &Settings::from_common(common),
        common.output(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_checks_out_at_small_counts() {
        let settings = Settings {
            count: 2_000,
            plan: Plan::exactly(0, 1),
        };
        let report = run(&Listing::ALL, &settings, Output::silent()).unwrap();
        for (group, case) in [
            ("cpu", CPU_CASE),
            ("cpu", INTERLEAVED_CASE),
            ("producer-consumer", SEND_CASE),
            ("producer-consumer", ITERATOR_CASE),
            ("switch-cost", ROUND_TRIP_CASE),
        ] {
            assert!(report.row(group, case).is_some(), "{group}/{case}");
        }
        assert_eq!(report.headlines().len(), 2);
    }

    #[test]
    fn the_notes_ratio_is_quoted_as_they_measured_it() {
        assert_eq!(format!("{:.2}", notes_cpu_ratio()), "1.72");
        let rows = Report::new(STAGE, Output::silent())
            .measure(cpu_group(100).without_cpython(), &Plan::exactly(0, 1))
            .unwrap();
        let quoted = rows
            .iter()
            .find(|r| r.source == "quoted" && r.case == cpython(INTERLEAVED_CASE))
            .expect("the notes' switching row");
        assert!((quoted.ratio.unwrap() - 1.717).abs() < 0.001);
        assert_eq!(quoted.origin(), "quoted: CPython, the notes");
    }

    #[test]
    fn with_python3_the_cpython_rows_are_measured_here() {
        let python = std::process::Command::new("python3").arg("-V").output();
        if !python.is_ok_and(|o| o.status.success()) {
            assert!(std::env::var_os("CI").is_none(), "CI needs python3");
            return;
        }
        let mut report = Report::new(STAGE, Output::silent());
        for group in [
            cpu_group(1000),
            producer_consumer_group(1000),
            switch_group(1000),
        ] {
            report.measure(group, &Plan::exactly(0, 1)).unwrap();
        }
        for (group, case) in [
            ("cpu", cpython(INTERLEAVED_CASE)),
            ("producer-consumer", cpython(SEND_CASE)),
            ("switch-cost", NEXT_CASE.to_string()),
        ] {
            let row = report.cpython_row(group, &case).expect("a CPython row");
            assert_eq!(row.source, "cpython", "{row:?}");
            assert!(
                row.origin().starts_with("CPython 3.") && row.origin().ends_with("measured here")
            );
        }
        let ratio = report
            .cpython_row("cpu", &cpython(INTERLEAVED_CASE))
            .unwrap()
            .ratio;
        assert!(ratio.is_some(), "compared with CPython's serial loops");
    }

    #[test]
    fn benches_get_every_group() {
        let names: Vec<String> = groups(true).iter().map(|g| g.name().to_string()).collect();
        assert_eq!(names, ["producer-consumer", "cpu", "switch-cost"]);
    }
}
