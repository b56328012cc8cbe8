//! Many hubs: N threads, each running a hub of its own, and a way for any
//! thread (or any greenlet in any hub) to hand one of them work and wait
//! for the result cooperatively.
//!
//! A greenlet never moves: it is a stack that belongs to its hub's thread,
//! and its type is `!Send`. What crosses between hubs is a *job* — a
//! `Send` closure — over a [`channel`](crate::channel()). The hub thread's
//! main greenlet receives jobs and spawns each as a greenlet there; the
//! job's result comes back over a second, one-shot channel, which the
//! caller waits on in *its* hub:
//!
//! ```text
//!   hub A (caller)                         hub B (thread "hub-1")
//!   ──────────────                         ──────────────────────
//!   hubs.hub(1).spawn(job) ── jobs ──────► main greenlet: recv → spawn(job)
//!   handle.join(): park in hub A                     job runs as a greenlet of B
//!        ▲                                           (it may sleep, do IO, spawn)
//!        └───────────────────── reply ◄─── send(result) → rings hub A's waker
//! ```
//!
//! A hub that dies (its thread panicked, or ended with jobs unfinished)
//! drops the reply senders it held, so every waiter sees
//! [`CoresError::HubDied`] instead of waiting for ever.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::channel::{channel, Receiver, RecvError, Sender};

/// What went wrong handing work to another hub.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CoresError {
    /// The hub's thread ended before the job's result came back (it
    /// panicked, or it was shut down with the job unfinished).
    HubDied {
        /// The hub thread's name.
        hub: String,
    },
    /// The job panicked; its message is its result.
    Panicked {
        /// The hub it ran on.
        hub: String,
        /// The panic message.
        message: String,
    },
    /// A hub thread could not be started.
    Start(String),
    /// Waiting for the result failed in the caller's hub.
    Wait(RecvError),
}

impl fmt::Display for CoresError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoresError::HubDied { hub } => write!(
                f,
                "hub `{hub}` died before the job's result came back (its thread panicked or \
                 was shut down); run the job again on a live hub"
            ),
            CoresError::Panicked { hub, message } => {
                write!(f, "the job handed to hub `{hub}` panicked: {message}")
            }
            CoresError::Start(why) => write!(f, "cannot start a hub thread: {why}"),
            CoresError::Wait(e) => write!(f, "waiting for another hub: {e}"),
        }
    }
}

impl std::error::Error for CoresError {}

/// A job as it travels to a hub: run once, on that hub's thread.
type Job = Box<dyn FnOnce() + Send>;

/// One hub thread as other threads see it: cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct HubRef {
    name: Arc<str>,
    jobs: Sender<Job>,
}

/// N hub threads. Dropping it closes their job channels and waits for each
/// thread to finish the jobs it already has.
pub struct Hubs {
    refs: Vec<HubRef>,
    threads: Vec<JoinHandle<()>>,
}

/// The result of a job on another hub, to [`join`](RemoteHandle::join)
/// cooperatively.
pub struct RemoteHandle<T> {
    hub: Arc<str>,
    reply: Receiver<Result<T, String>>,
}

impl Hubs {
    /// Start `n` hub threads, named `hub-0` … `hub-{n-1}`.
    pub fn start(n: usize) -> Result<Hubs, CoresError> {
        let mut hubs = Hubs {
            refs: Vec::with_capacity(n),
            threads: Vec::with_capacity(n),
        };
        for i in 0..n {
            let name: Arc<str> = Arc::from(format!("hub-{i}"));
            let (jobs, inbox) = channel::<Job>();
            let thread = thread::Builder::new()
                .name(name.to_string())
                .spawn(move || run_hub(inbox))
                .map_err(|e| CoresError::Start(e.to_string()))?;
            hubs.refs.push(HubRef { name, jobs });
            hubs.threads.push(thread);
        }
        Ok(hubs)
    }

    /// How many hubs there are.
    pub fn len(&self) -> usize {
        self.refs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }

    /// Hub `i` (modulo their number, so `hub(task)` spreads tasks round robin).
    ///
    /// # Panics
    ///
    /// If there are no hubs.
    pub fn hub(&self, i: usize) -> &HubRef {
        &self.refs[i % self.refs.len()]
    }

