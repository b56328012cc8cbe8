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

    /// Multiply the notes' waits by FACTOR (1 = the notes' 2 s, 3 s, 5 s;
    /// --quick uses 0.01).
    #[arg(long, global = true, value_name = "FACTOR")]
    scale: Option<Scale>,

    /// How many greenlets sleep at once in `many` [default: 30000]. Past
    /// about half of vm.max_map_count, spawning fails with how to raise it.
    #[arg(long, global = true, value_name = "N")]
    sleepers: Option<usize>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Three naps (2 s, 3 s, 5 s) in three greenlets: done in ~5 s, not 10.
    Sleepers,
    /// eat and play waiting with the hub's sleep: their lines interleave.
    EatPlay,
    /// eat and play waiting with std::thread::sleep: serial, and the blocking detector's warning.
    Blocking,
    /// Each greenlet prints its own name (Greenlet-1, …).
    Names,
    /// Ten 0.5 s tasks: one after another (~5 s) vs spawned and joined (~0.5 s).
    Tasks,
    /// What spawn + join and a yield_now round trip cost.
    Costs,
    /// 30,000 greenlets asleep at once: spawn and wake times, resident memory.
    Many,
    /// The network listings (part 2): echo server, load, clients, crawler, bench.
    #[command(flatten)]
    Net(stage_hub::lesson_net::NetCommand),
}

impl Command {
    fn listing(&self) -> Listing {
        match self {
            Command::Net(_) => unreachable!("network sub-commands run by themselves"),
            Command::Sleepers => Listing::Sleepers,
            Command::EatPlay => Listing::EatPlay,
            Command::Blocking => Listing::Blocking,
            Command::Names => Listing::Names,
            Command::Tasks => Listing::Tasks,
            Command::Costs => Listing::Costs,
            Command::Many => Listing::Many,
        }
    }
}

fn main() -> ExitCode {
    let cli: Cli = harness::cli::parse("stage-hub");
    let mut settings = Settings::from_common(&cli.common, cli.scale);
    if let Some(n) = cli.sleepers {
        settings.sleepers = n;
    }
    if let Some(Command::Net(command)) = cli.command {
        return match command.run(&cli.common) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("stage-hub: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let listings = match &cli.command {
        None => Listing::ALL.to_vec(),
        Some(command) => vec![command.listing()],
    };
    match stage_hub::lesson::run(&settings, cli.common.output(), &listings) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stage-hub: {e}");
            ExitCode::FAILURE
        }
    }
}
