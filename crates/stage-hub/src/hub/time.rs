//! Waiting for time: `sleep`, `yield_now`, and time limits: [`Timeout`]
//! and `with_timeout` on it.

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::timer::TimerId;
use super::{
    next_object_id, Hub, HubError, Interrupt, TaskId, TimeoutSignal, TimerAction, WaitOn, Wake,
};

/// Sleep cooperatively: park this greenlet for `duration` and let the hub run
/// every other one meanwhile. The hub-aware twin of `std::thread::sleep`,
/// which would freeze every greenlet on the thread.
///
/// Greenlets that sleep the same duration wake in the order they fell asleep.
/// If the hub cannot be created (no memory for its stack), this falls back
/// to `std::thread::sleep`.
pub fn sleep(duration: Duration) {
    sleep_until(Instant::now() + duration);
}

// ANCHOR: sleep_until
/// Sleep cooperatively until `deadline` (at once if it has passed, after
/// letting the hub run its due timers).
pub fn sleep_until(deadline: Instant) {
    let Ok(hub) = Hub::get() else {
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        return;
    };
    // Nothing but the timer wakes a sleeper, and a timer cannot deadlock;
    // the loop only guards against waking early.
    loop {
        match hub.park(WaitOn::Sleep, Some(deadline), |_| {}) {
            Ok(Wake::TimedOut) | Err(_) => return,
            Ok(_) if Instant::now() >= deadline => return,
            Ok(_) => {}
        }
    }
}
// ANCHOR_END: sleep_until

/// Let every other greenlet that is ready run once, then continue. Unlike
/// `sleep(Duration::ZERO)`, this does not go through the timers.
pub fn yield_now() {
    let Ok(hub) = Hub::get() else {
        return;
    };
    // `park` queues a yield as ready at once: nothing is left to register.
    let _ = hub.park(WaitOn::Yield, None, |_| {});
}

/// Run `f`, but interrupt it at its next wait once `limit` has passed: the
/// wait unwinds (dropping `f`'s locals) and this returns
/// [`HubError::TimedOut`] with the time that had passed. Work that never
/// waits cannot be interrupted; it finishes first. Built on [`Timeout`].
///
/// ```
/// use std::time::Duration;
/// let err = stage_hub::with_timeout(Duration::from_millis(10), || {
///     stage_hub::sleep(Duration::from_secs(60));
/// })
/// .unwrap_err();
/// assert!(err.is_timeout());
/// ```
pub fn with_timeout<T>(limit: Duration, f: impl FnOnce() -> T) -> Result<T, HubError> {
    Timeout::new(limit).run(f)
}

// ANCHOR: timeout
/// A time limit for the running greenlet, as a value (gevent's `Timeout`):
/// once [started](Timeout::start), it raises at the greenlet's next wait
/// after `limit` — that wait unwinds — unless it was cancelled first.
/// Dropping it cancels it.
///
/// [`run`](Timeout::run) is the usual way: start, run a block, catch this
/// timeout's own unwind (and only its own), cancel. A started `Timeout` not
/// inside its `run` unwinds the greenlet to whoever catches it:
/// [`Timeout::caught`] recognises it in a `catch_unwind`.
///
/// ```
/// use std::time::Duration;
/// use stage_hub::{sleep, Timeout};
///
/// let mut limit = Timeout::new(Duration::from_secs(5));
/// assert!(!limit.pending());
/// limit.start()?;
/// assert!(limit.pending());
/// sleep(Duration::from_millis(1)); // well within it
/// limit.cancel();
/// assert!(!limit.pending());
///
/// // A block with a custom error (gevent's `Timeout(seconds, exception)`).
/// let slow = Timeout::new(Duration::from_millis(5)).run_or("too slow", || {
///     sleep(Duration::from_secs(60));
/// });
/// assert_eq!(slow, Err("too slow"));
/// # Ok::<(), stage_hub::HubError>(())
/// ```
pub struct Timeout {
    id: u64,
    limit: Duration,
    /// While started: the hub, the greenlet it interrupts, when it started
    /// and its timer.
    armed: Option<Armed>,
}

