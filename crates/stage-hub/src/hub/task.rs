//! Spawning greenlets onto the hub, and the status each one's handles
//! share (see `handle.rs` for the handles themselves).

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use stage_greenlet::{Greenlet, GreenletExit};

use super::few::Few;
use super::handle::{Handle, Link};
use super::{diag, existing, Hub, HubError, KillSignal, TaskId, TimeoutSignal, Wake};

/// A greenlet's name: numbered in spawn order unless one was given.
#[derive(Debug)]
enum Name {
    Numbered(u64),
    /// A `Box<str>`, not a `String`: no spare capacity, one word less.
    Given(Box<str>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Running,
    Returned,
    Failed,
}

/// What every greenlet the hub knows has, whatever its return type.
pub(crate) struct Status {
    name: Name,
    outcome: Cell<Outcome>,
    /// Boxed: most greenlets never fail, and inline the error would make
    /// every greenlet's status 40 bytes bigger (a 10,000-connection
    /// server holds 10,000 of them). A `Cell`, not a `RefCell`, for the
    /// same reason: a borrow flag is a word, and the error is only ever
    /// looked at by [`Status::with_error`].
    error: Cell<Option<Box<HubError>>>,
    /// Someone looked at the error (joined, asked `failed`/`error`).
    pub(crate) observed: Cell<bool>,
    /// [`Handle`]s alive: while there are any, someone still could look.
    /// 32 bits (four billion handles would fill 64 GiB), which with the two
    /// flags fits one word: a 10,000-connection server holds 10,000
    /// statuses.
    pub(crate) handles: Cell<u32>,
}

impl Status {
    fn new(name: Name) -> Status {
        Status {
            name,
            outcome: Cell::new(Outcome::Running),
            error: Cell::new(None),
            observed: Cell::new(false),
            handles: Cell::new(0),
        }
    }

    /// The status of a greenlet the hub did not spawn (main, say).
    pub(crate) fn foreign(name: String) -> Status {
        Status::new(Name::Given(name.into_boxed_str()))
    }

    pub(crate) fn name(&self) -> String {
        match &self.name {
            Name::Numbered(n) => format!("Greenlet-{n}"),
            Name::Given(name) => name.to_string(),
        }
    }

    /// One more [`Handle`] (or group member) on this greenlet.
    pub(crate) fn add_handle(&self) {
        let n = self.handles.get().checked_add(1);
        self.handles
            .set(n.expect("over four billion handles on one greenlet"));
    }

    pub(crate) fn is_running(&self) -> bool {
        self.outcome.get() == Outcome::Running
    }

    pub(crate) fn returned(&self) -> bool {
        self.outcome.get() == Outcome::Returned
    }

    /// Look at the error (if any) without taking it: `look` is our own
    /// code that runs nothing of the user's, so the cell is never seen
    /// empty while the error is out.
    fn with_error<R>(&self, look: impl FnOnce(Option<&HubError>) -> R) -> R {
        let error = self.error.take();
        let seen = look(error.as_deref());
        self.error.set(error);
        seen
    }

    /// How it failed or was killed, once it has.
    pub(crate) fn error(&self) -> Option<HubError> {
        self.with_error(|error| error.cloned())
    }

    pub(crate) fn fail(&self, error: HubError) {
        self.error.set(Some(Box::new(error)));
        self.outcome.set(Outcome::Failed);
    }

    /// Failed in a way worth reporting: a kill is not a failure (as in gevent,
    /// where a greenlet killed with `GreenletExit` counts as successful).
    pub(crate) fn failed(&self) -> bool {
        self.outcome.get() == Outcome::Failed
            && !self.with_error(|error| matches!(error, Some(HubError::Killed { .. })))
    }

    /// Report a failure if nobody can ever look at it any more; returns
    /// whether it did.
    pub(crate) fn report_if_orphaned(&self) -> bool {
        if self.failed() && !self.observed.get() && self.handles.get() == 0 {
            self.observed.set(true);
            if let Some(error) = self.error() {
                diag::report(&diag::Diagnostic::Unjoined {
                    name: self.name(),
                    error,
                });
                return true;
            }
        }
        false
    }
}

impl std::fmt::Debug for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Status")
            .field("name", &self.name)
            .field("outcome", &self.outcome.get())
            .field("error", &self.error())
            .field("observed", &self.observed.get())
            .field("handles", &self.handles.get())
            .finish()
    }
}

/// Access to a [`Status`] behind a typed result slot.
pub(crate) trait HasStatus {
    fn status(&self) -> &Status;

    /// The greenlet `id` has finished: run its links (as hub callbacks), and
    /// report a failure nobody can look at any more. Returns whether it
    /// reported one now.
    fn finished(self: Rc<Self>, _id: TaskId) -> bool {
        self.status().report_if_orphaned()
    }
}

impl HasStatus for Status {
    fn status(&self) -> &Status {
        self
    }
}

/// What a spawned greenlet's handles share: its status, its value, and the
/// callbacks to run when it finishes.
pub(crate) struct Shared<T> {
    pub(crate) status: Status,
    pub(crate) value: RefCell<Option<T>>,
    /// [`Few`]: hardly any greenlet has links, and an empty `Vec` is three
    /// words of every greenlet's status. In a `Cell` (taken out, changed,
    /// put back) rather than a `RefCell`, whose borrow flag would be a
    /// word more.
    pub(crate) links: Cell<Few<Link<T>>>,
}

