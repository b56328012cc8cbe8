//! `Pool`: a [`Group`] with a bound (gevent's `gevent.pool.Pool`): at most
//! N of its greenlets run at once, and spawning waits for a free slot.

use std::ops::Deref;
use std::time::{Duration, Instant};

use super::{wait_for_grant, Group, Semaphore, Waited};
use crate::hub::{Handle, Hub, HubError, WaitOn};

/// A [`Group`] with a bound (gevent's `Pool`): at most `size` of its
/// greenlets run at once, and [`spawn`](Group::spawn) waits
/// (cooperatively) for a free slot. Everything a group does, a pool does
/// (it dereferences to one). Clones share the pool.
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
#[derive(Clone)]
pub struct Pool {
    group: Group,
    size: usize,
}

impl Pool {
    /// A pool running at most `size` greenlets at once (at least 1).
    pub fn new(size: usize) -> Pool {
        let size = size.max(1);
        Pool {
            group: Group::with_slots(Some(Semaphore::new(size))),
            size,
        }
    }

    /// The most greenlets it runs at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Greenlets of this pool alive now.
    pub fn running(&self) -> usize {
        self.group.len()
    }

    /// Add a greenlet spawned elsewhere once a slot is free (it counts
    /// against the bound until it finishes or is discarded), waiting
    /// cooperatively until then; as gevent's `Pool.add`.
    pub fn add<T: 'static>(&self, handle: &Handle<T>) -> Result<(), HubError> {
        let slot = self.group.take_slot(None)?;
        self.group.enlist(handle, slot);
        Ok(())
    }

    /// [`add`](Self::add), waiting at most `limit` for a slot;
    /// [`HubError::TimedOut`] if none freed up.
    pub fn add_timeout<T: 'static>(
        &self,
        handle: &Handle<T>,
        limit: Duration,
    ) -> Result<(), HubError> {
        let slot = HubError::within(limit, |deadline| self.group.take_slot(deadline))?;
        self.group.enlist(handle, slot);
        Ok(())
    }

    /// Free slots right now.
    pub fn free(&self) -> usize {
        self.group
            .inner
            .slots
            .as_ref()
            .map_or(usize::MAX, Semaphore::available)
    }

    /// Wait until a slot is free, without taking it, and return how many
    /// are (gevent's `wait_available`). Greenlets already waiting in `spawn`
    /// are served first, so a slot may be gone again by the time this
    /// greenlet spawns.
    pub fn wait_available(&self) -> Result<usize, HubError> {
        self.wait_available_until(None)
    }

    /// [`wait_available`](Self::wait_available), waiting at most `limit`.
    pub fn wait_available_timeout(&self, limit: Duration) -> Result<usize, HubError> {
        HubError::within(limit, |deadline| self.wait_available_until(deadline))
    }

    fn wait_available_until(&self, deadline: Option<Instant>) -> Result<usize, HubError> {
        let start = HubError::start_for(deadline);
        loop {
            if self.free() > 0 {
                return Ok(self.free());
            }
            let hub = Hub::get()?;
            let on = WaitOn::PoolSlot(self.group.inner.id);
            match wait_for_grant(&hub, &self.group.inner.freed, on, deadline, (), drop) {
                Waited::Ended((), crate::hub::Wake::TimedOut) if self.free() == 0 => {
                    return Err(HubError::timed_out(deadline, start));
                }
                Waited::Failed(e, _) => return Err(e),
                _ => {}
            }
        }
    }
}

impl Deref for Pool {
    type Target = Group;

    fn deref(&self) -> &Group {
        &self.group
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("size", &self.size)
            .field("running", &self.running())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
impl Pool {
    pub(crate) fn inner_idle_waiters(&self) -> usize {
        self.group.inner.freed.borrow().len()
    }
}
