//! What the hub adds to an active trace (`--trace FILE`): the names it gives
//! its greenlets, why each one parked, when a wait timed out, and every
//! `poll` with how long it could block and what it brought.
//!
//! The switches themselves are the greenlet crate's business (its switch
//! hook records who ran when); the hub only annotates. A hub made while no
//! trace is active records nothing and pays one branch per park and poll.

use std::time::{Duration, Instant};

use trace::{read::PARK, Arg, Args, Trace};

use super::{Hub, State, TaskId, WaitOn, Wake};

/// The trace a new hub on this thread records into: the active one, if any.
/// Starts recording this thread's switches too, unless something already
/// watches them.
pub(super) fn attach() -> Option<Trace> {
    let trace = trace::active()?;
    if stage_greenlet::hook::gettrace().is_none() {
        stage_greenlet::hook::record(&trace);
    }
    Some(trace)
}

// Cold: only a traced run calls it, and kept out of line it takes no room in
// the frame of each wait that inlines `Hub::park`.
#[cold]
// ANCHOR: parked
/// `task` parks on `on` (until `deadline`, if any).
pub(super) fn parked(
    trace: &Trace,
    st: &State,
    task: TaskId,
    on: WaitOn,
    deadline: Option<Instant>,
) {
    let mut args = Args::one("on", Arg::Str(st.describe(on).into()));
    if let Some(deadline) = deadline {
        let ms = deadline
            .saturating_duration_since(Instant::now())
            .as_secs_f64()
            * 1e3;
        args = args.and("timeout_ms", Arg::Float(ms));
    }
    trace.instant(task, PARK, args);
}
// ANCHOR_END: parked

/// `task`'s wait on `on` ended by `wake`: marked only when it was not the
/// thing it waited for (the deadline of a wait that was not a sleep passed,
/// or nothing could ever wake it).
#[cold]
pub(super) fn woke(trace: &Trace, task: TaskId, on: WaitOn, wake: &Wake) {
    let what = match wake {
        Wake::TimedOut if matches!(on, WaitOn::Sleep) => return,
        Wake::TimedOut => "timed out",
        Wake::Deadlock(_) => "deadlock",
        Wake::Start | Wake::Ready => return,
    };
    trace.instant(task, what, Args::none());
}

/// The hub polled from `start` until now, allowed to block for `timeout`
/// (`None`: until something happens), and got `events` readiness events.
pub(super) fn polled(
    hub: &Hub,
    trace: &Trace,
    start: Instant,
    timeout: Option<Duration>,
    events: usize,
) {
    let limit = match timeout {
        Some(t) => Arg::Float(t.as_secs_f64() * 1e3),
        None => Arg::Str("none: until a socket or a job is ready".into()),
    };
    let args = Args::one("timeout_ms", limit).and("events", Arg::Int(events as i64));
    trace.span(
        hub.greenlet.id(),
        "poll",
        trace.stamp(start),
        trace.now(),
        args,
    );
}
