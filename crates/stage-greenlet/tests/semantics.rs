//! Greenlet semantics, one test per rule of the acceptance list.

use std::cell::RefCell;
use std::panic;
use std::rc::Rc;

use stage_greenlet::{
    current, switch_to_parent, Greenlet, GreenletError, GreenletExit, SwitchError,
};

/// Events in the order they happened, shared by the greenlets of one test.
#[derive(Clone, Default)]
struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    fn push(&self, event: impl Into<String>) {
        self.0.borrow_mut().push(event.into());
    }
    fn events(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

/// Logs when it is dropped: proves a frame was unwound.
struct DropProbe(Log, &'static str);

impl Drop for DropProbe {
    fn drop(&mut self) {
        self.0.push(format!("drop {}", self.1));
    }
}

fn parent() -> Greenlet {
    current().parent().expect("not main")
}

/// A place to leave a greenlet handle for another greenlet to pick up.
type Slot = Rc<RefCell<Option<Greenlet>>>;

/// A greenlet, started, suspended in a switch to its parent with a probe
/// named `probe` on its stack. Were it ever resumed, it would log
/// "tail (must not run)".
fn suspended_with_probe(log: &Log, probe: &'static str) -> Greenlet {
    let l = log.clone();
    let g = Greenlet::new(move |()| {
        let _probe = DropProbe(l.clone(), probe);
        let () = switch_to_parent(()).unwrap();
        l.push("tail (must not run)");
    })
    .unwrap();
    let () = g.switch(()).unwrap();
    g
}

#[test]
fn first_switch_value_is_the_argument_and_values_flow_both_ways() {
    let g = Greenlet::new(|start: i64| {
        let mut total = start;
        loop {
            let next: i64 = parent().switch(total).unwrap();
            total += next;
        }
    })
    .unwrap();
    assert!(!g.is_started());
    assert_eq!(g.switch::<i64, i64>(10).unwrap(), 10);
    assert!(g.is_started() && !g.is_dead());
    assert_eq!(g.switch::<i64, i64>(5).unwrap(), 15);
    assert_eq!(g.switch::<i64, i64>(-20).unwrap(), -5);
}

#[test]
fn return_value_goes_to_the_parent() {
    let g = Greenlet::new(|name: String| format!("hello {name}")).unwrap();
    let back: String = g.switch("egon".to_string()).unwrap();
    assert_eq!(back, "hello egon");
    assert!(g.is_dead());
}

#[test]
fn return_value_goes_to_a_live_grandparent_when_the_parent_is_dead() {
    let log = Log::default();
    let l = log.clone();
    // `middle` creates `leaf` (so is its parent), starts it, and returns:
    // `leaf` is left suspended with a dead parent.
    let middle = Greenlet::new(move |()| {
        let l2 = l.clone();
        let leaf = Greenlet::new(move |()| {
            let v: u32 = parent().switch(()).unwrap(); // back to middle
            l2.push(format!("leaf got {v}"));
            v + 1
        })
        .unwrap();
        let () = leaf.switch(()).unwrap();
        l.push("middle returns");
        leaf
    })
    .unwrap();
    let leaf: Greenlet = middle.switch(()).unwrap();
    assert!(middle.is_dead());
    // leaf's parent (middle) is dead: its return value comes to main.
    let result: u32 = leaf.switch(41u32).unwrap();
    assert_eq!(result, 42);
    assert_eq!(log.events(), ["middle returns", "leaf got 41"]);
}

#[test]
fn parent_can_be_changed_but_never_into_a_cycle() {
    let a = Greenlet::new(|()| ()).unwrap();
    let b = Greenlet::builder().parent(&a).spawn(|()| ()).unwrap();
    assert!(b.parent().unwrap() == a);
    assert!(a.parent().unwrap().is_main());
    match a.set_parent(&b) {
        Err(err @ GreenletError::Cycle { .. }) => {
            assert!(err.to_string().contains("ancestor"), "{err}")
        }
        other => panic!("expected a cycle error, got {other:?}"),
    }
    assert!(matches!(a.set_parent(&a), Err(GreenletError::Cycle { .. })));
    assert!(matches!(
        current().set_parent(&a),
        Err(GreenletError::MainHasNoParent)
    ));
    // A legal change: b's return value now goes to main.
    b.set_parent(&current()).unwrap();
    assert!(b.parent().unwrap().is_main());
    a.set_parent(&b).unwrap(); // no longer a cycle
    assert!(a.parent().unwrap() == b);
}

#[test]
fn switching_to_a_dead_greenlet_is_an_error() {
    let g = Greenlet::builder().name("done").spawn(|()| 1u8).unwrap();
    assert_eq!(g.switch::<(), u8>(()).unwrap(), 1);
    match g.switch::<(), u8>(()) {
        Err(SwitchError::Dead { greenlet }) => assert_eq!(greenlet, "done"),
        other => panic!("expected Dead, got {other:?}"),
    }
}

#[test]
fn a_value_of_the_wrong_type_is_refused_before_switching() {
    let log = Log::default();
    let l = log.clone();
    let g = Greenlet::new(move |n: u32| {
        l.push(format!("started with {n}"));
        n
    })
    .unwrap();
    match g.switch::<&str, u32>("not a number") {
        Err(SwitchError::WrongType { expected, found }) => {
            assert_eq!(expected, "u32");
            assert_eq!(found, "&str");
        }
        other => panic!("expected WrongType, got {other:?}"),
    }
    assert!(!g.is_started(), "a refused switch must not start it");
    assert_eq!(g.switch::<u32, u32>(7).unwrap(), 7);
    assert_eq!(log.events(), ["started with 7"]);
    // A return value the parent does not expect is dropped, with an error.
    let h = Greenlet::new(|()| "text").unwrap();
    assert!(matches!(
        h.switch::<(), u64>(()),
        Err(SwitchError::WrongType { .. })
    ));
    assert!(h.is_dead());
}

#[test]
fn a_panic_reaches_the_parent_with_its_payload() {
    let g = Greenlet::builder()
        .name("boom")
        .spawn(|()| -> u32 { panic!("kaboom {}", 42) })
        .unwrap();
    let err = g.switch::<(), u32>(()).unwrap_err();
    assert_eq!(err.panic_message(), Some("kaboom 42"));
    assert!(g.is_dead());
    match err {
        SwitchError::Panicked { greenlet, payload } => {
            assert_eq!(greenlet, "boom");
            let greenlet = greenlet.clone();
            // The parent may re-raise it.
            let reraised =
                panic::catch_unwind(panic::AssertUnwindSafe(|| panic::resume_unwind(payload)));
            let again = SwitchError::Panicked {
                greenlet,
                payload: reraised.unwrap_err(),
            };
            assert_eq!(again.panic_message(), Some("kaboom 42"));
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    // The thread carries on switching normally.
    let h = Greenlet::new(|x: u8| x * 2).unwrap();
    assert_eq!(h.switch::<u8, u8>(21).unwrap(), 42);
}

#[test]
fn throw_kills_at_the_pending_switch_and_control_returns_to_the_parent() {
    let log = Log::default();
    let l = log.clone();
    let g = Greenlet::new(move |()| {
        let _probe = DropProbe(l.clone(), "probe");
        l.push("before switch");
        let () = parent().switch(()).unwrap();
        l.push("after switch (must not run)");
    })
    .unwrap();
    let () = g.switch(()).unwrap();
    g.throw().unwrap();
    assert!(g.is_dead());
    assert_eq!(log.events(), ["before switch", "drop probe"]);
    // Killing again, or killing the dead, is harmless.
    g.throw().unwrap();
}

#[test]
fn throw_at_a_greenlet_that_never_ran_marks_it_dead_without_running_it() {
    let log = Log::default();
    let l = log.clone();
    let probe = DropProbe(log.clone(), "captured");
    let g = Greenlet::new(move |()| {
        let _keep = &probe;
        l.push("ran (must not)");
    })
    .unwrap();
    g.throw().unwrap();
    assert!(g.is_dead() && !g.is_started());
    assert_eq!(log.events(), ["drop captured"]);
    assert!(matches!(
        g.switch::<(), ()>(()),
        Err(SwitchError::Dead { .. })
    ));
}

#[test]
fn main_and_the_running_greenlet_cannot_be_killed() {
    assert!(matches!(
        current().throw(),
        Err(SwitchError::CannotKill { .. })
    ));
    let g = Greenlet::new(|()| current().throw()).unwrap();
    let inner: Result<(), SwitchError> = g.switch(()).unwrap();
    assert!(matches!(inner, Err(SwitchError::CannotKill { .. })));
}

#[test]
fn a_kill_can_be_observed_by_catch_unwind_as_greenlet_exit() {
    let log = Log::default();
    let l = log.clone();
    let g = Greenlet::new(move |()| {
        let caught = panic::catch_unwind(|| {
            let () = parent().switch(()).unwrap();
        });
        let payload = caught.unwrap_err();
        l.push(format!(
            "saw GreenletExit: {}",
            payload.is::<GreenletExit>()
        ));
        panic::resume_unwind(payload);
    })
    .unwrap();
    let () = g.switch(()).unwrap();
    g.throw().unwrap();
    assert_eq!(log.events(), ["saw GreenletExit: true"]);
    assert!(g.is_dead());
}

#[test]
fn killed_child_reports_killed_to_a_parent_waiting_for_its_value() {
    // The child is killed by a third greenlet; its parent (main) is the one
    // waiting for its return value, so main's pending switch says Killed.
    let child = Greenlet::builder()
        .name("victim")
        .spawn(|()| {
            let () = parent().switch(()).unwrap();
            7u8
        })
        .unwrap();
    let () = child.switch(()).unwrap();
    let c = child.clone();
    let killer = Greenlet::new(move |()| {
        c.set_parent(&c.parent().unwrap()).unwrap(); // parent stays main
        c.throw()
    })
    .unwrap();
    // killer kills child; child's death goes to main, the child's parent.
    match killer.switch::<(), u8>(()) {
        Err(SwitchError::Killed { greenlet }) => assert_eq!(greenlet, "victim"),
        other => panic!("expected Killed, got {other:?}"),
    }
    assert!(child.is_dead());
    drop(killer); // suspended in throw(): killed in turn
}

#[test]
fn dropping_a_suspended_greenlet_unwinds_it_and_runs_its_locals_drop() {
    let log = Log::default();
    let g = suspended_with_probe(&log, "local");
    assert!(log.events().is_empty());
    drop(g);
    assert_eq!(log.events(), ["drop local"]);
}

#[test]
fn dropping_the_last_handle_from_inside_another_greenlet_kills_it_and_comes_back() {
    let log = Log::default();
    let victim = suspended_with_probe(&log, "victim local");
    let l = log.clone();
    let dropper = Greenlet::new(move |v: Greenlet| {
        l.push("dropper drops");
        drop(v);
        l.push("dropper continues");
        5u8
    })
    .unwrap();
    assert_eq!(dropper.switch::<Greenlet, u8>(victim).unwrap(), 5);
    assert_eq!(
        log.events(),
        ["dropper drops", "drop victim local", "dropper continues"]
    );
}

#[test]
fn a_greenlet_that_drops_its_own_last_handle_runs_to_completion() {
    let log = Log::default();
    let l = log.clone();
    let slot: Slot = Rc::default();
    let s = slot.clone();
    let g = Greenlet::new(move |()| {
        drop(s.borrow_mut().take()); // the only handle, dropped while running
        l.push("still running");
        3u8
    })
    .unwrap();
    *slot.borrow_mut() = Some(g.clone());
    let first = g.clone();
    drop(g);
    // `first` is moved into the switch call's receiver and dropped after.
    assert_eq!(first.switch::<(), u8>(()).unwrap(), 3);
    assert_eq!(log.events(), ["still running"]);
}

#[test]
fn nested_greenlets_create_and_switch_to_children() {
    let log = Log::default();
    let l = log.clone();
    let outer = Greenlet::builder()
        .name("outer")
        .spawn(move |n: u32| {
            let mut sum = 0;
            for i in 0..n {
                let l = l.clone();
                let child = Greenlet::new(move |x: u32| {
                    l.push(format!("child {x} parent {}", parent().name()));
                    let y: u32 = parent().switch(x * 10).unwrap();
                    y + 1
                })
                .unwrap();
                assert!(child.parent().unwrap() == current());
                let a: u32 = child.switch(i).unwrap();
                let b: u32 = child.switch(a).unwrap();
                sum += b;
            }
            sum
        })
        .unwrap();
    // children return i*10 + 1 for i in 0..3: 1 + 11 + 21
    assert_eq!(outer.switch::<u32, u32>(3).unwrap(), 33);
    assert_eq!(
        log.events(),
        [
            "child 0 parent outer",
            "child 1 parent outer",
            "child 2 parent outer"
        ]
    );
}

#[test]
fn symmetric_switching_between_siblings() {
    // Two greenlets ping-pong directly, neither going through main.
    let log = Log::default();
    let ping_slot: Slot = Rc::default();
    let l = log.clone();
    let ps = ping_slot.clone();
    let pong = Greenlet::new(move |mut n: u32| loop {
        l.push(format!("pong {n}"));
        let ping = ps.borrow().clone().unwrap();
        n = ping.switch(n + 1).unwrap();
    })
    .unwrap();
    let l = log.clone();
    let pg = pong.clone();
    let ping = Greenlet::new(move |mut n: u32| {
        while n < 5 {
            l.push(format!("ping {n}"));
            n = pg.switch(n + 1).unwrap();
        }
        n
    })
    .unwrap();
    *ping_slot.borrow_mut() = Some(ping.clone());
    assert_eq!(ping.switch::<u32, u32>(0).unwrap(), 6);
    assert_eq!(
        log.events(),
        ["ping 0", "pong 1", "ping 2", "pong 3", "ping 4", "pong 5"]
    );
    ping_slot.borrow_mut().take();
}

#[test]
fn switching_to_yourself_hands_the_value_back() {
    assert_eq!(current().switch::<u8, u8>(9).unwrap(), 9);
    let g = Greenlet::new(|()| current().switch::<&str, &str>("me")).unwrap();
    assert_eq!(
        g.switch::<(), Result<&str, SwitchError>>(())
            .unwrap()
            .unwrap(),
        "me"
    );
    // Whatever type the running greenlet last waited for (here `()`, its
    // argument): a switch to itself is decided by the two types it names.
    let g = Greenlet::new(|()| {
        let same = current().switch::<u32, u32>(5);
        let other = current().switch::<u32, u8>(6);
        (same, other)
    })
    .unwrap();
    type Both = (Result<u32, SwitchError>, Result<u8, SwitchError>);
    let (same, other) = g.switch::<(), Both>(()).unwrap();
    assert_eq!(same.unwrap(), 5);
    match other {
        Err(SwitchError::WrongType { expected, found }) => {
            assert_eq!((expected, found), ("u8", "u32"))
        }
        other => panic!("expected WrongType, got {other:?}"),
    }
}

#[test]
fn ten_thousand_greenlets_alive_at_once() {
    const N: u64 = 10_000;
    let log = Log::default();
    let mut all = Vec::with_capacity(N as usize);
    for i in 0..N {
        let l = log.clone();
        let g = Greenlet::new(move |()| {
            let _probe = DropProbe(l.clone(), "one");
            let back: u64 = parent().switch(i).unwrap();
            back * 2
        })
        .unwrap();
        assert_eq!(g.switch::<(), u64>(()).unwrap(), i);
        all.push(g);
    }
    // All 10,000 are suspended mid-function, each on its own stack.
    assert!(all.iter().all(|g| g.is_started() && !g.is_dead()));
    let total: u64 = all
        .iter()
        .take(100)
        .map(|g| g.switch::<u64, u64>(1).unwrap())
        .sum();
    assert_eq!(total, 200);
    drop(all); // kills the other 9,900
    assert_eq!(log.events().len(), N as usize);
}

#[test]
fn names_ids_and_identity() {
    let a = Greenlet::builder().name("alpha").spawn(|()| ()).unwrap();
    let b = Greenlet::new(|()| ()).unwrap();
    assert_eq!(a.name(), "alpha");
    assert_eq!(b.name(), format!("Greenlet-{}", b.id()));
    assert_ne!(a.id(), b.id());
    assert!(a.clone() == a && a != b && a.ptr_eq(&a.clone()));
    assert!(current().is_main() && current().name() == "main" && current().id() == 0);
    assert_eq!(a.stack_size(), stage_greenlet::DEFAULT_STACK_SIZE);
    let small = Greenlet::builder()
        .stack_size(20_000)
        .spawn(|()| ())
        .unwrap();
    assert_eq!(small.stack_size(), 20_480);
    assert!(matches!(
        Greenlet::builder().stack_size(10).spawn(|()| ()),
        Err(GreenletError::StackSize { .. })
    ));
}

#[test]
fn each_thread_has_its_own_main_greenlet() {
    let here = current().id();
    let there = std::thread::spawn(|| {
        let g = Greenlet::new(|x: u8| x + 1).unwrap();
        (current().is_main(), g.switch::<u8, u8>(1).unwrap())
    })
    .join()
    .unwrap();
    assert_eq!(here, 0);
    assert_eq!(there, (true, 2));
}

#[test]
fn a_thread_may_exit_with_greenlets_still_suspended() {
    std::thread::spawn(|| {
        let g = Greenlet::new(|()| {
            let () = parent().switch(()).unwrap();
        })
        .unwrap();
        let () = g.switch(()).unwrap();
        std::mem::forget(g.clone()); // keep a handle past the thread's end
    })
    .join()
    .unwrap();
}

#[test]
fn dropping_a_greenlet_that_never_ran_drops_what_its_closure_captured() {
    let log = Log::default();
    let probe = DropProbe(log.clone(), "captured");
    let g = Greenlet::new(move |()| {
        let _keep = &probe;
    })
    .unwrap();
    assert!(log.events().is_empty());
    drop(g);
    assert_eq!(log.events(), ["drop captured"]);
}

/// `outer`, started and suspended in a switch to main, holding the only
/// handle to `inner`, its child, which it started and which is suspended
/// in `inner_waits`; each has a probe on its stack.
fn outer_holding_inner(log: &Log, inner_waits: fn()) -> Greenlet {
    let l = log.clone();
    let outer = Greenlet::new(move |()| {
        let l2 = l.clone();
        let inner = Greenlet::new(move |()| {
            let _probe = DropProbe(l2.clone(), "inner local");
            inner_waits();
        })
        .unwrap();
        let () = inner.switch(()).unwrap(); // inner now suspended, held only here
        let _probe = DropProbe(l.clone(), "outer local");
        let () = switch_to_parent(()).unwrap();
    })
    .unwrap();
    let () = outer.switch(()).unwrap();
    outer
}

#[test]
fn killing_a_greenlet_kills_the_suspended_greenlets_only_it_held() {
    let log = Log::default();
    let outer = outer_holding_inner(&log, || {
        // Not `parent().switch(..)`: that would park a handle to `outer`
        // on inner's stack, and the two would keep each other alive (see
        // the next test).
        let () = switch_to_parent(()).unwrap();
    });
    drop(outer);
    // outer's locals drop in reverse order: its probe, then `inner`, whose
    // last handle going kills it in turn.
    assert_eq!(log.events(), ["drop outer local", "drop inner local"]);
}

#[test]
fn handles_parked_on_each_others_stacks_keep_both_alive() {
    // The honest limit of reference counting without a cycle collector:
    // `inner` waits inside `parent().switch(..)`, whose temporary handle
    // to `outer` lives on inner's stack, while `outer` holds `inner`.
    let log = Log::default();
    let outer = outer_holding_inner(&log, || {
        let () = parent().switch(()).unwrap();
    });
    let back_door = outer.clone();
    drop(outer);
    assert!(
        log.events().is_empty(),
        "a handle remains: nothing is killed"
    );
    // Whoever still has a handle can kill it explicitly.
    back_door.throw().unwrap();
    assert_eq!(log.events(), ["drop outer local", "drop inner local"]);
}

#[test]
fn a_destructor_may_switch_while_its_greenlet_is_being_killed() {
    // A local whose Drop switches to a helper greenlet and back: the kill's
    // unwind is suspended mid-way and resumed, as a hub's cleanup would do.
    struct SwitchOnDrop(Log, Greenlet);
    impl Drop for SwitchOnDrop {
        fn drop(&mut self) {
            self.0.push("drop starts");
            let panicking: bool = self.1.switch(()).unwrap();
            self.0
                .push(format!("drop resumes (helper saw panicking = {panicking})"));
        }
    }
    let log = Log::default();
    let victim_slot: Slot = Rc::default();
    let (l, vs) = (log.clone(), victim_slot.clone());
    let helper = Greenlet::new(move |()| {
        l.push("helper runs");
        let victim = vs.borrow().clone().unwrap();
        let () = victim.switch(std::thread::panicking()).unwrap();
    })
    .unwrap();
    let (l, h) = (log.clone(), helper.clone());
    let victim = Greenlet::new(move |()| {
        let _guard = SwitchOnDrop(l.clone(), h);
        let () = parent().switch(()).unwrap();
    })
    .unwrap();
    *victim_slot.borrow_mut() = Some(victim.clone());
    let () = victim.switch(()).unwrap();
    victim.throw().unwrap();
    assert!(victim.is_dead());
    assert_eq!(
        log.events(),
        [
            "drop starts",
            "helper runs",
            "drop resumes (helper saw panicking = true)"
        ]
    );
    victim_slot.borrow_mut().take();
}

#[test]
fn a_return_value_the_parent_does_not_want_is_dropped() {
    let log = Log::default();
    let l = log.clone();
    let g = Greenlet::new(move |()| DropProbe(l.clone(), "returned value")).unwrap();
    match g.switch::<(), u32>(()) {
        Err(SwitchError::WrongType { expected, .. }) => assert_eq!(expected, "u32"),
        other => panic!("expected WrongType, got {other:?}"),
    }
    assert_eq!(log.events(), ["drop returned value"]);
}

#[test]
fn a_greenlet_running_with_no_handle_left_is_kept_alive_by_the_thread() {
    // `a`'s last handle is dropped by its grandchild `e`: `a` is e's
    // ancestor, so it is not killed. Later `a` runs again (its child `d`
    // returns to it) with no handle anywhere, and drops `d`, the last thing
    // whose parent link pointed at it. It must still be alive: it is running.
    // (Natively a use-after-free here goes unnoticed; `.ci/valgrind-greenlet`
    // runs this under memcheck, which reports it.)
    let log = Log::default();
    let main = current();
    let slot_a: Slot = Rc::default();
    let slot_e: Slot = Rc::default();
    let (l, sa, se, m) = (log.clone(), slot_a.clone(), slot_e.clone(), main.clone());
    let a = Greenlet::new(move |()| {
        let (l2, m2) = (l.clone(), m.clone());
        let d = Greenlet::new(move |()| {
            let (l3, m3) = (l2.clone(), m2.clone());
            let e = Greenlet::new(move |()| {
                let () = m3.switch(()).unwrap(); // to main, which gives up `a`
                drop(sa.borrow_mut().take()); // a's last handle
                l3.push("e dropped a's last handle");
            })
            .unwrap();
            *se.borrow_mut() = Some(e.clone());
            let () = e.switch(()).unwrap(); // e returns here
                                            // Nothing of e's points at `d` (or `a`) any more.
            e.set_parent(&m2).unwrap();
            5u8
        })
        .unwrap();
        let five: u8 = d.switch(()).unwrap();
        drop(d); // the last reference to `a` besides the thread's own
        l.push(format!("a runs on with {five}"));
        7u8
    })
    .unwrap();
    let () = a.switch(()).unwrap();
    *slot_a.borrow_mut() = Some(a);
    let e = slot_e.borrow_mut().take().unwrap();
    // `a` returns to main, its parent.
    assert_eq!(e.switch::<(), u8>(()).unwrap(), 7);
    assert_eq!(
        log.events(),
        ["e dropped a's last handle", "a runs on with 5"]
    );
}

#[test]
fn a_returned_value_dropped_for_its_type_may_release_its_greenlet() {
    // The value `g` returns is the wrong type for main, so main drops it;
    // its Drop kills `holder` (which held a handle to `g`) and drops the
    // last handle to `g` itself. Main must finish receiving safely (memcheck
    // would report a read of `g` after it was freed).
    struct Parting {
        me: Option<Greenlet>,
        holder: Greenlet,
        log: Log,
    }
    impl Drop for Parting {
        fn drop(&mut self) {
            self.holder.throw().unwrap();
            drop(self.me.take());
            self.log.push("the returned value is dropped");
        }
    }
    let log = Log::default();
    let main = current();
    let slot_h: Slot = Rc::default();
    let (l, sh) = (log.clone(), slot_h.clone());
    let holder = Greenlet::new(move |()| {
        let (l2, sh2) = (l.clone(), sh.clone());
        let g = Greenlet::builder()
            .parent(&main)
            .spawn(move |()| Parting {
                me: Some(current()),
                holder: sh2.borrow_mut().take().unwrap(),
                log: l2,
            })
            .unwrap();
        let () = g.switch(()).unwrap(); // g returns to main, not here
        l.push("holder resumed (must not)");
    })
    .unwrap();
    *slot_h.borrow_mut() = Some(holder.clone());
    match holder.switch::<(), u32>(()) {
        Err(SwitchError::WrongType { expected, .. }) => assert_eq!(expected, "u32"),
        other => panic!("expected WrongType, got {other:?}"),
    }
    assert!(holder.is_dead());
    assert_eq!(log.events(), ["the returned value is dropped"]);
    // The thread carries on.
    let h = Greenlet::new(|x: u8| x + 1).unwrap();
    assert_eq!(h.switch::<u8, u8>(1).unwrap(), 2);
}

/// A child of the running greenlet, not started, whose body switches
/// straight to `main`; a handle to it is left in `slot` for main to switch
/// back into later.
fn child_that_switches_to(main: &Greenlet, slot: &Slot) -> Greenlet {
    let main = main.clone();
    let c = Greenlet::new(move |()| {
        let () = main.switch(()).unwrap();
    })
    .unwrap();
    *slot.borrow_mut() = Some(c.clone());
    c
}

#[test]
fn a_greenlet_that_survives_its_kill_is_kept_alive_by_the_thread() {
    // Dropping `a`'s last handle kills it, but it catches the kill and
    // switches away instead of dying. Later its child returns into it, and
    // it drops the child, the last thing whose parent link pointed at it.
    // It must still be alive (memcheck would report it freed while running).
    let log = Log::default();
    let main = current();
    let slot_c: Slot = Rc::default();
    let (l, sc, m) = (log.clone(), slot_c.clone(), main.clone());
    let a = Greenlet::new(move |()| {
        let c = child_that_switches_to(&m, &sc); // main, which drops `a`
        let caught = panic::catch_unwind(panic::AssertUnwindSafe(|| {
            let () = c.switch(()).unwrap();
        }));
        l.push(format!(
            "a caught the kill: {}",
            caught.is_err_and(|p| p.is::<GreenletExit>())
        ));
        let () = m.switch(()).unwrap(); // refuse to die; `c` returns here
        c.set_parent(&m).unwrap();
        drop(c); // the last reference to `a` besides the thread's own
        l.push("a runs on");
        7u8
    })
    .unwrap();
    let () = a.switch(()).unwrap();
    drop(a); // kills it; it switches back here instead of dying
    let c = slot_c.borrow_mut().take().unwrap();
    // `c` returns to `a`, which returns to main (its parent since the kill).
    assert_eq!(c.switch::<(), u8>(()).unwrap(), 7);
    assert_eq!(log.events(), ["a caught the kill: true", "a runs on"]);
}

#[test]
fn a_greenlet_whose_killer_is_unwound_mid_kill_stays_owned() {
    // `d` drops `a`'s last handle, which kills `a`; a destructor on `a`'s
    // stack switches to main in the middle of that unwind, and main kills
    // `d` while it waits for `a` to die. Later `a`'s child `c` returns into
    // it, and the destructor re-parents `c`, the last thing besides the
    // thread that pointed at `a`. `a` must still be alive: it is running.
    // (Memcheck reports a use-after-free here if it is not.)
    struct Guard {
        main: Greenlet,
        c: Greenlet,
        log: Log,
    }
    impl Drop for Guard {
        fn drop(&mut self) {
            self.log.push("a's unwind pauses");
            let () = self.main.switch(()).unwrap(); // `c` returns here
            self.c.set_parent(&self.main).unwrap();
            self.log.push("a's unwind goes on");
        }
    }
    let log = Log::default();
    let main = current();
    let slot_c: Slot = Rc::default();
    let (l, sc, m) = (log.clone(), slot_c.clone(), main.clone());
    let a = Greenlet::new(move |()| {
        let c = child_that_switches_to(&m, &sc);
        let _guard = Guard {
            main: m,
            c: c.clone(),
            log: l,
        };
        let () = c.switch(()).unwrap(); // killed here
    })
    .unwrap();
    let () = a.switch(()).unwrap(); // `c` switched back to main
    let l = log.clone();
    let d = Greenlet::new(move |a: Greenlet| {
        drop(a); // kills `a`, which pauses and switches to main
        l.push("d resumed (must not)");
    })
    .unwrap();
    let () = d.switch(a).unwrap();
    drop(d); // kills `d` while it waits for `a` to die
    let c = slot_c.borrow_mut().take().unwrap();
    // `c` returns into `a`, whose death (its parent `d` is dead) comes here.
    match c.switch::<(), ()>(()) {
        Err(SwitchError::Killed { .. }) => {}
        other => panic!("expected a's death, got {other:?}"),
    }
    assert_eq!(log.events(), ["a's unwind pauses", "a's unwind goes on"]);
}

#[test]
fn a_weak_reference_switches_but_does_not_keep_a_greenlet_alive() {
    let log = Log::default();
    let l = log.clone();
    let g = Greenlet::new(move |()| {
        let _probe = DropProbe(l.clone(), "local");
        loop {
            let () = switch_to_parent(()).unwrap();
        }
    })
    .unwrap();
    let weak = g.downgrade();
    assert!(weak.ptr_eq(&g) && weak.id() == g.id());
    let () = weak.switch(()).unwrap();
    let () = weak.switch(()).unwrap();
    assert!(log.events().is_empty());
    drop(g); // the last handle: killed, whatever weak references exist
    assert_eq!(log.events(), ["drop local"]);
    assert!(weak.is_dead());
    assert!(matches!(
        weak.switch::<(), ()>(()),
        Err(SwitchError::Dead { .. })
    ));
}

#[test]
fn a_fresh_greenlet_whose_last_handle_goes_never_runs_even_through_a_weak_reference() {
    let log = Log::default();
    let (l, probe) = (log.clone(), DropProbe(log.clone(), "captured"));
    let g = Greenlet::new(move |()| {
        let _kept = &probe;
        l.push("ran (must not)");
    })
    .unwrap();
    let weak = g.downgrade();
    drop(g);
    assert_eq!(
        log.events(),
        ["drop captured"],
        "its closure is dropped at once"
    );
    assert!(weak.is_dead());
    assert!(weak.switch::<(), ()>(()).is_err());
    assert_eq!(log.events(), ["drop captured"]);
}

#[test]
fn kill_through_a_weak_reference_comes_back_to_the_killer() {
    let log = Log::default();
    let l = log.clone();
    let outer = Greenlet::new(move |()| loop {
        let () = switch_to_parent(()).unwrap();
        l.push("outer resumed");
    })
    .unwrap();
    let () = outer.switch(()).unwrap();
    let l = log.clone();
    let inner = Greenlet::builder()
        .parent(&outer)
        .spawn(move |()| {
            let _probe = DropProbe(l.clone(), "inner local");
            loop {
                let () = switch_to_parent(()).unwrap();
            }
        })
        .unwrap();
    let () = inner.switch(()).unwrap(); // inner -> outer -> main
    assert_eq!(log.events(), ["outer resumed"]);
    inner.downgrade().kill().unwrap();
    assert!(inner.is_dead());
    // Its death came here: outer was not resumed with it.
    assert_eq!(log.events(), ["outer resumed", "drop inner local"]);
    assert!(!outer.is_dead());
    // Main, and an ancestor of the running greenlet, cannot be killed so.
    assert!(matches!(
        current().downgrade().kill(),
        Err(SwitchError::CannotKill { .. })
    ));
    // A fresh greenlet is discarded without running; a dead one left alone.
    let l = log.clone();
    let fresh = Greenlet::new(move |()| l.push("ran (must not)")).unwrap();
    fresh.downgrade().kill().unwrap();
    assert!(fresh.is_dead());
    inner.downgrade().kill().unwrap();
    assert_eq!(log.events(), ["outer resumed", "drop inner local"]);
}

/// greenlet.py's `throw(type, value)`: the target sees the payload.
#[derive(Debug, PartialEq)]
struct Oops(u32);

#[test]
fn throw_with_raises_the_payload_and_a_catcher_may_switch_back_a_value() {
    let log = Log::default();
    let l = log.clone();
    let g = Greenlet::new(move |()| {
        let caught = panic::catch_unwind(panic::AssertUnwindSafe(|| {
            let () = switch_to_parent(()).unwrap();
        }));
        let payload = caught.unwrap_err();
        let oops = payload.downcast::<Oops>().expect("the thrown payload");
        l.push(format!("caught {oops:?}"));
        // Answer the thrower with the type it waits for.
        let () = switch_to_parent(oops.0 * 2).unwrap();
    })
    .unwrap();
    let () = g.switch(()).unwrap();
    let answer: u32 = g.throw_with(Oops(21)).unwrap();
    assert_eq!(answer, 42);
    assert_eq!(log.events(), ["caught Oops(21)"]);
    assert!(!g.is_dead());
}

#[test]
fn an_uncaught_payload_kills_the_greenlet_and_reaches_its_parent() {
    let log = Log::default();
    let g = suspended_with_probe(&log, "local");
    match g.throw_with::<Oops, ()>(Oops(7)) {
        Err(SwitchError::Panicked { payload, .. }) => {
            assert_eq!(payload.downcast::<Oops>().ok().map(|b| *b), Some(Oops(7)));
        }
        other => panic!("expected the payload back, got {other:?}"),
    }
    assert!(g.is_dead());
    assert_eq!(log.events(), ["drop local"], "its stack was unwound");
    assert!(matches!(
        g.throw_with::<Oops, ()>(Oops(8)),
        Err(SwitchError::Dead { .. })
    ));
}

#[test]
fn throw_with_into_a_greenlet_that_never_ran_kills_it_unrun() {
    let log = Log::default();
    let l = log.clone();
    let g = Greenlet::new(move |()| l.push("ran (must not)")).unwrap();
    match g.throw_with::<Oops, ()>(Oops(1)) {
        Err(SwitchError::Panicked { payload, .. }) => assert!(payload.is::<Oops>()),
        other => panic!("expected the payload back, got {other:?}"),
    }
    assert!(g.is_dead());
    let h = Greenlet::new(|()| ()).unwrap();
    assert!(matches!(
        h.throw_with::<GreenletExit, ()>(GreenletExit),
        Err(SwitchError::Killed { .. })
    ));
    assert!(log.events().is_empty());
    assert!(matches!(
        current().throw_with::<Oops, ()>(Oops(2)),
        Err(SwitchError::CannotKill { .. })
    ));
}
