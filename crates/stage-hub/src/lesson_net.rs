//! The network half of the lesson: its sub-commands (`echo-server`,
//! `echo-load`, `echo-threads`, `echo-client`, `hello-bye`, `crawl`,
//! `echo-bench`) and the part the whole lesson runs at its end — one thread
//! serving 500 clients, and a crawl done at once and one page at a time.

use std::error::Error;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use clap::{Args, Subcommand};
use harness::report::human_seconds;
use harness::{CommonArgs, Output, Report, Row};
use mio::Interest;

use crate::crawl::site::Site;
use crate::crawl::{crawl_concurrent, crawl_sequential, Crawl, Timeouts};
use crate::echo::bench::{self, BenchPlan};
use crate::echo::load::{hub_clients, Load};
use crate::echo::protocol::serve_upper;
use crate::echo::server::{EchoServer, ServerThread};
use crate::echo::stats::{LoadSummary, ServerSummary};
use crate::echo::threads::{thread_clients, ThreadServer};
use crate::echo::tokio_server::TokioServer;
use crate::echo::{client, Flavor};
use crate::hub::io::Registration;
use crate::lesson::STAGE;
use crate::net::TcpStream;

/// The network listings, as sub-commands of the stage binary.
#[derive(Debug, Subcommand)]
pub enum NetCommand {
    /// Serve the upper-case echo protocol until SIGINT/SIGTERM: a greenlet per connection (or --flavor threads|tokio).
    EchoServer(EchoServerArgs),
    /// N clients in one hub ping-pong against an echo server: messages/s, latency, errors.
    EchoLoad(EchoLoadArgs),
    /// The notes' 500-thread client: one OS thread and blocking socket per client.
    EchoThreads(EchoThreadsArgs),
    /// Interactive client: each line typed is sent and the reply printed; EOF ends it.
    EchoClient(EchoClientArgs),
    /// The notes' from-memory exchange: a hub server says hello, thread clients say bye.
    HelloBye(HelloByeArgs),
    /// Fetch URLs at once, then one by one (no URLs: crawl an offline local site).
    Crawl(CrawlArgs),
    /// Every echo server in its own process under echo-load: messages/s, latency, peak RSS.
    EchoBench(EchoBenchArgs),
}

/// `echo-server`.
#[derive(Debug, Args)]
pub struct EchoServerArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Which server: our hub, a thread per connection, or tokio current-thread.
    #[arg(long, value_enum, default_value = "hub")]
    pub flavor: Flavor,
}

/// `echo-load`.
#[derive(Debug, Args)]
pub struct EchoLoadArgs {
    /// The echo server.
    #[arg(long)]
    pub addr: String,
    /// Concurrent clients, one greenlet each.
    #[arg(long, default_value_t = 500)]
    pub clients: usize,
    /// Seconds of ping-pong once every client is connected.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Bytes per message.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
}

/// `echo-threads`.
#[derive(Debug, Args)]
pub struct EchoThreadsArgs {
    /// The echo server.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Client threads.
    #[arg(long, default_value_t = 500)]
    pub clients: usize,
    /// Seconds of ping-pong.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Bytes per message.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
}

/// `echo-client`.
#[derive(Debug, Args)]
pub struct EchoClientArgs {
    /// The echo server.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
}

/// `hello-bye`.
#[derive(Debug, Args)]
pub struct HelloByeArgs {
    /// Client threads.
    #[arg(long, default_value_t = 5)]
    pub clients: usize,
    /// Rounds of hello and bye per client.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
}

/// `crawl`.
#[derive(Debug, Args)]
pub struct CrawlArgs {
    /// Plain http:// URLs; none: start a local site that answers with delays.
    pub urls: Vec<String>,
    /// Seconds to wait for a connection.
    #[arg(long, default_value_t = 5.0)]
    pub connect_timeout: f64,
    /// Seconds to wait for each read.
    #[arg(long, default_value_t = 10.0)]
    pub read_timeout: f64,
}

