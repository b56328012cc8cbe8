//! The API a gevent user reaches for, tested from gevent's documented
//! behaviour (and its test suite: test__greenlet.py, test__event.py,
//! test__pool.py, test__timeout.py, test__joinall.py): handles and their
//! links, AsyncResult, Timeout as a value, wait/iwait, joinall's count,
//! Group and Pool.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use stage_hub::hub::{iwait, wait, Wait, Waitable};
use stage_hub::{
    joinall, sleep, spawn, yield_now, AsyncResult, Builder, Event, Group, HubError, JoinAll, Pool,
    Queue, Timeout,
};

const MS: fn(u64) -> Duration = Duration::from_millis;

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn say(log: &Log, line: impl Into<String>) {
    log.borrow_mut().push(line.into());
}

// Handles.

#[test]
fn several_greenlets_may_wait_on_one_handle() {
    let worker = spawn(|| {
        sleep(MS(5));
        String::from("done")
    });
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let w = worker.clone();
            spawn(move || w.get())
        })
        .collect();
    for w in waiters {
        assert_eq!(w.join().unwrap().unwrap(), "done");
    }
    assert!(worker.ready() && worker.successful());
    assert_eq!(worker.exception().map(|e| e.to_string()), None);
    // The value moves out once; get clones it for any number of handles.
    let other = worker.clone();
    assert_eq!(worker.join().unwrap(), "done");
    assert!(matches!(other.join(), Err(HubError::ValueTaken { .. })));
}

#[test]
fn a_failure_is_the_exception_and_a_kill_is_not() {
    let quiet = Rc::new(RefCell::new(Vec::new()));
    let q = quiet.clone();
    stage_hub::set_diagnostic_hook(move |d| q.borrow_mut().push(d.to_string()));
    let failing = spawn(|| -> u8 { panic!("boom") });
    let killed = spawn(|| sleep(Duration::from_secs(60)));
    yield_now();
    killed.kill();
    failing.wait().unwrap();
    assert!(failing.ready() && !failing.successful());
    assert!(
        matches!(failing.exception(), Some(HubError::Panicked { message, .. }) if message.contains("boom"))
    );
    // gevent: a greenlet killed with GreenletExit counts as successful.
    assert!(killed.ready() && killed.successful());
    assert!(killed.exception().is_none());
    assert!(quiet.borrow().is_empty(), "looked at, so not reported");
}

#[test]
fn links_run_in_the_hub_in_order_and_only_for_their_outcome() {
    let log = log();
    let ok = spawn(|| 7);
    let bad = Builder::new()
        .name("bad")
        .spawn(|| -> u8 { panic!("no") })
        .unwrap();
    let l = log.clone();
    ok.link(move |h| say(&l, format!("ok: link sees {}", h.name())));
    let l = log.clone();
    ok.link_value(move |v| say(&l, format!("ok: value {v}")));
    let l = log.clone();
    ok.link_exception(move |_| say(&l, "ok: exception (must not)"));
    let l = log.clone();
    bad.link_value(move |_| say(&l, "bad: value (must not)"));
    let l = log.clone();
    bad.link_exception(move |e| say(&l, format!("bad: exception {}", e.is_timeout())));
    let l = log.clone();
    let gone = bad.link(move |_| say(&l, "unlinked (must not)"));
    assert!(bad.unlink(gone));
    assert!(!bad.unlink(gone), "only once");
    joinall(std::slice::from_ref(&ok), JoinAll::new()).unwrap();
    bad.wait().unwrap();
    yield_now(); // the hub runs the callbacks
    let lines = log.borrow().clone();
    assert!(lines[0].starts_with("ok: link sees Greenlet-"), "{lines:?}");
    assert_eq!(&lines[1..], ["ok: value 7", "bad: exception false"]);
    // Linked after it finished: runs soon, in the hub.
    let l = log.clone();
    ok.link_value(move |v| say(&l, format!("late: value {v}")));
    yield_now();
    assert_eq!(log.borrow().last().unwrap(), "late: value 7");
}

