//! The switch-cost table's instruction counts: counted under callgrind when
//! valgrind is installed, and a footnote saying why not when it is not.

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

fn stage(args: &[&str], valgrind: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stage-greenlet"));
    command.args(args);
    if let Some(valgrind) = valgrind {
        command.env(harness::count::VALGRIND_ENV, valgrind);
    }
    // `--quick --runs 1` takes seconds even when callgrind counts it (some
    // 50 times slower than a plain run) on a loaded machine; ten minutes
    // mean it hung.
    test_support::output_within(&mut command, b"", Duration::from_secs(10 * 60))
}

fn valgrind_installed() -> bool {
    test_support::try_output_within(
        Command::new("valgrind").arg("--version"),
        b"",
        Duration::from_secs(60),
    )
    .is_ok_and(|o| o.status.success())
}

/// The measured rows of `switch-cost --quick --json`, and its stderr.
fn switch_cost(valgrind: Option<&str>) -> (Vec<Value>, String) {
    let out = stage(
        &["switch-cost", "--quick", "--json", "--runs", "1"],
        valgrind,
    );
    test_support::assert_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let records = harness::json::read_report(&String::from_utf8_lossy(&out.stdout))
        .unwrap_or_else(|e| panic!("{e}"));
    let rows = records
        .into_iter()
        .filter(|r| r["record"] == "row" && r["source"] == "measured")
        .collect();
    (rows, stderr)
}

fn instructions(rows: &[Value], case: &str) -> Option<f64> {
    rows.iter()
        .find(|r| r["case"] == case)
        .unwrap_or_else(|| panic!("no row for {case}"))
        .get(harness::report::INSTRUCTIONS_PER_OP)
        .and_then(Value::as_f64)
}

#[test]
fn with_valgrind_every_case_has_its_instructions_counted_the_same_each_run() {
    if !valgrind_installed() {
        eprintln!("valgrind is not installed: nothing to count with");
        return;
    }
    let (rows, stderr) = switch_cost(None);
    assert!(!stderr.contains("not counted"), "{stderr}");
    let count = |case| instructions(&rows, case).unwrap_or_else(|| panic!("{case}: {stderr}"));
    let raw = count("raw context resume");
    let ours = count("greenlet switch");
    // Two `jump_fcontext`s of 24 instructions each are the floor of a round
    // trip through `context`, whatever surrounds them (tests run a debug
    // build, so everything around them costs more than in the lesson's).
    assert!((48.0..1000.0).contains(&raw), "raw context: {raw}");
    assert!(
        ours > raw,
        "a greenlet round trip is a raw one plus bookkeeping"
    );
    assert!(count("greenlet switch, no-op hook") > ours);
    // Deterministic: a second run counts the same (timings would not).
    let (again, _) = switch_cost(None);
    for case in ["raw context resume", "greenlet switch"] {
        let (first, second) = (count(case), instructions(&again, case).unwrap_or(0.0));
        assert!(
            (first - second).abs() < 0.5,
            "{case}: {first} then {second}"
        );
    }
}

#[test]
fn without_valgrind_the_table_says_why_and_nothing_else_changes() {
    let (rows, stderr) = switch_cost(Some("off"));
    assert!(rows.len() >= 6, "{rows:?}");
    assert!(instructions(&rows, "greenlet switch").is_none());
    assert!(
        stderr.contains("instructions not counted: HARNESS_VALGRIND=off"),
        "{stderr}"
    );

    let missing = "/nonexistent/valgrind";
    let out = stage(&["switch-cost", "--quick", "--runs", "1"], Some(missing));
    test_support::assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("instr/op"), "{stdout}");
    let note = stdout
        .lines()
        .find(|l| l.contains("instructions not counted"))
        .unwrap_or_else(|| panic!("no footnote in\n{stdout}"));
    assert!(
        note.contains(missing) && note.contains("install valgrind"),
        "{note}"
    );
}
