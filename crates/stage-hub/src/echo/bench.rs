//! `echo-bench`: every server in a process of its own, loaded by `echo-load`
//! in another, so each figure is one server's alone: messages/s, latency,
//! the server's peak resident memory (its `VmHWM`) and the CPU time it
//! spent per message, in user space and in the kernel.
//!
//! On a shared machine one run of a few seconds can come out far from the
//! next (the book once saw the hub's rate against tokio's at 10,000 clients
//! move between 0.42× and 2.55× from one recording to another), so a plan
//! has turns: every server runs once per turn, the order rotating from turn
//! to turn, and servers are compared turn by turn — two runs a few seconds
//! apart share the machine's mood — and by the median over turns.
//!
//! Each run also says how busy each side kept its core over the ping-pong
//! (`echo-load` reads its own CPU time and the server's, given the
//! server's process, over the same span). With two cores, one each, the
//! busier of the two sets the rate: once the load generator is the limit,
//! every server that keeps up with it answers at its rate, and only the
//! CPU each server spent per message still tells them apart.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use harness::report::{human_bytes, Row};
use harness::Output;

use super::stats::LoadSummary;
use super::Flavor;

/// What went wrong running a benchmark process.
#[derive(Debug)]
pub struct BenchError(pub String);

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

fn err(what: impl Into<String>) -> BenchError {
    BenchError(what.into())
}

/// One server flavor at one client count, as measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Which server.
    pub flavor: Flavor,
    /// What `echo-load` reported.
    pub load: LoadSummary,
    /// The server's resident memory before any client came, bytes.
    pub idle_rss: u64,
    /// The server's peak resident memory, bytes.
    pub peak_rss: u64,
    /// Which turn of the plan this run was (0 first).
    pub turn: usize,
}

impl Measured {
    /// Peak memory the connections added, per connection.
    pub fn rss_per_connection(&self) -> f64 {
        self.peak_rss.saturating_sub(self.idle_rss) as f64 / self.load.clients.max(1) as f64
    }

    /// The server's user and system time per message answered, µs, if
    /// it was measured.
    /// The server's CPU time is `echo-load`'s reading over the ping-pong
    /// ([`LoadSummary::server_cpu`]: the clients' connecting left out, and
    /// `None` where `/proc` could not be read; a short run can measure zero,
    /// as the kernel counts CPU time in clock ticks).
    pub fn cpu_per_message_us(&self) -> Option<(f64, f64)> {
        Some(self.load.server_cpu?.per_message_us(self.load.messages))
    }
}

/// The plan: which servers, how many clients, for how long.
#[derive(Debug, Clone)]
pub struct BenchPlan {
    /// Client counts, one run per server each.
    pub clients: Vec<usize>,
    /// Seconds each load runs.
    pub seconds: f64,
    /// Bytes per message.
    pub size: usize,
    /// The servers to measure.
    pub flavors: Vec<Flavor>,
    /// How many times each server runs at each count (at least 1).
    pub turns: usize,
}

/// Run every server at every client count, `plan.turns` times each. `exe`
/// is the stage-hub binary. Within a count, turn by turn, each server runs
/// once; the order rotates from turn to turn so that no server always runs
/// first (after the machine has rested) or last.
pub fn run(exe: &Path, plan: &BenchPlan, out: Output) -> Result<Vec<Measured>, BenchError> {
    let mut all = Vec::new();
    let turns = plan.turns.max(1);
    for &clients in &plan.clients {
        for turn in 0..turns {
            for i in 0..plan.flavors.len() {
                let flavor = plan.flavors[(i + turn) % plan.flavors.len()];
                out.say(format!(
                    "echo-bench: {} server, {clients} clients, {} s, turn {} of {turns} ...",
                    flavor.name(),
                    plan.seconds,
                    turn + 1
                ));
                let m = measure_one(exe, flavor, clients, turn, plan)?;
                out.say(format!(
                "  {:.0} messages/s, p50 {} µs, p99 {} µs, server peak RSS {} ({}/connection), {} failed, {} wrong",
                m.load.messages_per_s,
                m.load.p50_us,
                m.load.p99_us,
                human_bytes(m.peak_rss),
                human_bytes(m.rss_per_connection() as u64),
                    m.load.failed_connections,
                    m.load.wrong_replies
                ));
                all.push(m);
            }
        }
    }
    Ok(all)
}

