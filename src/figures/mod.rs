//! `cargo run --release -- figures [DIR]`: run the lessons once and write
//! every figure the book shows into DIR (`docs/src/figures/` by default).
//!
//! The book states no figure by hand: every time, ratio, rate, size,
//! percentage and instruction count in a chapter is included from a file
//! this command wrote, recorded on one machine, which `machine.md` names
//! (with each stage's own run when some were recorded again with
//! `--only`). A reader who runs it gets
//! the book with their own machine's figures (`mdbook build docs`).
//!
//! For each stage (in [`stages::ALL`]) it runs the lesson at full scale,
//! quietly but with progress bars, and writes `DIR/<stage>.json`: the
//! report's rows and headlines, the machine, the scale. Then, from the
//! results files in DIR, it writes what the chapters include: markdown
//! tables (`DIR/<folder>/<group>.md`), values to put in a sentence
//! (`DIR/<folder>/values.md`, one anchor each), SVG charts drawn with
//! plotters, and SVG timelines drawn from trace files it recorded
//! (`DIR/<folder>/<name>.trace.json`, which open in Perfetto too).
//!
//! `--quick` runs everything at quick scale (seconds; CI writes into a
//! temporary folder to check that every figure is still made). `--only
//! STAGE` measures one stage again and remakes every figure from the
//! results on disk; `--remake` measures nothing and remakes them all (after
//! a change to a chart, say).
//!
//! # How a chapter gets a figure
//!
//! 1. Make sure the stage measures it: a row of its report (a case of a
//!    group), a headline, or something in `Results::extra`.
//! 2. In the stage's file under `src/figures/stages/`, add it in `make`:
//!    `out.table("group", &res.group("group"))` for a table,
//!    `out.value("name", text)` for a value (format it with
//!    `snippets::{nanos, seconds, ratio, bytes, count}`),
//!    `out.transcript("name", text)` for what a listing printed,
//!    `charts::bars` / `charts::lines` for a chart, `capture` (in `run`)
//!    and `timelines::draw` (in `make`) for a timeline.
//! 3. Run `cargo run --release -- figures --only <stage>` and commit what
//!    changed under `docs/src/figures/`.
//! 4. In the chapter, include it: a table on a line of its own,
//!    `{{#include figures/<folder>/<group>.md}}`; a value inside a
//!    sentence, `{{#include figures/<folder>/values.md:<name>}}`; a
//!    transcript inside a ```` ```text ```` block,
//!    `{{#include figures/<folder>/<name>.txt}}`; a picture,
//!    `![what it shows](figures/<folder>/<name>.svg)`. A figure quoted
//!    from the notes that no stage records goes in `<q>…</q>`.
//!
//! `tests/book.rs` and `tests/book_figures.rs` hold the book to this:
//! every include resolves, every SVG here is shown by a chapter, and no
//! chapter types a measured figure (a time, a ratio, a size, a rate, a
//! percentage or an instruction count) outside an include, except the
//! inputs and constants `tests/book_figures.rs` lists, each with where it
//! comes from.
//!
//! # Adding a stage
//!
//! Write `src/figures/stages/<stage>.rs` with a `pub const STAGE: Stage`
//! (its `run` measures and returns `Results`, its `make` writes the
//! chapter's figures, into a folder of its own), and add it to
//! [`stages::ALL`]. `figures --quick` in `tests/figures.rs` then makes it
//! too, so CI keeps it working.
//!
//! # Layout
//!
//! - [`stages`]: each stage's part: what to run, what to make.
//! - [`results`]: the results file of a stage.
//! - [`machine`]: the machine the results name.
//! - [`snippets`]: markdown tables and values for the chapters.
//! - [`charts`]: bar and line charts (plotters, SVG).
//! - [`capture`]: recording a listing's trace for a timeline.
//! - [`timelines`]: drawing a trace as lanes over time (plotters, SVG).

pub mod capture;
pub mod charts;
pub mod machine;
pub mod results;
pub mod snippets;
pub mod stages;
pub mod timelines;

use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Instant;

use charts::Bar;
use machine::Machine;
use results::{num, Results};
use stages::{Made, Run, ALL};

/// `figures`'s options.
#[derive(Debug, clap::Args)]
pub struct FiguresArgs {
    /// Where to write [default: the book's docs/src/figures]
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Every lesson at quick scale (seconds, not minutes): to check that
    /// every figure is still made, not to record them.
    #[arg(long)]
    pub quick: bool,

    /// Measure only these stages (repeatable); every figure is then made
    /// from the results files in DIR.
    #[arg(long, value_name = "STAGE", value_parser = stage_names())]
    pub only: Vec<String>,

    /// Measure nothing: make every table, value, chart and timeline again
    /// from the results and traces already in DIR.
    #[arg(long, conflicts_with_all = ["quick", "only"])]
    pub remake: bool,
}

fn stage_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(ALL.iter().map(|s| s.name))
}

/// The book's figures folder.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/src/figures")
}

