//! Which build produced the figures.
//!
//! An unoptimized build can be ten times slower than a release build, and not
//! uniformly so: it distorts ratios, not just totals. Every table says which
//! build it came from, and a debug build says loudly that its figures are not
//! the lesson's.

use std::fmt;

/// The build profile the harness (and so the stage using it) was compiled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// Whether this is an optimized build.
    pub optimized: bool,
}

impl Profile {
    /// The profile of the running binary.
    ///
    /// Cargo's `dev` profile turns on debug assertions and turns off the
    /// optimizer; `release` and `bench` do the opposite. Debug assertions are
    /// the signal visible to code, so they decide.
    pub fn current() -> Self {
        Profile {
            optimized: !cfg!(debug_assertions),
        }
    }

    /// `"release"` or `"debug"`, as the JSON rows carry it.
    pub fn name(&self) -> &'static str {
        if self.optimized {
            "release"
        } else {
            "debug"
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.optimized {
            write!(f, "optimized (release) build")
        } else {
            write!(
                f,
                "DEBUG build: unoptimized, figures are not representative; add --release"
            )
        }
    }
}
