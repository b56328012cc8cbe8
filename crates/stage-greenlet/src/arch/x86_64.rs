//! Our switch on x86-64 (System V): ten instructions of inline assembly.
//!
//! # What has to survive a switch
//!
//! A suspended greenlet is a stack whose owner is in the middle of a call
//! to `switch`. When it is resumed, the code after that call
//! must find every register the calling convention says a call preserves:
//! `rbx`, `rbp`, `r12`–`r15` and `rsp` (and the floating-point control
//! words, see below). Everything else a call may clobber anyway.
//!
//! The switch is inline assembly that tells the compiler it clobbers all of
//! them but `rbx`, `rbp` and `rsp`. The compiler then keeps across it only
//! the values it still needs, in its own stack slots or in `rbx`/`rbp` —
//! often nothing at all in `r12`–`r15`. The assembly saves the three the
//! compiler cannot be told about (Rust reserves `rbx` and `rbp` for LLVM's
//! own use) and the address to resume at, on the stack it leaves; the stack
//! pointer is then all there is to remember of it. That address is the
//! `Context`.
//!
//! # A suspended stack
//!
//! ```text
//!   a SUSPENDED greenlet's stack                 its Context points at the
//!   (grows down)                                 lowest of these 24 bytes
//!
//!   high  +---------------------------+
//!         | its frames: locals of     |
//!         | every function between    |
//!         | its entry and the switch, |
//!         | spilled values included   |
//!         +---------------------------+ <- rsp when it entered the asm
//!         | rbp                       |  +16
//!         | rbx                       |  +8
//!         | rip: the label `2:` just  |  +0   <- Context
//!         |   after its asm block     |
//!         +---------------------------+
//!         |   ... unused ...          |
//!         +===========================+
//!         |  guard page (no access)   |  a fault here is a stack overflow
//!         +===========================+
//! ```
//!
//! # The switch, step by step
//!
//! The running side enters the asm with `rdi` = the target's Context,
//! `rsi` = the word to pass (a message's address, see `switch`) and, in a
//! register the compiler picks (`save_to`), where its own Context is to be
//! kept (its greenlet's `saved` field):
//!
//! ```text
//!   lea  rax, [rip + 2f]   rax = where we resume: label 2, below
//!   push rbp               ┐
//!   push rbx               ├ our three words, the picture above
//!   push rax               ┘
//!   mov  [save_to], rsp    our Context, kept where our greenlet keeps it
//!   mov  rsp, rdi          ── now on the target's stack ──
//!   pop  rax               rax = the target's resume address
//!   pop  rbx               ┐ its rbx and rbp back; rsp is now where
//!   pop  rbp               ┘ it was when it entered its own asm
//!   jmp  rax               into the target, at its label 2
//! 2:
//! ```
//!
//! The target continues after *its own* asm block, and finds in `rsi` the
//! word the sender left there: that is what its `switch` returns. The
//! suspended side keeps nothing but its 24 bytes and the pointer to them;
//! a round trip runs the ten instructions twice, against `jump_fcontext`'s
//! twenty-four (see "What it does not do").
//!
//! # A fresh stack
//!
//! `Context::new` writes the same three words at the top of an unused
//! stack, so that the first switch to it needs nothing special:
//!
//! ```text
//!   high  +---------------------------+ <- top, 16-aligned
//!         | rbp = 0                   |  +16  the end of the frame chain
//!         | rbx = entry               |  +8   the function to call
//!         | rip = trampoline          |  +0   <- Context
//!         +---------------------------+
//! ```
//!
//! The first switch pops them and jumps to `trampoline`, with `rsp` back
//! at the 16-aligned top and the starter's word in `rsi`. The trampoline
//! moves the word to `rdi`, the first argument, and calls `rbx`: the entry
//! function runs with the stack aligned as a call expects. It never
//! returns (it leaves by a last switch), and the trampoline tells unwinders
//! that its own return address is undefined, so a backtrace taken on a
//! greenlet ends there instead of reading whatever lies above the top.
//!
//! # What it does not do
//!
//! - **The floating-point control words** (`mxcsr`, the x87 control word)
//!   are callee-saved in the ABI, and `jump_fcontext` saves and restores
//!   them on every switch (the restores are slow, serialising instructions).
//!   We do not: a greenlet that changes the rounding mode changes it for the
//!   thread, like any other thread-wide state (see the chapter's caveats).
//!   Rust code never changes them.
//! - **Control-flow enforcement** (CET shadow stacks): `jmp rax` is not a
//!   `ret`, so no shadow stack would be consulted, but one would have to be
//!   switched too. Linux enables shadow stacks only for programs built for
//!   them, and Rust binaries are not.

use std::arch::{asm, naked_asm};
use std::cell::Cell;
use std::ptr::NonNull;

use context::stack::Stack;

