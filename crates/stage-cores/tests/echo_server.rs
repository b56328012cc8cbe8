//! The public command line `stage-cores echo-server --addr A --hubs T
//! --procs P`: the address on start, one summary over every worker on
//! SIGTERM/SIGINT, a worker killed with SIGKILL reported and restarted while
//! the others keep serving, bad flags refused, no process left behind.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_stage-cores");

/// A server started by a test: in a process group of its own, killed with
/// everything in it if the test fails first (its workers, in groups of
/// their own, stop when its pipe to them closes).
struct Server {
    child: Child,
    addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

fn pid_of(pid: u32) -> Pid {
    Pid::from_raw(i32::try_from(pid).expect("a pid fits an i32"))
}

/// Send `signal` to `pid`, a process the test knows is there: one that is
/// already gone (ESRCH) fails the test like any other error.
fn send_signal(signal: Signal, pid: u32) {
    kill(pid_of(pid), signal).unwrap_or_else(|e| panic!("kill({pid}, {signal}): {e}"));
}

fn alive(pid: u32) -> bool {
    // A zombie is as good as gone: it is waiting to be reaped, not serving.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .arg("echo-server")
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start stage-cores echo-server");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
            seen: Vec::new(),
        };
        let first = server.line_containing("listening on", Duration::from_secs(30));
        server.addr = first.rsplit(' ').next().unwrap().parse().unwrap();
        server
    }

    /// The next stdout line containing `needle` (failing after `within`).
    fn line_containing(&mut self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?} within {within:?}; saw {:?}",
                    self.seen
                ),
            }
        }
    }

    fn worker_pids(&mut self, n: usize) -> Vec<u32> {
        (0..n)
            .map(|i| {
                let line =
                    self.line_containing(&format!("worker {i}: pid"), Duration::from_secs(5));
                line.rsplit(' ').next().unwrap().parse().unwrap()
            })
            .collect()
    }

    /// Send `signal`, wait for the exit, and return every later stdout line.
    fn stop(mut self, signal: Signal) -> (String, bool) {
        // The child is not reaped until `try_wait` below sees it exit, so
        // its pid is still ours to signal.
        send_signal(signal, self.child.id());
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "no exit within 20 s of {signal}");
            thread::sleep(Duration::from_millis(20));
        };
        let mut rest: Vec<String> = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            rest.push(line);
        }
        (rest.join("\n"), status.success())
    }
}

impl Drop for Server {
    /// A test that failed half-way leaves its server running: kill its
    /// process group. Only while the child is unreaped, though: once
    /// `stop` (or this `try_wait`) has reaped it, its group is gone and
    /// its number free for the system to give to someone else's.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // Unreaped, the leader (a zombie at worst) keeps the group's
            // number; ESRCH would only mean the group is already empty.
            match killpg(pid_of(self.child.id()), Signal::SIGKILL) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => eprintln!("killpg({}, SIGKILL): {e}", self.child.id()),
            }
            let _ = self.child.wait();
        }
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// One round trip; `Err` if the connection is gone.
fn echo(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    s.write_all(msg)?;
    let mut reply = vec![0; msg.len()];
    s.read_exact(&mut reply)?;
    Ok(reply)
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
    let mut server = Server::start(&["--procs", "2", "--hubs", "2"]);
    let layout = server.line_containing("process(es)", Duration::from_secs(5));
    assert!(
        layout.contains("2 process(es) x 2 hub thread(s)"),
        "{layout}"
    );
    assert!(
        layout.contains(" cores;"),
        "the core count is printed: {layout}"
    );
    let pids = server.worker_pids(2);
    for i in 0..20u32 {
        let mut c = connect(server.addr);
        let msg = format!("client {i:02} x"); // 11 bytes
        assert_eq!(
            echo(&mut c, msg.as_bytes()).unwrap(),
            msg.to_uppercase().as_bytes()
        );
    }
    let (rest, ok) = server.stop(Signal::SIGTERM);
    assert!(ok, "{rest}");
    let total = rest
        .lines()
        .find(|l| l.starts_with("echo server stopped:"))
        .unwrap_or_else(|| panic!("no summary in {rest}"));
    assert_eq!(counts(total), (20, 220, 0), "{rest}");
    let parts: Vec<(u64, u64, u64)> = rest
        .lines()
        .filter(|l| l.trim_start().starts_with("worker ") && l.contains("served"))
        .map(counts)
        .collect();
    assert_eq!(parts.len(), 2, "{rest}");
    assert_eq!(parts[0].0 + parts[1].0, 20, "{rest}");
    assert!(
        parts.iter().all(|p| p.0 > 0),
        "both workers served some of 20 clients: {rest}"
    );
    for pid in pids {
        assert!(!alive(pid), "worker {pid} outlived the supervisor");
    }
}

