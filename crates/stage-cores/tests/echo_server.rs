//! The public command line `stage-cores echo-server --addr A --hubs T
//! --procs P`: the address on start, one summary over every worker on
//! SIGTERM/SIGINT, a worker killed with SIGKILL reported and restarted while
//! the others keep serving, bad flags refused, no process left behind.

use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::kill;
use nix::unistd::Pid;
use test_support::{alive, connect, round_trip, Server, Signal};

const BIN: &str = env!("CARGO_BIN_EXE_stage-cores");

/// `stage-cores echo-server --addr 127.0.0.1:0 ARGS`, in a process group of
/// its own, killed with everything in it if the test fails first (its
/// workers, in groups of their own, stop when its pipe to them closes).
fn start(args: &[&str]) -> Server {
    Server::start(
        Command::new(BIN)
            .arg("echo-server")
            .args(["--addr", "127.0.0.1:0"])
            .args(args),
    )
}

/// The pids of the first `n` workers, as the server announces them.
fn worker_pids(server: &mut Server, n: usize) -> Vec<u32> {
    (0..n)
        .map(|i| {
            let line = server
                .stdout
                .next_containing(&format!("worker {i}: pid"), Duration::from_secs(5));
            line.rsplit(' ').next().unwrap().parse().unwrap()
        })
        .collect()
}

/// Send `signal` to `pid`, a process the test knows is there: one that is
/// already gone (ESRCH) fails the test like any other error.
fn send_signal(signal: Signal, pid: u32) {
    let target = Pid::from_raw(i32::try_from(pid).expect("a pid fits an i32"));
    kill(target, signal).unwrap_or_else(|e| panic!("kill({pid}, {signal}): {e}"));
}

/// `served C connections, echoed B bytes, E errors` → (C, B, E).
fn counts(line: &str) -> (u64, u64, u64) {
    let num = |after: &str| -> u64 {
        let at = line
            .find(after)
            .unwrap_or_else(|| panic!("{after:?} in {line:?}"));
        line[..at]
            .split_whitespace()
            .last()
            .unwrap()
            .parse()
            .unwrap()
    };
    (num(" connections"), num(" bytes"), num(" errors"))
}

#[test]
fn sigterm_prints_one_summary_that_counts_every_worker() {
    let mut server = start(&["--procs", "2", "--hubs", "2"]);
    let layout = server
        .stdout
        .next_containing("process(es)", Duration::from_secs(5));
    assert!(
        layout.contains("2 process(es) x 2 hub thread(s)"),
        "{layout}"
    );
    assert!(
        layout.contains(" cores;"),
        "the core count is printed: {layout}"
    );
    let pids = worker_pids(&mut server, 2);
    for i in 0..20u32 {
        let mut c = connect(server.addr());
        let msg = format!("client {i:02} x"); // 11 bytes
        assert_eq!(
            round_trip(&mut c, msg.as_bytes()).unwrap(),
            msg.to_uppercase().as_bytes()
        );
    }
    let stopped = server.stop(Signal::SIGTERM);
    assert!(stopped.status.success(), "{stopped}");
    let total = stopped
        .stdout
        .lines()
        .find(|l| l.starts_with("echo server stopped:"))
        .unwrap_or_else(|| panic!("no summary in {stopped}"));
    assert_eq!(counts(total), (20, 220, 0), "{stopped}");
    let parts: Vec<(u64, u64, u64)> = stopped
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("worker ") && l.contains("served"))
        .map(counts)
        .collect();
    assert_eq!(parts.len(), 2, "{stopped}");
    assert_eq!(parts[0].0 + parts[1].0, 20, "{stopped}");
    assert!(
        parts.iter().all(|p| p.0 > 0),
        "both workers served some of 20 clients: {stopped}"
    );
    for pid in pids {
        assert!(!alive(pid), "worker {pid} outlived the supervisor");
    }
}

#[test]
fn a_worker_killed_with_sigkill_is_reported_and_restarted_while_the_others_serve() {
    let mut server = start(&["--procs", "2", "--hubs", "1"]);
    let pids = worker_pids(&mut server, 2);
    let mut clients: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut c = connect(server.addr());
            assert_eq!(round_trip(&mut c, b"before").unwrap(), b"BEFORE");
            c
        })
        .collect();
    send_signal(Signal::SIGKILL, pids[0]);
    let report = server
        .stdout
        .next_containing("was killed by signal 9 (SIGKILL)", Duration::from_secs(10));
    assert!(
        report.contains(&format!("worker 0 (pid {})", pids[0])),
        "{report}"
    );
    let restarted = server
        .stdout
        .next_containing("worker 0 restarted: pid", Duration::from_secs(10));
    let new_pid: u32 = restarted.rsplit(' ').next().unwrap().parse().unwrap();
    assert_ne!(new_pid, pids[0]);
    // The killed worker's clients lost their connections; the others' go on.
    let (mut kept, mut lost) = (0, 0);
    for c in &mut clients {
        match round_trip(c, b"after") {
            Ok(reply) => {
                assert_eq!(reply, b"AFTER");
                kept += 1;
            }
            Err(_) => lost += 1,
        }
    }
    assert!(kept > 0 && lost > 0, "kept {kept}, lost {lost} of 20");
    // New clients are all served, by the survivor and the new worker.
    for _ in 0..20 {
        assert_eq!(
            round_trip(&mut connect(server.addr()), b"new").unwrap(),
            b"NEW"
        );
    }
    let stopped = server.stop(Signal::SIGTERM);
    assert!(stopped.status.success(), "{stopped}");
    assert!(stopped.stdout.contains("restarted 1 time(s)"), "{stopped}");
    let total = stopped
        .stdout
        .lines()
        .find(|l| l.starts_with("echo server stopped:"))
        .unwrap();
    let (connections, _, _) = counts(total);
    // The survivor's clients and the 20 new ones, at least; the killed
    // worker's count as of its last report.
    assert!(connections >= kept + 20, "{stopped}");
    for pid in [pids[1], new_pid] {
        assert!(!alive(pid), "worker {pid} outlived the supervisor");
    }
}

