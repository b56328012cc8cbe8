//! `Event`: a flag that greenlets wait to see set.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{wait_until_ready, WaitList};
use crate::hub::{next_object_id, HubError, WaitOn};

/// A flag greenlets can wait for: `set` wakes every waiter, and later waits
/// return at once until `clear`. Clones share the flag.
///
/// As in gevent, a wait that was woken by `set` succeeds even if the flag
/// is cleared again before the waiter runs: all it can know is that the
/// flag was set at least once while it waited (check [`Event::is_set`] if
/// it matters whether it still is).
///
/// ```
/// use stage_hub::{spawn, Event};
/// let ready = Event::new();
/// let setter = ready.clone();
/// spawn(move || setter.set());
/// ready.wait()?; // parks main until the greenlet sets it
/// assert!(ready.is_set());
/// # Ok::<(), stage_hub::HubError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Event {
    inner: Rc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: u64,
    set: Cell<bool>,
    waiters: RefCell<WaitList>,
}

impl Event {
    /// An event that is not set.
    pub fn new() -> Event {
        Event {
            inner: Rc::new(Inner {
                id: next_object_id(),
                set: Cell::new(false),
                waiters: RefCell::new(WaitList::default()),
            }),
        }
    }

    /// Set the flag and wake every greenlet waiting now: each of their
    /// waits returns `Ok`, whatever happens to the flag before they run.
    pub fn set(&self) {
        self.inner.set.set(true);
        self.inner.waiters.borrow_mut().grant_all(|| ());
    }

    /// Lower the flag: later waits park again.
    pub fn clear(&self) {
        self.inner.set.set(false);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.inner.set.get()
    }

    /// gevent's name for [`Event::is_set`] (what `wait` over several
    /// objects asks).
    pub fn ready(&self) -> bool {
        self.is_set()
    }

    /// Wait until the flag is set. [`HubError::Deadlock`] if nothing could
    /// ever set it.
    pub fn wait(&self) -> Result<(), HubError> {
        self.wait_until(None)
    }

    /// Wait at most `limit`; [`HubError::TimedOut`] if the flag was not set
    /// in time.
    pub fn wait_timeout(&self, limit: Duration) -> Result<(), HubError> {
        HubError::within(limit, |deadline| self.wait_until(deadline))
    }

    /// Wait until the flag is set or `deadline` passes.
    pub(crate) fn wait_until(&self, deadline: Option<Instant>) -> Result<(), HubError> {
        let on = WaitOn::Event(self.inner.id);
        wait_until_ready(&self.inner.waiters, on, deadline, || self.is_set())
    }
}

impl<'a> From<&'a Event> for crate::hub::Waitable<'a> {
    fn from(event: &'a Event) -> Self {
        crate::hub::Waitable::listed(&event.inner.waiters, move || event.is_set())
    }
}

impl Default for Event {
    fn default() -> Self {
        Event::new()
    }
}

#[cfg(test)]
impl Event {
    pub(crate) fn inner_waiters(&self) -> usize {
        self.inner.waiters.borrow().len()
    }
}
