//! `crawl` from the command line: a crawl with failures exits non-zero and
//! says how many, compares only what answered both ways, keeps `--json`
//! honest; HTTPS against `serve-site` with `--ca-file`; a clear line when
//! there is no network.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use stage_hub::crawl::site::{Behaviour, Site, NOTES_SIZES};
use test_support::{outcome, output_within, Server, Signal, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_stage-hub");
const MINUTE: Duration = Duration::from_secs(60);

fn crawl(args: &[&str]) -> (bool, String, String) {
    outcome(&output_within(
        Command::new(BIN).arg("crawl").args(args),
        b"",
        MINUTE,
    ))
}

fn json_rows(stdout: &str) -> Vec<Value> {
    harness::json::read_report(stdout).unwrap_or_else(|e| panic!("{e}\n{stdout}"))
}

#[test]
fn a_crawl_with_failures_exits_non_zero_and_compares_only_what_answered_both_ways() {
    let site = Site::start(vec![
        (
            "/slow".into(),
            Behaviour::Page {
                delay: Duration::from_millis(100),
                bytes: 300,
            },
        ),
        (
            "/fast".into(),
            Behaviour::Page {
                delay: Duration::ZERO,
                bytes: 200,
            },
        ),
        ("/stall".into(), Behaviour::Stall),
    ])
    .unwrap();
    let (slow, fast, stall) = (site.url("/slow"), site.url("/fast"), site.url("/stall"));
    let (ok, stdout, stderr) = crawl(&["--json", "--read-timeout", "0.5", &slow, &fast, &stall]);
    assert!(!ok, "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("1 of 3 URLs failed (at once: 1, one by one: 1)"),
        "{stderr}"
    );
    let rows = json_rows(&stdout);
    // A row per URL per crawl: the answers with times and bytes, the stall
    // as a failure with no time.
    let per_url: Vec<&Value> = rows.iter().filter(|r| r["group"] == "crawl-url").collect();
    assert_eq!(per_url.len(), 6);
    for r in &per_url {
        if r["url"] == stall.as_str() {
            assert_eq!(r["ok"], false, "{r}");
            assert!(r["median_seconds"].is_null(), "{r}");
            assert_eq!(r["error_kind"], "timeout", "{r}");
            assert!(r["failed_after_seconds"].as_f64().unwrap() >= 0.5, "{r}");
        } else {
            assert_eq!(r["ok"], true, "{r}");
            assert!(r["median_seconds"].as_f64().unwrap() > 0.0, "{r}");
            let want = if r["url"] == slow.as_str() { 300 } else { 200 };
            assert_eq!(r["bytes"], want, "{r}");
        }
    }
    // The comparison: two URLs, 500 bytes each way, and one by one is the
    // sum of the two fetches — not the stall's half second.
    let compared: Vec<&Value> = rows.iter().filter(|r| r["group"] == "crawl").collect();
    assert_eq!(compared.len(), 2, "{stdout}");
    for r in &compared {
        assert_eq!(
            (r["ops"].as_u64(), r["bytes"].as_u64()),
            (Some(2), Some(500)),
            "{r}"
        );
    }
    let one_by_one = compared[0]["median_seconds"].as_f64().unwrap();
    assert!((0.1..0.5).contains(&one_by_one), "{}", compared[0]);
}

#[test]
fn a_crawl_where_everything_answered_exits_zero() {
    let site = Site::start(vec![(
        "/".into(),
        Behaviour::Page {
            delay: Duration::ZERO,
            bytes: 5,
        },
    )])
    .unwrap();
    let (ok, stdout, stderr) = crawl(&[&site.url("/"), &site.url("/missing")]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("5 bytes received from"), "{stdout}");
    assert!(stdout.contains("(404 Not Found)"), "{stdout}");
}

#[test]
fn with_no_network_the_crawl_says_so_in_one_line() {
    // `.invalid` never resolves (RFC 6761): what every host looks like on a
    // machine with no network. The crawl is bounded by --connect-timeout.
    let start = Instant::now();
    let (ok, stdout, stderr) = crawl(&[
        "--connect-timeout",
        "3",
        "http://www.example.invalid/",
        "https://nowhere.invalid/",
    ]);
    assert!(!ok);
    assert!(start.elapsed() < Duration::from_secs(30));
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("stage-hub: error: no network: none of the 2 URLs"),
        "{stderr}"
    );
    assert!(stdout.contains("no URL answered both ways"), "{stdout}");
}

#[test]
fn the_notes_crawl_is_a_flag_and_refuses_extra_urls() {
    let out = output_within(
        Command::new(BIN).args(["crawl", "--notes", "http://x/"]),
        b"",
        MINUTE,
    );
    assert_eq!(out.status.code(), Some(2));
    let help = output_within(Command::new(BIN).args(["crawl", "--help"]), b"", MINUTE);
    let text = String::from_utf8_lossy(&help.stdout);
    for word in [
        "--notes",
        "--ca-file",
        "--max-redirects",
        "https://",
        "exits 1",
    ] {
        assert!(text.contains(word), "{word} missing:\n{text}");
    }
}

#[test]
fn a_bad_ca_file_is_one_line_naming_the_file() {
    let dir = TempDir::new("stage-hub-ca");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    for (file, why) in [
        (dir.path().join("missing.pem"), "No such file"),
        (empty, "no PEM certificate"),
    ] {
        let (ok, _, stderr) = crawl(&["--ca-file", file.to_str().unwrap(), "https://127.0.0.1:1/"]);
        assert!(!ok);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(&format!("--ca-file {}", file.display())),
            "{stderr}"
        );
        assert!(stderr.contains(why), "{stderr}");
    }
}

#[test]
fn crawl_https_works_against_serve_site_with_its_ca_file() {
    let dir = TempDir::new("stage-hub-site");
    let ca = dir.path().join("ca.pem");
    // Its first line is "HTTPS pages: https://ADDR/page/{1..3}"; a failed
    // assertion drops `site`, which kills it.
    let site = Server::start_with(
        Command::new(BIN)
            .args(["serve-site", "--pages", "3", "--step-ms", "10", "--ca-out"])
            .arg(&ca),
        |first| {
            let addr = first.strip_prefix("HTTPS pages: https://")?;
            addr.strip_suffix("/page/{1..3}")?.parse().ok()
        },
    );
    let base = format!("https://{}", site.addr());
    let urls: Vec<String> = (1..=3).map(|i| format!("{base}/page/{i}")).collect();
    let mut args = vec!["--json", "--ca-file", ca.to_str().unwrap()];
    args.extend(urls.iter().map(String::as_str));
    let (ok, stdout, stderr) = crawl(&args);
    assert!(ok, "{stderr}");
    let bytes: Vec<(String, u64)> = json_rows(&stdout)
        .iter()
        .filter(|r| r["group"] == "crawl-url")
        .map(|r| {
            (
                r["url"].as_str().unwrap().to_string(),
                r["bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = urls
        .iter()
        .zip(NOTES_SIZES)
        .map(|(u, n)| (u.clone(), n as u64))
        .collect();
    assert_eq!(bytes[..3], want[..], "at once");
    assert_eq!(bytes[3..], want[..], "one by one");
    // Without the authority the same site is refused, naming the host.
    let (ok, _, stderr) = crawl(&[&urls[0]]);
    assert!(!ok);
    assert!(stderr.contains("1 of 1 URLs failed"), "{stderr}");
    let stopped = site.stop(Signal::SIGTERM);
    assert!(stopped.status.success(), "{stopped}");
    assert!(stopped.stdout.ends_with("site stopped"), "{stopped}");
}
