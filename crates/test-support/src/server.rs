//! A server child: started, talked to over TCP, stopped with a signal.

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::lines::Lines;
use crate::run::kill_group;

/// How long a server may take to print its address, and to exit once
/// signalled: generous, for a machine loaded by other builds.
const PATIENCE: Duration = Duration::from_secs(30);

/// How long the output of a server that has exited may stay quiet before
/// the rest is taken to be all (its workers may hold the pipes a moment).
const QUIET: Duration = Duration::from_secs(5);

/// A server started by a test: a child whose first stdout line gives its
/// address (`listening on ADDR`, or as [`start_with`](Server::start_with)
/// reads it), in a process group of its own. If the test fails before
/// [`stop`](Server::stop), dropping it kills the group.
#[derive(Debug)]
pub struct Server {
    child: Child,
    addr: SocketAddr,
    /// Its stdout, from the line after the address.
    pub stdout: Lines,
    /// Its stderr.
    pub stderr: Lines,
}

/// What a stopped server left: its exit status and what it printed last.
#[derive(Debug)]
pub struct Stopped {
    /// How it exited.
    pub status: ExitStatus,
    /// Its stdout after the lines read before the stop, joined by `\n`.
    pub stdout: String,
    /// Its stderr lines not read before the stop.
    pub stderr: Vec<String>,
}

impl Server {
    /// Start `cmd` (its stdin closed, its stdout and stderr read line by
    /// line) and read its address from its first line; the test fails if
    /// that line does not come within 30 s or is not `listening on ADDR`.
    pub fn start(cmd: &mut Command) -> Server {
        Server::start_with(cmd, |first| {
            first.strip_prefix("listening on ")?.parse().ok()
        })
    }

    /// [`start`](Server::start) for a server that announces its address
    /// some other way: `address_in` finds it in the first stdout line (the
    /// test fails if it returns `None`), so the test holds that line to the
    /// server's own words.
    ///
    /// ```no_run
    /// use std::process::Command;
    /// // First line: "HTTPS pages: https://127.0.0.1:PORT/page/{1..3}".
    /// let site = test_support::Server::start_with(
    ///     Command::new("stage-hub").args(["serve-site", "--pages", "3", "--ca-out", "ca.pem"]),
    ///     |first| {
    ///         let url = first.strip_prefix("HTTPS pages: https://")?;
    ///         url.strip_suffix("/page/{1..3}")?.parse().ok()
    ///     },
    /// );
    /// println!("crawl https://{}/page/1", site.addr());
    /// ```
    pub fn start_with(
        cmd: &mut Command,
        address_in: impl FnOnce(&str) -> Option<SocketAddr>,
    ) -> Server {
        let mut child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdout = Lines::of(child.stdout.take().expect("stdout was piped"));
        let stderr = Lines::of(child.stderr.take().expect("stderr was piped"));
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stdout,
            stderr,
        };
        // From here on, a failed assertion drops `server`, which kills it.
        let first = server.stdout.next_within(PATIENCE);
        server.addr = address_in(&first)
            .unwrap_or_else(|| panic!("{cmd:?}'s first line is not its address: {first:?}"));
        server
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send `signal`, wait for the exit (failing the test after 30 s), and
    /// collect what it printed meanwhile.
    pub fn stop(mut self, signal: Signal) -> Stopped {
        // The child is not reaped until `try_wait` below sees it exit, so
        // its pid is still ours to signal.
        let pid = Pid::from_raw(i32::try_from(self.pid()).expect("a pid fits an i32"));
        kill(pid, signal).unwrap_or_else(|e| panic!("kill({pid}, {signal}): {e}"));
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for the server") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within {PATIENCE:?} of {signal}"
            );
            thread::sleep(Duration::from_millis(20));
        };
        Stopped {
            status,
            stdout: self.stdout.rest(QUIET).join("\n"),
            stderr: self.stderr.rest(QUIET),
        }
    }
}

impl Drop for Server {
    /// A test that failed half-way leaves its server running: kill its
    /// process group. Only while the child is unreaped, though: once `stop`
    /// (or this `try_wait`) has reaped it, its group is gone and its number
    /// free for the system to give to someone else's.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            kill_group(self.child.id());
            let _ = self.child.wait();
        }
    }
}

