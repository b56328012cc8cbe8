//! The greenlet handle: the safe API over [`crate::switch`].
//!
//! A [`Greenlet`] is a cheap handle (an `Rc`) to a function with its own
//! stack. Semantics follow Python's greenlet: the first `switch(v)` calls the
//! function with `v`; later switches resume it where it last switched away;
//! when the function returns, its value goes to the parent's pending switch.

use std::fmt;
use std::rc::Rc;

use crate::error::{GreenletError, SwitchError};
use crate::overflow;
use crate::stack;
use crate::switch::{self, Inner, State};

/// A function running (or ready to run) on its own stack, switched to by hand.
///
/// Cloning gives another handle to the same greenlet. When the last handle
/// to a suspended greenlet is dropped, it is killed: unwound from its pending
/// switch, so the destructors of everything on its stack run, and control
/// comes back to the code that dropped it. Two exceptions: a greenlet that
/// drops its own last handle, or one whose last handle is dropped by one of
/// its descendants, is not garbage yet; the thread keeps it until it
/// finishes.
///
/// ```
/// use stage_greenlet::Greenlet;
///
/// let doubler = Greenlet::new(|first: u32| {
///     // Runs on its own stack; switching to the parent suspends it here.
///     let second: u32 = stage_greenlet::current().parent().unwrap().switch(first * 2).unwrap();
///     second * 2
/// })?;
/// let a: u32 = doubler.switch(1u32)?; // starts it: first = 1
/// let b: u32 = doubler.switch(5u32)?; // resumes it: second = 5; it returns 10
/// assert_eq!((a, b), (2, 10));
/// assert!(doubler.is_dead());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Greenlets never leave their thread:
///
/// ```compile_fail
/// fn needs_send<T: Send>(_: T) {}
/// needs_send(stage_greenlet::current());
/// ```
///
/// ```compile_fail
/// fn needs_sync<T: Sync>(_: &T) {}
/// needs_sync(&stage_greenlet::current());
/// ```
pub struct Greenlet(Rc<Inner>);

/// The payload a killed greenlet unwinds with (see [`Greenlet::throw`]).
///
/// A greenlet may catch it (`catch_unwind`) to clean up, but should let it
/// go on: swallowing it leaves the greenlet alive when its killer expected
/// it dead. A wrapper that catches panics around a greenlet's body can
/// recognise a kill with `payload.is::<GreenletExit>()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreenletExit;

/// Configures a greenlet before it is created: name, stack size, parent.
#[derive(Debug, Default)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
    parent: Option<Greenlet>,
}

impl Builder {
    /// Name the greenlet (shown in errors and in the stack-overflow message).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Usable stack size in bytes, rounded up to whole pages (default
    /// [`DEFAULT_STACK_SIZE`](crate::DEFAULT_STACK_SIZE)).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// The greenlet its return value goes to (default: the one creating it).
    pub fn parent(mut self, parent: &Greenlet) -> Self {
        self.parent = Some(parent.clone());
        self
    }

    /// Create the greenlet. It does not run until the first `switch`, whose
    /// value becomes `f`'s argument.
    ///
    /// Fails if no stack can be had: see [`GreenletError::MapLimit`].
    pub fn spawn<A, R, F>(self, f: F) -> Result<Greenlet, GreenletError>
    where
        F: FnOnce(A) -> R + 'static,
        A: 'static,
        R: 'static,
    {
        overflow::install();
        let size = stack::rounded_size(self.stack_size.unwrap_or(stack::DEFAULT_STACK_SIZE))?;
        let stack = stack::take(size)?;
        let parent = match self.parent {
            Some(parent) => parent.0.clone(),
            None => switch::current(),
        };
        let name = self.name.map(String::into_boxed_str);
        let inner = Rc::new(switch::new_inner(f, name, stack, parent));
        Ok(Greenlet::from_inner(inner))
    }
}

impl Greenlet {
    /// A greenlet that will run `f`, child of the running greenlet, with the
    /// default stack size. Same as `Greenlet::builder().spawn(f)`.
    pub fn new<A, R, F>(f: F) -> Result<Greenlet, GreenletError>
    where
        F: FnOnce(A) -> R + 'static,
        A: 'static,
        R: 'static,
    {
        Builder::default().spawn(f)
    }

