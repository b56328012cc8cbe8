//! The one queue every public queue type is: items in a [`Store`] (FIFO,
//! LIFO or by priority), a capacity, and three waiter lists.
//!
//! Waiting is handing over (see [`WaitList`]): a `put` while getters wait
//! gives the item to the oldest getter directly, and a `get` while putters
//! wait takes the oldest putter's item in. So getters and putters are
//! served first come, first served, a woken getter never finds its item
//! gone, and a queue of capacity 0 — a rendezvous, gevent's `Channel` —
//! needs no special case: its items never sit in the store at all.
//!
//! Invariants: while getters wait the store is empty; while putters wait it
//! is full (always, for a rendezvous).

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

use crate::hub::{next_object_id, Hub, HubError, WaitOn, Wake};
use crate::sync::{wait_for_grant, wait_until_ready, WaitList, Waited};

/// Where a queue keeps its items, and in what order they come out.
pub(crate) trait Store<T>: Default {
    fn len(&self) -> usize;
    fn push(&mut self, item: T);
    fn pop(&mut self) -> Option<T>;
    fn peek(&self) -> Option<&T>;
    /// Put back an item that was taken out and not used: it is the next
    /// to come out again.
    fn give_back(&mut self, item: T);
}

impl<T> Store<T> for VecDeque<T> {
    fn len(&self) -> usize {
        VecDeque::len(self)
    }
    fn push(&mut self, item: T) {
        self.push_back(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.pop_front()
    }
    fn peek(&self) -> Option<&T> {
        self.front()
    }
    fn give_back(&mut self, item: T) {
        self.push_front(item);
    }
}

/// Last in, first out.
#[derive(Debug)]
pub(crate) struct Lifo<T>(Vec<T>);

impl<T> Default for Lifo<T> {
    fn default() -> Self {
        Lifo(Vec::new())
    }
}

impl<T> Store<T> for Lifo<T> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn push(&mut self, item: T) {
        self.0.push(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
    fn peek(&self) -> Option<&T> {
        self.0.last()
    }
    fn give_back(&mut self, item: T) {
        self.0.push(item);
    }
}

/// Lowest first, as gevent's `PriorityQueue` (Python's `heapq`); equal
/// items in no particular order.
#[derive(Debug)]
pub(crate) struct Lowest<T: Ord>(BinaryHeap<Reverse<T>>);

impl<T: Ord> Default for Lowest<T> {
    fn default() -> Self {
        Lowest(BinaryHeap::new())
    }
}

impl<T: Ord> Store<T> for Lowest<T> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn push(&mut self, item: T) {
        self.0.push(Reverse(item));
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop().map(|Reverse(item)| item)
    }
    fn peek(&self) -> Option<&T> {
        self.0.peek().map(|Reverse(item)| item)
    }
    fn give_back(&mut self, item: T) {
        self.push(item); // it was the lowest: it is again
    }
}

/// A put that did not happen: the item comes back with the reason.
///
/// `?` turns it into its [`HubError`] (dropping the item), for code that
/// only cares why.
pub struct PutError<T> {
    /// The item that was not put.
    pub item: T,
    /// Why: [`HubError::TimedOut`] for a put with a limit, a deadlock, …
    pub error: HubError,
}

impl<T> std::fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T> std::fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the item was not put: {}", self.error)
    }
}

impl<T> std::error::Error for PutError<T> {}

impl<T> From<PutError<T>> for HubError {
    fn from(e: PutError<T>) -> HubError {
        e.error
    }
}

/// `task_done` was called more often than items were put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskDoneTooOften;

impl std::fmt::Display for TaskDoneTooOften {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "task_done was called more times than items were put: call it once per item taken",
        )
    }
}

impl std::error::Error for TaskDoneTooOften {}

/// A queue's state, shared by its clones.
#[derive(Debug)]
pub(crate) struct Core<T, S> {
    pub(crate) id: u64,
    items: RefCell<S>,
    /// `None`: unbounded; `Some(0)`: a rendezvous.
    capacity: Option<usize>,
    /// Each is handed an item.
    getters: RefCell<WaitList<(), T>>,
    /// Each waits with its item; handed `()` when the item is taken in.
    putters: RefCell<WaitList<T, ()>>,
    /// `peek`, and `wait` over several objects: told "look again" whenever
    /// an item arrives that a getter did not take at once.
    watchers: RefCell<WaitList>,
    /// Items put and not yet marked done (`task_done`).
    unfinished: Cell<usize>,
    /// `join`: told when `unfinished` reaches 0.
    all_done: RefCell<WaitList>,
}

impl<T, S: Store<T>> Core<T, S> {
    pub(crate) fn new(capacity: Option<usize>) -> Core<T, S> {
        Core {
            id: next_object_id(),
            items: RefCell::new(S::default()),
            capacity,
            getters: RefCell::default(),
            putters: RefCell::default(),
            watchers: RefCell::default(),
            unfinished: Cell::new(0),
            all_done: RefCell::default(),
        }
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.capacity
    }

    pub(crate) fn len(&self) -> usize {
        self.items.borrow().len()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.capacity.is_some_and(|cap| self.len() >= cap)
    }

    /// Whether a `get` would return at once: an item is stored, or (a
    /// rendezvous) a putter waits with one.
    pub(crate) fn has_item(&self) -> bool {
        self.len() > 0 || !self.putters.borrow().is_empty()
    }

    pub(crate) fn getters(&self) -> usize {
        self.getters.borrow().len()
    }

