//! Stage 1: serial code, the baseline every later stage is measured against.
//!
//! Before switching between tasks can be judged, we need the figures of not
//! switching at all. This stage runs the lesson notes' workloads one after
//! another, in plain function calls:
//!
//! - two CPU loops back to back (`func1`, then `func2`, 10,000,000 iterations
//!   each);
//! - a producer that fills a `Vec` with 10,000,000 items, then a consumer
//!   that reads them;
//! - waits that add up: naps of 2 s, 3 s and 5 s take 10 s; ten tasks of
//!   0.5 s take 5 s.
//!
//! Run it with `cargo run --release -p stage-serial` (about 16 s, most of it
//! the waits, which it announces and shows progress for), or add `--quick`
//! for a run of a second or two. On our 2-core machine the CPU loops took
//! 0.55 to 0.75 ns per iteration optimized, against the notes' 62 ns in CPython
//! (1.237 s for 20,000,000 iterations); the waits took 10.0 s and 5.0 s, as
//! arithmetic says. Stage 2 compares its switching with these rows; stage 4
//! overlaps these waits.
//!
//! ```
//! use stage_serial::{cpu, producer};
//! assert_eq!(cpu::serial(1_000), cpu::expected(1_000));
//! assert_eq!(producer::serial(1_000), producer::expected(1_000));
//! ```
//!
//! # Layout
//!
//! - [`cpu`]: the two CPU loops and the one-iteration [`cpu::step`] later
//!   stages reuse.
//! - [`producer`]: produce everything into a `Vec`, then consume it.
//! - [`waits`]: blocking naps and tasks, and the [`Scale`] that shortens them.
//! - [`transcript`]: what a listing said, shown live and kept for tests.
//! - [`lesson`] / [`groups`] (this file): the cases, in the order the lesson
//!   runs them.

pub mod cpu;
pub mod producer;
pub mod transcript;
pub mod waits;

use harness::cpython::Script;
use harness::report::human_seconds;
use harness::{Case, CommonArgs, Group, Output, Plan, Quote, Report};

pub use transcript::Transcript;
pub use waits::Scale;

/// The stage's name, as reports and the tour show it.
pub const STAGE: &str = "stage-serial";

/// Where the notes' figures come from, as quoted rows say.
pub const NOTES: &str = "CPython, the notes";

/// The notes' iterations per CPU loop and items produced.
pub const FULL_COUNT: u64 = 10_000_000;

/// Iterations and items under `--quick`.
pub const QUICK_COUNT: u64 = 1_000_000;

/// Name of the serial CPU case, the baseline of stage 2's CPU group.
pub const CPU_CASE: &str = "serial: func1 then func2";

/// Name of the serial producer/consumer case, stage 2's baseline.
pub const PC_CASE: &str = "serial: fill a Vec, then read it";

/// Name of the serial naps case (2 s + 3 s + 5 s), stage 4's baseline.
pub const SLEEPS_CASE: &str = "serial: naps of 2 s, 3 s, 5 s";

/// Name of the serial tasks case (10 × 0.5 s), stage 4's baseline.
pub const TASKS_CASE: &str = "serial: 10 tasks of 0.5 s";

/// The notes' CPython time for both CPU loops run serially, in seconds.
pub const NOTES_CPU_SERIAL_SECONDS: f64 = 1.237_242_937_088_012_7;

/// The notes' CPython time for the serial producer/consumer, in seconds.
pub const NOTES_PC_SERIAL_SECONDS: f64 = 1.025_727_748_870_849_6;

/// `10000000` → `"10,000,000"`: counts as the narration prints them.
///
/// ```
/// assert_eq!(stage_serial::thousands(10_000_000), "10,000,000");
/// assert_eq!(stage_serial::thousands(999), "999");
/// ```
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The name of CPython's row for `case`, as every stage's tables and
/// reports name the CPython twin of one of our cases.
///
/// ```
/// assert_eq!(
///     stage_serial::cpython(stage_serial::CPU_CASE),
///     "serial: func1 then func2 (CPython)"
/// );
/// ```
pub fn cpython(case: &str) -> String {
    format!("{case} (CPython)")
}

/// How big this run is: loop counts, wait scale, timed runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Iterations of each CPU loop, and items the producer makes.
    pub count: u64,
    /// Factor applied to every wait.
    pub scale: Scale,
    /// Warm-up and timed runs per case.
    pub plan: Plan,
}

impl Settings {
    /// The notes' sizes, or the `--quick` ones (a tenth of the counts, a
    /// hundredth of the waits).
    pub fn new(quick: bool) -> Self {
        if quick {
            Settings {
                count: QUICK_COUNT,
                scale: Scale::QUICK,
                plan: Plan::quick(),
            }
        } else {
            Settings {
                count: FULL_COUNT,
                scale: Scale::FULL,
                plan: Plan::full(),
            }
        }
    }

