//! The greenlet switch: who runs, what they wait for, and the value in flight.
//!
//! Everything `unsafe` about greenlets happens here or in [`arch`],
//! which does the actual switch: a few instructions that save the running
//! stack's registers on it and restore the target's (read its diagrams
//! first). This module decides *where* to jump, carries the value across,
//! and keeps the per-thread bookkeeping (which greenlet runs, what each
//! suspended one waits for) consistent on both sides of the jump. What
//! crosses a jump is one word each way: the sender's context (where its
//! registers are) and `data`, the address of a message.
//!
//! # How a value crosses
//!
//! The sender puts the value in a `Message` in its own frame and passes
//! its address as `data`, with what kind of
//! message it is in the address's three low bits (a message is 8-aligned,
//! so they are free): the receiver tells a plain value (kind 0, the bare
//! address) from a throw or a last word by testing the register, before it
//! touches memory. The sender is suspended while the receiver reads it, so its
//! frame is alive; the receiver moves the value out (a plain read), and the
//! sender never drops it: from the jump on, the value belongs to the
//! receiver. No allocation, no boxing, no `Option` to fill and empty.
//!
//! Every suspended greenlet records the `TypeId` its pending switch waits
//! for (`expects`), and the *sender* checks its `T` against it before
//! jumping: a mismatch is an error at the call that made it, and the
//! receiver's read needs no second check. A finished greenlet's return
//! value cannot be refused that way (the greenlet is already dead), so its
//! message also carries a pointer to a static table for the value's type
//! (`TypeId`, name, drop function): that one is checked on the receiving
//! side and dropped if it does not fit.
//! A dead greenlet expects a type no value has, so the one test also
//! refuses a switch to the dead.

use std::any::{type_name, Any, TypeId};
use std::cell::{Cell, RefCell};
use std::mem::MaybeUninit;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;

use crate::arch::{self, Context, EntryFn};
use crate::error::SwitchError;
use crate::greenlet::{Greenlet, GreenletExit};
use crate::hook::{self, SwitchKind};
use crate::stack::{self, GuardedStack};

/// Where a greenlet is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum State {
    /// Created, its function not yet called.
    Fresh,
    /// Started and not finished: running if it is the thread's current
    /// greenlet, else suspended in a `switch` (or `throw`) with its registers
    /// saved on its stack. Not two states, so that a switch need not write
    /// both greenlets' states.
    Started,
    /// Its function returned, panicked, or it was killed.
    Dead,
}

/// A type, as the switch needs to know it: one static table per type, so
/// that what a suspended greenlet waits for (`expects`) and what a finished
/// greenlet returns are each one pointer.
struct ValueType {
    id: TypeId,
    /// `type_name::<T>`, called only to word an error.
    name: fn() -> &'static str,
    /// Drops the value of a `Returned<T>` message the receiver does not want.
    discard: unsafe fn(*mut Header),
}

struct TypeOf<T>(std::marker::PhantomData<T>);

impl<T: 'static> TypeOf<T> {
    const TABLE: &'static ValueType = &ValueType {
        id: TypeId::of::<T>(),
        name: type_name::<T>,
        discard: discard::<T>,
    };

    /// Whether `table` is `T`'s. By the type ids, not the tables' addresses:
    /// a constant's address is not unique (each codegen unit that uses
    /// `TABLE` may have its own copy, and the two sides of a switch are
    /// usually compiled in different ones).
    #[inline(always)]
    fn is(table: &ValueType) -> bool {
        table.id == TypeId::of::<T>()
    }
}

/// One greenlet's state. Handles ([`Greenlet`]) are `Rc`s to this; so are
/// the parent links, which keep the memory alive but are not handles: only
/// handles decide when a suspended greenlet is killed (see `handles`).
///
/// `repr(C)` to keep `saved` first: the running greenlet's address is then
/// also where the switch stores its registers' address, with no offset to
/// add on every switch. The fields every switch touches come first.
#[repr(C)]
pub(crate) struct Inner {
    /// The saved registers of a suspended greenlet (`None` otherwise).
    saved: Cell<Option<Context>>,
    /// The type its pending switch accepts (before it starts: its
    /// function's argument type; once dead: a type no value has).
    expects: Cell<&'static ValueType>,
    pub(crate) id: u64,
    /// Boxed twice, so that the record holds one pointer, not two words:
    /// few greenlets are given a name, and every greenlet pays for the field.
    pub(crate) name: Option<Box<Box<str>>>,
    /// Not a handle: a child does not keep its parent from being killed.
    pub(crate) parent: RefCell<Option<Rc<Inner>>>,
    /// How many [`Greenlet`] handles exist. When it drops to zero a
    /// suspended greenlet is killed: counting only handles (not parent
    /// links or the thread's own bookkeeping) is what lets a parent that
    /// holds its child in a local be freed at all; otherwise the two would
    /// keep each other alive forever. 32 bits, beside the flags below: four
    /// billion handles would fill 32 GiB, and every word of this record is
    /// paid once per greenlet (a 10,000-connection server has 10,000).
    pub(crate) handles: Cell<u32>,
    /// The function, boxed as `F` until the first switch calls it.
    start: Cell<Option<Box<dyn Any>>>,
    /// `entry::<A, R, F>`, which knows how to unbox `start`.
    entry: Option<EntryFn>,
    /// Its guard page is read by the overflow handler (see `overflow_info`).
    stack: RefCell<Option<GuardedStack>>,
    pub(crate) stack_size: usize,
    state: Cell<State>,
    /// In the thread's `orphans`: it lost its last handle while started and
    /// is owned by the thread until it dies (see [`handle_dropped`]).
    orphaned: Cell<bool>,
    pub(crate) was_started: Cell<bool>,
}

