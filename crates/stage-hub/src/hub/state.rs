//! The hub's bookkeeping: ending waits, interrupts, timers firing, and the
//! deadlock report.

use std::sync::Arc;

use super::{Deadlock, Interrupt, State, Task, TaskId, Ticket, TimerAction, WaitOn, Waiter, Wake};

impl State {
    // Inlined: every wake goes through it, and as a call its prologue and
    // epilogue were a quarter of its instructions.
    #[inline]
    pub(crate) fn unpark(&mut self, ticket: Ticket, wake: Wake) -> bool {
        let Some(task) = self.tasks.get_mut(&ticket.task) else {
            return false;
        };
        match task.parked {
            Some((seq, _)) if seq == ticket.seq => {
                task.parked = None;
                // It runs later in this batch: start loading its stack now,
                // beside the others this poll wakes.
                task.greenlet.prefetch(super::PREFETCH_LINES);
                self.ready.push_back((ticket.task, wake));
                true
            }
            _ => false,
        }
    }

    pub(super) fn interrupt(&mut self, id: TaskId, interrupt: Interrupt) {
        let Some(task) = self.tasks.get_mut(&id) else {
            return;
        };
        // Kept in the order they come, and raised in that order at its
        // waits (a kill first): when an inner and an outer `with_timeout`
        // both expire while the greenlet holds the hub, the inner one
        // (earlier deadline, so its timer fired first) ends its block, the
        // code after it runs, and the outer one is raised at the next wait —
        // as in gevent, where each expired timeout is thrown in turn.
        if !task.pending.interrupts().contains(&interrupt) {
            task.pending.change(|p| p.interrupts.push(interrupt));
        }
        if task.parked.take().is_some() {
            self.ready.push_back((id, Wake::Ready));
        }
    }

    pub(super) fn notify(&mut self, waiter: Waiter, failed: bool) {
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

    pub(super) fn fire(&mut self, action: TimerAction) {
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
    pub(super) fn deadlock(&mut self, root: TaskId) {
        let mut parked: Vec<(TaskId, &Task)> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.parked.is_some())
            .map(|(id, t)| (*id, &**t))
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

    /// What `on` is, in words (the deadlock report and the trace say it).
    pub(super) fn describe(&self, on: WaitOn) -> String {
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
            WaitOn::AsyncResult(id) => format!("AsyncResult #{id} (get: not set yet)"),
            WaitOn::QueueGet(id) => format!("Queue #{id} (get: it is empty)"),
            WaitOn::QueuePut(id) => format!("Queue #{id} (put: it is full)"),
            WaitOn::QueuePeek(id) => format!("Queue #{id} (peek: it is empty)"),
            WaitOn::QueueJoin(id) => format!("Queue #{id} (join: tasks not done)"),
            WaitOn::Semaphore(id) => format!("Semaphore #{id} (acquire)"),
            WaitOn::PoolSlot(id) => format!("Pool #{id} (a free slot)"),
            WaitOn::Wait(n) => format!("wait ({n} objects)"),
            WaitOn::Io(token, interest) => {
                let what = match (interest.is_readable(), interest.is_writable()) {
                    (true, true) => "read or write",
                    (false, true) => "write",
                    _ => "read",
                };
                format!("socket {what} (token {token})")
            }
            WaitOn::Blocking => "spawn_blocking".into(),
            WaitOn::Remote(id) => format!("Wakeup #{id} (no other thread can ring it)"),
        }
    }
}
