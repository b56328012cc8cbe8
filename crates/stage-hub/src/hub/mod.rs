//! The hub: one per thread, itself a greenlet, running the event loop.
//!
//! Every spawned greenlet's parent is the hub. A greenlet that must wait
//! records what it waits on, arranges to be woken (a timer, a waiter list, a
//! socket's readiness) and switches to the hub with `Hub::park`. The hub
//! loops:
//!
//! ```text
//!   ┌──────────────► run the ready queue, FIFO: switch to each greenlet,
//!   │                it runs until it parks (or dies) and switches back
//!   │                              │
//!   │                fire the timers that are due (heap: deadline, order)
//!   │                              │
//!   │                poll mio: zero timeout if anything is ready, else
//!   │                until the next timer; readiness wakes its waiters
//!   └──────────────────────────────┘
//! ```
//!
//! Only the batch that was ready when a pass began runs in that pass, so a
//! greenlet that yields in a loop cannot starve timers and sockets. When
//! nothing is ready and no timer, socket or blocking job could ever make
//! anything ready, the hub wakes the main greenlet with a
//! [`HubError::Deadlock`] naming every waiting greenlet.

mod blocking;
mod diag;
mod error;
pub mod io;
mod task;
mod time;
mod timer;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::resume_unwind;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use stage_greenlet::Greenlet;

pub use blocking::{spawn_blocking, BLOCKING_THREADS};
pub use diag::{
    blocking_threshold, reset_diagnostic_hook, set_blocking_threshold, set_diagnostic_hook,
    Diagnostic, DEFAULT_BLOCKING_THRESHOLD,
};
pub use error::{Deadlock, HubError};
pub use task::{current_name, joinall, spawn, spawn_later, Builder, Handle, JoinAll};
pub use time::{sleep, sleep_until, with_timeout, yield_now};

pub(crate) use task::HasStatus;
use timer::{TimerId, Timers};

/// A map keyed by our own sequential ids: no need for SipHash's defences.
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// Multiplies the id by a large odd constant: sequential ids spread out.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// A greenlet known to the hub, by its greenlet id.
pub(crate) type TaskId = u64;

/// One particular wait of one greenlet. Waking a ticket whose wait is over
/// (the greenlet was already woken by something else) does nothing, so
/// every waker may fire late or twice without harm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    pub(crate) task: TaskId,
    seq: u64,
}

/// Why the hub switched back to a waiting greenlet.
#[derive(Debug, Clone)]
pub(crate) enum Wake {
    /// The first switch into a spawned greenlet.
    Start,
    /// What it waited for happened (or may have: waits re-check).
    Ready,
    /// Its own deadline passed.
    TimedOut,
    /// Nothing can ever wake it.
    Deadlock(Arc<Deadlock>),
}

/// Something that ends a greenlet's wait by unwinding it from the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interrupt {
    /// [`Handle::kill`].
    Kill,
    /// The [`with_timeout`] block with this id ran out of time.
    Timeout(u64),
}

/// The unwind payload of a kill.
pub(crate) struct KillSignal;

/// The unwind payload of an expired [`with_timeout`].
pub(crate) struct TimeoutSignal(pub(crate) u64);

/// What a parked greenlet waits on, for the deadlock report.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WaitOn {
    Join(TaskId),
    JoinAll(usize),
    Sleep,
    Yield,
    Event(u64),
    QueueGet(u64),
    QueuePut(u64),
    Semaphore(u64),
    PoolIdle(u64),
    Io(usize),
    Blocking,
}

/// What a timer does when it fires.
#[derive(Debug)]
pub(crate) enum TimerAction {
    Wake(Ticket),
    Start(TaskId),
    Interrupt(TaskId, Interrupt),
}

/// Someone to tell when a greenlet dies.
pub(crate) enum Waiter {
    /// A greenlet joining this one.
    Task(Ticket),
    /// A `joinall` waiting for several.
    Group(Rc<GroupWait>),
}

/// One `joinall`: wake its ticket when every greenlet is done, or at the
/// first failure if asked to stop there.
pub(crate) struct GroupWait {
    pub(crate) remaining: Cell<usize>,
    pub(crate) stop_on_failure: bool,
    pub(crate) ticket: Ticket,
}

struct Task {
    greenlet: Greenlet,
    status: Rc<dyn HasStatus>,
    /// Spawned by the hub (rather than main or another foreign greenlet
    /// that merely waited here).
    spawned: bool,
    started: bool,
    seq: u64,
    parked: Option<(u64, WaitOn)>,
    interrupt: Option<Interrupt>,
    done_waiters: Vec<Waiter>,
}

