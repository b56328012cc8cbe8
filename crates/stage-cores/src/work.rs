//! The CPU work of this stage, defined once: stage 1's counting loop.
//!
//! Greenlets help only while something waits. To show what they cannot do,
//! this stage gives them work that never waits — [`stage_serial::cpu::func1`],
//! the very loop stage 1 times — as whole tasks ([`task`]) and as a cost per
//! echo message ([`Working`]).

use std::io::{self, Read, Write};

/// Iterations of stage 1's loop done for each echo message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Work {
    /// Iterations of [`stage_serial::cpu::step`] per message (0: none).
    pub iterations: u64,
}

impl Work {
    /// `iterations` of stage 1's loop per message.
    pub fn new(iterations: u64) -> Work {
        Work { iterations }
    }

    /// Do the work once; returns the loop's sum, so it cannot be skipped.
    pub fn run(self) -> u64 {
        task(self.iterations)
    }
}

/// One CPU-bound task: stage 1's `func1`, `n` iterations, never waiting.
///
/// ```
/// assert_eq!(stage_cores::work::task(4), 1 + 2 + 3 + 4);
/// ```
pub fn task(n: u64) -> u64 {
    stage_serial::cpu::func1(n)
}

// ANCHOR: working
/// A stream that does [`Work`] for every message it reads: wrapped around a
/// socket and handed to stage 4's unchanged protocol function
/// ([`stage_hub::echo::protocol::serve_upper`]), it turns the notes' echo
/// server into one that computes as much per message as you ask.
///
/// ```
/// use stage_cores::work::{Work, Working};
/// let mut wire = std::io::Cursor::new(b"hello".to_vec());
/// let mut stream = Working::new(&mut wire, Work::new(1_000));
/// let mut buf = [0u8; 8];
/// assert_eq!(std::io::Read::read(&mut stream, &mut buf)?, 5); // and 1,000 iterations
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Working<S> {
    inner: S,
    work: Work,
}

impl<S> Working<S> {
    /// Wrap `inner`, doing `work` after each read that returns bytes.
    pub fn new(inner: S, work: Work) -> Working<S> {
        Working { inner, work }
    }
}

impl<S: Read> Read for Working<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 && self.work.iterations > 0 {
            std::hint::black_box(self.work.run());
        }
        Ok(n)
    }
}

impl<S: Write> Write for Working<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
// ANCHOR_END: working
