//! `Wakeup`: another thread wakes a greenlet through the hub's mio waker,
//! the hub keeps running the others meanwhile, and a wait nobody can end is
//! a deadlock like any other.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use stage_hub::hub::Wakeup;
use stage_hub::{sleep, spawn, HubError};

#[test]
fn a_wake_from_another_thread_ends_the_wait_while_other_greenlets_run() {
    let wakeup = Wakeup::new().unwrap();
    let remote = wakeup.remote();
    let value = Arc::new(AtomicU64::new(0));
    let ticks = Rc::new(Cell::new(0u32));
    let ticker = {
        let ticks = ticks.clone();
        spawn(move || {
            for _ in 0..5 {
                sleep(Duration::from_millis(5));
                ticks.set(ticks.get() + 1);
            }
        })
    };
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let written = value.clone();
    let other = thread::spawn(move || {
        go_rx.recv().unwrap(); // after the ticker has finished
        written.store(7, Ordering::Release);
        assert!(remote.wake());
    });
    let waiter = spawn({
        let value = value.clone();
        move || {
            while value.load(Ordering::Acquire) == 0 {
                wakeup.wait().unwrap();
            }
            value.load(Ordering::Acquire)
        }
    });
    ticker.join().unwrap();
    assert_eq!(
        ticks.get(),
        5,
        "the hub ran the ticker while a greenlet waited"
    );
    go_tx.send(()).unwrap();
    assert_eq!(waiter.join().unwrap(), 7);
    other.join().unwrap();
}

#[test]
fn a_wake_that_comes_first_is_kept_for_the_next_wait() {
    let wakeup = Wakeup::new().unwrap();
    let remote = wakeup.remote();
    thread::spawn(move || remote.wake()).join().unwrap();
    let start = Instant::now();
    wakeup.wait_timeout(Duration::from_secs(10)).unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    // Taken: the next wait times out.
    assert!(wakeup
        .wait_timeout(Duration::from_millis(20))
        .unwrap_err()
        .is_timeout());
}

#[test]
fn many_wakes_before_the_hub_looks_coalesce() {
    let wakeup = Wakeup::new().unwrap();
    let remote = wakeup.remote();
    thread::spawn(move || {
        for _ in 0..1000 {
            remote.wake();
        }
    })
    .join()
    .unwrap();
    wakeup.wait_timeout(Duration::from_secs(10)).unwrap();
    assert!(wakeup
        .wait_timeout(Duration::from_millis(20))
        .unwrap_err()
        .is_timeout());
}

#[test]
fn a_wait_no_thread_can_end_is_a_deadlock_naming_the_wakeup() {
    let wakeup = Wakeup::new().unwrap();
    let err = wakeup.wait().unwrap_err();
    assert!(err.is_deadlock(), "{err}");
    assert!(
        err.to_string().contains("no other thread can ring it"),
        "{err}"
    );
}

#[test]
fn dropping_the_last_remote_wakes_the_waiter_and_then_the_wait_is_a_deadlock() {
    let wakeup = Wakeup::new().unwrap();
    let remote = wakeup.remote();
    let dropper = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        drop(remote);
    });
    // The drop wakes us (so we can notice nobody is left) ...
    wakeup.wait_timeout(Duration::from_secs(10)).unwrap();
    dropper.join().unwrap();
    // ... and with nobody left, waiting again is a deadlock, not a hang.
    assert!(wakeup.wait().unwrap_err().is_deadlock());
}

#[test]
fn a_killed_waiter_leaves_the_hub_able_to_see_a_deadlock() {
    let wakeup = Wakeup::new().unwrap();
    let remote = wakeup.remote();
    let waiter = spawn(move || wakeup.wait());
    stage_hub::yield_now(); // it parks, counted as waiting for another thread
    waiter.kill();
    assert!(matches!(waiter.join(), Err(HubError::Killed { .. })));
    // Nothing waits for the remote any more: an empty wait is a deadlock.
    let idle = Wakeup::new().unwrap();
    assert!(idle.wait().unwrap_err().is_deadlock());
    drop(remote);
}

#[test]
fn a_wake_after_the_hubs_thread_ended_says_nobody_will_see_it() {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let wakeup = Wakeup::new().unwrap();
        tx.send(wakeup.remote()).unwrap();
    })
    .join()
    .unwrap();
    let remote = rx.recv().unwrap();
    assert!(!remote.wake());
}
