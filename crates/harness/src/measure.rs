//! How a case is timed: warm up, run several times, keep the median.
//!
//! The median rather than the mean, because the machines these lessons run on
//! are shared and noisy: one run disturbed by a neighbour moves the mean a lot
//! and the median not at all. Ratios between cases come from medians taken in
//! the same run, which is the only comparison a noisy machine supports.
//!
//! A case that takes a millisecond is measured more than a handful of times:
//! timed runs go on until they have filled a minimum time ([`Plan::min_time`]),
//! so a short case's median comes from dozens of runs, not three that one
//! busy neighbour can disturb.

use std::time::{Duration, Instant};

use crate::case::{Case, CheckError};

/// How many times to run each case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Untimed runs before the timed ones (caches, page faults, lazy init).
    pub warmup: usize,
    /// Timed runs at least; the median of all timed runs is the figure.
    pub runs: usize,
    /// Keep taking timed runs (up to [`Plan::MAX_RUNS`]) until they add up
    /// to this much time. Zero means exactly `runs` runs.
    pub min_time: Duration,
}

impl Plan {
    /// The most timed runs a short case gets, however short it is.
    pub const MAX_RUNS: usize = 1_000;

    /// The default: one warm-up, at least five timed runs filling half a
    /// second.
    pub fn full() -> Self {
        Plan {
            warmup: 1,
            runs: 5,
            min_time: Duration::from_millis(500),
        }
    }

    /// For `--quick` (tests, CI, the tour): one warm-up, at least three
    /// timed runs filling a tenth of a second.
    pub fn quick() -> Self {
        Plan {
            warmup: 1,
            runs: 3,
            min_time: Duration::from_millis(100),
        }
    }

