//! Greenlet stacks: guarded, sized, pooled.
//!
//! Each stack is the `context` crate's [`ProtectedFixedSizeStack`]: an
//! anonymous `mmap` whose lowest page is made inaccessible with `mprotect`,
//! so running off the end faults instead of scribbling over a neighbour.
//! That costs two syscalls and two kernel memory mappings per stack, so a
//! dead greenlet's stack goes back to a per-thread pool and the next
//! greenlet of the same size takes it without a syscall.
//!
//! The only `unsafe` here is telling valgrind where the stacks are (see
//! `valgrind` below): without it, memcheck takes a switch to a stack less than
//! 2 MB away for a huge stack frame and reports nonsense.

use std::cell::RefCell;
use std::io;

use context::stack::{ProtectedFixedSizeStack, Stack, StackError};

use crate::error::GreenletError;

/// The stack size a greenlet gets unless its builder says otherwise: 128 KiB.
///
/// Only touched pages become resident, so this is address space, not memory:
/// a greenlet that runs a short loop costs a page or two. 128 KiB is enough
/// for a debug build's formatting and panic machinery (which print a
/// backtrace from the greenlet's own stack) with room to spare, while 10,000
/// greenlets reserve a little over 1 GiB of address space, which a 64-bit
/// process does not notice.
pub const DEFAULT_STACK_SIZE: usize = 128 * 1024;

/// The smallest stack we hand out: enough for `catch_unwind`, a panic's
/// bookkeeping and a few frames of user code.
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// How many dead greenlets' stacks a thread keeps for reuse. Beyond this a
/// finished greenlet's stack is unmapped: a burst of 100,000 greenlets should
/// not pin 100,000 stacks for the rest of the process.
pub const POOL_CAPACITY: usize = 256;

const PAGE: usize = 4096;

/// A guarded stack registered with valgrind (a no-op when not under it).
pub(crate) struct GuardedStack {
    stack: ProtectedFixedSizeStack,
    valgrind_id: usize,
}

impl GuardedStack {
    /// The stack, for `Context::new`.
    pub(crate) fn stack(&self) -> &Stack {
        &self.stack
    }

    /// The usable size in bytes (the guard page not included).
    pub(crate) fn size(&self) -> usize {
        self.stack.len()
    }

    /// The guard page's address range, `[low, high)`.
    pub(crate) fn guard(&self) -> (usize, usize) {
        let bottom = self.stack.bottom() as usize;
        (bottom - PAGE, bottom)
    }
}

impl Drop for GuardedStack {
    fn drop(&mut self) {
        valgrind::stack_deregister(self.valgrind_id);
    }
}

thread_local! {
    static POOL: RefCell<Vec<GuardedStack>> = const { RefCell::new(Vec::new()) };
}

/// The usable size a request of `requested` bytes gets: whole pages.
pub(crate) fn rounded_size(requested: usize) -> Result<usize, GreenletError> {
    let max = Stack::max_size().saturating_sub(2 * PAGE);
    let size = requested
        .checked_next_multiple_of(PAGE)
        .unwrap_or(usize::MAX);
    if !(MIN_STACK_SIZE..=max).contains(&size) {
        return Err(GreenletError::StackSize {
            requested,
            min: MIN_STACK_SIZE,
            max,
        });
    }
    Ok(size)
}

/// A stack of `size` usable bytes (already rounded): from the pool if one is
/// there, else freshly mapped.
pub(crate) fn take(size: usize) -> Result<GuardedStack, GreenletError> {
    let pooled = POOL
        .try_with(|pool| {
            let mut pool = pool.borrow_mut();
            let at = pool.iter().rposition(|s| s.size() == size)?;
            Some(pool.swap_remove(at))
        })
        .ok()
        .flatten();
    match pooled {
        Some(stack) => Ok(stack),
        None => allocate(size),
    }
}

/// Give a stack nobody runs on any more back to the pool (or unmap it).
pub(crate) fn give_back(stack: GuardedStack) {
    let _ = POOL.try_with(|pool| {
        if let Ok(mut pool) = pool.try_borrow_mut() {
            if pool.len() < POOL_CAPACITY {
                pool.push(stack);
            }
        }
    });
}

/// Whether this process runs under valgrind (natively: always `false`).
pub fn running_on_valgrind() -> bool {
    valgrind::running_on_valgrind()
}

/// How many stacks this thread's pool holds now.
pub fn pooled() -> usize {
    POOL.try_with(|pool| pool.borrow().len()).unwrap_or(0)
}

fn allocate(size: usize) -> Result<GuardedStack, GreenletError> {
    // `ProtectedFixedSizeStack::new(n)` maps n rounded down to a page, plus a
    // page, plus the guard: asking for exactly `size` gives `size` usable.
    match ProtectedFixedSizeStack::new(size) {
        Ok(stack) => {
            let valgrind_id =
                valgrind::stack_register(stack.bottom() as usize, stack.top() as usize);
            Ok(GuardedStack { stack, valgrind_id })
        }
        Err(StackError::ExceedsMaximumSize(max)) => Err(GreenletError::StackSize {
            requested: size,
            min: MIN_STACK_SIZE,
            max,
        }),
        Err(StackError::IoError(err)) => Err(classify(err, map_limit(), maps_in_use())),
    }
}

