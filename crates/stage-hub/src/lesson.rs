//! The lesson: the notes' gevent listings in Rust, the cases that time
//! them, and the order `cargo run -p stage-hub` runs them in.
//!
//! Listings never print directly: they say their lines through a
//! [`Transcript`] (shown live, kept for the tests). Spawned greenlets need
//! `'static` closures, so listings share the transcript through an `Rc`.

use std::cell::RefCell;
use std::error::Error;
use std::rc::Rc;
use std::time::{Duration, Instant};

use harness::cpython::Script;
use harness::report::{human_bytes, human_seconds};
use harness::{rss, Case, CommonArgs, Group, Outcome, Output, Plan, Quote, Report, Row};
use stage_serial::waits::{NAPS, TASKS, TASK_SECONDS};
use stage_serial::{Scale, Transcript};

use crate::hub::{
    current_name, joinall, set_blocking_threshold, set_diagnostic_hook, sleep, sleep_until, spawn,
    yield_now, Builder, Handle, HubError, JoinAll,
};

/// The stage's name, as reports and the tour show it.
pub const STAGE: &str = "stage-hub";

/// How many greenlets sleep at once in the memory figure.
pub const SLEEPERS: usize = 30_000;

/// How big this run is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Factor applied to the notes' waits.
    pub scale: Scale,
    /// Warm-up and timed runs per case.
    pub plan: Plan,
    /// Spawn + join and `yield_now` repetitions per timed run.
    pub count: u64,
    /// Greenlets asleep at once in the memory figure.
    pub sleepers: usize,
    /// How big the soak is (`soak`, not part of the whole lesson).
    pub soak: crate::soak::SoakSettings,
}

impl Settings {
    /// The notes' durations, or the `--quick` ones (a hundredth of the waits).
    pub fn new(quick: bool) -> Settings {
        Settings {
            scale: if quick { Scale::QUICK } else { Scale::FULL },
            plan: if quick { Plan::quick() } else { Plan::full() },
            count: if quick { 20_000 } else { 200_000 },
            sleepers: SLEEPERS,
            soak: crate::soak::SoakSettings::new(quick),
        }
    }

    /// The settings the shared options (and `--scale`) ask for.
    pub fn from_common(common: &CommonArgs, scale: Option<Scale>) -> Settings {
        let mut s = Settings::new(common.quick);
        s.plan = common.plan();
        if let Some(scale) = scale {
            s.scale = scale;
        }
        s
    }
}

// ANCHOR: sleepers
/// The three sleepers of the notes (2 s, 3 s, 5 s), each in its own
/// greenlet: the naps overlap, so all three are done when the longest is.
/// Returns how many woke (3).
pub fn sleepers(scale: Scale, t: &Rc<Transcript>) -> Result<u64, HubError> {
    let start = Instant::now();
    let naps: Vec<Handle<u64>> = NAPS
        .iter()
        .map(|nap| {
            let (t, nap) = (t.clone(), *nap);
            spawn(move || {
                t.say(format!("{}: falls asleep for {} s", nap.name, nap.seconds));
                sleep(scale.of(nap.seconds)); // the hub's sleep: the others run meanwhile
                t.say(format!("{}: wakes up", nap.name));
                1
            })
        })
        .collect();
    joinall(&naps, JoinAll::new())?;
    let woke = naps.into_iter().map(Handle::join).sum::<Result<u64, _>>()?;
    t.say(format!(
        "all {woke} woke after {} (the longest nap is {}, the three add up to {})",
        human_seconds(start.elapsed().as_secs_f64()),
        human_seconds(scale.of(5.0).as_secs_f64()),
        human_seconds(scale.of(10.0).as_secs_f64()),
    ));
    Ok(woke)
}
// ANCHOR_END: sleepers

