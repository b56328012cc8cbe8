//! A process's CPU time, split as the kernel accounts it: in user space
//! (the server's own code: its loop, its switches, its wakes) and in the
//! kernel on its behalf (the system calls: `read`, `write`, `epoll_wait`).
//!
//! Two servers that make the same system calls per message spend about the
//! same kernel time on each; what their designs cost shows in the user
//! time. `echo-bench` reads both for every run, so the book can say where a
//! server's time went rather than only how many messages it answered.
//! `echo-load` reads its own too: on a machine of two cores, the load
//! generator and the server each keep one busy, and whichever needs more
//! CPU per message sets the rate both run at.
//!
//! ```
//! use stage_hub::echo::cpu::CpuTime;
//! let me = CpuTime::of(std::process::id()).expect("Linux has /proc");
//! assert!(me.user_s >= 0.0 && me.system_s >= 0.0);
//! ```

use std::ops::Sub;

use serde::{Deserialize, Serialize};

/// CPU time used by a process so far, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuTime {
    /// Running its own code.
    pub user_s: f64,
    /// In the kernel, in its system calls (and faults).
    pub system_s: f64,
}

impl CpuTime {
    /// Process `pid`'s CPU time so far, from `/proc/<pid>/stat`; `None` if
    /// it cannot be read (the process is gone, or this is not Linux).
    pub fn of(pid: u32) -> Option<CpuTime> {
        read_stat(&format!("/proc/{pid}/stat"))
    }

    /// The calling thread's CPU time so far, from `/proc/thread-self/stat`:
    /// a load generator's own, even when a server runs in another thread
    /// of the same process. `None` if it cannot be read.
    ///
    /// ```
    /// use stage_hub::echo::cpu::CpuTime;
    /// let before = CpuTime::of_this_thread().expect("Linux has /proc");
    /// let spin = std::time::Instant::now();
    /// while spin.elapsed().as_millis() < 50 {}
    /// let used = CpuTime::of_this_thread().expect("still there") - before;
    /// assert!(used.total_s() > 0.0, "50 ms of spinning is several clock ticks");
    /// ```
    pub fn of_this_thread() -> Option<CpuTime> {
        read_stat("/proc/thread-self/stat")
    }

    /// Microseconds a message, of user and of system time.
    pub fn per_message_us(self, messages: u64) -> (f64, f64) {
        let n = messages.max(1) as f64;
        (self.user_s * 1e6 / n, self.system_s * 1e6 / n)
    }

    /// User and system time together.
    pub fn total_s(self) -> f64 {
        self.user_s + self.system_s
    }

    /// The share of `wall_s` seconds this CPU time kept one core busy
    /// (above 1 for a process that ran on more than one core at once).
    ///
    /// ```
    /// use stage_hub::echo::cpu::CpuTime;
    /// let used = CpuTime { user_s: 0.5, system_s: 2.5 };
    /// assert_eq!(used.busy(4.0), 0.75);
    /// assert_eq!(used.busy(0.0), 0.0, "no time passed: nothing to say");
    /// ```
    pub fn busy(self, wall_s: f64) -> f64 {
        if wall_s > 0.0 {
            self.total_s() / wall_s
        } else {
            0.0
        }
    }
}

impl Sub for CpuTime {
    type Output = CpuTime;
    fn sub(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user_s: (self.user_s - earlier.user_s).max(0.0),
            system_s: (self.system_s - earlier.system_s).max(0.0),
        }
    }
}

/// The CPU time in the `stat` file at `path` (a process's or a thread's).
fn read_stat(path: &str) -> Option<CpuTime> {
    let stat = std::fs::read_to_string(path).ok()?;
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
    parse_stat(&stat, ticks as f64)
}

/// The user and system time in a `/proc/<pid>/stat` line, counted in
/// clock ticks of `ticks_per_s`. The second field, the command name in
/// parentheses, may itself hold spaces and parentheses, so the fields are
/// counted from the last `)`: after it come the state (field 3 of the
/// line), ..., `utime` (field 14) and `stime` (field 15).
fn parse_stat(stat: &str, ticks_per_s: f64) -> Option<CpuTime> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(14 - 3);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(CpuTime {
        user_s: user as f64 / ticks_per_s,
        system_s: system as f64 / ticks_per_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_count_from_the_end_of_the_command_name() {
        // A command name with a space and a parenthesis of its own.
        let stat = "4242 (my (odd) server) S 1 4242 4242 0 -1 4194560 \
                    1234 0 0 0 250 75 0 0 20 0 3 0 100 0 0";
        let cpu = parse_stat(stat, 100.0).expect("a well-formed line");
        assert_eq!(
            cpu,
            CpuTime {
                user_s: 2.5,
                system_s: 0.75
            }
        );
        assert!(parse_stat("4242 (cut short) S 1", 100.0).is_none());
        assert!(parse_stat("no parentheses at all", 100.0).is_none());
    }

    #[test]
    fn a_run_is_the_difference_spread_over_its_messages() {
        let before = CpuTime {
            user_s: 1.0,
            system_s: 2.0,
        };
        let after = CpuTime {
            user_s: 1.5,
            system_s: 6.0,
        };
        let (user, system) = (after - before).per_message_us(500_000);
        assert!((user - 1.0).abs() < 1e-9, "{user}");
        assert!((system - 8.0).abs() < 1e-9, "{system}");
    }

    #[test]
    fn a_live_process_is_read_and_a_gone_one_is_none() {
        assert!(CpuTime::of(std::process::id()).is_some());
        // Past the largest pid Linux hands out (2^22).
        assert!(CpuTime::of(5_000_000).is_none());
    }
}
