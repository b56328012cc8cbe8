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
