//! Producer and consumer, run serially: the producer makes every item first
//! and keeps them all in a `Vec`, then the consumer reads them.
//!
//! The price of not switching is memory: all `n` items exist at once (80 MB
//! for the lesson's 10,000,000 `u64`s). Stage 2 hands items over one at a
//! time instead, by `send`, and by an `Iterator`.

use std::hint::black_box;

// ANCHOR: producer_consumer
/// The producer: make items `0..n` and keep them all.
pub fn producer(n: u64) -> Vec<u64> {
    let mut items = Vec::with_capacity(n as usize);
    for i in 0..n {
        items.push(i);
    }
    items
}

/// The consumer: take in every item. It sums them, so the caller can check
/// that every item arrived.
pub fn consumer(items: impl IntoIterator<Item = u64>) -> u64 {
    let mut sum = 0;
    for item in items {
        sum += black_box(item);
    }
    sum
}

/// Serial execution: produce everything, then consume everything.
pub fn serial(n: u64) -> u64 {
    let items = producer(n);
    consumer(items)
}
// ANCHOR_END: producer_consumer

/// What the consumer returns after receiving items `0..n`, however they
/// arrive: `0 + 1 + … + (n - 1)`.
///
/// ```
/// use stage_serial::producer;
/// assert_eq!(producer::serial(10), producer::expected(10));
/// ```
pub fn expected(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_producer_makes_every_item_in_order() {
        assert_eq!(producer(5), vec![0, 1, 2, 3, 4]);
        assert!(producer(0).is_empty());
    }

    #[test]
    fn the_consumer_receives_every_item() {
        assert_eq!(consumer(vec![3, 4]), 7);
        assert_eq!(serial(1_000), expected(1_000));
        assert_eq!(serial(1), 0);
        assert_eq!(expected(0), 0);
    }
}
