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
use std::ffi::{OsStr, OsString};
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
/// Set in a counting child's environment to count one case of the group only.
const CASE_ENV: &str = "HARNESS_COUNT_CASE";
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
    let valgrind = valgrind()?;
    let exe = this_program()?;
    let dir = Scratch::new().map_err(|e| NotCounted::Failed(format!("no scratch dir: {e}")))?;
    run_child(&valgrind, &exe, group, None, &dir.0)?;
    let manifest = read_manifest(&dir.0)?;
    let dumps = read_dumps(&dir.0)
        .map_err(|e| NotCounted::Failed(format!("cannot read callgrind's output: {e}")))?;
    pair(&manifest, &dumps)
}

/// Whether counting can be tried at all here, and with which valgrind.
fn valgrind() -> Result<OsString, NotCounted> {
    if GROUPS.get().is_none() || std::env::var_os(GROUP_ENV).is_some() {
        return Err(NotCounted::NotServed);
    }
    valgrind_from(std::env::var_os(VALGRIND_ENV).as_deref())
}

/// The valgrind that [`VALGRIND_ENV`] set to `setting` names: unset, the
/// `valgrind` on the `PATH`; `off` or empty, none ([`NotCounted::Disabled`]);
/// anything else, that program. For other tools that run valgrind (the
/// book's cache-miss figures) to honour the same switch.
///
/// ```
/// use harness::count::{valgrind_from, NotCounted};
/// assert_eq!(valgrind_from(None).unwrap(), "valgrind");
/// assert_eq!(valgrind_from(Some("off".as_ref())), Err(NotCounted::Disabled));
/// ```
pub fn valgrind_from(setting: Option<&OsStr>) -> Result<OsString, NotCounted> {
    match setting {
        Some(v) if v == "off" || v.is_empty() => Err(NotCounted::Disabled),
        Some(v) => Ok(v.to_os_string()),
        None => Ok(OsString::from("valgrind")),
    }
}

fn this_program() -> Result<PathBuf, NotCounted> {
    std::env::current_exe()
        .map_err(|e| NotCounted::Failed(format!("cannot find this program to re-run: {e}")))
}

fn read_manifest(dir: &Path) -> Result<String, NotCounted> {
    fs::read_to_string(dir.join("manifest"))
        .map_err(|e| NotCounted::Failed(format!("the counting child wrote no manifest: {e}")))
}

/// One source line's share of an operation: see [`per_line`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LineCount {
    /// The source file: relative to the workspace for our own code, as the
    /// debug information names it otherwise (the standard library, a
    /// dependency's assembly).
    pub file: String,
    /// The line in it (0 where the debug information has none).
    pub line: u32,
    /// The function the instructions were compiled from (innermost).
    pub function: String,
    /// The line's text, trimmed, where the file could be read.
    pub text: Option<String>,
    /// Instructions per operation executed for this line.
    pub per_op: f64,
}

