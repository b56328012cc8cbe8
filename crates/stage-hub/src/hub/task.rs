//! Spawning greenlets onto the hub, and the handles that join, inspect and
//! kill them.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use stage_greenlet::{Greenlet, GreenletExit};

use super::{
    diag, existing, GroupWait, Hub, HubError, Interrupt, KillSignal, TaskId, Ticket, TimeoutSignal,
    WaitOn, Waiter, Wake,
};

/// A greenlet's name: numbered in spawn order unless one was given.
#[derive(Debug)]
enum Name {
    Numbered(u64),
    Given(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Running,
    Returned,
    Failed,
}

/// What every greenlet the hub knows has, whatever its return type.
#[derive(Debug)]
pub(crate) struct Status {
    name: Name,
    outcome: Cell<Outcome>,
    error: RefCell<Option<HubError>>,
    /// Someone looked at the error (joined, asked `failed`/`error`).
    observed: Cell<bool>,
    /// A [`Handle`] still exists, so someone still could look.
    handle_alive: Cell<bool>,
}

impl Status {
    fn new(name: Name) -> Status {
        Status {
            name,
            outcome: Cell::new(Outcome::Running),
            error: RefCell::new(None),
            observed: Cell::new(false),
            handle_alive: Cell::new(true),
        }
    }

    /// The status of a greenlet the hub did not spawn (main, say).
    pub(crate) fn foreign(name: String) -> Status {
        let status = Status::new(Name::Given(name));
        status.handle_alive.set(false);
        status
    }

    pub(crate) fn name(&self) -> String {
        match &self.name {
            Name::Numbered(n) => format!("Greenlet-{n}"),
            Name::Given(name) => name.clone(),
        }
    }

    pub(crate) fn is_running(&self) -> bool {
        self.outcome.get() == Outcome::Running
    }

    pub(crate) fn fail(&self, error: HubError) {
        *self.error.borrow_mut() = Some(error);
        self.outcome.set(Outcome::Failed);
    }

    /// Failed in a way worth reporting: a kill is not a failure (as in gevent,
    /// where a greenlet killed with `GreenletExit` counts as successful).
    pub(crate) fn failed(&self) -> bool {
        self.outcome.get() == Outcome::Failed
            && !matches!(*self.error.borrow(), Some(HubError::Killed { .. }))
    }

    /// Report a failure if nobody can ever look at it any more; returns
    /// whether it did.
    pub(crate) fn report_if_orphaned(&self) -> bool {
        if self.failed() && !self.observed.get() && !self.handle_alive.get() {
            self.observed.set(true);
            if let Some(error) = self.error.borrow().clone() {
                diag::report(&diag::Diagnostic::Unjoined {
                    name: self.name(),
                    error,
                });
                return true;
            }
        }
        false
    }
}

/// Access to a [`Status`] behind a typed result slot.
pub(crate) trait HasStatus {
    fn status(&self) -> &Status;
}

impl HasStatus for Status {
    fn status(&self) -> &Status {
        self
    }
}

struct Shared<T> {
    status: Status,
    value: RefCell<Option<T>>,
}

impl<T> HasStatus for Shared<T> {
    fn status(&self) -> &Status {
        &self.status
    }
}

/// How to spawn a greenlet: its name, its stack size, when it starts.
///
/// ```
/// let handle = stage_hub::Builder::new().name("worker").spawn(|| stage_hub::current_name())?;
/// assert_eq!(handle.join()?, "worker");
/// # Ok::<(), stage_hub::HubError>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with the defaults: the next `Greenlet-N` name and the
    /// greenlet crate's default stack.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Name the greenlet (what [`current_name`] returns inside it).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Give the greenlet a stack of `bytes` (rounded up to pages).
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Schedule `f` to run in a new greenlet once the current one waits.
    /// Fails when the greenlet cannot be created (the error says why: for
    /// instance `vm.max_map_count` is exhausted, and how to raise it).
    pub fn spawn<T, F>(self, f: F) -> Result<Handle<T>, HubError>
    where
        T: 'static,
        F: FnOnce() -> T + 'static,
    {
        self.spawn_inner(None, f)
    }

    /// Like [`Builder::spawn`], but the greenlet starts `delay` from now.
    pub fn spawn_later<T, F>(self, delay: Duration, f: F) -> Result<Handle<T>, HubError>
    where
        T: 'static,
        F: FnOnce() -> T + 'static,
    {
        self.spawn_inner(Some(delay), f)
    }

