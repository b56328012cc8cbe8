//! [`Handle`]: what `spawn` returns — join a greenlet, look at its result,
//! link callbacks to its end, kill it. gevent's `Greenlet` object, minus the
//! greenlet: that one the hub keeps.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::join::LeaveDoneWaiters;
use super::task::{Shared, Status};
use super::{diag, Hub, HubError, Interrupt, KillSignal, TaskId, WaitOn, Waiter, Wake};

/// A spawned greenlet: join it, look at its result, link callbacks to its
/// end, kill it. Clones are handles to the same greenlet, so several
/// greenlets may wait on one.
///
/// If the greenlet fails (panics) and every handle is dropped without
/// anyone looking (`join`, `get`, `exception`, `failed`, a
/// [`link_exception`](Handle::link_exception)), the failure is reported
/// once, with the greenlet's name, through the diagnostic hook.
///
/// ```
/// use stage_hub::spawn;
/// let worker = spawn(|| 6 * 7);
/// let (a, b) = (worker.clone(), worker.clone());
/// let waiters = [spawn(move || a.get()), spawn(move || b.get())];
/// for w in waiters {
///     assert_eq!(w.join()??, 42); // both saw the value
/// }
/// assert!(worker.ready() && worker.successful());
/// # Ok::<(), stage_hub::HubError>(())
/// ```
pub struct Handle<T> {
    pub(super) id: TaskId,
    pub(super) shared: Rc<Shared<T>>,
}

/// Names a callback registered with [`Handle::link`] (or `link_value`,
/// `link_exception`), for [`Handle::unlink`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkId(u64);

/// A callback to run when a greenlet finishes, and which outcomes it wants.
pub(crate) struct Link<T> {
    id: LinkId,
    call: Callback<T>,
}

/// A callback given the finished greenlet's handle.
type OnFinish<T> = Box<dyn FnOnce(&Handle<T>)>;

enum Callback<T> {
    Any(OnFinish<T>),
    Value(Box<dyn FnOnce(&T)>),
    Exception(Box<dyn FnOnce(&HubError)>),
}

impl<T: 'static> Link<T> {
    /// Run it for `handle`'s finished greenlet, if the outcome is one it
    /// wants. On the hub's stack: a panic is caught and reported, so one bad
    /// callback cannot stop the hub.
    pub(crate) fn run(self, handle: &Handle<T>) {
        let ran = catch_unwind(AssertUnwindSafe(|| match self.call {
            Callback::Any(f) => f(handle),
            Callback::Value(f) => {
                if let Some(value) = handle.shared.value.borrow().as_ref() {
                    f(value);
                }
            }
            Callback::Exception(f) => {
                if let Some(error) = handle.exception() {
                    f(&error);
                }
            }
        }));
        if let Err(payload) = ran {
            diag::report(&diag::Diagnostic::LinkPanicked {
                name: handle.name(),
                message: super::task::payload_text(&*payload),
            });
        }
    }
}

