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

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Instant;

use crate::hub::{existing, Hub, HubError, Ticket, WaitOn, Wake};

/// Greenlets parked on one object, oldest first: keyed by their wait's
/// sequence number, which the hub hands out in order. A wait leaves the list
/// however it ends (see [`park_on`]); tickets of waits that ended anyway
/// are skipped when woken.
#[derive(Debug, Default)]
pub(crate) struct WaitList {
    tickets: BTreeMap<u64, Ticket>,
}

impl WaitList {
    pub(crate) fn push(&mut self, ticket: Ticket) {
        self.tickets.insert(ticket.seq, ticket);
    }

    /// Take `ticket` off the list (its wait ended some other way).
    pub(crate) fn remove(&mut self, ticket: Ticket) {
        self.tickets.remove(&ticket.seq);
    }

    /// How many wait here.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.tickets.len()
    }

    /// Wake the oldest greenlet still waiting; `false` if there was none.
    pub(crate) fn wake_one(&mut self) -> bool {
        let Some(hub) = existing() else {
            return false;
        };
        while let Some((_, ticket)) = self.tickets.pop_first() {
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
        for (_, ticket) in std::mem::take(&mut self.tickets) {
            hub.unpark(ticket);
        }
    }
}

/// Park the running greenlet on `list` until something wakes it, `deadline`
/// passes or an interrupt unwinds it. Its entry leaves the list however the
/// wait ends, so timed-out and killed waits leave nothing behind.
pub(crate) fn park_on(
    hub: &Hub,
    list: &RefCell<WaitList>,
    on: WaitOn,
    deadline: Option<Instant>,
) -> Result<Wake, HubError> {
    struct Leave<'a> {
        list: &'a RefCell<WaitList>,
        ticket: Cell<Option<Ticket>>,
    }
    impl Drop for Leave<'_> {
        fn drop(&mut self) {
            if let Some(ticket) = self.ticket.get() {
                self.list.borrow_mut().remove(ticket);
            }
        }
    }
    let leave = Leave {
        list,
        ticket: Cell::new(None),
    };
    hub.park(on, deadline, |ticket| {
        leave.ticket.set(Some(ticket));
        list.borrow_mut().push(ticket);
    })
}

#[cfg(test)]
mod tests {
    //! A wait that ends by its deadline or by a kill takes its entry out of
    //! the waiter list: nothing piles up for a later wake to wade through.

    use std::time::Duration;

    use crate::hub::{spawn, yield_now};
    use crate::{Event, Pool, Queue, Semaphore};

    const ROUNDS: usize = 1_000;

    #[test]
    fn queue_get_timeouts_leave_no_getters_behind() {
        let q: Queue<u32> = Queue::unbounded();
        for _ in 0..ROUNDS {
            assert_eq!(q.get_timeout(Duration::ZERO).unwrap(), None);
        }
        assert_eq!(q.inner_getters(), 0);
        q.try_put(1).unwrap();
        assert_eq!(q.try_get(), Some(1));
    }

    #[test]
    fn event_wait_timeouts_leave_no_waiters_behind() {
        let ev = Event::new();
        for _ in 0..ROUNDS {
            assert!(!ev.wait_timeout(Duration::ZERO).unwrap());
        }
        assert_eq!(ev.inner_waiters(), 0);
    }

    #[test]
    fn killed_waiters_leave_no_entries_behind() {
        let empty: Queue<u32> = Queue::unbounded();
        let full: Queue<u32> = Queue::bounded(1);
        full.try_put(0).unwrap();
        let ev = Event::new();
        let sem = Semaphore::new(0);
        let pool = Pool::new(1);
        let blocker = pool
            .spawn(|| crate::sleep(Duration::from_secs(60)))
            .unwrap();
        let (g, p, e, s, pl) = (
            empty.clone(),
            full.clone(),
            ev.clone(),
            sem.clone(),
            pool.clone(),
        );
        let waiters = vec![
            spawn(move || drop(g.get())),
            spawn(move || drop(p.put(1))),
            spawn(move || drop(e.wait())),
            spawn(move || drop(s.acquire())),
            spawn(move || drop(pl.join())),
        ];
        yield_now(); // each parks
        let counts = |what: &str| {
            [
                empty.inner_getters(),
                full.inner_putters(),
                ev.inner_waiters(),
                sem.inner_waiters(),
                pool.inner_idle_waiters(),
            ]
            .map(|n| (what.to_string(), n))
        };
        assert!(
            counts("parked").iter().all(|(_, n)| *n == 1),
            "{:?}",
            counts("parked")
        );
        for w in &waiters {
            w.kill();
        }
        blocker.kill();
        assert!(
            counts("killed").iter().all(|(_, n)| *n == 0),
            "{:?}",
            counts("killed")
        );
    }
}
