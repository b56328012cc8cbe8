//! Unwinding never aborts: a greenlet being killed (or timed out, or
//! panicking) runs its destructors, and those may wait in the hub.
//!
//! Rust aborts the process when a second unwind starts while a thread is
//! already unwinding, so the scenarios that used to abort run in a child:
//! this test binary re-executed with `STAGE_HUB_CHILD` naming the scenario.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use stage_hub::{sleep, spawn, with_timeout, yield_now, Builder, HubError};

const CHILD: &str = "STAGE_HUB_CHILD";
const MS: fn(u64) -> Duration = Duration::from_millis;

/// Re-run this test binary for one test, in a child with `CHILD=scenario`:
/// whether it exited cleanly, and its stdout and stderr.
fn run_child(test: &str, scenario: &str) -> (bool, String, String) {
    let out = test_support::rerun_test(test, CHILD, scenario, Duration::from_secs(120));
    test_support::outcome(&out)
}

/// [`run_child`] for a scenario that must not abort: its stdout and stderr.
fn run_child_to_its_end(test: &str, scenario: &str) -> (String, String) {
    let (clean, stdout, stderr) = run_child(test, scenario);
    assert!(clean, "the child aborted:\n{stdout}\n{stderr}");
    (stdout, stderr)
}

fn child_is(scenario: &str) -> bool {
    std::env::var(CHILD).as_deref() == Ok(scenario)
}

/// Where a [`NapOnDrop`] records how its nap went.
type NapLog = Rc<RefCell<Vec<String>>>;

/// Sleeps in the hub while it is dropped, and records how the nap went.
struct NapOnDrop {
    nap: Duration,
    log: NapLog,
}

impl NapOnDrop {
    /// A nap of `nap` to take when dropped, and the log it will write to.
    fn with_log(nap: Duration) -> (NapOnDrop, NapLog) {
        let log = NapLog::default();
        let nap = NapOnDrop {
            nap,
            log: log.clone(),
        };
        (nap, log)
    }
}

impl Drop for NapOnDrop {
    fn drop(&mut self) {
        let start = Instant::now();
        sleep(self.nap);
        let napped = start.elapsed();
        let how = if napped >= self.nap {
            "the nap completed"
        } else {
            "the nap was cut short"
        };
        self.log.borrow_mut().push(how.to_string());
    }
}

#[test]
fn a_destructor_may_wait_while_its_greenlet_is_killed() {
    let (nap, log) = NapOnDrop::with_log(MS(10));
    let g = spawn(move || {
        let _nap = nap;
        sleep(Duration::from_secs(60));
    });
    yield_now(); // g parks in its long sleep
    g.kill();
    assert!(matches!(g.join(), Err(HubError::Killed { .. })));
    assert_eq!(*log.borrow(), ["the nap completed"]);
}

#[test]
fn a_second_interrupt_during_an_unwind_ends_the_wait_instead_of_aborting() {
    // g is killed inside a with_timeout block; its destructor naps past the
    // block's limit, so the timeout fires while the kill is still
    // unwinding. Starting a second unwind there would abort the process:
    // the nap must end early instead, and the kill must finish.
    if child_is("kill-then-timeout") {
        let (nap, log) = NapOnDrop::with_log(Duration::from_secs(5));
        let g = spawn(move || {
            let _ = with_timeout(MS(30), move || {
                let _nap = nap;
                sleep(Duration::from_secs(60));
            });
            "ran on after the kill"
        });
        yield_now();
        g.kill();
        let outcome = g.join();
        println!("outcome: {outcome:?}; log: {:?}", log.borrow());
        return;
    }
    let (stdout, stderr) = run_child_to_its_end(
        "a_second_interrupt_during_an_unwind_ends_the_wait_instead_of_aborting",
        "kill-then-timeout",
    );
    assert!(
        stdout.contains("outcome: Err(Killed") && stdout.contains("the nap was cut short"),
        "{stdout}\n{stderr}"
    );
}

#[test]
fn killing_twice_while_the_first_kill_unwinds_does_not_abort() {
    if child_is("double-kill") {
        let (nap, log) = NapOnDrop::with_log(Duration::from_secs(5));
        let g = Rc::new(spawn(move || {
            let _nap = nap;
            sleep(Duration::from_secs(60));
        }));
        yield_now();
        // A second killer arrives while the first kill's unwind naps.
        let again = g.clone();
        let second = spawn(move || {
            sleep(MS(20)); // the first kill's unwind is napping by now
            again.kill();
        });
        g.kill();
        second.join().unwrap();
        println!("dead: {}; log: {:?}", g.is_dead(), log.borrow());
        return;
    }
    let (stdout, stderr) = run_child_to_its_end(
        "killing_twice_while_the_first_kill_unwinds_does_not_abort",
        "double-kill",
    );
    assert!(
        stdout.contains("dead: true") && stdout.contains("the nap was cut short"),
        "{stdout}\n{stderr}"
    );
}