// ANCHOR: eat_play
/// eat and play, waiting with the hub's [`sleep`]: while eat waits, play
/// runs, so their lines interleave. Returns how many greenlets finished (2).
pub fn eat_play(scale: Scale, t: &Rc<Transcript>) -> Result<u64, HubError> {
    let (te, tp) = (t.clone(), t.clone());
    let eat = spawn(move || {
        te.say("eat food 1");
        sleep(scale.of(2.0));
        te.say("eat food 2");
    });
    let play = spawn(move || {
        tp.say("play 1");
        sleep(scale.of(1.0));
        tp.say("play 2");
    });
    joinall(&[eat, play], JoinAll::new())?;
    t.say("main");
    Ok(2)
}
// ANCHOR_END: eat_play

// ANCHOR: eat_play_blocking
/// The notes' eat and play waiting a second each with `std::thread::sleep`,
/// joined one after the other: the whole thread blocks, the hub cannot run,
/// so they run one after the other (eating1, eating2, playing1, playing2).
/// The blocking detector (threshold scaled with the sleeps) names each
/// culprit. Returns how many warnings it gave.
pub fn eat_play_blocking(scale: Scale, t: &Rc<Transcript>) -> Result<u64, HubError> {
    let warnings = Rc::new(RefCell::new(0u64));
    let (tw, count) = (t.clone(), warnings.clone());
    set_diagnostic_hook(move |d| {
        *count.borrow_mut() += 1;
        tw.say(format!("  warning: {d}"));
    });
    set_blocking_threshold(Some(scale.of(0.1)));
    let (te, tp) = (t.clone(), t.clone());
    let eat = spawn(move || {
        te.say("eating1");
        std::thread::sleep(scale.of(1.0)); // blocks the thread: nobody else runs
        te.say("eating2");
    });
    let play = spawn(move || {
        tp.say("playing1");
        std::thread::sleep(scale.of(1.0));
        tp.say("playing2");
    });
    let joined = eat.join().and_then(|()| play.join());
    crate::hub::reset_diagnostic_hook();
    set_blocking_threshold(Some(crate::hub::DEFAULT_BLOCKING_THRESHOLD));
    joined?;
    let warned = *warnings.borrow();
    Ok(warned)
}
// ANCHOR_END: eat_play_blocking

// ANCHOR: eat_play_cooperative
/// The same two with the hub's [`sleep`]: each sleep lets the other run, so
/// their lines alternate (eating1, playing1, eating2, playing2), and both
/// are done in one second, not two. Returns the seconds it took.
pub fn eat_play_cooperative(scale: Scale, t: &Rc<Transcript>) -> Result<f64, HubError> {
    let start = Instant::now();
    let (te, tp) = (t.clone(), t.clone());
    let eat = spawn(move || {
        te.say("eating1");
        sleep(scale.of(1.0)); // the hub's sleep: play runs meanwhile
        te.say("eating2");
    });
    let play = spawn(move || {
        tp.say("playing1");
        sleep(scale.of(1.0));
        tp.say("playing2");
    });
    eat.join()?; // wait for eat to end
    play.join()?;
    Ok(start.elapsed().as_secs_f64())
}
// ANCHOR_END: eat_play_cooperative

// ANCHOR: names
/// Each greenlet says its own name: `Greenlet-N` in spawn order (counted per
/// thread), our twin of the notes' `DummyThread-1`. Returns the names.
pub fn names(scale: Scale, t: &Rc<Transcript>) -> Result<Vec<String>, HubError> {
    let (te, tp) = (t.clone(), t.clone());
    let eat = spawn(move || {
        let me = current_name();
        te.say(format!("{me}: eat food 1"));
        sleep(scale.of(2.0));
        te.say(format!("{me}: eat food 2"));
        me
    });
    let play = spawn(move || {
        let me = current_name();
        tp.say(format!("{me}: play 1"));
        sleep(scale.of(1.0));
        tp.say(format!("{me}: play 2"));
        me
    });
    let named = Builder::new()
        .name("named by its builder")
        .spawn(current_name)?;
    let names = vec![eat.join()?, play.join()?, named.join()?];
    t.say(format!("{}: main", current_name()));
    Ok(names)
}
// ANCHOR_END: names

