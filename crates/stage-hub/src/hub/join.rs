//! Waiting for several things at once: [`joinall`] over greenlets, and
//! [`wait`] / [`iwait`] over any mix of greenlets, events, async results and
//! queues.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::handle::{Handle, Joinable};
use super::member::Member;
use super::task::Status;
use super::{GroupWait, Hub, HubError, TaskId, Ticket, WaitOn, Waiter, Wake};
use crate::sync::WaitList;

/// However a join ends (its greenlets died, its deadline passed, it was
/// killed), take its entries out of the done-waiter lists of the greenlets
/// it waited for: a join that timed out leaves nothing behind. (Borrows the
/// ids: a join, the commonest wait of all, allocates nothing for this.)
pub(crate) struct LeaveDoneWaiters<'a> {
    hub: &'a Hub,
    tasks: &'a [TaskId],
    registered: Cell<Option<Ticket>>,
}

impl<'a> LeaveDoneWaiters<'a> {
    pub(crate) fn new(hub: &'a Hub, tasks: &'a [TaskId]) -> Self {
        LeaveDoneWaiters {
            hub,
            tasks,
            registered: Cell::new(None),
        }
    }

    /// The wait registered with every task's done-waiters as `ticket`.
    pub(crate) fn registered(&self, ticket: Ticket) {
        self.registered.set(Some(ticket));
    }

    /// Every task it waited for is dead: their entries, done-waiters and
    /// all, are gone already.
    pub(crate) fn all_dead(&self) {
        self.registered.set(None);
    }
}

impl Drop for LeaveDoneWaiters<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.registered.take() {
            for task in self.tasks {
                self.hub.remove_done_waiter(*task, ticket);
            }
        }
    }
}

/// How [`joinall`] waits: for how many, for how long, and whether the first
/// failure ends it.
#[derive(Debug, Clone, Copy, Default)]
pub struct JoinAll {
    timeout: Option<Duration>,
    stop_at_first_failure: bool,
    count: Option<usize>,
}

impl JoinAll {
    /// Wait for every greenlet, however long, collecting every result.
    pub fn new() -> JoinAll {
        JoinAll::default()
    }

    /// Give up after `limit` ([`HubError::TimedOut`]); the unfinished
    /// greenlets keep running.
    pub fn timeout(mut self, limit: Duration) -> JoinAll {
        self.timeout = Some(limit);
        self
    }

    /// Return the first failure as soon as it happens instead of waiting
    /// for the rest (gevent's `raise_error=True`).
    pub fn stop_at_first_failure(mut self) -> JoinAll {
        self.stop_at_first_failure = true;
        self
    }

    /// Return once `n` of them have finished (gevent's `count`).
    pub fn count(mut self, n: usize) -> JoinAll {
        self.count = Some(n);
        self
    }
}

// ANCHOR: joinall
/// Wait for `handles` to finish, and return the ones that have, in the
/// order given (gevent's `joinall`): all of them, or the first
/// [`JoinAll::count`] to finish. With [`JoinAll::stop_at_first_failure`],
/// the first failure's error as soon as it happens; [`HubError::TimedOut`]
/// if the timeout passes first.
///
/// ```
/// use stage_hub::{joinall, spawn, JoinAll};
/// let handles: Vec<_> = (0..3u64).map(|i| spawn(move || i * 10)).collect();
/// let done = joinall(&handles, JoinAll::new())?;
/// assert_eq!(done.len(), 3);
/// let values: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
/// assert_eq!(values, [0, 10, 20]);
/// # Ok::<(), stage_hub::HubError>(())
/// ```
pub fn joinall<T: 'static>(
    handles: &[Handle<T>],
    opts: JoinAll,
) -> Result<Vec<Handle<T>>, HubError> {
    joinall_any(handles, opts)
}

/// [`joinall`] over a group's members.
pub(crate) fn joinall_members(members: &[Member], opts: JoinAll) -> Result<Vec<Member>, HubError> {
    joinall_any(members, opts)
}

