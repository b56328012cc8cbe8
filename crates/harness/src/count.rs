//! Instructions per operation: the figure a noisy machine cannot move.
//!
//! On a shared machine a 12 ns operation times anywhere from 10 to 20 ns
//! depending on the neighbours; the number of instructions it executes is
//! the same every run. So a group marked [`Group::count_instructions`] is,
//! besides being timed, run once more under valgrind's callgrind, and its
//! table gains an `instr/op` column.
//!
//! # How
//!
//! Callgrind slows a program fifty-fold, so the timed runs stay native and
//! the count comes from a second process: this same program, started as
//!
//! ```text
//! valgrind --tool=callgrind --collect-atstart=no \
//!     --toggle-collect=harness::count::counted_run \
//!     --dump-after=harness::count::counted_run  <this program>
//! ```
//!
//! with `HARNESS_COUNT_GROUP=<group>` in its environment. Its `main` calls
//! [`serve`] first thing, which sees the variable and rebuilds the group
//! twice with the function the program registered, at scale 1 and at
//! scale 2 (twice the operations). For each case it runs the small one
//! once to warm up (lazy initialisation, first-touch page faults: not the
//! steady state), then the small one and the large one inside
//! `counted_run`. Callgrind counts only while `counted_run` runs and writes
//! one dump as each call returns. The parent keeps the *difference* between
//! each case's two counts over the difference in operations: whatever a run
//! does once (create a greenlet, unwind it at the end: tens of thousands of
//! instructions) drops out, and what is left is the steady-state cost of
//! one operation.
//!
//! Counting degrades to nothing, with a reason in the table's footnote: no
//! valgrind, `HARNESS_VALGRIND=off`, a program that did not call [`serve`]
//! (a test binary measuring a group in-process must not re-run itself under
//! callgrind), or a child that failed. The count follows only the thread that
//! runs the cases and assumes the stacks it switches to lie below that
//! thread's own (true of the main thread's stack, which is where lessons
//! run): callgrind tracks calls by the stack pointer.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::case::{Case, CheckError, Group, Outcome};

/// Set in a counting child's environment: the group it must count.
pub const GROUP_ENV: &str = "HARNESS_COUNT_GROUP";
/// Set in a counting child's environment: where it writes what it counted.
const DIR_ENV: &str = "HARNESS_COUNT_DIR";
/// The valgrind to run (default: `valgrind` on the `PATH`); `off` disables
/// counting.
pub const VALGRIND_ENV: &str = "HARNESS_VALGRIND";

/// The function callgrind counts inside, as valgrind demangles its name.
const COUNTED_FN: &str = "harness::count::counted_run";

/// A counting child that runs longer than this is killed and reported.
const CHILD_TIMEOUT: Duration = Duration::from_secs(600);

/// How a program rebuilds a group by name for counting, at a scale of 1 or
/// 2 (the number of operations of each case is proportional to it); `None`
/// for a group it does not know.
pub type Groups = fn(name: &str, scale: u64) -> Option<Group>;

static GROUPS: OnceLock<Groups> = OnceLock::new();

/// Make this program able to count instructions: call it first thing in
/// `main`, with a function that rebuilds any group the program marks
/// [`Group::count_instructions`]. In a counting child (see the module docs)
/// it counts and returns the exit code `main` must return at once;
/// otherwise it returns `None` and the program goes on.
///
/// ```no_run
/// use std::process::ExitCode;
/// use harness::{Case, Group};
///
/// fn sums(n: u64) -> Group {
///     Group::new("sums")
///         .case(Case::new("loop", n, move || (0..n).sum::<u64>()))
///         .count_instructions()
/// }
///
/// fn counted(name: &str, scale: u64) -> Option<Group> {
///     (name == "sums").then(|| sums(1_000 * scale))
/// }
///
/// fn main() -> ExitCode {
///     if let Some(code) = harness::count::serve(counted) {
///         return code;
///     }
///     // ... the program, measuring `sums(1_000_000)` with a `Report`
///     ExitCode::SUCCESS
/// }
/// ```
pub fn serve(groups: Groups) -> Option<ExitCode> {
    let _ = GROUPS.set(groups);
    let group = std::env::var_os(GROUP_ENV)?;
    Some(match child(&group, groups) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("instruction count: {why}");
            ExitCode::FAILURE
        }
    })
}

/// Why a group's instructions were not counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotCounted {
    /// `HARNESS_VALGRIND=off`.
    Disabled,
    /// valgrind could not be started.
    NoValgrind {
        /// The program we tried.
        program: String,
        /// Why it did not start.
        error: String,
    },
    /// This program never called [`serve`], so it cannot re-run a group.
    NotServed,
    /// The counting child failed or its output made no sense.
    Failed(String),
}

