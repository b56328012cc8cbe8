//! [`Wakeup`]: how another thread wakes a greenlet that waits in this hub.
//!
//! Everything else a greenlet waits for lives on its own thread: a timer, a
//! socket, another greenlet. A value computed on another thread (another
//! hub, a plain thread) needs a way in. libev calls it an *async watcher*
//! (`ev_async`, gevent's `loop.async_()`): any thread may `send` it, and the
//! loop wakes up. Ours is the same idea, shaped as a wait:
//!
//! ```text
//!   hub thread                                  any other thread
//!   ──────────                                  ────────────────
//!   wakeup.wait() ─ nothing pending: park ─┐
//!        ▲                                 │    remote.wake()
//!        │                                 │      pending = true
//!        │                                 │      inbox.send(id)  (mpsc)
//!        │                         hub polls ◄─── waker.wake()    (the hub's mio Waker)
//!        │                         inbox: id ──► unpark its waiters
//!        └──── pending: take it, return
//! ```
//!
//! The hub's mio `Waker` and inbox are the ones `spawn_blocking` already
//! uses to hand results back: a wake costs one channel send and one
//! `eventfd` write, and several wakes before the hub looks coalesce into one.
//! The [`Wakeup`] itself is `!Send` (it belongs to one hub); the
//! [`RemoteWakeup`] it hands out is `Send + Sync + Clone`.
//!
//! A wait that no thread can end is a deadlock like any other: while no
//! `RemoteWakeup` exists, a greenlet waiting on the `Wakeup` does not keep
//! the hub polling, and dropping the last one wakes the waiter so that it
//! can notice.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use super::{next_object_id, Hub, HubError, Inbox, Ticket, WaitOn, Wake};

/// What a [`Wakeup`] and its remote halves share.
#[derive(Debug)]
struct Shared {
    id: u64,
    /// A wake arrived that no wait has taken yet.
    pending: AtomicBool,
    /// Live [`RemoteWakeup`]s: while there are none, nothing outside can
    /// end a wait.
    remotes: AtomicUsize,
}

/// A wake-up another thread can deliver to a greenlet of this hub.
///
/// [`Wakeup::wait`] parks the calling greenlet (the others run) until some
/// thread calls [`RemoteWakeup::wake`]; a wake that comes while nobody waits
/// is kept for the next wait. Wakes coalesce, and a wait may also end
/// because the last `RemoteWakeup` was dropped, so a waiter re-checks what
/// it waits for (a queue, a flag) after every return, as with a condition
/// variable.
///
/// ```
/// use stage_hub::hub::Wakeup;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// let wakeup = Wakeup::new()?;
/// let (remote, answer) = (wakeup.remote(), Arc::new(AtomicU64::new(0)));
/// let written = answer.clone();
/// std::thread::spawn(move || {
///     written.store(42, Ordering::Release); // computed on another thread
///     remote.wake();
/// });
/// while answer.load(Ordering::Acquire) == 0 {
///     wakeup.wait()?; // parks main in its hub; other greenlets would run
/// }
/// assert_eq!(answer.load(Ordering::Acquire), 42);
/// # Ok::<(), stage_hub::HubError>(())
/// ```
///
/// It belongs to the hub that made it and cannot cross threads:
///
/// ```compile_fail
/// fn needs_send<T: Send>(_: T) {}
/// needs_send(stage_hub::hub::Wakeup::new().unwrap());
/// ```
pub struct Wakeup {
    hub: Rc<Hub>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Wakeup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wakeup")
            .field("id", &self.shared.id)
            .finish_non_exhaustive()
    }
}

/// The half of a [`Wakeup`] that any thread may hold and ring.
///
/// ```
/// fn needs_send_sync<T: Send + Sync>(_: T) {}
/// needs_send_sync(stage_hub::hub::Wakeup::new()?.remote());
/// # Ok::<(), stage_hub::HubError>(())
/// ```
#[derive(Debug)]
pub struct RemoteWakeup {
    shared: Arc<Shared>,
    inbox: mpsc::Sender<Inbox>,
    /// `None` if the hub was already closed (its thread exiting): then no
    /// wake can reach anyone.
    waker: Option<Arc<mio::Waker>>,
}