    pub(crate) fn putters(&self) -> usize {
        self.putters.borrow().len()
    }

    pub(crate) fn unfinished(&self) -> usize {
        self.unfinished.get()
    }

    pub(crate) fn watchers(&self) -> &RefCell<WaitList> {
        &self.watchers
    }

    /// Add `item` if a getter waits for it or there is room; else hand it back.
    pub(crate) fn try_put(&self, item: T) -> Result<(), T> {
        let item = match self.getters.borrow_mut().grant_oldest(item) {
            Ok(()) => {
                self.unfinished.set(self.unfinished.get() + 1);
                return Ok(());
            }
            Err(item) => item,
        };
        if self.is_full() {
            return Err(item);
        }
        self.items.borrow_mut().push(item);
        self.unfinished.set(self.unfinished.get() + 1);
        self.watchers.borrow_mut().grant_all(|| ());
        Ok(())
    }

    /// Take the next item if one is there (a putter's, for a rendezvous).
    pub(crate) fn try_get(&self) -> Option<T> {
        let stored = self.items.borrow_mut().pop();
        match stored {
            Some(item) => {
                // Room now: the oldest putter's item comes in.
                if let Ok(next) = self.putters.borrow_mut().grant_oldest(()) {
                    self.items.borrow_mut().push(next);
                }
                Some(item)
            }
            // Nothing stored: a rendezvous takes straight from a putter.
            None => self.putters.borrow_mut().grant_oldest(()).ok(),
        }
    }

    /// An item taken out but not used (its getter was killed after being
    /// handed it): to the next getter, or back where it came from, first
    /// out again (even a rendezvous keeps it then, rather than lose it).
    fn give_back(&self, item: T) {
        if let Err(item) = self.getters.borrow_mut().grant_oldest(item) {
            self.items.borrow_mut().give_back(item);
            self.watchers.borrow_mut().grant_all(|| ());
        }
    }

    pub(crate) fn put_until(&self, item: T, deadline: Option<Instant>) -> Result<(), PutError<T>> {
        let start = HubError::start_for(deadline);
        let mut item = item;
        loop {
            match self.try_put(item) {
                Ok(()) => return Ok(()),
                Err(back) => item = back,
            }
            let hub = match Hub::get() {
                Ok(hub) => hub,
                Err(error) => return Err(PutError { item, error }),
            };
            // A peeker may look at a rendezvous putter's item.
            self.watchers.borrow_mut().grant_all(|| ());
            let on = WaitOn::QueuePut(self.id);
            match wait_for_grant(&hub, &self.putters, on, deadline, item, drop) {
                Waited::Granted(()) => {
                    self.unfinished.set(self.unfinished.get() + 1);
                    return Ok(());
                }
                Waited::Ended(back, Wake::TimedOut) => {
                    return Err(PutError {
                        item: back,
                        error: HubError::timed_out(deadline, start),
                    })
                }
                Waited::Ended(back, _) => item = back,
                Waited::Failed(error, Some(item)) => return Err(PutError { item, error }),
                // Taken in just as the wait failed: the put happened.
                Waited::Failed(_, None) => {
                    self.unfinished.set(self.unfinished.get() + 1);
                    return Ok(());
                }
            }
        }
    }

    pub(crate) fn get_until(&self, deadline: Option<Instant>) -> Result<T, HubError> {
        let start = HubError::start_for(deadline);
        loop {
            if let Some(item) = self.try_get() {
                return Ok(item);
            }
            let hub = Hub::get()?;
            let on = WaitOn::QueueGet(self.id);
            match wait_for_grant(&hub, &self.getters, on, deadline, (), |item| {
                self.give_back(item)
            }) {
                Waited::Granted(item) => return Ok(item),
                Waited::Ended((), Wake::TimedOut) => {
                    return Err(HubError::timed_out(deadline, start))
                }
                Waited::Ended(..) => {}
                Waited::Failed(e, _) => return Err(e),
            }
        }
    }

    /// The next item, left in place: a clone of it.
    pub(crate) fn try_peek(&self) -> Option<T>
    where
        T: Clone,
    {
        if let Some(item) = self.items.borrow().peek() {
            return Some(item.clone());
        }
        self.putters.borrow().oldest().cloned()
    }

    pub(crate) fn peek_until(&self, deadline: Option<Instant>) -> Result<T, HubError>
    where
        T: Clone,
    {
        let start = HubError::start_for(deadline);
        loop {
            if let Some(item) = self.try_peek() {
                return Ok(item);
            }
            let hub = Hub::get()?;
            let on = WaitOn::QueuePeek(self.id);
            match wait_for_grant(&hub, &self.watchers, on, deadline, (), drop) {
                Waited::Ended((), Wake::TimedOut) => {
                    return Err(HubError::timed_out(deadline, start))
                }
                Waited::Granted(()) | Waited::Ended(..) => {}
                Waited::Failed(e, _) => return Err(e),
            }
        }
    }

    pub(crate) fn task_done(&self) -> Result<(), TaskDoneTooOften> {
        let left = self
            .unfinished
            .get()
            .checked_sub(1)
            .ok_or(TaskDoneTooOften)?;
        self.unfinished.set(left);
        if left == 0 {
            self.all_done.borrow_mut().grant_all(|| ());
        }
        Ok(())
    }

    pub(crate) fn join_until(&self, deadline: Option<Instant>) -> Result<(), HubError> {
        let on = WaitOn::QueueJoin(self.id);
        wait_until_ready(&self.all_done, on, deadline, || self.unfinished.get() == 0)
    }
}
