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
mod close;
mod diag;
mod error;
mod event_loop;
mod few;
pub mod footprint;
mod handle;
pub mod io;
mod join;
mod local;
mod member;
mod park;
mod remote;
mod sockets;
mod state;
mod stopwatch;
mod task;
mod time;
mod timer;
mod traced;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use stage_greenlet::{Greenlet, WeakGreenlet};

pub use blocking::{spawn_blocking, BLOCKING_THREADS};
pub use close::{hubs_alive, stats, Stats};
pub use diag::{
    blocking_threshold, reset_diagnostic_hook, set_blocking_threshold, set_diagnostic_hook,
    Diagnostic, DEFAULT_BLOCKING_THRESHOLD,
};
pub use error::{Deadlock, HubError};
pub use handle::{Handle, LinkId};
pub(crate) use join::joinall_members;
pub use join::{iwait, joinall, wait, JoinAll, Wait, Waitable};
pub use local::Local;
pub use member::Member;
pub use remote::{RemoteWakeup, Wakeup};
pub use task::{current_name, spawn, spawn_later, Builder};
pub use time::{sleep, sleep_until, with_timeout, yield_now, Timeout};

use few::Pending;
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
    /// Counts every wait in the hub: unique, and in the order the waits
    /// began (so a waiter list keyed by it is first come, first served).
    pub(crate) seq: u64,
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
    /// The [`with_timeout`] block `id`, started at `started` with `limit`,
    /// ran out of time.
    Timeout {
        id: u64,
        started: Instant,
        limit: Duration,
    },
}

impl Interrupt {
    /// What a wait returns when this interrupt cannot unwind it (the
    /// greenlet `name` is already unwinding).
    fn error(self, name: String) -> HubError {
        match self {
            Interrupt::Kill => HubError::Killed { name },
            Interrupt::Timeout { started, limit, .. } => HubError::TimedOut {
                limit,
                elapsed: started.elapsed(),
            },
        }
    }
}

/// The unwind payload of a kill.
pub(crate) struct KillSignal;

/// The unwind payload of an expired [`with_timeout`].
pub(crate) struct TimeoutSignal(pub(crate) u64);

/// Whether a payload caught with `catch_unwind` is the hub unwinding a
/// greenlet (a [`Handle::kill`], an expired [`with_timeout`]) rather than a
/// panic. Code that catches panics around a greenlet's work must let these
/// go on with `resume_unwind`, or the kill or timeout would be swallowed.
///
/// ```
/// use std::panic::{catch_unwind, resume_unwind};
/// let worker = stage_hub::spawn(|| {
///     let caught = catch_unwind(|| stage_hub::sleep(std::time::Duration::from_secs(60)));
///     if let Err(payload) = caught {
///         if stage_hub::hub::is_interrupt(&*payload) {
///             resume_unwind(payload); // the kill goes on
///         }
///     }
/// });
/// stage_hub::yield_now(); // let it start sleeping
/// worker.kill();
/// assert!(matches!(worker.join(), Err(stage_hub::HubError::Killed { .. })));
/// ```
pub fn is_interrupt(payload: &(dyn Any + Send)) -> bool {
    payload.is::<KillSignal>() || payload.is::<TimeoutSignal>()
}

/// What a parked greenlet waits on, for the deadlock report.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WaitOn {
    Join(TaskId),
    JoinAll(usize),
    Sleep,
    Yield,
    Event(u64),
    AsyncResult(u64),
    QueueGet(u64),
    QueuePut(u64),
    QueuePeek(u64),
    QueueJoin(u64),
    Semaphore(u64),
    PoolSlot(u64),
    /// `wait`/`iwait` over this many objects.
    Wait(usize),
    Io(usize, mio::Interest),
    Blocking,
    Remote(u64),
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

impl Waiter {
    fn ticket(&self) -> Ticket {
        match self {
            Waiter::Task(ticket) => *ticket,
            Waiter::Group(group) => group.ticket,
        }
    }
}

/// One `joinall`: wake its ticket when every greenlet is done, or at the
/// first failure if asked to stop there.
pub(crate) struct GroupWait {
    pub(crate) remaining: Cell<usize>,
    pub(crate) stop_on_failure: bool,
    pub(crate) ticket: Ticket,
}