/// The hub's mutable half. Never borrowed across a switch.
pub(crate) struct State {
    tasks: IdMap<TaskId, Task>,
    ready: VecDeque<(TaskId, Wake)>,
    batch: usize,
    timers: Timers<TimerAction>,
    next_name: u64,
    io: IdMap<usize, Rc<io::IoSlot>>,
    next_token: usize,
    io_waiters: usize,
    /// Blocking jobs in flight, and the ticket of whoever waits for each.
    jobs: IdMap<u64, Option<Ticket>>,
    next_job: u64,
    poll: mio::Poll,
    events: mio::Events,
}

/// The mio token of the waker that `spawn_blocking` jobs ring.
const WAKER: mio::Token = mio::Token(usize::MAX);

/// One thread's hub.
pub(crate) struct Hub {
    greenlet: Greenlet,
    /// The greenlet that created the hub: it gets the deadlock error.
    root: TaskId,
    registry: mio::Registry,
    waker: Arc<mio::Waker>,
    done_tx: mpsc::Sender<u64>,
    done_rx: mpsc::Receiver<u64>,
    state: RefCell<State>,
}

thread_local! {
    static HUB: RefCell<Option<Rc<Hub>>> = const { RefCell::new(None) };
}

/// This thread's hub, if one was created.
pub(crate) fn existing() -> Option<Rc<Hub>> {
    HUB.try_with(|h| h.borrow().clone()).ok().flatten()
}

fn unwind(interrupt: Interrupt) -> ! {
    match interrupt {
        Interrupt::Kill => resume_unwind(Box::new(KillSignal)),
        Interrupt::Timeout(id) => resume_unwind(Box::new(TimeoutSignal(id))),
    }
}

impl Hub {
    /// This thread's hub, created on first use.
    pub(crate) fn get() -> Result<Rc<Hub>, HubError> {
        if let Some(hub) = existing() {
            return Ok(hub);
        }
        let hub = Rc::new(Hub::create()?);
        HUB.with(|h| *h.borrow_mut() = Some(hub.clone()));
        Ok(hub)
    }