    fn spawn_inner<T, F>(self, delay: Option<Duration>, f: F) -> Result<Handle<T>, HubError>
    where
        T: 'static,
        F: FnOnce() -> T + 'static,
    {
        let hub = Hub::get()?;
        diag::install_panic_hook(); // if the hub was made while panicking
        let name = match self.name {
            Some(name) => Name::Given(name),
            None => Name::Numbered(hub.next_name()),
        };
        let shared = Rc::new(Shared {
            status: Status::new(name),
            value: RefCell::new(None),
        });
        let inside = shared.clone();
        let mut builder = Greenlet::builder().parent(&hub.greenlet);
        if let Some(bytes) = self.stack_size {
            builder = builder.stack_size(bytes);
        }
        let greenlet = builder
            .spawn(move |_: Wake| run_body(&inside, f))
            .map_err(|e| HubError::Spawn(e.to_string()))?;
        let id = greenlet.id();
        hub.add_task(id, greenlet, shared.clone(), delay);
        Ok(Handle { id, shared })
    }
}

// ANCHOR: run_body
/// Run the greenlet's function, keeping its value or its failure as its result.
fn run_body<T, F: FnOnce() -> T>(shared: &Shared<T>, f: F) {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => {
            *shared.value.borrow_mut() = Some(value);
            shared.status.outcome.set(Outcome::Returned);
        }
        Err(payload) => {
            let name = shared.status.name();
            if payload.is::<KillSignal>() {
                shared.status.fail(HubError::Killed { name });
            } else if payload.is::<GreenletExit>() {
                // The greenlet crate is tearing this greenlet down: let it.
                shared.status.fail(HubError::Killed { name });
                resume_unwind(payload);
            } else {
                let message = if payload.is::<TimeoutSignal>() {
                    "a with_timeout limit expired outside its with_timeout block".to_string()
                } else {
                    diag::with_panic_location(payload_text(&*payload))
                };
                shared.status.fail(HubError::Panicked { name, message });
            }
        }
    }
}
// ANCHOR_END: run_body

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_string())
}

/// Schedule `f` to run in a new greenlet, named `Greenlet-N`.
///
/// The new greenlet does **not** run yet: it is queued, and runs once the
/// current greenlet waits (`join`, `sleep`, `yield_now`, a queue, a socket):
/// the same order gevent has.
///
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let inner = log.clone();
/// let handle = stage_hub::spawn(move || inner.borrow_mut().push("child runs"));
/// log.borrow_mut().push("spawner continues");
/// handle.join().unwrap();
/// assert_eq!(*log.borrow(), ["spawner continues", "child runs"]);
/// ```
///
/// # Panics
///
/// When the greenlet cannot be created (its stack cannot be mapped), with
/// the greenlet crate's message; [`Builder::spawn`] returns that error instead.
pub fn spawn<T, F>(f: F) -> Handle<T>
where
    T: 'static,
    F: FnOnce() -> T + 'static,
{
    Builder::new().spawn(f).unwrap_or_else(|e| panic!("{e}"))
}