/// Tell "the kernel's mapping limit is reached" apart from plain out-of-memory:
/// both come back from `mmap`/`mprotect` as `ENOMEM`.
pub(crate) fn classify(err: io::Error, limit: Option<u64>, in_use: Option<u64>) -> GreenletError {
    match (err.raw_os_error(), limit, in_use) {
        // A stack needs two more mappings; a few spare for whatever else the
        // process mapped meanwhile.
        (Some(libc::ENOMEM), Some(limit), Some(in_use)) if in_use + 8 >= limit => {
            GreenletError::MapLimit { limit, in_use }
        }
        _ => GreenletError::Stack(err),
    }
}

fn map_limit() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Lines of `/proc/self/maps`, one per mapping. Counted through a buffer on
/// the stack: this runs when mmap has just failed, and reading the whole
/// file (megabytes at the limit) into a `Vec` may need the very mapping the
/// kernel refused, which would misreport the limit as plain out-of-memory.
fn maps_in_use() -> Option<u64> {
    use std::io::Read;
    let mut maps = std::fs::File::open("/proc/self/maps").ok()?;
    let mut buf = [0u8; 8192];
    let mut lines = 0u64;
    loop {
        match maps.read(&mut buf) {
            Ok(0) => return Some(lines),
            Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// Valgrind's client requests for stacks, as `valgrind.h` spells them for
/// x86-64. Natively the magic preamble is four rotations that add up to 128
/// bits (a no-op) and `xchg %rbx,%rbx`; valgrind recognises the sequence and
/// answers in `%rdx`.
mod valgrind {
    const RUNNING_ON_VALGRIND: usize = 0x1001;
    const STACK_REGISTER: usize = 0x1501;
    const STACK_DEREGISTER: usize = 0x1502;

    #[cfg(target_arch = "x86_64")]
    fn client_request(request: usize, arg1: usize, arg2: usize) -> usize {
        let args: [usize; 6] = [request, arg1, arg2, 0, 0, 0];
        let mut result: usize = 0;
        // SAFETY: the sequence only rotates %rdi by a full 128 bits (leaving
        // it unchanged, though declared clobbered) and exchanges %rbx with
        // itself; natively nothing else changes but the flags (the rotates
        // set CF and OF, so no `preserves_flags`) and the declared %rdx.
        // Under valgrind it reads the six words at `args`, which live on
        // this frame for the whole block.
        unsafe {
            std::arch::asm!(
                "rol rdi, 3",
                "rol rdi, 13",
                "rol rdi, 61",
                "rol rdi, 51",
                "xchg rbx, rbx",
                in("rax") args.as_ptr(),
                inout("rdx") result,
                out("rdi") _,
                options(nostack),
            );
        }
        result
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn client_request(_request: usize, _arg1: usize, _arg2: usize) -> usize {
        0
    }

    /// How many valgrinds deep we run: 0 natively.
    pub(super) fn running_on_valgrind() -> bool {
        client_request(RUNNING_ON_VALGRIND, 0, 0) != 0
    }

    /// Register `[low, high)` as a stack; returns valgrind's id (0 natively).
    pub(super) fn stack_register(low: usize, high: usize) -> usize {
        client_request(STACK_REGISTER, low, high)
    }

    /// Forget a stack registered with [`stack_register`].
    pub(super) fn stack_deregister(id: usize) {
        client_request(STACK_DEREGISTER, id, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_pages_and_refuse_tiny_stacks() {
        assert_eq!(
            rounded_size(DEFAULT_STACK_SIZE).unwrap(),
            DEFAULT_STACK_SIZE
        );
        assert_eq!(
            rounded_size(MIN_STACK_SIZE + 1).unwrap(),
            MIN_STACK_SIZE + PAGE
        );
        assert!(matches!(
            rounded_size(100),
            Err(GreenletError::StackSize { .. })
        ));
    }

    #[test]
    fn enomem_near_the_map_limit_names_the_sysctl() {
        let enomem = || io::Error::from_raw_os_error(libc::ENOMEM);
        let err = classify(enomem(), Some(65_530), Some(65_529));
        assert!(matches!(err, GreenletError::MapLimit { limit: 65_530, .. }));
        let text = err.to_string();
        assert!(
            text.contains("vm.max_map_count") && text.contains("sysctl -w"),
            "{text}"
        );
        // Far from the limit, ENOMEM is just out of memory.
        assert!(matches!(
            classify(enomem(), Some(65_530), Some(200)),
            GreenletError::Stack(_)
        ));
    }

    #[test]
    fn mappings_are_counted_one_per_line_of_proc_maps() {
        let Ok(text) = std::fs::read_to_string("/proc/self/maps") else {
            return; // not Linux
        };
        let counted = maps_in_use().unwrap();
        // Other test threads may map or unmap between the two reads.
        let lines = text.lines().count() as u64;
        assert!(counted.abs_diff(lines) < 64, "{counted} vs {lines}");
        assert!(counted > 0);
    }

    #[test]
    fn a_stack_is_reused_not_remapped() {
        let size = MIN_STACK_SIZE + 3 * PAGE; // a size no other test uses
        let first = take(size).unwrap();
        let bottom = first.stack().bottom();
        give_back(first);
        let again = take(size).unwrap();
        assert_eq!(again.stack().bottom(), bottom);
        assert_eq!(again.size(), size);
    }
}