impl Inner {
    pub(crate) fn state(&self) -> State {
        self.state.get()
    }

    pub(crate) fn is_main(&self) -> bool {
        self.entry.is_none()
    }

    /// `name` if given, else `Greenlet-<id>` (`main` for the main greenlet).
    pub(crate) fn display_name(&self) -> String {
        match (&self.name, self.is_main()) {
            (Some(name), _) => name.to_string(),
            (None, true) => "main".to_string(),
            (None, false) => format!("Greenlet-{}", self.id),
        }
    }

    /// If `addr` is in this greenlet's guard page: its name (if given), id
    /// and stack size. Called from a signal handler, so it reads the stack
    /// without borrowing the `RefCell` (the code it interrupted may hold a
    /// borrow, and the handler must not panic).
    pub(crate) fn overflow_info(&self, addr: usize) -> Option<(Option<&str>, u64, usize)> {
        // SAFETY: the handler asks only of the running greenlet, and a
        // greenlet's `stack` is written only as it dies or is dropped
        // (`discard_fresh`, `finish_dead`, `Drop`), never while it runs; at
        // worst the interrupted code holds a shared borrow, which reading
        // alongside is sound.
        let stack = unsafe { &*self.stack.as_ptr() };
        let (low, high) = stack.as_ref()?.guard();
        let name = self.name.as_deref().map(|name| &**name);
        (low <= addr && addr < high).then_some((name, self.id, self.stack_size))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(stack) = self.stack.get_mut().take() {
            match self.state.get() {
                State::Fresh | State::Dead => stack::give_back(stack),
                // Frames still live on it (the thread is exiting with this
                // greenlet suspended, or it refused to die): something
                // there may be pointed at, so the memory is never reused.
                State::Started => std::mem::forget(stack),
            }
        }
    }
}

/// What the sender of a switch or a throw leaves for the receiver, in the
/// sender's own frame: the value (for `Throw`, the payload to unwind with).
/// The receiver moves it out; the sender never drops it. Aligned to 8 so
/// that the three low bits of its address are free for the [`Kind`] (see
/// [`sent`]). Who sent it need not be said: the sender has already stored
/// its own context where the next switch to it will look (`saved`).
#[repr(C, align(8))]
struct Message<T> {
    value: MaybeUninit<T>,
}

impl<T> Message<T> {
    #[inline(always)]
    fn new(value: T) -> Self {
        Message {
            value: MaybeUninit::new(value),
        }
    }

    /// What to pass as the jump's `data`: this message's address and `kind`.
    #[inline(always)]
    fn data(&mut self, kind: Kind) -> usize {
        sent(self as *mut Self as usize, kind)
    }
}

/// What a greenlet's last words start with: who died, for the receiver to
/// release its stack once it has read the rest (see [`receive_other`]).
#[repr(C, align(8))]
struct Header {
    from: *const Inner,
}

/// A dead greenlet's last word when it did not return: the panic payload
/// (`Panicked`) or nothing (`Killed`).
#[repr(C)]
struct LastWord<T> {
    header: Header,
    value: MaybeUninit<T>,
}

/// A finished greenlet's return value: a last word whose receiver checks
/// the type, so it says what the type is (the table sits at the same
/// offset whatever `T` is).
#[repr(C)]
struct Returned<T> {
    header: Header,
    table: &'static ValueType,
    value: MaybeUninit<T>,
}

/// What a message is. It travels in the low bits of the jump's `data`,
/// not in the message: a plain value's `data` is just its address, so the
/// fast path stores no kind and tests a register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
enum Kind {
    /// A `switch`: here is a value. Zero, so that its `data` is the address.
    Value = 0,
    /// A throw: unwind with the payload (a kill's is [`GreenletExit`]) at
    /// the pending switch.
    Throw,
    /// The sender's function returned this value; the sender is dead.
    Returned,
    /// The sender panicked; the value is the payload; it is dead.
    Panicked,
    /// The sender was killed; no value; it is dead.
    Killed,
}

/// The bits of a jump's `data` that say what kind of message it is.
const KIND_BITS: usize = 0b111;

// A header's address has its low bits free for the kind.
const _: () = assert!(std::mem::align_of::<Header>() > KIND_BITS);
const _: () = assert!(std::mem::align_of::<Message<u8>>() > KIND_BITS);

/// The jump's `data` for the message at `addr` of kind `kind`.
#[inline(always)]
fn sent(addr: usize, kind: Kind) -> usize {
    addr | kind as usize
}

/// What a jump's `data` says: the message's address and its kind.
fn received(data: usize) -> (usize, Kind) {
    let kind = match data & KIND_BITS {
        0 => Kind::Value,
        1 => Kind::Throw,
        2 => Kind::Returned,
        3 => Kind::Panicked,
        4 => Kind::Killed,
        _ => unreachable_state("a message of no kind"),
    };
    (data & !KIND_BITS, kind)
}

/// # Safety
/// `msg` must point at a live `Returned<T>` whose value was not moved out.
unsafe fn discard<T>(msg: *mut Header) {
    // SAFETY: the caller's guarantee: the value is there, and read once.
    drop(unsafe { (*msg.cast::<Returned<T>>()).value.assume_init_read() });
}

