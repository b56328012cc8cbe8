//! Diagnostics: the warnings gevent users wish they had, and where they go.
//!
//! Two things are reported, once each, through a per-thread hook (stderr by
//! default; tests and the lesson install their own):
//!
//! - a greenlet held the hub longer than the blocking threshold (it called
//!   something blocking, like `std::thread::sleep`, instead of the hub's
//!   cooperative version);
//! - a greenlet failed and nobody will ever look at its result.
//!
//! A panic inside a spawned greenlet is not printed by Rust's panic hook:
//! its message (and where it was raised) becomes the greenlet's result, and
//! is printed only if nobody joins it. That is what makes "printed once"
//! possible.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::Duration;

use harness::report::human_seconds;

use super::HubError;

/// The default blocking threshold: a greenlet that keeps the hub from running
/// for longer than this is named in a warning.
pub const DEFAULT_BLOCKING_THRESHOLD: Duration = Duration::from_millis(100);

/// Something the hub noticed and thinks a person should know.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Diagnostic {
    /// `name` ran for `held` without letting the hub run (threshold `threshold`).
    Blocked {
        /// The greenlet that held the hub.
        name: String,
        /// How long it held it.
        held: Duration,
        /// The threshold it crossed.
        threshold: Duration,
    },
    /// A callback linked to `name`'s end (`Handle::link`) panicked; the
    /// hub carried on with the others.
    LinkPanicked {
        /// The greenlet the callback was linked to.
        name: String,
        /// The panic message.
        message: String,
    },
    /// `name` failed and its handle was dropped without anyone looking at
    /// the error.
    Unjoined {
        /// The greenlet that failed.
        name: String,
        /// How it failed.
        error: HubError,
    },
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnostic::Blocked {
                name,
                held,
                threshold,
            } => write!(
                f,
                "greenlet `{name}` kept the hub from running for {} (threshold {}): it called \
                 something blocking; use the hub's version (stage_hub::sleep, net, \
                 spawn_blocking) so others can run meanwhile",
                human_seconds(held.as_secs_f64()),
                human_seconds(threshold.as_secs_f64())
            ),
            Diagnostic::LinkPanicked { name, message } => write!(
                f,
                "a callback linked to greenlet `{name}` panicked (the others still ran): {message}"
            ),
            Diagnostic::Unjoined { name, error } => match error {
                HubError::Panicked { message, .. } => write!(
                    f,
                    "greenlet `{name}` panicked and nobody joined it: {message}"
                ),
                other => write!(f, "greenlet `{name}` failed and nobody joined it: {other}"),
            },
        }
    }
}

type Hook = Rc<dyn Fn(&Diagnostic)>;