/// `echo-bench`.
#[derive(Debug, Args)]
pub struct EchoBenchArgs {
    /// Client counts to measure, comma-separated [default: 500,10000; --quick: 50,500].
    #[arg(long, value_delimiter = ',')]
    pub clients: Vec<usize>,
    /// Seconds each load runs [default: 5; --quick: 1].
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Bytes per message.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Servers to measure, comma-separated [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub flavors: Vec<Flavor>,
}

/// A failure a sub-command reports as its one line.
#[derive(Debug)]
pub struct CommandError(pub String);

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for CommandError {}

fn seconds(s: f64, what: &str) -> Result<Duration, CommandError> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            CommandError(format!(
                "{what} must be a positive number of seconds, not {s}"
            ))
        })
}

fn socket_addr(addr: &str) -> Result<SocketAddr, CommandError> {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            CommandError(format!(
                "`{addr}` is not an address to connect to (try 127.0.0.1:8080)"
            ))
        })
}

/// Make room for `needed` open files, or say how.
fn raise_open_files(needed: u64) -> Result<(), CommandError> {
    let got = rlimit::increase_nofile_limit(needed)
        .map_err(|e| CommandError(format!("cannot raise the open-file limit: {e}")))?;
    if got < needed {
        return Err(CommandError(format!(
            "this needs {needed} open files but the limit is {got}: raise the hard limit \
             (`ulimit -Hn {needed}` as root, or LimitNOFILE= in a service) and run again"
        )));
    }
    Ok(())
}

impl NetCommand {
    /// Run the sub-command. An `Err` is the one line the binary prints
    /// before exiting non-zero (a wrong echo reply is one).
    pub fn run(self, common: &CommonArgs) -> Result<(), Box<dyn Error>> {
        let out = common.output();
        match self {
            NetCommand::EchoServer(a) => {
                // As many descriptors as the hard limit allows: one per client.
                let _ = rlimit::increase_nofile_limit(u64::MAX);
                let summary = match a.flavor {
                    Flavor::Hub => serve_hub(&a.addr, out)?,
                    Flavor::Threads => {
                        let server = ThreadServer::start(a.addr.as_str())?;
                        out.say(format!("listening on {}", server.local_addr()));
                        let stopper = server.stopper();
                        on_signal(move || stopper.stop())?;
                        server.wait()
                    }
                    Flavor::Tokio => {
                        let server = TokioServer::start(a.addr.as_str())?;
                        out.say(format!("listening on {}", server.local_addr()));
                        let stopper = server.stopper();
                        on_signal(move || stopper.stop())?;
                        server.wait()?
                    }
                };
                out.say(format!("echo server stopped: {summary}"));
                Ok(())
            }
            NetCommand::EchoLoad(a) => {
                let load = Load {
                    addr: socket_addr(&a.addr)?,
                    clients: a.clients.max(1),
                    size: a.size.max(1),
                    duration: seconds(a.seconds, "--seconds")?,
                };
                raise_open_files(load.clients as u64 + 64)?;
                let ticks = (load.duration.as_millis() / 100) as u64;
                let bar = out.progress(ticks, format!("echo-load: {} clients", load.clients));
                let summary = hub_clients(&load, &mut |t| {
                    bar.set_position((t.as_millis() / 100) as u64)
                })?;
                bar.finish_and_clear();
                report_load(out, "hub clients", &summary);
                check_replies(&summary)
            }
            NetCommand::EchoThreads(a) => {
                let addr = socket_addr(&a.addr)?;
                raise_open_files(a.clients as u64 + 64)?;
                let duration = seconds(a.seconds, "--seconds")?;
                out.say(format!(
                    "{} client threads for {} ...",
                    a.clients,
                    human_seconds(a.seconds)
                ));
                let start = std::time::Instant::now();
                let tally = thread_clients(addr, a.clients.max(1), a.size.max(1), duration)?;
                let summary = tally.summary(a.clients, a.size, start.elapsed());
                report_load(out, "thread clients", &summary);
                check_replies(&summary)
            }
            NetCommand::EchoClient(a) => {
                let addr = socket_addr(&a.addr)?;
                let stdin = io::stdin();
                let sent = client::interactive(addr, stdin.lock(), &mut |reply| out.say(reply))?;
                out.say(format!("sent {sent} lines; bye"));
                Ok(())
            }
            NetCommand::HelloBye(a) => {
                for line in client::hello_bye(a.clients.max(1), a.rounds.max(1))? {
                    out.say(line);
                }
                Ok(())
            }
            NetCommand::Crawl(a) => {
                let timeouts = Timeouts {
                    connect: seconds(a.connect_timeout, "--connect-timeout")?,
                    read: seconds(a.read_timeout, "--read-timeout")?,
                };
                let mut report = Report::new(STAGE, out);
                if a.urls.is_empty() {
                    crawl_offline(common.quick, &mut report)?;
                } else {
                    crawl_and_compare(&a.urls, timeouts, &mut report, None);
                }
                report.finish();
                Ok(())
            }
            NetCommand::EchoBench(a) => {
                let plan = BenchPlan {
                    clients: if a.clients.is_empty() {
                        if common.quick {
                            vec![50, 500]
                        } else {
                            vec![500, 10_000]
                        }
                    } else {
                        a.clients
                    },
                    seconds: a.seconds.unwrap_or(if common.quick { 1.0 } else { 5.0 }),
                    size: a.size.max(1),
                    flavors: if a.flavors.is_empty() {
                        Flavor::ALL.to_vec()
                    } else {
                        a.flavors
                    },
                };
                let measured = bench::run(&bench::stage_binary()?, &plan, out)?;
                let mut report = Report::new(STAGE, out);
                report.push_rows(
                    Some("Echo servers under echo-load, each in its own process (per op = per message)"),
                    bench::rows(STAGE, &measured),
                );
                out.table(bench::table(&measured));
                let wrong: u64 = measured.iter().map(|m| m.load.wrong_replies).sum();
                report.finish();
                if wrong > 0 {
                    return Err(Box::new(CommandError(format!(
                        "{wrong} echo replies were wrong"
                    ))));
                }
                Ok(())
            }
        }
    }
}