/// What the thread owns: its main greenlet, and started greenlets that lost
/// their last handle (kept until they die; see [`handle_dropped`]).
struct ThreadGreenlets {
    main: RefCell<Option<Greenlet>>,
    orphans: RefCell<Vec<Rc<Inner>>>,
}

impl Drop for ThreadGreenlets {
    fn drop(&mut self) {
        // The thread is exiting. Forget the current greenlet first, so
        // nothing reads it after `main` is freed and no suspended orphan is
        // "killed" by switching stacks in the middle of thread teardown
        // (their stacks are leaked instead, see `Inner::drop`).
        let _ = THIS.try_with(|t| t.set_current(ptr::null()));
        drop(std::mem::take(self.orphans.get_mut()));
        drop(self.main.get_mut().take());
    }
}

/// What every switch reads first, side by side so that it finds them at
/// one address.
struct ThisThread {
    /// The running greenlet: null before the thread's first greenlet and
    /// once the thread is exiting. Not counted as a reference: the running
    /// greenlet is kept alive by its handles, or by `orphans` once its last
    /// handle is gone, or (main) by `THREAD.main`.
    current: Cell<*const Inner>,
    /// Whether the switch hook is to be called (see `hook`).
    reporting: Cell<bool>,
    /// `current` is null or `reporting` is set: whether a switch must leave
    /// its fast path. One flag for the two, so the fast path tests one byte.
    detour: Cell<bool>,
}

impl ThisThread {
    /// Set `current` where it may become null or stop being null (a jump
    /// between two greenlets, which never does, writes it directly).
    fn set_current(&self, p: *const Inner) {
        self.current.set(p);
        self.detour.set(p.is_null() || self.reporting.get());
    }
}

thread_local! {
    static THIS: ThisThread = const {
        ThisThread {
            current: Cell::new(ptr::null()),
            reporting: Cell::new(false),
            detour: Cell::new(true),
        }
    };
    static THREAD: ThreadGreenlets = const {
        ThreadGreenlets { main: RefCell::new(None), orphans: RefCell::new(Vec::new()) }
    };
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
}

/// The running greenlet, creating the thread's main greenlet on first use.
#[inline(always)]
fn current_ptr() -> *const Inner {
    let p = THIS.with(|t| t.current.get());
    if p.is_null() {
        init_main()
    } else {
        p
    }
}

/// Whether the switch hook is to be called: what `hook` turns on and off.
#[inline(always)]
pub(crate) fn reporting() -> bool {
    THIS.with(|t| t.reporting.get())
}

/// Turn calls to the switch hook on or off for this thread (nothing, once
/// the thread is exiting).
pub(crate) fn set_reporting(on: bool) {
    let _ = THIS.try_with(|t| {
        t.reporting.set(on);
        t.set_current(t.current.get());
    });
}

#[cold]
fn init_main() -> *const Inner {
    let main = Rc::new(Inner {
        id: 0,
        name: None,
        state: Cell::new(State::Started),
        saved: Cell::new(None),
        expects: Cell::new(TypeOf::<()>::TABLE),
        parent: RefCell::new(None),
        handles: Cell::new(0),
        start: Cell::new(None),
        entry: None,
        stack: RefCell::new(None),
        stack_size: 0,
        orphaned: Cell::new(false),
        was_started: Cell::new(true),
    });
    let p = Rc::as_ptr(&main);
    THREAD.with(|t| *t.main.borrow_mut() = Some(Greenlet::from_inner(main)));
    THIS.with(|t| t.set_current(p));
    p
}

/// The running greenlet without creating anything: for the signal handler.
pub(crate) fn current_raw() -> *const Inner {
    THIS.try_with(|t| t.current.get()).unwrap_or(ptr::null())
}

/// The running greenlet's id, without creating anything: `None` before the
/// thread's first greenlet and once the thread is exiting.
pub(crate) fn current_id() -> Option<u64> {
    let p = current_raw();
    // SAFETY: a non-null current is the running greenlet, which is alive
    // (see `current`).
    (!p.is_null()).then(|| unsafe { (*p).id })
}

/// A new reference to the running greenlet (not a handle: the count of
/// handles is [`Greenlet`]'s business).
pub(crate) fn current() -> Rc<Inner> {
    // SAFETY: the running greenlet is alive: it is owned by a handle, the
    // orphans or (main) the thread, none of which can let go of it while it
    // runs (see `handle_dropped`).
    unsafe { owned(current_ptr()) }
}

/// A new owning `Rc` to a live greenlet known by its address.
///
/// # Safety
/// `p` must come from `Rc::as_ptr` of an `Rc<Inner>` that is still alive.
/// (Bumping the count first makes `from_raw` produce a new owner without
/// stealing an existing one.)
unsafe fn owned(p: *const Inner) -> Rc<Inner> {
    // SAFETY: the caller's guarantee.
    unsafe {
        Rc::increment_strong_count(p);
        Rc::from_raw(p)
    }
}

