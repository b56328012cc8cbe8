//! [`Member`]: a handle to a greenlet whose value's type is not known,
//! what a [`Group`](crate::Group) holds.

use std::rc::Rc;
use std::time::Duration;

use super::handle::{start_kill, wait_for_death, Handle, Joinable};
use super::task::{HasStatus, Status};
use super::{HubError, TaskId};

/// A handle to a spawned greenlet whose value's type is not known here,
/// what a [`Group`](crate::Group) holds: it waits for, inspects and kills
/// the greenlet, but cannot take its value. `Member::from(&handle)` makes
/// one.
pub struct Member {
    id: TaskId,
    status: Rc<dyn HasStatus>,
}

impl<T: 'static> From<&Handle<T>> for Member {
    fn from(handle: &Handle<T>) -> Member {
        let status = &handle.shared.status;
        status.add_handle();
        Member {
            id: handle.id,
            status: handle.shared.clone(),
        }
    }
}

impl Member {
    /// The greenlet's name.
    pub fn name(&self) -> String {
        self.status.status().name()
    }

    /// Its greenlet's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether it has finished.
    pub fn is_dead(&self) -> bool {
        !self.status.status().is_running()
    }

    /// Whether it finished by failing (a kill is not a failure).
    pub fn failed(&self) -> bool {
        let status = self.status.status();
        if !status.is_running() {
            status.observed.set(true);
        }
        status.failed()
    }

    /// Its failure, once it has failed.
    pub fn exception(&self) -> Option<HubError> {
        if self.failed() {
            self.status.status().error()
        } else {
            None
        }
    }

    /// Wait until it has finished.
    pub fn wait(&self) -> Result<(), HubError> {
        wait_for_death(self.id, self.status.status(), None)
    }

    /// Wait at most `limit` for it to finish.
    pub fn join_timeout(&self, limit: Duration) -> Result<(), HubError> {
        wait_for_death(self.id, self.status.status(), Some(limit))
    }

    /// Kill it and wait until it is dead.
    pub fn kill(&self) {
        if start_kill(self.id, self.status.status()) {
            let _ = self.wait();
        }
    }

    /// Kill it without waiting.
    pub fn kill_nowait(&self) {
        start_kill(self.id, self.status.status());
    }
}

impl Clone for Member {
    fn clone(&self) -> Self {
        let status = self.status.status();
        status.add_handle();
        Member {
            id: self.id,
            status: self.status.clone(),
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let status = self.status.status();
        status.handles.set(status.handles.get() - 1);
        if status.handles.get() == 0 && !status.is_running() {
            status.report_if_orphaned();
        }
    }
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("name", &self.name())
            .field("dead", &self.is_dead())
            .finish()
    }
}

impl Joinable for Member {
    fn task(&self) -> TaskId {
        self.id
    }
    fn task_status(&self) -> &Status {
        self.status.status()
    }
}