#[test]
fn a_worker_killed_with_sigkill_is_reported_and_restarted_while_the_others_serve() {
    let mut server = Server::start(&["--procs", "2", "--hubs", "1"]);
    let pids = server.worker_pids(2);
    let mut clients: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut c = connect(server.addr);
            assert_eq!(echo(&mut c, b"before").unwrap(), b"BEFORE");
            c
        })
        .collect();
    send_signal(Signal::SIGKILL, pids[0]);
    let report =
        server.line_containing("was killed by signal 9 (SIGKILL)", Duration::from_secs(10));
    assert!(
        report.contains(&format!("worker 0 (pid {})", pids[0])),
        "{report}"
    );
    let restarted = server.line_containing("worker 0 restarted: pid", Duration::from_secs(10));
    let new_pid: u32 = restarted.rsplit(' ').next().unwrap().parse().unwrap();
    assert_ne!(new_pid, pids[0]);
    // The killed worker's clients lost their connections; the others' go on.
    let (mut kept, mut lost) = (0, 0);
    for c in &mut clients {
        match echo(c, b"after") {
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
        assert_eq!(echo(&mut connect(server.addr), b"new").unwrap(), b"NEW");
    }
    let (rest, ok) = server.stop(Signal::SIGTERM);
    assert!(ok, "{rest}");
    assert!(rest.contains("restarted 1 time(s)"), "{rest}");
    let total = rest
        .lines()
        .find(|l| l.starts_with("echo server stopped:"))
        .unwrap();
    let (connections, _, _) = counts(total);
    // The survivor's clients and the 20 new ones, at least; the killed
    // worker's count as of its last report.
    assert!(connections >= kept + 20, "{rest}");
    for pid in [pids[1], new_pid] {
        assert!(!alive(pid), "worker {pid} outlived the supervisor");
    }
}

#[test]
fn one_process_serves_in_place_and_stops_on_sigint() {
    let mut server = Server::start(&["--procs", "1", "--hubs", "2"]);
    let mut c = connect(server.addr);
    assert_eq!(echo(&mut c, b"abc \xff xyz").unwrap(), b"ABC \xff XYZ");
    drop(c);
    server.line_containing("1 process(es) x 2 hub thread(s)", Duration::from_secs(5));
    let (rest, ok) = server.stop(Signal::SIGINT);
    assert!(ok, "{rest}");
    assert!(
        rest.contains("echo server stopped: served 1 connections, echoed 9 bytes, 0 errors"),
        "{rest}"
    );
}

#[test]
fn the_peers_serve_the_same_protocol_with_work_per_message() {
    for flavor in ["tokio", "threads"] {
        let server = Server::start(&["--flavor", flavor, "--hubs", "2", "--work", "1000"]);
        let mut c = connect(server.addr);
        assert_eq!(echo(&mut c, b"peer").unwrap(), b"PEER", "{flavor}");
        drop(c);
        let (rest, ok) = server.stop(Signal::SIGTERM);
        assert!(ok, "{flavor}: {rest}");
        assert!(
            rest.contains("served 1 connections, echoed 4 bytes"),
            "{flavor}: {rest}"
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
        let out = Command::new(BIN)
            .arg("echo-server")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
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
    let mut server = Server::start(&["--procs", "2", "--hubs", "1"]);
    let pids = server.worker_pids(2);
    send_signal(Signal::SIGKILL, pids[0]);
    let restarted = server.line_containing("worker 0 restarted: pid", Duration::from_secs(10));
    let young: u32 = restarted.rsplit(' ').next().unwrap().parse().unwrap();
    // Killed again at once: it died young, so its restart waits.
    send_signal(Signal::SIGKILL, young);
    let report = server.line_containing(&format!("(pid {young})"), Duration::from_secs(10));
    assert!(report.contains("it died young"), "{report}");
    let at = Instant::now();
    server.line_containing("worker 0 restarted: pid", Duration::from_secs(15));
    assert!(
        at.elapsed() >= Duration::from_secs(1),
        "restarted after {:?}",
        at.elapsed()
    );
    // Meanwhile and after, the port is served.
    assert_eq!(echo(&mut connect(server.addr), b"still").unwrap(), b"STILL");
    let (rest, ok) = server.stop(Signal::SIGTERM);
    assert!(ok, "{rest}");
    assert!(rest.contains("restarted 2 time(s)"), "{rest}");
}