/// Build a greenlet that will run `f` on `stack` when first switched to.
pub(crate) fn new_inner<A, R, F>(
    f: F,
    name: Option<Box<str>>,
    stack: GuardedStack,
    parent: Rc<Inner>,
) -> Inner
where
    F: FnOnce(A) -> R + 'static,
    A: 'static,
    R: 'static,
{
    let id = NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id + 1);
        id
    });
    Inner {
        id,
        name: name.map(Box::new),
        state: Cell::new(State::Fresh),
        saved: Cell::new(None),
        expects: Cell::new(TypeOf::<A>::TABLE),
        parent: RefCell::new(Some(parent)),
        handles: Cell::new(0),
        start: Cell::new(Some(Box::new(f))),
        entry: Some(entry::<A, R, F>),
        stack_size: stack.size(),
        stack: RefCell::new(Some(stack)),
        orphaned: Cell::new(false),
        was_started: Cell::new(false),
    }
}

/// `target.switch(value)`: suspend the running greenlet, run `target`, and
/// return what the next switch back to us brings.
///
/// Inlined into the caller on purpose, with `jump` and the value path of
/// `receive`: then the side we jump to continues in its own code with no
/// `ret` in between. A `ret` right after a stack switch returns to an address
/// the CPU's return-stack predictor has never seen (it predicts the *other*
/// stack's caller), and those misses cost about as much as everything else
/// (measured: with this function out of line a round trip takes about
/// twice as long, 29–34 ns against 14–15 ns).
#[inline(always)]
pub(crate) fn switch<T: 'static, U: 'static>(
    target: &Rc<Inner>,
    value: T,
) -> Result<U, SwitchError> {
    // One test for two rare cases: the thread's main greenlet is not made
    // yet, or the switch hook (see `hook`) is to be called. With neither,
    // this test is all a switch pays for them.
    let (mut cur, detour) = THIS.with(|t| (t.current.get(), t.detour.get()));
    if detour {
        cur = detoured::<T>(target)?;
    }
    // One test on the fast path: a dead greenlet expects a type nothing can
    // be sent as (see `mark_dead`), so this also refuses the dead; why it
    // refused is sorted out in a cold function.
    if !TypeOf::<T>::is(target.expects.get()) {
        return refused(cur, target, value);
    }
    // The target's saved registers. None are saved for a fresh greenlet,
    // nor for the running one: a switch to ourselves, which is tested here
    // rather than first, where every switch would pay for it.
    let context = match target.saved.take() {
        Some(context) => context,
        None if ptr::eq(cur, &**target) => return to_self(value),
        None => first_context(target),
    };
    let mut msg = Message::new(value);
    // SAFETY: `cur` is the running greenlet (alive, see `current`), `target`
    // a live suspended or fresh greenlet of this thread (we hold it) whose
    // registers `context` is, and `msg` lives in this frame until the jump
    // returns.
    unsafe {
        (*cur).expects.set(TypeOf::<U>::TABLE);
        let data = jump(cur, target, context, msg.data(Kind::Value));
        receive::<U>(data)
    }
}

/// greenlet.py: switching to yourself hands the value straight back (if it
/// is of the type asked for).
#[cold]
#[inline(never)]
fn to_self<T: 'static, U: 'static>(value: T) -> Result<U, SwitchError> {
    let mut value = Some(value);
    match (&mut value as &mut dyn Any).downcast_mut::<Option<U>>() {
        Some(same) => same
            .take()
            .ok_or_else(|| unreachable_state("a value taken twice")),
        None => Err(SwitchError::WrongType {
            expected: type_name::<U>(),
            found: type_name::<T>(),
        }),
    }
}

/// Start loading the top `lines` of `target`'s suspended stack into the
/// cache (see [`crate::WeakGreenlet::prefetch`]); nothing if it is not
/// suspended.
#[inline(always)]
pub(crate) fn prefetch(target: &Inner, lines: usize) {
    let saved = target.saved.take();
    if let Some(context) = &saved {
        context.prefetch(lines);
    }
    target.saved.set(saved);
}

/// Switch to the running greenlet's parent, holding only the parent link
/// (an `Rc`, not a handle) across the switch.
#[inline(always)]
pub(crate) fn switch_to_parent<T: 'static, U: 'static>(value: T) -> Result<U, SwitchError> {
    // SAFETY: the running greenlet is alive (see `current`).
    let parent = unsafe { (*current_ptr()).parent.borrow().clone() };
    match parent {
        Some(parent) => switch(&parent, value),
        None => Err(SwitchError::NoParent),
    }
}

/// A switch off the fast path: make the thread's main greenlet if there is
/// none yet, and tell the switch hook, if it is on, that the running
/// greenlet switches to `target` — unless the switch will be refused (the
/// caller sorts that out), or goes to the running greenlet itself (not a
/// transfer of control). Then check again that `target` takes a `T`: the
/// hook is arbitrary code, and may have ended it meanwhile. Returns the
/// running greenlet.
#[cold]
#[inline(never)]
fn detoured<T: 'static>(target: &Inner) -> Result<*const Inner, SwitchError> {
    let cur = current_ptr();
    if reporting() && !ptr::eq(cur, target) && TypeOf::<T>::is(target.expects.get()) {
        // SAFETY: `cur` is the running greenlet: alive (see `current`).
        hook::report(SwitchKind::Switch, unsafe { &*cur }, target);
        if !TypeOf::<T>::is(target.expects.get()) {
            return Err(refusal::<T>(target));
        }
    }
    Ok(cur)
}

