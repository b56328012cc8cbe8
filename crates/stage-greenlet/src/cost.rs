//! What switching costs: the notes' f1/f2 listing, and one switch measured
//! against the other ways a Rust program can switch stacks.

use std::error::Error;
use std::hint::black_box;

use harness::cpython::Script;
use harness::{Case, Group, Quote};
use stage_generator::{cpython, NOTES};

use crate::hook::{self, SwitchEvent};
use crate::reference;
use crate::{current, Greenlet, SwitchError};

/// The notes' iteration count (`--full`): 100,000,000 per loop.
pub const NOTES_ITERATIONS: u64 = 100_000_000;
/// The lesson's default: big enough to time, small enough to run in seconds.
pub const DEFAULT_ITERATIONS: u64 = 10_000_000;
/// `--quick` (tests, CI, the tour).
pub const QUICK_ITERATIONS: u64 = 200_000;

/// What f1's loop leaves in `res` after `n` iterations: 1 + (0 + 1 + … + n-1).
pub fn f1_result(n: u64) -> u64 {
    1u64.wrapping_add(n.wrapping_mul(n.wrapping_sub(1)) / 2)
}

// ANCHOR: sequential
/// f1 then f2, each a plain loop: the notes' "run time is 9.98 s" baseline.
pub fn sequential(n: u64) -> u64 {
    let mut res1: u64 = 1;
    for i in 0..n {
        res1 = res1.wrapping_add(black_box(i));
    }
    let mut res2: u64 = 1;
    for i in 0..n {
        res2 = res2.wrapping_mul(black_box(i));
    }
    res1.wrapping_add(res2) // res2 is 0 from i = 0 on, as in Python
}
// ANCHOR_END: sequential

// ANCHOR: switching
/// The same two loops, switching to the other greenlet on every iteration:
/// 2 × n switches. f1 learns g2 from the switch that starts it; f2 is made
/// knowing g1. f1 finishes first and returns its result to main; f2 is left
/// suspended mid-loop and is killed when its last handle (f1's argument)
/// is dropped.
pub fn switching(n: u64) -> Result<u64, Box<dyn Error>> {
    let f1 = move |g2: Greenlet| -> Result<u64, SwitchError> {
        let mut res: u64 = 1;
        for i in 0..n {
            res = res.wrapping_add(black_box(i));
            g2.switch::<(), ()>(())?;
        }
        Ok(res)
    };
    let g1 = Greenlet::new(f1)?;
    let g1_of_f2 = g1.clone();
    let f2 = move |()| -> Result<(), SwitchError> {
        let mut res: u64 = 1;
        for i in 0..n {
            res = res.wrapping_mul(black_box(i));
            g1_of_f2.switch::<(), ()>(())?;
        }
        black_box(res);
        Ok(())
    };
    let g2 = Greenlet::new(f2)?;
    Ok(g1.switch::<Greenlet, Result<u64, SwitchError>>(g2)??)
}
// ANCHOR_END: switching

// ANCHOR: round_trip
/// `n` greenlet round trips: main switches a counter to `echo`, which adds
/// one and switches it back. The figure to hold against
/// [`reference::raw_context_round_trips`].
pub fn greenlet_round_trips(n: u64) -> u64 {
    let Ok(echo) = Greenlet::new(|mut x: u64| {
        let Some(main) = current().parent() else {
            return;
        };
        loop {
            match main.switch::<u64, u64>(x + 1) {
                Ok(next) => x = next,
                Err(err) => {
                    drop(err);
                    return;
                }
            }
        }
    }) else {
        return u64::MAX;
    };
    let mut acc: u64 = 0;
    for _ in 0..n {
        match echo.switch::<u64, u64>(acc) {
            Ok(v) => acc = black_box(v),
            Err(err) => {
                drop(err);
                return u64::MAX;
            }
        }
    }
    acc // dropping `echo` kills it, once per run
}
// ANCHOR_END: round_trip

/// One switch through a function the compiler must not inline into its
/// caller: what `switch` would cost if it were an ordinary call.
#[inline(never)]
fn switch_not_inlined(to: &Greenlet, x: u64) -> Result<u64, SwitchError> {
    to.switch::<u64, u64>(x)
}

