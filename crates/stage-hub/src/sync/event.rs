//! `Event`: a flag that greenlets wait to see set.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{park_on, WaitList};
use crate::hub::{next_object_id, Hub, HubError, WaitOn, Wake};

/// A flag greenlets can wait for: `set` wakes every waiter, and later waits
/// return at once until `clear`. Clones share the flag.
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

    /// Set the flag and wake every waiter.
    pub fn set(&self) {
        self.inner.set.set(true);
        self.inner.waiters.borrow_mut().wake_all();
    }

    /// Lower the flag: later waits park again.
    pub fn clear(&self) {
        self.inner.set.set(false);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.inner.set.get()
    }

    /// Wait until the flag is set. [`HubError::Deadlock`] if nothing could
    /// ever set it.
    pub fn wait(&self) -> Result<(), HubError> {
        self.wait_until(None).map(|_| ())
    }

    /// Wait at most `limit`; `Ok(false)` if the flag was still not set.
    pub fn wait_timeout(&self, limit: Duration) -> Result<bool, HubError> {
        self.wait_until(Some(Instant::now() + limit))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<bool, HubError> {
        while !self.is_set() {
            let hub = Hub::get()?;
            let wake = park_on(
                &hub,
                &self.inner.waiters,
                WaitOn::Event(self.inner.id),
                deadline,
            )?;
            if matches!(wake, Wake::TimedOut) {
                return Ok(self.is_set());
            }
        }
        Ok(true)
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
