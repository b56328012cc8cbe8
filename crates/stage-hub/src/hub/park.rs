//! Parking and waking: one greenlet's wait, from its start to its end.
//!
//! Every wait in the crate — `sleep`, `join`, an `Event`, a `Queue`, a
//! `Semaphore`, a socket, `spawn_blocking` — is one call to
//! [`Hub::park`]. A wait ends in one of three ways: something wakes its
//! ticket (it returns), its deadline passes (it returns `Wake::TimedOut`),
//! or an interrupt — a kill, an expired timeout — unwinds it, unless the
//! greenlet is already unwinding, when the interrupt waits (see
//! [`Hub::raise_interrupt`]). However it ends, the wait's bookkeeping ends
//! with it, so nothing is left behind.

use std::panic::resume_unwind;
use std::time::Instant;

use super::timer::TimerId;
use super::{
    traced, Hub, HubError, Interrupt, KillSignal, TaskId, Ticket, TimeoutSignal, TimerAction,
    WaitOn, Wake,
};

/// The switch to the hub failed: nothing could ever wake the greenlet.
#[cold]
#[inline(never)]
fn hub_failed(e: stage_greenlet::SwitchError) -> ! {
    panic!("the hub failed, so nothing can wake this greenlet: {e}")
}

fn unwind(interrupt: Interrupt) -> ! {
    match interrupt {
        Interrupt::Kill => resume_unwind(Box::new(KillSignal)),
        Interrupt::Timeout { id, .. } => resume_unwind(Box::new(TimeoutSignal(id))),
    }
}

impl Hub {
    // ANCHOR: park
    /// Park the current greenlet: `register` learns the ticket that wakes it
    /// (and must not switch); with a `deadline`, a timer wakes it with
    /// [`Wake::TimedOut`]. A kill or an expired `with_timeout` unwinds from
    /// here instead of returning. A [`WaitOn::Yield`] is queued as ready at
    /// once: its `register` has nothing to do.
    //
    // Inlined into every wait that calls it: as a function of its own it
    // had the biggest frame between a handler's `read` and the switch, and
    // each line of a parked greenlet's frames is a line of memory its next
    // wake touches again (see the hub chapter, "Where the time goes with
    // many connections"). For the same reason what a wait seldom needs
    // (raising an interrupt, cancelling a timer, tracing, making an error)
    // is called out of line, so it takes no room in that frame.
    #[inline(always)]
    pub(crate) fn park(
        &self,
        on: WaitOn,
        deadline: Option<Instant>,
        register: impl FnOnce(Ticket),
    ) -> Result<Wake, HubError> {
        // The running greenlet's entry, found by id (made on its first wait
        // if the hub did not spawn it: `me` does that, off the fast path).
        // A loop, not a call of `park` again: a recursive function cannot
        // be inlined into its callers.
        let mut me = stage_greenlet::current_id();
        let (me, ticket) = loop {
            if self.closing.get() {
                // A destructor of a greenlet being killed at thread exit.
                return Err(HubError::Closed);
            }
            let id = match me {
                Some(id) => id,
                None => self.me(),
            };
            let mut state = self.state.borrow_mut();
            let st = &mut *state;
            let Some(task) = st.tasks.get_mut(&id) else {
                drop(state);
                me = Some(self.me());
                continue;
            };
            if !task.pending.interrupts().is_empty() {
                drop(state);
                // Unwinds, or ends this wait with the interrupt's error.
                self.raise_interrupt(id)?;
                continue;
            }
            let seq = st.next_seq;
            st.next_seq += 1;
            if matches!(on, WaitOn::Yield) {
                // Ready at once: to the back of the queue, rather than
                // parked here and woken by `register`, which would look
                // the entry up again.
                st.ready.push_back((id, Wake::Ready));
            } else {
                task.parked = Some((seq, on));
            }
            if let Some(trace) = &self.trace {
                traced::parked(trace, st, id, on, deadline);
            }
            break (id, Ticket { task: id, seq });
        };
        register(ticket);
        let timer = deadline.map(|d| self.add_timer(d, TimerAction::Wake(ticket)));
        let unwinding = WaitUnwinds {
            hub: self,
            me,
            timer,
        };
        let wake = match self.greenlet.switch::<(), Wake>(()) {
            Ok(wake) => wake,
            Err(e) => hub_failed(e),
        };
        // It returned: the bookkeeping is below.
        std::mem::forget(unwinding);
        // Whatever woke us took the wait off the entry (`State::unpark`,
        // `State::interrupt`); the entry needs a look only if the hub saw,
        // as it switched here, an interrupt to raise or an entry to drop.
        let look = self.woken_needs_look.get();
        debug_assert!(self
            .state
            .borrow()
            .tasks
            .get(&me)
            .is_none_or(|t| t.parked.is_none()));
        if let Some(trace) = &self.trace {
            traced::woke(trace, me, on, &wake);
        }
        if (timer.is_some() || look) && self.end_wait(me, timer, look, &wake) {
            self.raise_interrupt(me)?;
        }
        match wake {
            Wake::Deadlock(report) => Err(HubError::Deadlock(report)),
            wake => Ok(wake),
        }
    }
    // ANCHOR_END: park