thread_local! {
    static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
    static THRESHOLD: Cell<Option<Duration>> = const { Cell::new(Some(DEFAULT_BLOCKING_THRESHOLD)) };
    /// Whether a spawned greenlet is running (so its panics are kept, not printed).
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
    /// The last panic kept from a spawned greenlet: its message and where.
    static LAST_PANIC: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

/// Send this thread's diagnostics to `hook` instead of stderr. The hook runs
/// on the hub's stack: it must not wait (no `sleep`, no `join`).
///
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// let seen = Rc::new(RefCell::new(Vec::new()));
/// let sink = seen.clone();
/// stage_hub::set_diagnostic_hook(move |d| sink.borrow_mut().push(d.to_string()));
/// stage_hub::set_blocking_threshold(Some(std::time::Duration::from_millis(5)));
/// stage_hub::spawn(|| std::thread::sleep(std::time::Duration::from_millis(20)))
///     .join()
///     .unwrap();
/// assert!(seen.borrow()[0].contains("Greenlet-1"));
/// ```
pub fn set_diagnostic_hook(hook: impl Fn(&Diagnostic) + 'static) {
    HOOK.with(|h| *h.borrow_mut() = Some(Rc::new(hook)));
}

/// Send this thread's diagnostics to stderr again (the default).
pub fn reset_diagnostic_hook() {
    HOOK.with(|h| *h.borrow_mut() = None);
}

/// Warn when a greenlet holds the hub longer than `threshold`; `None` turns
/// the blocking detector off. Per thread; the default is
/// [`DEFAULT_BLOCKING_THRESHOLD`].
///
/// Runs that begin under a threshold of 25 kernel ticks or more (the
/// default, where a tick is 4 ms or less) are timed on the kernel's coarse
/// clock, to within a tick (under 4 % of the threshold); under a smaller
/// one, on the precise clock. A greenlet is judged at the end of its run,
/// by the threshold then.
pub fn set_blocking_threshold(threshold: Option<Duration>) {
    THRESHOLD.with(|t| t.set(threshold));
}

/// The blocking detector's current threshold on this thread.
pub fn blocking_threshold() -> Option<Duration> {
    THRESHOLD.with(Cell::get)
}

/// Hand `diagnostic` to the hook, or print it on stderr.
pub(crate) fn report(diagnostic: &Diagnostic) {
    let hook = HOOK.try_with(|h| h.borrow().clone()).ok().flatten();
    match hook {
        Some(hook) => hook(diagnostic),
        None => eprintln!("stage-hub: {diagnostic}"),
    }
}

/// Mark whether a spawned greenlet is running on this thread.
pub(crate) fn set_in_task(running: bool) {
    let _ = IN_TASK.try_with(|c| c.set(running));
}

/// `message` with where it was raised, if the last panic kept from a
/// spawned greenlet had that message (a payload re-raised with
/// `resume_unwind` never went through the hook, so it has no place).
pub(crate) fn with_panic_location(message: String) -> String {
    let kept = LAST_PANIC
        .try_with(|p| p.borrow_mut().take())
        .ok()
        .flatten();
    match kept {
        Some((kept, at)) if kept == message => format!("{message} (at {at})"),
        _ => message,
    }
}

/// Install (once per process) a panic hook that keeps panics raised inside
/// spawned greenlets instead of printing them, and passes every other panic
/// to the hook that was there before. A panic raised while its greenlet is
/// already unwinding is printed too, with the greenlet's name: it is the
/// kind that aborts the process, and the message is all the user gets.
///
/// Called when a hub is made and at every spawn (one atomic load once it is
/// in). A thread that is panicking cannot change the panic hook (std
/// panics, which in a destructor aborts the process), and a hub may well be
/// made there (a `Drop` that calls `yield_now` during an unwind): then it
/// waits for the next call. Until then a spawned greenlet's panic is
/// printed by the previous hook as well as kept for its joiner.
pub(crate) fn install_panic_hook() {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    static ONCE: Once = Once::new();
    if INSTALLED.load(Ordering::Acquire) || std::thread::panicking() {
        return;
    }
    ONCE.call_once(|| {
        INSTALLED.store(true, Ordering::Release);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // The running greenlet unwinds now; was it already unwinding?
            let already = stage_greenlet::current_id()
                .and_then(|id| Some((id, super::existing()?)))
                .and_then(|(id, hub)| Some((hub.mark_unwinding(id)?, hub.task_name(id)?)));
            let in_task = IN_TASK.try_with(Cell::get).unwrap_or(false);
            if !in_task {
                return previous(info);
            }
            if let Some((true, name)) = already {
                // A panic during an unwind (a destructor run by a kill, a
                // timeout or another panic): if it leaves the destructor,
                // Rust aborts the process, and no joiner will ever see it.
                // Say it now, and where, as stage-greenlet alone would.
                eprintln!(
                    "stage-hub: greenlet `{name}` panicked while it was already unwinding \
                     (killed, timed out or panicking); a panic that leaves a destructor \
                     during an unwind aborts the process"
                );
                return previous(info);
            }
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic with a non-string payload".to_string());
            let at = info.location().map_or_else(
                || "an unknown place".to_string(),
                |at| format!("{}:{}", at.file(), at.line()),
            );
            let _ = LAST_PANIC.try_with(|p| *p.borrow_mut() = Some((message, at)));
        }));
    });
}