fn joinall_any<J: Joinable>(handles: &[J], opts: JoinAll) -> Result<Vec<J>, HubError> {
    let start = Instant::now();
    let deadline = opts.timeout.map(|limit| start + limit);
    let wanted = opts.count.unwrap_or(handles.len()).min(handles.len());
    let dead = |h: &&J| !h.task_status().is_running();
    loop {
        if opts.stop_at_first_failure {
            if let Some(failed) = handles
                .iter()
                .filter(dead)
                .find(|h| h.task_status().failed())
            {
                let status = failed.task_status();
                status.observed.set(true);
                return Err(status.error().unwrap_or(HubError::Killed {
                    name: status.name(),
                }));
            }
        }
        let done = handles.iter().filter(dead).count();
        if done >= wanted {
            return Ok(handles.iter().filter(dead).cloned().collect());
        }
        let pending: Vec<TaskId> = handles
            .iter()
            .filter(|h| h.task_status().is_running())
            .map(Joinable::task)
            .collect();
        let hub = Hub::get()?;
        let leave = LeaveDoneWaiters::new(&hub, &pending);
        let wake = hub.park(WaitOn::JoinAll(pending.len()), deadline, |ticket| {
            leave.registered(ticket);
            let group = Rc::new(GroupWait {
                remaining: Cell::new(wanted - done),
                stop_on_failure: opts.stop_at_first_failure,
                ticket,
            });
            for id in &pending {
                hub.add_done_waiter(*id, Waiter::Group(group.clone()));
            }
        })?;
        drop(leave);
        let done = handles.iter().filter(dead).count();
        if matches!(wake, Wake::TimedOut) && done < wanted {
            return Err(HubError::TimedOut {
                limit: opts.timeout.unwrap_or_default(),
                elapsed: start.elapsed(),
            });
        }
    }
}
// ANCHOR_END: joinall

/// Something [`wait`] and [`iwait`] can wait on: a greenlet's [`Handle`]
/// (ready once it has finished), an [`Event`](crate::Event) (once set), an
/// [`AsyncResult`](crate::AsyncResult) (once it has its value or failure),
/// or a queue (while a `get` would return at once). Made with `from`/`into`
/// from a reference to any of them, so one call can wait on a mix.
pub struct Waitable<'a> {
    what: What<'a>,
}

enum What<'a> {
    Greenlet {
        id: TaskId,
        status: &'a Status,
    },
    /// Readiness told through a waiter list (grants mean "look again"),
    /// and a check of whether it is ready now.
    Listed {
        list: &'a RefCell<WaitList>,
        ready: Box<dyn Fn() -> bool + 'a>,
    },
}

impl<'a> Waitable<'a> {
    /// Readiness told through `list`, checked by `ready`.
    pub(crate) fn listed(list: &'a RefCell<WaitList>, ready: impl Fn() -> bool + 'a) -> Self {
        Waitable {
            what: What::Listed {
                list,
                ready: Box::new(ready),
            },
        }
    }

    /// Whether it is ready now.
    pub fn ready(&self) -> bool {
        match &self.what {
            What::Greenlet { status, .. } => !status.is_running(),
            What::Listed { ready, .. } => ready(),
        }
    }

    fn watch(&self, hub: &Hub, ticket: Ticket) {
        match &self.what {
            What::Greenlet { id, .. } => hub.add_done_waiter(*id, Waiter::Task(ticket)),
            What::Listed { list, .. } => list.borrow_mut().watch(ticket),
        }
    }

    /// Stop watching; whether it told us it became ready.
    fn unwatch(&self, hub: &Hub, ticket: Ticket) -> bool {
        match &self.what {
            What::Greenlet { id, .. } => {
                hub.remove_done_waiter(*id, ticket);
                false
            }
            What::Listed { list, .. } => list.borrow_mut().unwatch(ticket.seq),
        }
    }
}