    /// Close every hub's job channel and wait for the threads to finish
    /// the jobs they have.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.refs.clear(); // the job senders: each hub's main sees Closed
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Hubs {
    fn drop(&mut self) {
        self.stop();
    }
}

impl HubRef {
    /// The hub thread's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Run `f` in a new greenlet on this hub. The returned handle's
    /// [`join`](RemoteHandle::join) waits for its result in the *caller's*
    /// hub, so the caller's other greenlets run meanwhile.
    ///
    /// ```
    /// let hubs = stage_cores::Hubs::start(2)?;
    /// let there = hubs.hub(1).spawn(|| std::thread::current().name().map(String::from));
    /// assert_eq!(there?.join()?, Some("hub-1".to_string()));
    /// # Ok::<(), stage_cores::CoresError>(())
    /// ```
    pub fn spawn<T, F>(&self, f: F) -> Result<RemoteHandle<T>, CoresError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (reply_tx, reply) = channel::<Result<T, String>>();
        let job: Job = Box::new(move || run_job(f, reply_tx));
        self.jobs.send(job).map_err(|_| CoresError::HubDied {
            hub: self.name.to_string(),
        })?;
        Ok(RemoteHandle {
            hub: self.name.clone(),
            reply,
        })
    }
}

impl<T: Send> RemoteHandle<T> {
    /// Wait (cooperatively, in this thread's hub) for the job's result.
    pub fn join(self) -> Result<T, CoresError> {
        self.join_inner(None)
    }

    /// Wait at most `limit`.
    pub fn join_timeout(self, limit: Duration) -> Result<T, CoresError> {
        self.join_inner(Some(limit))
    }

    fn join_inner(self, limit: Option<Duration>) -> Result<T, CoresError> {
        let got = match limit {
            None => self.reply.recv(),
            Some(limit) => self.reply.recv_timeout(limit),
        };
        match got {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => Err(CoresError::Panicked {
                hub: self.hub.to_string(),
                message,
            }),
            Err(RecvError::Closed) => Err(CoresError::HubDied {
                hub: self.hub.to_string(),
            }),
            Err(e) => Err(CoresError::Wait(e)),
        }
    }
}

// ANCHOR: run_hub
/// A hub thread's main greenlet: receive jobs and spawn each as a greenlet
/// of this hub, until the job channel closes; then let the running jobs
/// finish. Waiting on the channel parks main in the hub, so the jobs run.
fn run_hub(jobs: Receiver<Job>) {
    let mut running = Vec::new();
    while let Ok(job) = jobs.recv() {
        running.retain(|h: &stage_hub::Handle<()>| !h.is_dead());
        running.push(stage_hub::spawn(job));
    }
    let _ = stage_hub::joinall(&running, stage_hub::JoinAll::new());
}
// ANCHOR_END: run_hub

thread_local! {
    /// Reply senders of this hub's unfinished jobs. Owned by the thread, not
    /// by the jobs' stacks: when the thread ends, however it ends, they are
    /// dropped, and every waiter sees the hub died.
    static REPLIES: RefCell<HashMap<u64, Box<dyn Any>>> = RefCell::new(HashMap::new());
    static NEXT_REPLY: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Run one job on this hub and send its result (or its panic) back.
fn run_job<T, F>(f: F, reply: Sender<Result<T, String>>)
where
    T: Send + 'static,
    F: FnOnce() -> T,
{
    let key = NEXT_REPLY.with(|n| {
        n.set(n.get() + 1);
        n.get()
    });
    REPLIES.with(|r| r.borrow_mut().insert(key, Box::new(reply)));
    let take_reply = || {
        REPLIES
            .try_with(|r| r.borrow_mut().remove(&key))
            .ok()
            .flatten()
            .and_then(|b| b.downcast::<Sender<Result<T, String>>>().ok())
    };
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => {
            if let Some(reply) = take_reply() {
                let _ = reply.send(Ok(value));
            }
        }
        Err(payload) => {
            if stage_hub::hub::is_interrupt(&*payload) {
                drop(take_reply()); // killed: the waiter sees the hub let it go
                resume_unwind(payload);
            }
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic with a non-string payload".into());
            if let Some(reply) = take_reply() {
                let _ = reply.send(Err(message));
            }
        }
    }
}

impl fmt::Debug for HubRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubRef")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Hubs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hubs").field("hubs", &self.refs).finish()
    }
}

impl<T> fmt::Debug for RemoteHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteHandle")
            .field("hub", &self.hub)
            .finish_non_exhaustive()
    }
}
