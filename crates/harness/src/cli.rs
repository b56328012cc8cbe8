//! The options every stage binary shares.
//!
//! Each stage's `main.rs` flattens [`CommonArgs`] into its own clap parser, so
//! `--quick`, `--json` and `--runs` mean the same thing everywhere.

use std::io::Read;
use std::ops::RangeInclusive;
use std::path::Path;
use std::process::{self, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use clap::builder::RangedU64ValueParser;
use clap::Args;

use crate::{Output, Plan};

/// The most `--runs` a command line may ask for ([`Plan::MAX_RUNS`]).
pub const MAX_RUNS: i64 = Plan::MAX_RUNS as i64;

/// `--quick`, `--json`, `--runs`: the options every stage binary takes.
#[derive(Debug, Clone, Default, Args)]
pub struct CommonArgs {
    /// Scale waits and counts down so the whole lesson runs in a few seconds
    /// (what tests, CI and the tour use).
    #[arg(long, global = true)]
    pub quick: bool,

    /// Print the report as JSON lines on stdout; narration goes to stderr.
    #[arg(long, global = true)]
    pub json: bool,

    /// Exactly N timed runs per case (the median is reported) [default: at
    /// least 5 filling 0.5 s, or at least 3 filling 0.1 s with --quick]
    /// [range: 1..=1000]
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=MAX_RUNS))]
    pub runs: Option<u16>,
}

impl CommonArgs {
    /// Where narration and the report go.
    pub fn output(&self) -> Output {
        if self.json {
            Output::json()
        } else {
            Output::human()
        }
    }

    /// How many times each case runs.
    pub fn plan(&self) -> Plan {
        let mut plan = if self.quick {
            Plan::quick()
        } else {
            Plan::full()
        };
        if let Some(runs) = self.runs {
            plan = Plan::exactly(plan.warmup, usize::from(runs));
        }
        plan
    }
}

/// A value parser for a count flag: an integer in `range`, refused by clap
/// (exit 2, naming the flag and the range) when outside it. The flag's help
/// states the same range as `[range: A..=B]`, which the stages' CLI tests
/// probe with [`stated_ranges`].
///
/// ```
/// use clap::Parser;
/// #[derive(Debug, Parser)]
/// struct Load {
///     /// Concurrent clients [range: 1..=100]
///     #[arg(long, value_parser = harness::cli::count(1..=100))]
///     clients: usize,
/// }
/// assert_eq!(Load::try_parse_from(["load", "--clients", "100"]).unwrap().clients, 100);
/// let err = Load::try_parse_from(["load", "--clients", "0"]).unwrap_err().to_string();
/// assert!(err.contains("--clients") && err.contains("1..=100"), "{err}");
/// ```
pub fn count(range: RangeInclusive<u64>) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::<usize>::new().range(range)
}

/// A value parser for a duration given in seconds: a number in `range`
/// (fractions allowed), refused by clap with the range when outside it or
/// not a number.
///
/// ```
/// use clap::Parser;
/// #[derive(Debug, Parser)]
/// struct Load {
///     /// Seconds of load [range: 0.001..=3600]
///     #[arg(long, value_parser = harness::cli::seconds(0.001..=3600.0))]
///     seconds: std::time::Duration,
/// }
/// let ok = Load::try_parse_from(["load", "--seconds", "0.5"]).unwrap();
/// assert_eq!(ok.seconds.as_millis(), 500);
/// for bad in ["0", "-1", "inf", "NaN", "3601", "soon"] {
///     let flag = format!("--seconds={bad}");
///     let err = Load::try_parse_from(["load", &flag]).unwrap_err().to_string();
///     assert!(err.contains("0.001..=3600"), "{bad}: {err}");
/// }
/// ```
pub fn seconds(
    range: RangeInclusive<f64>,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |text: &str| {
        let (lo, hi) = (*range.start(), *range.end());
        let outside = || format!("{text} is not in {lo}..={hi} (seconds)");
        let value: f64 = text.trim().parse().map_err(|_| outside())?;
        if !(lo..=hi).contains(&value) {
            return Err(outside());
        }
        Duration::try_from_secs_f64(value).map_err(|_| outside())
    }
}

