//! What one switch costs, with nothing else around it.
//!
//! A generator that only echoes back what it is sent, against a plain
//! function call doing the same. The difference is the price of two stack
//! switches (there and back) plus the generator crate's bookkeeping.

use std::hint::black_box;

use generator::Gn;

use crate::traced::traced;

/// A function call that cannot be inlined away: the no-switch reference.
#[inline(never)]
pub fn echo(x: u64) -> u64 {
    black_box(x)
}

/// `n` plain calls to [`echo`]; returns the sum of what came back.
pub fn calls(n: u64) -> u64 {
    let mut sum = 0;
    for i in 0..n {
        sum += echo(i);
    }
    sum
}

// ANCHOR: round_trips
/// `n` send round trips into a generator that yields back what it got;
/// returns the sum of what came back.
pub fn round_trips(n: u64) -> u64 {
    let body = Gn::<u64>::new_scoped_local(|mut s| {
        let mut value = 0;
        loop {
            s.yield_with(value);
            match s.get_yield() {
                Some(v) => value = v,
                None => return 0,
            }
        }
    });
    let mut echo = traced("echo", body);
    echo.resume();
    let mut sum = 0;
    for i in 0..n {
        sum += echo.send(i);
    }
    echo.raw_send(None);
    sum
}
// ANCHOR_END: round_trips

/// What [`calls`] and [`round_trips`] return: `0 + 1 + … + (n - 1)`.
pub fn expected(n: u64) -> u64 {
    stage_serial::producer::expected(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_comes_back() {
        for n in [0, 1, 5, 10_000] {
            assert_eq!(round_trips(n), expected(n));
            assert_eq!(calls(n), expected(n));
        }
    }
}