/// Where each instruction of one operation of `case` (in `group`) goes: the
/// source lines it was compiled from, with their instructions per
/// operation, in file and line order.
///
/// Counted like the `instr/op` column (two sizes, the difference), but per
/// instruction (callgrind's `--dump-instr=yes`); each instruction is then
/// attributed, by binutils' `addr2line -i` (which follows inlining), to the
/// innermost line of this workspace's own code it came from: an inlined
/// `Cell::set` counts for the line of ours that called it. Instructions
/// with no line of ours (a dependency's assembly) count for the innermost
/// line the debug information names. Needs valgrind, `addr2line` and a
/// build with debug line information (the release profile has it).
pub fn per_line(group: &str, case: &str) -> Result<Vec<LineCount>, NotCounted> {
    let valgrind = valgrind()?;
    let exe = this_program()?;
    let dir = Scratch::new().map_err(|e| NotCounted::Failed(format!("no scratch dir: {e}")))?;
    run_child(&valgrind, &exe, group, Some(case), &dir.0)?;
    let manifest = read_manifest(&dir.0)?;
    let ops: Vec<u64> = manifest
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["case"] == case)
        .filter_map(|v| {
            let ops = v["ops"].as_array()?;
            Some([ops.first()?.as_u64()?, ops.get(1)?.as_u64()?])
        })
        .next()
        .unwrap_or_default()
        .to_vec();
    let (small, large) = match ops[..] {
        [small, large] if large > small => (small, large),
        _ => {
            return Err(NotCounted::Failed(format!(
                "no case `{case}` in `{group}` to count"
            )))
        }
    };
    // Object names are numbered once per run: a later dump may use a
    // number the first one defined.
    let mut objects = BTreeMap::new();
    let mut read = |n: u32| {
        let path = dir.0.join(format!("callgrind.out.{n}"));
        fs::read_to_string(&path)
            .map(|text| instructions_by_address(&text, &exe, &mut objects))
            .map_err(|e| NotCounted::Failed(format!("cannot read {}: {e}", path.display())))
    };
    let (at_small, at_large) = (read(1)?, read(2)?);
    let per_op: BTreeMap<u64, f64> = at_large
        .iter()
        .map(|(&addr, &n)| {
            let once = at_small.get(&addr).copied().unwrap_or(0);
            (addr, n.saturating_sub(once) as f64 / (large - small) as f64)
        })
        .filter(|&(_, per_op)| per_op >= 0.5)
        .collect();
    let frames = inline_frames(&exe, per_op.keys().copied())?;
    Ok(by_line(&per_op, &frames, &workspace_root()))
}

/// The workspace this program was built from (the debug information's
/// paths of our own code start with it).
fn workspace_root() -> PathBuf {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR"));
    harness
        .parent()
        .and_then(Path::parent)
        .unwrap_or(harness)
        .to_path_buf()
}

/// One frame of an instruction's inlining chain, innermost first.
#[derive(Debug, Clone, PartialEq)]
struct Frame {
    function: String,
    file: String,
    line: u32,
}

/// Each address's inlining chain, innermost first, from `addr2line -i`.
fn inline_frames(
    exe: &Path,
    addrs: impl Iterator<Item = u64>,
) -> Result<BTreeMap<u64, Vec<Frame>>, NotCounted> {
    let addrs: Vec<String> = addrs.map(|a| format!("{a:#x}")).collect();
    let out = Command::new("addr2line")
        .args(["-a", "-i", "-f", "-C", "-e"])
        .arg(exe)
        .args(&addrs)
        .output()
        .map_err(|e| NotCounted::Failed(format!("addr2line (binutils) did not start: {e}")))?;
    if !out.status.success() {
        return Err(NotCounted::Failed(format!(
            "addr2line failed ({})",
            out.status
        )));
    }
    Ok(parse_frames(&String::from_utf8_lossy(&out.stdout)))
}

/// `addr2line -a -i -f` output: an address line, then (function, file:line)
/// pairs, innermost first.
fn parse_frames(text: &str) -> BTreeMap<u64, Vec<Frame>> {
    let mut frames: BTreeMap<u64, Vec<Frame>> = BTreeMap::new();
    let mut lines = text.lines();
    let mut at = None;
    while let Some(line) = lines.next() {
        if let Some(hex) = line.strip_prefix("0x") {
            at = u64::from_str_radix(hex, 16).ok();
            continue;
        }
        let (Some(addr), Some(place)) = (at, lines.next()) else {
            continue;
        };
        let place = place.split(" (discriminator").next().unwrap_or(place);
        let (file, line_no) = place.rsplit_once(':').unwrap_or((place, "0"));
        frames.entry(addr).or_default().push(Frame {
            function: line.to_string(),
            file: file.to_string(),
            line: line_no.parse().unwrap_or(0),
        });
    }
    frames
}