    /// The settings the shared options ask for.
    pub fn from_common(common: &CommonArgs) -> Self {
        Settings {
            plan: common.plan(),
            ..Settings::new(common.quick)
        }
    }
}

/// The serial CPU case: both loops, `n` iterations each, checked.
pub fn cpu_case(n: u64) -> Case {
    Case::new(CPU_CASE, 2 * n, move || cpu::serial(n)).expect(cpu::expected(n))
}

/// The serial producer/consumer case over `n` items, checked.
pub fn producer_consumer_case(n: u64) -> Case {
    Case::new(PC_CASE, n, move || producer::serial(n)).expect(producer::expected(n))
}

/// The naps case; its narration goes to `output` (silent for benches).
pub fn sleeps_case(scale: Scale, output: Output) -> Case {
    Case::new(SLEEPS_CASE, waits::NAPS.len() as u64, move || {
        waits::sleeps(scale, &Transcript::new(output))
    })
    .expect(waits::NAPS.len() as u64)
    .waits()
}

/// The tasks case; its narration goes to `output`.
pub fn tasks_case(scale: Scale, output: Output) -> Case {
    Case::new(TASKS_CASE, waits::TASKS, move || {
        waits::tasks(scale, &Transcript::new(output))
    })
    .expect(waits::TASKS)
    .waits()
}

/// Our Python script of this stage's listings (`python/serial.py`).
pub const SERIAL_PY: &str = include_str!("../python/serial.py");

/// Timed runs each CPython script takes (after one warm-up).
pub const CPYTHON_RUNS: u32 = 3;

/// The most iterations a CPython script runs: its per-op figure needs no
/// more, and CPython is some fifty times slower per iteration than we are.
pub const CPYTHON_MAX_COUNT: u64 = 2_000_000;

/// `python/serial.py`, running `listing` over `n` items (at most
/// [`CPYTHON_MAX_COUNT`]).
fn serial_py(listing: &str, n: u64) -> Script {
    Script::new("serial.py", SERIAL_PY)
        .arg(n.min(CPYTHON_MAX_COUNT))
        .arg(CPYTHON_RUNS)
        .row(listing, &cpython(listing_case(listing)), None)
}

fn listing_case(listing: &str) -> &'static str {
    if listing == "cpu" {
        CPU_CASE
    } else {
        PC_CASE
    }
}

/// The CPU group, with CPython's figure beside ours: the same loops in
/// CPython measured here, or the notes' figure quoted.
pub fn cpu_group(n: u64) -> Group {
    Group::new("cpu")
        .title("Two CPU loops, back to back")
        .case(cpu_case(n))
        .cpython(serial_py("cpu", n))
        .quote(Quote::new(
            NOTES,
            cpython(CPU_CASE),
            NOTES_CPU_SERIAL_SECONDS,
            2 * FULL_COUNT,
        ))
}

/// The producer/consumer group, CPython's figure beside ours.
pub fn producer_consumer_group(n: u64) -> Group {
    Group::new("producer-consumer")
        .title("Producer fills a Vec, then the consumer reads it")
        .case(producer_consumer_case(n))
        .cpython(serial_py("producer-consumer", n))
        .quote(Quote::new(
            NOTES,
            cpython(PC_CASE),
            NOTES_PC_SERIAL_SECONDS,
            FULL_COUNT,
        ))
}

/// The naps group.
pub fn sleeps_group(scale: Scale, output: Output) -> Group {
    Group::new("sleeps")
        .title(format!("Blocking naps add up (scale {scale})"))
        .case(sleeps_case(scale, output))
}

/// The tasks group.
pub fn tasks_group(scale: Scale, output: Output) -> Group {
    Group::new("tasks")
        .title(format!("Blocking tasks add up (scale {scale})"))
        .case(tasks_case(scale, output))
}

/// The groups the criterion benches run: the same definitions the lesson
/// measures. The waits are marked [`Case::waits`], so benches skip them.
pub fn groups(quick: bool) -> Vec<Group> {
    let s = Settings::new(quick);
    vec![
        cpu_group(s.count),
        producer_consumer_group(s.count),
        sleeps_group(s.scale, Output::silent()),
        tasks_group(s.scale, Output::silent()),
    ]
}

/// The lesson's listings, in order; each is also a sub-command of the
/// binary (the doc line of each is its `--help` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum Listing {
    /// Two CPU loops of 10,000,000 iterations, back to back
    Cpu,
    /// A producer fills a Vec of 10,000,000 items, then a consumer reads it
    ProducerConsumer,
    /// Naps of 2 s, 3 s and 5 s, one after another (10 s)
    Sleeps,
    /// Ten tasks of 0.5 s, one after another (5 s)
    Tasks,
}

