//! `AsyncResult`: a value, or a failure, that arrives once for any number of
//! waiters (gevent's `AsyncResult`).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{wait_until_ready, WaitList};
use crate::hub::{next_object_id, HubError, WaitOn, Waitable};

/// A result that some greenlet will set once — a value with
/// [`set`](AsyncResult::set), or a failure with
/// [`set_exception`](AsyncResult::set_exception) — and any number of
/// greenlets wait for. It cannot be reset: a second `set` is refused (the
/// value comes back). Clones share it.
///
/// `get` separates the two ways it can fail: the outer `Result` is the wait
/// (a timeout, a deadlock), the inner one what was set, so `get()??` reads
/// like gevent's `get()` raising the exception that was set.
///
/// ```
/// use stage_hub::{spawn, AsyncResult};
/// let answer: AsyncResult<u32, String> = AsyncResult::new();
/// let readers: Vec<_> = (0..3)
///     .map(|_| {
///         let a = answer.clone();
///         spawn(move || a.get())
///     })
///     .collect();
/// answer.set(42).unwrap();
/// for r in readers {
///     assert_eq!(r.join()??, Ok(42));
/// }
/// assert!(answer.set(7).is_err(), "set once");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AsyncResult<T, E = String> {
    inner: Rc<Inner<T, E>>,
}

struct Inner<T, E> {
    id: u64,
    result: RefCell<Option<Result<T, E>>>,
    waiters: RefCell<WaitList>,
}

impl<T, E> AsyncResult<T, E> {
    /// A result not yet set.
    pub fn new() -> Self {
        AsyncResult {
            inner: Rc::new(Inner {
                id: next_object_id(),
                result: RefCell::new(None),
                waiters: RefCell::new(WaitList::default()),
            }),
        }
    }

    /// Set the value and wake every waiter; `Err(value)` if it was already
    /// set.
    pub fn set(&self, value: T) -> Result<(), T> {
        self.finish(Ok(value)).map_err(|r| match r {
            Ok(value) => value,
            Err(_) => unreachable!("finish hands back what it was given"),
        })
    }

    /// Set a failure and wake every waiter; `Err(error)` if it was already
    /// set.
    pub fn set_exception(&self, error: E) -> Result<(), E> {
        self.finish(Err(error)).map_err(|r| match r {
            Err(error) => error,
            Ok(_) => unreachable!("finish hands back what it was given"),
        })
    }

    fn finish(&self, result: Result<T, E>) -> Result<(), Result<T, E>> {
        if self.ready() {
            return Err(result);
        }
        *self.inner.result.borrow_mut() = Some(result);
        self.inner.waiters.borrow_mut().grant_all(|| ());
        Ok(())
    }

    /// Whether it has been set (a value or a failure).
    pub fn ready(&self) -> bool {
        self.inner.result.borrow().is_some()
    }

    /// Whether it has been set to a value.
    pub fn successful(&self) -> bool {
        matches!(*self.inner.result.borrow(), Some(Ok(_)))
    }

    /// The value, once set (a clone).
    pub fn value(&self) -> Option<T>
    where
        T: Clone,
    {
        match &*self.inner.result.borrow() {
            Some(Ok(value)) => Some(value.clone()),
            _ => None,
        }
    }

    /// The failure, once set (a clone).
    pub fn exception(&self) -> Option<E>
    where
        E: Clone,
    {
        match &*self.inner.result.borrow() {
            Some(Err(error)) => Some(error.clone()),
            _ => None,
        }
    }

    /// What was set, if it has been, without waiting (a clone).
    pub fn try_get(&self) -> Option<Result<T, E>>
    where
        T: Clone,
        E: Clone,
    {
        self.inner.result.borrow().clone()
    }

    /// Wait until it is set, without looking at what.
    pub fn wait(&self) -> Result<(), HubError> {
        self.wait_until(None)
    }

    /// Wait until it is set, then what was set (a clone: every waiter gets
    /// it).
    pub fn get(&self) -> Result<Result<T, E>, HubError>
    where
        T: Clone,
        E: Clone,
    {
        self.wait()?;
        Ok(self.try_get().expect("set once waited for"))
    }

    /// [`get`](Self::get), waiting at most `limit`; [`HubError::TimedOut`]
    /// if it was not set in time.
    pub fn get_timeout(&self, limit: Duration) -> Result<Result<T, E>, HubError>
    where
        T: Clone,
        E: Clone,
    {
        HubError::within(limit, |deadline| self.wait_until(deadline))?;
        Ok(self.try_get().expect("set once waited for"))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<(), HubError> {
        let on = WaitOn::AsyncResult(self.inner.id);
        wait_until_ready(&self.inner.waiters, on, deadline, || self.ready())
    }
}

impl<T, E> Clone for AsyncResult<T, E> {
    fn clone(&self) -> Self {
        AsyncResult {
            inner: self.inner.clone(),
        }
    }
}

impl<T, E> Default for AsyncResult<T, E> {
    fn default() -> Self {
        AsyncResult::new()
    }
}

impl<T, E> std::fmt::Debug for AsyncResult<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResult")
            .field("id", &self.inner.id)
            .field("ready", &self.ready())
            .finish_non_exhaustive()
    }
}

impl<'a, T, E> From<&'a AsyncResult<T, E>> for Waitable<'a> {
    fn from(result: &'a AsyncResult<T, E>) -> Self {
        Waitable::listed(&result.inner.waiters, move || result.ready())
    }
}
