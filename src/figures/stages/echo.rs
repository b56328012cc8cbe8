//! The echo servers side by side: `echo-bench` (each server in a process of
//! its own under `echo-load`) at several client counts, for the throughput
//! and p99 charts, the table, and the memory chart with the hub's sleepers.

use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};
use stage_hub::echo::bench::{self, BenchPlan};
use stage_hub::echo::Flavor;
use stage_hub::hub::footprint::{self, LivesIn};

use super::{Made, Run, Stage};
use crate::figures::charts::{self, Bar, Series};
use crate::figures::results::{num, Results};
use crate::figures::snippets::{bytes, count, nanos, percent, ratio, Out};

pub(super) const STAGE: Stage = Stage {
    name: "echo-bench",
    about: "three echo servers at five client counts, five turns each, each run in its own process (about seven minutes)",
    run,
    make,
};

/// Client counts the charts span.
const CLIENTS: [usize; 5] = [10, 100, 500, 2_000, 10_000];
const QUICK_CLIENTS: [usize; 2] = [5, 20];
/// Runs of every server at every count: servers are compared turn by turn
/// and the book gives the median turn (see `stage_hub::echo::bench`).
const TURNS: usize = 5;

/// The `stage-hub` binary of this build, built first if it is missing or
/// stale (cargo is a no-op when it is fresh).
pub(super) fn stage_hub_binary() -> Result<PathBuf, Box<dyn Error>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "-p", "stage-hub", "--bin", "stage-hub"])
        .args(["--message-format", "json-render-diagnostics"]);
    if harness::Profile::current().optimized {
        cmd.arg("--release");
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run cargo to build stage-hub for echo-bench: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building stage-hub for echo-bench failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "stage-hub")
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "cargo built stage-hub but named no executable".into())
}

fn run(r: &Run) -> Result<Results, Box<dyn Error>> {
    let exe = stage_hub_binary()?;
    let plan = BenchPlan {
        clients: if r.quick {
            QUICK_CLIENTS.to_vec()
        } else {
            CLIENTS.to_vec()
        },
        seconds: if r.quick { 0.3 } else { 3.0 },
        size: 64,
        flavors: Flavor::ALL.to_vec(),
        turns: if r.quick { 1 } else { TURNS },
    };
    let measured = bench::run(&exe, &plan, r.output())?;
    let mut report = harness::Report::new("echo-bench", r.output());
    report.push_rows(None, bench::rows("echo-bench", &measured));
    let mut results = r.results(&report);
    results.stage = "echo-bench".into();
    results.extra.insert("seconds".into(), json!(plan.seconds));
    results.extra.insert("turns".into(), json!(plan.turns));
    Ok(results)
}

fn field(row: &Value, f: &str) -> f64 {
    row[f].as_f64().unwrap_or(0.0)
}

