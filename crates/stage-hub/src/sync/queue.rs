//! `Queue`: items passed between greenlets, bounded or unbounded.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{park_on, WaitList};
use crate::hub::{next_object_id, Hub, HubError, WaitOn, Wake};

/// A FIFO queue between greenlets: `get` waits while it is empty, `put`
/// waits while a bounded queue is full. Clones share the queue.
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
#[derive(Debug)]
pub struct Queue<T> {
    inner: Rc<Inner<T>>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            inner: self.inner.clone(),
        }
    }
}

#[derive(Debug)]
struct Inner<T> {
    id: u64,
    items: RefCell<VecDeque<T>>,
    capacity: Option<usize>,
    getters: RefCell<WaitList>,
    putters: RefCell<WaitList>,
}

impl<T> Queue<T> {
    /// A queue that never fills: `put` never waits.
    pub fn unbounded() -> Queue<T> {
        Queue::with_capacity(None)
    }

    /// A queue holding at most `capacity` items (at least 1): `put` waits
    /// while it is full.
    pub fn bounded(capacity: usize) -> Queue<T> {
        Queue::with_capacity(Some(capacity.max(1)))
    }

    fn with_capacity(capacity: Option<usize>) -> Queue<T> {
        Queue {
            inner: Rc::new(Inner {
                id: next_object_id(),
                items: RefCell::new(VecDeque::new()),
                capacity,
                getters: RefCell::new(WaitList::default()),
                putters: RefCell::new(WaitList::default()),
            }),
        }
    }

    /// Items waiting to be taken.
    pub fn len(&self) -> usize {
        self.inner.items.borrow().len()
    }

    /// Whether no item is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound, if any.
    pub fn capacity(&self) -> Option<usize> {
        self.inner.capacity
    }

    fn is_full(&self) -> bool {
        self.inner.capacity.is_some_and(|cap| self.len() >= cap)
    }

    /// Add `item` if there is room, else hand it back.
    pub fn try_put(&self, item: T) -> Result<(), T> {
        if self.is_full() {
            return Err(item);
        }
        self.inner.items.borrow_mut().push_back(item);
        self.inner.getters.borrow_mut().wake_one();
        Ok(())
    }

    /// Take the oldest item, if any.
    pub fn try_get(&self) -> Option<T> {
        let item = self.inner.items.borrow_mut().pop_front()?;
        self.inner.putters.borrow_mut().wake_one();
        Some(item)
    }

    /// Add `item`, waiting cooperatively while the queue is full. On
    /// [`HubError::Deadlock`] (nobody will ever take an item) the item is dropped.
    pub fn put(&self, item: T) -> Result<(), HubError> {
        let mut item = item;
        loop {
            match self.try_put(item) {
                Ok(()) => return Ok(()),
                Err(back) => item = back,
            }
            let hub = Hub::get()?;
            let _pass_on = PassOn(self, Side::Put);
            park_on(
                &hub,
                &self.inner.putters,
                WaitOn::QueuePut(self.inner.id),
                None,
            )?;
        }
    }

    /// Take the oldest item, waiting cooperatively while the queue is empty.
    pub fn get(&self) -> Result<T, HubError> {
        loop {
            if let Some(item) = self.get_until(None)? {
                return Ok(item);
            }
        }
    }

    /// Take the oldest item, waiting at most `limit`; `Ok(None)` if none came.
    pub fn get_timeout(&self, limit: Duration) -> Result<Option<T>, HubError> {
        self.get_until(Some(Instant::now() + limit))
    }

    fn get_until(&self, deadline: Option<Instant>) -> Result<Option<T>, HubError> {
        loop {
            if let Some(item) = self.try_get() {
                return Ok(Some(item));
            }
            let hub = Hub::get()?;
            let _pass_on = PassOn(self, Side::Get);
            let wake = park_on(
                &hub,
                &self.inner.getters,
                WaitOn::QueueGet(self.inner.id),
                deadline,
            )?;
            if matches!(wake, Wake::TimedOut) {
                return Ok(self.try_get());
            }
        }
    }
}

enum Side {
    Get,
    Put,
}

/// If a wait unwinds (a kill, a timeout), pass on a wake-up this greenlet
/// may have taken but not used, so an item or a free slot is never stranded.
/// (A wait that returns normally goes on to take what it was woken for.)
struct PassOn<'a, T>(&'a Queue<T>, Side);

impl<T> Drop for PassOn<'_, T> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let q = self.0;
        match self.1 {
            Side::Get if !q.is_empty() => {
                q.inner.getters.borrow_mut().wake_one();
            }
            Side::Put if !q.is_full() => {
                q.inner.putters.borrow_mut().wake_one();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
impl<T> Queue<T> {
    pub(crate) fn inner_getters(&self) -> usize {
        self.inner.getters.borrow().len()
    }

    pub(crate) fn inner_putters(&self) -> usize {
        self.inner.putters.borrow().len()
    }
}