/// A switch that failed the type test: to the running greenlet `cur` itself
/// (whose `expects` is stale while it runs), else refused. (`cur` is null
/// before the thread's main greenlet is made.)
#[cold]
#[inline(never)]
fn refused<T: 'static, U: 'static>(
    cur: *const Inner,
    target: &Inner,
    value: T,
) -> Result<U, SwitchError> {
    if ptr::eq(cur, target) {
        return to_self(value);
    }
    Err(refusal::<T>(target))
}

/// Why `target` cannot take a `T` now: it is dead, or waits for another type.
#[cold]
#[inline(never)]
fn refusal<T: 'static>(target: &Inner) -> SwitchError {
    match target.state.get() {
        State::Dead => SwitchError::Dead {
            greenlet: target.display_name(),
        },
        State::Fresh | State::Started => SwitchError::WrongType {
            expected: (target.expects.get().name)(),
            found: type_name::<T>(),
        },
    }
}

/// `target.throw()`: kill a suspended greenlet (or mark a fresh one dead).
pub(crate) fn throw(target: &Rc<Inner>) -> Result<(), SwitchError> {
    if let Some(done) = cannot_throw(target)? {
        return Ok(done);
    }
    match raise::<()>(target, Box::new(GreenletExit)) {
        Err(SwitchError::Killed { .. }) => Ok(()),
        other => other,
    }
}

/// `target.throw_with(payload)`: raise `payload` at a suspended greenlet's
/// pending switch (greenlet.py's `throw(type, value)`), and return what
/// the next switch back to us brings: a value it switches back if it
/// catches the unwind, or (if we are its parent) how it died.
pub(crate) fn throw_with<U: 'static>(
    target: &Rc<Inner>,
    payload: Box<dyn Any + Send>,
) -> Result<U, SwitchError> {
    let greenlet = || target.display_name();
    let was_fresh = match target.state.get() {
        State::Dead => {
            return Err(SwitchError::Dead {
                greenlet: greenlet(),
            })
        }
        state => state == State::Fresh,
    };
    if cannot_throw(target)?.is_none() {
        return raise::<U>(target, payload);
    }
    Err(if !was_fresh {
        // The switch hook ended it before the throw.
        SwitchError::Dead {
            greenlet: greenlet(),
        }
    } else if payload.is::<GreenletExit>() {
        SwitchError::Killed {
            greenlet: greenlet(),
        }
    } else {
        // As in greenlet.py: it never runs, and dies of the payload at
        // once; its death comes back to us as that payload.
        SwitchError::Panicked {
            greenlet: greenlet(),
            payload,
        }
    })
}

/// Why `target` cannot be thrown into; `Some(())` if there is nothing to
/// unwind (it is dead, or was fresh and is now discarded, or the switch
/// hook ended it), `None` if it is suspended and ready for [`raise`].
fn cannot_throw(target: &Rc<Inner>) -> Result<Option<()>, SwitchError> {
    let cur = current_ptr();
    let cannot = |why| {
        Err(SwitchError::CannotKill {
            greenlet: target.display_name(),
            why,
        })
    };
    if cur == Rc::as_ptr(target) {
        return cannot("it is the running greenlet (return from its function instead)");
    }
    if target.is_main() {
        return cannot("it is the thread's main greenlet");
    }
    match target.state.get() {
        State::Dead => return Ok(Some(())),
        State::Fresh => {
            // Never ran, so nothing to unwind.
            discard_fresh(target);
            return Ok(Some(()));
        }
        // Not the current greenlet (checked above), so suspended.
        State::Started => {}
    }
    if hook::on() {
        // SAFETY: `cur` is the running greenlet: alive (see `current`).
        hook::report(SwitchKind::Throw, unsafe { &*cur }, target);
        // The hook is arbitrary code: it may have ended `target` meanwhile.
        if target.state.get() != State::Started {
            return Ok(Some(()));
        }
    }
    Ok(None)
}

/// Jump to the suspended `target` with `payload` to unwind with, and
/// return what comes back (a `U`).
fn raise<U: 'static>(target: &Rc<Inner>, payload: Box<dyn Any + Send>) -> Result<U, SwitchError> {
    let cur = current_ptr();
    let context = match target.saved.take() {
        Some(context) => context,
        None => unreachable_state("a suspended greenlet without saved registers"),
    };
    let mut msg = Message::new(payload);
    // SAFETY: as in `switch`: both greenlets alive, `context` the target's
    // registers, `msg` in this frame (the receiver moves the payload out
    // before we run again).
    unsafe {
        (*cur).expects.set(TypeOf::<U>::TABLE);
        let data = jump(cur, target, context, msg.data(Kind::Throw));
        receive::<U>(data)
    }
}

/// Kill `target` and come back here once it is dead, as dropping its last
/// handle does (see [`handle_dropped`]), for a caller that keeps its
/// references: a fresh greenlet is discarded, a dead one left alone.
pub(crate) fn kill_here(target: &Rc<Inner>) -> Result<(), SwitchError> {
    match target.state.get() {
        State::Dead => return Ok(()),
        State::Fresh => {
            discard_fresh(target);
            return Ok(());
        }
        State::Started => {}
    }
    let cur = current();
    if !target.is_main() && !Rc::ptr_eq(target, &cur) && is_ancestor(target, &cur) {
        return Err(SwitchError::CannotKill {
            greenlet: target.display_name(),
            why: "it is an ancestor of the running greenlet, so its death could not come back here",
        });
    }
    // Its death comes back to us rather than to its parent. No cycle: it is
    // not an ancestor of `cur` (checked above); `throw` refuses main and
    // the running greenlet itself.
    let old = if target.is_main() || Rc::ptr_eq(target, &cur) {
        None
    } else {
        target.parent.replace(Some(cur))
    };
    let result = throw(target);
    drop(old);
    result
}