fn make(m: &Made<'_>) -> Result<(), Box<dyn Error>> {
    let res = m.get("echo-bench")?;
    let mut out = m.out("echo-bench")?;
    let rows = res.group("echo-bench");
    let servers = ["hub", "threads", "tokio"];
    let of = |server: &str| -> Vec<&Value> {
        rows.iter()
            .copied()
            .filter(|r| r["server"] == server)
            .collect()
    };
    // The table.
    let mut table = String::from(
        "| server | clients | messages/s | p50 | p99 | max | peak RSS | per client | CPU per message, user + system | busy: server, load generator | failed | wrong |\n\
         |:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for row in &rows {
        let us = |f: &str| nanos(field(row, f) * 1e3);
        let cpu = match (
            cpu_turns(row, "user").median(),
            cpu_turns(row, "system").median(),
        ) {
            (Some(user), Some(system)) => {
                format!("{} + {}", nanos(user * 1e3), nanos(system * 1e3))
            }
            _ => NOT_MEASURED.to_string(),
        };
        let busy = match (
            turns(row, "server_busy_turns").median(),
            turns(row, "load_busy_turns").median(),
        ) {
            (Some(server), Some(load)) => format!("{}, {}", percent(server), percent(load)),
            _ => NOT_MEASURED.to_string(),
        };
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row["server"].as_str().unwrap_or("?"),
            count(field(row, "clients")),
            count(field(row, "messages_per_s")),
            us("p50_us"),
            us("p99_us"),
            us("max_us"),
            bytes(field(row, "server_peak_rss_bytes")),
            bytes(field(row, "server_rss_bytes_per_connection")),
            cpu,
            busy,
            row["failed_connections"],
            row["wrong_replies"],
        );
    }
    out.text("servers", &table)?;
    out.text("connection", &connection_table())?;
    // The least a connection can cost with these records: the page of
    // stack it touches (see the chapter) and the records at their least.
    let heap = footprint::heap_bytes(&footprint::per_connection()) as f64;
    out.value("heap_records", bytes(heap));
    out.value("floor", bytes(heap + 4096.0));
    // The charts.
    let series = |f: &dyn Fn(&Value) -> f64| -> Vec<Series> {
        servers
            .iter()
            .map(|s| Series {
                name: match *s {
                    "hub" => "hub: a greenlet per connection".to_string(),
                    "threads" => "a thread per connection".to_string(),
                    _ => "tokio current-thread: a future per connection".to_string(),
                },
                points: of(s).iter().map(|r| (field(r, "clients"), f(r))).collect(),
            })
            .collect()
    };
    charts::lines(
        &out.path("throughput.svg"),
        "Echo round trips per second, one server process each",
        "concurrent clients (log scale)",
        "messages per second (log scale)",
        &series(&|r| field(r, "messages_per_s")),
    )?;
    charts::lines(
        &out.path("p99.svg"),
        "Echo latency: the 99th percentile round trip",
        "concurrent clients (log scale)",
        "p99 round trip, ms (log scale)",
        &series(&|r| field(r, "p99_us") / 1e3),
    )?;
    // The values the chapter states: at the largest and a middle count.
    let most = rows.iter().map(|r| field(r, "clients")).fold(0.0, f64::max);
    let at = |server: &str, clients: f64| {
        rows.iter()
            .find(|r| r["server"] == server && field(r, "clients") == clients)
            .copied()
            .ok_or_else(|| format!("echo-bench: no {server} run at {clients} clients"))
    };
    let middle = if rows.iter().any(|r| field(r, "clients") == 500.0) {
        500.0
    } else {
        most
    };
    for (key, clients) in [("most", most), ("middle", middle)] {
        let (hub, threads, tokio) = (
            at("hub", clients)?,
            at("threads", clients)?,
            at("tokio", clients)?,
        );
        out.value(&format!("{key}_clients"), count(clients));
        out.value(
            &format!("{key}_hub_rate"),
            count(field(hub, "messages_per_s")),
        );
        for (name, other) in [("threads", threads), ("tokio", tokio)] {
            let ratios = bench::paired_ratios(&turn_rates(hub), &turn_rates(other));
            if ratios.is_empty() {
                return Err(format!("echo-bench: no turn of hub and {name} at {clients}").into());
            }
            ratio_values(&mut out, &format!("{key}_hub_vs_{name}"), &ratios);
        }
        for (name, row) in [("hub", hub), ("threads", threads), ("tokio", tokio)] {
            out.value(
                &format!("{key}_{name}_rss"),
                bytes(field(row, "server_rss_bytes_per_connection")),
            );
            // The server's CPU time per message, the median over turns.
            for part in ["user", "system"] {
                out.value(
                    &format!("{key}_{name}_{part}"),
                    micros(cpu_turns(row, part).median()),
                );
            }
        }
        // The hub's user time over tokio's, turn by turn over the turns
        // that measured both. Not measured when no turn measured tokio's
        // above zero: a run at quick scale can be shorter than the
        // kernel's clock tick.
        ratio_values(
            &mut out,
            &format!("{key}_user_hub_vs_tokio"),
            &cpu_turns(hub, "user").over(&cpu_turns(tokio, "user")),
        );
        // Who set the rate: how busy each side kept its core, and what a
        // message cost each (medians over turns).
        let busy = |row: &Value| turns(row, "server_busy_turns").median();
        let share = |v: Option<f64>| v.map_or(NOT_MEASURED.to_string(), percent);
        let load_busy = turns(hub, "load_busy_turns")
            .and(turns(tokio, "load_busy_turns"))
            .median();
        for (name, row) in [("hub", hub), ("tokio", tokio)] {
            out.value(&format!("{key}_{name}_busy"), share(busy(row)));
            out.value(
                &format!("{key}_{name}_cost"),
                micros(total_cpu_turns(row).median()),
            );
        }
        out.value(&format!("{key}_load_busy"), share(load_busy));
        out.value(
            &format!("{key}_load_cost"),
            micros(
                turns(hub, "load_us_per_message_turns")
                    .and(turns(tokio, "load_us_per_message_turns"))
                    .median(),
            ),
        );
        out.value(
            &format!("{key}_pace"),
            pace(load_busy, busy(hub), busy(tokio)),
        );
        // What still tells the servers apart: the CPU each spent per
        // message, the hub's over tokio's turn by turn.
        ratio_values(
            &mut out,
            &format!("{key}_cost_hub_vs_tokio"),
            &total_cpu_turns(hub).over(&total_cpu_turns(tokio)),
        );
    }
    out.value(
        "turns",
        count(
            res.extra
                .get("turns")
                .and_then(Value::as_f64)
                .unwrap_or(1.0),
        ),
    );
    out.value(
        "seconds",
        format!(
            "{}",
            res.extra
                .get("seconds")
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
        ),
    );
    out.finish()?;
    // Memory per waiting task: a sleeping greenlet, and a connection.
    let hub = m.get("stage-hub")?;
    let sleeper = hub
        .rows_like("sleepers", "run each until it parks")
        .first()
        .map(|r| num(r, "rss_bytes_per_op"))
        .transpose()?;
    let mut bars = Vec::new();
    if let Some(b) = sleeper {
        bars.push(Bar::measured(
            "a sleeping greenlet (hub lesson)",
            b / 1024.0,
            bytes(b),
        ));
    }
    for (server, label) in [
        ("hub", "a hub connection (greenlet)"),
        ("threads", "a thread-per-connection connection"),
        ("tokio", "a tokio connection (future)"),
    ] {
        let b = field(at(server, most)?, "server_rss_bytes_per_connection");
        bars.push(Bar::measured(
            format!("{label}, {} clients", count(most)),
            b / 1024.0,
            bytes(b),
        ));
    }
    charts::bars(
        &out.path("memory.svg"),
        "Resident memory per waiting task",
        "KiB (log scale)",
        0.5,
        &bars,
    )?;
    Ok(())
}

