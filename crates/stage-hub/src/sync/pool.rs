//! `Pool`: spawn greenlets, at most N running at once.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::{wait_for_grant, Semaphore, SemaphoreGuard, WaitList, Waited};
use crate::hub::{next_object_id, Builder, Handle, Hub, HubError, WaitOn};

/// Caps how many greenlets run at once: [`Pool::spawn`] waits
/// (cooperatively) for a free slot, as gevent's `Pool.spawn` does. Clones
/// share the pool.
///
/// ```
/// use std::time::Duration;
/// let pool = stage_hub::Pool::new(2);
/// for _ in 0..5 {
///     pool.spawn(|| stage_hub::sleep(Duration::from_millis(1)))?;
///     assert!(pool.running() <= 2);
/// }
/// pool.join()?;
/// assert_eq!(pool.running(), 0);
/// # Ok::<(), stage_hub::HubError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Pool {
    inner: Rc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: u64,
    size: usize,
    slots: Semaphore,
    running: Cell<usize>,
    idle: RefCell<WaitList>,
}

/// Held by a pool greenlet for as long as it lives.
struct Slot {
    pool: Rc<Inner>,
    _permit: SemaphoreGuard,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let left = self.pool.running.get() - 1;
        self.pool.running.set(left);
        if left == 0 {
            self.pool.idle.borrow_mut().grant_all(|| ());
        }
    }
}

impl Pool {
    /// A pool running at most `size` greenlets at once (at least 1).
    pub fn new(size: usize) -> Pool {
        let size = size.max(1);
        Pool {
            inner: Rc::new(Inner {
                id: next_object_id(),
                size,
                slots: Semaphore::new(size),
                running: Cell::new(0),
                idle: RefCell::new(WaitList::default()),
            }),
        }
    }

    /// The most greenlets it runs at once.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// Greenlets of this pool alive now (spawned and not finished).
    pub fn running(&self) -> usize {
        self.inner.running.get()
    }

    /// Free slots right now.
    pub fn free(&self) -> usize {
        self.inner.slots.available()
    }

    /// Spawn `f` once a slot is free, waiting cooperatively until then.
    pub fn spawn<T, F>(&self, f: F) -> Result<Handle<T>, HubError>
    where
        T: 'static,
        F: FnOnce() -> T + 'static,
    {
        let permit = self.inner.slots.acquire()?;
        self.inner.running.set(self.inner.running.get() + 1);
        let slot = Slot {
            pool: self.inner.clone(),
            _permit: permit,
        };
        Builder::new().spawn(move || {
            let _slot = slot;
            f()
        })
    }

    /// Wait until every greenlet of the pool has finished.
    pub fn join(&self) -> Result<(), HubError> {
        while self.running() > 0 {
            let hub = Hub::get()?;
            let on = WaitOn::PoolIdle(self.inner.id);
            if let Waited::Failed(e, _) = wait_for_grant(&hub, &self.inner.idle, on, None, (), drop)
            {
                return Err(e);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
impl Pool {
    pub(crate) fn inner_idle_waiters(&self) -> usize {
        self.inner.idle.borrow().len()
    }
}