    /// A [`Builder`] for a name, a stack size or a parent.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Suspend the running greenlet and run this one, handing it `value`.
    ///
    /// `value` becomes the function's argument on the first switch, or the
    /// result of this greenlet's own pending `switch` later. Returns when
    /// something switches back to the caller: with that value (of type `U`),
    /// or with this greenlet's return value when it finishes (if we are its
    /// parent), or with an error.
    ///
    /// Errors: [`SwitchError::Dead`] if it has finished;
    /// [`SwitchError::WrongType`] if it waits for a type other than `T` (the
    /// switch does not happen) or a value of another type than `U` comes
    /// back; [`SwitchError::Panicked`]/[`SwitchError::Killed`] if a greenlet
    /// whose return value was due to us panicked or was killed.
    #[inline(always)]
    pub fn switch<T: 'static, U: 'static>(&self, value: T) -> Result<U, SwitchError> {
        switch::switch(&self.0, value)
    }

    /// Kill this greenlet: raise [`GreenletExit`] at its pending switch,
    /// which unwinds its stack (running destructors) and ends it. Control
    /// then goes to its parent, as when it returns; `throw` itself returns
    /// `Ok(())` when something switches back to the caller (at once, if the
    /// caller is its parent).
    ///
    /// A greenlet that has not started is just marked dead and never runs;
    /// a dead one is left alone. The running greenlet and the main greenlet
    /// cannot be killed ([`SwitchError::CannotKill`]).
    pub fn throw(&self) -> Result<(), SwitchError> {
        switch::throw(&self.0)
    }

    /// Raise `payload` at this greenlet's pending switch, as greenlet.py's
    /// `throw(type, value)` raises an exception there: it unwinds from that
    /// switch with `payload` as its panic payload. Returns what the next
    /// switch back to the caller brings:
    ///
    /// - if the greenlet catches the unwind (`catch_unwind`, then
    ///   `payload.downcast::<P>()`) and switches a `U` back, that value;
    /// - if it dies of it and its death comes to the caller (the caller is
    ///   its parent), [`SwitchError::Panicked`] with the payload (or
    ///   [`SwitchError::Killed`] for a [`GreenletExit`] payload).
    ///
    /// A greenlet that never started dies of the payload at once, without
    /// running, and that comes back the same way. Refused for the running
    /// and the main greenlet ([`SwitchError::CannotKill`]) and the dead
    /// ([`SwitchError::Dead`]).
    ///
    /// ```
    /// use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
    /// use stage_greenlet::{switch_to_parent, Greenlet};
    ///
    /// #[derive(Debug)]
    /// struct Reload(&'static str);
    ///
    /// let worker = Greenlet::new(|()| loop {
    ///     let waited = catch_unwind(AssertUnwindSafe(|| switch_to_parent::<&str, ()>("idle")));
    ///     match waited {
    ///         Ok(_) => {}
    ///         // Caught: answer the thrower with a value it waits for.
    ///         Err(p) => match p.downcast::<Reload>() {
    ///             Ok(reload) => {
    ///                 let () = switch_to_parent(format!("reloaded {}", reload.0)).unwrap();
    ///             }
    ///             Err(other) => resume_unwind(other),
    ///         },
    ///     }
    /// })?;
    /// let idle: &str = worker.switch(())?;
    /// assert_eq!(idle, "idle");
    /// let answer: String = worker.throw_with(Reload("config"))?;
    /// assert_eq!(answer, "reloaded config");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn throw_with<P: std::any::Any + Send, U: 'static>(
        &self,
        payload: P,
    ) -> Result<U, SwitchError> {
        switch::throw_with(&self.0, Box::new(payload))
    }

    /// The greenlet this one's return value goes to (`None` for main).
    pub fn parent(&self) -> Option<Greenlet> {
        let parent = self.0.parent.borrow().clone();
        parent.map(Greenlet::from_inner)
    }

    /// Make `parent` this greenlet's parent. Refused if it would make a
    /// cycle (this greenlet an ancestor of `parent`), or for main.
    pub fn set_parent(&self, parent: &Greenlet) -> Result<(), GreenletError> {
        if self.is_main() {
            return Err(GreenletError::MainHasNoParent);
        }
        if switch::is_ancestor(&self.0, &parent.0) {
            return Err(GreenletError::Cycle {
                greenlet: self.name(),
                parent: parent.name(),
            });
        }
        let old = self.0.parent.replace(Some(parent.0.clone()));
        // Dropped after the borrow ends: it may be the old parent's last handle.
        drop(old);
        Ok(())
    }

    /// Whether its function has finished (returned, panicked or was killed).
    pub fn is_dead(&self) -> bool {
        self.0.state() == State::Dead
    }

    /// Whether its function was ever called (stays `true` once dead).
    pub fn is_started(&self) -> bool {
        self.0.was_started.get()
    }

    /// Whether this is its thread's implicit main greenlet.
    pub fn is_main(&self) -> bool {
        self.0.is_main()
    }

    /// The name given to the builder, or `Greenlet-<id>` (`main` for main).
    pub fn name(&self) -> String {
        self.0.display_name()
    }

    /// A number unique among this thread's greenlets (main is 0).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The bytes of the one heap allocation behind a greenlet's handles, as
    /// this build lays it out: its record (saved registers, parent, the
    /// stack it owns, state) and the `Rc`'s two counts. Besides its stack,
    /// this is all a greenlet costs stage-greenlet.
    ///
    /// ```
    /// assert!(stage_greenlet::Greenlet::record_bytes() < 256);
    /// ```
    pub fn record_bytes() -> usize {
        2 * std::mem::size_of::<usize>() + std::mem::size_of::<Inner>()
    }

    /// Usable stack size in bytes (0 for main, which runs on the thread's stack).
    pub fn stack_size(&self) -> usize {
        self.0.stack_size
    }

    /// Whether both handles are the same greenlet (also `==`).
    pub fn ptr_eq(&self, other: &Greenlet) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    /// A reference to this greenlet that is not a handle: see [`WeakGreenlet`].
    pub fn downgrade(&self) -> WeakGreenlet {
        WeakGreenlet(self.0.clone())
    }

    /// A new handle (the only way one is made: it keeps the count).
    pub(crate) fn from_inner(inner: Rc<Inner>) -> Self {
        let handles = inner.handles.get().checked_add(1);
        inner
            .handles
            .set(handles.expect("over four billion handles on one greenlet"));
        Greenlet(inner)
    }
}