    fn create() -> Result<Hub, HubError> {
        let poller =
            |e: std::io::Error| HubError::Spawn(format!("cannot create the hub's poller: {e}"));
        let poll = mio::Poll::new().map_err(poller)?;
        let registry = poll.registry().try_clone().map_err(poller)?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER).map_err(poller)?);
        let greenlet = Greenlet::builder()
            .name("Hub")
            .spawn(|(): ()| run_loop())
            .map_err(|e| HubError::Spawn(e.to_string()))?;
        diag::install_panic_hook();
        let (done_tx, done_rx) = mpsc::channel();
        Ok(Hub {
            greenlet,
            root: stage_greenlet::current().id(),
            registry,
            waker,
            done_tx,
            done_rx,
            state: RefCell::new(State {
                tasks: IdMap::default(),
                ready: VecDeque::new(),
                batch: 0,
                timers: Timers::new(),
                next_name: 0,
                io: IdMap::default(),
                next_token: 0,
                io_waiters: 0,
                jobs: IdMap::default(),
                next_job: 0,
                poll,
                events: mio::Events::with_capacity(1024),
            }),
        })
    }

    /// The task that is running now; a greenlet the hub did not spawn (main)
    /// becomes a "foreign" task the first time it waits.
    pub(crate) fn me(&self) -> TaskId {
        let current = stage_greenlet::current();
        let id = current.id();
        assert!(
            id != self.greenlet.id(),
            "a wait was called on the hub's own stack (from a diagnostic hook?): \
             the hub cannot wait for itself; do the waiting in a spawned greenlet"
        );
        let mut st = self.state.borrow_mut();
        st.tasks.entry(id).or_insert_with(|| {
            let status = Rc::new(task::Status::foreign(current.name()));
            Task::new(current, status, false)
        });
        id
    }

    // ANCHOR: park
    /// Park the current greenlet: `register` learns the ticket that wakes it
    /// (and must not switch); with a `deadline`, a timer wakes it with
    /// [`Wake::TimedOut`]. A kill or an expired `with_timeout` unwinds from
    /// here instead of returning.
    pub(crate) fn park(
        &self,
        on: WaitOn,
        deadline: Option<Instant>,
        register: impl FnOnce(Ticket),
    ) -> Result<Wake, HubError> {
        let me = self.me();
        let ticket = {
            let mut st = self.state.borrow_mut();
            let task = st
                .tasks
                .get_mut(&me)
                .expect("the current task was just registered");
            if let Some(interrupt) = task.interrupt.take() {
                drop(st);
                unwind(interrupt);
            }
            task.seq += 1;
            task.parked = Some((task.seq, on));
            Ticket {
                task: me,
                seq: task.seq,
            }
        };
        register(ticket);
        let timer = deadline.map(|d| self.add_timer(d, TimerAction::Wake(ticket)));
        let wake = match self.greenlet.switch::<(), Wake>(()) {
            Ok(wake) => wake,
            Err(e) => panic!("the hub failed, so nothing can wake this greenlet: {e}"),
        };
        let interrupt = {
            let mut st = self.state.borrow_mut();
            if let Some(timer) = timer {
                if !matches!(wake, Wake::TimedOut) {
                    st.timers.cancel(timer);
                }
            }
            st.tasks.get_mut(&me).and_then(|task| {
                task.parked = None;
                task.interrupt.take()
            })
        };
        if let Some(interrupt) = interrupt {
            unwind(interrupt);
        }
        match wake {
            Wake::Deadlock(report) => Err(HubError::Deadlock(report)),
            wake => Ok(wake),
        }
    }
    // ANCHOR_END: park

    /// End the wait `ticket` stands for; `false` if it had already ended.
    pub(crate) fn unpark(&self, ticket: Ticket) -> bool {
        self.state.borrow_mut().unpark(ticket, Wake::Ready)
    }

    pub(crate) fn add_timer(&self, deadline: Instant, action: TimerAction) -> TimerId {
        self.state.borrow_mut().timers.add(deadline, action)
    }

    pub(crate) fn cancel_timer(&self, timer: TimerId) {
        self.state.borrow_mut().timers.cancel(timer);
    }

    /// Forget a pending interrupt if it is still `interrupt`.
    pub(crate) fn clear_interrupt(&self, task: TaskId, interrupt: Interrupt) {
        if let Some(task) = self.state.borrow_mut().tasks.get_mut(&task) {
            if task.interrupt == Some(interrupt) {
                task.interrupt = None;
            }
        }
    }

    /// Make `task` unwind at its wait (or, if it never started, never run).
    pub(crate) fn interrupt(&self, task: TaskId, interrupt: Interrupt) {
        let unstarted = {
            let mut st = self.state.borrow_mut();
            st.interrupt(task, interrupt);
            st.tasks.get(&task).is_some_and(|t| t.spawned && !t.started)
        };
        if unstarted && interrupt == Interrupt::Kill {
            self.finish(task);
        }
    }

    /// Tell `waiter` when `task` dies (at once if it already has).
    pub(crate) fn add_done_waiter(&self, task: TaskId, waiter: Waiter) {
        let mut st = self.state.borrow_mut();
        match st.tasks.get_mut(&task) {
            Some(t) => t.done_waiters.push(waiter),
            None => st.notify(waiter, false),
        }
    }

    fn add_task(
        &self,
        id: TaskId,
        greenlet: Greenlet,
        status: Rc<dyn HasStatus>,
        delay: Option<Duration>,
    ) {
        let mut st = self.state.borrow_mut();
        st.tasks.insert(id, Task::new(greenlet, status, true));
        match delay {
            None => st.ready.push_back((id, Wake::Start)),
            Some(delay) => {
                st.timers
                    .add(Instant::now() + delay, TimerAction::Start(id));
            }
        }
    }

    fn next_name(&self) -> u64 {
        let mut st = self.state.borrow_mut();
        st.next_name += 1;
        st.next_name
    }

    /// The name of the task running greenlet `id`, if the hub knows it.
    pub(crate) fn task_name(&self, id: TaskId) -> Option<String> {
        self.state
            .borrow()
            .tasks
            .get(&id)
            .map(|t| t.status.status().name())
    }

    /// A greenlet died (or was killed before it started): wake whoever
    /// waits for it, and report a failure nobody can look at any more.
    fn finish(&self, id: TaskId) {
        let Some(task) = self.state.borrow_mut().tasks.remove(&id) else {
            return;
        };
        let status = task.status.status();
        if status.is_running() {
            status.fail(HubError::Killed {
                name: status.name(),
            });
        }
        let failed = status.failed();
        {
            let mut st = self.state.borrow_mut();
            for waiter in task.done_waiters {
                st.notify(waiter, failed);
            }
        }
        status.report_if_orphaned();
        drop(task.greenlet); // a never-started body is dropped here, outside any borrow
    }

    /// The next greenlet to switch to, running timers and polling as needed;
    /// the flag says whether the hub polled (and so may have slept) first.
    fn next(&self) -> (TaskId, Greenlet, Wake, bool, bool) {
        let mut polled = false;
        loop {
            {
                let mut st = self.state.borrow_mut();
                if st.batch > 0 {
                    st.batch -= 1;
                    if let Some((id, wake)) = st.ready.pop_front() {
                        if let Some(task) = st.tasks.get_mut(&id) {
                            task.started = true;
                            return (id, task.greenlet.clone(), wake, task.spawned, polled);
                        }
                        continue;
                    }
                }
            }
            polled |= self.turn();
        }
    }

    // ANCHOR: turn
    /// Fire due timers and poll until something is ready (or declare a
    /// deadlock), then start a new batch. Returns whether it polled.
    fn turn(&self) -> bool {
        let mut polled = false;
        loop {
            let mut st = self.state.borrow_mut();
            // The clock is read only when a timer could be due: reading it
            // is a good part of what a switch through the hub costs.
            let now = st.timers.next_deadline().map(|_| Instant::now());
            if let Some(now) = now {
                while let Some(action) = st.timers.pop_due(now) {
                    st.fire(action);
                }
            }
            let watching = !st.io.is_empty() || !st.jobs.is_empty();
            let timeout = if !st.ready.is_empty() {
                if polled || !watching {
                    st.batch = st.ready.len();
                    return polled;
                }
                Some(Duration::ZERO)
            } else if let (Some(deadline), Some(now)) = (st.timers.next_deadline(), now) {
                Some(deadline.saturating_duration_since(now))
            } else if st.io_waiters > 0 || !st.jobs.is_empty() {
                None
            } else {
                st.deadlock(self.root);
                st.batch = st.ready.len();
                return polled;
            };
            drop(st);
            self.poll(timeout);
            polled = true;
        }
    }
    // ANCHOR_END: turn

    fn poll(&self, timeout: Option<Duration>) {
        let mut st = self.state.borrow_mut();
        let State { poll, events, .. } = &mut *st;
        if let Err(e) = poll.poll(events, timeout) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                panic!("the hub's poll failed ({e}): no greenlet can be woken any more");
            }
        }
        let ready: Vec<(usize, bool, bool)> = st
            .events
            .iter()
            .map(|e| {
                let readable = e.is_readable() || e.is_read_closed() || e.is_error();
                let writable = e.is_writable() || e.is_write_closed() || e.is_error();
                (e.token().0, readable, writable)
            })
            .collect();
        for (token, readable, writable) in ready {
            if token == WAKER.0 {
                for job in self.done_rx.try_iter() {
                    if let Some(Some(ticket)) = st.jobs.remove(&job) {
                        st.unpark(ticket, Wake::Ready);
                    }
                }
            } else if let Some(slot) = st.io.get(&token).cloned() {
                slot.ready(readable, writable, &mut st);
            }
        }
    }

    /// Back from running `id` for `held`: warn if it held the hub too long,
    /// and finish it if it died.
    fn after_run(
        &self,
        id: TaskId,
        greenlet: &Greenlet,
        spawned: bool,
        held: Duration,
        result: Result<(), stage_greenlet::SwitchError>,
    ) {
        let status = self.state.borrow().tasks.get(&id).map(|t| t.status.clone());
        if let (true, Some(threshold), Some(status)) =
            (spawned, diag::blocking_threshold(), &status)
        {
            if held > threshold {
                diag::report(&Diagnostic::Blocked {
                    name: status.status().name(),
                    held,
                    threshold,
                });
            }
        }
        if let (Err(e), Some(status)) = (result, &status) {
            let status = status.status();
            if status.is_running() {
                status.fail(HubError::Panicked {
                    name: status.name(),
                    message: e.to_string(),
                });
            }
        }
        if greenlet.is_dead() {
            self.finish(id);
        }
    }
}

