//! Stage 1: the serial baselines. Tables of the four groups, the values
//! the chapter and the introduction state.

use std::error::Error;

use stage_serial::{
    Listing, Settings, CPU_CASE, NOTES_CPU_SERIAL_SECONDS, PC_CASE, SLEEPS_CASE, TASKS_CASE,
};

use super::{Made, Run, Stage};
use crate::figures::results::num;
use crate::figures::snippets::{nanos, seconds, source_words};

pub(super) const STAGE: Stage = Stage {
    name: "stage-serial",
    about: "the baselines, with the notes' naps (about a quarter of a minute)",
    run,
    make,
};

fn run(r: &Run) -> Result<crate::figures::results::Results, Box<dyn Error>> {
    let settings = Settings::from_common(&r.common());
    let report = stage_serial::run(&Listing::ALL, &settings, r.output())?;
    Ok(r.results(&report))
}

fn make(m: &Made<'_>) -> Result<(), Box<dyn Error>> {
    let res = m.get("stage-serial")?;
    let mut out = m.out("serial")?;
    for group in ["cpu", "producer-consumer", "sleeps", "tasks"] {
        out.table(group, &res.group(group))?;
    }
    let cpu = res.row("cpu", CPU_CASE)?;
    out.value("cpu_per_op", nanos(num(cpu, "ns_per_op")?));
    // The notes' own figure, as the code quotes it; CPython's row beside
    // ours is measured here when python3 can run the listing.
    out.value("notes_cpu_seconds", seconds(NOTES_CPU_SERIAL_SECONDS));
    let python = res.cpython("cpu", &stage_serial::cpython(CPU_CASE))?;
    out.value(
        "cpython_over_ours",
        format!("{:.0}", num(python, "ns_per_op")? / num(cpu, "ns_per_op")?),
    );
    out.value("cpython_source", source_words(python));
    let pc = res.row("producer-consumer", PC_CASE)?;
    out.value("pc_per_op", nanos(num(pc, "ns_per_op")?));
    out.value(
        "sleeps_seconds",
        seconds(num(res.row("sleeps", SLEEPS_CASE)?, "median_seconds")?),
    );
    out.value(
        "tasks_seconds",
        seconds(num(res.row("tasks", TASKS_CASE)?, "median_seconds")?),
    );
    out.finish()
}
