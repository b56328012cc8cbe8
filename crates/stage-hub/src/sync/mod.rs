//! Coordination between greenlets: the cooperative twins of the thread tools
//! the notes recap. Waiting on any of them parks the greenlet and lets the
//! hub run the others; none of them is `Send` (they belong to one hub).
//!
//! - [`Event`]: a flag greenlets wait to see set.
//! - [`AsyncResult`]: a value or a failure that arrives once, for any number
//!   of waiters.
//! - [`Queue`], [`LifoQueue`], [`PriorityQueue`], [`Channel`]: items passed
//!   between greenlets, bounded or not, first in first out, last in first
//!   out, lowest first, or handed over in a rendezvous.
//! - [`Semaphore`]: at most N holders at once.
//! - [`Group`], [`Pool`]: greenlets handled together (joined, killed,
//!   mapped over), and in a pool at most N running at once.

mod async_result;
mod event;
mod group;
mod pool;
mod queue;
mod semaphore;

pub use async_result::AsyncResult;
pub use event::Event;
pub use group::Group;
pub use pool::Pool;
pub use queue::{Channel, LifoQueue, PriorityQueue, PutError, Queue, TaskDoneTooOften};
pub use semaphore::{Semaphore, SemaphoreGuard};

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Instant;

use crate::hub::{existing, Hub, HubError, Ticket, WaitOn, Wake};

// ANCHOR: wait_list
/// Greenlets parked on one object, oldest first (keyed by their wait's
/// sequence number, which the hub hands out in order), each with a payload
/// `P` (a putter's item, say).
///
/// Waking is *handing over*: [`grant_oldest`](WaitList::grant_oldest) gives
/// the oldest waiter a `G` (a permit, an item, "the event was set") and
/// wakes it; the grant is its own, kept aside until it runs. A woken waiter
/// can therefore never lose what woke it to a greenlet that asks first, so
/// every object built on this is first come, first served. A waiter that
/// ends some other way (its deadline, a kill) leaves the list, and passes on
/// a grant it got but never used: see [`wait_for_grant`].
#[derive(Debug)]
pub(crate) struct WaitList<P = (), G = ()> {
    waiting: BTreeMap<u64, (Ticket, P)>,
    /// Grants handed to waiters that have not run yet, by wait number.
    granted: BTreeMap<u64, G>,
}

impl<P, G> Default for WaitList<P, G> {
    fn default() -> Self {
        WaitList {
            waiting: BTreeMap::new(),
            granted: BTreeMap::new(),
        }
    }
}

impl<P, G> WaitList<P, G> {
    /// Whether nobody waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// How many wait here.
    pub(crate) fn len(&self) -> usize {
        self.waiting.len()
    }

    /// The oldest waiter's payload, without waking it.
    pub(crate) fn oldest(&self) -> Option<&P> {
        self.waiting.values().next().map(|(_, p)| p)
    }

    /// Hand `grant` to the oldest waiter and wake it; its payload comes
    /// back. `Err(grant)` if nobody waits.
    pub(crate) fn grant_oldest(&mut self, grant: G) -> Result<P, G> {
        let Some((seq, (ticket, payload))) = self.waiting.pop_first() else {
            return Err(grant);
        };
        self.granted.insert(seq, grant);
        if let Some(hub) = existing() {
            // Already woken by its deadline? Then it finds the grant anyway.
            hub.unpark(ticket);
        }
        Ok(payload)
    }

    /// Grant every greenlet waiting now, oldest first.
    pub(crate) fn grant_all(&mut self, mut grant: impl FnMut() -> G) {
        while self.grant_oldest(grant()).is_ok() {}
    }
}
impl<G> WaitList<(), G> {
    /// Add `ticket` without parking through [`wait_for_grant`]: one wait on
    /// several objects registers with each (see `hub::wait`).
    pub(crate) fn watch(&mut self, ticket: Ticket) {
        self.waiting.insert(ticket.seq, (ticket, ()));
    }

    /// Take a watch back out; whether it was granted meanwhile.
    pub(crate) fn unwatch(&mut self, seq: u64) -> bool {
        self.waiting.remove(&seq);
        self.granted.remove(&seq).is_some()
    }
}
// ANCHOR_END: wait_list

/// How a [`wait_for_grant`] ended.
pub(crate) enum Waited<P, G> {
    /// Something was handed over: the wait succeeded (the payload went to
    /// whoever granted).
    Granted(G),
    /// Woken without a grant (`Wake::TimedOut` at its deadline, or a
    /// spurious wake): the payload comes back, and the caller decides.
    Ended(P, Wake),
    /// The wait failed (a deadlock, the hub closing, an interrupt that could
    /// not unwind): the payload, if it was still ours.
    Failed(HubError, Option<P>),
}