/// [`greenlet_round_trips`] with both sides switching through a function
/// that is `#[inline(never)]`: each resumed side then leaves the switch by a
/// `ret` whose target the CPU's return-stack predictor has never seen (it
/// predicts the *other* stack's caller), which is why the real `switch` is
/// `#[inline(always)]`.
pub fn round_trips_not_inlined(n: u64) -> u64 {
    let Ok(echo) = Greenlet::new(|mut x: u64| {
        let Some(main) = current().parent() else {
            return;
        };
        while let Ok(next) = switch_not_inlined(&main, x + 1) {
            x = next;
        }
    }) else {
        return u64::MAX;
    };
    let mut acc: u64 = 0;
    for _ in 0..n {
        match switch_not_inlined(&echo, acc) {
            Ok(v) => acc = black_box(v),
            Err(_) => return u64::MAX,
        }
    }
    acc
}

/// [`greenlet_round_trips`] with a switch hook installed that does nothing:
/// what the hook's call costs once one is installed (with none, a switch
/// tests one flag).
pub fn round_trips_with_noop_hook(n: u64) -> u64 {
    let before = hook::settrace(Some(std::rc::Rc::new(|_: &SwitchEvent<'_>| {})));
    let done = greenlet_round_trips(n);
    hook::settrace(before);
    done
}

/// [`greenlet_round_trips`] recorded into a trace that keeps every switch:
/// what `--trace` costs per switch.
pub fn round_trips_traced(n: u64) -> u64 {
    let trace = trace::Trace::new(usize::try_from(2 * n + 16).unwrap_or(usize::MAX));
    let before = hook::record(&trace);
    let done = greenlet_round_trips(n);
    hook::settrace(before);
    done
}

// ANCHOR: create_run_drop
/// `n` trivial greenlets, each created, run to completion and dropped: the
/// stack comes from the pool, so no `mmap` after the first.
pub fn create_run_drop(n: u64) -> u64 {
    let mut sum: u64 = 0;
    for i in 0..n {
        let Ok(g) = Greenlet::new(|x: u64| x + 1) else {
            return u64::MAX;
        };
        match g.switch::<u64, u64>(i) {
            Ok(v) => sum = sum.wrapping_add(black_box(v)),
            Err(_) => return u64::MAX,
        }
    }
    sum
}
// ANCHOR_END: create_run_drop

/// The switching listing: f1/f2 back to back vs a switch per iteration,
/// with the notes' CPython figures beside ours. Every case counts its 2 × n
/// loop iterations as its ops, so per op is per iteration everywhere and the
/// ratio is the slowdown.
pub fn switching_group(n: u64) -> Group {
    let expected = f1_result(n);
    let cpython_in_turn = cpython(IN_TURN_CASE);
    Group::new(SWITCHING_GROUP)
        .title(format!(
            "Does a switch on every iteration slow CPU work? (f1 + f2, {n} iterations each; \
             per op = one iteration, which in the switching case ends in a switch)"
        ))
        .count_instructions()
        .case(Case::new(IN_TURN_CASE, 2 * n, move || sequential(n)).expect(expected))
        .case(
            Case::new(SWITCH_PER_ITERATION_CASE, 2 * n, move || {
                switching(n).unwrap_or(u64::MAX)
            })
            .baseline(IN_TURN_CASE)
            .expect(expected),
        )
        .cpython(
            greenlet_py("switching", n.min(CPYTHON_ITERATIONS))
                .row("in-turn", &cpython_in_turn, None)
                .row("switching", CPYTHON_SWITCHING, Some(&cpython_in_turn)),
        )
        .quote(Quote::new(
            NOTES,
            cpython_in_turn.clone(),
            NOTES_IN_TURN_SECONDS,
            2 * NOTES_ITERATIONS,
        ))
        .quote(
            Quote::new(
                "CPython greenlet, the notes",
                CPYTHON_SWITCHING,
                NOTES_SWITCHING_SECONDS,
                2 * NOTES_ITERATIONS,
            )
            .baseline(cpython_in_turn),
        )
}

/// The switching listing's group.
pub const SWITCHING_GROUP: &str = "switching";
/// The switching listing's baseline: f1 then f2, back to back. CPython's
/// row of it is named by [`cpython`], as every stage names them.
pub const IN_TURN_CASE: &str = "f1 then f2";
/// The switching listing's measured case: f1 and f2 switching to each
/// other on every iteration, with [`IN_TURN_CASE`] as its baseline.
pub const SWITCH_PER_ITERATION_CASE: &str = "f1 <-> f2, switch per iteration";
/// The switch-cost table's group.
pub const SWITCH_COST_GROUP: &str = "switch-cost";

/// Our Python script of the switching listings (`python/greenlet_switch.py`).
pub const GREENLET_PY: &str = include_str!("../python/greenlet_switch.py");

/// The most iterations (or round trips) the CPython script runs: a switch
/// there costs some hundreds of nanoseconds, and the per-op figure needs no
/// more.
pub const CPYTHON_ITERATIONS: u64 = 200_000;

/// CPython greenlet's switching row.
pub const CPYTHON_SWITCHING: &str = "f1 <-> f2 (CPython greenlet)";
/// CPython greenlet's round-trip row.
pub const CPYTHON_ROUND_TRIP: &str = "greenlet switch round trip (CPython greenlet)";

/// The notes' f1 then f2, 100,000,000 iterations each, in seconds.
pub const NOTES_IN_TURN_SECONDS: f64 = 9.985_614_538_192_749;
/// The notes' f1/f2 switching on every iteration, in seconds.
pub const NOTES_SWITCHING_SECONDS: f64 = 57.671_727_418_899_536;

/// `python/greenlet_switch.py` running `listing` over `n`.
fn greenlet_py(listing: &str, n: u64) -> Script {
    Script::new("greenlet_switch.py", GREENLET_PY)
        .needs("greenlet")
        .arg(listing)
        .arg(n)
        .arg(3) // timed runs, after one warm-up
}

/// The greenlet round-trip case of the switch-cost table (no hook installed).
pub const GREENLET_CASE: &str = "greenlet switch";
/// The same round trip through a `switch` that is not inlined.
pub const NOT_INLINED_CASE: &str = "greenlet switch, not inlined";
/// The same round trip with a switch hook that does nothing.
pub const NOOP_HOOK_CASE: &str = "greenlet switch, no-op hook";
/// The same round trip recorded into a trace (`--trace`).
pub const TRACED_CASE: &str = "greenlet switch, traced";
/// A greenlet's whole life (created, run to its end, dropped), with
/// [`GREENLET_CASE`] as its baseline: what a life costs in round trips.
pub const LIFE_CASE: &str = "greenlet create+run+drop";

/// One switch, measured: raw `context`, our greenlet (with no hook, with a
/// hook that does nothing, recorded into a trace), `generator`,
/// `corosensei`, and a greenlet's whole life, in one run.
pub fn switch_cost_group(round_trips: u64, lives: u64) -> Group {
    Group::new(SWITCH_COST_GROUP)
        .title("What does one switch round trip cost? (per op = one round trip, or one greenlet's life)")
        .count_instructions()
        .case(
            Case::new("raw context resume", round_trips, move || {
                reference::raw_context_round_trips(round_trips)
            })
            .expect(round_trips),
        )
        .case(
            Case::new(GREENLET_CASE, round_trips, move || {
                greenlet_round_trips(round_trips)
            })
            .baseline("raw context resume")
            .expect(round_trips),
        )
        .case(
            Case::new(NOT_INLINED_CASE, round_trips, move || {
                round_trips_not_inlined(round_trips)
            })
            .baseline(GREENLET_CASE)
            .expect(round_trips),
        )
        .case(
            Case::new(NOOP_HOOK_CASE, round_trips, move || {
                round_trips_with_noop_hook(round_trips)
            })
            .baseline(GREENLET_CASE)
            .expect(round_trips),
        )
        .case(
            // A tenth of the count: every switch is kept in memory.
            Case::new(TRACED_CASE, lives, move || round_trips_traced(lives))
                .baseline(GREENLET_CASE)
                .expect(lives),
        )
        .case(
            // Stage 2's own workload, under its own name: one definition.
            Case::new(stage_generator::ROUND_TRIP_CASE, round_trips, move || {
                stage_generator::switch::round_trips(round_trips)
            })
            .baseline("raw context resume")
            .expect(stage_generator::switch::expected(round_trips)),
        )
        .case(
            Case::new("corosensei resume", round_trips, move || {
                reference::corosensei_round_trips(round_trips)
            })
            .baseline("raw context resume")
            .expect(round_trips),
        )
        .case(
            // A tenth of the count; the ratio is per op, so it still reads as
            // "one greenlet's life costs this many switch round trips".
            Case::new(LIFE_CASE, lives, move || create_run_drop(lives))
                .baseline(GREENLET_CASE)
                .expect(lives * (lives + 1) / 2),
        )
        .cpython(
            greenlet_py("switch-cost", round_trips.min(CPYTHON_ITERATIONS)).row(
                "round-trip",
                CPYTHON_ROUND_TRIP,
                None,
            ),
        )
        // Without greenlet here, what the notes' own f1/f2 runs imply: each
        // iteration added one switch, so a round trip (two) is twice that.
        .quote(Quote::new(
            "worked out from the notes' f1/f2 runs, 2 x (57.67 s - 9.99 s) / 200,000,000",
            CPYTHON_ROUND_TRIP,
            2.0 * (NOTES_SWITCHING_SECONDS - NOTES_IN_TURN_SECONDS),
            2 * NOTES_ITERATIONS,
        ))
}

/// The groups whose instructions the lesson counts, rebuilt by name for
/// [`harness::count::serve`] at `scale` (1 or 2) times a small count:
/// callgrind runs them fifty times slower, and counts per op come from the
/// difference between the two scales, so they need not be large.
pub fn counted_group(name: &str, scale: u64) -> Option<Group> {
    let n = COUNTED_OPS * scale;
    match name {
        SWITCHING_GROUP => Some(switching_group(n)),
        SWITCH_COST_GROUP => Some(switch_cost_group(n, n / 10)),
        _ => None,
    }
}

/// Operations per counted run at scale 1 (see [`counted_group`]).
const COUNTED_OPS: u64 = 10_000;

/// Counts for the cost group: (round trips, lives); a tenth in an
/// unoptimized build, whose figures are distorted anyway.
pub fn cost_counts(quick: bool) -> (u64, u64) {
    if quick {
        (100_000, 10_000)
    } else if !harness::Profile::current().optimized {
        (200_000, 20_000)
    } else {
        (2_000_000, 200_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_versions_of_the_listing_compute_the_same_result() {
        for n in [1, 2, 1000] {
            assert_eq!(sequential(n), f1_result(n));
            assert_eq!(switching(n).unwrap(), f1_result(n));
        }
    }

    #[test]
    fn the_generator_row_is_stage_2_s_workload_under_its_name() {
        // The generator crate does not tell valgrind about its stacks, so
        // memcheck cannot follow its switches; this runs natively only.
        if crate::stack::running_on_valgrind() {
            return;
        }
        let mut group = switch_cost_group(10, 10);
        let case = group
            .cases_mut()
            .iter_mut()
            .find(|c| c.name() == stage_generator::ROUND_TRIP_CASE)
            .expect("the generator row carries stage 2's case name");
        // Stage 2's check value: the sum of what came back, 0 + 1 + ... + 9.
        assert_eq!(
            case.run_once().unwrap().check,
            stage_generator::switch::expected(10)
        );
    }

    #[test]
    fn greenlet_workloads_do_all_their_work() {
        assert_eq!(greenlet_round_trips(1000), 1000);
        assert_eq!(create_run_drop(100), 5050);
        assert_eq!(round_trips_with_noop_hook(100), 100);
        assert_eq!(round_trips_not_inlined(100), 100);
        assert_eq!(round_trips_traced(100), 100);
        assert!(hook::gettrace().is_none(), "the hook is put back as it was");
    }
}