impl Clone for Greenlet {
    fn clone(&self) -> Self {
        Greenlet::from_inner(self.0.clone())
    }
}

impl Drop for Greenlet {
    fn drop(&mut self) {
        let left = self.0.handles.get() - 1;
        self.0.handles.set(left);
        if left == 0 {
            switch::handle_dropped(&self.0);
        }
    }
}

impl PartialEq for Greenlet {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other)
    }
}

impl Eq for Greenlet {}

impl fmt::Debug for Greenlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.is_dead() {
            "dead"
        } else if !self.is_started() {
            "not started"
        } else if std::ptr::eq(switch::current_raw(), Rc::as_ptr(&self.0)) {
            "running"
        } else {
            "suspended"
        };
        write!(f, "Greenlet({} #{}, {state})", self.name(), self.id())
    }
}

/// A reference to a greenlet that does not keep it alive, as a parent link
/// does not: when the last [`Greenlet`] handle goes, the greenlet is killed
/// whatever `WeakGreenlet`s exist. It can still be switched to while it
/// lives (a killed greenlet is dead, and the switch says so).
///
/// That is what a scheduler wants for greenlets it wakes but does not own:
/// stage 4's hub switches back to a greenlet that waited there through one
/// of these, so waiting in the hub once does not make a greenlet immortal.
///
/// ```
/// use stage_greenlet::{switch_to_parent, Greenlet};
///
/// let g = Greenlet::new(|()| loop {
///     let () = switch_to_parent(()).unwrap();
/// })?;
/// let weak = g.downgrade();
/// let () = weak.switch(())?; // starts it, like a handle would
/// drop(g); // the last handle: g is killed
/// assert!(weak.is_dead());
/// assert!(weak.switch::<(), ()>(()).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Like a handle, it never leaves its thread:
///
/// ```compile_fail
/// fn needs_send<T: Send>(_: T) {}
/// needs_send(stage_greenlet::current().downgrade());
/// ```
#[derive(Clone)]
pub struct WeakGreenlet(Rc<Inner>);

impl WeakGreenlet {
    /// [`Greenlet::switch`], through this reference.
    #[inline(always)]
    pub fn switch<T: 'static, U: 'static>(&self, value: T) -> Result<U, SwitchError> {
        switch::switch(&self.0, value)
    }

