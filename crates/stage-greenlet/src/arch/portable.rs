//! The switch everywhere else: the `context` crate's `jump_fcontext`
//! (Boost.Context's assembly, for every architecture it supports), behind
//! the same interface as our x86-64 switch.
//!
//! `jump_fcontext` hands the *woken* side the sender's context, where ours
//! has the sender store its own. So the word that crosses is the address of
//! an envelope in the sender's frame: where the sender keeps its context,
//! and the word itself. The woken side stores the context there and reads
//! the word, in `arrive`.
//!
//! A fresh `context` stack calls a function of one fixed signature with the
//! first `Transfer`; ours calls an `EntryFn` with a word. `Context::new`
//! bridges the two by running the new stack once, at once: `first_frame`
//! receives the entry function, switches straight back, and waits there
//! for the first real switch. That costs two jumps per greenlet created,
//! on this path only.

use std::cell::Cell;

use context::stack::Stack;
use context::Transfer;

use super::EntryFn;

/// A suspended stack: `context`'s own saved context.
#[repr(transparent)]
pub(crate) struct Context(context::Context);

/// What crosses a jump: where the sender keeps its context, and its word.
struct Envelope {
    save_to: *const Cell<Option<Context>>,
    data: usize,
}

impl Context {
    /// Where `context` keeps a suspended stack is its own business: no
    /// prefetch here.
    #[inline(always)]
    pub(crate) fn prefetch(&self, _lines: usize) {}

    /// A context that, when first switched to, calls `entry` at the top of
    /// `stack` with the word the switch passed.
    ///
    /// # Safety
    /// `stack` must be unused (nothing else runs on it or points into it)
    /// and outlive every use of the context.
    pub(crate) unsafe fn new(stack: &Stack, entry: EntryFn) -> Context {
        // SAFETY: the caller's guarantee on the stack; `first_frame` takes
        // the entry function and switches straight back, suspended in a
        // `resume` that nothing else will resume.
        unsafe {
            let fresh = context::Context::new(stack, first_frame);
            Context(fresh.resume(entry as *const () as usize).context)
        }
    }
}

/// As the x86-64 switch does: keep our context in
/// `*save_to`, resume `to` with `data`, and return the word the next switch
/// back to us passes.
///
/// # Safety
/// As for the x86-64 switch.
#[inline(always)]
pub(crate) unsafe fn switch(save_to: &Cell<Option<Context>>, to: Context, data: usize) -> usize {
    let envelope = Envelope { save_to, data };
    // SAFETY: the caller's guarantee on `to`; `envelope` lives in this frame,
    // suspended until the woken side has read it in `arrive`.
    let woken = unsafe { to.0.resume(&envelope as *const Envelope as usize) };
    // SAFETY: every jump on this path passes an envelope (`switch`), and its
    // sender is suspended until we return.
    unsafe { arrive(woken) }
}

/// Store the sender's context where it keeps it, and take its word.
///
/// # Safety
/// `woken` must be what a jump made by `switch` delivered.
#[inline(always)]
unsafe fn arrive(woken: Transfer) -> usize {
    // SAFETY: the caller's guarantee: `data` is the address of a live
    // `Envelope`, whose `save_to` outlives the sender's suspension.
    unsafe {
        let envelope = &*(woken.data as *const Envelope);
        (*envelope.save_to).set(Some(Context(woken.context)));
        envelope.data
    }
}

/// The first frame on a fresh `context` stack: receive the entry function
/// from `Context::new`, hand control straight back, and, at the first
/// real switch, call the entry with its word.
extern "C" fn first_frame(made: Transfer) -> ! {
    // SAFETY: `Context::new` passes an `EntryFn`, as a word.
    let entry: EntryFn = unsafe { std::mem::transmute::<usize, EntryFn>(made.data) };
    // SAFETY: `made.context` is `Context::new`, suspended in its `resume`.
    let first = unsafe { made.context.resume(0) };
    // SAFETY: the first real switch to this stack came through `switch`.
    entry(unsafe { arrive(first) })
}