#[test]
fn one_process_serves_in_place_and_stops_on_sigint() {
    let mut server = start(&["--procs", "1", "--hubs", "2"]);
    let mut c = connect(server.addr());
    assert_eq!(
        round_trip(&mut c, b"abc \xff xyz").unwrap(),
        b"ABC \xff XYZ"
    );
    drop(c);
    server
        .stdout
        .next_containing("1 process(es) x 2 hub thread(s)", Duration::from_secs(5));
    let stopped = server.stop(Signal::SIGINT);
    assert!(stopped.status.success(), "{stopped}");
    assert!(
        stopped
            .stdout
            .contains("echo server stopped: served 1 connections, echoed 9 bytes, 0 errors"),
        "{stopped}"
    );
}

#[test]
fn the_peers_serve_the_same_protocol_with_work_per_message() {
    for flavor in ["tokio", "threads"] {
        let server = start(&["--flavor", flavor, "--hubs", "2", "--work", "1000"]);
        let mut c = connect(server.addr());
        assert_eq!(round_trip(&mut c, b"peer").unwrap(), b"PEER", "{flavor}");
        drop(c);
        let stopped = server.stop(Signal::SIGTERM);
        assert!(stopped.status.success(), "{flavor}: {stopped}");
        assert!(
            stopped
                .stdout
                .contains("served 1 connections, echoed 4 bytes"),
            "{flavor}: {stopped}"
        );
    }
}

#[test]
fn bad_flags_are_refused_naming_the_flag() {
    for (args, needle, code) in [
        (&["--hubs", "300"][..], "--hubs", 2),
        (&["--procs", "65"][..], "--procs", 2),
        (&["--procs=-1"][..], "--procs", 2),
        (&["--work", "1000000000"][..], "--work", 2),
        (&["--flavor", "fork"][..], "--flavor", 2),
        (&["--addr", "nowhere"][..], "--addr `nowhere`", 1),
    ] {
        // A refusal comes before any worker starts; a minute means the
        // server started serving instead.
        let out = test_support::output_within(
            Command::new(BIN).arg("echo-server").args(args),
            b"",
            Duration::from_secs(60),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        // The first line names the flag and what is wrong with it; a usage
        // error (exit 2) goes on with clap's tips, as harness::cli prints it.
        let first = stderr.lines().next().unwrap_or_default();
        assert!(first.contains(needle), "{args:?}: {stderr}");
        if code == 1 {
            assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        }
        assert!(out.stdout.is_empty(), "{args:?} started serving");
    }
}

#[test]
fn a_worker_that_keeps_dying_young_is_restarted_after_a_pause_not_in_a_loop() {
    let mut server = start(&["--procs", "2", "--hubs", "1"]);
    let pids = worker_pids(&mut server, 2);
    send_signal(Signal::SIGKILL, pids[0]);
    let restarted = server
        .stdout
        .next_containing("worker 0 restarted: pid", Duration::from_secs(10));
    let young: u32 = restarted.rsplit(' ').next().unwrap().parse().unwrap();
    // Killed again at once: it died young, so its restart waits.
    send_signal(Signal::SIGKILL, young);
    let report = server
        .stdout
        .next_containing(&format!("(pid {young})"), Duration::from_secs(10));
    assert!(report.contains("it died young"), "{report}");
    let at = Instant::now();
    server
        .stdout
        .next_containing("worker 0 restarted: pid", Duration::from_secs(15));
    assert!(
        at.elapsed() >= Duration::from_secs(1),
        "restarted after {:?}",
        at.elapsed()
    );
    // Meanwhile and after, the port is served.
    assert_eq!(
        round_trip(&mut connect(server.addr()), b"still").unwrap(),
        b"STILL"
    );
    let stopped = server.stop(Signal::SIGTERM);
    assert!(stopped.status.success(), "{stopped}");
    assert!(stopped.stdout.contains("restarted 2 time(s)"), "{stopped}");
}
