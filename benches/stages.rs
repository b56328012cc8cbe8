//! `cargo bench`: every stage's workloads under criterion, then one summary
//! table of ratios (each case against its baseline).
//!
//! The workloads are not defined here: each stage's `groups(quick)` hands
//! over the very cases its lesson measures, so the lesson's table and these
//! benches time the same code. Cases that measure waiting (the lessons'
//! sleeps) are skipped: sampling a ten-second nap teaches nothing.
//!
//! Criterion runs each case through `iter_custom`, which also lets us keep
//! what it measured (total time, iterations), so the closing table's ratios
//! come from criterion's own runs rather than from a second measurement.

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
];

/// What criterion measured for one case, summed over all its calls.
#[derive(Debug, Default, Clone, Copy)]
struct Total {
    elapsed: Duration,
    runs: u64,
}

impl Total {
    fn mean_seconds(&self) -> Option<f64> {
        (self.runs > 0).then(|| self.elapsed.as_secs_f64() / self.runs as f64)
    }
}

/// One line of the closing table.
struct Line {
    group: String,
    case: String,
    baseline: Option<String>,
    ops: u64,
    total: Total,
}

fn main() {
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
                let mut total = Total::default();
                bench.bench_function(case.name().to_string(), |b| {
                    b.iter_custom(|iters| {
                        let start = Instant::now();
                        for _ in 0..iters {
                            if let Err(e) = case.run_once() {
                                panic!("{group_name}: {e}");
                            }
                        }
                        let elapsed = start.elapsed();
                        total.elapsed += elapsed;
                        total.runs += iters;
                        elapsed
                    })
                });
                lines.push(Line {
                    group: group_name.clone(),
                    case: case.name().to_string(),
                    baseline: case.baseline_name().map(str::to_string),
                    ops: case.ops(),
                    total,
                });
            }
            bench.finish();
        }
    }
    criterion.final_summary();
    print!("{}", summary(&lines));
}

/// The closing table: mean time per run and per op as criterion measured
/// them, and each case's ratio to its baseline in the same group.
fn summary(lines: &[Line]) -> String {
    let means: BTreeMap<(&str, &str), f64> = lines
        .iter()
        .filter_map(|l| Some(((l.group.as_str(), l.case.as_str()), l.total.mean_seconds()?)))
        .collect();
    let case_width = lines.iter().map(|l| l.case.len()).max().unwrap_or(4).max(4);
    let mut out = format!(
        "\nSummary: ratios from criterion's runs  [{}]\n",
        harness::Profile::current()
    );
    let mut last_group = "";
    for line in lines {
        let Some(mean) = line.total.mean_seconds() else {
            continue; // filtered out on the command line
        };
        if line.group != last_group {
            out.push_str(&format!(
                "\n{}\n  {:<case_width$}  {:>10}  {:>10}  {:>8}\n",
                line.group, "case", "per run", "per op", "ratio"
            ));
            last_group = &line.group;
        }
        let ratio = line
            .baseline
            .as_deref()
            .and_then(|b| means.get(&(line.group.as_str(), b)))
            .map_or_else(|| "-".to_string(), |base| format!("{:.2}x", mean / base));
        out.push_str(&format!(
            "  {:<case_width$}  {:>10}  {:>10}  {:>8}\n",
            line.case,
            harness::report::human_seconds(mean),
            harness::report::human_seconds(mean / line.ops as f64),
            ratio
        ));
    }
    out
}
