//! Stack overflow: a clear message instead of a bare segmentation fault.
//!
//! A greenlet that recurses too deep runs into its guard page, and the CPU
//! faults (SIGSEGV). The default action kills the process with no word about
//! which greenlet or why. This module installs a SIGSEGV/SIGBUS handler that
//! looks at the faulting address: if it lies in the running greenlet's guard
//! page, it writes (with `write(2)`, the only kind of output a signal handler
//! may do) the greenlet's name and stack size, and aborts. Any other fault is
//! passed to whatever handler was there before (Rust's own, which reports
//! overflows of the thread's native stack, or the default action).
//!
//! The handler must run on an *alternate* signal stack: the greenlet's own
//! stack is exactly what has no room left. Rust gives every thread it starts
//! one; `install` (run on every greenlet creation) adds one to a thread
//! that lacks it.

use std::cell::Cell;
use std::fmt::Write as _;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::{Once, OnceLock};

use crate::switch;

/// The handlers that were installed before ours, to chain to.
static PREVIOUS: OnceLock<[libc::sigaction; 2]> = OnceLock::new();
/// Ours is installed (after `PREVIOUS` is filled in).
static INSTALLED: Once = Once::new();

const SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// Alternate signal stack size: the handler formats one line; this is ample.
const ALT_STACK_SIZE: usize = 64 * 1024;

thread_local! {
    static ALT_STACK_CHECKED: Cell<bool> = const { Cell::new(false) };
}

/// Install the handler (once per process) and make sure this thread has an
/// alternate signal stack (once per thread). Called on every greenlet
/// creation; after the first call on a thread it is a flag read and an
/// atomic load.
pub(crate) fn install() {
    if !ALT_STACK_CHECKED.with(Cell::get) {
        ALT_STACK_CHECKED.with(|c| c.set(true));
        ensure_alt_stack();
    }
    INSTALLED.call_once(|| {
        // Record the handlers already there *before* ours goes in, so that a
        // fault on another thread in between still finds them to chain to.
        PREVIOUS.get_or_init(|| SIGNALS.map(current_action));
        for sig in SIGNALS {
            let mut action = zeroed_action();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            // SAFETY: `action` is fully initialised and `handler` has the
            // three-argument signature SA_SIGINFO promises.
            unsafe {
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(sig, &action, ptr::null_mut());
            }
        }
    });
}

/// The disposition `sig` has now.
fn current_action(sig: libc::c_int) -> libc::sigaction {
    let mut old = zeroed_action();
    // SAFETY: a null new action only queries the current one into `old`.
    unsafe { libc::sigaction(sig, ptr::null(), &mut old) };
    old
}

fn zeroed_action() -> libc::sigaction {
    // SAFETY: `sigaction` is a plain C struct for which all-zero bytes is a
    // valid value (SIG_DFL, no flags, empty mask).
    unsafe { MaybeUninit::zeroed().assume_init() }
}

fn ensure_alt_stack() {
    let mut current = libc::stack_t {
        ss_sp: ptr::null_mut(),
        ss_flags: 0,
        ss_size: 0,
    };
    // SAFETY: a null new-stack pointer only queries the current one.
    let queried = unsafe { libc::sigaltstack(ptr::null(), &mut current) };
    if queried != 0 || current.ss_flags & libc::SS_DISABLE == 0 {
        return; // the thread has one (Rust's, usually)
    }
    // SAFETY: an anonymous private mapping; we check the result. It is
    // never unmapped: a thread's alternate stack must outlive the thread's
    // last possible signal, and this costs one mapping per foreign thread.
    let memory = unsafe {
        libc::mmap(
            ptr::null_mut(),
            ALT_STACK_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if memory == libc::MAP_FAILED {
        return; // overflows on this thread will be bare SIGSEGVs
    }
    let stack = libc::stack_t {
        ss_sp: memory,
        ss_flags: 0,
        ss_size: ALT_STACK_SIZE,
    };
    // SAFETY: `stack` describes the mapping just made, which is never freed.
    unsafe { libc::sigaltstack(&stack, ptr::null_mut()) };
}

/// A fixed buffer to format the message in without allocating.
struct Line {
    bytes: [u8; 512],
    len: usize,
}

impl std::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.bytes.len() - self.len;
        let n = s.len().min(room);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ucontext: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SIGSEGV/SIGBUS.
    let addr = unsafe { (*info).si_addr() } as usize;
    let running = switch::current_raw();
    if !running.is_null() {
        // SAFETY: the running greenlet is alive (see `switch::current`), and
        // `overflow_info` reads only fields that do not change while it runs
        // (plain ones, and its stack without borrowing the `RefCell`), so
        // reading them from a handler that interrupted arbitrary code is
        // sound.
        if let Some((name, id, size)) = unsafe { (*running).overflow_info(addr) } {
            let mut line = Line {
                bytes: [0; 512],
                len: 0,
            };
            let _ = match name {
                Some(name) => write!(line, "\nstage-greenlet: greenlet `{name}`"),
                None => write!(line, "\nstage-greenlet: greenlet `Greenlet-{id}`"),
            };
            let _ = writeln!(
                line,
                " overflowed its stack of {size} bytes (it ran into the guard page at \
                 {addr:#x}). Recurse less, or give it a bigger stack with \
                 Greenlet::builder().stack_size(..). Aborting."
            );
            // SAFETY: write(2) and abort(3) are async-signal-safe; the buffer
            // is ours.
            unsafe {
                libc::write(2, line.bytes.as_ptr().cast(), line.len);
                libc::abort();
            }
        }
    }
    chain(sig, info, ucontext);
}

/// Not ours: hand the fault to the handler that was there before.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ucontext: *mut libc::c_void) {
    let index = usize::from(sig == libc::SIGBUS);
    let previous = PREVIOUS.get().map(|p| p[index].sa_sigaction);
    let flags = PREVIOUS.get().map_or(0, |p| p[index].sa_flags);
    match previous {
        Some(h) if h != libc::SIG_DFL && h != libc::SIG_IGN => {
            if flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous handler was registered with SA_SIGINFO,
                // so it has this signature; we pass what the kernel gave us.
                unsafe {
                    let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                        std::mem::transmute(h);
                    f(sig, info, ucontext);
                }
            } else {
                // SAFETY: registered without SA_SIGINFO: one argument.
                unsafe {
                    let f: extern "C" fn(libc::c_int) = std::mem::transmute(h);
                    f(sig);
                }
            }
        }
        _ => {
            // Restore the default action; returning re-executes the faulting
            // instruction, which now kills the process the usual way.
            let action = zeroed_action();
            // SAFETY: installing SIG_DFL is always sound.
            unsafe { libc::sigaction(sig, &action, ptr::null_mut()) };
        }
    }
}
