//! Generators that show up on a timeline: every resume and every yield of
//! a generator made with [`traced`] is recorded in the active trace
//! (`--trace FILE`), one track per generator beside `main`.
//!
//! The `generator` crate has no hook of its own, so the watching happens
//! on the caller's side: a resume is a switch from `main` into the
//! generator's track, and its return is the switch back (`yield`, or
//! `return` when the body has finished). With no trace active, each call
//! costs one branch more than the bare generator's.
//!
//! ```
//! use generator::Gn;
//! let mut g = stage_generator::traced::traced("counter", Gn::<()>::new_scoped_local(|mut s| {
//!     s.yield_with(1);
//!     2
//! }));
//! assert_eq!((g.resume(), g.resume(), g.resume()), (Some(1), Some(2), None));
//! assert!(g.is_done());
//! ```

use std::cell::Cell;

use generator::LocalGenerator;
use trace::{Args, Trace};

/// The track of the code that resumes the generators.
const MAIN: u64 = 0;

/// A generator whose switches are recorded when a trace is active.
pub struct Traced<'a, A, T> {
    inner: LocalGenerator<'a, A, T>,
    watch: Option<(Trace, u64)>,
}

/// Wrap `inner`, naming its track `name` in the active trace (if any).
pub fn traced<'a, A, T>(name: &str, inner: LocalGenerator<'a, A, T>) -> Traced<'a, A, T> {
    thread_local! {
        static NEXT: Cell<u64> = const { Cell::new(1) };
    }
    let watch = trace::active().map(|trace| {
        let key = NEXT.with(|n| n.replace(n.get() + 1)) | 1 << 32;
        trace.running(MAIN, || "main".into());
        trace.name_track(key, name);
        (trace, key)
    });
    Traced { inner, watch }
}

impl<'a, A, T> Traced<'a, A, T> {
    /// Run the body up to its next yield: `Some(value)` yielded (or, at the
    /// end, returned), `None` once it has finished.
    #[inline]
    pub fn resume(&mut self) -> Option<T> {
        match self.watch {
            None => self.inner.resume(),
            Some(_) => self.watched(|g| g.resume()),
        }
    }

    /// Hand `value` to the paused yield and run to the next one; returns
    /// what that yields.
    #[inline]
    pub fn send(&mut self, value: A) -> T {
        match self.watch {
            None => self.inner.send(value),
            Some(_) => self.watched(|g| g.send(value)),
        }
    }

    /// [`send`](Self::send) with "nothing" allowed (`None` tells our
    /// consumers to finish).
    pub fn raw_send(&mut self, value: Option<A>) -> Option<T> {
        match self.watch {
            None => self.inner.raw_send(value),
            Some(_) => self.watched(|g| g.raw_send(value)),
        }
    }

    /// Whether the body has returned.
    pub fn is_done(&self) -> bool {
        self.inner.is_done()
    }

    // ANCHOR: watched
    #[cold]
    fn watched<R>(&mut self, f: impl FnOnce(&mut LocalGenerator<'a, A, T>) -> R) -> R {
        let Some((trace, key)) = &self.watch else {
            return f(&mut self.inner);
        };
        if self.inner.is_done() {
            return f(&mut self.inner); // nothing to switch to any more
        }
        let name = |_| String::new(); // both tracks were named in `traced`
        trace.switch(MAIN, *key, "resume", name);
        let out = f(&mut self.inner);
        let done = self.inner.is_done();
        if done {
            trace.instant(*key, "ends", Args::none());
        }
        trace.switch(*key, MAIN, if done { "return" } else { "yield" }, name);
        out
    }
    // ANCHOR_END: watched
}