impl Task {
    fn new(greenlet: Greenlet, status: Rc<dyn HasStatus>, spawned: bool) -> Task {
        Task {
            greenlet,
            status,
            spawned,
            started: !spawned,
            seq: 0,
            parked: None,
            interrupt: None,
            done_waiters: Vec::new(),
        }
    }
}

impl State {
    pub(crate) fn unpark(&mut self, ticket: Ticket, wake: Wake) -> bool {
        let Some(task) = self.tasks.get_mut(&ticket.task) else {
            return false;
        };
        match task.parked {
            Some((seq, _)) if seq == ticket.seq => {
                task.parked = None;
                self.ready.push_back((ticket.task, wake));
                true
            }
            _ => false,
        }
    }

    fn interrupt(&mut self, id: TaskId, interrupt: Interrupt) {
        let Some(task) = self.tasks.get_mut(&id) else {
            return;
        };
        // A kill beats a timeout; the first timeout to fire beats later ones.
        match (task.interrupt, interrupt) {
            (Some(Interrupt::Kill), _) | (Some(Interrupt::Timeout(_)), Interrupt::Timeout(_)) => {}
            _ => task.interrupt = Some(interrupt),
        }
        if task.parked.take().is_some() {
            self.ready.push_back((id, Wake::Ready));
        }
    }

