//! `--trace FILE`: the timeline a listing records is the lesson's.
//!
//! Each test runs a listing with `--trace`, reads the Chrome trace-event
//! file back (serde_json, through `trace::read`) and checks the order of
//! events the notes describe.

use std::time::Duration;

use trace::read::Recorded;

const BIN: &str = env!("CARGO_BIN_EXE_stage-greenlet");

/// How long one run of the binary may take before the test calls it hung.
const HUNG: Duration = Duration::from_secs(300);

/// Run `stage-greenlet ARGS --trace FILE`, which must say it wrote FILE,
/// and read FILE back.
fn traced(args: &[&str]) -> Recorded {
    let (recorded, out) = test_support::traced(BIN, args, HUNG);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("events written to"), "{stderr}");
    recorded
}

#[test]
fn eat_and_play_take_turns_in_the_notes_order() {
    let r = traced(&["eat-play"]);
    let (g1, g2) = (r.track("g1").unwrap(), r.track("g2").unwrap());
    // Every slice g1 or g2 ran because something switched to it (not the
    // kill at the end): eat 1, play 1, eat 2, play 2.
    let turns: Vec<&str> = r
        .runs
        .iter()
        .filter(|s| (s.track == g1 || s.track == g2) && s.entered_by() != "throw")
        .map(|s| r.name_of(s.track))
        .collect();
    assert_eq!(turns, ["g1", "g2", "g1", "g2"]);
    // play returns to main; eat, left suspended, is killed when dropped.
    let last_g1 = r.slices_of(g1).last().copied().unwrap();
    assert_eq!(last_g1.entered_by(), "throw");
    assert_eq!(r.marks_of(g2, "ends").len(), 1);
}

#[test]
fn nothing_resumes_test2_after_gr1_ends_so_78_never_runs() {
    let r = traced(&["test1-test2"]);
    let (gr1, gr2) = (r.track("gr1").unwrap(), r.track("gr2").unwrap());
    let gr1_ends = r.marks_of(gr1, "ends")[0].at;
    let after: Vec<&str> = r
        .slices_of(gr2)
        .iter()
        .filter(|s| s.start >= gr1_ends)
        .map(|s| s.entered_by())
        .collect();
    // gr2 runs once more, but only to be unwound by the kill: no switch
    // ever resumes it at the line that would print 78.
    assert_eq!(after, ["throw"]);
    assert_eq!(r.slices_of(gr2)[0].entered_by(), "start");
}

#[test]
fn a_trace_past_its_limit_says_how_many_events_it_dropped() {
    let r = traced(&["switching", "--quick", "--runs", "1", "--trace-limit", "50"]);
    let kept = r
        .runs
        .iter()
        .filter(|s| !s.args.contains_key("still_running"))
        .count()
        + r.marks
            .iter()
            .filter(|m| !m.name.contains("events dropped"))
            .count();
    assert_eq!(kept, 50);
    assert!(r.dropped > 0);
    let marker = format!("trace full: {} events dropped", r.dropped);
    assert!(
        r.marks.iter().any(|m| m.name.starts_with(&marker)),
        "{:?}",
        r.marks.last()
    );
}

#[test]
fn an_unwritable_trace_file_fails_at_once_with_one_line() {
    let out = test_support::output_of(
        BIN,
        &["eat-play", "--trace", "/nonexistent-dir/t.json"],
        HUNG,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot write the trace to /nonexistent-dir/t.json"),
        "{stderr}"
    );
    // It failed before the listing ran.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("egon"));
}

#[test]
fn a_trace_that_cannot_be_written_at_the_end_fails_the_run_with_one_line() {
    // /dev/full opens, but every write to it fails: the listing runs in
    // full, then writing its trace fails.
    let out = test_support::output_of(BIN, &["eat-play", "--trace", "/dev/full"], HUNG);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("egon"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("stage-greenlet: error: writing the trace to /dev/full:"),
        "{stderr}"
    );
}
