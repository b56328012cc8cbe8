//! The timer heap: what to do at which instant, earliest first.
//!
//! Entries are keyed by `(deadline, sequence)`, so two timers due at the
//! same instant fire in the order they were set: greenlets that sleep the
//! same time wake in the order they fell asleep. Cancelling only forgets the
//! action; the heap entry is skipped when it surfaces, which keeps both
//! setting and cancelling `O(log n)` at worst.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

use super::IdMap;

/// A timer's identity, for cancelling it.
pub(crate) type TimerId = u64;

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
        }
        action
    }

    /// How many timers are still to fire.
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        self.actions.len()
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
