//! What the tests that run the stage binary share.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Run `cmd` (with `stdin` as its input) and collect its output, failing the
/// test if it takes longer than `within`. It runs in a process group of its
/// own, so a timeout kills whatever it started too (echo-bench's servers).
pub(crate) fn output_within(cmd: &mut Command, stdin: &[u8], within: Duration) -> Output {
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the stage-hub binary");
    let pid = child.id();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    thread::spawn(move || input.write_all(&stdin)); // then closed: EOF
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(within) {
        Ok(out) => out.expect("wait for the stage-hub binary"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
            panic!("{cmd:?} did not finish within {within:?}; killed it and its children");
        }
    }
}