impl fmt::Display for NotCounted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotCounted::Disabled => write!(f, "{VALGRIND_ENV}=off"),
            NotCounted::NoValgrind { program, error } => write!(
                f,
                "{program} did not start ({error}); install valgrind to count instructions"
            ),
            NotCounted::NotServed => write!(
                f,
                "this program does not serve instruction counts (harness::count::serve)"
            ),
            NotCounted::Failed(why) => write!(f, "{why}"),
        }
    }
}

/// Count `group`'s instructions per op in a child under callgrind: case name
/// to instructions per operation.
pub(crate) fn per_op(group: &str) -> Result<BTreeMap<String, f64>, NotCounted> {
    if GROUPS.get().is_none() || std::env::var_os(GROUP_ENV).is_some() {
        return Err(NotCounted::NotServed);
    }
    let valgrind = match std::env::var_os(VALGRIND_ENV) {
        Some(v) if v == "off" || v.is_empty() => return Err(NotCounted::Disabled),
        Some(v) => v,
        None => OsString::from("valgrind"),
    };
    let exe = std::env::current_exe()
        .map_err(|e| NotCounted::Failed(format!("cannot find this program to re-run: {e}")))?;
    let dir = Scratch::new().map_err(|e| NotCounted::Failed(format!("no scratch dir: {e}")))?;
    run_child(&valgrind, &exe, group, &dir.0)?;
    let manifest = fs::read_to_string(dir.0.join("manifest"))
        .map_err(|e| NotCounted::Failed(format!("the counting child wrote no manifest: {e}")))?;
    let dumps = read_dumps(&dir.0)
        .map_err(|e| NotCounted::Failed(format!("cannot read callgrind's output: {e}")))?;
    pair(&manifest, &dumps)
}

fn run_child(valgrind: &OsString, exe: &Path, group: &str, dir: &Path) -> Result<(), NotCounted> {
    let log = dir.join("child.log");
    let stderr = File::create(&log)
        .map_err(|e| NotCounted::Failed(format!("cannot create {}: {e}", log.display())))?;
    let mut command = Command::new(valgrind);
    command
        .arg("--tool=callgrind")
        .arg("--collect-atstart=no")
        .arg(format!("--toggle-collect={COUNTED_FN}"))
        .arg(format!("--dump-after={COUNTED_FN}"))
        .arg(format!(
            "--callgrind-out-file={}",
            dir.join("callgrind.out").display()
        ))
        .arg(format!("--log-file={}", dir.join("valgrind.log").display()))
        .arg(exe)
        .env(GROUP_ENV, group)
        .env(DIR_ENV, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    let mut child = command.spawn().map_err(|e| NotCounted::NoValgrind {
        program: valgrind.to_string_lossy().into_owned(),
        error: e.to_string(),
    })?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > CHILD_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(NotCounted::Failed(format!(
                    "the counting child ran past {} s and was killed",
                    CHILD_TIMEOUT.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(NotCounted::Failed(format!("waiting for valgrind: {e}"))),
        }
    };
    if status.success() {
        return Ok(());
    }
    let said = fs::read_to_string(&log).unwrap_or_default();
    let last = said.lines().rev().find(|l| !l.trim().is_empty());
    Err(NotCounted::Failed(format!(
        "the counting child failed ({status}){}",
        last.map(|l| format!(": {l}")).unwrap_or_default()
    )))
}

/// The child's side: for each case, warm the small one up, run the small
/// and the large one inside [`counted_run`], and list the cases and their
/// operations in the order callgrind dumped them.
fn child(group: &std::ffi::OsStr, groups: Groups) -> Result<(), String> {
    let dir = std::env::var_os(DIR_ENV).ok_or(format!("{DIR_ENV} is not set"))?;
    let name = group.to_string_lossy();
    let missing = || format!("this program has no group `{name}` to count");
    let mut small = groups(&name, 1).ok_or_else(missing)?;
    let mut large = groups(&name, 2).ok_or_else(missing)?;
    let mut manifest = String::new();
    for (small, large) in small.cases_mut().iter_mut().zip(large.cases_mut()) {
        small.run_once().map_err(|e| e.to_string())?;
        counted_run(small).map_err(|e| e.to_string())?;
        counted_run(large).map_err(|e| e.to_string())?;
        let line = serde_json::json!({
            "case": small.name(),
            "ops": [small.ops(), large.ops()],
        });
        manifest.push_str(&format!("{line}\n"));
    }
    fs::write(Path::new(&dir).join("manifest"), manifest).map_err(|e| e.to_string())
}

/// The one run of a case that callgrind counts (by this function's name:
/// never inline it).
#[inline(never)]
fn counted_run(case: &mut Case) -> Result<Outcome, CheckError> {
    std::hint::black_box(case).run_once()
}

/// The instruction totals of callgrind's dumps `callgrind.out.1`, `.2`, …,
/// in order.
fn read_dumps(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut parts: Vec<(u32, PathBuf)> = fs::read_dir(dir)?
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let n = path
                .file_name()?
                .to_str()?
                .strip_prefix("callgrind.out.")?
                .parse()
                .ok()?;
            Some((n, path))
        })
        .collect();
    parts.sort();
    parts
        .into_iter()
        .map(|(_, path)| {
            let text = fs::read_to_string(&path)?;
            total_instructions(&text).ok_or_else(|| {
                std::io::Error::other(format!("{} has no totals line", path.display()))
            })
        })
        .collect()
}

