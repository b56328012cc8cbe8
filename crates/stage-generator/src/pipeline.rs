//! Producer and consumer taking turns: one item at a time, never a full `Vec`.
//!
//! Two ways to hand items over without storing them all:
//!
//! - [`by_send`]: the consumer is a stackful generator. The producer `send`s
//!   each item: a switch onto the consumer's stack, and a switch back when it
//!   yields. The consumer's loop and locals wait on that stack in between.
//! - [`by_iterator`]: the producer is a plain Rust [`Iterator`], a stackless
//!   state machine: all it must remember between items is one field, and
//!   `next` is an ordinary call that returns. No stack is kept, no switch made.

use std::hint::black_box;

use generator::Gn;

use crate::interleave::Watch;
use crate::traced::traced;

// ANCHOR: by_send
/// The producer sends items `0..n` into a consumer generator, which sums
/// them. Returns the consumer's sum.
pub fn by_send(n: u64, watch: &impl Watch) -> u64 {
    let body = Gn::<u64>::new_scoped_local(|mut s| {
        let mut sum = 0;
        loop {
            s.yield_with(sum); // wait here for the next item
            match s.get_yield() {
                Some(item) => {
                    watch("consumer got", item);
                    sum += black_box(item);
                }
                None => return sum, // the producer has finished
            }
        }
    });
    let mut consumer = traced("consumer", body);
    consumer.resume(); // start it: run up to its first yield
    for i in 0..n {
        watch("producer sends", i);
        consumer.send(i);
    }
    // Sending "nothing" tells the consumer to finish; its sum comes back.
    consumer.raw_send(None).unwrap_or(0)
}
// ANCHOR_END: by_send

// ANCHOR: by_iterator
/// A producer as a stackless state machine: `next` is the only state it
/// keeps between items.
#[derive(Debug, Clone)]
pub struct Produce {
    next: u64,
    end: u64,
}

impl Produce {
    /// A producer of items `0..n`.
    pub fn new(n: u64) -> Self {
        Produce { next: 0, end: n }
    }
}

impl Iterator for Produce {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        if self.next == self.end {
            return None;
        }
        let item = self.next;
        self.next += 1;
        Some(item)
    }
}

/// Stage 1's consumer pulling items from [`Produce`]: one at a time, no
/// `Vec`, and no switch either.
pub fn by_iterator(n: u64) -> u64 {
    stage_serial::producer::consumer(Produce::new(n))
}
// ANCHOR_END: by_iterator

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interleave::unwatched;
    use stage_serial::producer::expected;
    use std::cell::RefCell;

    #[test]
    fn every_item_arrives_by_each_route() {
        for n in [0, 1, 2, 10_000] {
            assert_eq!(by_send(n, &unwatched), expected(n), "send, n = {n}");
            assert_eq!(by_iterator(n), expected(n), "iterator, n = {n}");
        }
        assert_eq!(Produce::new(3).collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn each_item_is_consumed_before_the_next_is_produced() {
        let events = RefCell::new(Vec::new());
        by_send(2, &|who, i| events.borrow_mut().push(format!("{who} {i}")));
        assert_eq!(
            events.into_inner(),
            [
                "producer sends 0",
                "consumer got 0",
                "producer sends 1",
                "consumer got 1"
            ]
        );
    }
}
