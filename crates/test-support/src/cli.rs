//! A stage's command line as its tests check it: run with a time limit,
//! and what every stage's output must show (success, clap's refusal, the
//! one heading style), or its outcome as text for a test to judge.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use trace::read::Recorded;

use crate::run::{output_within, try_output_within};

/// Run `bin` with `args` and no input, failing the test if it takes longer
/// than `within` (see [`output_within`]).
///
/// ```
/// use std::time::Duration;
/// let out = test_support::output_of("echo", &["hi"], Duration::from_secs(10));
/// assert_eq!(out.stdout, b"hi\n");
/// ```
pub fn output_of(bin: &str, args: &[&str], within: Duration) -> Output {
    output_within(Command::new(bin).args(args), b"", within)
}

/// A fresh path in the temporary directory for a `--trace` file, unique
/// to this process and this call.
pub fn trace_file() -> PathBuf {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("test-trace-{}-{call}.json", std::process::id()))
}

/// Run `bin ARGS --trace FILE` (a fresh [`trace_file`]) and no input,
/// within `within`; fail the test unless it succeeds, then read FILE back
/// and remove it. Returns the timeline and the run's output (for what it
/// printed beside).
pub fn traced(bin: &str, args: &[&str], within: Duration) -> (Recorded, Output) {
    let file = trace_file();
    let out = output_within(
        Command::new(bin).args(args).arg("--trace").arg(&file),
        b"",
        within,
    );
    assert_success(&out);
    let recorded = Recorded::read(&file).unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_file(&file);
    (recorded, out)
}

/// Fail the test unless the command that left `out` exited with status 0,
/// showing its status, its stderr and its stdout.
///
/// ```should_panic
/// use std::time::Duration;
/// let out = test_support::output_of("false", &[], Duration::from_secs(10));
/// test_support::assert_success(&out);
/// ```
#[track_caller]
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}; stderr:\n{}\nstdout:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Whether the command that left `out` exited with status 0, and its
/// stdout and stderr as text (a byte that is not UTF-8 shows as U+FFFD
/// rather than failing the test): for a test that judges a failure's
/// message as closely as a success's output.
///
/// ```
/// use std::time::Duration;
/// let out = test_support::output_of("sh", &["-c", "echo out; echo err >&2; exit 1"], Duration::from_secs(10));
/// let (ok, stdout, stderr) = test_support::outcome(&out);
/// assert_eq!((ok, &stdout[..], &stderr[..]), (false, "out\n", "err\n"));
/// ```
pub fn outcome(out: &Output) -> (bool, String, String) {
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The first line of the error a command line was refused with, checked to
/// be clap's refusal: exit status 2, stderr in UTF-8 starting
/// `PROGRAM: error:`, and nothing on stdout. `what` names the command line in a failure.
///
/// ```
/// use std::time::Duration;
/// let out = test_support::output_of("sh", &["-c", "echo 'sh: error: no' >&2; exit 2"], Duration::from_secs(10));
/// assert_eq!(test_support::refused(&out, "sh", "sh -c"), "sh: error: no");
/// ```
#[track_caller]
pub fn refused(out: &Output, program: &str, what: impl std::fmt::Debug) -> String {
    let stderr = std::str::from_utf8(&out.stderr)
        .unwrap_or_else(|e| panic!("{what:?}: stderr is not UTF-8: {e}"));
    assert_eq!(out.status.code(), Some(2), "{what:?}: {stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("{program}: error:")),
        "{what:?}: {stderr}"
    );
    assert!(out.stdout.is_empty(), "{what:?} printed on stdout");
    first.to_string()
}

/// Whether this machine's `python3` can import `module`, for a figure
/// measured against CPython when it can and quoted from the notes when it
/// cannot. Under CI (`CI` set), whose `.ci/run` installs the modules, a
/// missing one fails the test instead.
///
/// ```no_run
/// if test_support::python_can_import("gevent") {
///     // run the listing that measures gevent beside the hub
/// }
/// ```
#[track_caller]
pub fn python_can_import(module: &str) -> bool {
    // An import takes seconds at most; a minute means python3 hung.
    let can = try_output_within(
        Command::new("python3").args(["-c", &format!("import {module}")]),
        b"",
        Duration::from_secs(60),
    )
    .is_ok_and(|o| o.status.success());
    assert!(
        can || std::env::var_os("CI").is_none(),
        "CI installs {module} (.ci/run)"
    );
    can
}

/// Fail the test unless every heading in a stage's narration `stdout` has
/// the stages' one style (`## Title` per listing, see
/// [`harness::output::off_style_headings`]) and there are at least
/// `at_least` of them.
///
/// ```
/// test_support::assert_one_heading_style("Stage 1\n\n## CPU work\nfunc1\n\n## naps\n", 2);
/// ```
#[track_caller]
pub fn assert_one_heading_style(stdout: &str, at_least: usize) {
    assert_eq!(
        harness::output::off_style_headings(stdout),
        Vec::<String>::new()
    );
    assert!(
        stdout.matches("\n## ").count() >= at_least,
        "fewer than {at_least} `## ` headings:\n{stdout}"
    );
}