/// Switch the CPU from the running greenlet `from` to `to`, whose
/// registers `context` is, passing `msg`, the address of a message; return
/// what the next switch back to `from` passes.
///
/// # Safety
/// `from` must be the running greenlet and `to` a fresh or suspended
/// greenlet of this thread, `context` its saved registers, taken from
/// `saved` (so used once), or a fresh greenlet's first context; `msg` must
/// stay valid until the receiver has read it (it does, if it lives in the
/// caller's frame: the caller is suspended).
#[inline(always)]
unsafe fn jump(from: *const Inner, to: &Inner, context: Context, msg: usize) -> usize {
    THIS.with(|t| t.current.set(to));
    // SAFETY: the caller's guarantee; `from` is alive while suspended (held
    // by whoever will resume or kill it), so its `saved` outlives the jump.
    unsafe { arch::switch(&(*from).saved, context, msg) }
}

/// The context a fresh greenlet starts from: its entry function at the top
/// of its stack.
#[cold]
fn first_context(to: &Inner) -> Context {
    if to.state.get() != State::Fresh {
        unreachable_state("a jump to a greenlet that is neither fresh nor suspended");
    }
    to.state.set(State::Started);
    to.was_started.set(true);
    let stack = to.stack.borrow();
    match (stack.as_ref(), to.entry) {
        // SAFETY: the stack outlives the context: it is freed only after the
        // greenlet is dead (`finish_dead`) or, if it never dies, leaked
        // (`Inner::drop`).
        (Some(stack), Some(entry)) => unsafe { Context::new(&stack.coloured(), entry) },
        _ => unreachable_state("a fresh greenlet without a stack or function"),
    }
}

/// Take the value that arrived with a jump back to us (the fast path,
/// inlined), or handle the rest.
///
/// # Safety
/// `data` must be what `jump` returned, or what a fresh greenlet's entry
/// received.
#[inline(always)]
unsafe fn receive<U: 'static>(data: usize) -> Result<U, SwitchError> {
    if data & KIND_BITS != Kind::Value as usize {
        // SAFETY: the caller's guarantee, passed on.
        return unsafe { receive_other::<U>(data) };
    }
    // SAFETY: a `Value`'s `data` is the bare address of a `Message<T>` in
    // the suspended sender's frame, whose `T` the sender checked against the
    // `U` we recorded in `expects` before suspending, so it is a
    // `Message<U>`; its value is read once, here, and the sender never
    // drops it.
    Ok(unsafe { (*(data as *const Message<U>)).value.assume_init_read() })
}

/// Everything but a plain value: a kill, or a greenlet's last message.
///
/// # Safety
/// As for [`receive`].
#[cold]
#[inline(never)]
unsafe fn receive_other<U: 'static>(data: usize) -> Result<U, SwitchError> {
    // Every jump in this module passes the address of a message in the
    // sender's frame (with its kind in the low bits, now cleared), and the
    // sender is suspended (or dead but with its stack not yet released)
    // until we are done with it.
    let (addr, kind) = received(data);
    match kind {
        Kind::Value => unreachable_state("a plain value on the slow path"),
        Kind::Throw => {
            // SAFETY: `raise` sends `Throw` as a
            // `Message<Box<dyn Any + Send>>` in the suspended thrower's
            // frame; the payload is read once, here.
            let payload = unsafe {
                (*(addr as *const Message<Box<dyn Any + Send>>))
                    .value
                    .assume_init_read()
            };
            // Quietly: `resume_unwind` skips the panic hook, so a kill prints
            // nothing. A `catch_unwind` in the greenlet may stop it (and get
            // the payload); else `entry`'s does.
            panic::resume_unwind(payload)
        }
        Kind::Returned | Kind::Panicked | Kind::Killed => {
            // SAFETY: a dying greenlet's messages (`finish`) start with a
            // `Header`.
            let msg = unsafe { &*(addr as *const Header) };
            // The sender is dead and never resumes: its saved registers are
            // never used, and its stack is released once we have copied
            // what `msg` points at out of it. Until then we own it: dropping
            // a return value of the wrong type runs arbitrary code, which may
            // drop the sender's last handle (or switch away while another
            // greenlet does), and that must not free the stack under `msg`.
            // SAFETY: the dead sender is alive: it was running until its
            // jump here, so it is owned as every running greenlet is.
            let from = unsafe { owned(msg.from) };
            let result = match kind {
                // SAFETY: `finish` sends `Returned` as a `Returned<R>` in the
                // dead sender's frame, which stays mapped until `finish_dead`.
                Kind::Returned => unsafe { take_returned::<U>(addr as *mut Header) },
                Kind::Panicked => {
                    // SAFETY: `finish` sends `Panicked` as a
                    // `LastWord<Box<dyn Any + Send>>`, read once, here.
                    let payload = unsafe {
                        (*(addr as *const LastWord<Box<dyn Any + Send>>))
                            .value
                            .assume_init_read()
                    };
                    Err(SwitchError::Panicked {
                        greenlet: from.display_name(),
                        payload,
                    })
                }
                _ => Err(SwitchError::Killed {
                    greenlet: from.display_name(),
                }),
            };
            finish_dead(&from);
            result
        }
    }
}

