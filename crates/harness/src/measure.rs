//! How a case is timed: warm up, run several times, keep the median.
//!
//! The median rather than the mean, because the machines these lessons run on
//! are shared and noisy: one run disturbed by a neighbour moves the mean a lot
//! and the median not at all. Ratios between cases come from medians taken in
//! the same run, which is the only comparison a noisy machine supports.

use std::time::{Duration, Instant};

use crate::case::{Case, CheckError};

/// How many times to run each case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Untimed runs before the timed ones (caches, page faults, lazy init).
    pub warmup: usize,
    /// Timed runs; the median of these is the figure.
    pub runs: usize,
}

impl Plan {
    /// The default: one warm-up, five timed runs.
    pub fn full() -> Self {
        Plan { warmup: 1, runs: 5 }
    }

    /// For `--quick` (tests, CI, the tour): one warm-up, three timed runs.
    pub fn quick() -> Self {
        Plan { warmup: 1, runs: 3 }
    }
}

impl Default for Plan {
    fn default() -> Self {
        Plan::full()
    }
}

/// What timing one case produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Median wall-clock time of one run.
    pub median: Duration,
    /// Fastest run.
    pub min: Duration,
    /// Slowest run.
    pub max: Duration,
    /// Timed runs taken.
    pub runs: usize,
    /// Largest resident-memory figure any run reported.
    pub rss_bytes: Option<u64>,
}

/// Time `case` according to `plan`, calling `on_run(i, n)` before each timed
/// run so a caller can show progress.
pub fn measure(
    case: &mut Case,
    plan: &Plan,
    mut on_run: impl FnMut(usize, usize),
) -> Result<Sample, CheckError> {
    let (warmup, runs) = if case.once {
        (0, 1)
    } else {
        (plan.warmup, plan.runs.max(1))
    };
    for _ in 0..warmup {
        case.run_once()?;
    }
    let mut times = Vec::with_capacity(runs);
    let mut rss_bytes: Option<u64> = None;
    for i in 0..runs {
        on_run(i + 1, runs);
        let start = Instant::now();
        let outcome = case.run_once()?;
        times.push(start.elapsed());
        if let Some(bytes) = outcome.rss_bytes {
            rss_bytes = Some(rss_bytes.map_or(bytes, |b| b.max(bytes)));
        }
    }
    times.sort_unstable();
    Ok(Sample {
        median: median(&times),
        min: times[0],
        max: times[times.len() - 1],
        runs,
        rss_bytes,
    })
}

/// The median of sorted, non-empty durations (the mean of the middle two for
/// an even count).
fn median(sorted: &[Duration]) -> Duration {
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[ms(1), ms(2), ms(9)]), ms(2));
        assert_eq!(median(&[ms(1), ms(3), ms(5), ms(100)]), ms(4));
    }

    #[test]
    fn once_cases_skip_warmup_and_run_one_time() {
        let counter = std::rc::Rc::new(std::cell::Cell::new(0u64));
        let seen = counter.clone();
        let mut case = Case::new("sleepy", 1, move || {
            seen.set(seen.get() + 1);
            seen.get()
        })
        .once();
        let sample = measure(&mut case, &Plan::full(), |_, _| {}).unwrap();
        assert_eq!(sample.runs, 1);
        assert_eq!(counter.get(), 1);
    }

    #[test]
    fn a_wrong_result_stops_the_measurement() {
        let mut case = Case::new("short", 10, || 9u64).expect(10);
        let err = measure(&mut case, &Plan::quick(), |_, _| {}).unwrap_err();
        assert_eq!(err.case, "short");
        assert!(err.to_string().contains("did not do all its work"));
    }
}
