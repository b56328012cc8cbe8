//! What can go wrong when a greenlet waits, said so the caller knows what to do.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::report::human_seconds;

/// Why a wait, a join or a spawn did not give what was asked for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HubError {
    /// Nothing can ever wake the caller: no greenlet is ready, no timer is
    /// set, no greenlet waits on a socket and no blocking job is running.
    /// The report names every waiting greenlet and what it waits on.
    Deadlock(Arc<Deadlock>),
    /// The greenlet (or the `spawn_blocking` job) panicked; its panic is its
    /// result.
    Panicked {
        /// Who panicked.
        name: String,
        /// The panic message, with where it was raised when known.
        message: String,
    },
    /// The greenlet was killed before it returned a value.
    Killed {
        /// The greenlet that was killed.
        name: String,
    },
    /// A time limit ran out (`join_timeout`, `joinall`'s timeout, or
    /// [`with_timeout`](crate::with_timeout)).
    TimedOut {
        /// The limit that was set.
        limit: Duration,
        /// How long the caller actually waited.
        elapsed: Duration,
    },
    /// A greenlet (or the hub itself) could not be created; the message is
    /// the greenlet crate's, and says what to do (for instance how to raise
    /// `vm.max_map_count`).
    Spawn(String),
    /// Another handle's `join` already took the greenlet's return value (a
    /// value moves out once; `Handle::get` clones it, for any number of
    /// handles).
    ValueTaken {
        /// The greenlet whose value was taken.
        name: String,
    },
    /// The thread is exiting and its hub is closed: its greenlets are being
    /// killed, and nothing can wait or spawn there any more. (A destructor
    /// of a greenlet killed at thread exit sees this from its waits.)
    Closed,
}

impl HubError {
    /// The error of a wait whose `deadline` passed; it began at `start`.
    /// Waits read `start` only when they have a deadline: one without
    /// cannot time out, and a clock read is a good share of what a wait
    /// costs.
    pub(crate) fn timed_out(deadline: Option<Instant>, start: Option<Instant>) -> HubError {
        match (deadline, start) {
            (Some(deadline), Some(start)) => HubError::TimedOut {
                limit: deadline.saturating_duration_since(start),
                elapsed: start.elapsed(),
            },
            _ => HubError::TimedOut {
                limit: Duration::ZERO,
                elapsed: Duration::ZERO,
            },
        }
    }

    /// When a wait with `deadline` begins, as [`HubError::timed_out`] wants
    /// it: the clock is read only if there is a deadline (see there why).
    pub(crate) fn start_for(deadline: Option<Instant>) -> Option<Instant> {
        deadline.map(|_| Instant::now())
    }

    /// The `…_timeout` form of a `…_until` wait: run `wait_until` with a
    /// deadline `limit` from now; its timeout says `limit` and how long the
    /// wait took.
    pub(crate) fn within<T>(
        limit: Duration,
        wait_until: impl FnOnce(Option<Instant>) -> Result<T, HubError>,
    ) -> Result<T, HubError> {
        let start = Instant::now();
        wait_until(Some(start + limit)).map_err(|e| e.with_limit(limit, start))
    }

    /// A timeout's error restated with the caller's own `limit` and start.
    pub(crate) fn with_limit(self, limit: Duration, start: Instant) -> HubError {
        match self {
            HubError::TimedOut { .. } => HubError::TimedOut {
                limit,
                elapsed: start.elapsed(),
            },
            other => other,
        }
    }

    /// Whether this is the "nothing can wake you" error.
    pub fn is_deadlock(&self) -> bool {
        matches!(self, HubError::Deadlock(_))
    }

    /// Whether a time limit ran out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, HubError::TimedOut { .. })
    }
}

impl fmt::Display for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HubError::Deadlock(report) => report.fmt(f),
            HubError::Panicked { name, message } => {
                write!(f, "greenlet `{name}` panicked: {message}")
            }
            HubError::Killed { name } => {
                write!(f, "greenlet `{name}` was killed before it returned a value")
            }
            HubError::TimedOut { limit, elapsed } => write!(
                f,
                "timed out: the limit was {}, {} had passed",
                human_seconds(limit.as_secs_f64()),
                human_seconds(elapsed.as_secs_f64())
            ),
            HubError::Spawn(why) => write!(f, "cannot start a greenlet: {why}"),
            HubError::ValueTaken { name } => write!(
                f,
                "the value of greenlet `{name}` was already taken by another handle's join: \
                 use get() to read it from several handles"
            ),
            HubError::Closed => write!(
                f,
                "this thread's hub is closed: the thread is exiting and its greenlets are \
                 being killed, so nothing can wait or be spawned here any more"
            ),
        }
    }
}

impl std::error::Error for HubError {}

/// Every greenlet that was waiting when the hub found that none could ever
/// be woken, and what each waited on.
///
/// ```
/// use stage_hub::{spawn, Builder, Event, Queue};
/// let never = Event::new();
/// let e = never.clone();
/// let consumer = Builder::new().name("consumer").spawn(move || e.wait())?;
/// let queue: Queue<u32> = Queue::unbounded();
/// let q = queue.clone();
/// let _getter = spawn(move || q.get());
/// let err = consumer.join().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "deadlock: this wait can never end (nothing is ready, no timer is set, no greenlet \
///      waits on a socket, no blocking job runs). Waiting: `main` on join(consumer); \
///      `consumer` on Event #1; `Greenlet-1` on Queue #2 (get: it is empty); make sure \
///      something sets, releases, puts or finishes what they wait for, or give the wait \
///      a timeout"
/// );
/// # Ok::<(), stage_hub::HubError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadlock {
    /// `(greenlet name, what it waits on)`, in the order the greenlets were
    /// created.
    pub blocked: Vec<(String, String)>,
}

impl fmt::Display for Deadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "deadlock: this wait can never end (nothing is ready, no timer is set, no greenlet \
             waits on a socket, no blocking job runs). Waiting:"
        )?;
        for (name, on) in &self.blocked {
            write!(f, " `{name}` on {on};")?;
        }
        write!(
            f,
            " make sure something sets, releases, puts or finishes what they wait for, \
             or give the wait a timeout"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadlock_message_names_everyone_and_says_what_to_do() {
        let report = Deadlock {
            blocked: vec![
                ("main".into(), "join(Greenlet-1)".into()),
                ("Greenlet-1".into(), "Event #1".into()),
            ],
        };
        let text = HubError::Deadlock(Arc::new(report)).to_string();
        assert!(text.contains("`main` on join(Greenlet-1)"), "{text}");
        assert!(text.contains("`Greenlet-1` on Event #1"), "{text}");
        assert!(text.contains("timeout"), "{text}");
    }
}
