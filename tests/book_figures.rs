//! The book states no figure by hand. Every time, ratio, rate, size,
//! percentage and instruction count a chapter states is included from what
//! `cargo run --release -- figures` recorded (docs/src/figures), so it
//! cannot drift from what the code prints; and every picture recorded there
//! is shown by a chapter.
//!
//! # The rule
//!
//! A figure is a number with a unit of what the lessons measure: a time
//! (ns, µs, ms, s), a multiplier (×, x), a size (bytes, B, KiB, MiB, GiB,
//! KB, MB, GB), a rate (anything per second: `messages/s`, `req/s`,
//! `MB/s`), a percentage (`%`, `percent`), an instruction count
//! (`instructions`). A chapter may type one only when it is fixed before
//! anything runs, and then exactly as [`INPUTS`] spells it, with where it
//! comes from: an input the lesson or a test passes (a 2 s nap, a test's
//! 8 MiB), a constant of our code or a dependency's stated default (a
//! 128 KiB greenlet stack, Rust's 2 MiB thread stack), or arithmetic on
//! those. Everything a run produces is included from docs/src/figures,
//! even where it looks fixed (an instruction count is counted by callgrind,
//! so it is recorded). Quotes from the notes are marked `<q>…</q>`.
//! Counts without a unit (500 clients, 10,000 greenlets) are inputs by
//! nature and not looked at.
//!
//! The test fails when a chapter types any other figure outside an include
//! or a quote; when an SVG under docs/src/figures is shown by no chapter;
//! and, on the book as `mdbook build` makes it, when an include was left
//! unexpanded or a figure is missing from the pages. (Without mdbook that
//! last check says it is skipped, except under CI, which installs mdbook
//! first.)

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use test_support::{output_within, try_output_within};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn book_src() -> PathBuf {
    root().join("docs/src")
}

/// The chapters `SUMMARY.md` names: the pages of the book.
fn chapters() -> Vec<PathBuf> {
    let summary = fs::read_to_string(book_src().join("SUMMARY.md")).expect("SUMMARY.md");
    let mut found = Vec::new();
    for link in summary.split("](").skip(1) {
        let target = link.split(')').next().unwrap_or_default();
        if target.ends_with(".md") {
            found.push(book_src().join(target));
        }
    }
    assert!(
        found.len() >= 5,
        "SUMMARY.md names too few chapters: {found:?}"
    );
    found
}

/// Figures a chapter may type, each with where it comes from: fixed
/// before anything runs (see the module docs), never a result. Each must be
/// spelled exactly so: "5 s" is the notes' longest nap, where a measured
/// "5.00 s" would still be caught.
const INPUTS: &[(&str, &str)] = &[
    // Times: the notes' waits and the lessons' settings.
    ("0.5 s", "the notes' ten tasks each wait half a second"),
    (
        "1 s",
        "the notes' play naps a second; the acceptor's longest pause",
    ),
    ("2 s", "the notes' short nap, and eat's"),
    (
        "3 s",
        "the notes' middle nap; the lesson's echo clients run 3 s",
    ),
    ("5 s", "the notes' long nap; echo-bench's default load"),
    (
        "10 s",
        "the sum of the notes' naps, as arithmetic (2 + 3 + 5)",
    ),
    ("5 ms", "the acceptor's first pause when out of descriptors"),
    ("20 ms", "the offline site's step with --quick"),
    (
        "100 ms",
        "the offline site's step; the blocking detector's default threshold",
    ),
    ("60 s", "the crawler's default answer timeout"),
    (
        "4 ms",
        "a kernel tick at HZ=250 (the coarse clock's resolution), a kernel setting",
    ),
    (
        "4 %",
        "one tick in 25: the blocking detector's COARSE_TICKS, as arithmetic",
    ),
    // Sizes: constants of the code, defaults of what it stands on, and
    // the tests' inputs.
    (
        "32 KiB",
        "the generator crate's default stack (DEFAULT_STACK_SIZE)",
    ),
    (
        "128 KiB",
        "a greenlet's default stack (stage_greenlet::stack::DEFAULT_STACK_SIZE)",
    ),
    ("1 GiB", "10,000 default greenlet stacks, as arithmetic"),
    (
        "56 bytes",
        "what jump_fcontext stores below the return address (seven 8-byte slots)",
    ),
    (
        "64 bytes",
        "the same with the return address: a saved context",
    ),
    (
        "65536 bytes",
        "the stack the overflow test gives its greenlet (tests/limits.rs)",
    ),
    (
        "80 MB",
        "the serial producer's 10,000,000 u64s, as arithmetic",
    ),
    ("8 MiB", "what the split-halves test sends each way"),
    ("1024-byte", "the echo handler's buffer"),
    ("2 MiB", "Rust's default stack for a spawned thread"),
    ("4 KiB", "a memory page on x86-64 Linux"),
    (
        "2 KiB",
        "a Go goroutine's first stack, the Go runtime's constant",
    ),
    (
        "256 MiB",
        "the crawler's cap on announced sizes (crawl::http::MAX_BODY)",
    ),
];