use super::EntryFn;

/// A suspended stack: the address of its saved `rip`, `rbx`, `rbp` (see the
/// picture above). Not `Copy`: a context is resumed once, and then it is
/// stale — the stack it names has run on.
#[repr(transparent)]
pub(crate) struct Context(NonNull<usize>);

impl Context {
    /// A context that, when first switched to, calls `entry` at the top of
    /// `stack` with the word the switch passed.
    ///
    /// # Safety
    /// `stack` must be unused (nothing else runs on it or points into it)
    /// and outlive every use of the context; its top must be writable.
    pub(crate) unsafe fn new(stack: &Stack, entry: EntryFn) -> Context {
        let top = stack.top() as usize & !15;
        let frame = (top - 3 * size_of::<usize>()) as *mut usize;
        // SAFETY: the three words are just below the top of a stack the
        // caller guarantees is ours and writable; `frame` is 8-aligned (16
        // minus 24) and not null (it is in a mapping).
        unsafe {
            frame.write(trampoline as *const () as usize);
            frame.add(1).write(entry as *const () as usize);
            frame.add(2).write(0);
            Context(NonNull::new_unchecked(frame))
        }
    }

    /// Ask the processor to start loading the `lines` cache lines of the
    /// suspended stack from its saved words upward (the frames its resume
    /// returns through) into its second-level cache, and go on at once.
    #[inline(always)]
    pub(crate) fn prefetch(&self, lines: usize) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        let first = self.0.as_ptr() as usize & !63;
        for line in 0..lines {
            let at = (first + line * 64) as *const i8;
            // SAFETY: a prefetch is a hint and nothing more: it reads no
            // value into a register, cannot fault (an address that is not
            // mapped is dropped) and changes nothing a program can observe.
            // It needs SSE, which every x86_64 processor has.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(at) };
        }
    }
}

// ANCHOR: switch
/// Suspend the running stack, keeping its context in `*save_to`, and
/// resume `to`, passing `data`. Returns when something switches back to
/// us: the word it passed.
///
/// Always inlined: the compiler then sees which registers are live across
/// the switch at each call site, and the resumed side goes on in its
/// caller's code with no `ret` whose target the CPU's return-stack
/// predictor would have from the other stack.
///
/// # Safety
/// `to` must be a stack of this thread suspended in `switch` (or made by
/// `Context::new`) that nothing else will resume, whose frames are all
/// alive; `save_to` must stay valid until whoever resumes us has read it.
/// Whoever switches back to us must pass a word we can use.
#[inline(always)]
pub(crate) unsafe fn switch(save_to: &Cell<Option<Context>>, to: Context, data: usize) -> usize {
    let received: usize;
    // SAFETY: what the pictures above show. We push three words on our own
    // stack (allowed: without `nostack` the compiler keeps no red zone
    // below rsp here) and restore rbx and rbp before any of the compiler's
    // code runs again: on the target, from its three words; on us, from
    // ours, when someone resumes us. Every other register but rsp is
    // declared clobbered (clobber_abi: the caller-saved ones, the vector and
    // x87 registers; r12–r15 by name), and rsp is back at its value on entry
    // when the code after `2:` runs. `save_to` is an `Option<Context>` in a
    // `Cell`: one pointer-sized word (a `repr(transparent)` `NonNull` is
    // guaranteed the null-pointer layout), and we write a non-null pointer
    // into it, a `Some`. Memory is not `nomem`: the target reads the message
    // in our frame, and we write `save_to`.
    unsafe {
        asm!(
            "lea rax, [rip + 2f]",
            "push rbp",
            "push rbx",
            "push rax",
            "mov [{save_to}], rsp",
            "mov rsp, rdi",
            "pop rax",
            "pop rbx",
            "pop rbp",
            "jmp rax",
            "2:",
            in("rdi") to.0.as_ptr(),
            inout("rsi") data => received,
            save_to = in(reg) save_to.as_ptr(),
            // Written before `save_to` is read: not a register it may share.
            out("rax") _,
            lateout("r12") _,
            lateout("r13") _,
            lateout("r14") _,
            lateout("r15") _,
            clobber_abi("C"),
        );
    }
    received
}
// ANCHOR_END: switch

/// Where a fresh stack's first switch lands (see "A fresh stack"): call the
/// entry function in `rbx` with the starter's word, never to return.
///
/// # Safety
/// Only reached by the first switch to a `Context::new` stack.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() -> ! {
    naked_asm!(
        // Unwind information for this function alone: it has no caller,
        // so a backtrace stops here instead of reading garbage above.
        ".cfi_startproc",
        ".cfi_undefined rip",
        // The entry's argument: the word the first switch passed.
        "mov rdi, rsi",
        "call rbx",
        // The entry function never returns.
        "ud2",
        ".cfi_endproc",
    )
}