/// Sum instructions per op by the innermost line of our own code (under
/// `root`) in each address's chain, else its innermost line. A line that is
/// an attribute (`#[derive(PartialEq)]`: the derived comparison) counts for
/// the line that used what it derived.
fn by_line(
    per_op: &BTreeMap<u64, f64>,
    frames: &BTreeMap<u64, Vec<Frame>>,
    root: &Path,
) -> Vec<LineCount> {
    let root = root.to_string_lossy();
    let sources = Sources::default();
    let ours = |f: &Frame| {
        f.file.starts_with(&*root)
            && f.line > 0
            && !sources
                .line(&f.file, f.line)
                .is_some_and(|text| text.starts_with("#["))
    };
    let mut lines: BTreeMap<(String, u32), LineCount> = BTreeMap::new();
    for (addr, &n) in per_op {
        let chain = frames.get(addr).map(Vec::as_slice).unwrap_or_default();
        let frame = chain.iter().find(|f| ours(f)).or(chain.first());
        let (file, line, function) = match frame {
            Some(f) => {
                let file = match f.file.strip_prefix(&*root) {
                    Some(inside) => inside.trim_start_matches('/'),
                    None => &f.file,
                };
                (file.to_string(), f.line, f.function.clone())
            }
            None => (String::from("??"), 0, format!("{addr:#x}")),
        };
        let text = frame
            .filter(|f| f.file.starts_with(&*root))
            .and_then(|f| sources.line(&f.file, f.line));
        lines
            .entry((file.clone(), line))
            .or_insert(LineCount {
                file,
                line,
                function,
                text,
                per_op: 0.0,
            })
            .per_op += n;
    }
    lines.into_values().collect()
}

/// Source files read once each, for their lines.
#[derive(Default)]
struct Sources(std::cell::RefCell<BTreeMap<String, Option<Vec<String>>>>);

impl Sources {
    /// Line `line` (from 1) of `file`, trimmed.
    fn line(&self, file: &str, line: u32) -> Option<String> {
        let mut files = self.0.borrow_mut();
        let lines = files.entry(file.to_string()).or_insert_with(|| {
            let text = fs::read_to_string(file).ok()?;
            Some(text.lines().map(|l| l.trim().to_string()).collect())
        });
        let at = usize::try_from(line).ok()?.checked_sub(1)?;
        lines.as_ref()?.get(at).cloned()
    }
}

/// Instructions executed at each address of `exe` (file offsets, as
/// callgrind writes them for a position-independent executable), from a
/// dump written with `--dump-instr=yes`. Addresses in other objects (the C
/// library, the loader) are left out. `objects` carries callgrind's object
/// numbers (whether each is `exe`) from one dump of a run to the next.
fn instructions_by_address(
    dump: &str,
    exe: &Path,
    objects: &mut BTreeMap<String, bool>,
) -> BTreeMap<u64, u64> {
    let exe = exe.to_string_lossy();
    let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
    let mut columns = 1;
    let (mut in_exe, mut addr, mut after_calls) = (false, 0u64, false);
    for line in dump.lines() {
        if let Some(rest) = line.strip_prefix("positions:") {
            columns = rest.split_whitespace().count().max(1);
            continue;
        }
        // `(id) name` defines a compressed object name, `(id)` reuses it;
        // a called object (`cob=`) may be the first to define one.
        let (object, is_ob) = match (line.strip_prefix("ob="), line.strip_prefix("cob=")) {
            (Some(rest), _) => (Some(rest), true),
            (None, Some(rest)) => (Some(rest), false),
            _ => (None, false),
        };
        if let Some(rest) = object {
            let (id, name) = match rest.split_once(' ') {
                Some((id, name)) => (id.to_string(), Some(name)),
                None => (rest.to_string(), None),
            };
            if let Some(name) = name {
                objects.insert(id.clone(), name == exe);
            }
            if is_ob {
                in_exe = objects.get(&id).copied().unwrap_or(false);
            }
            continue;
        }
        if line.starts_with("calls=") {
            after_calls = true;
            continue;
        }
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else {
            continue;
        };
        let position = if let Some(hex) = first.strip_prefix("0x") {
            u64::from_str_radix(hex, 16).ok()
        } else if let Some(n) = first.strip_prefix('+') {
            n.parse::<u64>().ok().map(|n| addr + n)
        } else if let Some(n) = first.strip_prefix('-') {
            n.parse::<u64>().ok().map(|n| addr.saturating_sub(n))
        } else if first == "*" {
            Some(addr)
        } else {
            None // a `key=value` line
        };
        let Some(position) = position else {
            continue;
        };
        addr = position;
        if std::mem::take(&mut after_calls) {
            continue; // a call's inclusive cost, not this instruction's
        }
        let cost = words.nth(columns - 1).and_then(|c| c.parse::<u64>().ok());
        if let (true, Some(cost)) = (in_exe, cost) {
            *counts.entry(addr).or_default() += cost;
        }
    }
    counts
}