#[test]
fn kill_nowait_returns_at_once_and_kill_timeout_bounds_the_wait() {
    struct SlowDrop(Duration);
    impl Drop for SlowDrop {
        fn drop(&mut self) {
            sleep(self.0); // the unwind waits in the hub
        }
    }
    let slow = spawn(|| {
        let _d = SlowDrop(MS(200));
        sleep(Duration::from_secs(60));
    });
    yield_now();
    slow.kill_nowait();
    assert!(
        !slow.is_dead(),
        "nothing waited: it unwinds when the hub runs it"
    );
    let err = slow.kill_timeout(MS(10)).unwrap_err();
    assert!(err.is_timeout(), "still unwinding: {err}");
    slow.wait().unwrap();
    assert!(slow.is_dead());
    let quick = spawn(|| sleep(Duration::from_secs(60)));
    yield_now();
    quick.kill_timeout(Duration::from_secs(5)).unwrap();
    assert!(quick.is_dead());
}

// AsyncResult (test__event.py's TestAsyncResult).

#[test]
fn an_async_result_wakes_every_waiter_with_its_value_or_failure() {
    let value: AsyncResult<u32> = AsyncResult::new();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let v = value.clone();
            spawn(move || v.get())
        })
        .collect();
    yield_now();
    assert!(!value.ready());
    value.set(5).unwrap();
    assert_eq!(value.set(6), Err(6), "it cannot be reset");
    for r in readers {
        assert_eq!(r.join().unwrap().unwrap(), Ok(5));
    }
    let failure: AsyncResult<u32, &str> = AsyncResult::new();
    let f = failure.clone();
    let reader = spawn(move || f.get());
    yield_now();
    failure.set_exception("interrupted").unwrap();
    assert_eq!(reader.join().unwrap().unwrap(), Err("interrupted"));
    assert_eq!(failure.exception(), Some("interrupted"));
    assert!(!failure.successful());
}

