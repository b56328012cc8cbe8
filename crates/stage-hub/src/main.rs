//! `cargo run -p stage-hub`: the hub lesson, narrated, with its figures.
//! Sub-commands run one listing each; `--help` lists them.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use stage_hub::{Listing, Settings};
use stage_serial::Scale;

/// Stage 4: a gevent-like hub. With no sub-command, runs the whole lesson.
#[derive(Debug, Parser)]
#[command(name = "stage-hub", version, about)]
struct Cli {
    #[command(flatten)]
    common: harness::CommonArgs,

    #[command(flatten)]
    tracing: trace::TraceArgs,

    /// Multiply the notes' waits by FACTOR (0 < FACTOR <= 10): 1 is the
    /// notes' 2 s, 3 s, 5 s [default: 1, or 0.01 with --quick]
    #[arg(long, global = true, value_name = "FACTOR")]
    scale: Option<Scale>,

    /// How many greenlets sleep at once in `many` [default: 30000]. Past
    /// about half of vm.max_map_count, spawning fails with how to raise it
    /// [range: 1..=1000000]
    #[arg(long, global = true, value_name = "N", value_parser = harness::cli::count(1..=1_000_000))]
    sleepers: Option<usize>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The lesson's listings, one each.
    #[command(flatten)]
    Listing(Listing),
    /// The network listings (part 2): echo server, load, clients, crawler, bench.
    #[command(flatten)]
    Net(stage_hub::lesson_net::NetCommand),
}

fn main() -> ExitCode {
    // Re-run under callgrind to count a group's instructions (harness::count).
    if let Some(code) = harness::count::serve(stage_hub::lesson::counted_group) {
        return code;
    }
    let cli: Cli = harness::cli::parse("stage-hub");
    let tracing = cli.tracing.clone();
    stage_greenlet::hook::run_traced("stage-hub", &tracing, || run(cli))
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let mut settings = Settings::from_common(&cli.common, cli.scale);
    if let Some(n) = cli.sleepers {
        settings.sleepers = n;
    }
    let listings = match cli.command {
        None => Listing::ALL.to_vec(),
        Some(Command::Listing(listing)) => vec![listing],
        Some(Command::Net(command)) => return command.run(&cli.common),
    };
    stage_hub::lesson::run(&settings, cli.common.output(), &listings).map(drop)
}
