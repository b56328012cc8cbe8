//! What happens at the edges: a stack overflow and the kernel's mapping
//! limit. Both end (or cripple) the process, so each runs in a child: this
//! test binary re-executed with `STAGE_GREENLET_CHILD` naming the scenario.

use std::process::Output;
use std::time::Duration;

use stage_greenlet::{Greenlet, GreenletError};

const CHILD: &str = "STAGE_GREENLET_CHILD";

/// Re-run this test binary for one test, in a child with `CHILD=scenario`;
/// the test fails if the child takes over 5 minutes.
fn run_child(test: &str, scenario: &str) -> Output {
    test_support::rerun_test(test, CHILD, scenario, Duration::from_secs(300))
}

fn recurse(depth: u64) -> u64 {
    // A frame with a kilobyte of locals the optimizer cannot drop, and a
    // call that is not in tail position.
    let pad = std::hint::black_box([depth as u8; 1024]);
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    1 + recurse(depth + 1) + u64::from(pad[(depth % 1024) as usize])
}

#[test]
fn stack_overflow_names_the_greenlet_and_its_stack_size() {
    if std::env::var(CHILD).as_deref() == Ok("overflow") {
        let g = Greenlet::builder()
            .name("deep-diver")
            .stack_size(64 * 1024)
            .spawn(|()| recurse(0))
            .unwrap();
        let _: u64 = g.switch(()).unwrap();
        unreachable!("the recursion is unbounded");
    }
    let out = run_child(
        "stack_overflow_names_the_greenlet_and_its_stack_size",
        "overflow",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the child must die: {stderr}");
    assert!(
        stderr.contains("greenlet `deep-diver` overflowed its stack of 65536 bytes"),
        "stderr was: {stderr}"
    );
    assert!(stderr.contains("stack_size"), "stderr was: {stderr}");
}

#[test]
fn a_fault_outside_any_greenlet_stack_is_left_to_the_default_handler() {
    if std::env::var(CHILD).as_deref() == Ok("null") {
        let _g = Greenlet::new(|()| ()).unwrap(); // installs our handler
                                                  // SAFETY: none; this child exists to fault on purpose.
        #[allow(clippy::undocumented_unsafe_blocks)]
        let v = unsafe { std::ptr::read_volatile(std::ptr::without_provenance::<u64>(16)) };
        println!("read {v}");
        return;
    }
    let out = run_child(
        "a_fault_outside_any_greenlet_stack_is_left_to_the_default_handler",
        "null",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!stderr.contains("overflowed"), "not ours, yet: {stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(libc_sigsegv()), "{stderr}");
    }
}

fn libc_sigsegv() -> i32 {
    11 // SIGSEGV on Linux
}

#[test]
fn running_out_of_memory_mappings_is_an_error_naming_vm_max_map_count() {
    if std::env::var(CHILD).as_deref() == Ok("maps") {
        let mut held = Vec::new();
        let err = loop {
            match Greenlet::new(|()| ()) {
                Ok(g) => held.push(g),
                Err(err) => break err,
            }
            assert!(held.len() < 1_000_000, "no mapping limit reached");
        };
        assert!(matches!(err, GreenletError::MapLimit { .. }), "{err}");
        println!("refused after {} greenlets: {err}", held.len());
        drop(held);
        // Dropping them frees mappings: creating works again.
        Greenlet::new(|()| ()).unwrap();
        println!("recovered");
        return;
    }
    let out = run_child(
        "running_out_of_memory_mappings_is_an_error_naming_vm_max_map_count",
        "maps",
    );
    test_support::assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("vm.max_map_count"), "{stdout}");
    assert!(stdout.contains("sysctl -w vm.max_map_count="), "{stdout}");
    assert!(stdout.contains("recovered"), "{stdout}");
}

#[test]
fn a_destructor_that_panics_during_a_kill_aborts_the_process() {
    // Rust aborts when a destructor panics during an unwind; a kill is an
    // unwind, so the same holds here: a clear abort, never a half-killed
    // greenlet or an unwind running off its stack.
    if std::env::var(CHILD).as_deref() == Ok("panicky-drop") {
        struct Panicky;
        impl Drop for Panicky {
            fn drop(&mut self) {
                panic!("a destructor panicked during the kill");
            }
        }
        let g = Greenlet::new(|()| {
            let _p = Panicky;
            let () = stage_greenlet::switch_to_parent(()).unwrap();
        })
        .unwrap();
        let () = g.switch(()).unwrap();
        drop(g);
        println!("survived (must not)");
        return;
    }
    let out = run_child(
        "a_destructor_that_panics_during_a_kill_aborts_the_process",
        "panicky-drop",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains("survived"), "{stdout}");
    assert!(
        stderr.contains("a destructor panicked during the kill"),
        "{stderr}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(6), "SIGABRT expected: {stderr}");
    }
}
