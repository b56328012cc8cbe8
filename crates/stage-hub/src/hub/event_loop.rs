//! The hub's loop: pick the next ready greenlet, switch to it, account for
//! what it did; between batches, fire timers and poll for readiness.

use std::time::{Duration, Instant};

use stage_greenlet::WeakGreenlet;

use super::stopwatch::{Overrun, Reading};
use super::{
    diag, existing, Diagnostic, Hub, HubError, Inbox, Readiness, State, TaskId, Wake, WAKER,
};

impl Hub {
    /// A greenlet died (or was killed before it started): wake whoever
    /// waits for it, and report a failure nobody can look at any more.
    /// Returns whether it reported one (the diagnostic hook ran).
    pub(super) fn finish(&self, id: TaskId) -> bool {
        let Some(task) = self.state.borrow_mut().tasks.remove(&id) else {
            return false;
        };
        let status = task.status.status();
        if status.is_running() {
            status.fail(HubError::Killed {
                name: status.name(),
            });
        }
        let failed = status.failed();
        let locals = {
            let mut st = self.state.borrow_mut();
            for waiter in task.pending.into_done_waiters() {
                st.notify(waiter, failed);
            }
            (!st.locals.is_empty()).then(|| st.locals.clone())
        };
        if let Some(locals) = locals {
            super::local::forget_greenlet(&locals, id);
        }
        let reported = task.status.clone().finished(id);
        drop(task.owned); // a never-started body is dropped here, outside any borrow
        reported
    }

