//! A command line run to its end, with a time limit.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Run `cmd` with `stdin` as its input (then end of file) and collect its
/// output, failing the test if it takes longer than `within`. It runs in a
/// process group of its own, so a timeout kills whatever it started too.
///
/// ```
/// use std::process::Command;
/// use std::time::Duration;
/// let out = test_support::output_within(&mut Command::new("cat"), b"hi", Duration::from_secs(10));
/// assert_eq!(out.stdout, b"hi");
/// ```
pub fn output_within(cmd: &mut Command, stdin: &[u8], within: Duration) -> Output {
    try_output_within(cmd, stdin, within).unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
}

/// Run `cmd` as [`output_within`] does, but return the error if it cannot
/// be started at all (not installed, not executable) rather than fail the
/// test: for a tool a test uses when the machine has it and skips without
/// (`python3 --version`, `mdbook --version`, util-linux `script`). One that
/// starts but runs past `within` still fails the test, killed with whatever
/// it started: a tool that hangs is not a missing one.
///
/// ```
/// use std::process::Command;
/// use std::time::Duration;
/// let within = Duration::from_secs(10);
/// let missing = test_support::try_output_within(&mut Command::new("/nonexistent/tool"), b"", within);
/// assert_eq!(missing.unwrap_err().kind(), std::io::ErrorKind::NotFound);
/// let sh = test_support::try_output_within(Command::new("sh").args(["-c", "echo 1.0"]), b"", within);
/// assert_eq!(sh.expect("sh is installed").stdout, b"1.0\n");
/// ```
pub fn try_output_within(
    cmd: &mut Command,
    stdin: &[u8],
    within: Duration,
) -> std::io::Result<Output> {
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let mut input = child.stdin.take().expect("stdin was piped");
    let stdin = stdin.to_vec();
    thread::spawn(move || input.write_all(&stdin)); // then closed: EOF
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(within) {
        Ok(out) => Ok(out.unwrap_or_else(|e| panic!("waiting for {cmd:?}: {e}"))),
        Err(_) => {
            // The waiting thread has not reaped the child (it would have
            // sent), so the group is still the child's, bar an exit in this
            // very instant: ESRCH then means it is gone already.
            kill_group(pid);
            panic!("{cmd:?} did not finish within {within:?}; killed it and its children");
        }
    }
}

/// Run this test binary again for its one test `test` alone, in a child
/// whose environment sets `var` to `scenario` (and `RUST_BACKTRACE=0`), and
/// collect its output as [`output_within`] does. It is how a test checks
/// what ends or cripples a process (an abort, a stack overflow, the kernel's
/// mapping limit): the test, finding `var` set, plays the scenario; run
/// without it, it starts the child and judges how it ended.
pub fn rerun_test(test: &str, var: &str, scenario: &str, within: Duration) -> Output {
    let exe = std::env::current_exe().expect("the test binary's path");
    output_within(
        Command::new(exe)
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(var, scenario)
            .env("RUST_BACKTRACE", "0"),
        b"",
        within,
    )
}

/// Whether `pid` is a live process, by `/proc`: a zombie is as good as
/// gone (it waits to be reaped, it does not serve), and so is a pid that is
/// no process at all.
///
/// ```
/// assert!(test_support::alive(std::process::id()));
/// ```
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// SIGKILL the process group led by `pid`, a child not yet reaped (so its
/// group's number is still its own); a group already empty is no error.
pub(crate) fn kill_group(pid: u32) {
    let group = Pid::from_raw(i32::try_from(pid).expect("a pid fits an i32"));
    match killpg(group, Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => eprintln!("killpg({pid}, SIGKILL): {e}"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Wait up to 5 s for `pid` to be gone.
    pub(crate) fn gone_soon(pid: u32) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while alive(pid) && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        !alive(pid)
    }

    #[test]
    fn a_command_gets_its_input_and_its_output_is_collected() {
        let out = output_within(
            Command::new("sh").args(["-c", "tr a-z A-Z; echo oops >&2"]),
            b"hello",
            Duration::from_secs(30),
        );
        assert!(out.status.success());
        assert_eq!(
            (&out.stdout[..], &out.stderr[..]),
            (&b"HELLO"[..], &b"oops\n"[..])
        );
    }

    #[test]
    fn a_command_that_runs_too_long_fails_the_test_and_dies_with_what_it_started() {
        let file = std::env::temp_dir().join(format!("output-within-{}", std::process::id()));
        let script = format!("sleep 60 & echo $! > '{}'; wait", file.display());
        let failed = std::panic::catch_unwind(|| {
            output_within(
                Command::new("sh").args(["-c", &script]),
                b"",
                // Long enough for a loaded machine to start sh and write
                // the file, short enough for a test.
                Duration::from_secs(3),
            )
        });
        let message = *failed.unwrap_err().downcast::<String>().unwrap();
        assert!(message.contains("did not finish within 3s"), "{message}");
        let sleeper: u32 = std::fs::read_to_string(&file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let _ = std::fs::remove_file(&file);
        assert!(
            gone_soon(sleeper),
            "the command's child {sleeper} outlived it"
        );
    }
}
