//! Queues between greenlets: [`Queue`] (first in, first out), [`LifoQueue`],
//! [`PriorityQueue`] (lowest first) and [`Channel`] (a rendezvous: a put
//! waits until a getter takes the item), gevent's four.
//!
//! They are one queue (`core.rs`) with three ways of storing items; the
//! methods below are the same on each. Getters and putters are served first
//! come, first served, and an item handed to a getter is that getter's.
//!
//! Every method with a time limit returns [`HubError::TimedOut`] when the
//! limit passes (a put hands its item back beside it, in a [`PutError`]);
//! `try_` methods never wait.

mod core;

use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use self::core::{Core, Lifo, Lowest};
pub use self::core::{PutError, TaskDoneTooOften};
use crate::hub::HubError;

macro_rules! queue_type {
    (
        $(#[$doc:meta])*
        $name:ident<T $(: $bound:path)?>, $store:ty
    ) => {
        $(#[$doc])*
        pub struct $name<T $(: $bound)?> {
            core: Rc<Core<T, $store>>,
        }

        impl<'a, T $(: $bound)?> From<&'a $name<T>> for crate::hub::Waitable<'a> {
            fn from(queue: &'a $name<T>) -> Self {
                crate::hub::Waitable::listed(queue.core.watchers(), move || queue.ready())
            }
        }

        impl<T $(: $bound)?> Clone for $name<T> {
            fn clone(&self) -> Self {
                $name { core: self.core.clone() }
            }
        }

        impl<T $(: $bound)?> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("id", &self.core.id)
                    .field("len", &self.core.len())
                    .field("capacity", &self.core.capacity())
                    .finish_non_exhaustive()
            }
        }

        impl<T $(: $bound)?> $name<T> {
            /// An empty one holding at most `capacity` items (`None`: no
            /// bound; `Some(0)`: a rendezvous).
            fn with_bound(capacity: Option<usize>) -> $name<T> {
                $name {
                    core: Rc::new(Core::new(capacity)),
                }
            }

            /// Items stored now (a rendezvous stores none).
            pub fn len(&self) -> usize {
                self.core.len()
            }

            /// Whether no item is stored.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// The bound, if any (`Some(0)`: a rendezvous).
            pub fn capacity(&self) -> Option<usize> {
                self.core.capacity()
            }

            /// Whether a put would have to wait (always, for a rendezvous
            /// nobody waits to get from).
            pub fn is_full(&self) -> bool {
                self.core.is_full() && self.core.getters() == 0
            }

            /// Greenlets waiting to get an item now.
            pub fn waiting_getters(&self) -> usize {
                self.core.getters()
            }

            /// Greenlets waiting to put an item now.
            pub fn waiting_putters(&self) -> usize {
                self.core.putters()
            }

            /// Add `item` if a getter waits for it or there is room, without
            /// waiting; else hand it back.
            pub fn try_put(&self, item: T) -> Result<(), T> {
                self.core.try_put(item)
            }

            /// Add `item`, waiting cooperatively while the queue is full.
            /// On failure (a deadlock: nobody will ever take an item) the
            /// item comes back in the error.
            pub fn put(&self, item: T) -> Result<(), PutError<T>> {
                self.core.put_until(item, None)
            }

            /// Add `item`, waiting at most `limit` for room;
            /// [`HubError::TimedOut`] (and the item) if none came.
            pub fn put_timeout(&self, item: T, limit: Duration) -> Result<(), PutError<T>> {
                let start = Instant::now();
                self.core.put_until(item, Some(start + limit)).map_err(|e| PutError {
                    item: e.item,
                    error: e.error.with_limit(limit, start),
                })
            }

            /// Take the next item if there is one, without waiting.
            pub fn try_get(&self) -> Option<T> {
                self.core.try_get()
            }

            /// Take the next item, waiting cooperatively until there is one.
            pub fn get(&self) -> Result<T, HubError> {
                self.core.get_until(None)
            }

            /// Take the next item, waiting at most `limit`;
            /// [`HubError::TimedOut`] if none came.
            pub fn get_timeout(&self, limit: Duration) -> Result<T, HubError> {
                HubError::within(limit, |deadline| self.core.get_until(deadline))
            }

            /// The next item, left in the queue (a clone), without waiting.
            pub fn try_peek(&self) -> Option<T>
            where
                T: Clone,
            {
                self.core.try_peek()
            }

            /// The next item, left in the queue (a clone), waiting until
            /// there is one. An item handed straight to a waiting getter
            /// never sits in the queue, so a peek only sees items nobody
            /// waited for.
            pub fn peek(&self) -> Result<T, HubError>
            where
                T: Clone,
            {
                self.core.peek_until(None)
            }

            /// [`peek`](Self::peek), waiting at most `limit`.
            pub fn peek_timeout(&self, limit: Duration) -> Result<T, HubError>
            where
                T: Clone,
            {
                HubError::within(limit, |deadline| self.core.peek_until(deadline))
            }

            /// Mark one item taken from the queue as dealt with (gevent's
            /// `JoinableQueue.task_done`): [`join`](Self::join) returns once
            /// every item put has been.
            pub fn task_done(&self) -> Result<(), TaskDoneTooOften> {
                self.core.task_done()
            }

            /// Items put and not yet marked done with
            /// [`task_done`](Self::task_done).
            pub fn unfinished(&self) -> usize {
                self.core.unfinished()
            }

            /// Wait until every item put has been marked done.
            pub fn join(&self) -> Result<(), HubError> {
                self.core.join_until(None)
            }

            /// [`join`](Self::join), waiting at most `limit`.
            pub fn join_timeout(&self, limit: Duration) -> Result<(), HubError> {
                HubError::within(limit, |deadline| self.core.join_until(deadline))
            }

            /// Whether a `get` would return at once: an item is there (or,
            /// for a rendezvous, a putter waits with one). What
            /// [`wait`](crate::hub::wait) looks at.
            pub fn ready(&self) -> bool {
                self.core.has_item()
            }
        }
    };
}