    /// The next greenlet to switch to, running timers and polling as needed;
    /// the flag says whether the hub polled (and so may have slept) first.
    // Inlined into the loop, its one caller, as `after_run` is: as calls,
    // their prologues and epilogues were a tenth of the loop's own work.
    #[inline(always)]
    fn next(&self) -> (TaskId, WeakGreenlet, Wake, bool, bool) {
        let mut polled = false;
        loop {
            {
                let mut st = self.state.borrow_mut();
                if let Some(callback) = st.callbacks.pop_front() {
                    drop(st);
                    run_callback(callback);
                    polled = true; // the hub's own time: read the clock again
                    continue;
                }
                if st.batch > 0 {
                    st.batch -= 1;
                    if let Some((id, wake)) = st.ready.pop_front() {
                        if let Some(task) = st.tasks.get_mut(&id) {
                            task.started = true;
                            // Told to the greenlet's `park` as it wakes (see
                            // `Hub::woken_needs_look`): nothing runs between.
                            self.woken_needs_look
                                .set(!task.resident || !task.pending.interrupts().is_empty());
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
            let remote = !st.jobs.is_empty() || st.remote_waiters > 0;
            let watching = !st.io.is_empty() || remote;
            let timeout = if !st.ready.is_empty() || !st.callbacks.is_empty() {
                if polled || !watching {
                    st.batch = st.ready.len();
                    return polled;
                }
                Some(Duration::ZERO)
            } else if let (Some(deadline), Some(now)) = (st.timers.next_deadline(), now) {
                Some(deadline.saturating_duration_since(now))
            } else if st.io_waiters > 0 || remote {
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
        let State { poller, events, .. } = &mut *st;
        let Some(poller) = poller else {
            return; // closed: the thread is exiting, and nothing polls any more
        };
        let start = self.trace.as_ref().map(|_| Instant::now());
        if let Err(e) = poller.poll.poll(events, timeout) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                panic!("the hub's poll failed ({e}): no greenlet can be woken any more");
            }
        }
        if let (Some(trace), Some(start)) = (&self.trace, start) {
            super::traced::polled(self, trace, start, timeout, st.events.iter().count());
        }
        let mut ready = std::mem::take(&mut st.readiness);
        ready.clear();
        ready.extend(st.events.iter().map(|e| Readiness {
            token: e.token().0,
            readable: e.is_readable() || e.is_read_closed() || e.is_error(),
            writable: e.is_writable() || e.is_write_closed() || e.is_error(),
            read_closed: e.is_read_closed() || e.is_error(),
        }));
        for r in &ready {
            if r.token == WAKER.0 {
                for message in self.inbox_rx.try_iter() {
                    match message {
                        Inbox::Job(job) => {
                            if let Some(Some(ticket)) = st.jobs.remove(&job) {
                                st.unpark(ticket, Wake::Ready);
                            }
                        }
                        Inbox::Wakeup(id) => {
                            let waiters = st.wakeups.get_mut(&id).map(std::mem::take);
                            for ticket in waiters.into_iter().flatten() {
                                st.unpark(ticket, Wake::Ready);
                            }
                        }
                    }
                }
            } else if let Some(slot) = st.io.get(r.token).cloned() {
                slot.ready(r.readable, r.writable, r.read_closed, &mut st);
            }
        }
        st.readiness = ready;
    }

    /// Back from running `id`: warn if it held the hub past the blocking
    /// threshold (`overrun`), and finish it if it died. Returns whether
    /// that ran code of unknown length (the diagnostic hook, a dead
    /// greenlet's destructors), after which the clock must be read again.
    #[inline(always)]
    fn after_run(
        &self,
        id: TaskId,
        greenlet: &WeakGreenlet,
        overrun: Option<Overrun>,
        result: Result<(), stage_greenlet::SwitchError>,
    ) -> bool {
        let mut slow = false;
        // The greenlet's status is looked up only on the two rare paths
        // that need it: every wake would otherwise pay a table lookup and
        // an `Rc` clone for nothing.
        let status = || self.state.borrow().tasks.get(&id).map(|t| t.status.clone());
        if let Some(Overrun { held, threshold }) = overrun {
            if let Some(status) = status() {
                diag::report(&Diagnostic::Blocked {
                    name: status.status().name(),
                    held,
                    threshold,
                });
                slow = true;
            }
        }
        if let Err(e) = result {
            if let Some(status) = status() {
                let status = status.status();
                if status.is_running() {
                    status.fail(HubError::Panicked {
                        name: status.name(),
                        message: e.to_string(),
                    });
                }
            }
        }
        if greenlet.is_dead() {
            slow |= self.finish(id);
        }
        slow
    }
}

/// Run a hub callback (a link): a panic in it is reported, and the hub
/// goes on.
fn run_callback(callback: Box<dyn FnOnce()>) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(callback)) {
        diag::report(&Diagnostic::LinkPanicked {
            name: "Hub".into(),
            message: super::task::payload_text(&*payload),
        });
    }
}

// ANCHOR: run_loop
/// The hub greenlet's body: pick the next greenlet, switch to it, account
/// for what it did, forever.
pub(super) fn run_loop() {
    // When the last judged run ended; reused as the next one's start unless
    // the hub polled in between (and so may have slept) or ran code of
    // unknown length (the diagnostic hook, a dead greenlet's destructors),
    // or a run nobody judges came between: each greenlet is blamed only for
    // its own run.
    let mut last_end: Option<Reading> = None;
    loop {
        let Some(hub) = existing() else {
            return; // the thread is exiting
        };
        let (id, greenlet, wake, spawned, polled) = hub.next();
        drop(hub);
        if polled {
            last_end = None;
        }
        // Only a spawned greenlet's run is judged: the others read no clock.
        let start = spawned.then(|| Reading::start(last_end));
        if spawned {
            diag::set_in_task(true);
        }
        let result = greenlet.switch::<Wake, ()>(wake);
        diag::set_in_task(false);
        let (end, overrun) = start.map_or((None, None), |start| {
            let (end, overrun) = start.stop();
            (Some(end), overrun)
        });
        last_end = end;
        let Some(hub) = existing() else {
            return;
        };
        if hub.after_run(id, &greenlet, overrun, result) {
            last_end = None;
        }
    }
}
// ANCHOR_END: run_loop
