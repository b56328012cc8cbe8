//! Greenlet stacks: guarded, sized, pooled.
//!
//! Each stack is the `context` crate's [`ProtectedFixedSizeStack`]: an
//! anonymous `mmap` whose lowest page is made inaccessible with `mprotect`,
//! so running off the end faults instead of scribbling over a neighbour.
//! That costs two system calls to make, one to unmake, and two kernel
//! memory mappings while it exists. So a dead greenlet's stack goes back to
//! a pool, and the next greenlet of the same size takes it with no system
//! call at all:
//!
//! ```text
//!   give_back(stack)                              take(size)
//!         |                                             |
//!   fewer than HOT_STACKS hot? --yes--> hot pool  --->  1. a hot one: pages and all
//!         | no                          (resident)      2. a cold one: pages come
//!   process within pool_bound()? --yes--> madvise        back zeroed as touched
//!         | no                     (DONTNEED: pages     3. none: mmap + mprotect
//!   munmap                          freed, mapping       (refused near the map limit:
//!                                   kept) --> cold pool    drop the pools, try again)
//! ```
//!
//! The *hot* pool, one per thread, serves a program that makes and ends
//! greenlets in a loop: its next greenlet gets the last one's stack,
//! resident pages and all, without a lock. The *cold* pool, one for the
//! process, serves bursts (30,000 greenlets at once, then 30,000 more): a
//! cold stack keeps its mappings but gives its memory back to the kernel,
//! so a burst that is over holds address space and mappings, not memory.
//! It is shared because mappings are counted per process: a burst's stacks
//! kept by one thread would otherwise hold the mappings another thread
//! needs for its own greenlets, out of its reach.
//! Its bound is in mappings, the resource the kernel counts
//! (`vm.max_map_count`): the pools keep a stack only while the process's
//! greenlet stacks, in use and pooled, take at most [`pool_bound`]
//! stacks' worth of mappings, leaving [`RESERVED_MAPPINGS`] to everything
//! else. And if mapping a new stack fails all the same, the thread's hot
//! pool and the cold pool are unmapped and the mapping is tried once more.
//!
//! The `unsafe` here is telling valgrind where the stacks are (see
//! `valgrind` below: without it, memcheck takes a switch to a stack less than
//! 2 MB away for a huge stack frame and reports nonsense), and giving a cold
//! stack's pages back (`madvise`).

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

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

/// How many dead greenlets' stacks a thread keeps *hot*: resident, pages
/// and all, for the next greenlet. A program that makes and ends greenlets
/// in a loop never gets past these; they hold at most a megabyte or two.
pub const HOT_STACKS: usize = 256;

/// Kernel memory mappings the pools leave to everything else in the
/// process (its heap, its threads' stacks, its libraries): see
/// [`pool_bound`].
pub const RESERVED_MAPPINGS: usize = 4_096;

/// `vm.max_map_count`'s default, for a system that does not say.
const DEFAULT_MAP_LIMIT: usize = 65_530;

/// Greenlet stacks this process has mapped and not unmapped: in use,
/// pooled on any thread, or leaked with frames still on them.
static MAPPED: AtomicUsize = AtomicUsize::new(0);

const PAGE: usize = 4096;

/// How many cache-line offsets a greenlet's first frame is spread over: a
/// stack's top is a page boundary, so without an offset the frames every
/// greenlet is parked in (its handler down to the switch) sit at the same
/// offsets within a page in every stack. A cache picks a line's set from
/// the address bits just above the line's, those same page offsets, so ten
/// thousand parked greenlets' hot lines would compete for the few sets those
/// offsets name, a fraction of the cache, and miss long before it is full.
/// Each stack starts its first frame 0 to [`COLOURS`] - 1 lines (at most
/// 1 KiB) below its top, a colour picked from where the stack is mapped:
/// the hot lines spread over that many more sets.
/// (The name is the allocators' and kernels' own: page colouring.) The
/// kilobyte at most comes out of the stack's first page, which a parked
/// echo connection does not fill (see the hub chapter).
pub const COLOURS: usize = 16;

/// A cache line, as every x86-64 and most AArch64 processors have it.
const LINE: usize = 64;

/// How far below `top` a stack's first frame starts (see [`COLOURS`]):
/// worked out from the stack's address, not kept beside it, because a
/// word more in the greenlet's record is a bigger allocator chunk for
/// every greenlet. Fibonacci hashing of the page number: stacks mapped
/// side by side, and stacks of any size, get colours spread evenly.
fn colour(top: usize) -> usize {
    let page = (top / PAGE) as u64;
    let hashed = page.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60; // 0..16
    hashed as usize % COLOURS * LINE
}

