//! The blocking detector's stopwatch: how long a spawned greenlet held the
//! hub, from the switch into it to the switch back.
//!
//! Every run of a spawned greenlet is timed, so this sits on the hub's
//! hottest path: an echo server times one run per message. Three choices
//! keep it cheap:
//!
//! - A reading is `u64` nanoseconds, so a run's length is one subtraction.
//!   `Instant - Instant` checks and normalises two `timespec`s into a
//!   `Duration`: about fifty instructions, as much as the rest of the
//!   detector together.
//! - Which clock: `CLOCK_MONOTONIC` reads a hardware counter (the
//!   time-stamp counter, on most x86 machines) and scales it;
//!   `CLOCK_MONOTONIC_COARSE` returns the time the kernel noted at its last
//!   timer tick, several times cheaper but only as fine as a tick (4 ms on
//!   a kernel with `HZ=250`). A length read off the coarse
//!   clock is off by less than one tick either way, so it is used only
//!   when the threshold is at least [`COARSE_TICKS`] ticks (the default
//!   threshold of 100 ms is, on kernels with `HZ` of 250 and up): the error
//!   is then under 4 % of the threshold. Smaller thresholds, such as the
//!   lesson's scaled-down ones and the tests', get the precise clock. While
//!   the detector is off runs are still timed, on the coarse clock: a
//!   greenlet may turn it on during its own run, and is judged at the end
//!   of that run by the threshold it set.
//! - Only spawned greenlets' runs read a clock: the main greenlet's, or any
//!   other the hub did not spawn, are not judged (their stretches between
//!   waits are the program, not a greenlet the hub scheduled). The end of
//!   one run is the start of the next, so back-to-back runs read the clock
//!   once each.

use std::sync::OnceLock;
use std::time::Duration;

use nix::time::{clock_getres, clock_gettime, ClockId};

use super::diag;

/// The coarse clock is used when the threshold is at least this many of
/// its ticks: what it can get wrong, under a tick, is then under 4 % of
/// the threshold.
pub(crate) const COARSE_TICKS: u32 = 25;

/// One reading of the detector's clock, which remembers which clock it was
/// read off: a run is timed on one clock from start to end, even if the
/// threshold, and with it the clock it calls for, changes meanwhile.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reading {
    nanos: u64,
    coarse: bool,
}

/// A run that held the hub past the threshold.
#[derive(Debug, Clone, Copy)]
pub(super) struct Overrun {
    pub(super) held: Duration,
    pub(super) threshold: Duration,
}

impl Reading {
    /// The start of a run: `earlier` (the end of the run before) if it was
    /// read off the clock the threshold now calls for, else a new reading
    /// of that clock.
    pub(super) fn start(earlier: Option<Reading>) -> Reading {
        let coarse = diag::blocking_threshold().is_none_or(|t| t >= coarse_from());
        match earlier {
            Some(reading) if reading.coarse == coarse => reading,
            _ => Reading::now(coarse),
        }
    }

    /// The end of the run that began at `self`, on the same clock, and the
    /// run's length if it held the hub past the threshold as it is now (a
    /// greenlet may set it during its own run, and is judged by it).
    pub(super) fn stop(self) -> (Reading, Option<Overrun>) {
        let end = Reading::now(self.coarse);
        (end, overrun(self, end, diag::blocking_threshold()))
    }

    fn now(coarse: bool) -> Reading {
        Reading {
            nanos: read(coarse),
            coarse,
        }
    }
}

/// The run from `start` to `end`, if it was longer than `threshold`.
fn overrun(start: Reading, end: Reading, threshold: Option<Duration>) -> Option<Overrun> {
    let threshold = threshold?;
    let held = end.nanos.saturating_sub(start.nanos);
    (u128::from(held) > threshold.as_nanos()).then(|| Overrun {
        held: Duration::from_nanos(held),
        threshold,
    })
}

