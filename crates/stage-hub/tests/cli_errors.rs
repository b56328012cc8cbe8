//! Bad command lines and unreachable addresses get an error that names what
//! is wrong, never a panic, a reinterpreted value or a table of nonsense.

use std::process::{Command, Output};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_stage-hub");

/// How long any one command line may take before the test calls it hung.
const MINUTE: Duration = Duration::from_secs(60);

fn stage(args: &[&str]) -> Output {
    test_support::output_of(BIN, args, MINUTE)
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
    let probed = harness::cli::check_stated_ranges(BIN.as_ref()).unwrap_or_else(|e| panic!("{e}"));
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

/// A port nothing listens on: bound, then closed again.
fn closed_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address")
}

#[test]
fn a_port_in_use_is_one_line_naming_the_address_and_what_to_do() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let addr = taken.local_addr().unwrap().to_string();
    for flavor in ["hub", "threads", "tokio"] {
        let out = stage(&["echo-server", "--flavor", flavor, "--addr", &addr]);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{flavor}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{flavor}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot listen on {addr}"))
                && stderr.contains("pick another port"),
            "{flavor}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{flavor} said it listens");
    }
}

#[test]
fn an_address_that_is_not_one_or_not_ours_is_one_line_naming_it() {
    for (addr, says) in [
        ("nonsense", "`nonsense` is not an address to listen on"),
        ("127.0.0.1:99999", "`127.0.0.1:99999` is not an address"),
        // TEST-NET-1: no machine has it, so bind fails without any traffic.
        ("192.0.2.1:8080", "cannot listen on 192.0.2.1:8080"),
    ] {
        let out = stage(&["echo-server", "--addr", addr]);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{addr}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{addr}: {stderr}");
        assert!(stderr.contains(says), "{addr}: {stderr}");
    }
}

#[test]
fn a_load_against_a_closed_port_prints_the_error_alone() {
    let addr = closed_port().to_string();
    for command in ["echo-load", "echo-threads"] {
        let out = stage(&[
            command,
            "--addr",
            &addr,
            "--clients",
            "3",
            "--seconds",
            "0.2",
        ]);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{command}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot connect to {addr}")),
            "{command}: {stderr}"
        );
        // No table of infinite times before (or instead of) the error: at
        // most echo-threads' line saying what it is about to do.
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.lines().count() <= 1, "{command} printed: {stdout}");
        for table in ["inf", "messages/s", "median"] {
            assert!(!stdout.contains(table), "{command} printed: {stdout}");
        }
    }
}

#[test]
fn the_interactive_client_names_the_address_it_could_not_reach() {
    let addr = closed_port().to_string();
    let out = stage(&["echo-client", "--addr", &addr]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&addr) && stderr.contains("refused"),
        "{stderr}"
    );
}

#[test]
fn a_load_s_table_says_what_its_median_is() {
    // A small upper-case echo server of threads, for two clients.
    let addr = test_support::thread_echo_server(2, <[u8]>::make_ascii_uppercase).to_string();
    let out = stage(&[
        "echo-load",
        "--addr",
        &addr,
        "--clients",
        "2",
        "--seconds",
        "0.2",
    ]);
    test_support::assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("median = the time 100,000 messages take at the rate measured"),
        "{stdout}"
    );
}

#[test]
fn the_gevent_figure_is_measured_here_or_quoted_as_the_notes() {
    let quoted = test_support::output_within(
        Command::new(BIN)
            .args(["sleepers", "--quick"])
            .env("COROUTINES_PYTHON", "none"),
        b"",
        MINUTE,
    );
    test_support::assert_success(&quoted);
    let stdout = String::from_utf8_lossy(&quoted.stdout);
    assert!(
        stdout.contains("(quoted: CPython gevent, the notes, at scale 1)"),
        "{stdout}"
    );
    if !test_support::python_can_import("gevent") {
        return;
    }
    let measured = stage(&["sleepers", "--quick"]);
    test_support::assert_success(&measured);
    let stdout = String::from_utf8_lossy(&measured.stdout);
    assert!(
        stdout.contains("+ gevent ") && stdout.contains("measured here)"),
        "{stdout}"
    );
}
