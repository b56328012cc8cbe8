//! Waiting for time: `sleep`, `yield_now`, and the `with_timeout` guard.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use super::{next_object_id, Hub, HubError, Interrupt, TimeoutSignal, TimerAction, WaitOn, Wake};

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
    let _ = hub.park(WaitOn::Yield, None, |ticket| {
        hub.unpark(ticket);
    });
}

/// Run `f`, but interrupt it at its next wait once `limit` has passed: the
/// wait unwinds (dropping `f`'s locals) and this returns
/// [`HubError::TimedOut`] with the time that had passed. Work that never
/// waits cannot be interrupted; it finishes first.
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
    let hub = Hub::get()?;
    let me = hub.me();
    let id = next_object_id();
    let start = Instant::now();
    let interrupt = Interrupt::Timeout {
        id,
        started: start,
        limit,
    };
    let timer = hub.add_timer(start + limit, TimerAction::Interrupt(me, interrupt));
    hub.timeout_opened(me);
    let outcome = catch_unwind(AssertUnwindSafe(f));
    hub.cancel_timer(timer);
    hub.clear_interrupt(me, interrupt);
    hub.timeout_closed(me);
    match outcome {
        Ok(value) => Ok(value),
        Err(payload) => match payload.downcast_ref::<TimeoutSignal>() {
            Some(TimeoutSignal(fired)) if *fired == id => {
                hub.unwound(me); // caught here: the unwind is over
                Err(HubError::TimedOut {
                    limit,
                    elapsed: start.elapsed(),
                })
            }
            _ => resume_unwind(payload),
        },
    }
}