// ANCHOR: tasks
/// One of the notes' tasks: wait half a second (scaled), then say so.
fn task(i: u64, scale: Scale, t: &Transcript) {
    sleep(scale.of(TASK_SECONDS));
    t.say(format!("Task {i} done"));
}

/// Ten tasks one after another: their waits add up. Returns how many ran.
pub fn synchronous(scale: Scale, t: &Rc<Transcript>) -> u64 {
    for i in 0..TASKS {
        task(i, scale, t);
    }
    TASKS
}

/// Ten tasks spawned, then joined: their waits overlap. Returns how many ran.
pub fn asynchronous(scale: Scale, t: &Rc<Transcript>) -> Result<u64, HubError> {
    let tasks: Vec<Handle<()>> = (0..TASKS)
        .map(|i| {
            let t = t.clone();
            spawn(move || task(i, scale, &t))
        })
        .collect();
    joinall(&tasks, JoinAll::new().stop_at_first_failure())?;
    t.say("DONE");
    Ok(TASKS)
}
// ANCHOR_END: tasks

// ANCHOR: costs
/// Spawn `n` trivial greenlets one at a time, joining each: the cost of the
/// whole life of a greenlet (stack from the pool, first switch, return,
/// wake the joiner). Returns the sum of their values.
pub fn spawn_join(n: u64) -> Result<u64, HubError> {
    let mut sum = 0;
    for i in 0..n {
        sum += spawn(move || i).join()?;
    }
    Ok(sum)
}

/// `n` round trips through the hub: each `yield_now` switches to the hub,
/// which finds nothing else ready and switches straight back.
pub fn yields(n: u64) -> u64 {
    for _ in 0..n {
        yield_now();
    }
    n
}
// ANCHOR_END: costs

/// What putting `n` greenlets to sleep at once cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SleepersRun {
    /// Creating the `n` greenlets (they do not run yet).
    pub spawn: Duration,
    /// Their first run, up to each one parking in `sleep_until`.
    pub park: Duration,
    /// From their common deadline until every one had woken and been joined.
    pub wake: Duration,
    /// Resident memory added while all `n` slept (0 where `/proc` is missing).
    pub rss_bytes: u64,
    /// How many woke.
    pub woke: u64,
}

