//! What else a Rust user could pick: the reference rows of the cost table
//! (the `generator` crate's row is stage 2's own workload,
//! `stage_generator::switch::round_trips`).
//!
//! Each function performs `n` round trips (main → coroutine → main) passing
//! a counter that the other side increments, and returns it (`n`), so the
//! harness can check that every round trip happened.

use std::hint::black_box;

use context::{Context, Transfer};
use corosensei::{Coroutine, CoroutineResult, Yielder};

/// The far side of the raw round trip: add one, jump back, forever.
extern "C" fn raw_echo(mut t: Transfer) -> ! {
    loop {
        // SAFETY: `t.context` is the context that just resumed us, suspended
        // in its own `resume`; resuming it once hands control back.
        t = unsafe { t.context.resume(t.data + 1) };
    }
}

// ANCHOR: raw_context
/// `n` round trips through the `context` crate alone: no greenlet
/// bookkeeping, no types, no parent — the floor our greenlets stand on.
pub fn raw_context_round_trips(n: u64) -> u64 {
    // The same guarded, pooled stacks greenlets get.
    let Ok(stack) = crate::stack::take(crate::DEFAULT_STACK_SIZE) else {
        return u64::MAX; // the harness reports the wrong check value
    };
    // SAFETY: `stack` outlives every use of the context: both are locals
    // here and the stack is dropped last. Nothing on it needs dropping:
    // `raw_echo` only holds a `Transfer`.
    let mut t = Transfer::new(unsafe { Context::new(stack.stack(), raw_echo) }, 0);
    let mut acc: u64 = 0;
    for _ in 0..n {
        // SAFETY: `t.context` is `raw_echo` suspended in its `resume` (or
        // not yet started); each is resumed exactly once.
        t = unsafe { t.context.resume(acc as usize) };
        acc = black_box(t.data as u64);
    }
    // `raw_echo` stays parked on it, holding nothing: the stack can be reused.
    crate::stack::give_back(stack);
    acc
}
// ANCHOR_END: raw_context

/// `n` round trips through `corosensei`, a stackful coroutine crate whose
/// switch is inline assembly the compiler sees into.
pub fn corosensei_round_trips(n: u64) -> u64 {
    let mut echo: Coroutine<u64, u64, ()> =
        Coroutine::new(|yielder: &Yielder<u64, u64>, mut x: u64| loop {
            x = yielder.suspend(x + 1);
        });
    let mut acc: u64 = 0;
    for _ in 0..n {
        match echo.resume(acc) {
            CoroutineResult::Yield(v) => acc = black_box(v),
            CoroutineResult::Return(()) => return u64::MAX,
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_makes_all_its_round_trips() {
        assert_eq!(raw_context_round_trips(1000), 1000);
        assert_eq!(corosensei_round_trips(1000), 1000);
    }
}