#[test]
fn an_async_result_get_can_time_out() {
    let never: AsyncResult<()> = AsyncResult::new();
    match never.get_timeout(MS(5)) {
        Err(HubError::TimedOut { limit, .. }) => assert_eq!(limit, MS(5)),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(never.try_get(), None);
}

// Timeout as a value (test__timeout.py).

#[test]
fn a_timeout_starts_cancels_and_says_whether_it_is_pending() {
    let mut t = Timeout::new(MS(20));
    assert!(!t.pending());
    t.start().unwrap();
    assert!(t.pending());
    t.cancel();
    assert!(!t.pending());
    sleep(MS(30)); // cancelled: it does not fire
                   // Started and dropped: cancelled too.
    drop(Timeout::start_new(MS(1)).unwrap());
    sleep(MS(5));
}

#[test]
fn an_expired_timeout_unwinds_the_next_wait_to_its_run() {
    let log = log();
    let l = log.clone();
    let err = Timeout::new(MS(10))
        .run(move || {
            say(&l, "before");
            sleep(Duration::from_secs(60));
            say(&l, "after (must not)");
        })
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(*log.borrow(), ["before"]);
    // A custom error (gevent's Timeout(seconds, exception)).
    #[derive(Debug, PartialEq)]
    struct TooSlow;
    let custom = Timeout::new(MS(5)).run_or(TooSlow, || sleep(Duration::from_secs(60)));
    assert_eq!(custom, Err(TooSlow));
    // Caught by hand: `caught` tells this timeout's unwind from others.
    let t = Timeout::start_new(MS(5)).unwrap();
    let payload = std::panic::catch_unwind(|| sleep(Duration::from_secs(60))).unwrap_err();
    assert!(t.caught(&*payload));
    assert!(!Timeout::new(MS(5)).caught(&*payload));
}

// wait / iwait / joinall's count (test__joinall.py, gevent.wait's docs).

#[test]
fn wait_returns_the_first_ready_of_a_mix() {
    let (ev, q) = (Event::new(), Queue::<u8>::unbounded());
    let result: AsyncResult<u8> = AsyncResult::new();
    let slow = spawn(|| sleep(MS(500)));
    let r = result.clone();
    spawn(move || {
        sleep(MS(5));
        r.set(1).unwrap();
    });
    let objects = [
        Waitable::from(&slow),
        (&ev).into(),
        (&q).into(),
        (&result).into(),
    ];
    assert_eq!(wait(&objects, Wait::any()).unwrap(), [3]);
    // With a timeout that passes first: TimedOut, as every limit here.
    let err = wait(&objects, Wait::all().timeout(MS(5))).unwrap_err();
    assert!(
        matches!(err, HubError::TimedOut { limit, .. } if limit == MS(5)),
        "{err}"
    );
    assert_eq!(wait(&objects, Wait::any().timeout(MS(5))).unwrap(), [3]);
    ev.set();
    q.put(9).unwrap();
    assert_eq!(wait(&objects, Wait::any().count(3)).unwrap(), [1, 2, 3]);
    slow.kill();
    assert_eq!(wait(&objects, Wait::all()).unwrap(), [0, 1, 2, 3]);
}

#[test]
fn an_event_set_and_cleared_while_waited_on_still_counts() {
    let ev = Event::new();
    let e = ev.clone();
    spawn(move || {
        e.set();
        e.clear();
    });
    let objects = [Waitable::from(&ev)];
    assert_eq!(wait(&objects, Wait::any()).unwrap(), [0]);
    assert!(!ev.is_set());
}

#[test]
fn iwait_yields_in_the_order_they_become_ready() {
    // Each greenlet finishes when its gate opens, and a starter opens them
    // in the order 1, 2, 0, a nap apart: the order is set by the
    // program, not by timers racing a loaded machine.
    let gates: Vec<Event> = (0..3).map(|_| Event::new()).collect();
    let handles: Vec<_> = gates
        .iter()
        .map(|gate| {
            let gate = gate.clone();
            spawn(move || gate.wait().unwrap())
        })
        .collect();
    let starter = {
        let gates = gates.clone();
        spawn(move || {
            for i in [1, 2, 0] {
                gates[i].set();
                sleep(MS(1));
            }
        })
    };
    let objects: Vec<Waitable> = handles.iter().map(Waitable::from).collect();
    let order: Vec<usize> = iwait(&objects, None).collect::<Result<_, _>>().unwrap();
    assert_eq!(order, [1, 2, 0]);
    starter.join().unwrap();
    // A timeout ends the iteration with an error after what was ready.
    let never = Event::new();
    let objects = [Waitable::from(&never)];
    let mut it = iwait(&objects, Some(MS(5)));
    assert!(it.next().unwrap().unwrap_err().is_timeout());
    assert!(it.next().is_none());
}

#[test]
fn joinall_with_a_count_returns_the_finished_handles() {
    let handles: Vec<_> = [40u64, 1, 20, 2]
        .into_iter()
        .map(|ms| {
            spawn(move || {
                sleep(MS(ms));
                ms
            })
        })
        .collect();
    let done = joinall(&handles, JoinAll::new().count(2)).unwrap();
    let mut values: Vec<u64> = done.iter().map(|h| h.value().unwrap()).collect();
    values.sort_unstable();
    assert_eq!(values, [1, 2]);
    assert_eq!(joinall(&handles, JoinAll::new()).unwrap().len(), 4);
}

// Group and Pool (test__pool.py).

#[test]
fn a_group_joins_and_kills_its_greenlets_and_forgets_finished_ones() {
    let group = Group::new();
    let quick = group.spawn(|| sleep(MS(1))).unwrap();
    let slow = group.spawn(|| sleep(Duration::from_secs(60))).unwrap();
    let outside = spawn(|| sleep(Duration::from_secs(60)));
    group.add(&outside);
    assert_eq!(group.len(), 3);
    assert!(group.contains(&outside));
    group.discard(&outside);
    assert!(!group.contains(&outside));
    quick.wait().unwrap();
    yield_now(); // the hub runs the link that takes it out
    let names: Vec<String> = group.members().iter().map(|m| m.name()).collect();
    assert_eq!(names, [slow.name()]);
    assert!(group.join_timeout(MS(5)).unwrap_err().is_timeout());
    group.kill();
    assert!(slow.is_dead() && group.is_empty());
    group.join().unwrap();
    outside.kill();
}

#[test]
fn a_pool_maps_in_order_and_bounds_how_many_run() {
    let pool = Pool::new(2);
    let running = Rc::new(Cell::new(0));
    let peak = Rc::new(Cell::new(0));
    let (r, p) = (running.clone(), peak.clone());
    let doubled = pool
        .map(
            move |ms: u64| {
                r.set(r.get() + 1);
                p.set(p.get().max(r.get()));
                sleep(MS(ms));
                r.set(r.get() - 1);
                ms * 2
            },
            [15, 5, 10, 1],
        )
        .unwrap();
    assert_eq!(doubled, [30, 10, 20, 2]);
    assert_eq!(peak.get(), 2);
    let squares: Vec<u32> = pool
        .imap(|x: u32| x * x, 1..=5)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(squares, [1, 4, 9, 16, 25]);
    let unordered: Vec<u64> = pool
        .imap_unordered(
            |ms: u64| {
                sleep(MS(ms));
                ms
            },
            [20, 1],
        )
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(unordered, [1, 20]);
    assert_eq!(
        pool.imap(|x: u8| x, Vec::<u8>::new()).count(),
        0,
        "empty imap"
    );
}

#[test]
fn a_failed_item_fails_map_and_is_its_own_err_in_imap() {
    let quiet = Rc::new(RefCell::new(Vec::new()));
    let q = quiet.clone();
    stage_hub::set_diagnostic_hook(move |d| q.borrow_mut().push(d.to_string()));
    let group = Group::new();
    let odd = |x: u8| -> u8 {
        assert!(x.is_multiple_of(2), "odd item {x}");
        x
    };
    assert!(matches!(
        group.map(odd, [2, 3, 4]),
        Err(HubError::Panicked { .. })
    ));
    let results: Vec<Result<u8, HubError>> = group.imap(odd, [2, 3, 4]).collect();
    assert!(results[0].is_ok() && results[1].is_err() && results[2].is_ok());
}

#[test]
fn a_wait_that_fails_is_the_last_result_of_imap() {
    // The items wait on an event nobody sets, so the wait for the next
    // result (imap_unordered) or for the item's greenlet (imap) is a
    // deadlock: it comes out as the last result, and the iterator ends.
    let never = Event::new();
    let group = Group::new();
    let (a, b) = (never.clone(), never.clone());
    let unordered: Vec<Result<(), HubError>> = group
        .imap_unordered(move |_: u8| drop(a.wait()), [1, 2])
        .collect();
    assert!(
        matches!(unordered[..], [Err(HubError::Deadlock(_))]),
        "{unordered:?}"
    );
    let ordered: Vec<Result<(), HubError>> = group.imap(move |_: u8| drop(b.wait()), [3]).collect();
    assert!(
        matches!(ordered[..], [Err(HubError::Deadlock(_))]),
        "{ordered:?}"
    );
}

#[test]
fn apply_runs_inside_the_pool_and_is_reentrant() {
    // test__pool.py test_reentrant: apply from inside a full pool runs
    // directly instead of waiting for a slot it holds itself.
    let pool = Pool::new(1);
    let p = pool.clone();
    let result = pool.apply(move || p.apply(|| 5 + 1).unwrap()).unwrap();
    assert_eq!(result, 6);
}

#[test]
fn a_pool_counts_added_greenlets_and_waits_for_a_free_slot() {
    // test__pool.py test_add_method, test_add_method_timeout, test_discard.
    let pool = Pool::new(1);
    let first = spawn(|| sleep(Duration::from_secs(60)));
    let second = spawn(|| sleep(Duration::from_secs(60)));
    assert_eq!(pool.free(), 1);
    pool.add(&first).unwrap();
    assert_eq!((pool.free(), pool.len()), (0, 1));
    assert!(pool.add_timeout(&second, MS(5)).unwrap_err().is_timeout());
    assert!(pool.wait_available_timeout(MS(5)).unwrap_err().is_timeout());
    pool.discard(&first);
    assert_eq!((pool.free(), pool.len()), (1, 0));
    assert_eq!(pool.wait_available().unwrap(), 1);
    first.kill();
    second.kill();
    let started = Instant::now();
    let p = pool.clone();
    let blocker = pool.spawn(move || sleep(MS(10))).unwrap();
    assert_eq!(p.wait_available().unwrap(), 1, "once the blocker finished");
    assert!(blocker.is_dead() && started.elapsed() >= MS(10));
}

// Greenlet-local storage (gevent's local; test__local.py).

#[test]
fn each_greenlet_sees_its_own_local_value_and_it_goes_when_it_dies() {
    struct Counted(Rc<Cell<u32>>, Cell<u32>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let local = stage_hub::hub::Local::new(move || Counted(d.clone(), Cell::new(0)));
    let workers: Vec<_> = (1..=4u32)
        .map(|n| {
            let local = local.clone();
            spawn(move || {
                for _ in 0..n {
                    local.with(|c| c.1.set(c.1.get() + 1));
                    yield_now();
                }
                local.with(|c| c.1.get())
            })
        })
        .collect();
    joinall(&workers, JoinAll::new()).unwrap();
    let seen: Vec<u32> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    assert_eq!(seen, [1, 2, 3, 4], "each counted only its own visits");
    assert_eq!(drops.get(), 4, "each value went with its greenlet");
    assert!(local.is_empty());
    local.set(Counted(Rc::new(Cell::new(0)), Cell::new(9)));
    assert_eq!(local.with(|c| c.1.get()), 9, "main's own");
    assert_eq!(local.len(), 1);
}
