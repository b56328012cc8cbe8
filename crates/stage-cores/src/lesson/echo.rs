//! The lesson's echo comparison: the notes' server with CPU work per
//! message, served six ways in worker processes, loaded by stage 4's load
//! generator from a thread of this process, with who used the CPU.

use std::error::Error;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use harness::report::human_seconds;
use harness::{Output, Report, Row};
use stage_hub::echo::cpu::CpuTime;
use stage_hub::echo::load::{hub_clients, Load};
use stage_hub::echo::stats::LoadSummary;
use stage_serial::thousands;

use super::{Settings, STAGE};
use crate::cores;
use crate::process::Supervisor;
use crate::server::{Flavor, ServerConfig};
use crate::work::Work;

/// The servers of the echo comparison: `(case name, processes, config)`.
pub fn echo_servers(n: usize, work: Work) -> Vec<(String, usize, ServerConfig)> {
    let hub = |hubs| ServerConfig {
        flavor: Flavor::Hub,
        hubs,
        work,
    };
    vec![
        ("one hub".into(), 1, hub(1)),
        (format!("{n} hub threads"), 1, hub(n)),
        (format!("{n} processes x 1 hub"), n, hub(1)),
        (format!("{n} processes x {n} hubs"), n, hub(n)),
        (
            format!("tokio multi-thread, {n} workers"),
            1,
            ServerConfig {
                flavor: Flavor::Tokio,
                hubs: n,
                work,
            },
        ),
        (
            "a thread per connection".into(),
            1,
            ServerConfig {
                flavor: Flavor::Threads,
                hubs: 1,
                work,
            },
        ),
    ]
}

/// Busy and total CPU time of the whole machine, from `/proc/stat` (zero
/// where that is missing). [`echo_run`] uses only their ratio, the busy
/// share of every core together, in which the clock tick cancels out.
pub fn machine_cpu() -> (Duration, Duration) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return (Duration::ZERO, Duration::ZERO);
    };
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return (Duration::ZERO, Duration::ZERO);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    let ms = |t: u64| Duration::from_millis(t * 10);
    (ms(total - idle), ms(total))
}

/// One echo server under load: what the clients saw, and who used the CPU.
#[derive(Debug, Clone)]
pub struct EchoRun {
    /// The load generator's result.
    pub load: LoadSummary,
    /// Cores the load generator itself used, on average.
    pub load_cores: f64,
    /// Cores the server's worker processes used, on average.
    pub server_cores: f64,
    /// Cores the whole machine had busy, on average (everyone's work).
    pub busy_cores: f64,
}

// ANCHOR: echo_run
/// Start `config` in `procs` worker processes, run `clients` greenlet
/// clients against it from a thread of this process (stage 4's load
/// generator), then stop the workers and check their counts.
pub fn echo_run(
    exe: &Path,
    procs: usize,
    config: ServerConfig,
    clients: usize,
    seconds: Duration,
) -> Result<EchoRun, Box<dyn Error>> {
    let any: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sup = Supervisor::start(exe.to_path_buf(), any, procs, config, Output::silent())?;
    let load = Load {
        addr: sup.local_addr(),
        clients,
        size: 64,
        duration: seconds,
        watch: None,
    };
    // Seconds of CPU the workers used so far; a worker already gone counts
    // none.
    let server_cpu = |pids: &[u32]| -> f64 {
        pids.iter()
            .filter_map(|&pid| CpuTime::of(pid))
            .map(CpuTime::total_s)
            .sum()
    };
    let pids = sup.pids();
    let (busy0, total0, served0) = {
        let (busy, total) = machine_cpu();
        (busy, total, server_cpu(&pids))
    };
    let loader = std::thread::Builder::new()
        .name("echo-load".into())
        .spawn(move || {
            // Wall-clock holds here only mean the machine is busy: the
            // clients never block their hub.
            stage_hub::set_blocking_threshold(None);
            let before = CpuTime::of_this_thread();
            let started = Instant::now();
            let summary = hub_clients(&load, &mut |_| {});
            let used = CpuTime::of_this_thread()
                .zip(before)
                .map_or(0.0, |(after, before)| (after - before).total_s());
            (summary, used, started.elapsed())
        })?;
    let (summary, load_cpu, wall) = loader
        .join()
        .map_err(|_| "the load generator's thread panicked")?;
    let (busy1, total1) = machine_cpu();
    let served1 = server_cpu(&pids);
    let served = sup.stop();
    let load = summary?;
    if load.wrong_replies > 0 {
        return Err(format!("{} echo replies were wrong", load.wrong_replies).into());
    }
    if served.total.connections < (clients as u64).saturating_sub(load.failed_connections) {
        return Err(format!(
            "the workers counted {} connections for {clients} clients",
            served.total.connections
        )
        .into());
    }
    let wall = wall.as_secs_f64().max(1e-9);
    // /proc/stat adds up every core: busy / total is the busy fraction of all of them.
    let busy = (busy1 - busy0).as_secs_f64() / (total1 - total0).as_secs_f64().max(1e-9);
    Ok(EchoRun {
        load,
        load_cores: load_cpu / wall,
        server_cores: (served1 - served0).max(0.0) / wall,
        busy_cores: busy * cores::count() as f64,
    })
}
// ANCHOR_END: echo_run

