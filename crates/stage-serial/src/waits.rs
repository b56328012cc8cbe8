//! Waiting, done serially: every wait blocks the only thread, so waits add up.
//!
//! Two listings. Three naps of 2 s, 3 s and 5 s take 10 s one after another;
//! ten tasks of 0.5 s each take 5 s. Nothing else can run while a nap blocks —
//! which is exactly the time stage 4's hub reclaims by switching to another
//! greenlet whenever one waits (10 s becomes ~5 s, 5 s becomes ~0.5 s).
//!
//! Every duration is multiplied by a [`Scale`], so tests and `--quick` runs
//! wait a hundredth of the notes' time and still show the same arithmetic.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use harness::report::human_seconds;

use crate::Transcript;

/// A factor applied to every wait: `1` reproduces the notes' durations,
/// `0.01` is what `--quick` uses.
///
/// ```
/// use stage_serial::Scale;
/// let s: Scale = "0.5".parse().unwrap();
/// assert_eq!(s.of(2.0).as_millis(), 1000);
/// assert!("0".parse::<Scale>().is_err());
/// assert!("fast".parse::<Scale>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale(f64);

impl Scale {
    /// The notes' own durations.
    pub const FULL: Scale = Scale(1.0);
    /// A hundredth of them: the whole lesson waits about 0.15 s.
    pub const QUICK: Scale = Scale(0.01);
    /// The largest factor accepted (ten times the notes' 10 s is already 100 s).
    pub const MAX: f64 = 10.0;

    /// A scale of `factor`, which must be greater than 0 and at most
    /// [`Scale::MAX`].
    pub fn new(factor: f64) -> Result<Scale, ScaleError> {
        if factor.is_finite() && factor > 0.0 && factor <= Scale::MAX {
            Ok(Scale(factor))
        } else {
            Err(ScaleError(factor.to_string()))
        }
    }

    /// The factor itself.
    pub fn factor(self) -> f64 {
        self.0
    }

    /// `seconds` of the notes' time, scaled.
    pub fn of(self, seconds: f64) -> Duration {
        Duration::from_secs_f64(seconds * self.0)
    }
}

impl Default for Scale {
    fn default() -> Self {
        Scale::FULL
    }
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Scale {
    type Err = ScaleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let factor: f64 = s.trim().parse().map_err(|_| ScaleError(s.to_string()))?;
        Scale::new(factor)
    }
}

/// A scale that is not a number in `(0, 10]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleError(String);

impl fmt::Display for ScaleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "scale `{}` is not a number greater than 0 and at most {} \
             (1 waits the notes' full durations, 0.01 a hundredth of them)",
            self.0,
            Scale::MAX
        )
    }
}

impl std::error::Error for ScaleError {}

/// One nap of the first listing: a name and the notes' duration in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nap {
    /// What the nap is called in the listing's output.
    pub name: &'static str,
    /// How long it sleeps at scale 1.
    pub seconds: f64,
}

/// The notes' three naps: 2 s, 3 s and 5 s.
pub const NAPS: [Nap; 3] = [
    Nap {
        name: "short nap",
        seconds: 2.0,
    },
    Nap {
        name: "middle nap",
        seconds: 3.0,
    },
    Nap {
        name: "long nap",
        seconds: 5.0,
    },
];

/// How many tasks the second listing runs.
pub const TASKS: u64 = 10;

/// How long each of those tasks waits at scale 1.
pub const TASK_SECONDS: f64 = 0.5;

/// Block the thread for `duration`, calling `tick(slept_so_far)` every tenth
/// of a second or so (to move a progress bar). It is still one blocking wait
/// from the program's point of view: nothing else runs meanwhile.
pub fn block_for(duration: Duration, mut tick: impl FnMut(Duration)) {
    const SLICE: Duration = Duration::from_millis(100);
    let start = Instant::now();
    loop {
        let slept = start.elapsed();
        if slept >= duration {
            tick(duration);
            return;
        }
        std::thread::sleep((duration - slept).min(SLICE));
        tick(start.elapsed().min(duration));
    }
}

