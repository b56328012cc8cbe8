//! `stage-generator`: generators, narrated and measured.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
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

    #[command(subcommand)]
    listing: Option<Command>,
}

#[derive(Debug, Clone, Copy, Subcommand)]
enum Command {
    /// A generator body frozen at each yield and resumed
    Frozen,
    /// send: the first resume starts the body, a sent value is what yield returns
    Send,
    /// Producer/consumer by send and by Iterator, against a full Vec
    ProducerConsumer,
    /// The two CPU loops switching on every iteration, against serial
    Cpu,
    /// One send round trip against one plain function call
    SwitchCost,
}

impl From<Command> for Listing {
    fn from(c: Command) -> Listing {
        match c {
            Command::Frozen => Listing::Frozen,
            Command::Send => Listing::Send,
            Command::ProducerConsumer => Listing::ProducerConsumer,
            Command::Cpu => Listing::Cpu,
            Command::SwitchCost => Listing::SwitchCost,
        }
    }
}

fn main() -> ExitCode {
    let cli: Cli = harness::cli::parse("stage-generator");
    let settings = Settings::from_common(&cli.common);
    let listings: Vec<Listing> = match cli.listing {
        Some(c) => vec![c.into()],
        None => Listing::ALL.to_vec(),
    };
    match stage_generator::run(&listings, &settings, cli.common.output()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stage-generator: error: {e}");
            ExitCode::FAILURE
        }
    }
}