/// Units that make a number a figure, longest spelling first. A rate is
/// caught apart: any word followed by `/s` or ` per second`.
const UNITS: &[&str] = &[
    // instruction counts
    "instructions",
    "instruction",
    "instr",
    // sizes
    "bytes",
    "byte",
    "KiB",
    "MiB",
    "GiB",
    "kB",
    "KB",
    "MB",
    "GB",
    "B",
    // percentages
    "percent",
    "per cent",
    "%",
    // times
    "ns",
    "µs",
    "us",
    "ms",
    "s",
    // multipliers
    "×",
    "x",
];

/// Every typed figure in `line`: a number (digits, with `,` or `.`, and
/// perhaps a `k`, `M` or `G`), then, after at most one space or hyphen, a
/// unit of [`UNITS`] or a rate (`messages/s`, `req/s`, `ops per second`),
/// not followed by a letter or digit.
fn typed_figures(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let at = |k: usize| chars.get(k).copied();
    let word_char = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts_number = chars[i].is_ascii_digit()
            && (i == 0 || !(word_char(at(i - 1)) || at(i - 1) == Some('.')));
        if !starts_number {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len()
            && (chars[i].is_ascii_digit()
                || ((chars[i] == '.' || chars[i] == ',')
                    && at(i + 1).is_some_and(|c| c.is_ascii_digit())))
        {
            i += 1;
        }
        let mut j = i;
        // "75k messages/s": a magnitude, then a space or a slash.
        if at(j).is_some_and(|c| "kMG".contains(c)) && matches!(at(j + 1), Some(' ' | '/')) {
            j += 1;
        }
        if matches!(at(j), Some(' ' | '-')) {
            j += 1;
        }
        let rest: String = chars[j..].iter().take(16).collect();
        let unit_end = UNITS
            .iter()
            .find(|u| rest.starts_with(*u) && !word_char(at(j + u.chars().count())))
            .map(|u| j + u.chars().count())
            .or_else(|| {
                // A rate: a word, then "/s" or " per second".
                let mut k = j;
                while at(k).is_some_and(char::is_alphabetic) {
                    k += 1;
                }
                let tail: String = chars[k..].iter().take(11).collect();
                let per = if tail.starts_with("/s") {
                    2
                } else if tail.starts_with(" per second") {
                    11
                } else {
                    return None;
                };
                (!word_char(at(k + per))).then_some(k + per)
            });
        if let Some(end) = unit_end {
            found.push(chars[start..end].iter().collect());
            i = end;
        }
    }
    found
}

/// `text` without include directives, `<q>` quotes and HTML comments.
fn prose(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let next = [("{{#", "}}"), ("<q>", "</q>"), ("<!--", "-->")]
            .into_iter()
            .filter_map(|(open, close)| rest.find(open).map(|at| (at, open, close)))
            .min_by_key(|(at, _, _)| *at);
        let Some((at, open, close)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at]);
        let after = &rest[at + open.len()..];
        match after.find(close) {
            Some(end) => rest = &after[end + close.len()..],
            None => return out,
        }
    }
}

/// The figures a chapter types by hand, as `file:line: figure` lines.
fn hand_typed(chapter: &Path, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in prose(text).lines().enumerate() {
        for figure in typed_figures(line) {
            if !INPUTS.iter().any(|(input, _)| *input == figure) {
                found.push(format!("{}:{}: {figure}", chapter.display(), n + 1));
            }
        }
    }
    found
}