/// The instructions a callgrind dump counted: the first number on its
/// `totals:` line (`summary:` in older formats); Ir is the first event.
fn total_instructions(dump: &str) -> Option<u64> {
    let line = dump
        .lines()
        .find(|l| l.starts_with("totals:"))
        .or_else(|| dump.lines().find(|l| l.starts_with("summary:")))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Match the child's manifest (one case a line, in run order, with the
/// operations of its small and large run) with the dumps (two per case):
/// instructions per op is the difference of the two counts over the
/// difference in operations (a case whose size does not scale: its small
/// count over its operations).
fn pair(manifest: &str, dumps: &[u64]) -> Result<BTreeMap<String, f64>, NotCounted> {
    let cases: Vec<(String, u64, u64)> = manifest
        .lines()
        .filter_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            let ops = v["ops"].as_array()?;
            let (small, large) = (ops.first()?.as_u64()?, ops.get(1)?.as_u64()?);
            Some((v["case"].as_str()?.to_string(), small, large))
        })
        .collect();
    if 2 * cases.len() != dumps.len() {
        return Err(NotCounted::Failed(format!(
            "callgrind wrote {} dumps for {} cases (is {COUNTED_FN} in the symbol table?)",
            dumps.len(),
            cases.len()
        )));
    }
    Ok(cases
        .into_iter()
        .zip(dumps.chunks_exact(2))
        .map(|((case, small, large), counts)| {
            let per_op = if large > small {
                counts[1].saturating_sub(counts[0]) as f64 / (large - small) as f64
            } else {
                counts[0] as f64 / small.max(1) as f64
            };
            (case, per_op)
        })
        .collect())
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> std::io::Result<Scratch> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("harness-count-{}-{nanos:09}", std::process::id()));
        fs::create_dir(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_total_is_the_first_number_of_its_totals_line() {
        let dump = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\n\
                    desc: Trigger: --dump-after=x\nsummary: 99\ntotals: 15436846\n";
        assert_eq!(total_instructions(dump), Some(15_436_846));
        assert_eq!(total_instructions("events: Ir\nsummary: 7\n"), Some(7));
        assert_eq!(total_instructions("events: Ir\n"), None);
    }

    #[test]
    fn what_a_run_does_once_drops_out_of_the_count_per_op() {
        let manifest = "{\"case\":\"a\",\"ops\":[10,20]}\n{\"case\":\"b\",\"ops\":[4,4]}\n";
        // a: 5000 instructions of setup, then 100 per op.
        let counts = pair(manifest, &[6000, 7000, 10, 10]).unwrap();
        assert_eq!(counts["a"], 100.0);
        assert_eq!(counts["b"], 2.5);
        let err = pair(manifest, &[6000, 7000, 10]).unwrap_err();
        assert!(err.to_string().contains("3 dumps for 2 cases"), "{err}");
    }

    #[test]
    fn dumps_are_read_in_numeric_order() {
        let dir = Scratch::new().unwrap();
        for (n, total) in [(2, 20), (10, 100), (1, 10)] {
            let text = format!("events: Ir\ntotals: {total}\n");
            fs::write(dir.0.join(format!("callgrind.out.{n}")), text).unwrap();
        }
        fs::write(dir.0.join("callgrind.out"), "totals: 0\n").unwrap();
        assert_eq!(read_dumps(&dir.0).unwrap(), [10, 20, 100]);
    }

    #[test]
    fn a_program_that_does_not_serve_counts_is_not_re_run() {
        // Test binaries never call `serve`: counting must not start one
        // under callgrind (it would run every test again).
        assert_eq!(per_op("anything"), Err(NotCounted::NotServed));
    }
}