    fn notify(&mut self, waiter: Waiter, failed: bool) {
        match waiter {
            Waiter::Task(ticket) => {
                self.unpark(ticket, Wake::Ready);
            }
            Waiter::Group(group) => {
                let left = group.remaining.get().saturating_sub(1);
                group.remaining.set(left);
                if left == 0 || (failed && group.stop_on_failure) {
                    self.unpark(group.ticket, Wake::Ready);
                }
            }
        }
    }

    fn fire(&mut self, action: TimerAction) {
        match action {
            TimerAction::Wake(ticket) => {
                self.unpark(ticket, Wake::TimedOut);
            }
            TimerAction::Start(id) => {
                if self.tasks.contains_key(&id) {
                    self.ready.push_back((id, Wake::Start));
                }
            }
            TimerAction::Interrupt(id, interrupt) => self.interrupt(id, interrupt),
        }
    }

    /// Nothing can ever wake anyone: hand the report to the root greenlet
    /// (main), or to any other greenlet the hub did not spawn.
    fn deadlock(&mut self, root: TaskId) {
        let mut parked: Vec<(TaskId, &Task)> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.parked.is_some())
            .map(|(id, t)| (*id, t))
            .collect();
        parked.sort_by_key(|(id, _)| *id);
        let blocked = parked
            .iter()
            .filter_map(|(_, t)| {
                let (_, on) = t.parked?;
                Some((t.status.status().name(), self.describe(on)))
            })
            .collect();
        let victim = parked
            .iter()
            .find(|(id, _)| *id == root)
            .or_else(|| parked.iter().find(|(_, t)| !t.spawned))
            .and_then(|(id, t)| t.parked.map(|(seq, _)| Ticket { task: *id, seq }));
        let report = Arc::new(Deadlock { blocked });
        match victim {
            Some(ticket) => {
                self.unpark(ticket, Wake::Deadlock(report));
            }
            None => panic!("{report} (and no greenlet outside the hub is waiting to be told)"),
        }
    }

    fn describe(&self, on: WaitOn) -> String {
        let name = |id: TaskId| {
            self.tasks
                .get(&id)
                .map_or_else(|| format!("greenlet #{id}"), |t| t.status.status().name())
        };
        match on {
            WaitOn::Join(id) => format!("join({})", name(id)),
            WaitOn::JoinAll(n) => format!("joinall ({n} greenlets)"),
            WaitOn::Sleep => "sleep".into(),
            WaitOn::Yield => "yield_now".into(),
            WaitOn::Event(id) => format!("Event #{id}"),
            WaitOn::QueueGet(id) => format!("Queue #{id} (get: it is empty)"),
            WaitOn::QueuePut(id) => format!("Queue #{id} (put: it is full)"),
            WaitOn::Semaphore(id) => format!("Semaphore #{id} (acquire)"),
            WaitOn::PoolIdle(id) => format!("Pool #{id} (join)"),
            WaitOn::Io(token) => format!("socket readiness (token {token})"),
            WaitOn::Blocking => "spawn_blocking".into(),
        }
    }
}

// ANCHOR: run_loop
/// The hub greenlet's body: pick the next greenlet, switch to it, account
/// for what it did, forever.
fn run_loop() {
    // When the last switch ended; reused as the next one's start unless the
    // hub polled in between (and so may have slept).
    let mut clock: Option<Instant> = None;
    loop {
        let Some(hub) = existing() else {
            return; // the thread is exiting
        };
        let (id, greenlet, wake, spawned, polled) = hub.next();
        drop(hub);
        let start = match clock {
            Some(at) if !polled => at,
            _ => Instant::now(),
        };
        if spawned {
            diag::set_in_task(true);
        }
        let result = greenlet.switch::<Wake, ()>(wake);
        diag::set_in_task(false);
        let now = Instant::now();
        clock = Some(now);
        let Some(hub) = existing() else {
            return;
        };
        hub.after_run(id, &greenlet, spawned, now - start, result);
    }
}
// ANCHOR_END: run_loop

/// Ids for events, queues, semaphores and pools, as deadlock reports show them.
pub(crate) fn next_object_id() -> u64 {
    thread_local! {
        static NEXT: Cell<u64> = const { Cell::new(0) };
    }
    NEXT.with(|n| {
        n.set(n.get() + 1);
        n.get()
    })
}
