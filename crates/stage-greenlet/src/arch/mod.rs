//! The stack switch itself: the few instructions that move the CPU from one
//! stack to another, and the picture a fresh stack starts from.
//!
//! Everything a greenlet is — its parent, its type check, its value in
//! flight — is in [`switch`](crate::switch). This module knows only stacks
//! and registers, behind an interface of three items:
//!
//! - `Context`: a suspended stack, known by the address where its
//!   registers were saved. Used once: switching to it consumes it.
//! - `Context::new(stack, entry)`: a stack that has never run, set up so
//!   that the first switch to it calls `entry(word)` on it.
//! - `switch(save_to, to, word)`: save the running stack's context in
//!   `save_to`, resume `to` with `word`, and — when somebody switches back
//!   to us in turn — return the word *they* passed.
//!
//! The suspending side stores its own context, where its greenlet keeps it
//! (`save_to` is its `saved` field), so the side that wakes up has nothing
//! to store: one word arrives, and that is all a switch hands over.
//!
//! # Which switch
//!
//! On x86-64 the switch is our own, in `x86_64`: inline assembly that
//! the compiler sees into, so it saves only what is live across the switch
//! (read its diagrams). Elsewhere, or with the `context-switch` feature, it
//! is the `context` crate's `jump_fcontext` (Boost.Context), in
//! `portable`: an opaque function that saves every callee-saved register
//! whatever is in them, and the floating-point control words besides. The
//! switch-cost table measures both: its `raw context resume` row is
//! `jump_fcontext` alone, and [`SWITCH`] names the one greenlets use.

#[cfg(all(target_arch = "x86_64", not(feature = "context-switch")))]
pub mod x86_64;
#[cfg(all(target_arch = "x86_64", not(feature = "context-switch")))]
pub(crate) use x86_64::{switch, Context};

#[cfg(any(not(target_arch = "x86_64"), feature = "context-switch"))]
mod portable;
#[cfg(any(not(target_arch = "x86_64"), feature = "context-switch"))]
pub(crate) use portable::{switch, Context};

/// A fresh stack's entry function: called, on that stack, with the word
/// the first switch to it passed. It must never return: it leaves its
/// stack by a last switch.
pub(crate) type EntryFn = extern "C" fn(usize) -> !;

/// Which switch greenlets use in this build, as the cost table names it.
pub const SWITCH: &str = if cfg!(all(target_arch = "x86_64", not(feature = "context-switch"))) {
    "our own x86-64 switch (stage_greenlet::arch::x86_64)"
} else {
    "the context crate's jump_fcontext"
};