/// Move a finished greenlet's return value out of its message if its type
/// is `U`, else drop it there.
///
/// # Safety
/// `msg` must point at a live `Returned<T>` whose value was not moved out.
unsafe fn take_returned<U: 'static>(msg: *mut Header) -> Result<U, SwitchError> {
    // SAFETY: the table sits at the same offset in every `Returned<T>`.
    let table = unsafe { (*msg.cast::<Returned<()>>()).table };
    if TypeOf::<U>::is(table) {
        // SAFETY: the type ids are equal, so it is a `Returned<U>`; its
        // value is read once, here.
        Ok(unsafe { (*msg.cast::<Returned<U>>()).value.assume_init_read() })
    } else {
        // SAFETY: `discard` was made for the message's real type.
        unsafe { (table.discard)(msg) };
        Err(SwitchError::WrongType {
            expected: type_name::<U>(),
            found: (table.name)(),
        })
    }
}

/// What a dead greenlet "expects": a type no value can have, so `switch`'s
/// one type test also refuses the dead.
enum NothingCanBeSent {}

/// End a greenlet that never ran: it is dead, its function (and what the
/// closure captured) is dropped and its stack recycled now.
fn discard_fresh(inner: &Inner) {
    mark_dead(inner);
    drop(inner.start.take());
    if let Some(stack) = inner.stack.borrow_mut().take() {
        stack::give_back(stack);
    }
}

/// Mark a greenlet dead: it never runs again and no switch reaches it.
fn mark_dead(inner: &Inner) {
    inner.state.set(State::Dead);
    inner.expects.set(TypeOf::<NothingCanBeSent>::TABLE);
}

/// Release a dead greenlet's stack and, if the thread was keeping it alive,
/// let go of it.
fn finish_dead(dead: &Inner) {
    if let Some(stack) = dead.stack.borrow_mut().take() {
        stack::give_back(stack);
    }
    if dead.orphaned.replace(false) {
        let dead_ptr: *const Inner = dead;
        let kept = THREAD
            .try_with(|t| {
                let mut orphans = t.orphans.borrow_mut();
                let at = orphans.iter().position(|g| Rc::as_ptr(g) == dead_ptr)?;
                Some(orphans.swap_remove(at))
            })
            .ok()
            .flatten();
        // Dropped outside the borrow: this may free `dead`.
        drop(kept);
    }
}

/// The first frame on every greenlet's stack. It receives the first switch's
/// value, runs the function under `catch_unwind` (a panic must never unwind
/// into the switch's assembly, which has no unwind tables), then hands
/// the outcome to the parent. It never returns: there is nothing to return
/// to. (`extern "C"` also makes any unwind that did escape abort the process
/// rather than run off the stack.)
extern "C" fn entry<A, R, F>(data: usize) -> !
where
    F: FnOnce(A) -> R + 'static,
    A: 'static,
    R: 'static,
{
    let me = current_raw();
    // SAFETY: the starting `jump` made this greenlet the current one and its
    // `Message` is live in the starter's frame; the first message to a
    // fresh greenlet is always a `Value` checked against `A`.
    let arg = unsafe { receive::<A>(data) };
    // SAFETY: the running greenlet is alive (see `current`).
    let inner = unsafe { &*me };
    // Unboxed here, onto this stack: a `Box<F>` called as `f(arg)` would
    // keep its heap block until `f` returns, for a server's connection
    // greenlet all its life.
    let f = inner
        .start
        .take()
        .and_then(|f| f.downcast::<F>().ok())
        .map(|f| *f);
    let outcome = match (arg, f) {
        (Ok(arg), Some(f)) => panic::catch_unwind(AssertUnwindSafe(move || f(arg))),
        _ => unreachable_state("a greenlet started without its argument or function"),
    };
    // SAFETY: `me` is running, and `finish` is the last thing on this stack.
    unsafe { finish::<R>(me, outcome) }
}

/// Deliver a finished greenlet's outcome to the first live ancestor, and
/// leave this stack for good.
///
/// # Safety
/// `me` must be the running greenlet, called from its `entry`.
unsafe fn finish<R: 'static>(me: *const Inner, outcome: std::thread::Result<R>) -> ! {
    // SAFETY: `me` is alive (see `current`) until the receiver's `finish_dead`.
    let inner = unsafe { &*me };
    mark_dead(inner);
    if hook::on() {
        hook::report(SwitchKind::Exit, inner, live_ancestor(inner));
    }
    let target = live_ancestor(inner);
    // Each message lives in this frame, which never returns: the stack is
    // released only after the receiver has read it (`finish_dead`).
    match outcome {
        Ok(value) => {
            let mut msg = Returned {
                header: Header { from: me },
                table: TypeOf::<R>::TABLE,
                value: MaybeUninit::new(value),
            };
            let data = sent(&mut msg as *mut Returned<R> as usize, Kind::Returned);
            // SAFETY: `target` is a suspended ancestor, kept alive by the
            // parent chain `me` holds; `msg` stays put (see above).
            unsafe { leave(inner, target, data) }
        }
        Err(payload) if payload.is::<GreenletExit>() => {
            drop(payload);
            let mut msg = LastWord {
                header: Header { from: me },
                value: MaybeUninit::new(()),
            };
            let data = sent(&mut msg as *mut LastWord<()> as usize, Kind::Killed);
            // SAFETY: as above.
            unsafe { leave(inner, target, data) }
        }
        Err(payload) => {
            let mut msg = LastWord {
                header: Header { from: me },
                value: MaybeUninit::new(payload),
            };
            let data = sent(&mut msg as *mut LastWord<_> as usize, Kind::Panicked);
            // SAFETY: as above.
            unsafe { leave(inner, target, data) }
        }
    }
}

