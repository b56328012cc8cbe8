//! `Semaphore`: at most N holders at once.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::{park_on, WaitList};
use crate::hub::{next_object_id, Hub, HubError, WaitOn};

/// A counter of permits: `acquire` takes one (waiting cooperatively while
/// none is free), dropping the guard gives it back. Clones share the permits.
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
    permits: Cell<usize>,
    waiters: RefCell<WaitList>,
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

    /// Take a permit if one is free.
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
        // If this wait unwinds (a kill, a timeout) after a release woke it,
        // pass the wake-up on, so the free permit is not stranded.
        struct PassOn<'a>(&'a Inner);
        impl Drop for PassOn<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() && self.0.permits.get() > 0 {
                    self.0.waiters.borrow_mut().wake_one();
                }
            }
        }
        loop {
            if let Some(guard) = self.try_acquire() {
                return Ok(guard);
            }
            let hub = Hub::get()?;
            let _pass_on = PassOn(&self.inner);
            park_on(
                &hub,
                &self.inner.waiters,
                WaitOn::Semaphore(self.inner.id),
                None,
            )?;
        }
    }
}

impl Drop for SemaphoreGuard {
    fn drop(&mut self) {
        self.inner.permits.set(self.inner.permits.get() + 1);
        self.inner.waiters.borrow_mut().wake_one();
    }
}

#[cfg(test)]
impl Semaphore {
    pub(crate) fn inner_waiters(&self) -> usize {
        self.inner.waiters.borrow().len()
    }
}
