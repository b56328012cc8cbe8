//! The end of a hub: when its thread exits, kill the greenlets still
//! waiting, free the hub, and close its descriptors.
//!
//! A greenlet parked in the hub holds the hub (an `Rc`) on its stack, and
//! the hub holds the greenlet: left alone, a thread that ends with anyone
//! still waiting would leak both, with the poller's descriptors, every stack
//! and whatever the greenlets' locals own (sockets included). A thread pool
//! that runs hubs would leak without bound. So at thread exit the hub kills
//! (unwinds) every greenlet it knows, as gevent's hub does when it is
//! destroyed, then lets go of itself:
//!
//! ```text
//!   thread exit ─► HUB_CLOSER's destructor          (on the main greenlet)
//!                    closing = true: from now on every wait returns
//!                      HubError::Closed at once, and nothing spawns
//!                    for each greenlet it knows (spawned, or waiting here):
//!                      kill it and come back (WeakGreenlet::kill):
//!                      it unwinds, its destructors run
//!                    close the epoll instance and the waker's eventfd
//!                    forget the hub: the last Rc goes, the hub greenlet
//!                      is killed like any greenlet whose last handle goes
//! ```
//!
//! Killing needs the greenlet machinery of the thread, itself a
//! thread-local that is torn down at thread exit. Thread-local destructors
//! run in the reverse order of their first use (glibc; Rust promises no
//! order), and `HUB_CLOSER` is first used right after the hub's own
//! greenlet was made, so it runs first. Should it ever run after the
//! greenlets were torn down, it cannot switch any more: it closes the
//! descriptors anyway and leaves the stacks, as stage 3 leaves the stacks
//! of greenlets still suspended when their thread ends.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Hub, HubError, TaskId};

/// Hubs alive in the process (made and not yet freed).
pub(super) static HUBS_ALIVE: AtomicUsize = AtomicUsize::new(0);

/// How many hubs exist in this process right now: one per thread that has
/// used one and not yet exited. A thread's hub is freed when the thread
/// ends, even with greenlets still waiting (they are killed first), so a
/// pool of threads that run hubs comes back to where it started.
///
/// ```
/// let before = stage_hub::hub::hubs_alive();
/// std::thread::spawn(|| {
///     let _sleeper = stage_hub::spawn(|| stage_hub::sleep(std::time::Duration::from_secs(60)));
///     stage_hub::yield_now(); // it parks; the thread ends with it waiting
/// })
/// .join()
/// .unwrap();
/// assert_eq!(stage_hub::hub::hubs_alive(), before);
/// ```
pub fn hubs_alive() -> usize {
    HUBS_ALIVE.load(Ordering::Relaxed)
}

/// What a thread's hub holds right now, to check that nothing piles up:
/// after any amount of work, these come back to what the greenlets alive
/// and waiting account for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Greenlets the hub knows: the ones it spawned that have not finished,
    /// main once it has waited here, and any other greenlet while it waits.
    pub greenlets: usize,
    /// Of those, the ones parked right now.
    pub parked: usize,
    /// Timers still to fire.
    pub timers: usize,
    /// Entries in the timer heap: live timers, and cancelled ones not yet
    /// cleared out (never more than about as many again).
    pub timer_entries: usize,
    /// Sockets registered with the poller.
    pub sockets: usize,
}

/// What this thread's hub holds right now (`None` if it has none).
///
/// ```
/// use std::time::Duration;
/// let q: stage_hub::Queue<u8> = stage_hub::Queue::unbounded();
/// for _ in 0..1000 {
///     assert!(q.get_timeout(Duration::ZERO).unwrap_err().is_timeout()); // each wait times out
/// }
/// let stats = stage_hub::hub::stats().unwrap();
/// assert_eq!((stats.parked, stats.timers), (0, 0)); // and leaves nothing behind
/// # Ok::<(), stage_hub::HubError>(())
/// ```
pub fn stats() -> Option<Stats> {
    let hub = existing()?;
    let st = hub.state.try_borrow().ok()?;
    Some(Stats {
        greenlets: st.tasks.len(),
        parked: st.tasks.values().filter(|t| t.parked.is_some()).count(),
        timers: st.timers.live(),
        timer_entries: st.timers.entries(),
        sockets: st.io.len(),
    })
}

/// What this thread's hub slot holds.
enum Slot {
    /// No hub yet: the first wait or spawn makes one.
    Empty,
    Live(Rc<Hub>),
    /// The thread is exiting and its hub was closed: none is made again.
    Closed,
}

/// The thread's hub. Its destructor closes the hub if [`HubCloser`] did not
/// (only if thread-locals were torn down in an unexpected order).
struct HubSlot(RefCell<Slot>);

