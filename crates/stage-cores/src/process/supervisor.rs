//! The supervisor: P worker processes on one port, kept serving.
//!
//! It reserves the port (a socket bound with `SO_REUSEPORT` that never
//! listens), starts each worker, and waits for its `ready`. Then it watches:
//! each worker's stdout is read by a thread that turns its reports into
//! events, and end-of-file on that pipe means the worker is gone. A worker
//! that dies while the others serve is reported (how it died, how many of
//! its counts were last heard) and started again — at once, or after a
//! pause that doubles while workers die young, so a crash loop does not
//! spin. To stop, the supervisor closes every worker's stdin, waits for
//! their final counts, and sums them.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use harness::Output;
use socket2::Socket;
use stage_hub::echo::stats::ServerSummary;

use super::worker::echo_args;
use super::Report;
use crate::server::{listener, ServerConfig};

/// How long a worker may take to say it is ready.
pub const READY_WITHIN: Duration = Duration::from_secs(30);

/// How long stopping waits for workers' final counts before killing them.
pub const STOP_WITHIN: Duration = Duration::from_secs(10);

/// A worker that dies younger than this was "crash-looping": its restart waits.
const YOUNG: Duration = Duration::from_secs(1);

/// The longest pause before restarting a crash-looping worker.
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// Why the supervisor could not start (or keep) its workers.
#[derive(Debug)]
pub struct SuperviseError(pub String);

impl fmt::Display for SuperviseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SuperviseError {}

/// What happened, as the supervisor's loop sees it.
enum Event {
    Report(usize, u64, Report),
    Gone(usize, u64),
    Signal(i32),
}

/// One worker slot: the process in it now, and what its earlier lives counted.
struct Worker {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    generation: u64,
    pid: u32,
    started: Instant,
    ready: bool,
    /// The current life's last reported counts.
    current: ServerSummary,
    /// The last reported counts of earlier lives.
    earlier: ServerSummary,
    /// The current life's final report came.
    stopped: bool,
    restarts: u32,
    pause: Duration,
    restart_at: Option<Instant>,
}

/// The supervisor's final figures: the sum, and each worker's part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Summed over every worker and every life of each.
    pub total: ServerSummary,
    /// `(counts, restarts)` per worker slot.
    pub workers: Vec<(ServerSummary, u32)>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "echo server stopped: {}", self.total)?;
        for (i, (counts, restarts)) in self.workers.iter().enumerate() {
            write!(f, "\n  worker {i}: {counts}")?;
            if *restarts > 0 {
                write!(
                    f,
                    " (restarted {restarts} time(s); a killed life counts as of its last report)"
                )?;
            }
        }
        Ok(())
    }
}

/// P workers serving one port.
pub struct Supervisor {
    exe: PathBuf,
    addr: SocketAddr,
    config: ServerConfig,
    /// Holds the port while workers come and go.
    _reservation: Socket,
    workers: Vec<Worker>,
    events_tx: mpsc::Sender<Event>,
    events: mpsc::Receiver<Event>,
    out: Output,
}

fn add(a: ServerSummary, b: ServerSummary) -> ServerSummary {
    ServerSummary {
        connections: a.connections + b.connections,
        bytes: a.bytes + b.bytes,
        errors: a.errors + b.errors,
    }
}

/// How a process ended, in words: "exited with status 1", "was killed by
/// signal 9 (SIGKILL)".
pub fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}{}", signal_name(sig)),
        _ => format!("ended ({status})"),
    }
}