fn check_replies(summary: &LoadSummary) -> Result<(), Box<dyn Error>> {
    if summary.messages == 0 && summary.failed_connections > 0 {
        return Err(Box::new(CommandError(format!(
            "none of the {} clients got a reply ({} failed connections): is the echo server running there?",
            summary.clients, summary.failed_connections
        ))));
    }
    if summary.wrong_replies > 0 {
        return Err(Box::new(CommandError(format!(
            "{} replies were not the upper-cased message: the server is wrong",
            summary.wrong_replies
        ))));
    }
    Ok(())
}

/// Print a load run's line (or its JSON row).
fn report_load(out: Output, who: &str, summary: &LoadSummary) {
    out.say(format!("{who}: {summary}"));
    let mut report = Report::new(STAGE, out);
    report.push_rows(
        None,
        vec![load_row(
            &format!("{} {who}", summary.clients),
            None,
            summary,
        )],
    );
}

/// A harness row for a load run ([`LoadSummary::row`]).
pub fn load_row(case: &str, baseline: Option<&str>, s: &LoadSummary) -> Row {
    s.row(STAGE, "echo-load", case, baseline)
}

// ANCHOR: serve_hub
/// `echo-server` on the hub: print the address, serve, and let a greenlet
/// that waits for SIGINT/SIGTERM (a signal pipe registered with the hub, like
/// any socket) stop the server.
fn serve_hub(addr: &str, out: Output) -> Result<ServerSummary, Box<dyn Error>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let server = EchoServer::bind(addr)?;
    // Set up before serving: once clients use every descriptor there would
    // be none left for the signal pipe.
    let mut signals = signal_hook_mio::v1_0::Signals::new([SIGINT, SIGTERM])?;
    let registration = Registration::new(&mut signals, Interest::READABLE)?;
    out.say(format!("listening on {}", server.local_addr()));
    let stop = server.stop_handle();
    let _watcher = crate::hub::spawn(move || -> io::Result<()> {
        loop {
            if signals.pending().next().is_some() {
                stop.stop();
                return Ok(());
            }
            registration.wait(Interest::READABLE, None)?;
        }
    });
    Ok(server.serve())
}
// ANCHOR_END: serve_hub