impl<T: 'static> Handle<T> {
    /// A new handle to `shared` (the only way one is made: it keeps the count).
    pub(crate) fn from_shared(id: TaskId, shared: Rc<Shared<T>>) -> Handle<T> {
        shared.status.add_handle();
        Handle { id, shared }
    }

    /// The greenlet's name (`Greenlet-N`, or the one given).
    pub fn name(&self) -> String {
        self.shared.status.name()
    }

    /// Its greenlet's id (stage-greenlet's [`id`](stage_greenlet::Greenlet::id)).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether it has finished: returned, failed or was killed.
    pub fn is_dead(&self) -> bool {
        !self.shared.status.is_running()
    }

    /// gevent's name for [`is_dead`](Self::is_dead): it has finished.
    pub fn ready(&self) -> bool {
        self.is_dead()
    }

    /// Whether it finished without failing: it returned, or was killed (a
    /// kill is not a failure, as in gevent, where `GreenletExit` counts as
    /// success).
    pub fn successful(&self) -> bool {
        self.is_dead() && !self.failed()
    }

    /// Whether it finished by failing (a panic, say). Being killed is not a
    /// failure, as in gevent.
    pub fn failed(&self) -> bool {
        if self.is_dead() {
            self.shared.status.observed.set(true);
        }
        self.shared.status.failed()
    }

    /// Its failure, once it has failed (gevent's `exception`): `None` while
    /// it runs, and if it returned or was killed.
    pub fn exception(&self) -> Option<HubError> {
        if self.failed() {
            self.shared.status.error()
        } else {
            None
        }
    }

    /// How it failed or was killed, once it has.
    pub fn error(&self) -> Option<HubError> {
        if self.is_dead() {
            self.shared.status.observed.set(true);
        }
        self.shared.status.error()
    }

    /// Its return value, once it has returned (gevent's `value`).
    pub fn value(&self) -> Option<T>
    where
        T: Clone,
    {
        self.shared.value.borrow().clone()
    }

    /// Wait until it has finished, without taking its result.
    pub fn wait(&self) -> Result<(), HubError> {
        self.wait_until(None)
    }

    /// Wait until it has finished, then its return value (a clone: any
    /// number of handles may `get` it), or how it failed or was killed
    /// (gevent's `get`).
    pub fn get(&self) -> Result<T, HubError>
    where
        T: Clone,
    {
        self.wait()?;
        self.result(|slot| slot.clone())
    }

    /// Wait until it has finished and take its result: its return value, or
    /// how it failed. A value moves out once: if another handle's `join`
    /// took it first, [`HubError::ValueTaken`] (use [`get`](Self::get) to
    /// share it).
    pub fn join(self) -> Result<T, HubError> {
        self.wait()?;
        self.result(Option::take)
    }

    fn result(&self, take: impl FnOnce(&mut Option<T>) -> Option<T>) -> Result<T, HubError> {
        let status = &self.shared.status;
        status.observed.set(true);
        if let Some(value) = take(&mut self.shared.value.borrow_mut()) {
            return Ok(value);
        }
        if status.returned() {
            return Err(HubError::ValueTaken { name: self.name() });
        }
        Err(status
            .error()
            .unwrap_or(HubError::Killed { name: self.name() }))
    }

    /// Wait at most `limit` for it to finish; [`HubError::TimedOut`] if it
    /// is still running (the handle stays usable).
    pub fn join_timeout(&self, limit: Duration) -> Result<(), HubError> {
        self.wait_until(Some(limit))
    }

    fn wait_until(&self, limit: Option<Duration>) -> Result<(), HubError> {
        wait_for_death(self.id, &self.shared.status, limit)
    }

    /// Call `f` with a handle to it once it has finished, however it ended
    /// (at once, in the hub, if it already has). Callbacks run in the hub,
    /// in the order they were linked, after the greenlets joining it were
    /// woken: like a diagnostic hook, they must not wait. A panic in one is
    /// reported and the others still run.
    ///
    /// ```
    /// use std::{cell::RefCell, rc::Rc};
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// let worker = stage_hub::spawn(|| 7);
    /// let s = seen.clone();
    /// worker.link(move |h| s.borrow_mut().push(format!("{} done", h.name())));
    /// let s = seen.clone();
    /// worker.link_value(move |v| s.borrow_mut().push(format!("value {v}")));
    /// worker.link_exception(|_| unreachable!("it returned"));
    /// worker.wait()?;
    /// stage_hub::yield_now(); // the hub runs the callbacks
    /// assert_eq!(seen.borrow()[1], "value 7");
    /// # Ok::<(), stage_hub::HubError>(())
    /// ```
    pub fn link(&self, f: impl FnOnce(&Handle<T>) + 'static) -> LinkId {
        self.add_link(Callback::Any(Box::new(f)))
    }

    /// Call `f` with its return value once it has returned (never, if it
    /// fails or is killed). Runs in the hub, as [`link`](Self::link).
    pub fn link_value(&self, f: impl FnOnce(&T) + 'static) -> LinkId {
        self.add_link(Callback::Value(Box::new(f)))
    }

    /// Call `f` with its failure once it has failed (never, if it returns or
    /// is killed). Runs in the hub, as [`link`](Self::link).
    pub fn link_exception(&self, f: impl FnOnce(&HubError) + 'static) -> LinkId {
        self.add_link(Callback::Exception(Box::new(f)))
    }

    /// Forget a callback not yet run; `false` if it was not linked (or
    /// already ran).
    pub fn unlink(&self, link: LinkId) -> bool {
        let mut links = self.shared.links.take();
        let at = links.as_slice().iter().position(|l| l.id == link);
        let removed = at.and_then(|at| links.remove(at));
        self.shared.links.set(links);
        // Dropped only now, with the list back in place: dropping the
        // callback runs the user's destructors, which may link or unlink.
        removed.is_some()
    }

    fn add_link(&self, call: Callback<T>) -> LinkId {
        let id = LinkId(super::next_object_id());
        let link = Link { id, call };
        if !self.is_dead() {
            let mut links = self.shared.links.take();
            links.push(link);
            self.shared.links.set(links);
            return id;
        }
        // Already finished: run it soon, in the hub.
        if let Ok(hub) = Hub::get() {
            let handle = self.clone();
            hub.call_soon(Box::new(move || link.run(&handle)));
        }
        id
    }

    /// Kill it: it unwinds from the wait it is parked in (its locals are
    /// dropped), or never runs if it has not started. Waits until it is dead.
    /// Killing the running greenlet unwinds it at once.
    pub fn kill(&self) {
        if self.start_kill() {
            // The target is ready to run now, so this wait cannot deadlock.
            let _ = self.wait();
        }
    }

    /// Kill it and wait at most `limit` for it to die (a destructor of it
    /// may wait); [`HubError::TimedOut`] if it is still unwinding then
    /// (gevent's `kill(timeout=…)`).
    pub fn kill_timeout(&self, limit: Duration) -> Result<(), HubError> {
        if self.start_kill() {
            self.join_timeout(limit)?;
        }
        Ok(())
    }

    /// Kill it without waiting: it unwinds the next time the hub runs it
    /// (gevent's `kill(block=False)`).
    pub fn kill_nowait(&self) {
        self.start_kill();
    }

    /// Raise a kill in it; whether there is something to wait for.
    fn start_kill(&self) -> bool {
        start_kill(self.id, &self.shared.status)
    }
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        let status = &self.shared.status;
        status.add_handle();
        Handle {
            id: self.id,
            shared: self.shared.clone(),
        }
    }
}

