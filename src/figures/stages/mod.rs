//! Each stage's part in `figures`: how to measure it, and which tables,
//! values, charts and timelines to make from what it measured.
//!
//! A stage is one [`Stage`] in [`ALL`]: `run` measures (once, in release,
//! showing progress) and returns the stage's [`Results`]; `make` turns the
//! results on disk into what its chapter includes. The two are apart so
//! that `make` can rebuild every picture from committed results, and so a
//! chart that mixes stages finds each one's figures in its results file.

mod cores;
mod echo;
mod echo_cache;
mod generator;
mod greenlet;
mod hub;
mod serial;

use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};

use harness::{CommonArgs, Output, Report};

use super::machine::Machine;
use super::results::Results;
use super::snippets::Out;

/// One stage's part in `figures`.
pub struct Stage {
    /// Its name, as `--only` and the results file (`<name>.json`) spell it.
    pub name: &'static str,
    /// What running it involves (shown in the progress line).
    pub about: &'static str,
    /// Measure the stage; the results are written to `<DIR>/<name>.json`.
    pub run: fn(&Run) -> Result<Results, Box<dyn Error>>,
    /// Make the stage's tables, values, charts and timelines from results.
    pub make: fn(&Made<'_>) -> Result<(), Box<dyn Error>>,
}

/// Every stage, in lesson order. A new stage adds one line here and a
/// module beside this one.
pub const ALL: &[Stage] = &[
    serial::STAGE,
    generator::STAGE,
    greenlet::STAGE,
    hub::STAGE,
    echo::STAGE,
    echo_cache::STAGE,
    cores::STAGE,
];

/// What a stage's `run` gets.
#[derive(Debug)]
pub struct Run {
    /// Quick scale (tests, trying things out) rather than the lesson's.
    pub quick: bool,
    /// The figures folder: traces for timelines are written below it.
    pub dir: PathBuf,
    /// The machine, recorded in the results.
    pub machine: Machine,
}

impl Run {
    /// The options a stage's lesson would get from its command line.
    pub fn common(&self) -> CommonArgs {
        CommonArgs {
            quick: self.quick,
            ..CommonArgs::default()
        }
    }

    /// Where narration goes: nowhere, but progress bars show.
    pub fn output(&self) -> Output {
        Output::quiet()
    }

    /// The results of `report`.
    pub fn results(&self, report: &Report) -> Results {
        Results::from_report(report, &self.machine, self.quick)
    }

    /// A stage's own folder under the figures folder (created).
    pub fn folder(&self, name: &str) -> Result<PathBuf, Box<dyn Error>> {
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(dir)
    }

    /// How many times to repeat a measurement whose spread the book states.
    pub fn repeats(&self) -> usize {
        if self.quick {
            2
        } else {
            9
        }
    }
}

/// What a stage's `make` gets: every results file found.
#[derive(Debug)]
pub struct Made<'a> {
    /// The figures folder.
    pub dir: &'a Path,
    /// Results by stage name.
    pub results: &'a BTreeMap<String, Results>,
}

impl Made<'_> {
    /// The results of `stage`, or an error saying to measure it.
    pub fn get(&self, stage: &str) -> Result<&Results, String> {
        self.results.get(stage).ok_or_else(|| {
            format!(
                "no results for {stage} in {}: run `figures` without --only, or with --only {stage}",
                self.dir.display()
            )
        })
    }

    /// The snippets of the folder `name`.
    pub fn out(&self, name: &str) -> Result<Out, Box<dyn Error>> {
        Out::new(&self.dir.join(name))
    }
}

/// The ratio of one row's `ratio` field, for the values of the book.
pub(crate) fn ratio_of(row: &serde_json::Value) -> Result<f64, String> {
    super::results::num(row, "ratio")
}

/// Median, min and max of `xs` (not empty).
pub(crate) fn spread(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    let median = xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN);
    let lo = xs.first().copied().unwrap_or(f64::NAN);
    let hi = xs.last().copied().unwrap_or(f64::NAN);
    (median, lo, hi)
}
