//! CPU work with no waiting in it: two counting loops, one after the other.
//!
//! This is the baseline for the lesson's first claim: switching between tasks
//! that never wait cannot make them faster, only slower. Stage 2 interleaves
//! the very same loops with a generator switch on every iteration; it calls
//! [`step`] so both stages do identical work per iteration.

use std::hint::black_box;

/// One iteration of the lesson's CPU loops: `i + 1`.
///
/// `black_box` hides `i` from the optimizer, so a release build cannot fold a
/// whole loop into one closed-form multiplication: every iteration really
/// happens, as it does in the notes' interpreter.
///
/// ```
/// assert_eq!(stage_serial::cpu::step(41), 42);
/// ```
// ANCHOR: step
#[inline(always)]
pub fn step(i: u64) -> u64 {
    black_box(i) + 1
}
// ANCHOR_END: step

// ANCHOR: serial_cpu
/// The first task: count to `n`, doing [`step`] each time. Returns the sum of
/// the steps, so the caller can check the work was done.
pub fn func1(n: u64) -> u64 {
    let mut sum = 0;
    for i in 0..n {
        sum += step(i);
    }
    sum
}

/// The second task: the same loop again.
pub fn func2(n: u64) -> u64 {
    let mut sum = 0;
    for i in 0..n {
        sum += step(i);
    }
    sum
}

/// Serial execution: `func1` runs to the end, then `func2` does. Nothing
/// switches; nothing needs saving.
pub fn serial(n: u64) -> u64 {
    func1(n) + func2(n)
}
// ANCHOR_END: serial_cpu

/// What [`serial`] (and every other way of running both loops) returns for
/// `n` iterations each: twice `1 + 2 + … + n`.
///
/// ```
/// use stage_serial::cpu;
/// assert_eq!(cpu::serial(1_000), cpu::expected(1_000));
/// ```
pub fn expected(n: u64) -> u64 {
    n * (n + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_loop_sums_its_steps() {
        assert_eq!(func1(4), 1 + 2 + 3 + 4);
        assert_eq!(func2(4), 10);
        assert_eq!(serial(4), expected(4));
        assert_eq!(serial(0), 0);
    }

    #[test]
    fn the_checked_result_holds_at_the_lesson_scale_formula() {
        assert_eq!(expected(10_000_000), 100_000_010_000_000);
        assert_eq!(serial(100_000), expected(100_000));
    }
}