/// A child that is killed if we leave early (an error, a panic): a server
/// under measurement (here, and in the book's cachegrind figures).
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn measure_one(
    exe: &Path,
    flavor: Flavor,
    clients: usize,
    turn: usize,
    plan: &BenchPlan,
) -> Result<Measured, BenchError> {
    let mut server = Reaped(
        Command::new(exe)
            .args([
                "echo-server",
                "--flavor",
                flavor.name(),
                "--addr",
                "127.0.0.1:0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                err(format!(
                    "cannot start the {} server ({}): {e}",
                    flavor.name(),
                    exe.display()
                ))
            })?,
    );
    let pid = server.0.id();
    let stdout = server
        .0
        .stdout
        .take()
        .ok_or_else(|| err("the server's stdout was not captured"))?;
    let (addr, mut lines) = read_address(stdout)?;
    let idle_rss = proc_status_kib(pid, "VmRSS:").unwrap_or(0) * 1024;
    let load = Command::new(exe)
        .args(["echo-load", "--json", "--addr", &addr.to_string()])
        .args(["--server-pid", &pid.to_string()])
        .args([
            "--clients",
            &clients.to_string(),
            "--seconds",
            &plan.seconds.to_string(),
        ])
        .args(["--size", &plan.size.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| err(format!("cannot run echo-load: {e}")))?;
    let peak_rss = proc_status_kib(pid, "VmHWM:").unwrap_or(0) * 1024;
    let summary = load_summary(&load.stdout).ok_or_else(|| {
        err(format!(
            "echo-load against the {} server printed no result (exit {})",
            flavor.name(),
            load.status
        ))
    })?;

    // A clean stop: SIGTERM, and the server prints its summary line.
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = server.0.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = lines.next(); // the summary line, if it came; not needed here
    Ok(Measured {
        flavor,
        idle_rss,
        peak_rss,
        load: summary,
        turn,
    })
}

/// What `echo-load --json` printed: its result row, if there is one.
pub fn load_summary(stdout: &[u8]) -> Option<LoadSummary> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.get("record").and_then(|r| r.as_str()) == Some("row"))
        .and_then(|v| serde_json::from_value::<LoadSummary>(v).ok())
}

/// Read the server's first stdout line, "listening on ADDR"; the lines
/// after it are returned for the caller to read on.
pub fn read_address(
    stdout: ChildStdout,
) -> Result<(SocketAddr, std::io::Lines<BufReader<ChildStdout>>), BenchError> {
    let mut lines = BufReader::new(stdout).lines();
    let first = lines
        .next()
        .ok_or_else(|| err("the server exited before printing its address"))?
        .map_err(|e| err(format!("reading the server's address: {e}")))?;
    let addr = first
        .rsplit(' ')
        .next()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| err(format!("the server's first line has no address: {first:?}")))?;
    Ok((addr, lines))
}

/// A `kB` figure from `/proc/<pid>/status`.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The runs of one server at one client count, in turn order.
pub fn turns_of(measured: &[Measured], flavor: Flavor, clients: usize) -> Vec<&Measured> {
    let mut runs: Vec<_> = measured
        .iter()
        .filter(|m| m.flavor == flavor && m.load.clients == clients)
        .collect();
    runs.sort_by_key(|m| m.turn);
    runs
}

/// The run with the median rate among `runs` (the lower middle one of an
/// even number): a real run, so its latencies and memory belong together.
pub fn median_run<'a>(runs: &[&'a Measured]) -> Option<&'a Measured> {
    let mut by_rate = runs.to_vec();
    by_rate.sort_by(|a, b| a.load.messages_per_s.total_cmp(&b.load.messages_per_s));
    by_rate.get(by_rate.len().saturating_sub(1) / 2).copied()
}

