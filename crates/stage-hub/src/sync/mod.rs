//! Coordination between greenlets: the cooperative twins of the thread tools
//! the notes recap. Waiting on any of them parks the greenlet and lets the
//! hub run the others; none of them is `Send` (they belong to one hub).
//!
//! - [`Event`]: a flag greenlets wait to see set.
//! - [`Queue`]: items passed between greenlets, bounded or not.
//! - [`Semaphore`]: at most N holders at once.
//! - [`Pool`]: spawn greenlets, at most N running at once.

mod event;
mod pool;
mod queue;
mod semaphore;

pub use event::Event;
pub use pool::Pool;
pub use queue::Queue;
pub use semaphore::{Semaphore, SemaphoreGuard};

use std::collections::VecDeque;

use crate::hub::{existing, Ticket};

/// Greenlets parked on one object, oldest first. Tickets of waits that
/// already ended (timed out, killed) are skipped when woken.
#[derive(Debug, Default)]
pub(crate) struct WaitList {
    tickets: VecDeque<Ticket>,
}

impl WaitList {
    pub(crate) fn push(&mut self, ticket: Ticket) {
        self.tickets.push_back(ticket);
    }

    /// Wake the oldest greenlet still waiting; `false` if there was none.
    pub(crate) fn wake_one(&mut self) -> bool {
        let Some(hub) = existing() else {
            return false;
        };
        while let Some(ticket) = self.tickets.pop_front() {
            if hub.unpark(ticket) {
                return true;
            }
        }
        false
    }

    /// Wake every greenlet waiting.
    pub(crate) fn wake_all(&mut self) {
        let Some(hub) = existing() else {
            return;
        };
        for ticket in self.tickets.drain(..) {
            hub.unpark(ticket);
        }
    }
}
