//! The soak: what months of a server's life do to the hub, in seconds.
//!
//! A server waits with deadlines all day, times requests out, kills
//! greenlets, and (in a thread pool) starts and ends hubs. None of that may
//! leave anything behind. This listing does each of those things many
//! times and reports the process's resident memory and open descriptors
//! before and after:
//!
//! - one hub runs every kind of wait that ends early — timed waits that
//!   time out, `with_timeout` blocks that expire or finish in time, and
//!   kills of greenlets parked on every kind of wait — round after round,
//!   with one long sleeper holding the top of the timer heap throughout;
//! - a pool of threads starts and ends hubs, each thread ending while its
//!   greenlets still wait on a timer, an event, a queue and a socket.
//!
//! The figures are the chapter's (`stage-hub soak`); the tests check the
//! mechanisms one by one (`hub_lifecycle.rs`, the waiter-list and timer unit
//! tests).

use std::io::{ErrorKind, Read};
use std::rc::Rc;
use std::time::{Duration, Instant};

use harness::report::{human_bytes, human_seconds};
use harness::{rss, Output, Report, Row};

use crate::hub::{self, hubs_alive, joinall, spawn, with_timeout, yield_now, Handle, HubError};
use crate::hub::{JoinAll, Wakeup};
use crate::lesson::STAGE;
use crate::net::{TcpListener, TcpStream};
use crate::sync::{Event, Pool, Queue, Semaphore};

// ANCHOR: bound
/// How much resident memory a soak may end with above its start, past its
/// warm-up: what the allocator may keep cached (a few of glibc's bins and
/// per-thread arenas), not anything that grows with the rounds. Ten times
/// the rounds must not need a bigger bound.
pub const RSS_BOUND: u64 = 1 << 20;
// ANCHOR_END: bound

/// How big a soak is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoakSettings {
    /// Rounds of every kind of wait in the one-hub phase.
    pub rounds: u64,
    /// Hubs the thread pool starts and ends.
    pub hubs: usize,
    /// Threads running hubs at once.
    pub threads: usize,
}

impl SoakSettings {
    /// The chapter's soak (60,000 rounds of 17 waits: about a million; a
    /// thousand hubs), or with `--quick` a small one.
    pub fn new(quick: bool) -> SoakSettings {
        if quick {
            SoakSettings {
                rounds: 1_000,
                hubs: 40,
                threads: 4,
            }
        } else {
            SoakSettings {
                rounds: 60_000,
                hubs: 1_000,
                threads: 4,
            }
        }
    }
}

/// The process's resident memory and open descriptors at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// Resident memory, in bytes (0 where `/proc` is missing).
    pub rss_bytes: u64,
    /// Open file descriptors (0 where `/proc` is missing).
    pub fds: usize,
}

impl Footprint {
    /// Now.
    pub fn now() -> Footprint {
        Footprint {
            rss_bytes: rss::current_bytes().unwrap_or(0),
            fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()),
        }
    }
}

/// What one phase of the soak did and left.
#[derive(Debug, Clone, PartialEq)]
pub struct SoakRun {
    /// What the phase did, as the report's case.
    pub what: String,
    /// Operations it ran (waits, or hubs).
    pub ops: u64,
    /// How long it took.
    pub took: Duration,
    /// The footprint after the warm-up, before the measured work.
    pub start: Footprint,
    /// The footprint at the end.
    pub end: Footprint,
    /// Hubs alive in the process at the start and at the end.
    pub hubs: (usize, usize),
    /// What the soaking thread's hub held at the end (one-hub phase).
    pub stats: Option<hub::Stats>,
}

impl SoakRun {
    /// Resident memory gained over the phase (negative: given back).
    pub fn rss_growth(&self) -> i64 {
        self.end.rss_bytes as i64 - self.start.rss_bytes as i64
    }