/// The ranges a `--help` text states, as `(flag, low, high)`: every
/// option's line holding `[range: LOW..=HIGH]`, with the option it is for.
///
/// ```
/// let short = "      --clients <N>  Clients [range: 1..=500] [default: 5]\n";
/// let long = "      --runs <N>\n          Exactly N runs [range: 1..=1000]\n";
/// let found = |help| harness::cli::stated_ranges(help);
/// let range = |f: &str, lo: &str, hi: &str| (f.to_string(), lo.to_string(), hi.to_string());
/// assert_eq!(found(short), [range("--clients", "1", "500")]);
/// assert_eq!(found(long), [range("--runs", "1", "1000")]);
/// ```
pub fn stated_ranges(help: &str) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    // The option a line of help belongs to: long help puts its text on the
    // lines after the option's own (`--runs <N>`), short help on the same.
    let mut option: Option<String> = None;
    for line in help.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('-') {
            option = trimmed
                .split_whitespace()
                .take(2)
                .find(|w| w.starts_with("--"))
                .map(|w| w.trim_end_matches(',').to_string());
        } else if !line.starts_with(' ') {
            option = None; // a heading ("Options:") or the usage line
        }
        let (Some(flag), Some((_, rest))) = (&option, line.split_once("[range: ")) else {
            continue;
        };
        let Some((lo, hi)) = rest.split_once(']').and_then(|(r, _)| r.split_once("..=")) else {
            continue;
        };
        found.push((flag.clone(), lo.trim().to_string(), hi.trim().to_string()));
    }
    found
}

/// For the stages' CLI tests: run `program --help` and each sub-command's
/// `--help`, and for every `[range: LOW..=HIGH]` stated there, check that a
/// value just outside the range is refused with exit code 2 and a first
/// line that names the flag and the range. Returns how many ranges were
/// probed, or every way the binary broke its help's word. Each run has a
/// minute; one that takes longer is killed and ends the check with an
/// error naming it.
pub fn check_stated_ranges(program: &Path) -> Result<usize, String> {
    let run = |args: &[&str]| output_within(Command::new(program).args(args), PROBE_LIMIT);
    let top = run(&["--help"])?;
    let top = String::from_utf8_lossy(&top.stdout).into_owned();
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect();
    let mut problems = Vec::new();
    let mut probed = 0;
    for command in std::iter::once(None).chain(commands.iter().map(Some)) {
        let mut args: Vec<&str> = command.iter().map(|c| c.as_str()).collect();
        args.push("--help");
        let help = run(&args)?;
        for (flag, lo, hi) in stated_ranges(&String::from_utf8_lossy(&help.stdout)) {
            for outside in [below(&lo), above(&hi)].into_iter().flatten() {
                probed += 1;
                let mut args: Vec<&str> = command.iter().map(|c| c.as_str()).collect();
                let given = format!("{flag}={outside}");
                args.push(&given);
                let out = run(&args)?;
                let stderr = String::from_utf8_lossy(&out.stderr);
                let first = stderr.lines().next().unwrap_or_default();
                let range = format!("{lo}..={hi}");
                if out.status.code() != Some(2) || !first.contains(&flag) || !first.contains(&range)
                {
                    problems.push(format!(
                        "{} {}: exit {:?}, expected 2 and a first line naming {flag} and {range}: {stderr}",
                        program.display(),
                        args.join(" "),
                        out.status.code()
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(probed)
    } else {
        Err(problems.join("\n"))
    }
}

/// How long one run of [`check_stated_ranges`] may take. A `--help` or a
/// refused value takes milliseconds; a minute is for a machine loaded by
/// other builds, and only a hung binary needs more.
const PROBE_LIMIT: Duration = Duration::from_secs(60);

/// Run `command` (no input) to its end and collect its output, or kill it
/// once it has run for `limit` and say so, naming it and the limit. Its
/// stdout and stderr are read on threads of their own, so a child that
/// prints more than a pipe holds does not stall until the limit. (This is
/// harness's own: test-support's `output_within` panics instead and needs
/// harness, so harness cannot use it.)
fn output_within(command: &mut Command, limit: Duration) -> Result<process::Output, String> {
    let shown = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|word| word.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    let stdout = read_to_end(child.stdout.take().expect("stdout was piped"));
    let stderr = read_to_end(child.stderr.take().expect("stderr was piped"));
    let deadline = Instant::now() + limit;
    let status = loop {
        let failed = match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(5));
                continue;
            }
            Ok(None) => format!("`{shown}` did not finish within {limit:?}, and was killed"),
            Err(e) => format!("waiting for `{shown}`: {e}"),
        };
        let _ = child.kill();
        let _ = child.wait();
        return Err(failed);
    };
    // Its pipes close with it, unless something it started holds them.
    let collect = |pipe: mpsc::Receiver<Vec<u8>>| {
        pipe.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .map_err(|_| format!("`{shown}` exited, but its output did not end within {limit:?}"))
    };
    Ok(process::Output {
        status,
        stdout: collect(stdout)?,
        stderr: collect(stderr)?,
    })
}

/// Read `pipe` to its end on a thread of its own; what it read comes on
/// the channel.
fn read_to_end(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = tx.send(bytes);
    });
    rx
}

