//! The lesson, in the notes' order: the two listings, then what a switch costs.

use std::error::Error;

use harness::report::human_seconds;
use harness::{CommonArgs, Output, Report};

use crate::cost::{self, DEFAULT_ITERATIONS, NOTES_ITERATIONS, QUICK_ITERATIONS};
use crate::listings;

/// How many iterations the switching listing runs. An unoptimized build
/// runs a tenth of the default (and the lesson says so): its figures are
/// distorted anyway, and the full count would take most of a minute.
pub fn iterations(quick: bool, full: bool) -> u64 {
    match (full, quick) {
        (true, _) => NOTES_ITERATIONS,
        (false, true) => QUICK_ITERATIONS,
        (false, false) if !optimized() => DEFAULT_ITERATIONS / 10,
        (false, false) => DEFAULT_ITERATIONS,
    }
}

fn optimized() -> bool {
    harness::Profile::current().optimized
}

/// Run the eat/play listing and narrate it.
pub fn eat_play(out: &Output) -> Result<(), Box<dyn Error>> {
    out.say("\n## eat/play: switch by hand, the name passed on the first switch");
    for line in listings::eat_and_play("egon")? {
        out.say(format!("  {line}"));
    }
    Ok(())
}

/// Run the test1/test2 listing and narrate it.
pub fn test1_test2(out: &Output) -> Result<(), Box<dyn Error>> {
    out.say("\n## test1/test2: a greenlet nothing switches back to never finishes");
    for line in listings::test1_and_test2()? {
        out.say(format!("  {line}"));
    }
    out.say("  (78 was never printed: test2 never resumed after switching to gr1)");
    Ok(())
}

/// Measure the switching listing; record its headline.
pub fn switching(report: &mut Report, common: &CommonArgs, n: u64) -> Result<(), Box<dyn Error>> {
    report.output().say(format!(
        "\n## switching: f1 and f2, back to back vs a switch on every iteration ({n} each)"
    ));
    let rows = report.measure(cost::switching_group(n), &common.plan())?;
    let find = |case: &str| {
        rows.iter()
            .find(|r| r.case == case && r.source == "measured")
    };
    if let (Some(seq), Some(sw)) = (
        find(cost::IN_TURN_CASE),
        find(cost::SWITCH_PER_ITERATION_CASE),
    ) {
        let ratio = sw.median_seconds / seq.median_seconds;
        let per_switch = (sw.median_seconds - seq.median_seconds) * 1e9 / (2 * n) as f64;
        report.headline(
            "a switch per iteration slows CPU work",
            format!("{ratio:.1}x slower, {per_switch:.1} ns added per switch"),
            cpython_pair(
                &rows,
                &stage_generator::cpython(cost::IN_TURN_CASE),
                cost::CPYTHON_SWITCHING,
            ),
        );
    }
    Ok(())
}

/// Measure the switch-cost table; record its headline.
pub fn switch_cost(report: &mut Report, common: &CommonArgs) -> Result<(), Box<dyn Error>> {
    report
        .output()
        .say("\n## switch cost: one round trip, ours beside what else a Rust user could pick");
    let (round_trips, lives) = cost::cost_counts(common.quick);
    let rows = report.measure(cost::switch_cost_group(round_trips, lives), &common.plan())?;
    let find = |case: &str| {
        rows.iter()
            .find(|r| r.case == case && r.source == "measured")
    };
    if let (Some(raw), Some(ours)) = (find("raw context resume"), find("greenlet switch")) {
        let instructions = match (ours.instructions_per_op(), raw.instructions_per_op()) {
            (Some(ours), Some(raw)) => format!(
                "; {} vs {} instructions",
                harness::report::human_count(ours),
                harness::report::human_count(raw)
            ),
            _ => String::new(),
        };
        report.headline(
            "greenlet switch round trip vs raw context",
            format!(
                "{:.1} ns vs {:.1} ns ({:.2}x){instructions}",
                ours.ns_per_op,
                raw.ns_per_op,
                ours.ns_per_op / raw.ns_per_op
            ),
            rows.iter()
                .find(|r| r.case == cost::CPYTHON_ROUND_TRIP)
                .map(|r| {
                    format!(
                        "greenlet: {} per round trip ({})",
                        human_seconds(r.ns_per_op / 1e9),
                        r.origin()
                    )
                }),
        );
    }
    if let (Some(ours), Some(noop), Some(traced)) = (
        find(cost::GREENLET_CASE),
        find(cost::NOOP_HOOK_CASE),
        find(cost::TRACED_CASE),
    ) {
        report.headline(
            "a round trip watched by the switch hook",
            format!(
                "{:.1} ns with no hook, {:.1} ns with a no-op hook, {:.1} ns recorded by --trace",
                ours.ns_per_op, noop.ns_per_op, traced.ns_per_op
            ),
            None,
        );
    }
    if let (Some(ours), Some(life)) = (find(cost::GREENLET_CASE), find(cost::LIFE_CASE)) {
        report.headline(
            "a greenlet's whole life vs one switch",
            format!(
                "{:.1} ns ({:.1}x a round trip)",
                life.ns_per_op,
                life.ns_per_op / ours.ns_per_op
            ),
            None,
        );
    }
    Ok(())
}

/// CPython's `case` over `base` among `rows`, for a headline:
/// `"5.78x, 57.7 s vs 9.99 s (quoted: CPython greenlet, the notes)"`.
fn cpython_pair(rows: &[harness::Row], base: &str, case: &str) -> Option<String> {
    let base = rows.iter().find(|r| r.case == base)?;
    let case = rows.iter().find(|r| r.case == case)?;
    Some(format!(
        "{:.2}x, {} vs {} ({})",
        case.ns_per_op / base.ns_per_op,
        human_seconds(case.median_seconds),
        human_seconds(base.median_seconds),
        case.origin()
    ))
}

/// The whole lesson, narrated in order; `full` runs the notes' 100,000,000
/// iterations.
pub fn run(common: &CommonArgs, full: bool) -> Result<Report, Box<dyn Error>> {
    let out = common.output();
    out.say("Stage 3: greenlets, switched by hand");
    if !optimized() && !common.quick && !full {
        out.say(format!(
            "This is a debug build: counts are cut to a tenth ({} iterations) and every \
             figure is distorted. Add --release for representative figures.",
            iterations(false, false)
        ));
    }
    eat_play(&out)?;
    test1_test2(&out)?;
    let mut report = Report::new("stage-greenlet", out);
    switching(&mut report, common, iterations(common.quick, full))?;
    switch_cost(&mut report, common)?;
    Ok(report.finish())
}