impl<'a, T: 'static> From<&'a Handle<T>> for Waitable<'a> {
    fn from(handle: &'a Handle<T>) -> Self {
        Waitable {
            what: What::Greenlet {
                id: handle.task(),
                status: handle.task_status(),
            },
        }
    }
}

impl<'a> From<&'a Member> for Waitable<'a> {
    fn from(member: &'a Member) -> Self {
        Waitable {
            what: What::Greenlet {
                id: member.task(),
                status: member.task_status(),
            },
        }
    }
}

/// How [`wait`] waits: for how many, and for how long.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wait {
    count: Option<usize>,
    timeout: Option<Duration>,
}

impl Wait {
    /// Until every object is ready.
    pub fn all() -> Wait {
        Wait::default()
    }

    /// Until the first one is.
    pub fn any() -> Wait {
        Wait::default().count(1)
    }

    /// Until `n` of them are.
    pub fn count(mut self, n: usize) -> Wait {
        self.count = Some(n);
        self
    }

    /// At most `limit`: if fewer than asked are ready by then,
    /// [`HubError::TimedOut`], as every wait with a limit here (gevent
    /// returns the ones ready so far instead; ask each object's `ready()`).
    pub fn timeout(mut self, limit: Duration) -> Wait {
        self.timeout = Some(limit);
        self
    }
}

// ANCHOR: wait
/// Wait until `objects` are ready (all, or as many as `opts` asks, within
/// its timeout), and return the positions of those that are, in order
/// (gevent's `gevent.wait`; [`HubError::TimedOut`] if the timeout passes
/// first). An object counts as ready if it is ready now,
/// or told it became ready while we waited (an event set and cleared again
/// still counts, as in gevent).
///
/// ```
/// use std::time::Duration;
/// use stage_hub::hub::{wait, Wait, Waitable};
/// use stage_hub::{sleep, spawn, Event, Queue};
///
/// let (ev, q) = (Event::new(), Queue::<u8>::unbounded());
/// let slow = spawn(|| sleep(Duration::from_millis(50)));
/// let tx = q.clone();
/// spawn(move || tx.put(1).unwrap());
/// let objects = [Waitable::from(&slow), (&ev).into(), (&q).into()];
/// let ready = wait(&objects, Wait::any())?;
/// assert_eq!(ready, [2]); // the queue got an item first
/// # Ok::<(), stage_hub::HubError>(())
/// ```
pub fn wait(objects: &[Waitable<'_>], opts: Wait) -> Result<Vec<usize>, HubError> {
    let wanted = opts.count.unwrap_or(objects.len()).min(objects.len());
    let started = Instant::now();
    let deadline = opts.timeout.map(|limit| started + limit);
    let mut fired = vec![false; objects.len()];
    loop {
        let ready: Vec<usize> = (0..objects.len())
            .filter(|&i| fired[i] || objects[i].ready())
            .collect();
        if ready.len() >= wanted {
            return Ok(ready);
        }
        let hub = Hub::get()?;
        let registered: Cell<Option<Ticket>> = Cell::new(None);
        let woke = {
            // Unwatch however the wait ends.
            struct Unwatch<'b, 'a> {
                hub: &'b Hub,
                objects: &'b [Waitable<'a>],
                ticket: &'b Cell<Option<Ticket>>,
                fired: &'b mut [bool],
            }
            impl Drop for Unwatch<'_, '_> {
                fn drop(&mut self) {
                    if let Some(ticket) = self.ticket.take() {
                        for (i, object) in self.objects.iter().enumerate() {
                            self.fired[i] |= object.unwatch(self.hub, ticket);
                        }
                    }
                }
            }
            let unwatch = Unwatch {
                hub: &hub,
                objects,
                ticket: &registered,
                fired: &mut fired,
            };
            let woke = hub.park(WaitOn::Wait(objects.len()), deadline, |ticket| {
                registered.set(Some(ticket));
                for object in objects {
                    object.watch(&hub, ticket);
                }
            });
            drop(unwatch);
            woke
        };
        if let Wake::TimedOut = woke? {
            let ready = (0..objects.len()).filter(|&i| fired[i] || objects[i].ready());
            if ready.count() < wanted {
                return Err(HubError::TimedOut {
                    limit: opts.timeout.unwrap_or_default(),
                    elapsed: started.elapsed(),
                });
            }
        }
    }
}
// ANCHOR_END: wait