    /// Tell the processor that this greenlet will soon be switched to: it
    /// starts loading the top `lines` cache lines of the suspended stack
    /// (where the switch resumes it, and the frames it then returns
    /// through) while the caller goes on. A scheduler that knows a batch
    /// of greenlets it will run calls this for all of them first, so that
    /// their stacks come from memory side by side instead of one at a
    /// time, each as its greenlet resumes. Only a hint: it changes nothing
    /// a program can observe, and where stacks are switched by `context`
    /// it does nothing at all.
    ///
    /// ```
    /// use stage_greenlet::Greenlet;
    /// let g = Greenlet::new(|x: u32| x + 1)?;
    /// g.downgrade().prefetch(8); // not started yet: nothing to load
    /// assert_eq!(g.switch::<u32, u32>(41)?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn prefetch(&self, lines: usize) {
        switch::prefetch(&self.0, lines);
    }

    /// Kill it and come back here once it is dead, as dropping its last
    /// handle would, whoever its parent is: it unwinds from its pending
    /// switch (running its destructors), and its death is reported to the
    /// caller, not to its parent. Unlike [`Greenlet::throw`], whose death
    /// goes to the parent, this suits a caller that must stay in control,
    /// such as a hub tearing down a thread's greenlets. A greenlet that
    /// never ran is discarded without running; a dead one is left alone.
    ///
    /// Refused ([`SwitchError::CannotKill`]) for main, the running greenlet
    /// and its ancestors (their death could not come back here).
    ///
    /// ```
    /// use stage_greenlet::{switch_to_parent, Greenlet};
    ///
    /// let outer = Greenlet::new(|()| loop {
    ///     let () = switch_to_parent(()).unwrap();
    /// })?;
    /// let () = outer.switch(())?; // outer is suspended, waiting for a ()
    /// let inner = Greenlet::builder().parent(&outer).spawn(|()| loop {
    ///     let () = switch_to_parent(()).unwrap(); // to outer, which goes on to main
    /// })?;
    /// let () = inner.switch(())?;
    /// // `throw` would send inner's death to outer; `kill` brings it here.
    /// inner.downgrade().kill()?;
    /// assert!(inner.is_dead() && !outer.is_dead());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kill(&self) -> Result<(), SwitchError> {
        switch::kill_here(&self.0)
    }

    /// Whether it has finished (returned, panicked or was killed).
    pub fn is_dead(&self) -> bool {
        self.0.state() == State::Dead
    }

    /// Its [`Greenlet::id`].
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// Whether both refer to the same greenlet.
    pub fn ptr_eq(&self, other: &Greenlet) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for WeakGreenlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WeakGreenlet({} #{})", self.0.display_name(), self.0.id)
    }
}

/// Switch to the running greenlet's parent: `current().parent()?.switch(v)`,
/// except that no handle to the parent lives on our stack while we wait.
///
/// That matters because handles, wherever they live, keep a suspended
/// greenlet from being killed when its other handles are dropped. A child
/// parked in `current().parent().unwrap().switch(..)` holds a handle to its
/// parent in that expression's temporary; if the parent also holds the
/// child (in a local, say), neither is ever killed. Parking here holds only
/// the parent link, which does not count.
///
/// ```
/// use stage_greenlet::{switch_to_parent, Greenlet};
///
/// let g = Greenlet::new(|x: u8| {
///     let y: u8 = switch_to_parent(x + 1).unwrap();
///     y * 2
/// })?;
/// assert_eq!(g.switch::<u8, u8>(1)?, 2);
/// assert_eq!(g.switch::<u8, u8>(5)?, 10);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn switch_to_parent<T: 'static, U: 'static>(value: T) -> Result<U, SwitchError> {
    switch::switch_to_parent(value)
}

/// The running greenlet: the thread's implicit main greenlet when no other
/// has been switched to.
///
/// ```
/// let main = stage_greenlet::current();
/// assert!(main.is_main());
/// let child = stage_greenlet::Greenlet::new(|()| stage_greenlet::current().is_main())?;
/// assert_eq!(child.switch::<(), bool>(())?, false);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn current() -> Greenlet {
    Greenlet::from_inner(switch::current())
}

/// The running greenlet's [`id`](Greenlet::id), without creating anything:
/// `None` on a thread that has not used greenlets yet, and during thread
/// exit once its greenlets are torn down. Safe to call from a panic hook or
/// a thread-local destructor, where [`current`] might have to create the
/// main greenlet.
///
/// ```
/// let main = stage_greenlet::current();
/// assert_eq!(stage_greenlet::current_id(), Some(main.id()));
/// ```
pub fn current_id() -> Option<u64> {
    switch::current_id()
}