/// A value just below `lo` (`None` when nothing is: `lo` is zero).
fn below(lo: &str) -> Option<String> {
    match lo.parse::<u64>() {
        Ok(0) => None,
        Ok(n) => Some((n - 1).to_string()),
        Err(_) => lo.parse::<f64>().ok().map(|f| (f / 2.0).to_string()),
    }
}

/// A value just above `hi`.
fn above(hi: &str) -> Option<String> {
    match hi.parse::<u64>() {
        Ok(n) => Some((u128::from(n) + 1).to_string()),
        Err(_) => hi.parse::<f64>().ok().map(|f| (f * 1.5).to_string()),
    }
}

/// Parse the command line as `P`, the way every binary here does.
///
/// `--help` and `--version` print in full and exit 0. A usage error (an
/// unknown option, a missing or out-of-range value) prints clap's whole
/// message on stderr, which names the option at fault and carries its tips
/// ("a similar argument exists: '--quick'", the usage line), with the
/// program's name in front, and exits 2.
pub fn parse<P: clap::Parser>(program: &str) -> P {
    P::try_parse().unwrap_or_else(|e| exit_on(program, &e))
}

/// Print a clap error as [`parse`] does and exit.
fn exit_on(program: &str, e: &clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        std::process::exit(0);
    }
    eprint!("{}", usage_error(program, e));
    std::process::exit(2);
}

/// Clap's whole rendered error, its first line starting with `program: `
/// so a script's log says which binary refused its command line.
pub fn usage_error(program: &str, e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut out = format!("{program}: {}", text.trim_end());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::Duration;

    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Demo {
        #[command(flatten)]
        common: super::CommonArgs,
    }

    #[test]
    fn a_usage_error_keeps_clap_s_whole_message() {
        let err = Demo::try_parse_from(["demo", "--quik"]).unwrap_err();
        let text = super::usage_error("demo", &err);
        assert!(text.starts_with("demo: error:"), "{text}");
        assert!(text.lines().next().unwrap().contains("--quik"), "{text}");
        // The tip that names the option meant, which a first line alone lost.
        assert!(text.contains("--quick"), "{text}");
        assert!(text.ends_with('\n') && !text.ends_with("\n\n"), "{text:?}");
    }

    #[test]
    fn a_missing_required_option_is_named() {
        #[derive(Debug, Parser)]
        struct Load {
            #[arg(long)]
            addr: String,
        }
        let err = Load::try_parse_from(["load"]).unwrap_err();
        let text = super::usage_error("load", &err);
        assert!(text.contains("--addr"), "{text}");
        let given = Load::try_parse_from(["load", "--addr", "127.0.0.1:1"]).unwrap();
        assert_eq!(given.addr, "127.0.0.1:1");
    }

    #[test]
    fn a_run_within_its_limit_gives_all_its_output() {
        // More than a pipe holds: the output is read while it runs.
        let script = "head -c 1000000 /dev/zero; echo oops >&2; exit 3";
        let out = super::output_within(
            Command::new("sh").args(["-c", script]),
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(
            (out.stdout.len(), &out.stderr[..]),
            (1_000_000, &b"oops\n"[..])
        );
    }

    #[test]
    fn a_run_past_its_limit_is_killed_and_named() {
        let err = super::output_within(
            Command::new("sleep").arg("3600"),
            Duration::from_millis(100),
        )
        .unwrap_err();
        assert_eq!(
            err,
            "`sleep 3600` did not finish within 100ms, and was killed"
        );
        // Killed and reaped: no `sleep` child of this process is left, not
        // even a zombie.
        assert_eq!(children_named("sleep"), Vec::<u32>::new());
    }

    /// This process's children (live or zombie) whose command is `name`.
    fn children_named(name: &str) -> Vec<u32> {
        let me = std::process::id().to_string();
        let entries = std::fs::read_dir("/proc").unwrap().flatten();
        let children = entries.filter_map(|entry| {
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // "PID (COMM) STATE PPID ...": COMM may hold spaces, so split
            // at its closing parenthesis.
            let (head, tail) = stat.rsplit_once(") ")?;
            let (pid, comm) = head.split_once(" (")?;
            let ppid = tail.split_whitespace().nth(1)?;
            (comm == name && ppid == me).then(|| pid.parse().ok())?
        });
        children.collect()
    }

    #[test]
    fn a_program_that_is_not_there_is_named() {
        let err = super::output_within(
            &mut Command::new("/no/such/program"),
            Duration::from_secs(60),
        )
        .unwrap_err();
        assert!(err.starts_with("cannot run `/no/such/program`:"), "{err}");
    }

    #[test]
    fn quick_shortens_the_plan_and_runs_overrides_it() {
        let demo = Demo::try_parse_from(["demo", "--quick", "--runs", "7"]).unwrap();
        assert_eq!(demo.common.plan().runs, 7);
        assert!(Demo::try_parse_from(["demo", "--runs", "0"]).is_err());
    }
}