/// The positions of `objects` as each becomes ready, in the order they do
/// (gevent's `iwait`): an iterator of `Result`s that ends once every object
/// has been yielded, or with a [`HubError::TimedOut`] if `timeout` passes
/// first.
///
/// ```
/// use std::time::Duration;
/// use stage_hub::hub::{iwait, Waitable};
/// use stage_hub::{sleep, spawn};
///
/// let late = spawn(|| sleep(Duration::from_millis(30)));
/// let early = spawn(|| sleep(Duration::from_millis(1)));
/// let objects = [Waitable::from(&late), Waitable::from(&early)];
/// let order: Vec<usize> = iwait(&objects, None).collect::<Result<_, _>>()?;
/// assert_eq!(order, [1, 0]);
/// # Ok::<(), stage_hub::HubError>(())
/// ```
pub fn iwait<'o>(
    objects: &'o [Waitable<'o>],
    timeout: Option<Duration>,
) -> impl Iterator<Item = Result<usize, HubError>> + 'o {
    let start = Instant::now();
    let deadline = timeout.map(|limit| start + limit);
    let mut yielded = vec![false; objects.len()];
    let mut over = false;
    std::iter::from_fn(move || {
        if over || yielded.iter().all(|y| *y) {
            return None;
        }
        if let Some(i) = (0..objects.len()).find(|&i| !yielded[i] && objects[i].ready()) {
            yielded[i] = true;
            return Some(Ok(i));
        }
        // Wait for the first of the ones not yielded yet.
        let left: Vec<usize> = (0..objects.len()).filter(|&i| !yielded[i]).collect();
        let views: Vec<&Waitable<'o>> = left.iter().map(|&i| &objects[i]).collect();
        let limit = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match wait_refs(&views, limit) {
            Ok(Some(j)) => {
                yielded[left[j]] = true;
                Some(Ok(left[j]))
            }
            Ok(None) => {
                over = true;
                Some(Err(HubError::TimedOut {
                    limit: timeout.unwrap_or_default(),
                    elapsed: start.elapsed(),
                }))
            }
            Err(e) => {
                over = true;
                Some(Err(e))
            }
        }
    })
}

/// [`wait`] for the first of `objects` (references), within `limit`: its
/// position, or `None` if the limit passed.
fn wait_refs(
    objects: &[&Waitable<'_>],
    limit: Option<Duration>,
) -> Result<Option<usize>, HubError> {
    // Re-borrow each as a Waitable of its own, which `wait` takes by slice.
    let views: Vec<Waitable<'_>> = objects.iter().map(|o| o.view()).collect();
    let mut opts = Wait::any();
    if let Some(limit) = limit {
        opts = opts.timeout(limit);
    }
    Ok(wait(&views, opts)?.first().copied())
}

impl Waitable<'_> {
    /// Another view of the same object.
    fn view(&self) -> Waitable<'_> {
        match &self.what {
            What::Greenlet { id, status } => Waitable {
                what: What::Greenlet { id: *id, status },
            },
            What::Listed { list, ready } => Waitable {
                what: What::Listed {
                    list,
                    ready: Box::new(ready),
                },
            },
        }
    }
}

impl std::fmt::Debug for Waitable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.what {
            What::Greenlet { .. } => "greenlet",
            What::Listed { .. } => "event, result or queue",
        };
        f.debug_struct("Waitable")
            .field("what", &kind)
            .field("ready", &self.ready())
            .finish()
    }
}