/// A greenlet the hub knows: one it spawned, or one (like main) that waits here.
struct Task {
    /// How the hub switches to it. Not a handle: a greenlet that merely
    /// waits here stays killable by dropping its own last handle, as
    /// stage-greenlet promises.
    greenlet: WeakGreenlet,
    /// The handle of a greenlet the hub spawned: those are the hub's own
    /// until they die (their `Handle` is not a greenlet handle).
    owned: Option<Greenlet>,
    /// Name and outcome, shared with the greenlet's `Handle`.
    status: Rc<dyn HasStatus>,
    /// Spawned by the hub (rather than main or another foreign greenlet
    /// that merely waited here).
    spawned: bool,
    /// The entry stays between waits: spawned greenlets until they die,
    /// the thread's main greenlet for good. Any other greenlet's entry goes
    /// when its wait ends (unless a `with_timeout` block of it is open),
    /// so waiting here leaves nothing behind.
    resident: bool,
    /// `with_timeout` blocks of this greenlet now open: its entry must stay
    /// to receive their interrupts.
    open_timeouts: u32,
    /// Switched to at least once: a greenlet killed before that never runs.
    started: bool,
    /// The wait in progress and what it is on, while parked.
    parked: Option<(u64, WaitOn)>,
    /// Kills and expired timeouts to raise at its waits, in the order they
    /// came (a kill first, whenever it came): see `State::interrupt`. And
    /// who to tell when it dies. Both nearly always empty: one pointer.
    pending: Pending<Interrupt, Waiter>,
    /// It is unwinding (killed, timed out or panicking) as far as the hub
    /// knows: a destructor that waits must not be unwound a second time.
    unwinding: bool,
}

/// The hub's mutable half. Never borrowed across a switch.
pub(crate) struct State {
    /// Boxed: a hash table keeps room for up to twice its entries, and
    /// while it doubles the old and the new table are both resident. With
    /// the entries in the table, that is up to three times a `Task` per
    /// greenlet; boxed, it is three pointers and one `Task`.
    tasks: IdMap<TaskId, Box<Task>>,
    /// Functions to run on the hub's stack at its next turn (link callbacks).
    callbacks: VecDeque<Box<dyn FnOnce()>>,
    /// Every `Local` of the thread, told when a spawned greenlet finishes.
    locals: Vec<std::rc::Weak<dyn local::ForgetGreenlet>>,
    /// The next wait's [`Ticket::seq`].
    next_seq: u64,
    ready: VecDeque<(TaskId, Wake)>,
    /// How many entries at the front of `ready` belong to the current pass.
    batch: usize,
    timers: Timers<TimerAction>,
    next_name: u64,
    /// Registered sockets, indexed by mio token.
    io: sockets::Sockets,
    /// Greenlets parked on a socket: while there are any, an empty hub
    /// waits in `poll` instead of declaring a deadlock.
    io_waiters: usize,
    /// Blocking jobs in flight, and the ticket of whoever waits for each.
    jobs: IdMap<u64, Option<Ticket>>,
    /// Each [`Wakeup`]'s waiters, by its id.
    wakeups: IdMap<u64, Vec<Ticket>>,
    /// Greenlets parked on a `Wakeup` that another thread can still ring:
    /// while there are any, an empty hub waits in `poll`.
    remote_waiters: usize,
    next_job: u64,
    /// The hub's descriptors; `None` once it is closed.
    poller: Option<Poller>,
    events: mio::Events,
    /// What the last poll reported, copied out of `events` so that waking
    /// greenlets can borrow the state; kept to reuse its allocation.
    readiness: Vec<Readiness>,
}

/// What the hub holds of the kernel: an epoll instance, and an eventfd
/// registered with it that other threads ring (mio's `Waker`). Kept apart
/// so that closing the hub closes them even if something still holds the
/// hub itself.
pub(crate) struct Poller {
    poll: mio::Poll,
    waker: Arc<mio::Waker>,
}

/// One poll event as the hub acts on it.
#[derive(Debug, Clone, Copy)]
struct Readiness {
    token: usize,
    readable: bool,
    writable: bool,
    read_closed: bool,
}

/// The mio token of the waker that other threads ring.
const WAKER: mio::Token = mio::Token(usize::MAX);

/// The most readiness events one poll takes (the rest wait in the kernel
/// for the next). Each event wakes a greenlet, and everything a batch
/// touches at the wakes (the greenlets' records, the tops of their stacks)
/// is touched again when they run, after the whole batch has been woken:
/// with a batch of 64 that is still in the core's second-level cache,
/// with 1,024 much of it is not. (tokio polls between every 61 tasks for
/// the same reason and for fairness.) A cache simulator cannot show this
/// (cachegrind models the first and the last level only); the echo server
/// at 10,000 clients, measured turn by turn against 1,024, can. Measured
/// again once the hub prefetched the stacks it wakes ([`PREFETCH_LINES`]):
/// 32 came out slower than 64, and 128 no faster.
const EVENTS_PER_POLL: usize = 64;

