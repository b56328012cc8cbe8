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

    /// Timed runs per case (the median is reported) [default: 5, or 3 with --quick].
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
            plan.runs = usize::from(runs);
        }
        plan
    }
}
