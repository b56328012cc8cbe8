//! The public command lines: `echo-server` (address, SIGTERM summary, file
//! descriptor exhaustion), `echo-load` (exit status on wrong replies),
//! `echo-client`, `hello-bye`, `crawl` offline with clean `--json`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

mod common;
use common::output_within;

const BIN: &str = env!("CARGO_BIN_EXE_stage-hub");

/// How long any one command line may take before the test calls it hung.
const MINUTE: Duration = Duration::from_secs(60);

/// A line-by-line reader of a child's output, on a thread of its own.
fn lines_of(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// An `echo-server` child process, killed if the test fails before it is stopped.
struct Server {
    child: Child,
    addr: SocketAddr,
    stdout_lines: mpsc::Receiver<String>,
    stderr_lines: mpsc::Receiver<String>,
}

impl Server {
    /// Start `echo-server` through `sh`, so the shell can lower limits first.
    fn start(shell_prefix: &str, flavor: &str) -> Server {
        let script =
            format!("{shell_prefix}exec '{BIN}' echo-server --flavor {flavor} --addr 127.0.0.1:0");
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start echo-server");
        let stdout_lines = lines_of(child.stdout.take().unwrap());
        let stderr_lines = lines_of(child.stderr.take().unwrap());
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stdout_lines,
            stderr_lines,
        };
        // From here on, a failed assertion drops `server`, which kills the child.
        let first = server
            .stdout_lines
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("no address from the {flavor} server: {e}"));
        assert!(first.starts_with("listening on "), "first line: {first:?}");
        server.addr = first.rsplit(' ').next().unwrap().parse().unwrap();
        server
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then the rest of stdout (the summary line), the stderr lines
    /// and the exit status; fails if the server has not exited within 10 s.
    fn stop(mut self) -> (String, bool) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within 10 s of SIGTERM"
            );
            thread::sleep(Duration::from_millis(20));
        };
        // The pipes close with the process: these collect everything it wrote.
        let mut rest: Vec<String> = Vec::new();
        while let Ok(line) = self.stdout_lines.recv_timeout(Duration::from_secs(5)) {
            rest.push(line);
        }
        let errors: Vec<String> = self.stderr_lines.try_iter().collect();
        let mut rest = rest.join("\n");
        rest.push_str(&format!("\n[{status}] {errors:?}"));
        (rest, status.success())
    }

    fn stderr_until(&self, needle: &str, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Ok(line) = self.stderr_lines.recv_timeout(Duration::from_millis(50)) {
                let hit = line.contains(needle);
                seen.push(line);
                if hit {
                    return seen;
                }
            }
        }
        panic!("no stderr line containing {needle:?} within {within:?}; saw {seen:?}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn echo_once(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(msg).unwrap();
    let mut reply = vec![0; msg.len()];
    s.read_exact(&mut reply).unwrap();
    reply
}

/// CPU time (user + system) the process has used, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn every_server_flavor_serves_and_stops_on_sigterm_with_a_summary() {
    for flavor in ["hub", "threads", "tokio"] {
        let server = Server::start("", flavor);
        assert_eq!(
            echo_once(server.addr, b"abc \xff xyz"),
            b"ABC \xff XYZ",
            "{flavor}"
        );
        assert_eq!(echo_once(server.addr, b"again"), b"AGAIN", "{flavor}");
        let (rest, ok) = server.stop();
        assert!(ok, "{flavor} server exited with failure");
        assert!(
            rest.contains("echo server stopped: served 2 connections, echoed 14 bytes, 0 errors"),
            "{flavor}: {rest:?}"
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
            let (rest, ok) = Server::start("", flavor).stop();
            assert!(ok, "{flavor}, round {round}: {rest:?}");
            assert!(
                rest.contains("echo server stopped: served 0 connections"),
                "{flavor}, round {round}: {rest:?}"
            );
        }
    }
}

