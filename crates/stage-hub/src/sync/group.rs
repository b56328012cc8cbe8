//! `Group`: greenlets handled together — joined, killed, mapped over
//! (gevent's `gevent.pool.Group`). A `Pool` (`pool.rs`) is a group with a
//! bound.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{Queue, Semaphore, SemaphoreGuard, WaitList};
use crate::hub::{self, next_object_id, Builder, Handle, HubError, JoinAll, Member};

/// A set of greenlets to handle together (gevent's `Group`): spawn into it
/// or add to it, join them all, kill them all, map a function over items
/// with one greenlet each. A greenlet leaves the group once it has
/// finished. Clones share the group.
///
/// ```
/// use std::time::Duration;
/// use stage_hub::{sleep, Group};
/// let group = Group::new();
/// let sleepers: Vec<_> = [30, 10, 20]
///     .into_iter()
///     .map(|ms| group.spawn(move || sleep(Duration::from_millis(ms))))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(group.len(), 3);
/// group.join()?;
/// assert!(group.is_empty() && sleepers.iter().all(|s| s.is_dead()));
/// # Ok::<(), stage_hub::HubError>(())
/// ```
#[derive(Clone)]
pub struct Group {
    pub(super) inner: Rc<Inner>,
}

pub(super) struct Inner {
    pub(super) id: u64,
    /// Greenlets in the group, in the order they joined it, each with its
    /// pool slot (a finished one leaves, giving its slot back, through a
    /// link the hub runs).
    members: RefCell<Vec<(Member, Option<SemaphoreGuard>)>>,
    /// A pool's bound: a permit per greenlet running.
    pub(super) slots: Option<Semaphore>,
    /// `wait_available`: told when a slot frees.
    pub(super) freed: RefCell<WaitList>,
}

impl Group {
    /// An empty group with no bound.
    pub fn new() -> Group {
        Group::with_slots(None)
    }

    pub(super) fn with_slots(slots: Option<Semaphore>) -> Group {
        Group {
            inner: Rc::new(Inner {
                id: next_object_id(),
                members: RefCell::new(Vec::new()),
                slots,
                freed: RefCell::new(WaitList::default()),
            }),
        }
    }

    /// Greenlets in the group now (a finished one leaves).
    pub fn len(&self) -> usize {
        self.inner
            .members
            .borrow()
            .iter()
            .filter(|(m, _)| !m.is_dead())
            .count()
    }

    /// Whether no greenlet of the group is running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The greenlets in the group now, in the order they joined it.
    pub fn members(&self) -> Vec<Member> {
        self.inner
            .members
            .borrow()
            .iter()
            .filter(|(m, _)| !m.is_dead())
            .map(|(m, _)| m.clone())
            .collect()
    }

