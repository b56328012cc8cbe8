//! `--trace FILE`: the hub's timeline is the lesson's. Each test runs the
//! stage binary with `--trace`, reads the Chrome trace-event file back
//! (serde_json, through `trace::read`) and checks what the notes describe.

use std::process::Command;
use std::time::Duration;

use test_support::{connect, round_trip, Server, Signal};
use trace::read::Recorded;

const BIN: &str = env!("CARGO_BIN_EXE_stage-hub");

/// Run `stage-hub ARGS --trace FILE` and read FILE back.
fn traced(args: &[&str]) -> Recorded {
    test_support::traced(BIN, args, Duration::from_secs(120)).0
}

#[test]
fn eat_and_play_run_in_the_notes_order_and_park_in_sleep() {
    let r = traced(&["eat-play", "--quick"]);
    let (eat, play) = (
        r.track("Greenlet-1").unwrap(),
        r.track("Greenlet-2").unwrap(),
    );
    let order: Vec<&str> = r
        .runs
        .iter()
        .filter(|s| s.track == eat || s.track == play)
        .map(|s| r.name_of(s.track))
        .collect();
    // eat food 1, play 1, (play's shorter nap ends) play 2, eat food 2.
    assert_eq!(
        order,
        ["Greenlet-1", "Greenlet-2", "Greenlet-2", "Greenlet-1"]
    );
    for g in [eat, play] {
        let waits = r.waits(g);
        assert_eq!(waits.len(), 1, "{waits:?}");
        assert_eq!(waits[0].on, "sleep");
    }
    // main waited in joinall, and the hub polled while everyone slept.
    let main = r.track("main").unwrap();
    assert!(
        r.waits(main)[0].on.starts_with("joinall"),
        "{:?}",
        r.waits(main)
    );
    assert!(r.spans.iter().any(|s| s.name == "poll"));
}

#[test]
fn the_three_naps_sleep_at_the_same_time() {
    let r = traced(&["sleepers", "--quick", "--runs", "1"]);
    let mut naps: Vec<_> = r
        .tracks
        .iter()
        .flat_map(|t| r.waits(t.id))
        .filter(|w| w.on == "sleep")
        .collect();
    naps.sort_by(|a, b| a.start.total_cmp(&b.start));
    assert!(naps.len() >= 3, "{naps:?}");
    let first_run = &naps[..3];
    let last_to_fall_asleep = first_run.iter().map(|w| w.start).fold(0.0, f64::max);
    let first_to_wake = first_run.iter().map(|w| w.end).fold(f64::MAX, f64::min);
    assert!(
        last_to_fall_asleep < first_to_wake,
        "the naps do not overlap: {first_run:?}"
    );
}

#[test]
fn echo_server_traces_until_sigterm_with_socket_waits_and_polls() {
    let file = test_support::trace_file();
    let server = Server::start(
        Command::new(BIN)
            .args(["echo-server", "--addr", "127.0.0.1:0", "--trace"])
            .arg(&file),
    );
    for _ in 0..3 {
        let mut client = connect(server.addr());
        assert_eq!(round_trip(&mut client, b"hello").unwrap(), b"HELLO");
    }
    let stopped = server.stop(Signal::SIGTERM);
    assert!(stopped.status.success(), "{stopped}");
    assert!(
        stopped
            .stderr
            .iter()
            .any(|l| l.contains("events written to")),
        "{stopped}"
    );
    let r = Recorded::read(&file).unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_file(&file);
    let socket_waits: Vec<String> = r
        .tracks
        .iter()
        .flat_map(|t| r.waits(t.id))
        .map(|w| w.on)
        .filter(|on| on.starts_with("socket read"))
        .collect();
    // The acceptor waits to accept, each connection waits for its bytes.
    assert!(socket_waits.len() >= 4, "{socket_waits:?}");
    assert!(r.spans.iter().filter(|s| s.name == "poll").count() >= 3);
    assert!(r.track("Hub").is_some());
}