/// Run `figures`: measure, then make every figure. Progress goes to stderr.
pub fn run(args: &FiguresArgs) -> Result<(), Box<dyn Error>> {
    let dir = args.dir.clone().unwrap_or_else(default_dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    if !harness::Profile::current().optimized && !args.quick {
        eprintln!(
            "figures: this is a debug build: its figures would not be representative. \
             Run `cargo run --release -- figures`, or add --quick to only check that \
             every figure is made."
        );
    }
    let mut machine = Machine::here();
    let chosen: Vec<_> = ALL
        .iter()
        .filter(|_| !args.remake)
        .filter(|s| args.only.is_empty() || args.only.iter().any(|o| o == s.name))
        .collect();
    let started = Instant::now();
    let mut measured = Vec::new();
    for (i, stage) in chosen.iter().enumerate() {
        eprintln!(
            "figures [{}/{}] {}: {} ...",
            i + 1,
            chosen.len(),
            stage.name,
            stage.about
        );
        let t = Instant::now();
        let run = Run {
            quick: args.quick,
            dir: dir.clone(),
            machine: machine.clone(),
        };
        let results = (stage.run)(&run).map_err(|e| format!("{}: {e}", stage.name))?;
        eprintln!("  done in {:.0} s", t.elapsed().as_secs_f64());
        measured.push(results);
    }
    machine.load_after = machine::load_average();
    for mut results in measured {
        results.machine = machine.clone();
        results.save(&dir)?;
    }
    eprintln!("figures: making tables, values, charts and timelines ...");
    make_all(&dir)?;
    eprintln!(
        "figures: done in {:.0} s; written to {}",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}

/// Make every figure from the results files in `dir`.
pub fn make_all(dir: &Path) -> Result<(), Box<dyn Error>> {
    let mut results = BTreeMap::new();
    for stage in ALL {
        if let Some(r) = Results::load(dir, stage.name)? {
            results.insert(stage.name.to_string(), r);
        }
    }
    let made = Made {
        dir,
        results: &results,
    };
    for stage in ALL {
        if results.contains_key(stage.name) {
            (stage.make)(&made).map_err(|e| format!("{}: {e}", stage.name))?;
        }
    }
    shared(&made)?;
    Ok(())
}

/// What mixes stages: the machine line, and switching against serial.
fn shared(m: &Made<'_>) -> Result<(), Box<dyn Error>> {
    if !m.results.is_empty() {
        let stages = m
            .results
            .iter()
            .map(|(name, r)| (name.as_str(), &r.machine));
        let mut text = machine::book_text(stages);
        if m.results.values().any(|r| r.scale == "quick") {
            text.push_str(" They were made at quick scale, to check the machinery, not to quote.");
        }
        std::fs::write(m.dir.join("machine.md"), text + "\n")?;
    }
    let (Ok(generator), Ok(greenlet), Ok(hub)) = (
        m.get("stage-generator"),
        m.get("stage-greenlet"),
        m.get("stage-hub"),
    ) else {
        return Ok(());
    };
    let ratio = |row: &serde_json::Value| num(row, "ratio");
    let label = snippets::ratio;
    // CPython's rows: measured here, or quoted when python3 could not.
    let python = |row: &serde_json::Value, what: &str| -> Result<Bar, String> {
        let r = ratio(row)?;
        Ok(if results::measured_here(row) {
            Bar::python(what, r, label(r))
        } else {
            Bar::quoted(what, r, label(r))
        })
    };
    let gen_cpu = ratio(generator.row("cpu", stage_generator::INTERLEAVED_CASE)?)?;
    let gen_py = generator.cpython(
        "cpu",
        &stage_generator::cpython(stage_generator::INTERLEAVED_CASE),
    )?;
    let gl_cpu =
        ratio(greenlet.row("switching", stage_greenlet::cost::SWITCH_PER_ITERATION_CASE)?)?;
    let gl_py = greenlet.cpython("switching", stage_greenlet::cost::CPYTHON_SWITCHING)?;
    let naps = ratio(hub.row("sleeps", "hub: the three naps overlap")?)?;
    let tasks = ratio(hub.row("tasks", "hub: 10 tasks spawned, then joined")?)?;
    let bars = [
        Bar::measured(
            "generator: CPU loops, a switch per iteration",
            gen_cpu,
            label(gen_cpu),
        ),
        python(gen_py, "CPython generator, the same")?,
        Bar::measured(
            "greenlet: CPU loops, a switch per iteration",
            gl_cpu,
            label(gl_cpu),
        ),
        python(gl_py, "CPython greenlet, the same")?,
        Bar::measured("hub: three naps in greenlets", naps, label(naps)),
        Bar::measured("hub: ten tasks spawned, then joined", tasks, label(tasks)),
    ];
    charts::bars(
        &m.dir.join("switching-vs-serial.svg"),
        "Time against the same work done serially (1 = as fast; right of it: slower)",
        "times the serial time (log scale)",
        1.0,
        &bars,
    )?;
    Ok(())
}