/// The harness rows for the measured runs: one per server and client count,
/// the run with the median rate over the turns, compared with the thread
/// server at the same count (see [`LoadSummary::row`]: "per op" is the time
/// per message). Every turn's rate rides along in turn order
/// (`messages_per_s_turns`), so servers can be compared turn by turn, and
/// so do the server's user and system time per message in each turn, how
/// busy the server and the load generator kept their cores
/// (`server_busy_turns`, `load_busy_turns`), and the load generator's CPU
/// time per message (`load_us_per_message_turns`).
pub fn rows(stage: &str, measured: &[Measured]) -> Vec<Row> {
    let mut keys: Vec<(usize, Flavor)> = Vec::new();
    for m in measured {
        if !keys.contains(&(m.load.clients, m.flavor)) {
            keys.push((m.load.clients, m.flavor));
        }
    }
    keys.sort_by_key(|&(clients, flavor)| (clients, flavor.name()));
    keys.into_iter()
        .filter_map(|(clients, flavor)| {
            let runs = turns_of(measured, flavor, clients);
            let m = median_run(&runs)?;
            let case = case_name(flavor, clients);
            let baseline = (flavor != Flavor::Threads).then(|| case_name(Flavor::Threads, clients));
            let mut row = m.load.row(stage, "echo-bench", &case, baseline.as_deref());
            row.runs = runs.len();
            row.extra.insert("server".into(), flavor.name().into());
            row.extra.insert(
                "messages_per_s_turns".into(),
                runs.iter().map(|r| r.load.messages_per_s).collect(),
            );
            row.extra
                .insert("server_idle_rss_bytes".into(), m.idle_rss.into());
            row.extra
                .insert("server_peak_rss_bytes".into(), m.peak_rss.into());
            row.extra.insert(
                "server_rss_bytes_per_connection".into(),
                m.rss_per_connection().into(),
            );
            // One per turn, in turn order; `null` for a turn not measured.
            let (user, system): (Vec<Option<f64>>, Vec<Option<f64>>) =
                runs.iter().map(|r| r.cpu_per_message_us().unzip()).unzip();
            row.extra
                .insert("server_user_us_per_message_turns".into(), user.into());
            row.extra
                .insert("server_system_us_per_message_turns".into(), system.into());
            let per_turn = |f: &dyn Fn(&Measured) -> Option<f64>| -> serde_json::Value {
                runs.iter().map(|r| f(r)).collect::<Vec<_>>().into()
            };
            row.extra.insert(
                "server_busy_turns".into(),
                per_turn(&|r| r.load.server_busy()),
            );
            row.extra
                .insert("load_busy_turns".into(), per_turn(&|r| r.load.load_busy()));
            row.extra.insert(
                "load_us_per_message_turns".into(),
                per_turn(&|r| r.load.load_us_per_message()),
            );
            Some(row)
        })
        .collect()
}

/// `a`'s rate over `b`'s, turn by turn, sorted: the middle one is the
/// median ratio, the ends its spread (see [`median_and_spread`]).
pub fn turn_ratios(measured: &[Measured], a: Flavor, b: Flavor, clients: usize) -> Vec<f64> {
    let rates = |flavor| -> Vec<f64> {
        turns_of(measured, flavor, clients)
            .iter()
            .map(|m| m.load.messages_per_s)
            .collect()
    };
    paired_ratios(&rates(a), &rates(b))
}

/// Two servers' rates, one per turn in turn order (as [`run`] measures
/// them, and as [`rows`] records them in `messages_per_s_turns`): the
/// first's over the second's, turn by turn, sorted. A turn where the
/// second served nothing is left out.
pub fn paired_ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut ratios: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|&(_, &y)| y > 0.0)
        .map(|(x, y)| x / y)
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios
}

