//! `cargo run -p stage-cores`: the lesson of stage 5, narrated, with its
//! figures. Sub-commands run one listing each, or serve: `--help` lists them.

use std::error::Error;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use harness::{CommonArgs, Output};
use stage_cores::cores::{self, MAX_HUBS, MAX_PROCS};
use stage_cores::lesson::{Listing, Settings};
use stage_cores::server::{self, Flavor, ServerConfig};
use stage_cores::work::Work;
use stage_cores::Supervisor;

/// Stage 5: processes x hub threads x greenlets, on every core. With no
/// sub-command, runs the whole lesson.
#[derive(Debug, Parser)]
#[command(name = "stage-cores", version, about)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,

    #[command(flatten)]
    tracing: trace::TraceArgs,

    /// Iterations of stage 1's loop of CPU work per echo message [default: 20000 in the lesson, 0 for echo-server] [range: 0..=100000000]
    #[arg(long, global = true, value_name = "N", value_parser = work_parser())]
    work: Option<u64>,

    /// The lesson's N: hub threads and processes of its N-way cases [default: the core count] [range: 1..=256]
    #[arg(long, global = true, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_HUBS)))]
    cores: Option<u16>,

    /// Client counts of the echo comparison, comma-separated [default: 500,10000; --quick: 50,500] [range: 1..=20000]
    #[arg(long, global = true, value_name = "N,…", value_delimiter = ',',
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CLIENTS)))]
    clients: Vec<u32>,

    /// Seconds each echo load runs [default: 2; --quick: 0.5] [range: 0.001..=3600]
    #[arg(long, global = true, value_name = "S", value_parser = harness::cli::seconds(0.001..=3600.0))]
    seconds: Option<Duration>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The lesson's listings, one each.
    #[command(flatten)]
    Listing(Listing),
    /// Serve the upper-case echo protocol on T hubs in each of P processes until SIGINT/SIGTERM.
    EchoServer(EchoServerArgs),
}

/// The most CPU work per message: about a tenth of a second of stage 1's loop.
const MAX_WORK: u64 = 100_000_000;

/// The most echo clients the lesson opens at once (each is a socket on
/// both sides, and the open-file limit here is 20,000).
const MAX_CLIENTS: u32 = 20_000;

fn work_parser() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(0..=MAX_WORK)
}

/// `echo-server`.
#[derive(Debug, Args)]
struct EchoServerArgs {
    /// Address to listen on (port 0 picks a free one; every hub and process shares it).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Hub threads per process, each with its own listener on the port (0: one per core) [range: 0..=256]
    #[arg(long, default_value_t = 0, value_name = "T",
          value_parser = clap::value_parser!(u16).range(0..=i64::from(MAX_HUBS)))]
    hubs: u16,
    /// Worker processes under a supervisor that restarts any that dies (0: one per core; 1: serve in this process) [range: 0..=64]
    #[arg(long, default_value_t = 1, value_name = "P",
          value_parser = clap::value_parser!(u16).range(0..=i64::from(MAX_PROCS)))]
    procs: u16,
    /// Which server: hubs, tokio's multi-thread runtime with T workers, or a thread per connection.
    #[arg(long, value_enum, default_value = "hub")]
    flavor: Flavor,
}

fn main() -> ExitCode {
    if let Some(code) = stage_cores::main_if_worker() {
        return code;
    }
    let cli: Cli = harness::cli::parse("stage-cores");
    // Every hub this process makes (one per hub thread) records into the
    // trace, a track per greenlet grouped by thread; worker processes do not.
    let tracing = cli.tracing.clone();
    stage_greenlet::hook::run_traced("stage-cores", &tracing, || run(cli))
}

fn run(cli: Cli) -> Result<(), Box<dyn Error>> {
    let mut settings = Settings::from_common(&cli.common);
    if let Some(work) = cli.work {
        settings.work = Work::new(work);
    }
    if let Some(n) = cli.cores {
        settings.n = usize::from(n);
    }
    if !cli.clients.is_empty() {
        settings.clients = cli.clients.iter().map(|&c| c as usize).collect();
    }
    if let Some(seconds) = cli.seconds {
        settings.seconds = seconds;
    }
    let output = cli.common.output();
    match cli.command {
        None => stage_cores::lesson::run(&settings, output, &Listing::ALL).map(|_| ()),
        Some(Command::Listing(listing)) => {
            stage_cores::lesson::run(&settings, output, &[listing]).map(|_| ())
        }
        Some(Command::EchoServer(a)) => echo_server(&a, Work::new(cli.work.unwrap_or(0)), output),
    }
}

fn listen_addr(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            format!("--addr `{addr}` is not an address to listen on (try 127.0.0.1:8080)")
        })
}

// ANCHOR: echo_server
/// `echo-server`: P = 1 serves in this process; P > 1 supervises P workers.
/// Either way: watch for SIGINT/SIGTERM first, then print the address.
fn echo_server(a: &EchoServerArgs, work: Work, out: Output) -> Result<(), Box<dyn Error>> {
    let addr = listen_addr(&a.addr)?;
    let (hubs, procs) = (cores::or_per_core(a.hubs), cores::or_per_core(a.procs));
    let config = ServerConfig {
        flavor: a.flavor,
        hubs,
        work,
    };
    // As many descriptors as the hard limit allows: one per client.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let layout = format!(
        "{} cores; {procs} process(es) x {} {}, a {} per connection; {} iterations of work per message",
        cores::count(),
        hubs,
        match a.flavor {
            Flavor::Hub => "hub thread(s)",
            Flavor::Tokio => "tokio worker(s)",
            Flavor::Threads => "acceptor thread",
        },
        match a.flavor {
            Flavor::Hub => "greenlet",
            Flavor::Tokio => "task",
            Flavor::Threads => "thread",
        },
        work.iterations
    );
    if procs == 1 {
        let signals = watch_signals()?;
        let running = server::start(addr, &config)?;
        out.say(format!("listening on {}", running.local_addr()));
        out.say(layout);
        let _ = signals.recv();
        out.say(format!("echo server stopped: {}", running.stop()));
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    let mut sup = Supervisor::start(exe, addr, procs, config, out)?;
    sup.watch_signals()?;
    out.say(format!("listening on {}", sup.local_addr()));
    out.say(layout);
    for (i, pid) in sup.pids().iter().enumerate() {
        out.say(format!("worker {i}: pid {pid}"));
    }
    sup.run();
    out.say(format!("stopping {procs} workers ..."));
    out.say(sup.stop().to_string());
    Ok(())
}
// ANCHOR_END: echo_server

/// A channel that yields once SIGINT or SIGTERM arrives.
fn watch_signals() -> std::io::Result<std::sync::mpsc::Receiver<i32>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let _ = tx.send(sig);
            }
        })?;
    Ok(rx)
}
