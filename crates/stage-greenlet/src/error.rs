//! What can go wrong, said so the caller knows what to do about it.

use std::any::Any;
use std::fmt;
use std::io;

/// A `switch` (or `throw`) that did not deliver what the caller asked for.
///
/// Every variant leaves the thread in a consistent state: the caller is
/// running, every other greenlet is where it was.
#[non_exhaustive]
pub enum SwitchError {
    /// The target greenlet has finished (returned, panicked or was killed).
    ///
    /// greenlet.py quietly sends the value on to the dead greenlet's first
    /// live ancestor (often the caller, which gets its own value back); we
    /// report it, because a switch that silently went elsewhere is a bug
    /// waiting to be found the hard way.
    Dead {
        /// The dead greenlet's name.
        greenlet: String,
    },
    /// The value's type is not the one the receiving side waits for. When the
    /// target's pending `switch` (or its function's argument) expects another
    /// type, the switch does not happen and the value is dropped; when a
    /// finished greenlet's return value does not fit its parent's pending
    /// switch, the parent gets this error and the value is dropped.
    WrongType {
        /// The type the receiver waits for.
        expected: &'static str,
        /// The type that was sent.
        found: &'static str,
    },
    /// A greenlet whose return value was due here panicked; `payload` is what
    /// it panicked with (re-raise it with [`std::panic::resume_unwind`]).
    Panicked {
        /// The greenlet that panicked.
        greenlet: String,
        /// The panic's payload.
        payload: Box<dyn Any + Send>,
    },
    /// A greenlet whose return value was due here was killed (see
    /// [`Greenlet::throw`](crate::Greenlet::throw)) instead of returning.
    Killed {
        /// The killed greenlet.
        greenlet: String,
    },
    /// The target belongs to another thread. Greenlet handles are `!Send`,
    /// so safe code cannot produce this; it is kept so callers matching on
    /// thread affinity have a name for it.
    OtherThread,
    /// [`switch_to_parent`](crate::switch_to_parent) was called from the
    /// main greenlet, which has no parent.
    NoParent,
    /// `throw` cannot kill this greenlet: it is the thread's main greenlet,
    /// or the one that is running.
    CannotKill {
        /// The greenlet `throw` was aimed at.
        greenlet: String,
        /// Why not.
        why: &'static str,
    },
}

impl SwitchError {
    /// The panic message, when this is [`SwitchError::Panicked`] with a
    /// string payload (what `panic!("...")` produces).
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            SwitchError::Panicked { payload, .. } => payload
                .downcast_ref::<&'static str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str)),
            _ => None,
        }
    }
}

impl fmt::Display for SwitchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwitchError::Dead { greenlet } => write!(
                f,
                "greenlet `{greenlet}` is dead (it returned, panicked or was killed): \
                 nothing can switch to it any more; check `is_dead()` first"
            ),
            SwitchError::WrongType { expected, found } => write!(
                f,
                "switch sent a `{found}` but the receiving side waits for a `{expected}`: \
                 make the sender's value type match the receiver's `switch::<_, {expected}>`"
            ),
            SwitchError::Panicked { greenlet, .. } => {
                write!(f, "greenlet `{greenlet}` panicked")?;
                if let Some(message) = self.panic_message() {
                    write!(f, ": {message}")?;
                }
                write!(
                    f,
                    " (the payload is in the error: re-raise it with resume_unwind)"
                )
            }
            SwitchError::Killed { greenlet } => write!(
                f,
                "greenlet `{greenlet}` was killed before it returned a value"
            ),
            SwitchError::OtherThread => write!(
                f,
                "that greenlet belongs to another thread: greenlets never leave their thread"
            ),
            SwitchError::NoParent => write!(
                f,
                "the main greenlet has no parent to switch to: switch to a greenlet by its handle"
            ),
            SwitchError::CannotKill { greenlet, why } => {
                write!(f, "cannot kill greenlet `{greenlet}`: {why}")
            }
        }
    }
}

impl fmt::Debug for SwitchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The panic payload is `dyn Any`: show its message, which is what a
        // person reading a failed test wants.
        match self {
            SwitchError::Panicked { greenlet, .. } => f
                .debug_struct("Panicked")
                .field("greenlet", greenlet)
                .field("message", &self.panic_message())
                .finish_non_exhaustive(),
            other => write!(f, "{other}"),
        }
    }
}

impl std::error::Error for SwitchError {}

/// Creating a greenlet (or re-parenting one) failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum GreenletError {
    /// The kernel refused another memory mapping: each greenlet stack costs
    /// two (the stack and its guard page), and `vm.max_map_count` caps how
    /// many one process may hold.
    MapLimit {
        /// The limit, read from `/proc/sys/vm/max_map_count`.
        limit: u64,
        /// Mappings this process held when the allocation failed.
        in_use: u64,
    },
    /// Allocating or protecting a stack failed for another reason (out of
    /// memory or address space).
    Stack(io::Error),
    /// The requested stack size is outside what we can allocate.
    StackSize {
        /// What was asked for.
        requested: usize,
        /// The smallest stack we hand out.
        min: usize,
        /// The largest (the hard `RLIMIT_STACK`).
        max: usize,
    },
    /// `set_parent` would make a greenlet its own ancestor.
    Cycle {
        /// The greenlet being re-parented.
        greenlet: String,
        /// The parent that was refused.
        parent: String,
    },
    /// The main greenlet is the root of its thread: it has no parent to set.
    MainHasNoParent,
}

impl fmt::Display for GreenletError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GreenletError::MapLimit { limit, in_use } => write!(
                f,
                "cannot map another greenlet stack: this process holds {in_use} memory mappings \
                 and vm.max_map_count is {limit} (each greenlet stack costs two: the stack and \
                 its guard page). Drop greenlets you no longer need, or raise the limit: \
                 sudo sysctl -w vm.max_map_count={}",
                limit.saturating_mul(4).max(262_144)
            ),
            GreenletError::Stack(err) => write!(f, "cannot allocate a greenlet stack: {err}"),
            GreenletError::StackSize {
                requested,
                min,
                max,
            } => write!(
                f,
                "stack size {requested} bytes is out of range: ask for {min} to {max} bytes"
            ),
            GreenletError::Cycle { greenlet, parent } => write!(
                f,
                "cannot make `{parent}` the parent of `{greenlet}`: `{greenlet}` is already \
                 an ancestor of `{parent}`, and parent chains must end at the main greenlet"
            ),
            GreenletError::MainHasNoParent => {
                write!(
                    f,
                    "the main greenlet is the root of its thread and cannot have a parent"
                )
            }
        }
    }
}

impl std::error::Error for GreenletError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GreenletError::Stack(err) => Some(err),
            _ => None,
        }
    }
}