/// Park the running greenlet on `list` with `payload` until something is
/// granted to it, its `deadline` passes or it is interrupted. However the
/// wait ends it leaves the list, so timed-out and killed waits leave
/// nothing behind; and a grant it received but cannot use (it was killed
/// after being woken, say) goes to `pass_on`, so a permit or an item is
/// never stranded.
pub(crate) fn wait_for_grant<P, G>(
    hub: &Hub,
    list: &RefCell<WaitList<P, G>>,
    on: WaitOn,
    deadline: Option<Instant>,
    payload: P,
    pass_on: impl FnOnce(G),
) -> Waited<P, G> {
    /// Armed for the unwinding path: leave the list, pass a grant on.
    struct Leave<'a, P, G, F: FnOnce(G)> {
        list: &'a RefCell<WaitList<P, G>>,
        seq: Cell<Option<u64>>,
        pass_on: Option<F>,
    }
    impl<P, G, F: FnOnce(G)> Leave<'_, P, G, F> {
        /// Take our entry and our grant out of the list.
        fn take(&self) -> (Option<P>, Option<G>) {
            let Some(seq) = self.seq.take() else {
                return (None, None);
            };
            let mut list = self.list.borrow_mut();
            let payload = list.waiting.remove(&seq).map(|(_, p)| p);
            (payload, list.granted.remove(&seq))
        }
    }
    impl<P, G, F: FnOnce(G)> Drop for Leave<'_, P, G, F> {
        fn drop(&mut self) {
            let (payload, grant) = self.take();
            drop(payload);
            if let (Some(grant), Some(pass_on)) = (grant, self.pass_on.take()) {
                pass_on(grant);
            }
        }
    }
    let mut leave = Leave {
        list,
        seq: Cell::new(None),
        pass_on: Some(pass_on),
    };
    let mut payload = Some(payload);
    let woke = hub.park(on, deadline, |ticket| {
        leave.seq.set(Some(ticket.seq));
        if let Some(payload) = payload.take() {
            list.borrow_mut()
                .waiting
                .insert(ticket.seq, (ticket, payload));
        }
    });
    let (ours, grant) = leave.take();
    let pass_on = leave.pass_on.take();
    drop(leave);
    match (woke, grant) {
        (Ok(_), Some(grant)) => Waited::Granted(grant),
        (Err(error), grant) => {
            if let (Some(grant), Some(pass_on)) = (grant, pass_on) {
                pass_on(grant);
            }
            Waited::Failed(error, ours.or(payload))
        }
        (Ok(wake), None) => match ours {
            Some(p) => Waited::Ended(p, wake),
            None => unreachable!("a waiter's entry leaves the list only with a grant"),
        },
    }
}

/// Park the running greenlet on `list` as `on` until `ready()` holds (not
/// at all if it already does) or `deadline` passes, then
/// [`HubError::TimedOut`]. For objects whose waiters all wait for the same
/// news ([`Event`]'s "set", [`AsyncResult`]'s "arrived", a queue's "every
/// item done"): a wake without a grant only means "look again".
pub(crate) fn wait_until_ready(
    list: &RefCell<WaitList>,
    on: WaitOn,
    deadline: Option<Instant>,
    ready: impl Fn() -> bool,
) -> Result<(), HubError> {
    let start = HubError::start_for(deadline);
    while !ready() {
        let hub = Hub::get()?;
        match wait_for_grant(&hub, list, on, deadline, (), drop) {
            Waited::Granted(()) => return Ok(()),
            Waited::Ended((), Wake::TimedOut) if !ready() => {
                return Err(HubError::timed_out(deadline, start));
            }
            Waited::Ended(..) => {}
            Waited::Failed(e, _) => return Err(e),
        }
    }
    Ok(())
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
            assert!(q.get_timeout(Duration::ZERO).unwrap_err().is_timeout());
        }
        assert_eq!(q.inner_getters(), 0);
        q.try_put(1).unwrap();
        assert_eq!(q.try_get(), Some(1));
    }

    #[test]
    fn event_wait_timeouts_leave_no_waiters_behind() {
        let ev = Event::new();
        for _ in 0..ROUNDS {
            assert!(ev.wait_timeout(Duration::ZERO).unwrap_err().is_timeout());
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
            spawn(move || drop(pl.wait_available())),
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
