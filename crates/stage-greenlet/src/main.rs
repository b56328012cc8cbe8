//! `cargo run -p stage-greenlet`: the greenlet lesson, narrated in order.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use harness::{CommonArgs, Report};
use stage_greenlet::{hook, lesson};

/// Stage 3: greenlets, functions with their own stacks switched by hand.
/// With no sub-command, runs the whole lesson in order.
#[derive(Debug, Parser)]
#[command(name = "stage-greenlet", version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,

    #[command(flatten)]
    tracing: trace::TraceArgs,

    /// Run the switching listing with the notes' 100,000,000 iterations.
    #[arg(long, global = true)]
    full: bool,

    #[command(subcommand)]
    listing: Option<Listing>,
}

#[derive(Debug, Subcommand)]
enum Listing {
    /// eat/play: the name passed on the first switch, four lines in order.
    EatPlay,
    /// test1/test2: 12, 56, 34, and 78 never printed.
    Test1Test2,
    /// f1 and f2 back to back vs a switch on every iteration.
    Switching,
    /// One switch round trip (ours, with a hook, traced; raw context, generator, corosensei) and a greenlet's whole life.
    SwitchCost,
}

fn main() -> ExitCode {
    // Re-run under callgrind to count a group's instructions (harness::count).
    if let Some(code) = harness::count::serve(stage_greenlet::cost::counted_group) {
        return code;
    }
    let cli: Cli = harness::cli::parse("stage-greenlet");
    hook::run_traced("stage-greenlet", &cli.tracing, || run(&cli))
}

fn run(cli: &Cli) -> Result<(), Box<dyn std::error::Error>> {
    let common = &cli.common;
    match cli.listing {
        None => lesson::run(common, cli.full).map(drop),
        Some(Listing::EatPlay) => lesson::eat_play(&common.output()),
        Some(Listing::Test1Test2) => lesson::test1_test2(&common.output()),
        Some(Listing::Switching) => {
            let mut report = Report::new("stage-greenlet", common.output());
            let n = lesson::iterations(common.quick, cli.full);
            lesson::switching(&mut report, common, n).map(|()| drop(report.finish()))
        }
        Some(Listing::SwitchCost) => {
            let mut report = Report::new("stage-greenlet", common.output());
            lesson::switch_cost(&mut report, common).map(|()| drop(report.finish()))
        }
    }
}
