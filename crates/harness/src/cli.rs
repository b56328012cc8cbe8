//! The options every stage binary shares.
//!
//! Each stage's `main.rs` flattens [`CommonArgs`] into its own clap parser, so
//! `--quick`, `--json` and `--runs` mean the same thing everywhere.

use clap::Args;

use crate::{Output, Plan};

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
    /// least 5 filling 0.5 s, or at least 3 filling 0.1 s with --quick].
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
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