/// The smallest threshold the coarse clock serves ([`COARSE_TICKS`] of its
/// ticks), asked of the kernel once per process; `Duration::MAX` (never)
/// if the kernel has no coarse clock.
fn coarse_from() -> Duration {
    static FROM: OnceLock<Duration> = OnceLock::new();
    *FROM.get_or_init(|| match clock_getres(ClockId::CLOCK_MONOTONIC_COARSE) {
        Ok(tick) => Duration::from(tick)
            .checked_mul(COARSE_TICKS)
            .unwrap_or(Duration::MAX),
        Err(_) => Duration::MAX,
    })
}

/// Nanoseconds on the chosen monotonic clock. Neither clock can fail on
/// Linux for a valid id; if one did, the detector would see no time pass
/// rather than take the hub down.
fn read(coarse: bool) -> u64 {
    let clock = if coarse {
        ClockId::CLOCK_MONOTONIC_COARSE
    } else {
        ClockId::CLOCK_MONOTONIC
    };
    clock_gettime(clock).map_or(0, |t| {
        // A monotonic clock counts from boot: neither field is negative.
        (t.tv_sec() as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(t.tv_nsec() as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn at(nanos: u64) -> Reading {
        Reading {
            nanos,
            coarse: false,
        }
    }

    /// Whatever this kernel's tick (1 to 10 ms on most; some sandboxes'
    /// kernels report a far finer one), the coarse clock serves exactly
    /// the thresholds of at least `COARSE_TICKS` of its ticks, so that a
    /// run timed on it is off by under 4 % of its threshold.
    #[test]
    fn the_coarse_clock_serves_only_thresholds_it_times_within_four_percent() {
        let Ok(tick) = clock_getres(ClockId::CLOCK_MONOTONIC_COARSE) else {
            assert_eq!(coarse_from(), Duration::MAX, "no coarse clock: never used");
            return;
        };
        let tick = Duration::from(tick);
        assert_eq!(coarse_from(), tick * COARSE_TICKS);
        // The clock a run is timed on, as the threshold (this thread's)
        // picks it.
        for ms in [1, 5, 20, 100, 1_000] {
            let threshold = Duration::from_millis(ms);
            diag::set_blocking_threshold(Some(threshold));
            assert_eq!(
                Reading::start(None).coarse,
                // A tick at most 4 % of the threshold: 25 ticks fit in it.
                tick.as_nanos() * 25 <= threshold.as_nanos(),
                "{threshold:?} with a tick of {tick:?}"
            );
        }
        diag::set_blocking_threshold(Some(diag::DEFAULT_BLOCKING_THRESHOLD));
    }

    #[test]
    fn a_run_past_the_threshold_is_an_overrun_and_one_within_it_is_not() {
        let five = Some(Duration::from_millis(5));
        let overrun = overrun(at(MS), at(7 * MS), five).expect("6 ms is past 5 ms");
        assert_eq!(overrun.held, Duration::from_millis(6));
        assert_eq!(overrun.threshold, Duration::from_millis(5));
        assert!(
            super::overrun(at(MS), at(6 * MS), five).is_none(),
            "5 ms is not past 5 ms"
        );
        assert!(
            super::overrun(at(7), at(3), five).is_none(),
            "a clock read out of order"
        );
        assert!(
            super::overrun(at(0), at(u64::MAX), None).is_none(),
            "the detector is off"
        );
    }

    #[test]
    fn a_reading_off_another_clock_is_not_reused_and_a_run_keeps_its_clock() {
        let coarse = Reading {
            nanos: 1,
            coarse: true,
        };
        let precise = at(1);
        // The default threshold or a smaller one: one of these is reused,
        // the other replaced by a reading of the clock now called for.
        let reused: Vec<bool> = [coarse, precise]
            .into_iter()
            .map(|r| Reading::start(Some(r)).nanos == 1)
            .collect();
        assert_eq!(reused.iter().filter(|r| **r).count(), 1, "{reused:?}");
        assert!(Reading::start(None).nanos > 1);
        for start in [coarse, precise] {
            let (end, _) = start.stop();
            assert_eq!(end.coarse, start.coarse, "a run ends on its own clock");
            assert!(end.nanos > start.nanos);
        }
    }
}