// ANCHOR: many_sleepers
/// `n` greenlets asleep at once: spawn them, let each park until a common
/// deadline, measure resident memory while they all sleep, then wake and
/// join them. Greenlet creation errors (the kernel's map limit) come back
/// as [`HubError::Spawn`], which says how to raise `vm.max_map_count`.
pub fn many_sleepers(n: usize) -> Result<SleepersRun, HubError> {
    let before = rss::current_bytes().unwrap_or(0);
    let wake_at = Rc::new(std::cell::Cell::new(None::<Instant>));
    let t0 = Instant::now();
    let handles = (0..n)
        .map(|_| {
            let wake_at = wake_at.clone();
            Builder::new().spawn(move || {
                if let Some(at) = wake_at.get() {
                    sleep_until(at);
                }
                1u64
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let spawned = t0.elapsed();
    // None of them has run yet, so the deadline can still be set for all.
    let margin = spawned.max(Duration::from_millis(20)) * 4;
    wake_at.set(Some(Instant::now() + margin));
    let t1 = Instant::now();
    yield_now(); // every new greenlet runs once and parks; then we come back
    let park = t1.elapsed();
    let rss_bytes = rss::current_bytes().unwrap_or(0).saturating_sub(before);
    joinall(&handles, JoinAll::new())?;
    let deadline = wake_at.get().unwrap_or(t1);
    let wake = deadline.elapsed();
    let woke = handles
        .into_iter()
        .map(Handle::join)
        .sum::<Result<u64, _>>()?;
    Ok(SleepersRun {
        spawn: spawned,
        park,
        wake,
        rss_bytes,
        woke,
    })
}
// ANCHOR_END: many_sleepers

/// The three naps overlapped, against stage 1's serial naps.
pub fn sleeps_group(scale: Scale, output: Output) -> Group {
    Group::new("sleeps")
        .title(format!(
            "The notes' naps of 2 s, 3 s and 5 s (scale {scale})"
        ))
        .case(stage_serial::sleeps_case(scale, Output::silent()))
        .case(
            Case::new(
                "hub: the three naps overlap",
                NAPS.len() as u64,
                move || {
                    let t = Rc::new(Transcript::new(output));
                    sleepers(scale, &t).unwrap_or_else(|e| fail(&t, e))
                },
            )
            .baseline(stage_serial::SLEEPS_CASE)
            .expect(NAPS.len() as u64)
            .waits(),
        )
        .cpython(
            Script::new("gevent_naps.py", GEVENT_NAPS_PY)
                .needs("gevent")
                .arg(scale.factor())
                .arg(1) // one run, as our wait cases take by default
                .row("naps", GEVENT_NAPS_CASE, None),
        )
        // The notes' gevent run, at their full scale (2 s, 3 s, 5 s).
        .quote(Quote::new(
            "CPython gevent, the notes, at scale 1",
            GEVENT_NAPS_CASE,
            5.005_439_043_045_044,
            NAPS.len() as u64,
        ))
}

/// Our Python script of the naps listing with gevent (`python/gevent_naps.py`).
pub const GEVENT_NAPS_PY: &str = include_str!("../python/gevent_naps.py");

/// CPython's row of the naps group.
pub const GEVENT_NAPS_CASE: &str = "gevent: the three naps overlap (CPython)";

/// Name of the hub's one-after-another tasks case.
pub const SYNC_CASE: &str = "hub: 10 tasks one after another";

/// Ten tasks one after another vs spawned and joined.
pub fn tasks_group(scale: Scale, output: Output) -> Group {
    Group::new("tasks")
        .title(format!(
            "Ten tasks of 0.5 s: synchronous vs asynchronous (scale {scale})"
        ))
        .case(
            Case::new(SYNC_CASE, TASKS, move || {
                let t = Rc::new(Transcript::new(output));
                t.say("Synchronous:");
                synchronous(scale, &t)
            })
            .expect(TASKS)
            .waits(),
        )
        .case(
            Case::new("hub: 10 tasks spawned, then joined", TASKS, move || {
                let t = Rc::new(Transcript::new(output));
                t.say("Asynchronous:");
                asynchronous(scale, &t).unwrap_or_else(|e| fail(&t, e))
            })
            .baseline(SYNC_CASE)
            .expect(TASKS)
            .waits(),
        )
}

/// Name of the spawn + join case.
pub const SPAWN_JOIN_CASE: &str = "spawn + join a trivial greenlet";

/// What the hub's machinery costs per operation.
pub fn costs_group(n: u64) -> Group {
    Group::new(COSTS_GROUP)
        .title("What the hub costs")
        // Instructions do not move with the machine's load as nanoseconds
        // do: the table counts them too where valgrind is installed.
        .count_instructions()
        .case(
            Case::new(SPAWN_JOIN_CASE, n, move || spawn_join(n).unwrap_or(0))
                .expect(n * (n.saturating_sub(1)) / 2),
        )
        .case(Case::new(YIELD_CASE, n, move || yields(n)).expect(n))
}

/// The `yield_now` row of [`costs_group`].
pub const YIELD_CASE: &str = "yield_now round trip (main -> hub -> main)";

/// The name of [`costs_group`].
pub const COSTS_GROUP: &str = "hub-costs";

/// The groups this crate counts instructions of, by name, at `scale` (see
/// `harness::count`): the binary serves them to its counting child.
pub fn counted_group(name: &str, scale: u64) -> Option<Group> {
    (name == COSTS_GROUP).then(|| costs_group(COUNTED_OPS * scale))
}

/// Operations per counted run at scale 1 (see [`counted_group`]).
const COUNTED_OPS: u64 = 2_000;

/// The 30,000 sleepers as one case (for the benches): spawn, sleep, wake, join.
pub fn sleepers_group(n: usize) -> Group {
    Group::new("sleepers")
        .title(format!("{n} greenlets asleep at once"))
        .case(
            Case::new(
                format!("{n} greenlets: spawn, sleep, wake, join"),
                n as u64,
                move || match many_sleepers(n) {
                    Ok(run) => Outcome::with_rss(run.woke, run.rss_bytes),
                    Err(_) => Outcome::from(0u64),
                },
            )
            .expect(n as u64),
        )
}

fn fail(t: &Transcript, e: HubError) -> u64 {
    t.say(format!("error: {e}"));
    0
}

/// The groups the criterion benches run (the same definitions the lesson
/// measures; the notes' sleeps are marked as waits, which benches skip).
pub fn groups(quick: bool) -> Vec<Group> {
    let s = Settings::new(quick);
    vec![
        sleeps_group(s.scale, Output::silent()),
        tasks_group(s.scale, Output::silent()),
        costs_group(s.count),
        sleepers_group(s.sleepers),
    ]
}

/// The lesson's listings, in order; each is also a sub-command of the
/// binary (the doc line of each is its `--help` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum Listing {
    /// Three naps (2 s, 3 s, 5 s) in three greenlets: done in ~5 s, not 10.
    Sleepers,
    /// eat and play waiting with the hub's sleep: their lines interleave.
    EatPlay,
    /// eat and play waiting with std::thread::sleep: serial, and the blocking detector's warning.
    Blocking,
    /// The same with the hub's sleep: eating1, playing1, eating2, playing2, in one second.
    Cooperative,
    /// Each greenlet prints its own name (Greenlet-1, …).
    Names,
    /// Ten 0.5 s tasks: one after another (~5 s) vs spawned and joined (~0.5 s).
    Tasks,
    /// What spawn + join and a yield_now round trip cost.
    Costs,
    /// 30,000 greenlets asleep at once: spawn and wake times, resident memory.
    Many,
    /// The soak: a million waits ended early, a thousand hubs ended with greenlets waiting; memory and descriptors before and after.
    Soak,
}

impl Listing {
    /// Every listing of the lesson, in order (the soak is run on its own).
    pub const ALL: [Listing; 8] = [
        Listing::Sleepers,
        Listing::EatPlay,
        Listing::Blocking,
        Listing::Cooperative,
        Listing::Names,
        Listing::Tasks,
        Listing::Costs,
        Listing::Many,
    ];

    /// Run this listing, narrated, adding its figures to `report`.
    pub fn run(self, s: &Settings, report: &mut Report) -> Result<(), Box<dyn Error>> {
        let output = report.output();
        let t = Rc::new(Transcript::new(output));
        let scale = s.scale;
        match self {
            Listing::Sleepers => {
                t.say("\n## Three naps in three greenlets: the waits overlap");
                t.say(format!(
                    "(stage 1's serial naps run first, quietly, as the baseline: {})",
                    human_seconds(scale.of(10.0).as_secs_f64())
                ));
                report.measure(sleeps_group(scale, output), &s.plan)?;
                let hub = report
                    .row("sleeps", "hub: the three naps overlap")
                    .map(|r| r.median_seconds);
                let serial = report
                    .row("sleeps", stage_serial::SLEEPS_CASE)
                    .map(|r| r.median_seconds);
                if let (Some(hub), Some(serial)) = (hub, serial) {
                    report.headline(
                        "naps of 2 s + 3 s + 5 s overlap in greenlets",
                        format!(
                            "{} against {} serially (the notes' waits x {scale})",
                            human_seconds(hub),
                            human_seconds(serial)
                        ),
                        report.cpython_row("sleeps", GEVENT_NAPS_CASE).map(|r| {
                            format!(
                                "{} with gevent ({})",
                                human_seconds(r.median_seconds),
                                r.origin()
                            )
                        }),
                    );
                }
            }
            Listing::EatPlay => {
                t.say("\n## eat and play, waiting with the hub's sleep");
                eat_play(scale, &t)?;
            }
            Listing::Blocking => {
                t.say("\n## eating and playing, waiting with std::thread::sleep (not the hub's)");
                let warned = eat_play_blocking(scale, &t)?;
                t.say(format!(
                    "the blocking detector warned {warned} time(s): call the hub-aware function, \
                     there is no monkey patch in Rust"
                ));
            }
            Listing::Cooperative => {
                t.say("\n## eating and playing, waiting with the hub's sleep");
                let took = eat_play_cooperative(scale, &t)?;
                t.say(format!(
                    "both done in {} (one nap of {}, not two)",
                    human_seconds(took),
                    human_seconds(scale.of(1.0).as_secs_f64())
                ));
            }
            Listing::Names => {
                t.say("\n## Each greenlet knows its name");
                names(scale, &t)?;
            }
            Listing::Tasks => {
                t.say("\n## Ten tasks: synchronous vs asynchronous");
                report.measure(tasks_group(scale, output), &s.plan)?;
            }
            Listing::Costs => {
                t.say("\n## What the hub costs");
                report.measure(costs_group(s.count), &s.plan)?;
                if let Some(row) = report.row("hub-costs", SPAWN_JOIN_CASE) {
                    let ns = row.ns_per_op;
                    report.headline(
                        "spawn + join of a trivial greenlet",
                        human_seconds(ns / 1e9),
                        None,
                    );
                }
            }
            Listing::Soak => {
                t.say("\n## The soak: nothing left behind");
                crate::soak::run(s.soak, report)?;
            }
            Listing::Many => {
                t.say(format!("\n## {} greenlets asleep at once", s.sleepers));
                let rows = sleepers_rows(s.sleepers, &s.plan)?;
                if let Some(per) = rows.iter().find_map(|r| r.rss_bytes_per_op) {
                    report.headline(
                        format!("resident memory per sleeping greenlet ({})", s.sleepers),
                        human_bytes(per as u64),
                        None,
                    );
                }
                report.push_rows(
                    Some(&format!("{} greenlets asleep at once", s.sleepers)),
                    rows,
                );
            }
        }
        Ok(())
    }
}

/// Run [`many_sleepers`] by `plan` and turn the medians into report rows:
/// spawn, park, wake, each per greenlet, with resident memory on the park row.
pub fn sleepers_rows(n: usize, plan: &Plan) -> Result<Vec<Row>, HubError> {
    for _ in 0..plan.warmup {
        many_sleepers(n)?;
    }
    let mut runs = Vec::with_capacity(plan.runs);
    for _ in 0..plan.runs.max(1) {
        runs.push(many_sleepers(n)?);
    }
    let median = |pick: fn(&SleepersRun) -> Duration| {
        let mut v: Vec<Duration> = runs.iter().map(pick).collect();
        v.sort_unstable();
        v[v.len() / 2]
    };
    let rss_bytes = runs.iter().map(|r| r.rss_bytes).max().unwrap_or(0);
    let row = |case: String, d: Duration, rss: Option<u64>| Row {
        runs: runs.len(),
        rss_bytes: rss,
        rss_bytes_per_op: rss.map(|b| b as f64 / n as f64),
        ..Row::measured(STAGE, "sleepers", &case, n as u64, d.as_secs_f64())
    };
    let rss = (rss_bytes > 0).then_some(rss_bytes);
    Ok(vec![
        row(format!("spawn {n} greenlets"), median(|r| r.spawn), None),
        row(
            format!("run each until it parks in sleep ({n} asleep)"),
            median(|r| r.park),
            rss,
        ),
        row(
            format!("wake all {n} and join them"),
            median(|r| r.wake),
            None,
        ),
    ])
}

/// Run the whole lesson, narrated, as `cargo run -p stage-hub` does.
pub fn lesson(common: &CommonArgs) -> Result<Report, Box<dyn Error>> {
    run(
        &Settings::from_common(common, None),
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
        "Stage 4: the hub. Greenlets switch by themselves whenever one waits (scale {}).",
        settings.scale
    ));
    for listing in listings {
        listing.run(settings, &mut report)?;
    }
    if listings == Listing::ALL {
        // Part 2: the echo server and the crawler (lesson_net.rs).
        crate::lesson_net::run(settings.scale.factor() < 0.1, &mut report)?;
    }
    Ok(report.finish())
}
