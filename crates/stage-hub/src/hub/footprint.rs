//! What the hub keeps for each connection besides its greenlet's stack,
//! record by record, as this build lays the types out: the figures behind
//! "a greenlet costs a page plus the hub's bookkeeping".
//!
//! The sizes are `size_of` of the real types (an `Rc` adds its two
//! counts), so they change when the code does; `figures` records them into
//! the book beside the measured resident memory per connection.
//!
//! ```
//! let records = stage_hub::hub::footprint::per_connection();
//! assert!(records.iter().all(|r| r.bytes > 0));
//! // Each record in an allocation of its own costs the allocator's chunk.
//! assert!(stage_hub::hub::footprint::malloc_chunk(1) >= 16);
//! ```

use std::mem::size_of;
use std::rc::Rc;

use super::io::IoSlot;
use super::task::Shared;
use super::{Handle, Task, TaskId};

/// Where a record lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LivesIn {
    /// An allocation of its own (a `Box` or an `Rc`): the allocator rounds
    /// it up to a chunk ([`malloc_chunk`]).
    OwnAllocation,
    /// An entry of a table (a hash map or a slab) that grows by doubling:
    /// between half and all of the room it holds is in use.
    TableEntry,
}

/// One record the hub or the echo server keeps per connection.
#[derive(Debug, Clone)]
pub struct Record {
    /// What it is, in the lesson's terms.
    pub what: &'static str,
    /// The Rust type.
    pub type_name: &'static str,
    /// Its size in bytes.
    pub bytes: usize,
    /// Where it lives.
    pub lives_in: LivesIn,
}

/// The records kept for one connection of the echo server, largest first
/// within each kind, stage-greenlet's own record of the greenlet among
/// them. Not here: the stack, nor the stream with its socket and
/// registration, which the greenlet keeps on it. (The box that carried
/// the greenlet's function is freed as the greenlet starts.)
pub fn per_connection() -> Vec<Record> {
    fn in_rc<T>() -> usize {
        // An Rc's allocation: the strong and weak counts, then the value.
        2 * size_of::<usize>() + size_of::<T>()
    }
    vec![
        Record {
            what: "the hub's table entry for the greenlet: where its record is",
            type_name: "(TaskId, Box<Task>)",
            bytes: size_of::<(TaskId, Box<Task>)>(),
            lives_in: LivesIn::TableEntry,
        },
        Record {
            what: "the socket's slot in the hub's socket table (its index is its token)",
            type_name: "Option<Rc<IoSlot>>",
            bytes: size_of::<Option<Rc<IoSlot>>>(),
            lives_in: LivesIn::TableEntry,
        },
        Record {
            what: "the server's handle on the connection, to close it at stop",
            type_name: "Option<Handle<()>>",
            bytes: size_of::<Option<Handle<()>>>(),
            lives_in: LivesIn::TableEntry,
        },
        Record {
            what: "stage-greenlet's record of the greenlet: saved registers, parent, its stack",
            type_name: "Rc<Inner> (stage-greenlet's, private)",
            bytes: stage_greenlet::Greenlet::record_bytes(),
            lives_in: LivesIn::OwnAllocation,
        },
        Record {
            what: "the greenlet's name, outcome and result, shared with its handles",
            type_name: "Rc<Shared<()>>",
            bytes: in_rc::<Shared<()>>(),
            lives_in: LivesIn::OwnAllocation,
        },
        Record {
            what: "the hub's record of the greenlet: how to switch to it, what it waits on",
            type_name: "Box<Task>",
            bytes: size_of::<Task>(),
            lives_in: LivesIn::OwnAllocation,
        },
        Record {
            what: "the socket's readiness and the greenlet waiting for it",
            type_name: "Rc<IoSlot>",
            bytes: in_rc::<IoSlot>(),
            lives_in: LivesIn::OwnAllocation,
        },
    ]
}

/// What `records` take of the heap at the least: each allocation its
/// allocator's chunk, each table entry its size (a table that doubles
/// holds up to twice that).
///
/// ```
/// use stage_hub::hub::footprint::{heap_bytes, per_connection};
/// assert!(heap_bytes(&per_connection()) > 200);
/// ```
pub fn heap_bytes(records: &[Record]) -> usize {
    records
        .iter()
        .map(|r| match r.lives_in {
            LivesIn::OwnAllocation => malloc_chunk(r.bytes),
            LivesIn::TableEntry => r.bytes,
        })
        .sum()
}

/// The bytes glibc's allocator takes for a block of `n`: 8 bytes of
/// header, rounded up to 16, at least 32.
pub fn malloc_chunk(n: usize) -> usize {
    (n + 8).next_multiple_of(16).max(32)
}