    /// Whether `handle`'s greenlet is in the group.
    pub fn contains<T: 'static>(&self, handle: &Handle<T>) -> bool {
        self.inner
            .members
            .borrow()
            .iter()
            .any(|(m, _)| m.id() == handle.id() && !m.is_dead())
    }

    /// Spawn `f` into the group (in a pool, once a slot is free, waiting
    /// cooperatively until then, as gevent's `Pool.spawn` does).
    pub fn spawn<T, F>(&self, f: F) -> Result<Handle<T>, HubError>
    where
        T: 'static,
        F: FnOnce() -> T + 'static,
    {
        let slot = self.take_slot(None)?;
        let handle = Builder::new().spawn(f)?;
        self.enlist(&handle, slot);
        Ok(handle)
    }

    /// Wait for a slot (a pool's), until `deadline`; `None` for a group
    /// without a bound.
    pub(super) fn take_slot(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<SemaphoreGuard>, HubError> {
        match (&self.inner.slots, deadline) {
            (None, _) => Ok(None),
            (Some(slots), None) => slots.acquire().map(Some),
            (Some(slots), Some(deadline)) => slots
                .acquire_timeout(deadline.saturating_duration_since(Instant::now()))
                .map(Some),
        }
    }

    /// Add a greenlet spawned elsewhere. (A [`Pool`](super::Pool)'s own `add` waits for
    /// a slot first: the greenlet counts against its bound.)
    pub fn add<T: 'static>(&self, handle: &Handle<T>) {
        self.enlist(handle, None);
    }

    pub(super) fn enlist<T: 'static>(&self, handle: &Handle<T>, slot: Option<SemaphoreGuard>) {
        if handle.is_dead() || self.contains(handle) {
            return; // a slot taken for it goes back here
        }
        self.inner
            .members
            .borrow_mut()
            .push((Member::from(handle), slot));
        let group = Rc::downgrade(&self.inner);
        handle.link(move |done| {
            if let Some(group) = group.upgrade() {
                Group { inner: group }.forget(done.id());
            }
        });
    }

    /// Take a greenlet out of the group (it keeps running).
    pub fn discard<T: 'static>(&self, handle: &Handle<T>) {
        self.forget(handle.id());
    }

    /// Take greenlet `id` out, giving its slot back.
    fn forget(&self, id: u64) {
        let gone: Vec<_> = {
            let mut members = self.inner.members.borrow_mut();
            let (gone, kept) = std::mem::take(&mut *members)
                .into_iter()
                .partition(|(m, _)| m.id() == id);
            *members = kept;
            gone
        };
        let freed = gone.iter().any(|(_, slot)| slot.is_some());
        drop(gone); // outside the borrow: a slot given back wakes a waiter
        if freed {
            self.inner.freed.borrow_mut().grant_all(|| ());
        }
    }

    /// Wait until every greenlet in the group has finished, including any
    /// added meanwhile.
    pub fn join(&self) -> Result<(), HubError> {
        self.join_until(None)
    }

    /// [`join`](Self::join), waiting at most `limit`;
    /// [`HubError::TimedOut`] if some are still running.
    pub fn join_timeout(&self, limit: Duration) -> Result<(), HubError> {
        HubError::within(limit, |deadline| self.join_until(deadline))
    }

    fn join_until(&self, deadline: Option<Instant>) -> Result<(), HubError> {
        loop {
            let members = self.members();
            if members.is_empty() {
                return Ok(());
            }
            let mut opts = JoinAll::new();
            if let Some(deadline) = deadline {
                opts = opts.timeout(deadline.saturating_duration_since(Instant::now()));
            }
            hub::joinall_members(&members, opts)?;
        }
    }

    /// Kill every greenlet in the group and wait until all are dead.
    pub fn kill(&self) {
        let members = self.members();
        for m in &members {
            m.kill_nowait();
        }
        for m in &members {
            let _ = m.wait();
        }
    }

    /// Kill every greenlet in the group, waiting at most `limit` for them to
    /// die; [`HubError::TimedOut`] if some are still unwinding.
    pub fn kill_timeout(&self, limit: Duration) -> Result<(), HubError> {
        for m in self.members() {
            m.kill_nowait();
        }
        self.join_timeout(limit)
    }

    /// Kill every greenlet in the group without waiting.
    pub fn kill_nowait(&self) {
        for m in self.members() {
            m.kill_nowait();
        }
    }

    // ANCHOR: map
    /// Run `f` on every item, a greenlet each (a pool runs at most its size
    /// at once), and return the results in the items' order; the first
    /// failure, in that order, if any failed (gevent's `map`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = stage_hub::Pool::new(2);
    /// let doubled = pool.map(
    ///     |ms: u64| {
    ///         stage_hub::sleep(Duration::from_millis(ms));
    ///         ms * 2
    ///     },
    ///     [30, 10, 20],
    /// )?;
    /// assert_eq!(doubled, [60, 20, 40]); // in the items' order
    /// # Ok::<(), stage_hub::HubError>(())
    /// ```
    pub fn map<I, R, F>(&self, f: F, items: I) -> Result<Vec<R>, HubError>
    where
        I: IntoIterator,
        I::Item: 'static,
        R: 'static,
        F: Fn(I::Item) -> R + Clone + 'static,
    {
        let handles = items
            .into_iter()
            .map(|item| {
                let f = f.clone();
                self.spawn(move || f(item))
            })
            .collect::<Result<Vec<_>, _>>()?;
        handles.into_iter().map(Handle::join).collect()
    }
    // ANCHOR_END: map

    /// Like [`map`](Self::map), but lazily: the results come out in the
    /// items' order as an iterator, while a feeder greenlet spawns (in a
    /// pool, as slots free up). A failure is its item's `Err`; the others
    /// still come.
    ///
    /// ```
    /// let pool = stage_hub::Pool::new(2);
    /// let squares = pool.imap(|x: u32| x * x, 1..=4);
    /// assert_eq!(squares.collect::<Result<Vec<_>, _>>()?, [1, 4, 9, 16]);
    /// # Ok::<(), stage_hub::HubError>(())
    /// ```
    pub fn imap<I, R, F>(&self, f: F, items: I) -> impl Iterator<Item = Result<R, HubError>>
    where
        I: IntoIterator + 'static,
        I::Item: 'static,
        R: 'static,
        F: Fn(I::Item) -> R + Clone + 'static,
    {
        // Each handle is sent as its greenlet is spawned, in the items'
        // order; `None` once the feeder has spawned them all.
        let spawned: Queue<Option<Result<Handle<R>, HubError>>> = Queue::unbounded();
        let (each, end) = (spawned.clone(), spawned.clone());
        let fed = self.feed(
            f,
            items,
            move |handle| drop(each.try_put(Some(handle))),
            move || drop(end.try_put(None)),
        );
        received(spawned, fed, Handle::join)
    }

    /// Like [`imap`](Self::imap), but each result comes out as soon as its
    /// greenlet finishes, whatever the items' order.
    ///
    /// ```
    /// use std::time::Duration;
    /// let group = stage_hub::Group::new();
    /// let first_done: Vec<u64> = group
    ///     .imap_unordered(
    ///         |ms: u64| {
    ///             stage_hub::sleep(Duration::from_millis(ms));
    ///             ms
    ///         },
    ///         [30, 1, 15],
    ///     )
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(first_done, [1, 15, 30]);
    /// # Ok::<(), stage_hub::HubError>(())
    /// ```
    pub fn imap_unordered<I, R, F>(
        &self,
        f: F,
        items: I,
    ) -> impl Iterator<Item = Result<R, HubError>>
    where
        I: IntoIterator + 'static,
        I::Item: 'static,
        R: 'static,
        F: Fn(I::Item) -> R + Clone + 'static,
    {
        // Each result is sent, by a link, as its greenlet finishes; `None`
        // after the last, once the feeder has spawned them all.
        let results: Queue<Option<Result<R, HubError>>> = Queue::unbounded();
        let tally = Rc::new(Tally::default());
        let (out, t) = (results.clone(), tally.clone());
        let each = move |spawned: Result<Handle<R>, HubError>| match spawned {
            Ok(handle) => {
                t.running.set(t.running.get() + 1);
                let (out, t) = (out.clone(), t.clone());
                handle.link(move |done| {
                    let _ = out.try_put(Some(done.clone().join()));
                    t.running.set(t.running.get() - 1);
                    if t.running.get() == 0 && t.fed.get() {
                        let _ = out.try_put(None);
                    }
                });
            }
            Err(e) => drop(out.try_put(Some(Err(e)))),
        };
        let (out, t) = (results.clone(), tally);
        let end = move || {
            t.fed.set(true);
            if t.running.get() == 0 {
                let _ = out.try_put(None);
            }
        };
        let fed = self.feed(f, items, each, end);
        received(results, fed, Ok)
    }

    /// Spawn a feeder greenlet that spawns `f(item)` into this group for
    /// each item (waiting for slots, in a pool), hands each outcome to
    /// `each` (a spawn failure ends the feeding), then calls `end`. An error
    /// if the feeder itself cannot be spawned.
    fn feed<I, R, F>(
        &self,
        f: F,
        items: I,
        each: impl Fn(Result<Handle<R>, HubError>) + 'static,
        end: impl FnOnce() + 'static,
    ) -> Result<(), HubError>
    where
        I: IntoIterator + 'static,
        I::Item: 'static,
        R: 'static,
        F: Fn(I::Item) -> R + Clone + 'static,
    {
        let group = self.clone();
        let feeding = Builder::new().name("imap feeder").spawn(move || {
            for item in items {
                let f = f.clone();
                let spawned = group.spawn(move || f(item));
                let failed = spawned.is_err();
                each(spawned);
                if failed {
                    break;
                }
            }
            end();
        });
        feeding.map(drop)
    }

    /// Run `f` in the group and wait for its result (gevent's `apply`). From
    /// a greenlet of this group it runs `f` directly, so a full pool cannot
    /// deadlock on itself.
    pub fn apply<R, F>(&self, f: F) -> Result<R, HubError>
    where
        R: 'static,
        F: FnOnce() -> R + 'static,
    {
        let me = stage_greenlet::current_id();
        let inside = self
            .inner
            .members
            .borrow()
            .iter()
            .any(|(m, _)| Some(m.id()) == me);
        if inside {
            return Ok(f());
        }
        self.spawn(f)?.join()
    }
}

