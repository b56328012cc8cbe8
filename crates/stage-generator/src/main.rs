//! `stage-generator`: generators, narrated and measured.

use std::process::ExitCode;

use clap::Parser;
use stage_generator::{Listing, Settings};

/// Stage 2 of the coroutine lessons: generators.
///
/// With no sub-command, runs every listing in order: a body frozen at each
/// yield, send, producer/consumer by send (and by a stackless Iterator), the
/// CPU loops switching on every iteration, and the cost of one switch. Add
/// --release for representative figures; a debug build says so on every table.
#[derive(Debug, Parser)]
#[command(name = "stage-generator", version)]
struct Cli {
    #[command(flatten)]
    common: harness::CommonArgs,

    #[command(flatten)]
    tracing: trace::TraceArgs,

    #[command(subcommand)]
    listing: Option<Listing>,
}

fn main() -> ExitCode {
    let cli: Cli = harness::cli::parse("stage-generator");
    let settings = Settings::from_common(&cli.common);
    let listings: Vec<Listing> = match cli.listing {
        Some(listing) => vec![listing],
        None => Listing::ALL.to_vec(),
    };
    // Generators made by `stage_generator::traced` record themselves into
    // the active trace: no hook to install.
    trace::cli::run("stage-generator", &cli.tracing, |_| {
        stage_generator::run(&listings, &settings, cli.common.output()).map(|_| ())
    })
}
