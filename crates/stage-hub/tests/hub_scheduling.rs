//! The hub's scheduling: spawn order, join, joinall, kill, sleep order,
//! yield fairness, timeouts, deadlocks, panics and the blocking detector.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use stage_hub::{
    joinall, set_blocking_threshold, set_diagnostic_hook, sleep, spawn, spawn_later, with_timeout,
    yield_now, Builder, Event, HubError, JoinAll,
};

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn say(log: &Log, line: impl Into<String>) {
    log.borrow_mut().push(line.into());
}

/// Capture this thread's diagnostics.
fn diagnostics() -> Log {
    let seen = log();
    let sink = seen.clone();
    set_diagnostic_hook(move |d| sink.borrow_mut().push(d.to_string()));
    seen
}

const MS: fn(u64) -> Duration = Duration::from_millis;

#[test]
fn a_spawned_greenlet_does_not_run_until_the_spawner_waits() {
    let log = log();
    let l = log.clone();
    let child = spawn(move || say(&l, "child"));
    say(&log, "spawner after spawn");
    say(&log, "spawner still running");
    assert!(!child.is_dead());
    child.join().unwrap();
    assert_eq!(
        *log.borrow(),
        ["spawner after spawn", "spawner still running", "child"]
    );
}

#[test]
fn join_returns_the_value_and_value_shows_it() {
    let h = spawn(|| 6 * 7);
    h.wait().unwrap();
    assert_eq!(h.value(), Some(42));
    assert!(!h.failed());
    assert_eq!(h.join().unwrap(), 42);
    let s = spawn(|| String::from("owned"));
    assert_eq!(s.join().unwrap(), "owned");
}

#[test]
fn join_of_a_panicking_greenlet_returns_its_panic() {
    let _quiet = diagnostics();
    let h = Builder::new()
        .name("doomed")
        .spawn(|| -> u32 { panic!("boom") })
        .unwrap();
    match h.join() {
        Err(HubError::Panicked { name, message }) => {
            assert_eq!(name, "doomed");
            assert!(message.contains("boom"), "{message}");
            assert!(
                message.contains("hub_scheduling.rs:"),
                "says where: {message}"
            );
        }
        other => panic!("expected a panic result, got {other:?}"),
    }
}

#[test]
fn joinall_collects_every_result_even_after_a_failure() {
    let seen = diagnostics();
    let handles = vec![
        spawn(|| {
            sleep(MS(5));
            1
        }),
        spawn(|| -> i32 { panic!("second fails") }),
        spawn(|| {
            sleep(MS(10));
            3
        }),
    ];
    joinall(&handles, JoinAll::new()).unwrap();
    assert!(handles.iter().all(|h| h.is_dead()));
    let results: Vec<_> = handles.into_iter().map(|h| h.join().ok()).collect();
    assert_eq!(results, [Some(1), None, Some(3)]);
    assert!(
        seen.borrow().is_empty(),
        "a joined failure is not reported: {:?}",
        seen.borrow()
    );
}

#[test]
fn joinall_can_stop_at_the_first_failure() {
    let _quiet = diagnostics();
    let slow = spawn(|| {
        sleep(Duration::from_secs(5));
        1
    });
    let bad = spawn(|| -> i32 {
        sleep(MS(5));
        panic!("early failure")
    });
    let start = Instant::now();
    let handles = vec![slow, bad];
    let err = joinall(&handles, JoinAll::new().stop_at_first_failure()).unwrap_err();
    assert!(
        matches!(&err, HubError::Panicked { message, .. } if message.contains("early failure")),
        "{err}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "it stopped at the failure, not at the slow one"
    );
    assert!(!handles[0].is_dead());
    handles[0].kill();
}