impl<T> PartialEq for Handle<T> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl<T> Eq for Handle<T> {}

impl<T> Drop for Handle<T> {
    fn drop(&mut self) {
        let status = &self.shared.status;
        status.handles.set(status.handles.get() - 1);
        if status.handles.get() == 0 && !status.is_running() {
            status.report_if_orphaned();
        }
    }
}

impl<T> std::fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("name", &self.shared.status.name())
            .field("dead", &!self.shared.status.is_running())
            .finish_non_exhaustive()
    }
}

/// Wait until greenlet `id` (whose status is `status`) has finished, at
/// most `limit`.
pub(super) fn wait_for_death(
    id: TaskId,
    status: &Status,
    limit: Option<Duration>,
) -> Result<(), HubError> {
    let start = Instant::now();
    let deadline = limit.map(|limit| start + limit);
    while status.is_running() {
        let hub = Hub::get()?;
        let ids = [id];
        let leave = LeaveDoneWaiters::new(&hub, &ids);
        let wake = hub.park(WaitOn::Join(id), deadline, |ticket| {
            leave.registered(ticket);
            hub.add_done_waiter(id, Waiter::Task(ticket));
        })?;
        if !status.is_running() {
            leave.all_dead();
        }
        drop(leave);
        if matches!(wake, Wake::TimedOut) && status.is_running() {
            return Err(HubError::TimedOut {
                limit: limit.unwrap_or_default(),
                elapsed: start.elapsed(),
            });
        }
    }
    Ok(())
}

/// Raise a kill in greenlet `id`; whether there is something to wait for.
pub(super) fn start_kill(id: TaskId, status: &Status) -> bool {
    if !status.is_running() {
        return false;
    }
    let Ok(hub) = Hub::get() else {
        return false;
    };
    if stage_greenlet::current_id() == Some(id) {
        if hub.mark_unwinding(id) == Some(true) && std::thread::panicking() {
            // Already unwinding (a destructor kills its own greenlet): a
            // second unwind would abort. Its next wait raises the kill.
            hub.interrupt(id, Interrupt::Kill);
            return false;
        }
        resume_unwind(Box::new(KillSignal));
    }
    hub.interrupt(id, Interrupt::Kill);
    status.is_running()
}

/// What [`joinall`](super::joinall) and [`wait`](super::wait) need of a
/// handle, typed or not.
pub(crate) trait Joinable: Clone {
    fn task(&self) -> TaskId;
    fn task_status(&self) -> &Status;
}

impl<T: 'static> Joinable for Handle<T> {
    fn task(&self) -> TaskId {
        self.id
    }
    fn task_status(&self) -> &Status {
        &self.shared.status
    }
}