fn run_child(
    valgrind: &OsString,
    exe: &Path,
    group: &str,
    case: Option<&str>,
    dir: &Path,
) -> Result<(), NotCounted> {
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
        .args(case.map(|_| "--dump-instr=yes"))
        .arg(exe)
        .env(GROUP_ENV, group)
        .env(DIR_ENV, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    if let Some(case) = case {
        command.env(CASE_ENV, case);
    }
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
    let only = std::env::var(CASE_ENV).ok();
    let mut manifest = String::new();
    for (small, large) in small.cases_mut().iter_mut().zip(large.cases_mut()) {
        if only.as_deref().is_some_and(|only| only != small.name()) {
            continue;
        }
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

/// A scratch directory under the system's temporary folder, removed (with
/// what is in it) when dropped: for the files valgrind writes.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// Create a new, empty one.
    pub fn new() -> std::io::Result<Scratch> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("harness-count-{}-{nanos:09}", std::process::id()));
        fs::create_dir(&dir)?;
        Ok(Scratch(dir))
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.0
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
    fn instructions_are_summed_by_address_in_the_program_only() {
        let dump = "positions: instr line\nevents: Ir\n\
                    ob=(1) /bin/prog\nfn=(1) f\n0x100 10 2\n+4 * 2\n\
                    calls=2 0x200 11\n+3 12 500\n+2 13 1\n\
                    ob=(2) /lib/libc.so\nfn=(2) g\n0x100 20 7\n\
                    ob=(1)\nfn=(3) h\n0x104 5 3\n";
        let mut objects = BTreeMap::new();
        let counts = instructions_by_address(dump, Path::new("/bin/prog"), &mut objects);
        // 0x104: 2 in f and 3 in h; the call's inclusive 500 is not an
        // instruction's; libc's 0x100 is another object's address.
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            [(0x100, 2), (0x104, 5), (0x109, 1)]
        );
        // A later dump of the same run names the program by its number.
        let later = "positions: instr\nob=(1)\nfn=(1)\n0x100 4\n";
        let counts = instructions_by_address(later, Path::new("/bin/prog"), &mut objects);
        assert_eq!(counts.into_iter().collect::<Vec<_>>(), [(0x100, 4)]);
    }

    #[test]
    fn an_instruction_counts_for_the_innermost_line_of_our_own_code() {
        let text = "0x0000000000000010\n\
                    core::cell::Cell<T>::set\n/rustc/abc/library/core/src/cell.rs:437\n\
                    stage::switch::receive\n/ws/crates/stage/src/switch.rs:724\n\
                    stage::cost::loop\n/ws/crates/stage/src/cost.rs:95\n\
                    0x0000000000000020\n\
                    jump_fcontext\n/registry/context/asm/jump.S:50 (discriminator 1)\n";
        let frames = parse_frames(text);
        assert_eq!(frames[&0x10].len(), 3);
        assert_eq!(frames[&0x20][0].line, 50);
        let per_op = BTreeMap::from([(0x10, 2.0), (0x20, 24.0)]);
        let lines = by_line(&per_op, &frames, Path::new("/ws"));
        let got: Vec<_> = lines
            .iter()
            .map(|l| (l.file.as_str(), l.line, l.per_op))
            .collect();
        assert_eq!(
            got,
            [
                ("/registry/context/asm/jump.S", 50, 24.0),
                ("crates/stage/src/switch.rs", 724, 2.0),
            ]
        );
        assert_eq!(lines[1].function, "stage::switch::receive");
    }

    #[test]
    fn a_program_that_does_not_serve_counts_is_not_re_run() {
        // Test binaries never call `serve`: counting must not start one
        // under callgrind (it would run every test again).
        assert_eq!(per_op("anything"), Err(NotCounted::NotServed));
        assert_eq!(per_line("anything", "case"), Err(NotCounted::NotServed));
    }
}
