//! `Semaphore`: at most N holders at once, served first come, first served.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{wait_for_grant, WaitList, Waited};
use crate::hub::{next_object_id, Hub, HubError, WaitOn, Wake};

/// A counter of permits: `acquire` takes one (waiting cooperatively while
/// none is free), dropping the guard gives it back. Clones share the permits.
///
/// Strictly first come, first served: a permit given back while greenlets
/// wait goes to the one that has waited longest, and is its own from then
/// on, even if the releaser (or anyone) asks for a permit again before the
/// woken waiter runs. (gevent's `Semaphore` is fair in the same way.)
///
/// ```
/// let sem = stage_hub::Semaphore::new(1);
/// let held = sem.acquire()?;
/// assert!(sem.try_acquire().is_none());
/// drop(held);
/// assert_eq!(sem.available(), 1);
/// # Ok::<(), stage_hub::HubError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Semaphore {
    inner: Rc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: u64,
    /// Free permits. While anyone waits this is 0: a permit given back goes
    /// straight to the oldest waiter.
    permits: Cell<usize>,
    waiters: RefCell<WaitList>,
}

impl Inner {
    /// Give a permit back: to the oldest waiter if there is one.
    fn release(&self) {
        let handed = self.waiters.borrow_mut().grant_oldest(()).is_ok();
        if !handed {
            self.permits.set(self.permits.get() + 1);
        }
    }
}

/// A permit, given back when dropped.
#[derive(Debug)]
pub struct SemaphoreGuard {
    inner: Rc<Inner>,
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            inner: Rc::new(Inner {
                id: next_object_id(),
                permits: Cell::new(permits),
                waiters: RefCell::new(WaitList::default()),
            }),
        }
    }

    /// Permits free right now.
    pub fn available(&self) -> usize {
        self.inner.permits.get()
    }

    /// Take a permit if one is free (never ahead of a greenlet that waits).
    pub fn try_acquire(&self) -> Option<SemaphoreGuard> {
        let free = self.inner.permits.get();
        if free == 0 {
            return None;
        }
        self.inner.permits.set(free - 1);
        Some(SemaphoreGuard {
            inner: self.inner.clone(),
        })
    }

    /// Take a permit, waiting cooperatively until one is free.
    /// [`HubError::Deadlock`] if none can ever be given back.
    pub fn acquire(&self) -> Result<SemaphoreGuard, HubError> {
        self.acquire_until(None)
    }

    /// Take a permit, waiting at most `limit`; [`HubError::TimedOut`] if
    /// none was free in time.
    pub fn acquire_timeout(&self, limit: Duration) -> Result<SemaphoreGuard, HubError> {
        HubError::within(limit, |deadline| self.acquire_until(deadline))
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Result<SemaphoreGuard, HubError> {
        let start = HubError::start_for(deadline);
        loop {
            if let Some(guard) = self.try_acquire() {
                return Ok(guard);
            }
            let hub = Hub::get()?;
            let on = WaitOn::Semaphore(self.inner.id);
            // A permit handed to us that we cannot use (killed after being
            // woken) goes to the next in line.
            let inner = &self.inner;
            match wait_for_grant(&hub, &inner.waiters, on, deadline, (), |()| inner.release()) {
                Waited::Granted(()) => {
                    return Ok(SemaphoreGuard {
                        inner: self.inner.clone(),
                    })
                }
                Waited::Ended((), Wake::TimedOut) => {
                    return Err(HubError::timed_out(deadline, start))
                }
                Waited::Ended(..) => {}
                Waited::Failed(e, _) => return Err(e),
            }
        }
    }
}

impl Drop for SemaphoreGuard {
    fn drop(&mut self) {
        self.inner.release();
    }
}

#[cfg(test)]
impl Semaphore {
    pub(crate) fn inner_waiters(&self) -> usize {
        self.inner.waiters.borrow().len()
    }
}