    /// The rarer half of a wait's end, kept out of [`Hub::park`] (and so
    /// out of the frame of every wait it is inlined into): cancel the
    /// wait's timer unless it fired, and when the hub said the entry needs
    /// a look, drop a foreign greenlet's entry that is done waiting.
    /// Returns whether an interrupt is pending.
    #[inline(never)]
    fn end_wait(&self, me: TaskId, timer: Option<TimerId>, look: bool, wake: &Wake) -> bool {
        let mut st = self.state.borrow_mut();
        if let Some(timer) = timer {
            if !matches!(wake, Wake::TimedOut) {
                st.timers.cancel(timer);
            }
        }
        look && match st.tasks.get_mut(&me) {
            Some(task) => {
                let interrupted = !task.pending.interrupts().is_empty();
                if task.is_done_waiting() {
                    st.tasks.remove(&me);
                }
                interrupted
            }
            None => false,
        }
    }

    /// A `with_timeout` block of `me` opens: its entry must stay until the
    /// block closes, to receive the block's interrupt.
    pub(crate) fn timeout_opened(&self, me: TaskId) {
        if let Some(task) = self.state.borrow_mut().tasks.get_mut(&me) {
            task.open_timeouts += 1;
        }
    }

    /// A `with_timeout` block of `me` closed.
    pub(crate) fn timeout_closed(&self, me: TaskId) {
        let mut st = self.state.borrow_mut();
        if let Some(task) = st.tasks.get_mut(&me) {
            task.open_timeouts -= 1;
            if task.parked.is_none() && task.is_done_waiting() {
                st.tasks.remove(&me);
            }
        }
    }

    /// Raise `me`'s pending interrupt: unwind from here. Unless `me` is
    /// already unwinding (a kill's or a timeout's unwind ran a destructor
    /// that waits, and another kill or timeout arrived): a second unwind
    /// would abort the process, so the interrupt stays pending and the wait
    /// returns its error instead (every later wait of the unwind too, so the
    /// cleanup ends quickly). Once the unwind is over (caught by its
    /// `with_timeout`, say), the next wait raises it for real.
    ///
    /// `std::thread::panicking()` alone cannot say whether `me` unwinds:
    /// every greenlet of the thread shares it, so it is also true in a
    /// greenlet woken while another one's destructor waits. It can only say
    /// that nobody unwinds, which clears a flag left by an unwind that user
    /// code caught.
    #[cold]
    #[inline(never)]
    fn raise_interrupt(&self, me: TaskId) -> Result<(), HubError> {
        let mut st = self.state.borrow_mut();
        let Some(task) = st.tasks.get_mut(&me) else {
            return Ok(());
        };
        // A kill goes first; timeouts in the order they expired.
        let at = task
            .pending
            .interrupts()
            .iter()
            .position(|i| *i == Interrupt::Kill)
            .unwrap_or(0);
        let Some(&interrupt) = task.pending.interrupts().get(at) else {
            return Ok(());
        };
        if task.unwinding && std::thread::panicking() {
            return Err(interrupt.error(task.status.status().name()));
        }
        task.pending.change(|p| p.interrupts.remove(at));
        task.unwinding = true;
        drop(st);
        unwind(interrupt)
    }

    /// `me`'s unwind ended (its `with_timeout` caught it): its next
    /// interrupt may unwind again.
    pub(crate) fn unwound(&self, me: TaskId) {
        if let Some(task) = self.state.borrow_mut().tasks.get_mut(&me) {
            task.unwinding = false;
        }
    }

    /// Mark the running greenlet as unwinding (it panicked, or kills
    /// itself), if the hub knows it. Safe to call from a panic hook: gives
    /// up rather than wait for a borrow.
    pub(crate) fn mark_unwinding(&self, id: TaskId) -> Option<bool> {
        let mut st = self.state.try_borrow_mut().ok()?;
        let task = st.tasks.get_mut(&id)?;
        Some(std::mem::replace(&mut task.unwinding, true))
    }

    /// End the wait `ticket` stands for; `false` if it had already ended.
    pub(crate) fn unpark(&self, ticket: Ticket) -> bool {
        self.state.borrow_mut().unpark(ticket, Wake::Ready)
    }

    /// Forget `interrupt` if it is still pending (its block has ended).
    pub(crate) fn clear_interrupt(&self, task: TaskId, interrupt: Interrupt) {
        if let Some(task) = self.state.borrow_mut().tasks.get_mut(&task) {
            task.pending
                .change(|p| p.interrupts.retain(|i| *i != interrupt));
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
}

/// Armed across the switch in [`Hub::park`]: if the switch unwinds instead
/// of returning (stage-greenlet killed the greenlet where it waits: its last
/// handle went, or its thread is exiting), end the wait's bookkeeping on the
/// way out, so the greenlet's entry does not claim it is still parked.
struct WaitUnwinds<'a> {
    hub: &'a Hub,
    me: TaskId,
    timer: Option<TimerId>,
}

impl Drop for WaitUnwinds<'_> {
    fn drop(&mut self) {
        let Ok(mut st) = self.hub.state.try_borrow_mut() else {
            return;
        };
        if let Some(timer) = self.timer {
            st.timers.cancel(timer);
        }
        if let Some(task) = st.tasks.get_mut(&self.me) {
            task.parked = None;
            task.unwinding = true;
            if task.is_done_waiting() {
                st.tasks.remove(&self.me);
            }
        }
    }
}