    /// Whether it came back to where it started: the same descriptors and
    /// hubs, resident memory within [`RSS_BOUND`].
    pub fn came_back(&self) -> bool {
        self.end.fds == self.start.fds
            && self.hubs.0 == self.hubs.1
            && self.rss_growth() <= RSS_BOUND as i64
    }

    fn row(&self) -> Row {
        let secs = self.took.as_secs_f64();
        let mut extra = std::collections::BTreeMap::new();
        let mut put = |k: &str, v: serde_json::Value| {
            extra.insert(k.to_string(), v);
        };
        put("rss_start_bytes", self.start.rss_bytes.into());
        put("rss_end_bytes", self.end.rss_bytes.into());
        put("rss_bound_bytes", RSS_BOUND.into());
        put("fds_start", self.start.fds.into());
        put("fds_end", self.end.fds.into());
        put("hubs_start", self.hubs.0.into());
        put("hubs_end", self.hubs.1.into());
        put("came_back", self.came_back().into());
        if let Some(stats) = self.stats {
            put("greenlets_left", stats.greenlets.into());
            put("timers_left", stats.timers.into());
            put("timer_entries_left", stats.timer_entries.into());
        }
        Row {
            extra,
            ..Row::measured(STAGE, "soak", &self.what, self.ops, secs)
        }
    }

    /// One line: start and end, and whether it came back.
    pub fn summary(&self) -> String {
        let growth = self.rss_growth();
        let sign = if growth < 0 { "-" } else { "+" };
        format!(
            "resident {} -> {} ({sign}{}, bound +{}), descriptors {} -> {}, hubs {} -> {}: {}",
            human_bytes(self.start.rss_bytes),
            human_bytes(self.end.rss_bytes),
            human_bytes(growth.unsigned_abs()),
            human_bytes(RSS_BOUND),
            self.start.fds,
            self.end.fds,
            self.hubs.0,
            self.hubs.1,
            if self.came_back() {
                "back where it started"
            } else {
                "NOT back where it started"
            }
        )
    }
}

// ANCHOR: kinds
/// Every way a wait can end early, one round each. Returns how many waits
/// the round made.
fn one_round(f: &Fixture) -> Result<u64, HubError> {
    let zero = Duration::ZERO;
    // Timed waits that time out.
    assert!(f.empty.get_timeout(zero).is_err_and(|e| e.is_timeout()));
    assert!(f.never.wait_timeout(zero).is_err_and(|e| e.is_timeout()));
    assert!(f.sleeper.join_timeout(zero).is_err());
    assert!(joinall(
        std::slice::from_ref(&*f.sleeper),
        JoinAll::new().timeout(zero)
    )
    .is_err());
    assert!(f.wakeup.wait_timeout(zero).is_err_and(|e| e.is_timeout()));
    let mut buf = [0u8; 8];
    let read = f.quiet.borrow_mut().read(&mut buf);
    assert!(matches!(read, Err(e) if e.kind() == ErrorKind::TimedOut));
    // with_timeout blocks: one expires, one finishes in time (its timer is
    // cancelled behind the long sleeper's).
    assert!(with_timeout(zero, || hub::sleep(Duration::from_secs(60))).is_err());
    with_timeout(Duration::from_secs(60), yield_now)?;
    // Kills of greenlets parked on every kind of wait, and of one that
    // never started.
    let (empty, full, never, sem) = (
        f.empty.clone(),
        f.full.clone(),
        f.never.clone(),
        f.sem.clone(),
    );
    let (sleeper, pool, quiet) = (f.sleeper.clone(), f.pool.clone(), f.quiet_peer.clone());
    let victims: [Handle<()>; 9] = [
        spawn(|| hub::sleep(Duration::from_secs(60))),
        spawn(move || drop(empty.get())),
        spawn(move || drop(full.put(0))),
        spawn(move || drop(never.wait())),
        spawn(move || drop(sem.acquire())),
        spawn(move || drop(sleeper.wait())),
        spawn(move || drop(pool.join())),
        spawn(move || drop(quiet.borrow_mut().read(&mut [0u8; 8]))),
        spawn(|| {}),
    ];
    victims[8].kill(); // before it ever runs
    yield_now(); // the others park
    for victim in &victims {
        victim.kill();
    }
    Ok(8 + victims.len() as u64)
}
// ANCHOR_END: kinds

