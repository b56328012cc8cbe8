//! A channel between threads whose receiving side waits in its hub.
//!
//! Inside one hub, greenlets pass values through a `stage_hub::Queue`: no
//! lock, because only one greenlet runs at a time. Between hubs that is no
//! longer true — two threads run at once — so the queue itself is behind a
//! `Mutex`, and what changes is how the receiver waits. It must not block its
//! thread (the other greenlets of its hub would freeze), so it parks in its
//! hub on a [`Wakeup`], and a sender, on whatever thread, rings it:
//!
//! ```text
//!   sender (any thread)                 receiver (a greenlet in hub B)
//!   ───────────────────                 ──────────────────────────────
//!                                       queue empty: wakeup.wait()  ── hub B runs others
//!   lock; push(value); unlock
//!   the receiver's RemoteWakeup.wake() ───────► hub B's poll sees its waker
//!                                       lock; pop(value); unlock
//! ```
//!
//! Values arrive in the order they were sent. Dropping every [`Sender`]
//! closes the channel: the receiver gets what is left, then
//! [`RecvError::Closed`]. Dropping the [`Receiver`] drops whatever is queued
//! and makes [`Sender::send`] fail, so a value (and what it owns, such as
//! another channel's sender) never waits for a reader that is gone.

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use stage_hub::hub::{RemoteWakeup, Wakeup};
use stage_hub::HubError;

/// The state both ends share, behind one lock.
struct State<T> {
    queue: VecDeque<T>,
    senders: usize,
    receiver_alive: bool,
    /// How to wake the receiver while it waits.
    waiting: Option<RemoteWakeup>,
}

struct Shared<T> {
    state: Mutex<State<T>>,
}

impl<T> Shared<T> {
    /// The lock, even if a thread panicked while holding it: every update
    /// below leaves the state consistent before anything can panic.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Create a channel: the [`Sender`] may go to any thread (and be cloned),
/// the [`Receiver`] to the thread whose hub will wait on it.
///
/// ```
/// let (tx, rx) = stage_cores::channel::<u64>();
/// let producer = std::thread::spawn(move || {
///     for i in 1..=3 {
///         tx.send(i * 10).unwrap();
///     }
/// }); // tx dropped here: the channel closes after the three values
/// let mut got = Vec::new();
/// while let Ok(v) = rx.recv() {
///     got.push(v); // each wait parks main in this thread's hub
/// }
/// assert_eq!(got, [10, 20, 30]);
/// producer.join().unwrap();
/// ```
///
/// The receiver can move to another thread before it waits, but not be
/// shared by two:
///
/// ```compile_fail
/// fn needs_sync<T: Sync>(_: &T) {}
/// let (_tx, rx) = stage_cores::channel::<u64>();
/// needs_sync(&rx);
/// ```
pub fn channel<T: Send>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            senders: 1,
            receiver_alive: true,
            waiting: None,
        }),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver {
            shared,
            not_sync: PhantomData,
        },
    )
}

/// The sending end: `Send`, `Sync` and `Clone`; sending never waits.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving end: waits in the hub of the thread that calls
/// [`Receiver::recv`]. `Send` (it can be handed to a hub thread before it
/// is used), not `Sync`.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// One receiver waits at a time: `Cell` makes the type `!Sync`.
    not_sync: PhantomData<std::cell::Cell<()>>,
}

/// The receiver is gone; the value comes back.
#[derive(PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the receiving end of the channel is gone (its hub ended or dropped it)")
    }
}

impl<T> std::error::Error for SendError<T> {}

/// Why [`Receiver::recv`] returned no value.
#[derive(Debug, Clone)]
pub enum RecvError {
    /// Every sender is gone and the queue is empty: no value will ever come.
    Closed,
    /// The time limit passed first.
    TimedOut,
    /// The wait itself failed in the hub (a deadlock report, say).
    Hub(HubError),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Closed => f.write_str(
                "the channel is closed: every sender was dropped (their thread or hub ended) \
                 and nothing is left to receive",
            ),
            RecvError::TimedOut => f.write_str("no value arrived before the time limit"),
            RecvError::Hub(e) => write!(f, "waiting on the channel: {e}"),
        }
    }
}

impl std::error::Error for RecvError {}

impl<T: Send> Sender<T> {
    /// Queue `value` and wake the receiver if it waits. Fails (handing the
    /// value back) only if the receiver is gone.
    // ANCHOR: send
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        let wake = {
            let mut st = self.shared.lock();
            if !st.receiver_alive {
                return Err(SendError(value));
            }
            st.queue.push_back(value);
            st.waiting.take()
        };
        // Rung outside the lock: the receiver's hub may run at once.
        if let Some(remote) = wake {
            remote.wake();
        }
        Ok(())
    }
    // ANCHOR_END: send
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let wake = {
            let mut st = self.shared.lock();
            st.senders -= 1;
            if st.senders == 0 {
                st.waiting.take()
            } else {
                None
            }
        };
        if let Some(remote) = wake {
            remote.wake(); // the last sender: the receiver must see the close
        }
    }
}

impl<T: Send> Receiver<T> {
    /// Wait in this thread's hub until a value arrives (other greenlets run
    /// meanwhile); [`RecvError::Closed`] once every sender is gone and the
    /// queue is drained.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.recv_until(None)
    }

    /// Like [`Receiver::recv`], but at most for `limit`.
    pub fn recv_timeout(&self, limit: Duration) -> Result<T, RecvError> {
        self.recv_until(Some(Instant::now() + limit))
    }

    /// A value if one is queued, without waiting; `Ok(None)` if none is;
    /// [`RecvError::Closed`] if none ever will be.
    pub fn try_recv(&self) -> Result<Option<T>, RecvError> {
        let mut st = self.shared.lock();
        match st.queue.pop_front() {
            Some(v) => Ok(Some(v)),
            None if st.senders == 0 => Err(RecvError::Closed),
            None => Ok(None),
        }
    }

    // ANCHOR: recv
    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvError> {
        if let Some(v) = self.try_recv()? {
            return Ok(v); // the fast path: no wakeup needed
        }
        let wakeup = Wakeup::new().map_err(RecvError::Hub)?;
        loop {
            {
                let mut st = self.shared.lock();
                if let Some(v) = st.queue.pop_front() {
                    st.waiting = None;
                    return Ok(v);
                }
                if st.senders == 0 {
                    return Err(RecvError::Closed);
                }
                // Checked and armed under one lock: a send after this
                // point finds the wakeup and rings it.
                st.waiting = Some(wakeup.remote());
            }
            match wakeup.wait_until(deadline) {
                Ok(()) => {}
                Err(e) if e.is_timeout() => {
                    self.shared.lock().waiting = None;
                    return self.try_recv()?.ok_or(RecvError::TimedOut);
                }
                Err(e) => {
                    self.shared.lock().waiting = None;
                    return Err(RecvError::Hub(e));
                }
            }
        }
    }
    // ANCHOR_END: recv
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let (queued, waiting) = {
            let mut st = self.shared.lock();
            st.receiver_alive = false;
            (std::mem::take(&mut st.queue), st.waiting.take())
        };
        // Dropped outside the lock: a queued value may own a sender of this
        // very channel.
        drop(queued);
        drop(waiting);
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}
