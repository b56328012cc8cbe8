//! [`Local`]: a value per greenlet, gevent's `gevent.local.local`.
//!
//! A thread-local is one value for every greenlet of the thread (stage 3's
//! caveat); a `Local` gives each greenlet its own, made by an initialiser
//! the first time that greenlet looks. A greenlet's value is dropped when
//! it dies: the hub tells every `Local` when a greenlet it spawned
//! finishes, and values of other greenlets (stage-greenlet's own) are
//! cleared out once those are dead.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use stage_greenlet::WeakGreenlet;

use super::{Hub, IdMap, TaskId};

/// A value per greenlet (gevent's `local`): each greenlet that looks gets
/// its own, made by `init` the first time it does, and dropped when it
/// dies. Clones share the storage.
///
/// ```
/// use std::cell::Cell;
/// use stage_hub::hub::Local;
/// use stage_hub::{joinall, spawn, yield_now, JoinAll};
///
/// let visits: Local<Cell<u32>> = Local::new(|| Cell::new(0));
/// let workers: Vec<_> = (0..3)
///     .map(|i| {
///         let visits = visits.clone();
///         spawn(move || {
///             for _ in 0..=i {
///                 visits.with(|v| v.set(v.get() + 1));
///                 yield_now(); // the others run, with their own counts
///             }
///             visits.with(Cell::get)
///         })
///     })
///     .collect();
/// joinall(&workers, JoinAll::new())?;
/// let counts: Vec<u32> = workers.into_iter().map(|w| w.join().unwrap()).collect();
/// assert_eq!(counts, [1, 2, 3]);
/// assert_eq!(visits.with(Cell::get), 0); // main's own, untouched
/// # Ok::<(), stage_hub::HubError>(())
/// ```
pub struct Local<T> {
    store: Rc<Store<T>>,
}

struct Store<T> {
    init: Box<dyn Fn() -> T>,
    values: RefCell<IdMap<TaskId, (WeakGreenlet, Rc<T>)>>,
    /// Inserts since dead greenlets' values were last cleared out.
    since_sweep: Cell<usize>,
}

/// What the hub calls when a greenlet it spawned finishes.
pub(crate) trait ForgetGreenlet {
    fn forget(&self, id: TaskId);
}

impl<T> ForgetGreenlet for Store<T> {
    fn forget(&self, id: TaskId) {
        let gone = self.values.borrow_mut().remove(&id);
        drop(gone); // outside the borrow: a value's destructor may look too
    }
}

impl<T: 'static> Local<T> {
    /// A per-greenlet value that each greenlet starts with `init()`.
    pub fn new(init: impl Fn() -> T + 'static) -> Local<T> {
        let store = Rc::new(Store {
            init: Box::new(init),
            values: RefCell::new(IdMap::default()),
            since_sweep: Cell::new(0),
        });
        if let Ok(hub) = Hub::get() {
            let weak: Weak<dyn ForgetGreenlet> = Rc::downgrade(&store) as Weak<dyn ForgetGreenlet>;
            hub.watch_deaths(weak);
        }
        Local { store }
    }

    /// Call `f` with the running greenlet's value (made now if it has none).
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let value = self.current();
        f(&value)
    }

    /// The running greenlet's value, a clone.
    pub fn get(&self) -> T
    where
        T: Clone,
    {
        self.with(T::clone)
    }

    /// Replace the running greenlet's value.
    pub fn set(&self, value: T) {
        let current = stage_greenlet::current();
        let old = self
            .store
            .values
            .borrow_mut()
            .insert(current.id(), (current.downgrade(), Rc::new(value)));
        drop(old);
    }

    /// Take the running greenlet's value out, if it has one (its next look
    /// makes a new one).
    pub fn take(&self) -> Option<T> {
        let id = stage_greenlet::current().id();
        let (_, value) = self.store.values.borrow_mut().remove(&id)?;
        Rc::try_unwrap(value).ok()
    }

    /// Greenlets holding a value now.
    pub fn len(&self) -> usize {
        self.store.values.borrow().len()
    }

    /// Whether no greenlet holds a value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn current(&self) -> Rc<T> {
        let current = stage_greenlet::current();
        if let Some((_, value)) = self.store.values.borrow().get(&current.id()) {
            return value.clone();
        }
        let value = Rc::new((self.store.init)());
        self.sweep();
        self.store
            .values
            .borrow_mut()
            .insert(current.id(), (current.downgrade(), value.clone()));
        value
    }

    /// Every so often, drop the values of greenlets the hub did not spawn
    /// (it only tells about its own) that have died since.
    fn sweep(&self) {
        let n = self.store.since_sweep.get() + 1;
        self.store.since_sweep.set(n);
        if n < 64 || n < self.len() {
            return;
        }
        self.store.since_sweep.set(0);
        let dead: Vec<_> = {
            let mut values = self.store.values.borrow_mut();
            let ids: Vec<TaskId> = values
                .iter()
                .filter(|(_, (g, _))| g.is_dead())
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| values.remove(&id))
                .collect()
        };
        drop(dead);
    }
}

impl<T> Clone for Local<T> {
    fn clone(&self) -> Self {
        Local {
            store: self.store.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Local<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("greenlets", &self.store.values.borrow().len())
            .finish_non_exhaustive()
    }
}

/// Tell every live `Local` of this thread that greenlet `id` is gone.
pub(crate) fn forget_greenlet(stores: &[Weak<dyn ForgetGreenlet>], id: TaskId) {
    for store in stores.iter().filter_map(Weak::upgrade) {
        store.forget(id);
    }
}