#[test]
fn the_first_hub_may_be_made_by_a_destructor_during_a_panic() {
    // No hub exists in the child until the destructor below makes one
    // while the thread unwinds: installing the hub's panic hook then must
    // wait for a calmer moment, not abort.
    if child_is("hub-in-panic") {
        struct YieldOnDrop;
        impl Drop for YieldOnDrop {
            fn drop(&mut self) {
                yield_now();
            }
        }
        let caught = std::panic::catch_unwind(|| {
            let _y = YieldOnDrop;
            panic!("the first panic");
        });
        println!("caught: {}", caught.is_err());
        // The hook is installed later: a spawned greenlet's panic is its
        // result, not printed when it happens.
        let err = spawn(|| -> u8 { panic!("kept for the joiner") })
            .join()
            .unwrap_err();
        println!("joined: {err}");
        return;
    }
    let (stdout, stderr) = run_child_to_its_end(
        "the_first_hub_may_be_made_by_a_destructor_during_a_panic",
        "hub-in-panic",
    );
    assert!(stdout.contains("caught: true"), "{stdout}\n{stderr}");
    assert!(stdout.contains("joined: greenlet"), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("kept for the joiner") && !stderr.contains("kept for the joiner"),
        "the greenlet's panic is its result, printed by nobody but the joiner:\n{stdout}\n{stderr}"
    );
}

#[test]
fn a_destructor_that_panics_during_a_kill_aborts_with_its_message_and_greenlet() {
    // Rust aborts when a destructor panics during an unwind. The hub keeps
    // a spawned greenlet's panic quiet (it is the greenlet's result), but
    // this one never reaches a joiner: it must be printed, with the
    // greenlet's name, as stage-greenlet alone prints it.
    if child_is("panicky-drop") {
        struct Panicky;
        impl Drop for Panicky {
            fn drop(&mut self) {
                panic!("a destructor panicked during the kill");
            }
        }
        let g = Builder::new()
            .name("doomed worker")
            .spawn(|| {
                let _p = Panicky;
                sleep(Duration::from_secs(60));
            })
            .unwrap();
        yield_now();
        g.kill();
        println!("survived (must not)");
        return;
    }
    let (clean, stdout, stderr) = run_child(
        "a_destructor_that_panics_during_a_kill_aborts_with_its_message_and_greenlet",
        "panicky-drop",
    );
    assert!(!clean, "{stdout}\n{stderr}");
    assert!(!stdout.contains("survived"), "{stdout}");
    assert!(
        stderr.contains("a destructor panicked during the kill"),
        "{stderr}"
    );
    assert!(stderr.contains("doomed worker"), "{stderr}");
}

#[test]
fn a_timeout_unwinding_through_a_destructor_that_waits_completes() {
    // The timeout's unwind runs the destructor, which naps; nothing else
    // interrupts it, so the nap completes and the block reports the timeout.
    let (nap, log) = NapOnDrop::with_log(MS(10));
    let err = with_timeout(MS(10), move || {
        let _nap = nap;
        sleep(Duration::from_secs(60));
    })
    .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(*log.borrow(), ["the nap completed"]);
    // And the greenlet goes on normally afterwards: no stray interrupt.
    let slept = Rc::new(Cell::new(false));
    let s = slept.clone();
    spawn(move || {
        sleep(MS(1));
        s.set(true);
    })
    .join()
    .unwrap();
    assert!(slept.get());
}

#[test]
fn a_panic_whose_destructor_waits_past_a_timeout_is_not_unwound_twice() {
    // main panics inside a with_timeout block; a destructor naps past the
    // block's limit while the panic unwinds. The limit must not start a
    // second unwind (that aborts): the nap ends early, and the panic goes
    // on to whoever catches it.
    if child_is("panic-then-timeout") {
        let (nap, log) = NapOnDrop::with_log(Duration::from_secs(5));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            with_timeout(MS(20), move || {
                let _nap = nap;
                panic!("the block panicked");
            })
        }));
        let message = caught
            .err()
            .and_then(|p| p.downcast_ref::<&str>().map(|s| s.to_string()));
        println!("caught: {message:?}; log: {:?}", log.borrow());
        return;
    }
    let (stdout, stderr) = run_child_to_its_end(
        "a_panic_whose_destructor_waits_past_a_timeout_is_not_unwound_twice",
        "panic-then-timeout",
    );
    assert!(
        stdout.contains("caught: Some(\"the block panicked\")")
            && stdout.contains("the nap was cut short"),
        "{stdout}\n{stderr}"
    );
}
