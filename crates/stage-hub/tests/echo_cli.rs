//! The public command lines: `echo-server` (address, SIGTERM summary, file
//! descriptor exhaustion), `echo-load` (exit status on wrong replies),
//! `echo-client`, `hello-bye`, `crawl` offline with clean `--json`.

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::Duration;

use stage_hub::echo::bench;
use stage_hub::echo::cpu::CpuTime;
use test_support::{assert_success, connect, output_of, output_within, round_trip, Server, Signal};

const BIN: &str = env!("CARGO_BIN_EXE_stage-hub");

/// How long any one command line may take before the test calls it hung.
const MINUTE: Duration = Duration::from_secs(60);

/// Start `echo-server` through `sh`, so the shell can lower limits first.
fn start(shell_prefix: &str, flavor: &str) -> Server {
    let script =
        format!("{shell_prefix}exec '{BIN}' echo-server --flavor {flavor} --addr 127.0.0.1:0");
    Server::start(Command::new("sh").args(["-c", &script]))
}

fn echo_once(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    round_trip(&mut connect(addr), msg).unwrap()
}

/// CPU time (user + system) the process has used, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    CpuTime::of(pid).expect("the server is running").total_s()
}

#[test]
fn every_server_flavor_serves_and_stops_on_sigterm_with_a_summary() {
    for flavor in ["hub", "threads", "tokio"] {
        let server = start("", flavor);
        assert_eq!(
            echo_once(server.addr(), b"abc \xff xyz"),
            b"ABC \xff XYZ",
            "{flavor}"
        );
        assert_eq!(echo_once(server.addr(), b"again"), b"AGAIN", "{flavor}");
        let stopped = server.stop(Signal::SIGTERM);
        assert!(stopped.status.success(), "{flavor}: {stopped}");
        assert!(
            stopped
                .stdout
                .contains("echo server stopped: served 2 connections, echoed 14 bytes, 0 errors"),
            "{flavor}: {stopped}"
        );
    }
}

#[test]
fn a_sigterm_as_soon_as_the_address_is_printed_is_a_clean_stop() {
    // The address line is the cue clients (and supervisors) act on: the
    // signal watcher must be in place before it is printed, or this
    // SIGTERM kills the process instead of stopping the server.
    for round in 0..5 {
        for flavor in ["hub", "threads", "tokio"] {
            let stopped = start("", flavor).stop(Signal::SIGTERM);
            assert!(
                stopped.status.success(),
                "{flavor}, round {round}: {stopped}"
            );
            assert!(
                stopped
                    .stdout
                    .contains("echo server stopped: served 0 connections"),
                "{flavor}, round {round}: {stopped}"
            );
        }
    }
}

#[test]
fn accept_under_fd_exhaustion_logs_backs_off_and_recovers_without_spinning() {
    // About 30 descriptors are left for connections under this limit.
    let mut server = start("ulimit -n 40 && ", "hub");
    let mut held: Vec<TcpStream> = (0..60).map(|_| connect(server.addr())).collect();
    server
        .stderr
        .next_containing("accept failed", Duration::from_secs(5));
    // Out of descriptors with clients still queued: the acceptor must sleep,
    // not retry in a tight loop.
    let before = cpu_seconds(server.pid());
    thread::sleep(Duration::from_secs(1));
    let used = cpu_seconds(server.pid()) - before;
    assert!(
        used < 0.3,
        "the server used {used:.2} s of CPU in 1 s while out of descriptors"
    );
    // The early connections are still served.
    assert_eq!(round_trip(&mut held[0], b"still").unwrap(), b"STILL");
    // Clients leave; descriptors come back; a new client is served.
    held.clear();
    server
        .stderr
        .next_containing("accepting again", Duration::from_secs(5));
    assert_eq!(echo_once(server.addr(), b"recovered"), b"RECOVERED");
    let stopped = server.stop(Signal::SIGTERM);
    assert!(stopped.status.success(), "{stopped}");
    assert!(
        stopped.stdout.contains("echo server stopped: served"),
        "{stopped}"
    );
}

/// How many more files process `pid` may open: its soft limit minus the
/// descriptors it holds.
fn free_descriptors(pid: u32) -> usize {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let soft: usize = line.split_whitespace().nth(3).unwrap().parse().unwrap();
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    soft - open
}

#[test]
fn sigterm_stops_a_server_that_has_no_descriptor_left_for_the_knock() {
    // Every descriptor the server may open holds a served client, so the
    // stop knock (a connection made inside the server) cannot get a socket.
    // Linux fails `accept` for want of a descriptor even with nobody
    // queued, so the acceptor is in its backoff, not parked: it must look
    // at the stop flag between pauses.
    let server = start("ulimit -n 30 && ", "hub");
    let free = free_descriptors(server.pid());
    assert!(free > 0 && free < 30, "{free} descriptors free");
    let clients: Vec<TcpStream> = (0..free)
        .map(|i| {
            let mut c = connect(server.addr());
            round_trip(&mut c, b"x")
                .unwrap_or_else(|e| panic!("client {i} of {free} was not served: {e}"));
            c
        })
        .collect();
    assert_eq!(free_descriptors(server.pid()), 0);
    let stopped = server.stop(Signal::SIGTERM); // fails if it does not exit
    assert!(stopped.status.success(), "{stopped}");
    assert!(
        stopped
            .stdout
            .contains(&format!("echo server stopped: served {free} connections")),
        "{stopped}"
    );
    drop(clients);
}