impl fmt::Display for Stopped {
    /// Everything, for a failed assertion's message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n[{}] stderr: {:?}",
            self.stdout, self.status, self.stderr
        )
    }
}

/// A client connection to `addr`, with 5 s to connect and 5 s for each
/// read: a server that stops answering fails the test instead of hanging it.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set a read timeout");
    stream
}

/// Send `msg` and read back as many bytes: one round trip of an echo
/// server. `Err` if the connection is gone.
pub fn round_trip(stream: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    stream.write_all(msg)?;
    let mut reply = vec![0; msg.len()];
    stream.read_exact(&mut reply)?;
    Ok(reply)
}

/// A small echo server of plain threads on 127.0.0.1, a peer for the
/// stages' load generators: it serves the first `connections` clients, a
/// thread each, and writes back every chunk it reads after `transform`
/// (an upper-case echo: `<[u8]>::make_ascii_uppercase`). Returns its
/// address; its threads end with their clients.
///
/// ```
/// let addr = test_support::thread_echo_server(1, <[u8]>::make_ascii_uppercase);
/// let mut client = test_support::connect(addr);
/// assert_eq!(test_support::round_trip(&mut client, b"hi")?, b"HI");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn thread_echo_server(connections: usize, transform: fn(&mut [u8])) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let addr = listener.local_addr().expect("the listener's address");
    thread::spawn(move || {
        for conn in listener.incoming().take(connections) {
            let Ok(mut conn) = conn else { continue };
            thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = conn.read(&mut buf) {
                    transform(&mut buf[..n]);
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::tests::gone_soon;

    /// A stand-in server: prints an address, then what `then` prints.
    fn fake(then: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &format!("echo 'listening on 127.0.0.1:7'; {then}")]);
        cmd
    }

    #[test]
    fn the_address_comes_from_the_first_line_and_a_stop_collects_the_rest() {
        // The trap first: the test signals as soon as it has read "warming",
        // and a TERM that came before the trap would kill the shell.
        let mut server = Server::start(&mut fake(
            "trap 'echo stopped; echo bye >&2; exit 0' TERM; echo ready; echo warming >&2; \
             while :; do sleep 0.05; done",
        ));
        assert_eq!(server.addr(), SocketAddr::from(([127, 0, 0, 1], 7)));
        assert_eq!(
            server
                .stdout
                .next_containing("ready", Duration::from_secs(10)),
            "ready"
        );
        server
            .stderr
            .next_containing("warming", Duration::from_secs(10));
        let stopped = server.stop(Signal::SIGTERM);
        assert!(stopped.status.success(), "{stopped}");
        assert_eq!(stopped.stdout, "stopped");
        assert_eq!(stopped.stderr, ["bye"]);
    }

    #[test]
    fn a_server_that_announces_itself_otherwise_is_read_by_its_own_words() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo 'pages at https://127.0.0.1:8/page/1'; sleep 60"]);
        let server = Server::start_with(&mut cmd, |first| {
            let url = first.strip_prefix("pages at https://")?;
            url.strip_suffix("/page/1")?.parse().ok()
        });
        assert_eq!(server.addr(), SocketAddr::from(([127, 0, 0, 1], 8)));
        let pid = server.pid();
        drop(server);
        assert!(gone_soon(pid));
    }

    #[test]
    fn a_first_line_that_is_not_an_address_fails_the_test() {
        let failed = std::panic::catch_unwind(|| {
            Server::start(Command::new("sh").args(["-c", "echo hello; sleep 60"]))
        });
        let message = *failed.unwrap_err().downcast::<String>().unwrap();
        assert!(
            message.contains("first line is not its address: \"hello\""),
            "{message}"
        );
    }

    #[test]
    fn a_server_dropped_before_its_stop_dies_with_what_it_started() {
        let mut server = Server::start(&mut fake("sleep 60 & echo $!; wait"));
        let sleeper: u32 = server
            .stdout
            .next_within(Duration::from_secs(10))
            .parse()
            .unwrap();
        let pid = server.pid();
        drop(server);
        assert!(gone_soon(pid) && gone_soon(sleeper));
    }
}
