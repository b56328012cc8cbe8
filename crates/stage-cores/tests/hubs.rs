//! Work handed to another hub: it runs on that hub's thread, the caller's
//! hub keeps running while it waits, a panic comes back as the job's error,
//! and a hub that dies is an error every waiter sees.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use stage_cores::{CoresError, Hubs};

#[test]
fn a_job_runs_on_the_hub_it_was_handed_to_and_its_value_comes_back() {
    let hubs = Hubs::start(3).unwrap();
    let here = std::thread::current().id();
    for i in 0..3 {
        let (name, id) = hubs
            .hub(i)
            .spawn(|| {
                let me = std::thread::current();
                (me.name().unwrap_or_default().to_string(), me.id())
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(name, format!("hub-{i}"));
        assert_ne!(id, here);
    }
}

#[test]
fn jobs_wait_in_their_hub_and_the_callers_hub_keeps_running() {
    let hubs = Hubs::start(2).unwrap();
    let ticks = Rc::new(Cell::new(0u32));
    let ticker = {
        let ticks = ticks.clone();
        stage_hub::spawn(move || loop {
            stage_hub::sleep(Duration::from_millis(1));
            ticks.set(ticks.get() + 1);
        })
    };
    let start = Instant::now();
    // Ten jobs that each sleep 300 ms in their hub: five per hub. One after
    // another they would take 1.5 s per hub; overlapping, about 0.3 s.
    let jobs: Vec<_> = (0..10)
        .map(|i| {
            hubs.hub(i)
                .spawn(move || {
                    stage_hub::sleep(Duration::from_millis(300));
                    i * 2
                })
                .unwrap()
        })
        .collect();
    let values: Vec<usize> = jobs.into_iter().map(|j| j.join().unwrap()).collect();
    let took = start.elapsed();
    assert_eq!(values, (0..10).map(|i| i * 2).collect::<Vec<_>>());
    assert!(
        took < Duration::from_millis(900),
        "waits overlapped: {took:?}"
    );
    assert!(ticks.get() > 0, "this hub ran its ticker while it waited");
    ticker.kill();
}

#[test]
fn a_job_that_panics_is_an_error_and_its_hub_keeps_serving() {
    let hubs = Hubs::start(1).unwrap();
    let err = hubs
        .hub(0)
        .spawn(|| -> u32 { panic!("bad input 7") })
        .unwrap()
        .join()
        .unwrap_err();
    match &err {
        CoresError::Panicked { hub, message } => {
            assert_eq!(hub, "hub-0");
            assert!(message.contains("bad input 7"), "{message}");
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert_eq!(hubs.hub(0).spawn(|| 5).unwrap().join().unwrap(), 5);
}

#[test]
fn a_hub_that_dies_is_an_error_for_every_waiter_and_for_new_jobs() {
    let hubs = Hubs::start(2).unwrap();
    let victim = hubs.hub(1).clone();
    // A job that waits in hub-1 for a long time ...
    let waiting = victim
        .spawn(|| stage_hub::sleep(Duration::from_secs(60)))
        .unwrap();
    // ... then hub-1 dies: its diagnostic hook panics on the hub's own
    // stack (a hook must not fail), which ends the hub's thread.
    let _ = victim
        .spawn(|| {
            stage_hub::set_diagnostic_hook(|_| panic!("a broken diagnostic hook"));
            stage_hub::set_blocking_threshold(Some(Duration::from_millis(1)));
            std::thread::sleep(Duration::from_millis(20)); // blocks the hub: reported
        })
        .unwrap();
    let start = Instant::now();
    let err = waiting.join().unwrap_err();
    assert!(
        matches!(err, CoresError::HubDied { ref hub } if hub == "hub-1"),
        "{err:?}"
    );
    assert!(err.to_string().contains("died"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "seen at once, not after the sleep"
    );
    // New work for the dead hub fails at once; the other hub still works.
    assert!(matches!(
        victim.spawn(|| ()).map(|h| h.join()),
        Err(CoresError::HubDied { .. }) | Ok(Err(CoresError::HubDied { .. }))
    ));
    assert_eq!(hubs.hub(0).spawn(|| 3).unwrap().join().unwrap(), 3);
}

#[test]
fn shutting_down_lets_running_jobs_finish() {
    let hubs = Hubs::start(2).unwrap();
    let handle = hubs
        .hub(0)
        .spawn(|| {
            stage_hub::sleep(Duration::from_millis(50));
            "finished"
        })
        .unwrap();
    hubs.shutdown();
    assert_eq!(handle.join().unwrap(), "finished");
}

#[test]
fn what_crosses_between_hubs_is_send() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<stage_cores::Receiver<u8>>();
    send_sync::<stage_cores::Sender<u8>>();
    send_sync::<stage_cores::HubRef>();
    send::<stage_cores::RemoteHandle<u8>>();
    send_sync::<stage_hub::hub::RemoteWakeup>();
}