impl<T: 'static> HasStatus for Shared<T> {
    fn status(&self) -> &Status {
        &self.status
    }

    fn finished(self: Rc<Self>, id: TaskId) -> bool {
        let links = self.links.take();
        if links.is_empty() {
            return self.status.report_if_orphaned();
        }
        // The links run in the hub, in the order they were made, through a
        // handle of their own: a failure one of them looks at is not
        // reported, and one nobody looks at is, when that handle goes.
        match existing() {
            Some(hub) => hub.call_soon(Box::new(move || {
                let handle = Handle::from_shared(id, self);
                for link in links {
                    link.run(&handle);
                }
            })),
            None => drop(links),
        }
        false
    }
}

/// How to spawn a greenlet: its name, its stack size, when it starts.
///
/// ```
/// let handle = stage_hub::Builder::new().name("worker").spawn(|| stage_hub::current_name())?;
/// assert_eq!(handle.join()?, "worker");
/// # Ok::<(), stage_hub::HubError>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with the defaults: the next `Greenlet-N` name and the
    /// greenlet crate's default stack.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Name the greenlet (what [`current_name`] returns inside it).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Give the greenlet a stack of `bytes` (rounded up to pages).
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Schedule `f` to run in a new greenlet once the current one waits.
    /// Fails when the greenlet cannot be created (the error says why: for
    /// instance `vm.max_map_count` is exhausted, and how to raise it).
    pub fn spawn<T, F>(self, f: F) -> Result<Handle<T>, HubError>
    where
        T: 'static,
        F: FnOnce() -> T + 'static,
    {
        self.spawn_inner(None, f)
    }

    /// Like [`Builder::spawn`], but the greenlet starts `delay` from now.
    pub fn spawn_later<T, F>(self, delay: Duration, f: F) -> Result<Handle<T>, HubError>
    where
        T: 'static,
        F: FnOnce() -> T + 'static,
    {
        self.spawn_inner(Some(delay), f)
    }

    fn spawn_inner<T, F>(self, delay: Option<Duration>, f: F) -> Result<Handle<T>, HubError>
    where
        T: 'static,
        F: FnOnce() -> T + 'static,
    {
        let hub = Hub::get()?;
        diag::install_panic_hook(); // if the hub was made while panicking
        let name = match self.name {
            Some(name) => Name::Given(name.into_boxed_str()),
            None => Name::Numbered(hub.next_name()),
        };
        let shared = Rc::new(Shared {
            status: Status::new(name),
            value: RefCell::new(None),
            links: Cell::new(Few::default()),
        });
        let inside = shared.clone();
        let mut builder = Greenlet::builder().parent(&hub.greenlet);
        if let Some(bytes) = self.stack_size {
            builder = builder.stack_size(bytes);
        }
        let greenlet = builder
            .spawn(move |_: Wake| run_body(&inside, f))
            .map_err(|e| HubError::Spawn(e.to_string()))?;
        let id = greenlet.id();
        hub.add_task(id, greenlet, shared.clone(), delay);
        Ok(Handle::from_shared(id, shared))
    }
}

// ANCHOR: run_body
/// Run the greenlet's function, keeping its value or its failure as its result.
fn run_body<T, F: FnOnce() -> T>(shared: &Shared<T>, f: F) {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => {
            *shared.value.borrow_mut() = Some(value);
            shared.status.outcome.set(Outcome::Returned);
        }
        Err(payload) => {
            let name = shared.status.name();
            if payload.is::<KillSignal>() {
                shared.status.fail(HubError::Killed { name });
            } else if payload.is::<GreenletExit>() {
                // The greenlet crate is tearing this greenlet down: let it.
                shared.status.fail(HubError::Killed { name });
                resume_unwind(payload);
            } else {
                let message = if payload.is::<TimeoutSignal>() {
                    "a with_timeout limit expired outside its with_timeout block".to_string()
                } else {
                    diag::with_panic_location(payload_text(&*payload))
                };
                shared.status.fail(HubError::Panicked { name, message });
            }
        }
    }
}
// ANCHOR_END: run_body

pub(crate) fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_string())
}

/// Schedule `f` to run in a new greenlet, named `Greenlet-N`.
///
/// The new greenlet does **not** run yet: it is queued, and runs once the
/// current greenlet waits (`join`, `sleep`, `yield_now`, a queue, a socket):
/// the same order gevent has.
///
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let inner = log.clone();
/// let handle = stage_hub::spawn(move || inner.borrow_mut().push("child runs"));
/// log.borrow_mut().push("spawner continues");
/// handle.join().unwrap();
/// assert_eq!(*log.borrow(), ["spawner continues", "child runs"]);
/// ```
///
/// # Panics
///
/// When the greenlet cannot be created (its stack cannot be mapped), with
/// the greenlet crate's message; [`Builder::spawn`] returns that error instead.
pub fn spawn<T, F>(f: F) -> Handle<T>
where
    T: 'static,
    F: FnOnce() -> T + 'static,
{
    Builder::new().spawn(f).unwrap_or_else(|e| panic!("{e}"))
}

/// Schedule `f` to run in a new greenlet `delay` from now.
///
/// # Panics
///
/// Like [`spawn`]; [`Builder::spawn_later`] returns the error instead.
pub fn spawn_later<T, F>(delay: Duration, f: F) -> Handle<T>
where
    T: 'static,
    F: FnOnce() -> T + 'static,
{
    Builder::new()
        .spawn_later(delay, f)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The name of the running greenlet: `Greenlet-N` (or the name it was
/// given) inside a spawned greenlet, the greenlet crate's name (`main`)
/// outside. Our twin of the notes' `DummyThread-1`.
pub fn current_name() -> String {
    let current = stage_greenlet::current();
    existing()
        .and_then(|hub| hub.task_name(current.id()))
        .unwrap_or_else(|| current.name())
}
