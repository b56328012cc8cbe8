//! The timer heap: what to do at which instant, earliest first.
//!
//! Entries are keyed by `(deadline, sequence)`, so two timers due at the
//! same instant fire in the order they were set: greenlets that sleep the
//! same time wake in the order they fell asleep. Cancelling forgets the
//! action at once; its heap entry is skipped when it surfaces, which keeps
//! setting and cancelling `O(log n)` at worst.
//!
//! Skipped entries alone would pile up: a timer that is set and cancelled
//! behind a long-lived one (every `with_timeout` that finishes in time, under
//! one sleeper of 30 s) never surfaces. So once cancelled entries outnumber
//! live ones, the heap is rebuilt from the live ones (`O(n)`, paid for by
//! the `n` cancels before it), and memory a burst of timers took is given
//! back when the burst is over.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

use super::IdMap;

/// A timer's identity, for cancelling it.
pub(crate) type TimerId = u64;

/// Below this many entries the heap is left alone: rebuilding a small heap
/// saves nothing.
const COMPACT_BELOW: usize = 64;

/// Timers and the actions they carry.
#[derive(Debug)]
pub(crate) struct Timers<A> {
    heap: BinaryHeap<Reverse<(Instant, TimerId)>>,
    actions: IdMap<TimerId, A>,
    next: TimerId,
}

impl<A> Timers<A> {
    pub(crate) fn new() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            actions: HashMap::default(),
            next: 0,
        }
    }

    /// Do `action` at `deadline`.
    pub(crate) fn add(&mut self, deadline: Instant, action: A) -> TimerId {
        let id = self.next;
        self.next += 1;
        self.heap.push(Reverse((deadline, id)));
        self.actions.insert(id, action);
        id
    }

    /// Forget a timer; returns its action if it had not fired yet.
    pub(crate) fn cancel(&mut self, id: TimerId) -> Option<A> {
        let action = self.actions.remove(&id);
        if self.actions.is_empty() {
            // Nothing live: drop the cancelled entries too.
            self.heap.clear();
        } else if self.heap.len() >= COMPACT_BELOW && self.heap.len() > 2 * self.actions.len() {
            let actions = &self.actions;
            self.heap
                .retain(|Reverse((_, id))| actions.contains_key(id));
        }
        self.shrink();
        action
    }

    /// Give back the memory of a burst that is over: capacity beyond four
    /// times what is in use (and beyond [`COMPACT_BELOW`]) goes.
    fn shrink(&mut self) {
        let wanted = (2 * self.heap.len()).max(COMPACT_BELOW);
        if self.heap.capacity() > 2 * wanted {
            self.heap.shrink_to(wanted);
        }
        let wanted = (2 * self.actions.len()).max(COMPACT_BELOW);
        if self.actions.capacity() > 2 * wanted {
            self.actions.shrink_to(wanted);
        }
    }

    /// How many timers are still to fire.
    pub(crate) fn live(&self) -> usize {
        self.actions.len()
    }

    /// Whether `id` is still to fire.
    pub(crate) fn is_pending(&self, id: TimerId) -> bool {
        self.actions.contains_key(&id)
    }

    /// Heap entries, cancelled ones not yet cleared included.
    pub(crate) fn entries(&self) -> usize {
        self.heap.len()
    }

    /// When the earliest live timer is due.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&Reverse((deadline, id))) = self.heap.peek() {
            if self.actions.contains_key(&id) {
                return Some(deadline);
            }
            self.heap.pop();
        }
        None
    }

    /// The next action due at or before `now`, earliest (then oldest) first.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<A> {
        while let Some(&Reverse((deadline, id))) = self.heap.peek() {
            if deadline > now {
                return None;
            }
            self.heap.pop();
            if let Some(action) = self.actions.remove(&id) {
                self.shrink();
                return Some(action);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earliest_first_and_equal_deadlines_in_insertion_order() {
        let mut t = Timers::new();
        let now = Instant::now();
        let ms = Duration::from_millis;
        t.add(now + ms(5), "late");
        t.add(now + ms(1), "first of two");
        t.add(now + ms(1), "second of two");
        t.add(now + ms(3), "middle");
        let mut fired = Vec::new();
        while let Some(a) = t.pop_due(now + ms(10)) {
            fired.push(a);
        }
        assert_eq!(fired, ["first of two", "second of two", "middle", "late"]);
    }

    #[test]
    fn cancelled_timers_do_not_pile_up_behind_a_live_one() {
        // One long timer keeps the top of the heap; 100,000 shorter-lived
        // ones are set and cancelled behind it (finished `with_timeout`s).
        let mut t = Timers::new();
        let now = Instant::now();
        t.add(now + Duration::from_secs(30), 0);
        for i in 1..=100_000 {
            let id = t.add(now + Duration::from_secs(60), i);
            assert_eq!(t.cancel(id), Some(i));
        }
        assert_eq!(t.live(), 1);
        assert!(t.heap.len() <= COMPACT_BELOW, "{} entries", t.heap.len());
        assert!(
            t.heap.capacity() <= 4 * COMPACT_BELOW,
            "capacity {} not given back",
            t.heap.capacity()
        );
        assert!(t.actions.capacity() <= 4 * COMPACT_BELOW);
        // The live one still fires, and only it.
        assert_eq!(t.pop_due(now + Duration::from_secs(90)), Some(0));
        assert_eq!(t.pop_due(now + Duration::from_secs(90)), None);
    }

    #[test]
    fn capacity_shrinks_back_after_a_burst_of_timers_fires() {
        let mut t = Timers::new();
        let now = Instant::now();
        for i in 0..50_000 {
            t.add(now, i);
        }
        while t.pop_due(now).is_some() {}
        t.add(now + Duration::from_secs(1), 1);
        assert!(
            t.heap.capacity() <= 4 * COMPACT_BELOW,
            "{}",
            t.heap.capacity()
        );
        assert!(t.actions.capacity() <= 4 * COMPACT_BELOW);
    }

    #[test]
    fn cancelled_timers_neither_fire_nor_count() {
        let mut t = Timers::new();
        let now = Instant::now();
        let early = t.add(now, 1);
        t.add(now + Duration::from_secs(1), 2);
        assert_eq!(t.cancel(early), Some(1));
        assert_eq!(t.live(), 1);
        assert_eq!(t.next_deadline(), Some(now + Duration::from_secs(1)));
        assert_eq!(t.pop_due(now), None);
        assert_eq!(t.cancel(early), None);
    }
}