/// What [`Group::imap`] and [`Group::imap_unordered`] return: what `sent`
/// receives from the feeding, up to its `None`, each made a result by
/// `finish` (`imap` joins a handle there); an `Err` it receives (a spawn
/// failed, and the feeder stopped) stays as it is. If the feeder could not start
/// (`fed`), its error is the only result; if a wait for the next one fails,
/// its error is the last.
fn received<T, R>(
    sent: Queue<Option<Result<T, HubError>>>,
    fed: Result<(), HubError>,
    finish: impl Fn(T) -> Result<R, HubError>,
) -> impl Iterator<Item = Result<R, HubError>> {
    if let Err(e) = fed {
        let _ = sent.try_put(Some(Err(e)));
        let _ = sent.try_put(None);
    }
    let mut over = false;
    std::iter::from_fn(move || {
        if over {
            return None;
        }
        match sent.get() {
            Ok(Some(outcome)) => Some(outcome.and_then(&finish)),
            Ok(None) => {
                over = true;
                None
            }
            Err(e) => {
                over = true; // the wait itself failed: nothing more will come
                Some(Err(e))
            }
        }
    })
}

/// What `imap_unordered` counts: results still to come, and whether every
/// item was spawned.
#[derive(Default)]
struct Tally {
    running: std::cell::Cell<usize>,
    fed: std::cell::Cell<bool>,
}

impl Default for Group {
    fn default() -> Self {
        Group::new()
    }
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("id", &self.inner.id)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}
