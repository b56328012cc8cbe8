//! Bad command lines and unreachable addresses get an error that names what
//! is wrong, never a panic, a reinterpreted value or a table of nonsense.

use std::process::{Command, Output};
use std::time::Duration;

mod common;

fn stage(args: &[&str]) -> Output {
    common::output_within(
        Command::new(env!("CARGO_BIN_EXE_stage-hub")).args(args),
        b"",
        Duration::from_secs(60),
    )
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_missing_required_option_is_named() {
    let out = stage(&["echo-load"]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("stage-hub: error:"), "{stderr}");
    assert!(stderr.contains("--addr"), "{stderr}");
}

#[test]
fn a_mistyped_sub_command_gets_clap_s_tip() {
    let out = stage(&["echo-lod"]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("'echo-load'"), "{stderr}");
}

#[test]
fn every_count_states_its_range_and_refuses_values_outside_it() {
    let probed = harness::cli::check_stated_ranges(env!("CARGO_BIN_EXE_stage-hub").as_ref())
        .unwrap_or_else(|e| panic!("{e}"));
    // --runs and --sleepers, and the counts and seconds of echo-load,
    // echo-threads, hello-bye and echo-bench: at least two probes each.
    assert!(probed >= 2 * 12, "only {probed} out-of-range values probed");
    let help = stage(&["echo-load", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    let stated = harness::cli::stated_ranges(&help);
    for flag in ["--clients", "--seconds", "--size", "--runs"] {
        assert!(
            stated.iter().any(|(f, _, _)| f == flag),
            "echo-load --help states no range for {flag}:\n{help}"
        );
    }
}

#[test]
fn a_count_too_big_to_add_to_is_refused_not_a_panic() {
    let out = stage(&[
        "echo-load",
        "--addr",
        "127.0.0.1:9",
        "--clients",
        "18446744073709551615",
    ]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("1..=65535"), "{stderr}");
}

#[test]
fn zero_is_refused_where_it_used_to_become_one_or_nan() {
    for args in [
        &["echo-load", "--addr", "127.0.0.1:9", "--clients", "0"][..],
        &["echo-load", "--addr", "127.0.0.1:9", "--size", "0"],
        &["hello-bye", "--rounds", "0"],
        &["many", "--sleepers", "0"],
    ] {
        let out = stage(args);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("0 is not in 1..="), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} ran anyway");
    }
}
