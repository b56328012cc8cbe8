//! The one trace a program records into, if any.
//!
//! Switching code deep inside a stage (the hub's park, a new hub on another
//! thread) cannot be handed a [`Trace`] through every call, so a program
//! that traces makes its trace *active* for the whole process, and that code
//! asks [`active`]. When nothing is active, [`is_active`] is one relaxed
//! atomic load: the branch every recording site pays when tracing is off.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::Trace;

static ACTIVE: AtomicBool = AtomicBool::new(false);
static TRACE: Mutex<Option<Trace>> = Mutex::new(None);

/// Whether a trace is active: cheap enough for every switch.
#[inline]
pub fn is_active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// The active trace, if there is one.
pub fn active() -> Option<Trace> {
    if !is_active() {
        return None;
    }
    TRACE.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Make `trace` the active one (`None`: stop recording); returns the one it
/// replaces.
pub fn set_active(trace: Option<Trace>) -> Option<Trace> {
    let mut slot = TRACE.lock().unwrap_or_else(|e| e.into_inner());
    ACTIVE.store(trace.is_some(), Ordering::Relaxed);
    std::mem::replace(&mut *slot, trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_is_active_until_replaced() {
        let before = set_active(Some(Trace::new(10)));
        assert!(is_active() && active().is_some());
        set_active(None);
        assert!(!is_active() && active().is_none());
        set_active(before);
    }
}