impl Listing {
    /// Every listing, in lesson order.
    pub const ALL: [Listing; 4] = [
        Listing::Cpu,
        Listing::ProducerConsumer,
        Listing::Sleeps,
        Listing::Tasks,
    ];
}

/// Run one listing: narrate it, measure its group into `report`.
pub fn run_listing(
    listing: Listing,
    settings: &Settings,
    report: &mut Report,
) -> Result<(), harness::CheckError> {
    let out = report.output();
    let n = settings.count;
    match listing {
        Listing::Cpu => {
            out.say(format!(
                "\n## CPU work, serially\nfunc1 counts to {}, returns; then func2 does the same. \
                 No task waits, so nothing would be gained by switching.",
                thousands(n)
            ));
            report.measure(cpu_group(n), &settings.plan)?;
        }
        Listing::ProducerConsumer => {
            out.say(format!(
                "\n## Producer, then consumer\nThe producer keeps all {} items in a Vec \
                 ({} MB) before the consumer reads the first.",
                thousands(n),
                n * 8 / 1_000_000
            ));
            report.measure(producer_consumer_group(n), &settings.plan)?;
        }
        Listing::Sleeps => {
            out.say("\n## Waits add up: three naps");
            // Measured silently, then shown: the listing's own narration and
            // progress bar are on screen while it runs, not the harness's.
            let rows = Report::new(STAGE, Output::silent())
                .measure(sleeps_group(settings.scale, out), &settings.plan)?;
            report.push_rows(Some("Blocking naps add up"), rows);
        }
        Listing::Tasks => {
            out.say("\n## Waits add up: ten tasks");
            let rows = Report::new(STAGE, Output::silent())
                .measure(tasks_group(settings.scale, out), &settings.plan)?;
            report.push_rows(Some("Blocking tasks add up"), rows);
        }
    }
    Ok(())
}

/// Run the listings given, in order, and record the headline if the naps ran.
pub fn run(
    listings: &[Listing],
    settings: &Settings,
    output: Output,
) -> Result<Report, harness::CheckError> {
    let mut report = Report::new(STAGE, output);
    output.say(format!(
        "Stage 1: serial code. Counts: {}; waits at scale {}.",
        thousands(settings.count),
        settings.scale
    ));
    for &listing in listings {
        run_listing(listing, settings, &mut report)?;
    }
    if let Some(row) = report.row("sleeps", SLEEPS_CASE) {
        let took = row.median_seconds;
        let ours = if settings.scale == Scale::FULL {
            format!("{} (2 s + 3 s + 5 s)", human_seconds(took))
        } else {
            format!(
                "{} (2 s + 3 s + 5 s at scale {})",
                human_seconds(took),
                settings.scale
            )
        };
        report.headline(
            "blocking waits run one after another add up",
            ours,
            // The notes timed only two of the naps one after another.
            Some("quoted, the notes: the 2 s and 3 s naps alone, 5.006 s".into()),
        );
    }
    Ok(report.finish())
}

/// The whole lesson, as `cargo run -p stage-serial` runs it with no
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
    fn every_group_checks_its_result_at_small_counts() {
        let plan = Plan::exactly(0, 1);
        let mut report = Report::new(STAGE, Output::silent());
        for group in [
            cpu_group(1_000),
            producer_consumer_group(1_000),
            sleeps_group(Scale::new(0.001).unwrap(), Output::silent()),
            tasks_group(Scale::new(0.001).unwrap(), Output::silent()),
        ] {
            report.measure(group, &plan).unwrap();
        }
        assert!(report.row("cpu", CPU_CASE).is_some());
        assert!(report.row("tasks", TASKS_CASE).is_some());
    }

    #[test]
    fn benches_see_the_waits_marked_as_waits() {
        let groups = groups(true);
        let names: Vec<&str> = groups.iter().map(|g| g.name()).collect();
        assert_eq!(names, ["cpu", "producer-consumer", "sleeps", "tasks"]);
        let mut groups = groups;
        assert!(!groups[0].cases_mut()[0].is_wait());
        assert!(groups[2].cases_mut()[0].is_wait());
    }

    #[test]
    fn the_lesson_records_its_headline() {
        let settings = Settings {
            count: 1_000,
            scale: Scale::new(0.001).unwrap(),
            plan: Plan::exactly(0, 1),
        };
        let report = run(&Listing::ALL, &settings, Output::silent()).unwrap();
        assert_eq!(report.headlines().len(), 1);
        assert!(report.headlines()[0].ours.ends_with("at scale 0.001)"));
    }
}