/// " (SIGKILL)" for 9, and so on for the signals a supervisor meets.
fn signal_name(sig: i32) -> &'static str {
    match sig {
        1 => " (SIGHUP)",
        2 => " (SIGINT)",
        6 => " (SIGABRT)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

impl Supervisor {
    /// Reserve `addr`'s port and start `procs` workers of `exe`, each
    /// serving `config`; returns once every one is ready. `say` receives the
    /// supervisor's narration.
    pub fn start(
        exe: PathBuf,
        addr: SocketAddr,
        procs: usize,
        config: ServerConfig,
        out: Output,
    ) -> Result<Supervisor, SuperviseError> {
        let (reservation, addr) = listener::reserve(addr)
            .map_err(|e| SuperviseError(format!("cannot bind {addr}: {e}")))?;
        let (events_tx, events) = mpsc::channel();
        let mut sup = Supervisor {
            exe,
            addr,
            config,
            _reservation: reservation,
            workers: Vec::with_capacity(procs),
            events_tx,
            events,
            out,
        };
        for i in 0..procs {
            sup.workers.push(Worker {
                child: None,
                stdin: None,
                generation: 0,
                pid: 0,
                started: Instant::now(),
                ready: false,
                current: ServerSummary::default(),
                earlier: ServerSummary::default(),
                stopped: false,
                restarts: 0,
                pause: YOUNG,
                restart_at: None,
            });
            sup.spawn(i)?;
        }
        let deadline = Instant::now() + READY_WITHIN;
        while sup.workers.iter().any(|w| !w.ready) {
            let left = deadline.saturating_duration_since(Instant::now());
            match sup.events.recv_timeout(left) {
                Ok(Event::Report(i, g, report)) => sup.report(i, g, report),
                Ok(Event::Gone(i, g)) if sup.workers[i].generation == g => {
                    let how = sup.reap(i);
                    return Err(SuperviseError(format!(
                        "worker {i} {how} before it was ready (its message, if any, is above)"
                    )));
                }
                Ok(_) => {}
                Err(_) => {
                    return Err(SuperviseError(format!(
                        "the workers were not all ready within {} s",
                        READY_WITHIN.as_secs()
                    )))
                }
            }
        }
        Ok(sup)
    }

    /// The address every worker serves.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The process id of each worker now serving.
    pub fn pids(&self) -> Vec<u32> {
        self.workers.iter().map(|w| w.pid).collect()
    }

    /// Turn SIGINT and SIGTERM into events [`Supervisor::run`] stops on.
    pub fn watch_signals(&self) -> std::io::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        let tx = self.events_tx.clone();
        thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if tx.send(Event::Signal(sig)).is_err() {
                        return;
                    }
                }
            })?;
        Ok(())
    }

    fn spawn(&mut self, i: usize) -> Result<(), SuperviseError> {
        let mut child = Command::new(&self.exe)
            .args(echo_args(self.addr, &self.config))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Its own process group: a Ctrl-C at the terminal reaches the
            // supervisor only, which then stops the workers in order.
            .process_group(0)
            .spawn()
            .map_err(|e| {
                SuperviseError(format!(
                    "cannot start worker {i} ({}): {e}",
                    self.exe.display()
                ))
            })?;
        let w = &mut self.workers[i];
        w.generation += 1;
        w.pid = child.id();
        w.started = Instant::now();
        w.ready = false;
        w.stopped = false;
        w.current = ServerSummary::default();
        w.stdin = child.stdin.take();
        let stdout = child.stdout.take();
        w.child = Some(child);
        let (tx, generation) = (self.events_tx.clone(), w.generation);
        let reader = thread::Builder::new()
            .name(format!("worker-{i}-reports"))
            .spawn(move || {
                if let Some(stdout) = stdout {
                    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                        match serde_json::from_str::<Report>(&line) {
                            Ok(report) => {
                                let _ = tx.send(Event::Report(i, generation, report));
                            }
                            Err(_) => eprintln!("worker {i}: {line}"),
                        }
                    }
                }
                let _ = tx.send(Event::Gone(i, generation));
            });
        reader
            .map(|_| ())
            .map_err(|e| SuperviseError(format!("cannot start a thread to read worker {i}: {e}")))
    }

    fn report(&mut self, i: usize, generation: u64, report: Report) {
        let w = &mut self.workers[i];
        if w.generation != generation {
            return;
        }
        match report {
            Report::Ready { pid } => {
                w.ready = true;
                if w.restarts > 0 {
                    self.out.say(format!("worker {i} restarted: pid {pid}"));
                }
            }
            Report::Counts(counts) => w.current = counts,
            Report::Stopped(counts) => {
                w.current = counts;
                w.stopped = true;
            }
        }
    }

    /// Wait for worker `i`'s process (its pipe closed) and say how it ended.
    fn reap(&mut self, i: usize) -> String {
        let w = &mut self.workers[i];
        w.stdin = None;
        let Some(mut child) = w.child.take() else {
            return "is gone".into();
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                _ => {
                    let _ = child.kill(); // closed its stdout but would not exit
                    break child.wait().ok();
                }
            }
        };
        status.map_or_else(|| "ended".into(), describe_exit)
    }

    // ANCHOR: run
    /// Serve until SIGINT or SIGTERM (see [`Supervisor::watch_signals`]),
    /// restarting every worker that dies meanwhile.
    pub fn run(&mut self) {
        loop {
            let next_restart = self.workers.iter().filter_map(|w| w.restart_at).min();
            let wait = next_restart.map_or(Duration::from_secs(3600), |at| {
                at.saturating_duration_since(Instant::now())
            });
            match self.events.recv_timeout(wait) {
                Ok(Event::Signal(sig)) => {
                    self.out.say(format!(
                        "signal {sig}{} received: stopping the workers",
                        signal_name(sig)
                    ));
                    return;
                }
                Err(RecvTimeoutError::Disconnected) => return,
                Ok(Event::Report(i, g, report)) => self.report(i, g, report),
                Ok(Event::Gone(i, g)) if self.workers[i].generation == g => self.died(i),
                Ok(Event::Gone(..)) => {}
                Err(RecvTimeoutError::Timeout) => {}
            }
            let now = Instant::now();
            for i in 0..self.workers.len() {
                if self.workers[i].restart_at.is_some_and(|at| at <= now) {
                    self.workers[i].restart_at = None;
                    if let Err(e) = self.spawn(i) {
                        self.out.say(format!("{e}; trying again later"));
                        self.workers[i].restart_at = Some(now + MAX_PAUSE);
                    }
                }
            }
        }
    }
    // ANCHOR_END: run

    /// Worker `i` died while the others serve: report it, plan its restart.
    fn died(&mut self, i: usize) {
        let pid = self.workers[i].pid;
        let how = self.reap(i);
        let w = &mut self.workers[i];
        let lived = w.started.elapsed();
        w.earlier = add(w.earlier, w.current);
        w.current = ServerSummary::default();
        w.restarts += 1;
        w.pause = if lived < YOUNG {
            (w.pause * 2).min(MAX_PAUSE)
        } else {
            YOUNG
        };
        let pause = if lived < YOUNG {
            w.pause
        } else {
            Duration::ZERO
        };
        w.restart_at = Some(Instant::now() + pause);
        self.out.say(format!(
            "worker {i} (pid {pid}) {how}; the connections it held are lost, the other workers \
             keep serving; restarting it{}",
            if pause.is_zero() {
                String::new()
            } else {
                format!(" in {} s (it died young)", pause.as_secs_f64())
            }
        ));
    }

    /// Stop every worker (close its stdin), wait for the final counts, and
    /// sum them.
    pub fn stop(mut self) -> Summary {
        for w in &mut self.workers {
            w.stdin = None; // end-of-file: the worker stops and reports
            w.restart_at = None;
        }
        let deadline = Instant::now() + STOP_WITHIN;
        while self.workers.iter().any(|w| w.child.is_some()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Event::Report(i, g, report)) => self.report(i, g, report),
                Ok(Event::Gone(i, g)) if self.workers[i].generation == g => {
                    let how = self.reap(i);
                    if !self.workers[i].stopped {
                        self.out.say(format!(
                            "worker {i} {how} before its final report; its last counts stand"
                        ));
                    }
                }
                Ok(_) => {}
                Err(_) => {
                    for (i, w) in self.workers.iter_mut().enumerate() {
                        if let Some(mut child) = w.child.take() {
                            self.out.say(format!(
                                "worker {i} did not stop within {} s: killed",
                                STOP_WITHIN.as_secs()
                            ));
                            let _ = child.kill();
                            let _ = child.wait();
                        }
                    }
                }
            }
        }
        let workers: Vec<(ServerSummary, u32)> = self
            .workers
            .iter()
            .map(|w| (add(w.earlier, w.current), w.restarts))
            .collect();
        let total = workers
            .iter()
            .fold(ServerSummary::default(), |t, (c, _)| add(t, *c));
        Summary { total, workers }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // Left early (an error, a panic): no worker may outlive us.
        for w in &mut self.workers {
            w.stdin = None;
            if let Some(mut child) = w.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("addr", &self.addr)
            .field("workers", &self.pids())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exit_is_told_by_its_code_or_its_signal() {
        assert_eq!(
            describe_exit(ExitStatus::from_raw(9)),
            "was killed by signal 9 (SIGKILL)"
        );
        assert_eq!(
            describe_exit(ExitStatus::from_raw(1 << 8)),
            "exited with status 1"
        );
    }

    #[test]
    fn the_summary_leads_with_the_sum_then_each_worker() {
        let part = |connections, bytes| ServerSummary {
            connections,
            bytes,
            errors: 0,
        };
        let summary = Summary {
            total: part(5, 50),
            workers: vec![(part(2, 20), 0), (part(3, 30), 1)],
        };
        let text = summary.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "echo server stopped: served 5 connections, echoed 50 bytes, 0 errors"
        );
        assert!(
            lines[1].starts_with("  worker 0: served 2 connections"),
            "{text}"
        );
        assert!(lines[2].contains("restarted 1 time(s)"), "{text}");
    }
}