fn svgs() -> Vec<String> {
    let dir = book_src().join("figures");
    let mut found = Vec::new();
    let mut dirs = vec![dir.clone()];
    while let Some(d) = dirs.pop() {
        for entry in fs::read_dir(&d).expect("docs/src/figures is readable") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "svg") {
                let rel = path.strip_prefix(book_src()).expect("below docs/src");
                found.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    assert!(
        !found.is_empty(),
        "docs/src/figures has no SVG: run `cargo run --release -- figures`"
    );
    found
}

#[test]
fn no_chapter_types_a_measured_figure_by_hand() {
    let mut found = Vec::new();
    for chapter in chapters() {
        let text = fs::read_to_string(&chapter).expect("a readable chapter");
        found.extend(hand_typed(&chapter, &text));
    }
    assert!(
        found.is_empty(),
        "figures typed by hand (include them from docs/src/figures, see src/figures/mod.rs; \
         a quote from the notes goes in <q>…</q>):\n{}",
        found.join("\n")
    );
}

#[test]
fn every_recorded_picture_is_shown_by_a_chapter() {
    let text: String = chapters()
        .iter()
        .map(|c| fs::read_to_string(c).expect("a readable chapter"))
        .collect();
    let unshown: Vec<String> = svgs()
        .into_iter()
        .filter(|svg| !text.contains(&format!("]({svg})")))
        .collect();
    assert!(unshown.is_empty(), "pictures no chapter shows: {unshown:?}");
}

#[test]
fn the_checker_catches_typed_figures_and_lets_inputs_quotes_and_includes_pass() {
    assert_eq!(
        typed_figures("took 10.0 s, then 22 ns and 9.7x (1.72×)"),
        ["10.0 s", "22 ns", "9.7x", "1.72×"]
    );
    assert_eq!(
        typed_figures("2 s + 3 s; 30,000 greenlets; v1.5 x2 x86-64 0x10"),
        ["2 s", "3 s"]
    );
    assert!(typed_figures("the 5 steps, 4 sources, 3 seconds").is_empty());
    assert_eq!(
        typed_figures("48 instructions; 4.0 KiB, 512 bytes, a 1024-byte buffer, 2 GB"),
        [
            "48 instructions",
            "4.0 KiB",
            "512 bytes",
            "1024-byte",
            "2 GB"
        ]
    );
    assert_eq!(
        typed_figures("75,012 messages/s, 9k req/s, 3 ops per second; 62%, 5 percent"),
        [
            "75,012 messages/s",
            "9k req/s",
            "3 ops per second",
            "62%",
            "5 percent"
        ]
    );
    assert!(typed_figures("500 clients, 10,000 greenlets, 64-bit, UTF-8, 2 hubs").is_empty());
    let chapter = Path::new("x.md");
    let text = "a nap of 2 s took 2.00 s\n\
                ours {{#include figures/x/values.md:ratio}} against <q>1.72x</q>\n\
                <!-- 5.5 ms -->\n\
                a 128 KiB stack held 4.5 KiB, <q>90%</q> of 12%";
    assert_eq!(
        hand_typed(chapter, text),
        ["x.md:1: 2.00 s", "x.md:4: 4.5 KiB", "x.md:4: 12%"]
    );
}

/// Build the book into a temporary folder with mdbook, if there is one;
/// the folder goes when the returned `TempDir` is dropped.
fn built_book() -> Option<test_support::TempDir> {
    let mdbook = [
        "mdbook".to_string(),
        format!(
            "{}/.cargo/bin/mdbook",
            std::env::var("HOME").unwrap_or_default()
        ),
    ]
    .into_iter()
    .find(|m| {
        try_output_within(
            Command::new(m).arg("--version"),
            b"",
            Duration::from_secs(60),
        )
        .is_ok_and(|o| o.status.success())
    });
    let Some(mdbook) = mdbook else {
        assert!(
            std::env::var_os("CI").is_none(),
            "mdbook is not installed, and CI must check the built book (.ci/run installs it)"
        );
        eprintln!("skipped: mdbook is not installed (cargo install mdbook --locked)");
        return None;
    };
    // Removed however the test ends, a failed assertion included.
    let dest = test_support::TempDir::new("coroutines-book");
    // The book builds in seconds; minutes mean mdbook hung.
    let out = output_within(
        Command::new(mdbook)
            .arg("build")
            .arg(root().join("docs"))
            .arg("--dest-dir")
            .arg(dest.path()),
        b"",
        Duration::from_secs(300),
    );
    assert!(
        out.status.success(),
        "mdbook build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(dest)
}

#[test]
fn the_built_book_expands_every_include_and_shows_every_picture() {
    let Some(dest) = built_book() else { return };
    let mut pages = String::new();
    for chapter in chapters() {
        let name = chapter.file_stem().unwrap().to_string_lossy().into_owned();
        let html = fs::read_to_string(dest.path().join(format!("{name}.html")))
            .unwrap_or_else(|e| panic!("the built book has no {name}.html: {e}"));
        assert!(
            !html.contains("{{#"),
            "{name}.html has an include left unexpanded"
        );
        pages.push_str(&html);
    }
    for svg in svgs() {
        assert!(
            pages.contains(&format!("src=\"{svg}\"")),
            "no page shows {svg}"
        );
        assert!(
            dest.path().join(&svg).is_file(),
            "the built book lacks {svg}"
        );
    }
}