/// The median of `sorted` ratios (the lower middle one of an even number),
/// the lowest and the highest; `None` when there are none.
pub fn median_and_spread(sorted: &[f64]) -> Option<(f64, f64, f64)> {
    let (low, high) = (*sorted.first()?, *sorted.last()?);
    Some((sorted[(sorted.len() - 1) / 2], low, high))
}

fn case_name(flavor: Flavor, clients: usize) -> String {
    format!("{} server, {clients} clients", flavor.name())
}

/// A plain table of the figures the harness table leaves out.
pub fn table(measured: &[Measured]) -> String {
    let mut out = String::from(
        "\n  server    clients  turn   messages/s   p50 µs   p99 µs   max µs   peak RSS   RSS/conn  user µs/msg  sys µs/msg  busy: server, load  failed  wrong\n",
    );
    for m in measured {
        let cpu = |part: fn((f64, f64)) -> f64| {
            m.cpu_per_message_us()
                .map_or("-".to_string(), |us| format!("{:.2}", part(us)))
        };
        let percent =
            |busy: Option<f64>| busy.map_or("-".to_string(), |b| format!("{:.0}%", b * 100.0));
        out.push_str(&format!(
            "  {:<8} {:>8} {:>5} {:>12.0} {:>8} {:>8} {:>8} {:>10} {:>10} {:>12} {:>11} {:>12} {:>6} {:>7} {:>6}\n",
            m.flavor.name(),
            m.load.clients,
            m.turn + 1,
            m.load.messages_per_s,
            m.load.p50_us,
            m.load.p99_us,
            m.load.max_us,
            human_bytes(m.peak_rss),
            human_bytes(m.rss_per_connection() as u64),
            cpu(|(user, _)| user),
            cpu(|(_, system)| system),
            percent(m.load.server_busy()),
            percent(m.load.load_busy()),
            m.load.failed_connections,
            m.load.wrong_replies
        ));
    }
    out
}

/// The hub's rate over each other server's, turn by turn, at each count:
/// the median ratio and the lowest and highest turns'.
pub fn ratio_lines(measured: &[Measured]) -> String {
    let mut counts: Vec<usize> = measured.iter().map(|m| m.load.clients).collect();
    counts.sort_unstable();
    counts.dedup();
    let mut out = String::new();
    for clients in counts {
        for other in [Flavor::Tokio, Flavor::Threads] {
            let ratios = turn_ratios(measured, Flavor::Hub, other, clients);
            let Some((median, low, high)) = median_and_spread(&ratios) else {
                continue;
            };
            out.push_str(&format!(
                "  hub against {} at {clients} clients: {median:.2}x, the median of {} turns ({low:.2}x to {high:.2}x)\n",
                other.name(),
                ratios.len()
            ));
        }
    }
    out
}