struct Armed {
    hub: Rc<Hub>,
    me: TaskId,
    interrupt: Interrupt,
    timer: TimerId,
}

impl Timeout {
    /// A limit of `limit`, not started.
    pub fn new(limit: Duration) -> Timeout {
        Timeout {
            id: next_object_id(),
            limit,
            armed: None,
        }
    }

    /// A limit of `limit`, started for the running greenlet.
    pub fn start_new(limit: Duration) -> Result<Timeout, HubError> {
        let mut timeout = Timeout::new(limit);
        timeout.start()?;
        Ok(timeout)
    }

    /// The limit.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// Start it for the running greenlet: `limit` from now, its next wait
    /// unwinds. Starting a started one starts it afresh.
    pub fn start(&mut self) -> Result<(), HubError> {
        self.cancel();
        let hub = Hub::get()?;
        let me = hub.me();
        let interrupt = Interrupt::Timeout {
            id: self.id,
            started: Instant::now(),
            limit: self.limit,
        };
        let deadline = Instant::now() + self.limit;
        let timer = hub.add_timer(deadline, TimerAction::Interrupt(me, interrupt));
        hub.timeout_opened(me);
        self.armed = Some(Armed {
            hub,
            me,
            interrupt,
            timer,
        });
        Ok(())
    }

    /// Stop it: it will not raise (if it already expired, the unwind it
    /// raised is not undone).
    pub fn cancel(&mut self) {
        if let Some(armed) = self.armed.take() {
            armed.hub.cancel_timer(armed.timer);
            armed.hub.clear_interrupt(armed.me, armed.interrupt);
            armed.hub.timeout_closed(armed.me);
        }
    }

    /// Whether it is started and has not yet expired or been cancelled.
    pub fn pending(&self) -> bool {
        self.armed
            .as_ref()
            .is_some_and(|armed| armed.hub.timer_pending(armed.timer))
    }

    /// Whether `payload` (from `catch_unwind`) is this timeout's own unwind.
    pub fn caught(&self, payload: &(dyn Any + Send)) -> bool {
        matches!(payload.downcast_ref::<TimeoutSignal>(), Some(TimeoutSignal(id)) if *id == self.id)
    }

    /// Start it (unless started), run `f`, and cancel it: `f`'s value, or
    /// [`HubError::TimedOut`] if it expired and unwound `f` from a wait.
    /// Another unwind (a kill, an outer timeout, a panic) goes on.
    pub fn run<T>(self, f: impl FnOnce() -> T) -> Result<T, HubError> {
        let limit = self.limit;
        let started = Instant::now();
        self.run_or_else(f, || HubError::TimedOut {
            limit,
            elapsed: started.elapsed(),
        })
    }

    /// [`run`](Self::run), with `error` as what an expiry returns.
    pub fn run_or<T, E>(self, error: E, f: impl FnOnce() -> T) -> Result<T, E> {
        self.run_or_else(f, || error)
    }

    fn run_or_else<T, E>(
        mut self,
        f: impl FnOnce() -> T,
        error: impl FnOnce() -> E,
    ) -> Result<T, E> {
        if self.armed.is_none() {
            if let Err(_hub) = self.start() {
                // No hub: nothing can wait, so nothing can be interrupted.
                return Ok(f());
            }
        }
        let outcome = catch_unwind(AssertUnwindSafe(f));
        let me = self
            .armed
            .as_ref()
            .map(|armed| (armed.hub.clone(), armed.me));
        self.cancel();
        match outcome {
            Ok(value) => Ok(value),
            Err(payload) if self.caught(&*payload) => {
                if let Some((hub, me)) = me {
                    hub.unwound(me); // caught here: the unwind is over
                }
                Err(error())
            }
            Err(payload) => resume_unwind(payload),
        }
    }
}
// ANCHOR_END: timeout

impl Drop for Timeout {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl std::fmt::Debug for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeout")
            .field("limit", &self.limit)
            .field("pending", &self.pending())
            .finish()
    }
}
