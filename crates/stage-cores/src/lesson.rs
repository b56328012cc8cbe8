//! The lesson: CPU tasks on one hub, on N hubs and on N processes; work
//! handed between hubs; the echo server with CPU work per message served
//! every way, at two client counts.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use harness::{Case, CommonArgs, Group, Output, Plan, Report};
use stage_serial::{thousands, Transcript};

mod echo;

pub use echo::{echo_run, echo_servers, machine_cpu, EchoRun};

use crate::hubs::Hubs;
use crate::process::worker::cpu_args;
use crate::work::{self, Work};
use crate::{cores, CoresError};

/// The stage's name, as reports and the tour show it.
pub const STAGE: &str = "stage-cores";

/// CPU tasks in each run of the `cpu` group.
pub const TASKS: u64 = 8;

/// Name of the one-hub CPU case, the group's baseline.
pub const ONE_HUB_CASE: &str = "one hub: 8 tasks, a greenlet each";

/// Iterations of stage 1's loop per echo message, unless `--work` says.
pub const DEFAULT_WORK: u64 = 20_000;

/// How big this run is.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Hubs and processes of the "N" cases (the core count).
    pub n: usize,
    /// Iterations of each CPU task.
    pub iterations: u64,
    /// Warm-up and timed runs per case.
    pub plan: Plan,
    /// Client counts of the echo comparison.
    pub clients: Vec<usize>,
    /// How long each echo load runs.
    pub seconds: Duration,
    /// Load runs of each echo server, taken in turns (the median is kept).
    pub rounds: usize,
    /// CPU work per echo message.
    pub work: Work,
    /// The executable re-run as workers (this program).
    pub exe: PathBuf,
}

impl Settings {
    /// The full lesson (three rounds of 2 s loads), or the `--quick` one (a
    /// tenth of the CPU work, 50 and 500 clients, one round of half a second).
    pub fn new(quick: bool) -> Settings {
        Settings {
            n: cores::count(),
            iterations: if quick { 5_000_000 } else { 50_000_000 },
            plan: if quick { Plan::quick() } else { Plan::full() },
            clients: if quick {
                vec![50, 500]
            } else {
                vec![500, 10_000]
            },
            seconds: Duration::from_millis(if quick { 500 } else { 2_000 }),
            rounds: if quick { 1 } else { 3 },
            work: Work::new(DEFAULT_WORK),
            exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("stage-cores")),
        }
    }

    /// The settings the shared options ask for.
    pub fn from_common(common: &CommonArgs) -> Settings {
        let quick = Settings::new(common.quick);
        Settings {
            plan: common.plan(),
            rounds: common.runs.map_or(quick.rounds, usize::from),
            ..quick
        }
    }
}

// ANCHOR: cpu_cases
/// `TASKS` CPU tasks in this thread's hub, a greenlet each: they never
/// wait, so each runs to its end before the next starts.
pub fn one_hub(iterations: u64) -> u64 {
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| stage_hub::spawn(move || work::task(iterations)))
        .collect();
    tasks.into_iter().map(|t| t.join().unwrap_or(0)).sum()
}

/// Run `f` with this thread's blocking detector off: CPU tasks hold their
/// hub on purpose here, and a warning per task would only repeat the lesson.
pub fn holding_on_purpose<T>(f: impl FnOnce() -> T) -> T {
    let threshold = stage_hub::blocking_threshold();
    stage_hub::set_blocking_threshold(None);
    let result = f();
    stage_hub::set_blocking_threshold(threshold);
    result
}