/// What the rounds wait on: built once, reused by every round.
struct Fixture {
    empty: Queue<u8>,
    full: Queue<u8>,
    never: Event,
    sem: Semaphore,
    wakeup: Wakeup,
    /// Holds the top of the timer heap for the whole soak (30 s).
    sleeper: Rc<Handle<()>>,
    /// Has the sleeper in it, so its `join` waits.
    pool: Pool,
    /// A connected socket nothing is ever written to, read with a deadline.
    quiet: Rc<std::cell::RefCell<TcpStream>>,
    /// The same, for the greenlet killed while reading it.
    quiet_peer: Rc<std::cell::RefCell<TcpStream>>,
    /// The other ends, kept open so the reads wait instead of ending.
    _peers: (std::net::TcpStream, std::net::TcpStream),
}

impl Fixture {
    fn new() -> Result<Fixture, Box<dyn std::error::Error>> {
        let full = Queue::bounded(1);
        full.try_put(0).map_err(|_| "a new queue of one is full")?;
        let pool = Pool::new(1);
        let sleeper = Rc::new(pool.spawn(|| hub::sleep(Duration::from_secs(30)))?);
        let (quiet, peer_a) = socket_pair()?;
        let (quiet_peer, peer_b) = socket_pair()?;
        Ok(Fixture {
            empty: Queue::unbounded(),
            full,
            never: Event::new(),
            sem: Semaphore::new(0),
            wakeup: Wakeup::new()?,
            sleeper,
            pool,
            quiet: Rc::new(std::cell::RefCell::new(quiet)),
            quiet_peer: Rc::new(std::cell::RefCell::new(quiet_peer)),
            _peers: (peer_a, peer_b),
        })
    }
}

/// A connected loopback pair: our end (reads time out at once) and theirs.
fn socket_pair() -> std::io::Result<(TcpStream, std::net::TcpStream)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let theirs = std::net::TcpStream::connect(listener.local_addr()?)?;
    let (ours, _) = listener.accept()?;
    let mut ours = TcpStream::from_std(ours)?;
    ours.set_read_timeout(Some(Duration::from_nanos(1)))?;
    Ok((ours, theirs))
}

/// Phase one: `rounds` rounds of every way a wait ends early, in this
/// thread's hub (run it in a thread of its own: the sleeper is killed when
/// the thread ends).
pub fn one_hub(rounds: u64) -> Result<SoakRun, Box<dyn std::error::Error>> {
    let fixture = Fixture::new()?;
    yield_now(); // the sleeper starts sleeping
    for _ in 0..rounds.min(100) {
        one_round(&fixture)?; // warm-up: pools and caches reach their size
    }
    let (start, hubs_start, t0) = (Footprint::now(), hubs_alive(), Instant::now());
    let mut waits = 0;
    for _ in 0..rounds {
        waits += one_round(&fixture)?;
    }
    let took = t0.elapsed();
    let (end, stats) = (Footprint::now(), hub::stats());
    Ok(SoakRun {
        what: format!("one hub: {waits} waits ended by timeouts and kills, 17 kinds"),
        ops: waits,
        took,
        start,
        end,
        hubs: (hubs_start, hubs_alive()),
        stats,
    })
}