#[test]
fn echo_load_reports_and_exits_non_zero_on_a_wrong_reply() {
    let server = start("", "hub");
    let out = output_within(
        Command::new(BIN)
            .args(["echo-load", "--addr", &server.addr().to_string()])
            .args(["--clients", "20", "--seconds", "0.3", "--size", "100"]),
        b"",
        MINUTE,
    );
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("messages/s") && stdout.contains("0 wrong replies"),
        "{stdout}"
    );
    drop(server);

    // A server that forgets to upper-case.
    let addr = test_support::thread_echo_server(5, |_| {});
    let out = output_of(
        BIN,
        &[
            "echo-load",
            "--addr",
            &addr.to_string(),
            "--clients",
            "5",
            "--seconds",
            "0.3",
        ],
        MINUTE,
    );
    assert!(!out.status.success(), "wrong replies must fail the run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("replies were not the upper-cased message"),
        "{stderr}"
    );
}

/// Given the server's process, `echo-load` reads its CPU time over the
/// same ping-pong as its own, so `echo-bench` can say which side was the
/// busier; a process id it cannot read is refused with the option named.
#[test]
fn echo_load_reads_the_servers_cpu_beside_its_own() {
    let server = start("", "hub");
    let (addr, pid) = (server.addr().to_string(), server.pid().to_string());
    let args = ["echo-load", "--json", "--addr", &addr, "--clients", "20"];
    let out = output_of(
        BIN,
        &[&args[..], &["--seconds", "0.5", "--server-pid", &pid]].concat(),
        MINUTE,
    );
    assert_success(&out);
    // Read as echo-bench reads it.
    let summary = bench::load_summary(&out.stdout)
        .unwrap_or_else(|| panic!("no result row in {}", String::from_utf8_lossy(&out.stdout)));
    assert!(summary.messages > 0, "{summary:?}");
    for (side, cpu, busy) in [
        ("load", summary.load_cpu, summary.load_busy()),
        ("server", summary.server_cpu, summary.server_busy()),
    ] {
        // Both sides answered messages for half a second: not nothing, and
        // no more than the span on one core (with a tick of slack).
        let (cpu, busy) = cpu
            .zip(busy)
            .unwrap_or_else(|| panic!("no {side} CPU time: {summary:?}"));
        assert!(cpu.total_s() > 0.0, "{side}: {cpu:?}");
        assert!(busy < 1.2, "{side}: {cpu:?} over {} s", summary.seconds);
    }
    drop(server);

    // Past the largest pid Linux hands out: clap refuses it with the range.
    let past = output_of(
        BIN,
        &[&args[..], &["--server-pid", "5000000"]].concat(),
        MINUTE,
    );
    test_support::refused(&past, "stage-hub", "a pid past Linux's largest");
    // In range but no such process: one line that names the option, before
    // any client connects (nothing listens at the address).
    let missing = output_of(
        BIN,
        &[
            "echo-load",
            "--addr",
            "127.0.0.1:9",
            "--server-pid",
            "4194303",
        ],
        MINUTE,
    );
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("--server-pid 4194303: no process"),
        "{stderr}"
    );
}

#[test]
fn echo_client_sends_each_line_and_ends_cleanly_at_eof() {
    let server = start("", "hub");
    let out = output_within(
        Command::new(BIN).args(["echo-client", "--addr", &server.addr().to_string()]),
        b"hello there\n\n  x y  \n",
        MINUTE,
    );
    assert_success(&out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "HELLO THERE\nX Y\nsent 2 lines; bye\n"
    );
}

#[test]
fn hello_bye_and_the_offline_crawl_run_from_the_command_line() {
    let out = output_of(
        BIN,
        &["hello-bye", "--clients", "3", "--rounds", "2"],
        MINUTE,
    );
    assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("server heard \"bye\"").count(), 6, "{text}");
    assert_eq!(text.matches("got \"hello\"").count(), 6, "{text}");
    // By default the notes' 500 clients; --quick scales them down.
    let out = output_of(BIN, &["hello-bye", "--quick"], MINUTE);
    assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.matches("server heard \"bye\"").count(),
        100,
        "50 clients x 2 rounds"
    );
    let help = output_of(BIN, &["hello-bye", "--help"], MINUTE);
    assert!(String::from_utf8_lossy(&help.stdout).contains("500"));

    let out = output_of(BIN, &["crawl", "--quick", "--json"], MINUTE);
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows = harness::json::read_report(&stdout).unwrap_or_else(|e| panic!("{e}"));
    let case = |c: &str| {
        rows.iter()
            .find(|r| r["case"] == c && r["source"] == "measured")
            .unwrap_or_else(|| panic!("no row {c}"))["median_seconds"]
            .as_f64()
            .unwrap()
    };
    assert!(case("URLs at once, a greenlet each") < case("URLs one after another"));
    let narration = String::from_utf8_lossy(&out.stderr);
    assert!(narration.contains("bytes received from"), "{narration}");
}

#[test]
fn echo_bench_measures_every_server_in_its_own_process() {
    let out = output_of(
        BIN,
        &[
            "echo-bench",
            "--json",
            "--clients",
            "20",
            "--seconds",
            "0.3",
        ],
        MINUTE,
    );
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let records = harness::json::read_report(&stdout).unwrap_or_else(|e| panic!("{e}"));
    let rows: Vec<_> = records.iter().filter(|r| r["record"] == "row").collect();
    let servers: Vec<&str> = rows.iter().map(|r| r["server"].as_str().unwrap()).collect();
    assert_eq!(servers, ["hub", "threads", "tokio"]);
    for r in &rows {
        assert_eq!(r["clients"], 20, "{r}");
        assert_eq!(r["wrong_replies"], 0, "{r}");
        assert!(r["messages"].as_u64().unwrap() > 0, "{r}");
        assert!(r["server_peak_rss_bytes"].as_u64().unwrap() > 0, "{r}");
        assert!(
            r["p99_us"].as_u64().unwrap() >= r["p50_us"].as_u64().unwrap(),
            "{r}"
        );
    }
}