#[test]
fn joinall_with_a_timeout_gives_up_and_leaves_the_rest_running() {
    let quick = spawn(|| sleep(MS(5)));
    let slow = spawn(|| sleep(MS(500)));
    let handles = vec![quick, slow];
    let err = joinall(&handles, JoinAll::new().timeout(MS(50))).unwrap_err();
    match err {
        HubError::TimedOut { limit, elapsed } => {
            assert_eq!(limit, MS(50));
            assert!(elapsed >= MS(50));
        }
        other => panic!("expected a timeout, got {other}"),
    }
    assert!(handles[0].is_dead() && !handles[1].is_dead());
    match handles[1].join_timeout(MS(5)).unwrap_err() {
        HubError::TimedOut { limit, elapsed } => {
            assert_eq!(limit, MS(5), "the limit asked for, as asked");
            assert!(elapsed >= MS(5), "{elapsed:?}");
        }
        other => panic!("expected a timeout, got {other}"),
    }
    handles[1].kill();
    assert!(handles[1].is_dead());
}

struct DropFlag(Log, &'static str);

impl Drop for DropFlag {
    fn drop(&mut self) {
        say(&self.0, format!("dropped {}", self.1));
    }
}

#[test]
fn kill_unwinds_the_greenlet_at_its_wait_and_runs_its_destructors() {
    let log = log();
    let l = log.clone();
    let h = spawn(move || {
        let _guard = DropFlag(l.clone(), "local");
        sleep(Duration::from_secs(60));
        say(&l, "tail ran"); // never: the kill unwinds from the sleep
    });
    yield_now(); // let it start and park in its sleep
    let start = Instant::now();
    h.kill();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(h.is_dead());
    assert!(!h.failed(), "a kill is not a failure");
    assert!(matches!(h.error(), Some(HubError::Killed { .. })));
    assert_eq!(*log.borrow(), ["dropped local"]);
}

#[test]
fn killing_a_greenlet_that_never_ran_drops_its_closure_and_never_runs_it() {
    let log = log();
    let flag = DropFlag(log.clone(), "captured");
    let l = log.clone();
    let h = spawn(move || {
        let _keep = &flag;
        say(&l, "ran");
    });
    h.kill();
    assert!(h.is_dead());
    yield_now();
    assert_eq!(*log.borrow(), ["dropped captured"]);
    let later = spawn_later(Duration::from_secs(60), || 1);
    let start = Instant::now();
    later.kill();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "a delayed greenlet dies at once"
    );
    assert!(matches!(later.join(), Err(HubError::Killed { .. })));
}

#[test]
fn shorter_sleeps_wake_first_and_equal_ones_in_spawn_order() {
    let log = log();
    let mut handles = Vec::new();
    for (name, ms) in [
        ("a30", 30),
        ("b10", 10),
        ("c20", 20),
        ("d10", 10),
        ("e10", 10),
    ] {
        let l = log.clone();
        handles.push(spawn(move || {
            sleep(MS(ms));
            say(&l, name);
        }));
    }
    joinall(&handles, JoinAll::new()).unwrap();
    assert_eq!(*log.borrow(), ["b10", "d10", "e10", "c20", "a30"]);
}

#[test]
fn yield_now_lets_every_other_ready_greenlet_run_once() {
    let log = log();
    let handles: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|name| {
            let l = log.clone();
            spawn(move || {
                for round in 0..3 {
                    say(&l, format!("{name}{round}"));
                    yield_now();
                }
            })
        })
        .collect();
    joinall(&handles, JoinAll::new()).unwrap();
    assert_eq!(
        *log.borrow(),
        ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"]
    );
}

#[test]
fn with_timeout_interrupts_at_the_next_wait_and_reports_the_elapsed_time() {
    let log = log();
    let l = log.clone();
    let err = with_timeout(MS(20), move || {
        let _guard = DropFlag(l.clone(), "inside");
        sleep(Duration::from_secs(60));
        say(&l, "not reached");
    })
    .unwrap_err();
    match err {
        HubError::TimedOut { limit, elapsed } => {
            assert_eq!(limit, MS(20));
            assert!(
                elapsed >= MS(20) && elapsed < Duration::from_secs(5),
                "{elapsed:?}"
            );
        }
        other => panic!("expected a timeout, got {other}"),
    }
    assert_eq!(*log.borrow(), ["dropped inside"]);
    // A block that finishes in time returns its value, and its timer is gone.
    assert_eq!(with_timeout(MS(200), || 5).unwrap(), 5);
    sleep(MS(5)); // no stray interrupt arrives later
}