impl Drop for HubSlot {
    fn drop(&mut self) {
        if let Slot::Live(hub) = std::mem::replace(self.0.get_mut(), Slot::Closed) {
            hub.close();
        }
    }
}

/// Closes the thread's hub at thread exit: see the module docs.
struct HubCloser;

impl Drop for HubCloser {
    fn drop(&mut self) {
        let hub = HUB
            .try_with(|slot| match &*slot.0.borrow() {
                Slot::Live(hub) => Some(hub.clone()),
                _ => None,
            })
            .ok()
            .flatten();
        if let Some(hub) = hub {
            hub.close();
            // Forget it (outside the borrow: freeing the hub kills its
            // greenlet, which runs code).
            let slot = HUB.try_with(|slot| slot.0.replace(Slot::Closed)).ok();
            drop(slot);
        }
    }
}

thread_local! {
    static HUB: HubSlot = const { HubSlot(RefCell::new(Slot::Empty)) };
    static HUB_CLOSER: HubCloser = const { HubCloser };
}

/// This thread's hub, if it has one that is not yet freed.
pub(super) fn existing() -> Option<Rc<Hub>> {
    HUB.try_with(|slot| match &*slot.0.borrow() {
        Slot::Live(hub) => Some(hub.clone()),
        _ => None,
    })
    .ok()
    .flatten()
}

/// This thread's hub, made by `create` on first use; [`HubError::Closed`]
/// while or after it closes at thread exit.
#[inline]
pub(super) fn get_or_create(
    create: impl FnOnce() -> Result<Hub, HubError>,
) -> Result<Rc<Hub>, HubError> {
    let found = HUB.try_with(|slot| match &*slot.0.borrow() {
        Slot::Live(hub) if !hub.closing.get() => Some(hub.clone()),
        _ => None,
    });
    match found {
        Ok(Some(hub)) => Ok(hub),
        _ => create_or_refuse(create),
    }
}

/// The slow half of [`get_or_create`]: make the hub, or refuse because the
/// thread is exiting.
#[cold]
#[inline(never)]
fn create_or_refuse(create: impl FnOnce() -> Result<Hub, HubError>) -> Result<Rc<Hub>, HubError> {
    let empty = HUB
        .try_with(|slot| matches!(*slot.0.borrow(), Slot::Empty))
        .unwrap_or(false);
    if !empty {
        return Err(HubError::Closed); // closing, closed, or the slot destroyed
    }
    let hub = Rc::new(create()?);
    HUB.with(|slot| *slot.0.borrow_mut() = Slot::Live(hub.clone()));
    // First used only now, after the hub's greenlet (and so the thread's
    // greenlet machinery) exists: its destructor runs before theirs.
    HUB_CLOSER.with(|_| ());
    Ok(hub)
}

impl Hub {
    /// Kill every greenlet the hub knows and close its descriptors: its
    /// thread is exiting. From the first line on, waits return
    /// [`HubError::Closed`] and spawning fails.
    pub(super) fn close(&self) {
        if self.closing.replace(true) {
            return;
        }
        // The greenlets can be switched to only while the thread's greenlet
        // machinery stands (see the module docs).
        if let Some(me) = stage_greenlet::current_id() {
            self.kill_everyone(me);
        }
        let released = self.state.try_borrow_mut().ok().map(|mut st| {
            (
                st.poller.take(),
                std::mem::take(&mut st.tasks),
                std::mem::take(&mut st.io),
                std::mem::take(&mut st.ready),
            )
        });
        drop(released); // outside the borrow: dropping runs code
        if let Ok(mut st) = self.state.try_borrow_mut() {
            st.timers = super::timer::Timers::new();
            st.jobs.clear();
            st.wakeups.clear();
        }
    }

    /// Kill, oldest first, every greenlet the hub knows but `me` (the
    /// thread's main greenlet, running the thread-local destructors), until
    /// none is left: a dying greenlet's destructor might have made another
    /// one wait (stage-greenlet's, say).
    fn kill_everyone(&self, me: TaskId) {
        loop {
            let victims: Vec<_> = {
                let mut st = self.state.borrow_mut();
                let mut ids: Vec<TaskId> =
                    st.tasks.keys().copied().filter(|id| *id != me).collect();
                ids.sort_unstable();
                ids.into_iter()
                    .filter_map(|id| st.tasks.remove(&id))
                    .collect()
            };
            if victims.is_empty() {
                return;
            }
            for task in victims {
                // It unwinds from its wait (or, never started, is dropped
                // unrun), and its death comes back here.
                let _ = task.greenlet.kill();
                let status = task.status.status();
                if status.is_running() {
                    status.fail(HubError::Killed {
                        name: status.name(),
                    });
                }
                drop(task);
            }
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        HUBS_ALIVE.fetch_sub(1, Ordering::Relaxed);
    }
}
