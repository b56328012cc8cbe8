//! `spawn_blocking`: run a blocking call on a small thread pool while the
//! calling greenlet waits cooperatively.
//!
//! The job's result travels back through a mutex-guarded slot; the worker
//! then sends the job's number down a channel and rings the hub's mio
//! `Waker`, so a hub sleeping in `poll` wakes up, reads the channel and
//! makes the waiting greenlet ready. This is how gevent keeps DNS lookups
//! and file IO from freezing every greenlet.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread;

use super::{Hub, HubError, Inbox, WaitOn};

/// How many threads run blocking jobs (shared by every hub in the process).
pub const BLOCKING_THREADS: usize = 4;

type Job = Box<dyn FnOnce() + Send>;

/// The process-wide pool: started on first use.
fn pool() -> Result<&'static Mutex<mpsc::Sender<Job>>, HubError> {
    static POOL: OnceLock<Result<Mutex<mpsc::Sender<Job>>, String>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..BLOCKING_THREADS {
            let rx = rx.clone();
            thread::Builder::new()
                .name(format!("hub-blocking-{n}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                })
                .map_err(|e| format!("cannot start the spawn_blocking threads: {e}"))?;
        }
        Ok(Mutex::new(tx))
    })
    .as_ref()
    .map_err(|e| HubError::Spawn(e.clone()))
}

/// Run `f` on the blocking thread pool; the calling greenlet waits for its
/// result cooperatively, so every other greenlet keeps running meanwhile.
/// A panic in `f` comes back as [`HubError::Panicked`].
///
/// ```
/// let answer = stage_hub::spawn_blocking(|| {
///     std::thread::sleep(std::time::Duration::from_millis(5)); // blocking, but not on the hub
///     42
/// })?;
/// assert_eq!(answer, 42);
/// # Ok::<(), stage_hub::HubError>(())
/// ```
pub fn spawn_blocking<T, F>(f: F) -> Result<T, HubError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let hub = Hub::get()?;
    let slot: Arc<Mutex<Option<thread::Result<T>>>> = Arc::new(Mutex::new(None));
    let job_id = {
        let mut st = hub.state.borrow_mut();
        st.next_job += 1;
        let id = st.next_job;
        st.jobs.insert(id, None);
        id
    };
    let job: Job = {
        let slot = slot.clone();
        let done = hub.inbox.clone();
        let waker = hub.waker().ok_or(HubError::Closed)?;
        Box::new(move || {
            let result = catch_unwind(AssertUnwindSafe(f));
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(result);
            }
            let _ = done.send(Inbox::Job(job_id));
            let _ = waker.wake();
        })
    };
    let sent = pool()?
        .lock()
        .map(|tx| tx.send(job).is_ok())
        .unwrap_or(false);
    if !sent {
        hub.state.borrow_mut().jobs.remove(&job_id);
        return Err(HubError::Spawn(
            "the spawn_blocking threads are gone".into(),
        ));
    }
    loop {
        if let Some(result) = slot.lock().ok().and_then(|mut s| s.take()) {
            return result.map_err(|payload| HubError::Panicked {
                name: "spawn_blocking job".into(),
                message: payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic with a non-string payload".into()),
            });
        }
        hub.park(WaitOn::Blocking, None, |ticket| {
            let mut st = hub.state.borrow_mut();
            match st.jobs.get_mut(&job_id) {
                Some(waiting) => *waiting = Some(ticket),
                // Finished between the check above and now: wake at once.
                None => {
                    st.unpark(ticket, super::Wake::Ready);
                }
            }
        })?;
    }
}