#[test]
fn an_inner_timeout_does_not_swallow_the_outer_one() {
    let outer = with_timeout(MS(20), || {
        let inner = with_timeout(Duration::from_secs(10), || sleep(Duration::from_secs(60)));
        inner.is_ok() // not reached: the outer limit unwinds through the inner block
    });
    assert!(outer.unwrap_err().is_timeout());
}

#[test]
fn nested_limits_expiring_together_fire_the_inner_one_first() {
    // As in gevent: both timers fire in one turn of the loop (the body
    // blocks the thread past both before it waits). The inner block's limit
    // (the earlier deadline) is raised first, the code after the inner block
    // runs, and the outer limit is raised at the next wait.
    let log = log();
    let l = log.clone();
    let outer = with_timeout(MS(30), move || {
        let inner = with_timeout(MS(10), || {
            std::thread::sleep(MS(60)); // past both limits, without waiting
            sleep(Duration::from_secs(60));
        });
        say(
            &l,
            format!("after the inner block: timed out = {}", inner.is_err()),
        );
        sleep(Duration::from_secs(60)); // the outer limit is raised here
        say(&l, "not reached");
    });
    assert!(outer.unwrap_err().is_timeout());
    assert_eq!(*log.borrow(), ["after the inner block: timed out = true"]);
}

#[test]
fn with_timeout_works_inside_spawned_greenlets_too() {
    let h = spawn(|| with_timeout(MS(10), || sleep(Duration::from_secs(60))).is_err());
    assert!(h.join().unwrap());
}

#[test]
fn waiting_when_nothing_can_wake_you_names_every_waiting_greenlet() {
    let never = Event::new();
    let e = never.clone();
    let stuck = Builder::new()
        .name("stuck on the event")
        .spawn(move || e.wait())
        .unwrap();
    let err = stuck.wait().unwrap_err();
    let HubError::Deadlock(report) = &err else {
        panic!("expected a deadlock, got {err}");
    };
    let names: Vec<&str> = report.blocked.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"main"), "{err}");
    assert!(names.contains(&"stuck on the event"), "{err}");
    let text = err.to_string();
    assert!(text.contains("join(stuck on the event)"), "{text}");
    assert!(text.contains("Event #"), "{text}");
    // Setting the event un-sticks it.
    never.set();
    stuck.join().unwrap().unwrap();
}

#[test]
fn an_unjoined_panic_is_reported_once_and_the_others_finish() {
    let seen = diagnostics();
    let done = log();
    let d = done.clone();
    drop(
        Builder::new()
            .name("fire and forget")
            .spawn(|| panic!("nobody listens"))
            .unwrap(),
    );
    let worker = spawn(move || {
        sleep(MS(5));
        say(&d, "worker finished");
    });
    let watched = spawn(|| -> () { panic!("someone listens") });
    worker.join().unwrap();
    watched.wait().unwrap();
    drop(watched); // failed, never looked at: reported at drop
    let lines = seen.borrow().clone();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].contains("fire and forget") && lines[0].contains("nobody listens"),
        "{lines:?}"
    );
    assert!(lines[1].contains("someone listens"), "{lines:?}");
    assert_eq!(*done.borrow(), ["worker finished"]);
    // A joined panic is not reported.
    let _ = spawn(|| -> () { panic!("joined") }).join();
    assert_eq!(seen.borrow().len(), 2);
}