pub(super) fn echo_listing(s: &Settings, report: &mut Report) -> Result<(), Box<dyn Error>> {
    let out = report.output();
    out.say(format!(
        "\n## The echo server with {} iterations of CPU work per message, on {} cores",
        thousands(s.work.iterations),
        s.n
    ));
    out.say(format!(
        "(every server runs in worker processes; the load generator, stage 4's, runs in one \
         thread of this process and shares the machine; {} round(s) of {} per server, taken \
         in turns, the median kept)",
        s.rounds,
        human_seconds(s.seconds.as_secs_f64())
    ));
    let most = s.clients.iter().copied().max().unwrap_or(1) as u64;
    let _ = rlimit::increase_nofile_limit(most + 256);
    let servers = echo_servers(s.n, s.work);
    let rounds = s.rounds.max(1);
    let bar = out.progress(
        (s.clients.len() * servers.len() * rounds) as u64,
        "echo: load runs",
    );
    for &clients in &s.clients {
        let baseline = format!("one hub, {clients} clients");
        // Rounds in turns: a neighbour's burst slows one run of each
        // server, not every run of one.
        let mut runs: Vec<Vec<EchoRun>> = vec![Vec::new(); servers.len()];
        for round in 1..=rounds {
            for (k, (name, procs, config)) in servers.iter().enumerate() {
                let run = echo_run(&s.exe, *procs, *config, clients, s.seconds)?;
                bar.inc(1);
                bar.suspend(|| {
                    out.say(format!(
                        "  {name}, {clients} clients (round {round}/{rounds}): {:.0} messages/s, p50 {} µs, p99 {} µs; cores used: server {:.2}, load generator {:.2}, whole machine {:.2}",
                        run.load.messages_per_s, run.load.p50_us, run.load.p99_us, run.server_cores, run.load_cores, run.busy_cores
                    ))
                });
                runs[k].push(run);
            }
        }
        let rows: Vec<Row> = servers
            .iter()
            .zip(&mut runs)
            .map(|((name, procs, config), runs)| {
                let case = format!("{name}, {clients} clients");
                runs.sort_by(|a, b| a.load.messages_per_s.total_cmp(&b.load.messages_per_s));
                let median = &runs[runs.len() / 2];
                let mut row = median.load.row(
                    STAGE,
                    "echo-cores",
                    &case,
                    (case != baseline).then_some(baseline.as_str()),
                );
                row.runs = runs.len();
                let rates: Vec<f64> = runs.iter().map(|r| r.load.messages_per_s).collect();
                for (k, v) in [
                    ("procs", serde_json::json!(procs)),
                    ("hubs", serde_json::json!(config.hubs)),
                    ("server", serde_json::json!(config.flavor.name())),
                    ("work", serde_json::json!(s.work.iterations)),
                    ("load_cores", serde_json::json!(median.load_cores)),
                    ("server_cores", serde_json::json!(median.server_cores)),
                    (
                        "server_cpu_us_per_message",
                        serde_json::json!(
                            1e6 * median.server_cores / median.load.messages_per_s.max(1e-9)
                        ),
                    ),
                    ("busy_cores", serde_json::json!(median.busy_cores)),
                    ("messages_per_s_runs", serde_json::json!(rates)),
                ] {
                    row.extra.insert(k.into(), v);
                }
                row
            })
            .collect();
        bar.suspend(|| {
            report.push_rows(
                Some(&format!(
                    "Echo with CPU work per message, {clients} clients ({}; ratio: time per \
                     message against one hub, lower is faster)",
                    LoadSummary::ROW_COLUMNS
                )),
                rows.clone(),
            )
        });
        echo_headline(s, clients, &rows, report);
    }
    bar.finish_and_clear();
    Ok(())
}

fn echo_headline(s: &Settings, clients: usize, rows: &[Row], report: &mut Report) {
    let rate = |prefix: &str| {
        rows.iter()
            .find(|r| r.case.starts_with(prefix))
            .and_then(|r| r.extra.get("messages_per_s"))
            .and_then(|v| v.as_f64())
    };
    let n = s.n;
    if let (Some(one), Some(many), Some(tokio)) = (
        rate("one hub"),
        rate(&format!("{n} hub threads")),
        rate("tokio"),
    ) {
        let speedup = many / one.max(1e-9);
        report.output().say(format!(
            "  {n} hubs: {speedup:.2}x one hub's messages/s (per-core efficiency {:.0}%), {:.2}x tokio's with {n} workers",
            100.0 * speedup / n as f64,
            many / tokio.max(1e-9)
        ));
        report.headline(
            format!("echo with CPU work, {clients} clients: {n} hubs vs one hub, vs tokio"),
            format!(
                "{speedup:.2}x one hub's messages/s; {:.2}x tokio multi-thread's",
                many / tokio.max(1e-9)
            ),
            None,
        );
    }
}