/// One hub that ends with greenlets waiting on a timer, an event, a queue
/// and a socket (its listener's and a connection's), in a thread of its own.
fn short_lived_hub() -> std::thread::Result<()> {
    std::thread::spawn(|| -> std::io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let client = std::net::TcpStream::connect(listener.local_addr()?)?;
        let (mut conn, _) = listener.accept()?;
        let (ev, q) = (Event::new(), Queue::<u8>::unbounded());
        let _waiting = [
            spawn(|| hub::sleep(Duration::from_secs(60))),
            spawn(move || drop(ev.wait())),
            spawn(move || drop(q.get())),
            spawn(move || drop(listener.accept())),
            spawn(move || drop(conn.read(&mut [0u8; 8]))),
        ];
        yield_now();
        drop(client);
        Ok(()) // the thread ends with all five waiting: the hub kills them
    })
    .join()
    .map(drop)
}

/// Phase two: a pool of `threads` threads starts and ends `hubs` hubs.
pub fn hub_pool(hubs: usize, threads: usize) -> Result<SoakRun, Box<dyn std::error::Error>> {
    let run = |n: usize| -> Result<(), Box<dyn std::error::Error>> {
        let mut left = n;
        while left > 0 {
            let batch = left.min(threads.max(1));
            let workers: Vec<_> = (0..batch)
                .map(|_| std::thread::spawn(short_lived_hub))
                .collect();
            for worker in workers {
                worker
                    .join()
                    .map_err(|_| "a soak thread panicked")?
                    .map_err(|_| "a hub thread panicked")?;
            }
            left -= batch;
        }
        Ok(())
    };
    run(threads.max(1) * 2)?; // warm-up: the allocator's per-thread arenas exist
    let (start, hubs_start, t0) = (Footprint::now(), hubs_alive(), Instant::now());
    run(hubs)?;
    let took = t0.elapsed();
    Ok(SoakRun {
        what: format!(
            "{hubs} hubs started and ended, {threads} threads at a time, 5 greenlets waiting in each"
        ),
        ops: hubs as u64,
        took,
        start,
        end: Footprint::now(),
        hubs: (hubs_start, hubs_alive()),
        stats: None,
    })
}

/// Run both phases, narrate them, and add their rows and headline.
pub fn run(
    s: SoakSettings,
    report: &mut Report,
) -> Result<Vec<SoakRun>, Box<dyn std::error::Error>> {
    let out: Output = report.output();
    out.say(format!(
        "one hub: {} rounds of 17 ways a wait ends early (timed waits, timeouts, kills)...",
        s.rounds
    ));
    let rounds = s.rounds;
    let first = std::thread::spawn(move || one_hub(rounds).map_err(|e| e.to_string()))
        .join()
        .map_err(|_| "the soak's hub thread panicked")??;
    out.say(format!(
        "  {} in {}: {}",
        first.ops,
        human_seconds(first.took.as_secs_f64()),
        first.summary()
    ));
    if let Some(stats) = first.stats {
        out.say(format!(
            "  the hub holds {} greenlets, {} timers, {} timer-heap entries at the end",
            stats.greenlets, stats.timers, stats.timer_entries
        ));
    }
    out.say(format!(
        "a pool of {} threads starts and ends {} hubs, each ending with greenlets waiting...",
        s.threads, s.hubs
    ));
    let second = hub_pool(s.hubs, s.threads)?;
    out.say(format!(
        "  {} hubs in {}: {}",
        second.ops,
        human_seconds(second.took.as_secs_f64()),
        second.summary()
    ));
    let runs = vec![first, second];
    report.push_rows(
        Some("The soak: resident memory and descriptors before and after"),
        runs.iter().map(SoakRun::row).collect(),
    );
    report.headline(
        "the soak comes back to where it started",
        format!(
            "{} waits ended early and {} hubs ended with greenlets waiting: {}",
            runs[0].ops,
            runs[1].ops,
            if runs.iter().all(SoakRun::came_back) {
                format!(
                    "descriptors equal, resident memory within +{}",
                    human_bytes(RSS_BOUND)
                )
            } else {
                "something was left behind".to_string()
            }
        ),
        None,
    );
    Ok(runs)
}