/// How many cache lines of a woken greenlet's stack the hub asks the
/// processor to load as it queues the greenlet, from the three words its
/// switch saved upward: 768 bytes, the frames a parked echo connection
/// returns through when it resumes (the socket wait's, the read's, the
/// handler's). One poll wakes up to 64 greenlets (`EVENTS_PER_POLL`) in one
/// pass, so their stacks come from memory side by side rather than one at
/// a time as each resumes (see `WeakGreenlet::prefetch`).
///
/// Measured turn by turn at 10,000 echo clients against the build without
/// it (5 turns): the server's user time per message 0.66–0.79× as much. 24
/// lines took a little more off the user time and added more to the
/// kernel's, whose lines they pushed out of the cache; 8 took less off.
pub const PREFETCH_LINES: usize = 12;

/// What another thread tells the hub, before ringing its waker.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Inbox {
    /// A `spawn_blocking` job finished.
    Job(u64),
    /// A [`RemoteWakeup`] rang the [`Wakeup`] with this id.
    Wakeup(u64),
}

/// One thread's hub.
pub(crate) struct Hub {
    greenlet: Greenlet,
    /// The greenlet that created the hub: it gets the deadlock error.
    root: TaskId,
    /// Messages from other threads (finished jobs, wakeups); read when the
    /// waker rings.
    inbox: mpsc::Sender<Inbox>,
    inbox_rx: mpsc::Receiver<Inbox>,
    /// Its thread is exiting: greenlets are being killed, and no wait or
    /// spawn can happen here any more (see `close.rs`).
    closing: Cell<bool>,
    /// Set as the loop picks a greenlet to switch to, read by that
    /// greenlet's `park` as the switch returns (nothing runs between):
    /// whether its entry needs a look on waking, because an interrupt came
    /// while it waited or because it is a foreign greenlet whose entry goes
    /// when its wait ends. Nearly always false, which spares each wake a
    /// lookup in the task table.
    woken_needs_look: Cell<bool>,
    state: RefCell<State>,
    /// The trace this hub annotates (`--trace`), if one was active when it
    /// was made: see `traced.rs`.
    trace: Option<trace::Trace>,
}

/// This thread's hub, if one was created (and not yet freed at thread exit).
pub(crate) fn existing() -> Option<Rc<Hub>> {
    close::existing()
}

impl Hub {
    /// This thread's hub, created on first use; [`HubError::Closed`] once
    /// the thread is exiting.
    pub(crate) fn get() -> Result<Rc<Hub>, HubError> {
        close::get_or_create(Hub::create)
    }