/// A server's rate in each turn, in turn order; a result recorded before
/// turns existed counts as one turn.
fn turn_rates(row: &Value) -> Vec<f64> {
    match row["messages_per_s_turns"].as_array() {
        Some(turns) => turns.iter().filter_map(Value::as_f64).collect(),
        None => vec![field(row, "messages_per_s")],
    }
}

/// What the book says of a CPU figure that was not measured.
const NOT_MEASURED: &str = "not measured";

/// A time per message given in µs, as the book prints it, or that it was
/// not measured.
fn micros(us: Option<f64>) -> String {
    us.map_or(NOT_MEASURED.to_string(), |us| nanos(us * 1e3))
}

/// Write `name`, the median of `sorted` ratios (turn by turn), and
/// `name_spread`, the lowest and highest turn's; both say "not measured"
/// when there are none.
fn ratio_values(out: &mut Out, name: &str, sorted: &[f64]) {
    let (median, spread) = match bench::median_and_spread(sorted) {
        Some((median, low, high)) => (ratio(median), format!("{} to {}", ratio(low), ratio(high))),
        None => (NOT_MEASURED.to_string(), NOT_MEASURED.to_string()),
    };
    out.value(name, median);
    out.value(&format!("{name}_spread"), spread);
}

/// One figure of a row, one per turn in turn order, `None` for a turn
/// whose `/proc` could not be read; no turns for a result recorded before
/// the figure was measured.
struct Turns(Vec<Option<f64>>);

/// The turns of `row`'s field `key` (see `stage_hub::echo::bench::rows`).
fn turns(row: &Value, key: &str) -> Turns {
    Turns(
        row[key]
            .as_array()
            .map(|turns| turns.iter().map(Value::as_f64).collect())
            .unwrap_or_default(),
    )
}

/// A server's user or system time per message (µs), turn by turn.
fn cpu_turns(row: &Value, part: &str) -> Turns {
    turns(row, &format!("server_{part}_us_per_message_turns"))
}

/// A server's CPU time per message (µs), user and system together, turn
/// by turn.
fn total_cpu_turns(row: &Value) -> Turns {
    let (user, system) = (cpu_turns(row, "user"), cpu_turns(row, "system"));
    Turns(
        user.0
            .into_iter()
            .zip(system.0)
            .map(|(u, s)| Some(u? + s?))
            .collect(),
    )
}

impl Turns {
    /// The median over the turns that measured it.
    fn median(&self) -> Option<f64> {
        let mut sorted: Vec<f64> = self.0.iter().flatten().copied().collect();
        sorted.sort_by(f64::total_cmp);
        bench::median_and_spread(&sorted).map(|(median, _, _)| median)
    }