    /// Exactly `runs` timed runs after `warmup` untimed ones.
    ///
    /// ```
    /// let plan = harness::Plan::exactly(0, 1);
    /// assert_eq!((plan.warmup, plan.runs, plan.min_time.as_secs()), (0, 1, 0));
    /// ```
    pub fn exactly(warmup: usize, runs: usize) -> Self {
        Plan {
            warmup,
            runs,
            min_time: Duration::ZERO,
        }
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
/// run so a caller can show progress (`n` is the least number of runs; a
/// short case may take more to fill [`Plan::min_time`]).
pub fn measure(
    case: &mut Case,
    plan: &Plan,
    mut on_run: impl FnMut(usize, usize),
) -> Result<Sample, CheckError> {
    let mut samples = measure_group(std::slice::from_mut(case), plan, |_, i, n| on_run(i, n))?;
    Ok(samples.remove(0))
}

/// Time every case of a group according to `plan`, taking their timed runs
/// in turns: one run of each case per round, until each has its runs.
///
/// Why in turns: a neighbour that loads the machine for a few seconds then
/// slows every case a little instead of one case a lot, so the *ratios*
/// between cases, which are what the lessons claim, hold up even when the
/// absolute times do not. `on_run(case, i, n)` is called before the `i`-th
/// timed run of case number `case` (`n`: its least number of runs).
pub fn measure_group(
    cases: &mut [Case],
    plan: &Plan,
    mut on_run: impl FnMut(usize, usize, usize),
) -> Result<Vec<Sample>, CheckError> {
    let mut timings: Vec<Timing> = cases.iter().map(|c| Timing::new(c, plan)).collect();
    for (case, timing) in cases.iter_mut().zip(&timings) {
        for _ in 0..timing.warmup {
            case.run_once()?;
        }
    }
    loop {
        let mut ran = false;
        for (index, (case, timing)) in cases.iter_mut().zip(&mut timings).enumerate() {
            if timing.done() {
                continue;
            }
            on_run(index, timing.times.len() + 1, timing.runs);
            timing.run(case)?;
            ran = true;
        }
        if !ran {
            break;
        }
    }
    Ok(timings.into_iter().map(Timing::into_sample).collect())
}

/// Warm-up runs, least timed runs and least timed total for `case` under
/// `plan`: a [`Case::once`] case runs cold, once, unless the plan asks for
/// an exact number of runs (`--runs N`, [`Plan::exactly`]), which it then
/// honours.
fn schedule(case: &Case, plan: &Plan) -> (usize, usize, Duration) {
    if case.once {
        let runs = if plan.min_time.is_zero() {
            plan.runs
        } else {
            1
        };
        (0, runs.max(1), Duration::ZERO)
    } else {
        (plan.warmup, plan.runs.max(1), plan.min_time)
    }
}

/// The least number of timed runs `case` gets under `plan` (a short case
/// may take more, to fill [`Plan::min_time`]).
pub(crate) fn least_runs(case: &Case, plan: &Plan) -> usize {
    schedule(case, plan).1
}

/// One case's timed runs so far.
struct Timing {
    warmup: usize,
    runs: usize,
    min_time: Duration,
    times: Vec<Duration>,
    timed: Duration,
    rss_bytes: Option<u64>,
}

impl Timing {
    fn new(case: &Case, plan: &Plan) -> Self {
        let (warmup, runs, min_time) = schedule(case, plan);
        Timing {
            warmup,
            runs,
            min_time,
            times: Vec::with_capacity(runs),
            timed: Duration::ZERO,
            rss_bytes: None,
        }
    }

    /// Enough runs, and (for a short case) enough time in them.
    fn done(&self) -> bool {
        let n = self.times.len();
        n >= self.runs && (self.timed >= self.min_time || n >= Plan::MAX_RUNS)
    }

    fn run(&mut self, case: &mut Case) -> Result<(), CheckError> {
        let start = Instant::now();
        let outcome = case.run_once()?;
        let elapsed = start.elapsed();
        self.times.push(elapsed);
        self.timed += elapsed;
        if let Some(bytes) = outcome.rss_bytes {
            self.rss_bytes = Some(self.rss_bytes.map_or(bytes, |b| b.max(bytes)));
        }
        Ok(())
    }

    fn into_sample(mut self) -> Sample {
        self.times.sort_unstable();
        Sample {
            median: median(&self.times),
            min: self.times[0],
            max: self.times[self.times.len() - 1],
            runs: self.times.len(),
            rss_bytes: self.rss_bytes,
        }
    }
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
    fn once_cases_take_exactly_the_runs_asked_for() {
        let counter = std::rc::Rc::new(std::cell::Cell::new(0u64));
        let seen = counter.clone();
        let mut case = Case::new("nap", 1, move || {
            seen.set(seen.get() + 1);
            1u64
        })
        .once();
        let sample = measure(&mut case, &Plan::exactly(1, 3), |_, _| {}).unwrap();
        // --runs 3: three timed runs, still no warm-up.
        assert_eq!((sample.runs, counter.get()), (3, 3));
    }

    #[test]
    fn short_cases_run_until_they_fill_the_minimum_time() {
        let mut case = Case::new("quick", 1, || {
            std::thread::sleep(Duration::from_millis(1));
            1u64
        });
        let plan = Plan {
            min_time: Duration::from_millis(20),
            ..Plan::exactly(0, 3)
        };
        let sample = measure(&mut case, &plan, |_, _| {}).unwrap();
        assert!(sample.runs > 3, "{} runs", sample.runs);
        assert!(sample.runs <= 20, "{} runs", sample.runs);
        let exact = measure(&mut case, &Plan::exactly(0, 3), |_, _| {}).unwrap();
        assert_eq!(exact.runs, 3);
    }

    #[test]
    fn a_wrong_result_stops_the_measurement() {
        let mut case = Case::new("short", 10, || 9u64).expect(10);
        let err = measure(&mut case, &Plan::quick(), |_, _| {}).unwrap_err();
        assert_eq!(err.case, "short");
        assert!(err.to_string().contains("did not do all its work"));
    }

    #[test]
    fn a_group_takes_its_runs_in_turns() {
        let order = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let case = |name: &'static str| {
            let order = order.clone();
            Case::new(name, 1, move || {
                order.borrow_mut().push(name);
                1u64
            })
        };
        let mut cases = [case("a"), case("b")];
        let samples = measure_group(&mut cases, &Plan::exactly(1, 2), |_, _, _| {}).unwrap();
        assert_eq!(samples.len(), 2);
        // Warm-ups first, then one timed run of each case per round.
        assert_eq!(*order.borrow(), ["a", "b", "a", "b", "a", "b"]);
    }
}