/// A dead greenlet's last jump: from `me` to `target`, never to come back.
///
/// # Safety
/// `me` must be the dying running greenlet, `target` a suspended greenlet
/// of this thread, and `msg` a message from `me` that stays valid until the
/// receiver has read it.
unsafe fn leave(me: &Inner, target: &Inner, msg: usize) -> ! {
    let context = match target.saved.take() {
        Some(context) => context,
        None => unreachable_state("a suspended ancestor without saved registers"),
    };
    THIS.with(|t| t.current.set(target));
    // SAFETY: `context` is `target`'s saved registers, taken so used once;
    // the receiver reads `msg` before our stack is released. Our own saved
    // registers go to our `saved`, where nothing will ever take them: we
    // are dead.
    unsafe { arch::switch(&me.saved, context, msg) };
    unreachable_state("a dead greenlet was resumed")
}

/// The first ancestor that can take a finished greenlet's outcome:
/// dead ones pass it on, fresh ones (never started) are skipped.
fn live_ancestor(of: &Inner) -> &Inner {
    let mut at: *const Inner = of;
    loop {
        // SAFETY: each greenlet holds an `Rc` to its parent, so the chain
        // from a live greenlet is alive.
        let inner = unsafe { &*at };
        let parent = match &*inner.parent.borrow() {
            Some(parent) => Rc::as_ptr(parent),
            None => unreachable_state("a parent chain that does not end at the main greenlet"),
        };
        // SAFETY: as above.
        let candidate = unsafe { &*parent };
        // Started and not the dying (current) greenlet: suspended.
        if candidate.state.get() == State::Started {
            return candidate;
        }
        at = parent;
    }
}

/// Whether `ancestor` is on `of`'s parent chain (or is `of`).
pub(crate) fn is_ancestor(ancestor: &Inner, of: &Inner) -> bool {
    if ptr::eq(of, ancestor) {
        return true;
    }
    let mut next = of.parent.borrow().clone();
    while let Some(here) = next {
        if ptr::eq(&*here, ancestor) {
            return true;
        }
        next = here.parent.borrow().clone();
    }
    false
}

/// The last handle to `inner` has been dropped.
///
/// The rule that keeps this sound: a started greenlet that is not dead is
/// always owned by something that cannot go away while it might run again —
/// a handle, the thread (`main`), or the thread's `orphans`. So whenever the
/// last handle of a started greenlet goes, it becomes an orphan until it
/// dies (a kill here may not finish it). Otherwise the only references left
/// could be its children's parent links, and a child returning into it,
/// then being dropped, would free it while it runs. For the same reason a
/// fresh greenlet whose last handle goes is dead at once: nothing else (a
/// `WeakGreenlet`, a child's parent link) may start a greenlet that nothing
/// would own.
pub(crate) fn handle_dropped(inner: &Rc<Inner>) {
    match inner.state.get() {
        State::Dead => {}
        // It never ran and now never will: drop its function (and what the
        // closure captured) and recycle its stack now, and mark it dead. A
        // `WeakGreenlet` or a child's parent link may keep the memory alive,
        // and a switch through one must not start a greenlet nothing owns.
        State::Fresh => discard_fresh(inner),
        // It dropped its own last handle while running. It cannot be
        // unwound from inside itself, so the thread keeps it until it dies.
        State::Started if ptr::eq(current_raw(), Rc::as_ptr(inner)) => keep_until_dead(inner),
        State::Started => {
            if inner.is_main() || current_raw().is_null() {
                // Main is owned by the thread. A null current means the
                // thread is exiting: no greenlet can run any more, so the
                // stack is leaked rather than unwound (`Inner::drop`).
                return;
            }
            let cur = current();
            if is_ancestor(inner, &cur) {
                // The dropper descends from it, so it is not garbage: the
                // dropper's parent chain still leads to it, and so will the
                // dropper's return value. (Killing it would also send
                // control up and away from the dropper.)
                keep_until_dead(inner);
                return;
            }
            // Kill it, and have it come back here when it is dead rather
            // than to its parent: the dropper is waiting in `drop`. No
            // cycle: `inner` is not an ancestor of `cur` (checked above).
            // The thread owns it from now until it dies: it may survive the
            // kill (catch it and switch away), or this dropper may itself be
            // unwound while it waits, and either way it may run again.
            keep_until_dead(inner);
            let old = inner.parent.replace(Some(cur));
            let _ = throw(inner);
            drop(old);
        }
    }
}

/// Make the thread own a started greenlet that has no handle left, until
/// it dies (`finish_dead` lets go) or the thread exits.
fn keep_until_dead(inner: &Rc<Inner>) {
    if !inner.orphaned.replace(true) {
        let _ = THREAD.try_with(|t| t.orphans.borrow_mut().push(inner.clone()));
    }
}

#[cold]
fn unreachable_state(what: &str) -> ! {
    eprintln!("stage-greenlet: internal error: {what}; aborting");
    std::process::abort()
}