/// Schedule `f` to run in a new greenlet `delay` from now.
///
/// # Panics
///
/// Like [`spawn`]; [`Builder::spawn_later`] returns the error instead.
pub fn spawn_later<T, F>(delay: Duration, f: F) -> Handle<T>
where
    T: 'static,
    F: FnOnce() -> T + 'static,
{
    Builder::new()
        .spawn_later(delay, f)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The name of the running greenlet: `Greenlet-N` (or the name it was
/// given) inside a spawned greenlet, the greenlet crate's name (`main`)
/// outside. Our twin of the notes' `DummyThread-1`.
pub fn current_name() -> String {
    let current = stage_greenlet::current();
    existing()
        .and_then(|hub| hub.task_name(current.id()))
        .unwrap_or_else(|| current.name())
}

/// A spawned greenlet: join it, look at its result, kill it.
///
/// If the greenlet fails (panics) and the handle is dropped without anyone
/// looking (`join`, `wait` then `error`/`failed`), the failure is reported
/// once, with the greenlet's name, through the diagnostic hook.
pub struct Handle<T> {
    id: TaskId,
    shared: Rc<Shared<T>>,
}

impl<T: 'static> Handle<T> {
    /// The greenlet's name (`Greenlet-N`, or the one given).
    pub fn name(&self) -> String {
        self.shared.status.name()
    }

    /// Whether it has finished: returned, failed or was killed.
    pub fn is_dead(&self) -> bool {
        !self.shared.status.is_running()
    }

    /// Whether it finished by failing (a panic, say). Being killed is not a
    /// failure, as in gevent.
    pub fn failed(&self) -> bool {
        if self.is_dead() {
            self.shared.status.observed.set(true);
        }
        self.shared.status.failed()
    }

    /// How it failed or was killed, once it has.
    pub fn error(&self) -> Option<HubError> {
        if self.is_dead() {
            self.shared.status.observed.set(true);
        }
        self.shared.status.error.borrow().clone()
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

    /// Wait until it has finished and take its result: its return value, or
    /// how it failed.
    pub fn join(self) -> Result<T, HubError> {
        self.wait()?;
        self.shared.status.observed.set(true);
        if let Some(value) = self.shared.value.borrow_mut().take() {
            return Ok(value);
        }
        Err(self
            .shared
            .status
            .error
            .borrow()
            .clone()
            .unwrap_or(HubError::Killed { name: self.name() }))
    }

    /// Wait at most `limit` for it to finish; [`HubError::TimedOut`] if it
    /// is still running (the handle stays usable).
    pub fn join_timeout(&self, limit: Duration) -> Result<(), HubError> {
        self.wait_until(Some(limit))
    }

    fn wait_until(&self, limit: Option<Duration>) -> Result<(), HubError> {
        let start = Instant::now();
        let deadline = limit.map(|limit| start + limit);
        while !self.is_dead() {
            let hub = Hub::get()?;
            let id = self.id;
            let leave = LeaveDoneWaiters::new(&hub);
            let wake = hub.park(WaitOn::Join(id), deadline, |ticket| {
                leave.registered(ticket, &[id]);
                hub.add_done_waiter(id, Waiter::Task(ticket));
            })?;
            drop(leave);
            if matches!(wake, Wake::TimedOut) && !self.is_dead() {
                return Err(HubError::TimedOut {
                    limit: limit.unwrap_or_default(),
                    elapsed: start.elapsed(),
                });
            }
        }
        Ok(())
    }

    /// Kill it: it unwinds from the wait it is parked in (its locals are
    /// dropped), or never runs if it has not started. Waits until it is dead.
    /// Killing the running greenlet unwinds it at once.
    pub fn kill(&self) {
        if self.is_dead() {
            return;
        }
        let Ok(hub) = Hub::get() else {
            return;
        };
        if stage_greenlet::current().id() == self.id {
            if hub.mark_unwinding(self.id) == Some(true) && std::thread::panicking() {
                // Already unwinding (a destructor kills its own greenlet): a
                // second unwind would abort. Its next wait raises the kill.
                hub.interrupt(self.id, Interrupt::Kill);
                return;
            }
            resume_unwind(Box::new(KillSignal));
        }
        hub.interrupt(self.id, Interrupt::Kill);
        // The target is ready to run now, so this wait cannot deadlock.
        let _ = self.wait();
    }
}

impl<T> Drop for Handle<T> {
    fn drop(&mut self) {
        self.shared.status.handle_alive.set(false);
        if !self.shared.status.is_running() {
            self.shared.status.report_if_orphaned();
        }
    }
}

impl<T> std::fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("name", &self.shared.status.name())
            .field("outcome", &self.shared.status.outcome.get())
            .finish_non_exhaustive()
    }
}

/// However a join ends (its greenlets died, its deadline passed, it was
/// killed), take its entries out of the done-waiter lists of the greenlets
/// it waited for: a join that timed out leaves nothing behind.
struct LeaveDoneWaiters<'a> {
    hub: &'a Hub,
    registered: RefCell<Option<(Ticket, Vec<TaskId>)>>,
}

impl<'a> LeaveDoneWaiters<'a> {
    fn new(hub: &'a Hub) -> Self {
        LeaveDoneWaiters {
            hub,
            registered: RefCell::new(None),
        }
    }

    fn registered(&self, ticket: Ticket, tasks: &[TaskId]) {
        *self.registered.borrow_mut() = Some((ticket, tasks.to_vec()));
    }
}

impl Drop for LeaveDoneWaiters<'_> {
    fn drop(&mut self) {
        if let Some((ticket, tasks)) = self.registered.get_mut().take() {
            for task in tasks {
                self.hub.remove_done_waiter(task, ticket);
            }
        }
    }
}

