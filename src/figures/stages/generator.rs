//! Stage 2: generators. Tables of the three groups, the CPU ratio's spread
//! over repeated runs, and a timeline of the interleaved loops.

use std::error::Error;

use harness::Report;
use serde_json::json;
use stage_generator::{
    cpu_group, interleave, notes_cpu_ratio, Listing, Settings, CALL_CASE, INTERLEAVED_CASE,
    ITERATOR_CASE, NOTES_CPU_SWITCHING_SECONDS, NOTES_PC_SEND_SECONDS, ROUND_TRIP_CASE, SEND_CASE,
};
use stage_serial::{CPU_CASE, FULL_COUNT, NOTES_CPU_SERIAL_SECONDS, NOTES_PC_SERIAL_SECONDS};

use super::{ratio_of, spread, Made, Run, Stage};
use crate::figures::capture::capture;
use crate::figures::results::{num, Results};
use crate::figures::snippets::{count, nanos, ratio, seconds};
use crate::figures::timelines;

pub(super) const STAGE: Stage = Stage {
    name: "stage-generator",
    about: "the lesson, the CPU loops again for their spread, a timeline (seconds)",
    run,
    make,
};

fn run(r: &Run) -> Result<Results, Box<dyn Error>> {
    let settings = Settings::from_common(&r.common());
    let report = stage_generator::run(&Listing::ALL, &settings, r.output())?;
    let mut results = r.results(&report);
    let mut ratios = Vec::new();
    for _ in 0..r.repeats() {
        let mut again = Report::new("stage-generator", r.output());
        let rows = again.measure(cpu_group(settings.count).timed_only(), &settings.plan)?;
        if let Some(row) = rows.iter().find(|x| x.case == INTERLEAVED_CASE) {
            ratios.extend(row.ratio);
        }
    }
    results.extra.insert("cpu_ratio_runs".into(), json!(ratios));
    results.extra.insert("count".into(), json!(settings.count));
    let file = r.folder("generator")?.join("interleave.trace.json");
    capture(
        &file,
        "stage-generator cpu (narrated: 3 iterations)",
        "lesson",
        1_000,
        || {
            interleave::interleaved(3, &interleave::unwatched);
            Ok(())
        },
    )?;
    Ok(results)
}

fn make(m: &Made<'_>) -> Result<(), Box<dyn Error>> {
    let res = m.get("stage-generator")?;
    let mut out = m.out("generator")?;
    for group in ["producer-consumer", "cpu", "switch-cost"] {
        out.table(group, &res.group(group))?;
    }
    let n = res
        .extra
        .get("count")
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0);
    out.value("count", count(n));
    // Producer/consumer.
    out.value(
        "pc_send_ratio",
        ratio(ratio_of(res.row("producer-consumer", SEND_CASE)?)?),
    );
    out.value(
        "pc_iterator_ratio",
        ratio(ratio_of(res.row("producer-consumer", ITERATOR_CASE)?)?),
    );
    // The notes' figures, as the code quotes them.
    out.value(
        "notes_pc_ratio",
        ratio(NOTES_PC_SEND_SECONDS / NOTES_PC_SERIAL_SECONDS),
    );
    // The CPU loops.
    let serial = res.row("cpu", CPU_CASE)?;
    let switching = res.row("cpu", INTERLEAVED_CASE)?;
    out.value("cpu_ratio", ratio(ratio_of(switching)?));
    let runs: Vec<f64> = res
        .extra
        .get("cpu_ratio_runs")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let (median, lo, hi) = spread(runs.clone());
    out.value("cpu_ratio_repeats", runs.len().to_string());
    out.value("cpu_ratio_median", ratio(median));
    out.value("cpu_ratio_min", ratio(lo));
    out.value("cpu_ratio_max", ratio(hi));
    out.value("notes_cpu_ratio", ratio(notes_cpu_ratio()));
    out.value("notes_serial_seconds", seconds(NOTES_CPU_SERIAL_SECONDS));
    out.value(
        "notes_switching_seconds",
        seconds(NOTES_CPU_SWITCHING_SECONDS),
    );
    let (ours_work, ours_total) = (num(serial, "ns_per_op")?, num(switching, "ns_per_op")?);
    // Per iteration: the notes ran 2 x 10,000,000 of them.
    let per_iteration = |s: f64| s * 1e9 / (2 * FULL_COUNT) as f64;
    let (notes_work, notes_total) = (
        per_iteration(NOTES_CPU_SERIAL_SECONDS),
        per_iteration(NOTES_CPU_SWITCHING_SECONDS),
    );
    out.value("serial_per_op", nanos(ours_work));
    out.value("notes_serial_per_op", nanos(notes_work));
    out.value("switch_added_per_op", nanos(ours_total - ours_work));
    out.value("notes_switch_added_per_op", nanos(notes_total - notes_work));
    out.value(
        "notes_over_ours_work",
        format!("{:.0}", notes_work / ours_work),
    );
    // One round trip.
    let trip = res.row("switch-cost", ROUND_TRIP_CASE)?;
    out.value("round_trip", nanos(num(trip, "ns_per_op")?));
    out.value("round_trip_ratio", ratio(ratio_of(trip)?));
    out.value(
        "call",
        nanos(num(res.row("switch-cost", CALL_CASE)?, "ns_per_op")?),
    );
    // A round trip of the interleaved loops serves two iterations.
    let loop_trip = (num(switching, "median_seconds")? - num(serial, "median_seconds")?) * 1e9 / n;
    out.value("loop_round_trip", nanos(loop_trip));
    out.value("loop_serial", seconds(num(serial, "median_seconds")?));
    out.value("loop_switching", seconds(num(switching, "median_seconds")?));
    out.value(
        "notes_next",
        nanos((NOTES_CPU_SWITCHING_SECONDS - NOTES_CPU_SERIAL_SECONDS) * 1e9 / FULL_COUNT as f64),
    );
    out.finish()?;
    // The timeline.
    let rec = trace::read::Recorded::read(&out.path("interleave.trace.json"))?;
    let lanes = timelines::lanes(&rec, &[("main", Some("func2 (main)")), ("func1", None)])?;
    timelines::draw(
        &out.path("interleave.svg"),
        "func1 and func2 take turns: a switch on every iteration (3 each)",
        &rec,
        &lanes,
        timelines::extent(&rec, &lanes),
    )?;
    Ok(())
}
