//! `stage-serial`: the serial baselines, narrated and measured.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use stage_serial::{Listing, Scale, Settings};

/// Stage 1 of the coroutine lessons: serial code, the baseline.
///
/// With no sub-command, runs every listing in order: two CPU loops, the
/// producer/consumer, then the waits (about 15 s of sleeping at the default
/// scale; --quick or --scale 0.01 shortens it).
#[derive(Debug, Parser)]
#[command(name = "stage-serial", version)]
struct Cli {
    #[command(flatten)]
    common: harness::CommonArgs,

    /// Multiply every wait by FACTOR (0 < FACTOR <= 10): 1 is the notes'
    /// durations, 0.01 a hundredth [default: 1, or 0.01 with --quick]
    #[arg(long, global = true, value_name = "FACTOR")]
    scale: Option<Scale>,

    #[command(subcommand)]
    listing: Option<Command>,
}

#[derive(Debug, Clone, Copy, Subcommand)]
enum Command {
    /// Two CPU loops of 10,000,000 iterations, back to back
    Cpu,
    /// A producer fills a Vec of 10,000,000 items, then a consumer reads it
    ProducerConsumer,
    /// Naps of 2 s, 3 s and 5 s, one after another (10 s)
    Sleeps,
    /// Ten tasks of 0.5 s, one after another (5 s)
    Tasks,
}

impl From<Command> for Listing {
    fn from(c: Command) -> Listing {
        match c {
            Command::Cpu => Listing::Cpu,
            Command::ProducerConsumer => Listing::ProducerConsumer,
            Command::Sleeps => Listing::Sleeps,
            Command::Tasks => Listing::Tasks,
        }
    }
}

fn main() -> ExitCode {
    let cli: Cli = harness::cli::parse("stage-serial");
    let mut settings = Settings::from_common(&cli.common);
    if let Some(scale) = cli.scale {
        settings.scale = scale;
    }
    let listings: Vec<Listing> = match cli.listing {
        Some(c) => vec![c.into()],
        None => Listing::ALL.to_vec(),
    };
    match stage_serial::run(&listings, &settings, cli.common.output()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stage-serial: error: {e}");
            ExitCode::FAILURE
        }
    }
}