/// For the thread and tokio servers: a thread that waits for SIGINT/SIGTERM.
fn on_signal(stop: impl FnOnce() + Send + 'static) -> io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                stop();
            }
        })?;
    Ok(())
}

/// How big the network part of the lesson is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetSettings {
    /// Echo clients of each kind.
    pub clients: usize,
    /// How long each kind ping-pongs.
    pub echo_for: Duration,
    /// Pages of the offline site.
    pub pages: usize,
    /// Page `i` answers after `i` times this.
    pub page_step: Duration,
}

impl NetSettings {
    /// 500 clients for 3 s each way and pages of 0.1 s to 0.5 s, or, with
    /// `--quick`, 50 clients for 0.5 s and pages five times faster.
    pub fn new(quick: bool) -> NetSettings {
        if quick {
            NetSettings {
                clients: 50,
                echo_for: Duration::from_millis(500),
                pages: 5,
                page_step: Duration::from_millis(20),
            }
        } else {
            NetSettings {
                clients: 500,
                echo_for: Duration::from_secs(3),
                pages: 5,
                page_step: Duration::from_millis(100),
            }
        }
    }
}

/// The network part of the lesson, run at the end of the whole lesson:
/// the echo server with greenlet clients and thread clients, then the
/// offline crawl.
pub fn run(quick: bool, report: &mut Report) -> Result<(), Box<dyn Error>> {
    echo_lesson(NetSettings::new(quick), report)?;
    crawl_offline(quick, report)?;
    Ok(())
}

// ANCHOR: echo_lesson
/// One hub server thread; first `clients` greenlet clients in this thread's
/// hub, then as many OS-thread clients, against it.
pub fn echo_lesson(s: NetSettings, report: &mut Report) -> Result<(), Box<dyn Error>> {
    let out = report.output();
    out.say(format!(
        "\n== One thread serves {} clients: the upper-case echo server ==",
        s.clients
    ));
    raise_open_files(2 * s.clients as u64 + 64)?;
    let server = ServerThread::start("127.0.0.1:0", serve_upper::<TcpStream>)?;
    let addr = server.local_addr();
    out.say(format!(
        "a hub server listens on {addr}, one greenlet per connection"
    ));
    let load = Load {
        addr,
        clients: s.clients,
        size: 64,
        duration: s.echo_for,
    };
    let greenlets = hub_clients(&load, &mut |_| {})?;
    out.say(format!("  {} greenlet clients: {greenlets}", s.clients));
    // Blocking threads must not run on the hub's thread: hand them to the pool.
    let (n, d) = (s.clients, s.echo_for);
    let start = std::time::Instant::now();
    let tally = crate::hub::spawn_blocking(move || thread_clients(addr, n, 64, d))??;
    let threads = tally.summary(n, 64, start.elapsed());
    out.say(format!("  {} thread clients: {threads}", s.clients));
    let served = server.stop();
    out.say(format!("  the server: {}", served.summary));
    let hub_case = format!("{} clients, one greenlet each", s.clients);
    let thread_case = format!("{} clients, one thread each", s.clients);
    report.push_rows(
        Some("Echo round trips: clients in one hub vs a thread per client (per op = per message)"),
        vec![
            load_row(&thread_case, None, &threads),
            load_row(&hub_case, Some(&thread_case), &greenlets),
        ],
    );
    report.headline(
        format!("one thread serves {} echo clients", s.clients),
        format!(
            "{:.0} messages/s to greenlet clients, {:.0}/s to thread clients, {} wrong",
            greenlets.messages_per_s,
            threads.messages_per_s,
            greenlets.wrong_replies + threads.wrong_replies
        ),
        None,
    );
    check_replies(&greenlets)?;
    check_replies(&threads)
}
// ANCHOR_END: echo_lesson