/// How [`joinall`] waits: for how long, and whether the first failure ends it.
#[derive(Debug, Clone, Copy, Default)]
pub struct JoinAll {
    timeout: Option<Duration>,
    stop_at_first_failure: bool,
}

impl JoinAll {
    /// Wait for every greenlet, however long, collecting every result.
    pub fn new() -> JoinAll {
        JoinAll::default()
    }

    /// Give up after `limit` ([`HubError::TimedOut`]); the unfinished
    /// greenlets keep running.
    pub fn timeout(mut self, limit: Duration) -> JoinAll {
        self.timeout = Some(limit);
        self
    }

    /// Return the first failure as soon as it happens instead of waiting
    /// for the rest (gevent's `raise_error=True`).
    pub fn stop_at_first_failure(mut self) -> JoinAll {
        self.stop_at_first_failure = true;
        self
    }
}

/// Wait for all of `handles`. `Ok(())` when every one has finished (look at
/// each handle for its result); with [`JoinAll::stop_at_first_failure`], the
/// first failure's error as soon as it happens; [`HubError::TimedOut`] if the
/// timeout passes first.
///
/// ```
/// use stage_hub::{joinall, spawn, JoinAll};
/// let handles: Vec<_> = (0..3u64).map(|i| spawn(move || i * 10)).collect();
/// joinall(&handles, JoinAll::new())?;
/// let values: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
/// assert_eq!(values, [0, 10, 20]);
/// # Ok::<(), stage_hub::HubError>(())
/// ```
pub fn joinall<T: 'static>(handles: &[Handle<T>], opts: JoinAll) -> Result<(), HubError> {
    let start = Instant::now();
    let deadline = opts.timeout.map(|limit| start + limit);
    loop {
        if opts.stop_at_first_failure {
            if let Some(failed) = handles.iter().find(|h| h.is_dead() && h.failed()) {
                return Err(failed.error().unwrap_or(HubError::Killed {
                    name: failed.name(),
                }));
            }
        }
        let pending: Vec<TaskId> = handles
            .iter()
            .filter(|h| !h.is_dead())
            .map(|h| h.id)
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let hub = Hub::get()?;
        let leave = LeaveDoneWaiters::new(&hub);
        let wake = hub.park(WaitOn::JoinAll(pending.len()), deadline, |ticket| {
            leave.registered(ticket, &pending);
            let group = Rc::new(GroupWait {
                remaining: Cell::new(pending.len()),
                stop_on_failure: opts.stop_at_first_failure,
                ticket,
            });
            for id in &pending {
                hub.add_done_waiter(*id, Waiter::Group(group.clone()));
            }
        })?;
        drop(leave);
        if matches!(wake, Wake::TimedOut) && handles.iter().any(|h| !h.is_dead()) {
            return Err(HubError::TimedOut {
                limit: opts.timeout.unwrap_or_default(),
                elapsed: start.elapsed(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::hub::sleep;

    /// How many waiters the hub keeps for the death of `handle`'s greenlet.
    fn done_waiters<T: 'static>(handle: &Handle<T>) -> usize {
        let hub = existing().expect("a hub");
        let st = hub.state.borrow();
        st.tasks[&handle.id].done_waiters.len()
    }

    #[test]
    fn joins_that_time_out_leave_no_waiters_behind() {
        let sleeper = spawn(|| sleep(Duration::from_secs(60)));
        for _ in 0..1_000 {
            assert!(sleeper
                .join_timeout(Duration::ZERO)
                .unwrap_err()
                .is_timeout());
            let all = joinall(
                std::slice::from_ref(&sleeper),
                JoinAll::new().timeout(Duration::ZERO),
            );
            assert!(all.unwrap_err().is_timeout());
        }
        assert_eq!(done_waiters(&sleeper), 0);
        sleeper.kill();
    }

    #[test]
    fn a_killed_joiner_leaves_no_waiter_behind() {
        let sleeper = Rc::new(spawn(|| sleep(Duration::from_secs(60))));
        let s = sleeper.clone();
        let joiner = spawn(move || s.wait());
        crate::yield_now();
        assert_eq!(done_waiters(&sleeper), 1);
        joiner.kill();
        assert_eq!(done_waiters(&sleeper), 0);
        sleeper.kill();
    }
}
