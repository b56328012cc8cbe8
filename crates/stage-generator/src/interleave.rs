//! The two CPU loops again, now taking turns: a switch on every iteration.
//!
//! `func1` becomes a generator that yields after each step; `func2` resumes
//! it after each of its own steps. Both loops do exactly the work of stage 1
//! ([`stage_serial::cpu::step`]), so any difference in time is the price of
//! the switches. Neither task ever waits, so the switches buy nothing.

use generator::Gn;
use stage_serial::cpu::step;

use crate::traced::traced;

/// Who did what, for a listing that wants to watch the order of events.
/// The measured runs pass a watcher that does nothing, which the compiler
/// removes entirely.
pub trait Watch: Fn(&'static str, u64) {}

impl<F: Fn(&'static str, u64)> Watch for F {}

/// A watcher that ignores every event: what the measured runs use.
pub fn unwatched(_who: &'static str, _i: u64) {}

// ANCHOR: interleaved
/// Run both loops of `n` iterations, switching to `func1` after every step
/// of `func2` and back after every step of `func1`. Returns the sum of all
/// steps, the same as [`stage_serial::cpu::serial`] returns.
pub fn interleaved(n: u64, watch: &impl Watch) -> u64 {
    // func1: one step, then hand the CPU back (the notes' loop never ends;
    // ours stops after n steps so its sum can be checked).
    let body = Gn::<()>::new_scoped_local(|mut s| {
        let mut sum = 0;
        for i in 0..n {
            sum += step(i);
            watch("func1", i);
            s.yield_with(sum);
        }
        sum
    });
    let mut func1 = traced("func1", body);
    // func2: one step, then resume func1 for one of its steps.
    let mut sum2 = 0;
    for i in 0..n {
        sum2 += step(i);
        watch("func2", i);
        func1.resume();
    }
    // One more resume lets func1's loop end; its return value comes out.
    let sum1 = func1.resume().unwrap_or(0);
    sum1 + sum2
}
// ANCHOR_END: interleaved

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn both_loops_do_all_their_work() {
        for n in [0, 1, 2, 1_000] {
            assert_eq!(interleaved(n, &unwatched), stage_serial::cpu::expected(n));
        }
    }

    #[test]
    fn the_loops_take_strict_turns() {
        let events = RefCell::new(Vec::new());
        interleaved(3, &|who, i| events.borrow_mut().push(format!("{who} {i}")));
        assert_eq!(
            events.into_inner(),
            ["func2 0", "func1 0", "func2 1", "func1 1", "func2 2", "func1 2"]
        );
    }
}
