//! `cargo bench`: every stage's workloads under criterion, then one summary
//! table of ratios (each case against its baseline).
//!
//! The workloads are not defined here: each stage's `groups(quick)` hands
//! over the very cases its lesson measures, so the lesson's table and these
//! benches time the same code. Cases that measure waiting (the lessons'
//! sleeps) are skipped: sampling a ten-second nap teaches nothing.
//!
//! Criterion runs each case through `iter_custom`, which also lets us keep
//! what it measured, so the closing table's ratios come from criterion's own
//! samples rather than from a second measurement. Criterion first warms up
//! with a doubling number of runs, then takes its samples, all with the same
//! number of runs (flat sampling); the table uses only those samples, and
//! their median, as the lesson tables do.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use harness::Group;

/// A stage's benchmark groups, as its crate exposes them.
type Groups = fn(bool) -> Vec<Group>;

/// Every stage, in lesson order. A new stage adds one line here.
const STAGES: &[(&str, Groups)] = &[
    ("stage-serial", stage_serial::groups),
    ("stage-generator", stage_generator::groups),
    ("stage-greenlet", stage_greenlet::groups),
    ("stage-hub", stage_hub::groups),
    ("stage-cores", stage_cores::groups),
];

/// Every call criterion made to one case: how many runs, and how long they took.
#[derive(Debug, Default, Clone)]
struct Calls(Vec<(u64, Duration)>);

impl Calls {
    /// The median time of one run over criterion's samples.
    ///
    /// The samples are the calls at the end that share one run count; the
    /// warm-up calls before them double their count each time, so they are
    /// left out (only the last one can share the samples' count, and it ran
    /// warm). Under `--quick` or `--test` criterion samples differently, and
    /// this falls back to its last call.
    fn median_seconds(&self) -> Option<f64> {
        let &(last_iters, _) = self.0.last()?;
        let mut per_run: Vec<f64> = self
            .0
            .iter()
            .rev()
            .take_while(|&&(iters, _)| iters == last_iters)
            .map(|&(iters, elapsed)| elapsed.as_secs_f64() / iters.max(1) as f64)
            .collect();
        per_run.sort_by(f64::total_cmp);
        let mid = per_run.len() / 2;
        Some(if per_run.len() % 2 == 1 {
            per_run[mid]
        } else {
            (per_run[mid - 1] + per_run[mid]) / 2.0
        })
    }
}

/// One line of the closing table.
struct Line {
    group: String,
    case: String,
    baseline: Option<String>,
    ops: u64,
    calls: Calls,
}

fn main() -> std::process::ExitCode {
    // Stage 5's process case re-executes this program as its workers.
    if let Some(code) = stage_cores::main_if_worker() {
        return code;
    }
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3))
        .nresamples(10_000)
        .configure_from_args();
    let mut lines = Vec::new();
    for &(stage, groups) in STAGES {
        for mut group in groups(false) {
            let group_name = format!("{stage}/{}", group.name());
            let mut bench = criterion.benchmark_group(&group_name);
            // Each run takes milliseconds to a quarter second: the same number
            // of runs per sample keeps `cargo bench` to a few minutes.
            bench.sampling_mode(SamplingMode::Flat);
            for case in group.cases_mut() {
                if case.is_wait() {
                    continue;
                }
                let mut calls = Calls::default();
                bench.bench_function(case.name().to_string(), |b| {
                    b.iter_custom(|iters| {
                        let start = Instant::now();
                        for _ in 0..iters {
                            // Every run is checked, here as in the lessons.
                            if let Err(e) = case.run_once() {
                                panic!("{group_name}: {e}");
                            }
                        }
                        let elapsed = start.elapsed();
                        calls.0.push((iters, elapsed));
                        elapsed
                    })
                });
                lines.push(Line {
                    group: group_name.clone(),
                    case: case.name().to_string(),
                    baseline: case.baseline_name().map(str::to_string),
                    ops: case.ops(),
                    calls,
                });
            }
            bench.finish();
        }
    }
    criterion.final_summary();
    print!("{}", summary(&lines));
    std::process::ExitCode::SUCCESS
}

/// The closing table: median time per run and per op from criterion's
/// samples, and each case's ratio to its baseline in the same group (per op,
/// as the lesson tables compute it).
fn summary(lines: &[Line]) -> String {
    let per_op_of: BTreeMap<(&str, &str), f64> = lines
        .iter()
        .filter_map(|l| {
            let median = l.calls.median_seconds()?;
            Some(((l.group.as_str(), l.case.as_str()), median / l.ops as f64))
        })
        .collect();
    let case_width = lines.iter().map(|l| l.case.len()).max().unwrap_or(4).max(4);
    let mut out = format!(
        "\nSummary: medians and ratios from criterion's samples  [{}]\n\
         (per run: the median of criterion's samples, one run of the case's workload; per op:\n \
         per run / the operations one run performs; ratio: per op over the baseline's, the case\n \
         it is compared with in the same group)\n",
        harness::Profile::current()
    );
    let mut last_group = "";
    for line in lines {
        let Some(median) = line.calls.median_seconds() else {
            continue; // filtered out on the command line
        };
        if line.group != last_group {
            out.push_str(&format!(
                "\n{}\n  {:<case_width$}  {:>10}  {:>10}  {:>8}\n",
                line.group, "case", "per run", "per op", "ratio"
            ));
            last_group = &line.group;
        }
        let per_op = median / line.ops as f64;
        let ratio = line
            .baseline
            .as_deref()
            .and_then(|b| per_op_of.get(&(line.group.as_str(), b)))
            .filter(|&&base| base > 0.0)
            .map_or_else(|| "-".to_string(), |base| format!("{:.2}x", per_op / base));
        out.push_str(&format!(
            "  {:<case_width$}  {:>10}  {:>10}  {:>8}\n",
            line.case,
            harness::report::human_seconds(median),
            harness::report::human_seconds(per_op),
            ratio
        ));
    }
    out
}