#[test]
fn the_blocking_detector_names_a_greenlet_that_blocks_the_thread() {
    let seen = diagnostics();
    set_blocking_threshold(Some(MS(20)));
    let polite = Builder::new()
        .name("polite")
        .spawn(|| sleep(MS(60)))
        .unwrap();
    polite.join().unwrap();
    assert!(
        seen.borrow().is_empty(),
        "the hub's sleep never blocks: {:?}",
        seen.borrow()
    );
    let rude = Builder::new()
        .name("rude")
        .spawn(|| std::thread::sleep(MS(60)))
        .unwrap();
    rude.join().unwrap();
    let lines = seen.borrow().clone();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("`rude`") && lines[0].contains("kept the hub"),
        "{lines:?}"
    );
    set_blocking_threshold(None);
    spawn(|| std::thread::sleep(MS(30))).join().unwrap();
    assert_eq!(seen.borrow().len(), 1, "turned off");
}

#[test]
fn time_spent_in_the_diagnostic_hook_is_not_blamed_on_the_next_greenlet() {
    // The hook itself takes a while (printing can): that is the hub's time,
    // not the next greenlet's. Only the greenlet that blocked is named.
    let seen = log();
    let sink = seen.clone();
    set_diagnostic_hook(move |d| {
        sink.borrow_mut().push(d.to_string());
        std::thread::sleep(MS(300));
    });
    set_blocking_threshold(Some(MS(100)));
    let rude = Builder::new()
        .name("rude")
        .spawn(|| std::thread::sleep(MS(150)))
        .unwrap();
    let polite = Builder::new().name("polite").spawn(yield_now).unwrap();
    rude.join().unwrap();
    polite.join().unwrap();
    let lines = seen.borrow().clone();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("`rude`"), "{lines:?}");
}

#[test]
fn three_sleepers_finish_well_under_the_sum_of_their_sleeps() {
    let start = Instant::now();
    let naps: Vec<_> = [100, 150, 250]
        .into_iter()
        .map(|ms| spawn(move || sleep(MS(ms))))
        .collect();
    joinall(&naps, JoinAll::new()).unwrap();
    let took = start.elapsed();
    assert!(took >= MS(250), "{took:?}");
    assert!(took < MS(450), "overlapped, not 500 ms: {took:?}");
}

#[test]
fn names_count_up_unless_given() {
    let a = spawn(stage_hub::current_name);
    let b = spawn(stage_hub::current_name);
    let c = Builder::new()
        .name("given")
        .spawn(stage_hub::current_name)
        .unwrap();
    let (a, b, c) = (a.join().unwrap(), b.join().unwrap(), c.join().unwrap());
    let n: u64 = a.strip_prefix("Greenlet-").unwrap().parse().unwrap();
    assert_eq!(b, format!("Greenlet-{}", n + 1));
    assert_eq!(c, "given");
    assert_eq!(stage_hub::current_name(), "main");
}

#[test]
fn a_thread_can_end_with_greenlets_still_waiting() {
    // The thread's hub kills them on the way out: their locals are dropped.
    let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = dropped.clone();
    let outcome = std::thread::spawn(move || {
        struct Flag(std::sync::Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let flag = Flag(d);
        let sleeper = spawn(move || {
            let _flag = flag;
            sleep(Duration::from_secs(60));
        });
        yield_now();
        drop(sleeper);
        "ended"
    })
    .join();
    assert_eq!(outcome.unwrap(), "ended");
    assert!(
        dropped.load(std::sync::atomic::Ordering::SeqCst),
        "the sleeper was unwound at thread exit"
    );
}

#[test]
fn spawn_later_starts_after_its_delay() {
    let log = log();
    let l = log.clone();
    let start = Instant::now();
    let late = spawn_later(MS(30), move || {
        say(&l, "late");
        start.elapsed()
    });
    let l = log.clone();
    let now = spawn(move || say(&l, "now"));
    now.join().unwrap();
    let waited = late.join().unwrap();
    assert!(waited >= MS(30), "{waited:?}");
    assert_eq!(*log.borrow(), ["now", "late"]);
}
