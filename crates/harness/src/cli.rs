//! The options every stage binary shares.
//!
//! Each stage's `main.rs` flattens [`CommonArgs`] into its own clap parser, so
//! `--quick`, `--json` and `--runs` mean the same thing everywhere.

use std::ops::RangeInclusive;
use std::time::Duration;

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
/// probed, or every way the binary broke its help's word.
pub fn check_stated_ranges(program: &std::path::Path) -> Result<usize, String> {
    use std::process::Command;
    let run = |args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))
    };
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
    fn quick_shortens_the_plan_and_runs_overrides_it() {
        let demo = Demo::try_parse_from(["demo", "--quick", "--runs", "7"]).unwrap();
        assert_eq!(demo.common.plan().runs, 7);
        assert!(Demo::try_parse_from(["demo", "--runs", "0"]).is_err());
    }
}