/// A guarded stack registered with valgrind (a no-op when not under it).
pub(crate) struct GuardedStack {
    stack: ProtectedFixedSizeStack,
    valgrind_id: usize,
}

// SAFETY: a `GuardedStack` owns its mapping alone (nothing else points
// into it while it is pooled, and a live greenlet's stack is owned by that
// greenlet's `Inner`, which is itself `!Send`). The mapping is plain
// process memory, and unmapping it (`Drop`) or deregistering it with
// valgrind works the same from any thread. Only pooled stacks cross
// threads, through the cold pool.
unsafe impl Send for GuardedStack {}

impl GuardedStack {
    /// The whole stack, its mapping's top included.
    pub(crate) fn stack(&self) -> &Stack {
        &self.stack
    }

    /// The stack a greenlet runs on, for `Context::new`: the mapping with
    /// its top lowered by this stack's colour (see [`COLOURS`]).
    pub(crate) fn coloured(&self) -> Stack {
        let top = self.stack.top() as usize;
        let top = (top - colour(top)) as *mut libc::c_void;
        // SAFETY: `top` is at most `COLOURS` lines below the mapping's top
        // and so still inside it (a stack is at least MIN_STACK_SIZE, 16
        // KiB), above its bottom; the `Stack` made here only names that
        // range, and `self` keeps the mapping alive for as long as the
        // caller holds `self` (the greenlet's `Inner` holds both).
        unsafe { Stack::new(top, self.stack.bottom()) }
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

impl GuardedStack {
    /// Give the stack's memory back to the kernel, keeping its mappings:
    /// its pages read as zeros when next touched.
    fn release_pages(&self) {
        let (low, high) = (self.stack.bottom() as usize, self.stack.top() as usize);
        // SAFETY: `[low, high)` is this stack's own mapping, and nothing runs
        // on it or points into it: it comes back from a greenlet that is dead
        // or never ran (`give_back`), so its contents are garbage. DONTNEED
        // on a private anonymous mapping only swaps its pages for zero pages.
        let done =
            unsafe { libc::madvise(low as *mut libc::c_void, high - low, libc::MADV_DONTNEED) };
        // If it failed (it does not, on a mapping we own), the stack simply
        // keeps its pages.
        let _ = done;
    }
}

impl Drop for GuardedStack {
    fn drop(&mut self) {
        valgrind::stack_deregister(self.valgrind_id);
        MAPPED.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A thread's hot stacks, by size.
#[derive(Default)]
struct Pool {
    classes: Vec<SizeClass>,
    /// Stacks in `hot` over every class.
    hot: usize,
}

/// A thread's hot stacks of one size. Sizes are few: nearly every greenlet
/// has the default.
struct SizeClass {
    size: usize,
    hot: Vec<GuardedStack>,
}

/// The process's cold stacks (pages given back), by size: one lock, taken
/// only past a thread's [`HOT_STACKS`], that is in bursts.
static COLD: Mutex<Vec<(usize, Vec<GuardedStack>)>> = Mutex::new(Vec::new());

/// The cold pool, even if a thread panicked while holding it (a `Vec` push
/// or pop leaves it whole).
fn cold() -> std::sync::MutexGuard<'static, Vec<(usize, Vec<GuardedStack>)>> {
    COLD.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A cold stack of `size`, if the process has one.
fn take_cold(size: usize) -> Option<GuardedStack> {
    let mut cold = cold();
    cold.iter_mut().find(|(s, _)| *s == size)?.1.pop()
}

/// Keep `stack` cold (its pages are released first, outside the lock).
fn put_cold(stack: GuardedStack) {
    stack.release_pages();
    let size = stack.size();
    let mut cold = cold();
    match cold.iter_mut().find(|(s, _)| *s == size) {
        Some((_, stacks)) => stacks.push(stack),
        None => cold.push((size, vec![stack])),
    }
}

/// How many cold stacks of `size` (or of any size) the process keeps.
fn cold_len(size: Option<usize>) -> usize {
    cold()
        .iter()
        .filter(|(s, _)| size.is_none_or(|size| *s == size))
        .map(|(_, stacks)| stacks.len())
        .sum()
}

impl Pool {
    /// A hot stack of this thread's, else a cold one of the process's.
    fn take(&mut self, size: usize) -> Option<GuardedStack> {
        let hot = self.classes.iter_mut().find(|c| c.size == size);
        if let Some(stack) = hot.and_then(|c| c.hot.pop()) {
            self.hot -= 1;
            return Some(stack);
        }
        take_cold(size)
    }

    /// Keep `stack` hot, or cold if `keep_cold` says the process may (its
    /// pages are released first), else drop (unmap) it.
    fn give_back(&mut self, stack: GuardedStack, keep_cold: bool) {
        let size = stack.size();
        let at = match self.classes.iter().position(|c| c.size == size) {
            Some(at) => at,
            None => {
                self.classes.push(SizeClass {
                    size,
                    hot: Vec::new(),
                });
                self.classes.len() - 1
            }
        };
        let class = &mut self.classes[at];
        if self.hot < HOT_STACKS {
            class.hot.push(stack);
            self.hot += 1;
        } else if keep_cold {
            put_cold(stack);
        } else {
            drop(stack); // unmapped
        }
    }

    fn len(&self) -> usize {
        self.classes.iter().map(|c| c.hot.len()).sum()
    }
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool::default());
}

/// The most greenlet stacks the process keeps mapped for the pools' sake:
/// `(vm.max_map_count - RESERVED_MAPPINGS) / 2`, each stack being two
/// mappings (32,717 with the kernel's default limit). A dead greenlet's
/// stack is pooled only while the process's stacks, in use and pooled, are
/// within it; past it, it is unmapped. So the pools never hold more stacks
/// than the process once had in use at the same time, and never so many
/// that the other mappings a process needs could not fit beside them.
pub fn pool_bound() -> usize {
    static BOUND: OnceLock<usize> = OnceLock::new();
    *BOUND.get_or_init(|| {
        let limit = map_limit().and_then(|l| usize::try_from(l).ok());
        bound_for(limit.unwrap_or(DEFAULT_MAP_LIMIT))
    })
}

fn bound_for(map_limit: usize) -> usize {
    map_limit.saturating_sub(RESERVED_MAPPINGS) / 2
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
/// there, else freshly mapped. If the kernel refuses a new mapping, this
/// thread's pooled stacks (of every size) are unmapped and it is asked once
/// more.
pub(crate) fn take(size: usize) -> Result<GuardedStack, GreenletError> {
    let pooled = POOL
        .try_with(|pool| pool.try_borrow_mut().ok()?.take(size))
        .ok()
        .flatten();
    if let Some(stack) = pooled {
        return Ok(stack);
    }
    match allocate(size) {
        Err(GreenletError::MapLimit { .. } | GreenletError::Stack(_)) if drain() > 0 => {
            allocate(size)
        }
        result => result,
    }
}

/// Give a stack nobody runs on any more back to the pool (or unmap it).
pub(crate) fn give_back(stack: GuardedStack) {
    let keep_cold = MAPPED.load(Ordering::Relaxed) <= pool_bound();
    let _ = POOL.try_with(|pool| {
        if let Ok(mut pool) = pool.try_borrow_mut() {
            pool.give_back(stack, keep_cold);
        }
    });
}

/// Unmap every stack in this thread's hot pool and in the process's cold
/// pool; returns how many there were.
fn drain() -> usize {
    let hot = POOL
        .try_with(|pool| {
            pool.try_borrow_mut()
                .map(|mut pool| std::mem::take(&mut *pool).len())
                .unwrap_or(0)
        })
        .unwrap_or(0);
    // Taken out under the lock, unmapped outside it.
    let cold = std::mem::take(&mut *cold());
    hot + cold.iter().map(|(_, stacks)| stacks.len()).sum::<usize>()
}

/// Whether this process runs under valgrind (natively: always `false`).
pub fn running_on_valgrind() -> bool {
    valgrind::running_on_valgrind()
}

/// How many stacks this thread could take from the pools now: its own hot
/// ones and the process's cold ones.
pub fn pooled() -> usize {
    POOL.try_with(|pool| pool.borrow().len()).unwrap_or(0) + cold_len(None)
}

/// How many greenlet stacks the process has mapped now: in use, pooled on
/// any thread, or kept with frames on them by greenlets that never ended.
pub fn mapped() -> usize {
    MAPPED.load(Ordering::Relaxed)
}

fn allocate(size: usize) -> Result<GuardedStack, GreenletError> {
    // `ProtectedFixedSizeStack::new(n)` maps n rounded down to a page, plus a
    // page, plus the guard: asking for exactly `size` gives `size` usable.
    match ProtectedFixedSizeStack::new(size) {
        Ok(stack) => {
            let valgrind_id =
                valgrind::stack_register(stack.bottom() as usize, stack.top() as usize);
            MAPPED.fetch_add(1, Ordering::Relaxed);
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

    /// Write `byte` at the lowest usable address of `stack`.
    fn poke(stack: &GuardedStack, byte: u8) {
        // SAFETY: the stack is ours, mapped read-write, and nothing runs on it.
        unsafe { (stack.stack().bottom() as *mut u8).write_volatile(byte) }
    }

    /// The byte at the lowest usable address of `stack`.
    fn peek(stack: &GuardedStack) -> u8 {
        // SAFETY: as in `poke`.
        unsafe { (stack.stack().bottom() as *const u8).read_volatile() }
    }

    /// The cold pool is the process's: a test that drains it must not run
    /// beside one that counts on what it put there.
    fn cold_pool_to_myself() -> std::sync::MutexGuard<'static, ()> {
        static ALONE: Mutex<()> = Mutex::new(());
        ALONE
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[test]
    fn past_the_hot_stacks_a_stack_is_kept_cold_its_memory_given_back() {
        let _alone = cold_pool_to_myself();
        let size = MIN_STACK_SIZE + 5 * PAGE; // a size no other test uses
        let mut pool = Pool::default();
        let stacks: Vec<GuardedStack> = (0..=HOT_STACKS).map(|_| allocate(size).unwrap()).collect();
        let bottoms: Vec<_> = stacks.iter().map(|s| s.stack().bottom()).collect();
        for stack in stacks {
            poke(&stack, 7);
            pool.give_back(stack, true);
        }
        assert_eq!((pool.len(), pool.hot), (HOT_STACKS, HOT_STACKS));
        assert_eq!(cold_len(Some(size)), 1);
        // Hot ones first, their memory as it was; then the cold one: the
        // same mapping, its pages zero again.
        for _ in 0..HOT_STACKS {
            assert_eq!(peek(&pool.take(size).unwrap()), 7);
        }
        let cold = pool.take(size).unwrap();
        assert!(bottoms.contains(&cold.stack().bottom()));
        assert_eq!(peek(&cold), 0);
        assert!(pool.take(size).is_none());
    }

    #[test]
    fn past_the_bound_a_stack_is_unmapped_not_pooled() {
        let _alone = cold_pool_to_myself();
        // 65,530 mappings, 4,096 left to the rest, two per stack.
        assert_eq!(bound_for(65_530), 30_717);
        assert_eq!(bound_for(1_000), 0);
        let size = MIN_STACK_SIZE + 6 * PAGE;
        let mut pool = Pool::default();
        for _ in 0..HOT_STACKS {
            pool.give_back(allocate(size).unwrap(), false);
        }
        // Hot ones are kept whatever the bound; beyond them, only within it.
        pool.give_back(allocate(size).unwrap(), false);
        assert_eq!((pool.len(), cold_len(Some(size))), (HOT_STACKS, 0));
        pool.give_back(allocate(size).unwrap(), true);
        assert_eq!((pool.len(), cold_len(Some(size))), (HOT_STACKS, 1));
        assert!(pool.take(size).is_some());
    }

    #[test]
    fn the_greenlet_pool_bound_holds_the_lessons_thirty_thousand() {
        // The hub lesson puts 30,000 greenlets to sleep at once; with the
        // kernel's default limit, all their stacks fit the bound, so the
        // next 30,000 reuse them.
        if map_limit() == Some(DEFAULT_MAP_LIMIT as u64) {
            assert!(pool_bound() >= 30_000);
        }
    }

    #[test]
    fn drained_pools_are_empty() {
        let _alone = cold_pool_to_myself();
        let size = MIN_STACK_SIZE + 7 * PAGE;
        give_back(take(size).unwrap());
        assert!(pooled() >= 1);
        assert!(drain() >= 1);
        // Other test threads may pool cold stacks of their own sizes.
        let hot = POOL.with(|pool| pool.borrow().len());
        assert_eq!((hot, cold_len(Some(size))), (0, 0));
    }

    #[test]
    fn a_burst_kept_cold_by_one_thread_serves_another() {
        let _alone = cold_pool_to_myself();
        let size = MIN_STACK_SIZE + 9 * PAGE; // a size no other test uses
                                              // One thread ends a burst: past its hot stacks, they go cold.
        let bottoms = std::thread::spawn(move || {
            let stacks: Vec<_> = (0..HOT_STACKS + 3).map(|_| take(size).unwrap()).collect();
            let bottoms: Vec<usize> = stacks.iter().map(|s| s.stack().bottom() as usize).collect();
            stacks.into_iter().for_each(give_back);
            bottoms
        })
        .join()
        .unwrap();
        // That thread is gone with its hot pool; its cold stacks stay, and
        // this thread's next stacks are them, not new mappings.
        assert!(cold_len(Some(size)) >= 3);
        for _ in 0..3 {
            let stack = take(size).unwrap();
            assert!(bottoms.contains(&(stack.stack().bottom() as usize)));
        }
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
