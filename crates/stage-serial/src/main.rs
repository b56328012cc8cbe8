//! `stage-serial`: the serial baselines, narrated and measured.

use std::process::ExitCode;

use clap::Parser;
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
    listing: Option<Listing>,
}

fn main() -> ExitCode {
    let cli: Cli = harness::cli::parse("stage-serial");
    let mut settings = Settings::from_common(&cli.common);
    if let Some(scale) = cli.scale {
        settings.scale = scale;
    }
    let listings: Vec<Listing> = match cli.listing {
        Some(listing) => vec![listing],
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