/// Start the offline site and crawl it, at once and one by one.
pub fn crawl_offline(quick: bool, report: &mut Report) -> Result<(), Box<dyn Error>> {
    let s = NetSettings::new(quick);
    let site = Site::delayed_pages(s.pages, s.page_step)?;
    let urls: Vec<String> = (1..=s.pages)
        .map(|i| site.url(&format!("/page/{i}")))
        .collect();
    report.output().say(format!(
        "\n== A crawler: {} pages at once vs one after another (a local site, page i answers after {i} x {}) ==",
        s.pages,
        human_seconds(s.page_step.as_secs_f64()),
        i = "i"
    ));
    let (concurrent, sequential) =
        crawl_and_compare(&urls, Timeouts::default(), report, Some(s.pages));
    report.headline(
        format!("{} pages fetched at once vs one by one", s.pages),
        format!(
            "{} against {}",
            human_seconds(concurrent.elapsed.as_secs_f64()),
            human_seconds(sequential.elapsed.as_secs_f64())
        ),
        Some("0.24 s against 0.83 s for 5 sites".into()),
    );
    drop(site);
    Ok(())
}

/// Crawl `urls` concurrently, then sequentially, printing each outcome and
/// both totals; add the two as harness rows (with the notes' figures when
/// `notes_pages` says the crawl is the lesson's).
pub fn crawl_and_compare(
    urls: &[String],
    timeouts: Timeouts,
    report: &mut Report,
    notes_pages: Option<usize>,
) -> (Crawl, Crawl) {
    let out = report.output();
    out.say(format!(
        "fetching {} URLs at once, a greenlet each:",
        urls.len()
    ));
    for url in urls {
        out.say(format!("  GET: {url}"));
    }
    let concurrent = crawl_concurrent(urls, timeouts, move |f| out.say(format!("  {f}")));
    out.say(format!(
        "  at once: {} of {} answered, {} bytes, in {}",
        concurrent.answered(),
        urls.len(),
        concurrent.bytes(),
        human_seconds(concurrent.elapsed.as_secs_f64())
    ));
    out.say("fetching them one after another:");
    let sequential = crawl_sequential(urls, timeouts, |f| out.say(format!("  {f}")));
    out.say(format!(
        "  one by one: {} of {} answered, {} bytes, in {}",
        sequential.answered(),
        urls.len(),
        sequential.bytes(),
        human_seconds(sequential.elapsed.as_secs_f64())
    ));
    let n = urls.len() as u64;
    let row = |case: &str, baseline: Option<&str>, secs: f64, source: &str, profile: String| Row {
        stage: STAGE.into(),
        group: "crawl".into(),
        case: case.into(),
        baseline: baseline.map(str::to_string),
        ops: n.max(1),
        median_seconds: secs,
        ns_per_op: secs * 1e9 / n.max(1) as f64,
        ratio: None,
        runs: usize::from(source == "measured"),
        source: source.into(),
        profile,
        rss_bytes: None,
        rss_bytes_per_op: None,
        extra: Default::default(),
    };
    let (at_once, one_by_one) = ("URLs at once, a greenlet each", "URLs one after another");
    let here = harness::Profile::current().name().to_string();
    let mut rows = vec![
        row(
            one_by_one,
            None,
            sequential.elapsed.as_secs_f64(),
            "measured",
            here.clone(),
        ),
        row(
            at_once,
            Some(one_by_one),
            concurrent.elapsed.as_secs_f64(),
            "measured",
            here,
        ),
    ];
    if notes_pages == Some(5) && n == 5 {
        // The notes crawled five real sites: 0.83 s one by one, 0.24 s with gevent.
        let notes = "CPython, the notes".to_string();
        rows.push(row(one_by_one, None, 0.8322, "quoted", notes.clone()));
        rows.push(row(at_once, Some(one_by_one), 0.2365, "quoted", notes));
    }
    let (measured, quoted) = rows.split_at(2);
    report.push_rows(
        Some("A crawl: at once vs one after another"),
        measured.to_vec(),
    );
    if !quoted.is_empty() {
        report.push_rows(Some("The notes' crawl of five sites"), quoted.to_vec());
    }
    (concurrent, sequential)
}