queue_type! {
    /// A first-in, first-out queue between greenlets: `get` waits while it
    /// is empty, `put` waits while a bounded queue is full. Clones share the
    /// queue.
    ///
    /// `Queue::bounded(0)` is a rendezvous, like a [`Channel`] (and
    /// crossbeam's `bounded(0)`): a put waits until a getter takes its item.
    ///
    /// ```
    /// use stage_hub::{spawn, Queue};
    /// let q = Queue::bounded(1);
    /// let tx = q.clone();
    /// let producer = spawn(move || (0..3).try_for_each(|i| tx.put(i)));
    /// let got: Vec<i32> = (0..3).map(|_| q.get().unwrap()).collect();
    /// assert_eq!(got, [0, 1, 2]);
    /// producer.join()??;
    /// # Ok::<(), stage_hub::HubError>(())
    /// ```
    Queue<T>, std::collections::VecDeque<T>
}

impl<T> Queue<T> {
    /// A queue that never fills: `put` never waits.
    pub fn unbounded() -> Queue<T> {
        Queue::with_bound(None)
    }

    /// A queue holding at most `capacity` items: `put` waits while it is
    /// full. A capacity of 0 is a rendezvous (see [`Channel`]).
    pub fn bounded(capacity: usize) -> Queue<T> {
        Queue::with_bound(Some(capacity))
    }
}

queue_type! {
    /// A last-in, first-out queue (a stack) between greenlets, gevent's
    /// `LifoQueue`. Clones share it.
    ///
    /// ```
    /// let q = stage_hub::LifoQueue::unbounded();
    /// for i in 1..=3 {
    ///     q.put(i)?;
    /// }
    /// assert_eq!([q.get()?, q.get()?, q.get()?], [3, 2, 1]);
    /// # Ok::<(), stage_hub::HubError>(())
    /// ```
    LifoQueue<T>, Lifo<T>
}

impl<T> LifoQueue<T> {
    /// A stack that never fills.
    pub fn unbounded() -> LifoQueue<T> {
        LifoQueue::with_bound(None)
    }

    /// A stack holding at most `capacity` items (0: a rendezvous).
    pub fn bounded(capacity: usize) -> LifoQueue<T> {
        LifoQueue::with_bound(Some(capacity))
    }
}

queue_type! {
    /// A queue whose `get` returns the lowest item first, gevent's
    /// `PriorityQueue` (put `(priority, item)` pairs to order by a
    /// priority). Clones share it.
    ///
    /// ```
    /// let q = stage_hub::PriorityQueue::unbounded();
    /// for job in [(3, "later"), (1, "first"), (2, "then")] {
    ///     q.put(job)?;
    /// }
    /// assert_eq!(q.get()?.1, "first");
    /// assert_eq!(q.get()?.1, "then");
    /// # Ok::<(), stage_hub::HubError>(())
    /// ```
    PriorityQueue<T: Ord>, Lowest<T>
}

impl<T: Ord> PriorityQueue<T> {
    /// A priority queue that never fills.
    pub fn unbounded() -> PriorityQueue<T> {
        PriorityQueue::with_bound(None)
    }

    /// A priority queue holding at most `capacity` items (0: a rendezvous).
    pub fn bounded(capacity: usize) -> PriorityQueue<T> {
        PriorityQueue::with_bound(Some(capacity))
    }
}

queue_type! {
    /// A rendezvous between greenlets, gevent's `Channel`: nothing is
    /// stored, a `put` waits until a getter takes its item, and a `get`
    /// waits until a putter brings one. `try_put` succeeds only if a getter
    /// is waiting. Clones share it. (Same as `Queue::bounded(0)`.)
    ///
    /// ```
    /// use std::{cell::RefCell, rc::Rc};
    /// use stage_hub::{spawn, Channel};
    /// let log = Rc::new(RefCell::new(Vec::new()));
    /// let ch = Channel::new();
    /// let (tx, l) = (ch.clone(), log.clone());
    /// let producer = spawn(move || {
    ///     tx.put("hello").unwrap();
    ///     l.borrow_mut().push("put returned"); // only once it was taken
    /// });
    /// stage_hub::yield_now(); // the producer waits in put: nobody gets yet
    /// assert!(log.borrow().is_empty());
    /// assert_eq!(ch.get()?, "hello");
    /// producer.join()?;
    /// assert_eq!(*log.borrow(), ["put returned"]);
    /// # Ok::<(), stage_hub::HubError>(())
    /// ```
    Channel<T>, std::collections::VecDeque<T>
}

impl<T> Channel<T> {
    /// A new rendezvous.
    pub fn new() -> Channel<T> {
        Channel::with_bound(Some(0))
    }
}

impl<T> Default for Channel<T> {
    fn default() -> Self {
        Channel::new()
    }
}

#[cfg(test)]
impl<T> Queue<T> {
    pub(crate) fn inner_getters(&self) -> usize {
        self.core.getters()
    }

    pub(crate) fn inner_putters(&self) -> usize {
        self.core.putters()
    }
}