impl Wakeup {
    /// A wakeup for greenlets of this thread's hub (created if needed).
    pub fn new() -> Result<Wakeup, HubError> {
        let hub = Hub::get()?;
        let shared = Arc::new(Shared {
            id: next_object_id(),
            pending: AtomicBool::new(false),
            remotes: AtomicUsize::new(0),
        });
        hub.state.borrow_mut().wakeups.insert(shared.id, Vec::new());
        Ok(Wakeup { hub, shared })
    }

    /// A handle another thread can [`wake`](RemoteWakeup::wake) this with.
    pub fn remote(&self) -> RemoteWakeup {
        self.shared.remotes.fetch_add(1, Ordering::AcqRel);
        RemoteWakeup {
            shared: self.shared.clone(),
            inbox: self.hub.inbox.clone(),
            waker: self.hub.waker(),
        }
    }

    /// Wait until woken (at once if a wake is pending). A deadlock error if
    /// nothing at all could wake the hub's greenlets any more.
    pub fn wait(&self) -> Result<(), HubError> {
        self.wait_until(None)
    }

    /// Wait at most `limit`; [`HubError::TimedOut`] if no wake came in time.
    pub fn wait_timeout(&self, limit: Duration) -> Result<(), HubError> {
        HubError::within(limit, |deadline| self.wait_until(deadline))
    }

    /// Wait until woken or until `deadline`; [`HubError::TimedOut`] if it
    /// passed first.
    pub fn wait_until(&self, deadline: Option<Instant>) -> Result<(), HubError> {
        let id = self.shared.id;
        let start = HubError::start_for(deadline);
        loop {
            if self.shared.pending.swap(false, Ordering::AcqRel) {
                return Ok(());
            }
            // Counted while some thread could still end the wait, so the
            // hub polls for it instead of calling it a deadlock. Undone
            // however the wait ends, a kill included.
            struct Waiting<'a> {
                hub: &'a Hub,
                id: u64,
                counted: bool,
                ticket: Cell<Option<Ticket>>,
            }
            impl Drop for Waiting<'_> {
                fn drop(&mut self) {
                    let mut st = self.hub.state.borrow_mut();
                    if self.counted {
                        st.remote_waiters -= 1;
                    }
                    if let (Some(ticket), Some(waiters)) =
                        (self.ticket.get(), st.wakeups.get_mut(&self.id))
                    {
                        waiters.retain(|t| *t != ticket);
                    }
                }
            }
            let counted = self.shared.remotes.load(Ordering::Acquire) > 0;
            if counted {
                self.hub.state.borrow_mut().remote_waiters += 1;
            }
            let waiting = Waiting {
                hub: &self.hub,
                id,
                counted,
                ticket: Cell::new(None),
            };
            let wake = self.hub.park(WaitOn::Remote(id), deadline, |ticket| {
                waiting.ticket.set(Some(ticket));
                if let Some(waiters) = self.hub.state.borrow_mut().wakeups.get_mut(&id) {
                    waiters.push(ticket);
                }
            });
            drop(waiting);
            if matches!(wake?, Wake::TimedOut) {
                return match self.shared.pending.swap(false, Ordering::AcqRel) {
                    true => Ok(()),
                    false => Err(HubError::timed_out(deadline, start)),
                };
            }
        }
    }
}

impl Drop for Wakeup {
    fn drop(&mut self) {
        self.hub.state.borrow_mut().wakeups.remove(&self.shared.id);
    }
}

impl RemoteWakeup {
    /// Wake the [`Wakeup`]'s waiter (or the next one to wait). Safe from any
    /// thread; cheap when a wake is already on its way. `false` if the hub
    /// is gone (its thread ended), so nobody will ever see the wake.
    pub fn wake(&self) -> bool {
        if self.shared.pending.swap(true, Ordering::AcqRel) {
            return true; // the hub has not taken the last wake yet: it will see this one
        }
        if self.inbox.send(Inbox::Wakeup(self.shared.id)).is_err() {
            return false;
        }
        self.waker.as_ref().is_some_and(|w| w.wake().is_ok())
    }
}

impl Clone for RemoteWakeup {
    fn clone(&self) -> Self {
        self.shared.remotes.fetch_add(1, Ordering::AcqRel);
        RemoteWakeup {
            shared: self.shared.clone(),
            inbox: self.inbox.clone(),
            waker: self.waker.clone(),
        }
    }
}

impl Drop for RemoteWakeup {
    fn drop(&mut self) {
        if self.shared.remotes.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Nobody is left to wake it: let a waiter see that.
            self.wake();
        }
    }
}