#[test]
fn accept_under_fd_exhaustion_logs_backs_off_and_recovers_without_spinning() {
    // About 30 descriptors are left for connections under this limit.
    let server = Server::start("ulimit -n 40 && ", "hub");
    let mut held: Vec<TcpStream> = (0..60)
        .map(|_| TcpStream::connect_timeout(&server.addr, Duration::from_secs(5)).unwrap())
        .collect();
    server.stderr_until("accept failed", Duration::from_secs(5));
    // Out of descriptors with clients still queued: the acceptor must sleep,
    // not retry in a tight loop.
    let before = cpu_ticks(server.pid());
    thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(server.pid()) - before;
    assert!(
        used < 30,
        "the server used {used}/100 s of CPU in 1 s while out of descriptors"
    );
    // The early connections are still served.
    let first = held.first_mut().unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    first.write_all(b"still").unwrap();
    let mut reply = [0u8; 5];
    first.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"STILL");
    // Clients leave; descriptors come back; a new client is served.
    held.clear();
    server.stderr_until("accepting again", Duration::from_secs(5));
    assert_eq!(echo_once(server.addr, b"recovered"), b"RECOVERED");
    let (rest, ok) = server.stop();
    assert!(ok, "{rest:?}");
    assert!(rest.contains("echo server stopped: served"), "{rest:?}");
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
    let server = Server::start("ulimit -n 30 && ", "hub");
    let free = free_descriptors(server.pid());
    assert!(free > 0 && free < 30, "{free} descriptors free");
    let clients: Vec<TcpStream> = (0..free)
        .map(|i| {
            let mut c = TcpStream::connect_timeout(&server.addr, Duration::from_secs(5)).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            c.write_all(b"x").unwrap();
            let mut reply = [0u8; 1];
            c.read_exact(&mut reply)
                .unwrap_or_else(|e| panic!("client {i} of {free} was not served: {e}"));
            c
        })
        .collect();
    assert_eq!(free_descriptors(server.pid()), 0);
    let (rest, ok) = server.stop(); // fails if the server has not exited within 10 s
    assert!(ok, "{rest:?}");
    assert!(
        rest.contains(&format!("echo server stopped: served {free} connections")),
        "{rest:?}"
    );
    drop(clients);
}

#[test]
fn echo_load_reports_and_exits_non_zero_on_a_wrong_reply() {
    let server = Server::start("", "hub");
    let out = output_within(
        Command::new(BIN)
            .args(["echo-load", "--addr", &server.addr.to_string()])
            .args(["--clients", "20", "--seconds", "0.3", "--size", "100"]),
        b"",
        MINUTE,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("messages/s") && stdout.contains("0 wrong replies"),
        "{stdout}"
    );
    drop(server);

    // A server that forgets to upper-case.
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = plain.local_addr().unwrap();
    thread::spawn(move || {
        for conn in plain.incoming().take(5) {
            let Ok(mut conn) = conn else { continue };
            thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let out = output_within(
        Command::new(BIN).args([
            "echo-load",
            "--addr",
            &addr.to_string(),
            "--clients",
            "5",
            "--seconds",
            "0.3",
        ]),
        b"",
        MINUTE,
    );
    assert!(!out.status.success(), "wrong replies must fail the run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("replies were not the upper-cased message"),
        "{stderr}"
    );
}

#[test]
fn echo_client_sends_each_line_and_ends_cleanly_at_eof() {
    let server = Server::start("", "hub");
    let out = output_within(
        Command::new(BIN).args(["echo-client", "--addr", &server.addr.to_string()]),
        b"hello there\n\n  x y  \n",
        MINUTE,
    );
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "HELLO THERE\nX Y\nsent 2 lines; bye\n"
    );
}

#[test]
fn hello_bye_and_the_offline_crawl_run_from_the_command_line() {
    let out = output_within(
        Command::new(BIN).args(["hello-bye", "--clients", "3", "--rounds", "2"]),
        b"",
        MINUTE,
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("server heard \"bye\"").count(), 6, "{text}");
    assert_eq!(text.matches("got \"hello\"").count(), 6, "{text}");
    // By default the notes' 500 clients; --quick scales them down.
    let out = output_within(
        Command::new(BIN).args(["hello-bye", "--quick"]),
        b"",
        MINUTE,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.matches("server heard \"bye\"").count(),
        100,
        "50 clients x 2 rounds"
    );
    let help = output_within(Command::new(BIN).args(["hello-bye", "--help"]), b"", MINUTE);
    assert!(String::from_utf8_lossy(&help.stdout).contains("500"));

    let out = output_within(
        Command::new(BIN).args(["crawl", "--quick", "--json"]),
        b"",
        MINUTE,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
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
    let out = output_within(
        Command::new(BIN).args([
            "echo-bench",
            "--json",
            "--clients",
            "20",
            "--seconds",
            "0.3",
        ]),
        b"",
        MINUTE,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .filter(|v: &serde_json::Value| v["record"] == "row")
        .collect();
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