/// The stage-hub binary to run children from: this one, if it is it.
pub fn stage_binary() -> Result<PathBuf, BenchError> {
    std::env::current_exe().map_err(|e| err(format!("cannot find our own binary: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::echo::cpu::CpuTime;

    fn run(flavor: Flavor, clients: usize, turn: usize, rate: f64) -> Measured {
        // 1 µs of user and 2 of system time a message.
        let server = CpuTime {
            user_s: rate / 1e6,
            system_s: 2.0 * rate / 1e6,
        };
        Measured {
            flavor,
            load: LoadSummary {
                clients,
                size: 64,
                seconds: 1.0,
                messages: rate as u64,
                messages_per_s: rate,
                p50_us: 1,
                p99_us: 2,
                max_us: 3,
                failed_connections: 0,
                wrong_replies: 0,
                first_failure: None,
                // Busy 99% of its one second: 0.99 s over `rate` messages.
                load_cpu: Some(CpuTime {
                    user_s: 0.09,
                    system_s: 0.9,
                }),
                server_cpu: Some(server),
            },
            idle_rss: 0,
            peak_rss: 0,
            turn,
        }
    }

    /// Servers are compared turn by turn, not median against median: a
    /// turn when the machine was slow for both cancels out.
    #[test]
    fn ratios_pair_runs_of_the_same_turn() {
        let measured = [
            run(Flavor::Hub, 10, 0, 100.0),
            run(Flavor::Tokio, 10, 0, 50.0),
            run(Flavor::Tokio, 10, 1, 400.0),
            run(Flavor::Hub, 10, 1, 200.0),
            run(Flavor::Hub, 10, 2, 90.0),
            run(Flavor::Tokio, 10, 2, 100.0),
            // Another count is not mixed in.
            run(Flavor::Hub, 99, 0, 1.0),
        ];
        assert_eq!(
            turn_ratios(&measured, Flavor::Hub, Flavor::Tokio, 10),
            [0.5, 0.9, 2.0]
        );
        assert!(ratio_lines(&measured).contains(
            "hub against tokio at 10 clients: 0.90x, the median of 3 turns (0.50x to 2.00x)"
        ));
    }

    /// A row is the median turn's run, whole, with every turn's rate.
    #[test]
    fn a_row_is_the_median_turn_with_every_turns_rate() {
        let mut measured = vec![
            run(Flavor::Hub, 10, 0, 300.0),
            run(Flavor::Hub, 10, 1, 100.0),
            run(Flavor::Hub, 10, 2, 200.0),
        ];
        measured[2].peak_rss = 7;
        let rows = rows("s", &measured);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].runs, 3);
        assert_eq!(rows[0].extra["messages_per_s"], 200.0);
        assert_eq!(rows[0].extra["server_peak_rss_bytes"], 7);
        assert_eq!(
            rows[0].extra["messages_per_s_turns"],
            serde_json::json!([300.0, 100.0, 200.0])
        );
        // Each turn's CPU over its own messages (1 µs user, 2 system).
        for (key, us) in [
            ("server_user_us_per_message_turns", 1.0),
            ("server_system_us_per_message_turns", 2.0),
        ] {
            let turns: Vec<f64> = rows[0].extra[key]
                .as_array()
                .expect("an array")
                .iter()
                .filter_map(serde_json::Value::as_f64)
                .collect();
            assert_eq!(turns.len(), 3, "{key}");
            assert!(
                turns.iter().all(|t| (t - us).abs() < 1e-9),
                "{key}: {turns:?}"
            );
        }
        // How busy each side was, turn by turn, over the load's 1 s: the
        // server 3 µs a message, the load generator 0.99 s.
        let floats = |key: &str| -> Vec<f64> {
            rows[0].extra[key]
                .as_array()
                .expect("an array")
                .iter()
                .filter_map(serde_json::Value::as_f64)
                .collect()
        };
        let server: Vec<f64> = [300.0, 100.0, 200.0]
            .iter()
            .map(|r| 3.0 * r / 1e6)
            .collect();
        for (got, want) in floats("server_busy_turns").iter().zip(&server) {
            assert!((got - want).abs() < 1e-12, "{got} {want}");
        }
        assert!(floats("load_busy_turns")
            .iter()
            .all(|b| (b - 0.99).abs() < 1e-9));
        let per_message = floats("load_us_per_message_turns");
        assert!(
            (per_message[1] - 0.99e6 / 100.0).abs() < 1e-6,
            "{per_message:?}"
        );
        // A turn whose CPU time could not be read is `null` in its place.
        measured[1].load.server_cpu = None;
        measured[1].load.load_cpu = None;
        let again = super::rows("s", &measured);
        for key in [
            "server_user_us_per_message_turns",
            "server_busy_turns",
            "load_busy_turns",
        ] {
            assert!(
                again[0].extra[key][1].is_null(),
                "{key}: {}",
                again[0].extra[key]
            );
        }
        assert_eq!(
            again[0].extra["server_user_us_per_message_turns"],
            serde_json::json!([1.0, null, 1.0])
        );
    }
}