// ANCHOR: serial_sleeps
/// The first listing: three naps, one after another. Returns how many naps
/// finished (3), which the harness checks.
pub fn sleeps(scale: Scale, t: &Transcript) -> u64 {
    let total: f64 = NAPS.iter().map(|nap| nap.seconds).sum();
    t.say(format!(
        "Three naps of 2 s, 3 s and 5 s, one after another: this takes {} \
         (the notes' {total} s at scale {scale}).",
        human_seconds(scale.of(total).as_secs_f64()),
    ));
    let bar = t.output().progress(millis(scale.of(total)), "slept (ms)");
    let mut done_before = Duration::ZERO;
    let mut finished = 0;
    for nap in NAPS {
        t.say(format!("{}: falls asleep for {} s", nap.name, nap.seconds));
        block_for(scale.of(nap.seconds), |slept| {
            bar.set_position(millis(done_before + slept));
        });
        done_before += scale.of(nap.seconds);
        t.say(format!("{}: wakes up", nap.name));
        finished += 1;
    }
    bar.finish_and_clear();
    finished
}
// ANCHOR_END: serial_sleeps

// ANCHOR: serial_tasks
/// The second listing: ten tasks that each wait half a second, run in turn.
/// Returns how many tasks finished (10).
pub fn tasks(scale: Scale, t: &Transcript) -> u64 {
    t.say(format!(
        "{TASKS} tasks of {TASK_SECONDS} s each, one after another: this takes {} \
         (the notes' {} s at scale {scale}).",
        human_seconds(scale.of(TASK_SECONDS * TASKS as f64).as_secs_f64()),
        TASK_SECONDS * TASKS as f64,
    ));
    let bar = t.output().progress(TASKS, "tasks done");
    let mut finished = 0;
    for i in 0..TASKS {
        block_for(scale.of(TASK_SECONDS), |_| {});
        t.say(format!("task {i} done"));
        finished += 1;
        bar.set_position(finished);
    }
    bar.finish_and_clear();
    finished
}
// ANCHOR_END: serial_tasks

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naps_wake_in_the_order_they_fell_asleep() {
        let t = Transcript::silent();
        assert_eq!(sleeps(Scale::new(0.001).unwrap(), &t), 3);
        let lines = t.lines();
        let events: Vec<&str> = lines[1..].iter().map(String::as_str).collect();
        assert_eq!(
            events,
            [
                "short nap: falls asleep for 2 s",
                "short nap: wakes up",
                "middle nap: falls asleep for 3 s",
                "middle nap: wakes up",
                "long nap: falls asleep for 5 s",
                "long nap: wakes up",
            ]
        );
    }

    #[test]
    fn serial_waits_take_at_least_their_sum() {
        let start = Instant::now();
        assert_eq!(
            tasks(Scale::new(0.002).unwrap(), &Transcript::silent()),
            TASKS
        );
        // 10 x 0.5 s x 0.002 = 10 ms: waits add up when nothing overlaps them.
        assert!(start.elapsed() >= Duration::from_millis(10));
    }

    #[test]
    fn scales_outside_the_range_are_refused_with_a_reason() {
        for bad in ["0", "-1", "11", "NaN", "inf", "", "abc"] {
            let err = bad.parse::<Scale>().unwrap_err();
            assert!(err.to_string().contains("greater than 0"), "{bad}: {err}");
        }
        assert_eq!("10".parse::<Scale>().unwrap().factor(), 10.0);
    }

    #[test]
    fn blocking_reports_its_end_exactly() {
        let mut last = Duration::ZERO;
        block_for(Duration::from_millis(3), |slept| last = slept);
        assert_eq!(last, Duration::from_millis(3));
    }
}