/// The same tasks handed round robin to `hubs`, awaited from this hub.
pub fn many_hubs(hubs: &Hubs, iterations: u64) -> Result<u64, CoresError> {
    let tasks = (0..TASKS as usize)
        .map(|i| {
            hubs.hub(i).spawn(move || {
                // These hubs run CPU tasks and nothing else, so their
                // detector stays off: the hold is reported as the greenlet
                // gives its hub back, after any restore would have run.
                stage_hub::set_blocking_threshold(None);
                work::task(iterations)
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    tasks.into_iter().map(|t| t.join()).sum()
}

/// The same tasks split over `procs` worker processes (this program
/// re-executed), each running its share in its own hub.
pub fn many_processes(exe: &Path, procs: usize, iterations: u64) -> std::io::Result<u64> {
    let procs = procs.max(1) as u64;
    let children = (0..procs)
        .map(|p| {
            let share = TASKS / procs + u64::from(p < TASKS % procs);
            std::process::Command::new(exe)
                .args(cpu_args(share, iterations))
                .stderr(std::process::Stdio::inherit())
                .stdout(std::process::Stdio::piped())
                .spawn()
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut sum = 0;
    for child in children {
        let out = child.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        sum += text.trim().parse::<u64>().map_err(|_| {
            std::io::Error::other(format!(
                "a CPU worker answered {text:?} ({}): is {} this stage's binary?",
                out.status,
                exe.display()
            ))
        })?;
    }
    Ok(sum)
}
// ANCHOR_END: cpu_cases

/// The `cpu` group: one hub (the baseline), N hub threads, N processes.
pub fn cpu_group(n: usize, iterations: u64, exe: PathBuf) -> Group {
    let expected = TASKS * (iterations * (iterations + 1) / 2); // TASKS x func1's sum
    let ops = TASKS * iterations;
    let hubs = Rc::new(Hubs::start(n));
    Group::new("cpu")
        .title(format!(
            "{TASKS} CPU-bound tasks of {} iterations: one hub, {n} hub threads, {n} processes",
            thousands(iterations)
        ))
        .case(
            Case::new(ONE_HUB_CASE, ops, move || {
                holding_on_purpose(|| one_hub(iterations))
            })
            .expect(expected),
        )
        .case(
            Case::new(format!("{n} hub threads, tasks handed round robin"), ops, {
                move || match hubs.as_ref() {
                    Ok(hubs) => many_hubs(hubs, iterations).unwrap_or(0),
                    Err(_) => 0,
                }
            })
            .baseline(ONE_HUB_CASE)
            .expect(expected),
        )
        .case(
            Case::new(format!("{n} processes, a hub each"), ops, move || {
                many_processes(&exe, n, iterations).unwrap_or_else(|e| {
                    eprintln!("{STAGE}: {e}");
                    0
                })
            })
            .baseline(ONE_HUB_CASE)
            .expect(expected),
        )
}

/// The groups the criterion benches run (the same definitions the lesson
/// measures). The process case re-executes the running program, so a binary
/// that runs these groups calls [`crate::main_if_worker`] first.
pub fn groups(quick: bool) -> Vec<Group> {
    let s = Settings::new(quick);
    vec![cpu_group(s.n, s.iterations, s.exe)]
}

// ANCHOR: hand_off
/// Hand `tasks` small jobs to the hubs round robin while a ticker greenlet
/// keeps running in this thread's hub; each job says which thread ran it.
/// Returns the threads' names, in the order the results were joined, and
/// how many times the ticker ticked meanwhile.
pub fn hand_off(hubs: &Hubs, tasks: usize) -> Result<(Vec<String>, u32), CoresError> {
    let ticks = Rc::new(std::cell::Cell::new(0u32));
    let ticker = {
        let ticks = ticks.clone();
        stage_hub::spawn(move || loop {
            stage_hub::sleep(Duration::from_millis(1));
            ticks.set(ticks.get() + 1);
        })
    };
    let handles = (0..tasks)
        .map(|i| {
            hubs.hub(i).spawn(|| {
                stage_hub::sleep(Duration::from_millis(20)); // waits in *that* hub
                std::thread::current().name().unwrap_or("?").to_string()
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let names = handles
        .into_iter()
        .map(|h| h.join())
        .collect::<Result<Vec<_>, _>>()?;
    ticker.kill();
    Ok((names, ticks.get()))
}
// ANCHOR_END: hand_off

/// The lesson's listings, in order; each is also a sub-command of the
/// binary (the doc line of each is its `--help` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum Listing {
    /// CPU-bound tasks: one hub (the sum of their times), N hub threads, N processes.
    Cpu,
    /// Work handed to other hubs and awaited while this hub keeps running.
    HandOff,
    /// The echo server with CPU work per message, served every way, at each client count.
    Echo,
}

impl Listing {
    /// Every listing, in lesson order.
    pub const ALL: [Listing; 3] = [Listing::Cpu, Listing::HandOff, Listing::Echo];

    /// Run this listing, narrated, adding its figures to `report`.
    pub fn run(self, s: &Settings, report: &mut Report) -> Result<(), Box<dyn Error>> {
        let t = Transcript::new(report.output());
        match self {
            Listing::Cpu => {
                t.say(format!(
                    "\n## CPU-bound tasks: one hub, {n} hub threads, {n} processes",
                    n = s.n
                ));
                t.say("(greenlets in one hub take turns: the tasks' times add up)");
                let rows = report.measure(cpu_group(s.n, s.iterations, s.exe.clone()), &s.plan)?;
                let ratio = |prefix: &str| {
                    rows.iter()
                        .find(|r| r.case.contains(prefix) && r.case != ONE_HUB_CASE)
                        .and_then(|r| r.ratio)
                };
                if let (Some(threads), Some(procs)) = (ratio("hub threads"), ratio("processes")) {
                    t.say(format!(
                        "per-core efficiency (speed-up / {n}): {:.0}% with hub threads, {:.0}% with processes",
                        100.0 / threads / s.n as f64,
                        100.0 / procs / s.n as f64,
                        n = s.n
                    ));
                    report.headline(
                        format!(
                            "CPU tasks over {n} hubs / {n} processes vs one hub",
                            n = s.n
                        ),
                        format!("{threads:.2}x / {procs:.2}x the time ({} cores)", s.n),
                        None,
                    );
                }
            }
            Listing::HandOff => {
                t.say(format!(
                    "\n## Handing work to {} other hubs, waiting cooperatively",
                    s.n
                ));
                let hubs = Hubs::start(s.n)?;
                let (names, ticks) = hand_off(&hubs, 2 * s.n)?;
                t.say(format!(
                    "{} jobs of a 20 ms sleep came back from {}",
                    names.len(),
                    names.join(", ")
                ));
                t.say(format!(
                    "meanwhile a greenlet of this thread's hub ticked {ticks} times: waiting for \
                     another hub parks only the waiter"
                ));
            }
            Listing::Echo => echo::echo_listing(s, report)?,
        }
        Ok(())
    }
}

/// Run the whole lesson, narrated, as `cargo run -p stage-cores` does.
pub fn lesson(common: &CommonArgs) -> Result<Report, Box<dyn Error>> {
    run(
        &Settings::from_common(common),
        common.output(),
        &Listing::ALL,
    )
}

/// Run `listings` in order with `settings`, printing to `output`.
pub fn run(
    settings: &Settings,
    output: Output,
    listings: &[Listing],
) -> Result<Report, Box<dyn Error>> {
    let mut report = Report::new(STAGE, output);
    output.say(format!(
        "Stage 5: processes x hub threads x greenlets. This machine offers {} cores \
         (std::thread::available_parallelism); the N of this lesson is {}.",
        cores::count(),
        settings.n
    ));
    for listing in listings {
        listing.run(settings, &mut report)?;
    }
    Ok(report.finish())
}