    /// These turns and `other`'s, as one sample.
    fn and(mut self, other: Turns) -> Turns {
        self.0.extend(other.0);
        self
    }

    /// This figure over `other`'s, turn by turn over the turns that
    /// measured both, sorted (see `bench::paired_ratios`).
    fn over(&self, other: &Turns) -> Vec<f64> {
        let (mine, theirs): (Vec<f64>, Vec<f64>) = self
            .0
            .iter()
            .zip(&other.0)
            .filter_map(|(a, b)| Some(((*a)?, (*b)?)))
            .unzip();
        bench::paired_ratios(&mine, &theirs)
    }
}

/// Which side set the rate at a client count, in words the chapter
/// finishes a sentence with: the load generator, if it kept its core at
/// least as busy as both servers kept theirs (medians over turns), else
/// the servers.
fn pace(load: Option<f64>, hub: Option<f64>, tokio: Option<f64>) -> String {
    match (load, hub, tokio) {
        (Some(load), Some(hub), Some(tokio)) if load >= hub.max(tokio) => {
            "the load generator was the busier side against both servers, so it set the rate"
                .to_string()
        }
        (Some(_), Some(_), Some(_)) => "a server was busier than the load generator, \
             so the rates compare the servers"
            .to_string(),
        _ => format!("it was {NOT_MEASURED}"),
    }
}

/// What the hub keeps per connection besides the stack, record by record,
/// from the types of this build (not measured: laid out by the compiler).
fn connection_table() -> String {
    let mut table = String::from(
        "| what the hub keeps per connection | type | bytes | held as |\n|:--|:--|--:|:--|\n",
    );
    for r in footprint::per_connection() {
        let held = match r.lives_in {
            LivesIn::OwnAllocation => format!(
                "its own allocation (the allocator's chunk: {} bytes)",
                footprint::malloc_chunk(r.bytes)
            ),
            LivesIn::TableEntry => "an entry of a table that doubles as it grows".to_string(),
        };
        let _ = writeln!(
            table,
            "| {} | `{}` | {} | {} |",
            r.what, r.type_name, r.bytes, held
        );
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A turn shorter than the kernel's clock tick measures zero, which is
    /// a figure; a turn whose `/proc` could not be read is `null`, which is
    /// not; a result recorded before CPU time was measured has none.
    #[test]
    fn cpu_medians_count_zeros_and_skip_turns_not_measured() {
        let row = json!({ "server_user_us_per_message_turns": [0.0, null, 3.0, 0.5] });
        assert_eq!(cpu_turns(&row, "user").median(), Some(0.5));
        let zeros = json!({ "server_user_us_per_message_turns": [0.0, 0.0] });
        assert_eq!(cpu_turns(&zeros, "user").median(), Some(0.0));
        assert_eq!(cpu_turns(&json!({}), "user").median(), None);
        let none = json!({ "server_system_us_per_message_turns": [null] });
        assert_eq!(cpu_turns(&none, "system").median(), None);
    }

    /// A message's CPU is user and system time of the same turn; servers
    /// compare on it turn by turn, over the turns that measured both.
    #[test]
    fn costs_add_within_a_turn_and_compare_turn_by_turn() {
        let hub = json!({
            "server_user_us_per_message_turns": [1.0, 1.0, null, 2.0],
            "server_system_us_per_message_turns": [4.0, 5.0, 5.0, 8.0],
        });
        let tokio = json!({
            "server_user_us_per_message_turns": [1.0, 1.0, 1.0, 1.0],
            "server_system_us_per_message_turns": [9.0, 5.0, 5.0, null],
        });
        assert_eq!(
            total_cpu_turns(&hub).0,
            [Some(5.0), Some(6.0), None, Some(10.0)]
        );
        // Turns 1 and 2 measured both servers: 5/10 and 6/6.
        assert_eq!(
            total_cpu_turns(&hub).over(&total_cpu_turns(&tokio)),
            [0.5, 1.0]
        );
    }

    /// The load generator set the rate only if it was at least as busy as
    /// both servers; unmeasured, the book says so.
    #[test]
    fn the_busier_side_is_named_as_the_one_that_set_the_rate() {
        assert!(pace(Some(0.99), Some(0.95), Some(0.99)).starts_with("the load generator"));
        assert!(pace(Some(0.90), Some(0.95), Some(0.80)).starts_with("a server"));
        assert_eq!(pace(None, Some(0.9), Some(0.9)), "it was not measured");
    }
}