    fn create() -> Result<Hub, HubError> {
        let poller =
            |e: std::io::Error| HubError::Spawn(format!("cannot create the hub's poller: {e}"));
        let poll = mio::Poll::new().map_err(poller)?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER).map_err(poller)?);
        let greenlet = Greenlet::builder()
            .name("Hub")
            .spawn(|(): ()| event_loop::run_loop())
            .map_err(|e| HubError::Spawn(e.to_string()))?;
        diag::install_panic_hook();
        let trace = traced::attach();
        if let Some(trace) = &trace {
            trace.name_track(greenlet.id(), "Hub");
        }
        let (inbox, inbox_rx) = mpsc::channel();
        close::HUBS_ALIVE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Hub {
            greenlet,
            root: stage_greenlet::current().id(),
            inbox,
            inbox_rx,
            closing: Cell::new(false),
            woken_needs_look: Cell::new(false),
            state: RefCell::new(State {
                tasks: IdMap::default(),
                callbacks: VecDeque::new(),
                locals: Vec::new(),
                next_seq: 0,
                ready: VecDeque::new(),
                batch: 0,
                timers: Timers::new(),
                next_name: 0,
                io: sockets::Sockets::default(),
                io_waiters: 0,
                jobs: IdMap::default(),
                wakeups: IdMap::default(),
                remote_waiters: 0,
                next_job: 0,
                poller: Some(Poller { poll, waker }),
                events: mio::Events::with_capacity(EVENTS_PER_POLL),
                readiness: Vec::with_capacity(EVENTS_PER_POLL),
            }),
            trace,
        })
    }

    /// The task that is running now; a greenlet the hub did not spawn (main)
    /// becomes a "foreign" task the first time it waits.
    #[inline(never)]
    pub(crate) fn me(&self) -> TaskId {
        // The id alone first: a greenlet the hub knows needs no handle made.
        if let Some(id) = stage_greenlet::current_id() {
            if self.state.borrow().tasks.contains_key(&id) {
                return id;
            }
        }
        let current = stage_greenlet::current();
        let id = current.id();
        assert!(
            id != self.greenlet.id(),
            "a wait was called on the hub's own stack (from a diagnostic hook?): \
             the hub cannot wait for itself; do the waiting in a spawned greenlet"
        );
        let status = Rc::new(task::Status::foreign(current.name()));
        let task = Task::foreign(&current, status);
        self.state.borrow_mut().tasks.insert(id, Box::new(task));
        id
    }

    /// Tell `store` whenever a greenlet this hub spawned finishes.
    pub(crate) fn watch_deaths(&self, store: std::rc::Weak<dyn local::ForgetGreenlet>) {
        let mut st = self.state.borrow_mut();
        st.locals.retain(|l| l.strong_count() > 0);
        st.locals.push(store);
    }

    /// Run `f` on the hub's stack at its next turn, before the greenlets
    /// that are ready (gevent's `loop.run_callback`). It must not wait.
    pub(crate) fn call_soon(&self, f: Box<dyn FnOnce()>) {
        self.state.borrow_mut().callbacks.push_back(f);
    }

    /// The eventfd other threads ring, to hand to one of them (`None` once
    /// the hub is closed).
    pub(crate) fn waker(&self) -> Option<Arc<mio::Waker>> {
        let st = self.state.borrow();
        st.poller.as_ref().map(|p| p.waker.clone())
    }

    pub(crate) fn add_timer(&self, deadline: Instant, action: TimerAction) -> TimerId {
        self.state.borrow_mut().timers.add(deadline, action)
    }

    /// Whether `timer` is still to fire.
    pub(crate) fn timer_pending(&self, timer: TimerId) -> bool {
        self.state.borrow().timers.is_pending(timer)
    }

    pub(crate) fn cancel_timer(&self, timer: TimerId) {
        self.state.borrow_mut().timers.cancel(timer);
    }

    /// Tell `waiter` when `task` dies (at once if it already has).
    pub(crate) fn add_done_waiter(&self, task: TaskId, waiter: Waiter) {
        let mut st = self.state.borrow_mut();
        match st.tasks.get_mut(&task) {
            Some(t) => t.pending.change(|p| p.done_waiters.push(waiter)),
            None => st.notify(waiter, false),
        }
    }

    /// Forget `ticket`'s wait for `task` to die (it timed out or was
    /// killed): nothing is left behind for the death to wake.
    pub(crate) fn remove_done_waiter(&self, task: TaskId, ticket: Ticket) {
        if let Some(t) = self.state.borrow_mut().tasks.get_mut(&task) {
            t.pending
                .change(|p| p.done_waiters.retain(|w| w.ticket() != ticket));
        }
    }

    fn add_task(
        &self,
        id: TaskId,
        greenlet: Greenlet,
        status: Rc<dyn HasStatus>,
        delay: Option<Duration>,
    ) {
        if let Some(trace) = &self.trace {
            trace.name_track(id, status.status().name());
        }
        let mut st = self.state.borrow_mut();
        st.tasks
            .insert(id, Box::new(Task::spawned(greenlet, status)));
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
}

impl Task {
    /// A greenlet the hub spawned and owns until it dies.
    fn spawned(greenlet: Greenlet, status: Rc<dyn HasStatus>) -> Task {
        Task {
            greenlet: greenlet.downgrade(),
            owned: Some(greenlet),
            status,
            spawned: true,
            resident: true,
            open_timeouts: 0,
            started: false,
            parked: None,
            pending: Pending::default(),
            unwinding: false,
        }
    }

    /// A greenlet the hub did not spawn (main, or one of stage-greenlet's),
    /// about to wait here.
    fn foreign(greenlet: &Greenlet, status: Rc<dyn HasStatus>) -> Task {
        Task {
            greenlet: greenlet.downgrade(),
            owned: None,
            status,
            spawned: false,
            resident: greenlet.is_main(),
            open_timeouts: 0,
            started: true,
            parked: None,
            pending: Pending::default(),
            unwinding: false,
        }
    }

    /// A foreign greenlet whose wait ended, with nothing pending for it:
    /// its entry can go (the next wait makes a new one).
    fn is_done_waiting(&self) -> bool {
        !self.resident && self.open_timeouts == 0 && self.pending.interrupts().is_empty()
    }
}

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
