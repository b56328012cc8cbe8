//! The book states no figure by hand. Every time, ratio and rate a chapter
//! states is included from what `cargo run --release -- figures` recorded
//! (docs/src/figures), so it cannot drift from what the code prints; and
//! every picture recorded there is shown by a chapter.
//!
//! This test fails when a chapter types a measured figure (digits followed
//! by ns, µs, ms, s, × or x) outside an include, except the lessons' own
//! inputs listed in [`INPUTS`] and quotes from the notes marked `<q>…</q>`;
//! when an SVG under docs/src/figures is shown by no chapter; and, on the
//! book as `mdbook build` makes it, when an include was left unexpanded or a
//! figure is missing from the pages. (Without mdbook that last check says it
//! is skipped, except under CI, which installs mdbook first.)

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

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

/// Figures a chapter may type: the lessons' inputs (what the notes' code
/// asks for, and defaults a reader passes on the command line), not results.
/// Each must be spelled exactly so: "5 s" is the notes' longest nap, where
/// a measured "5.00 s" would still be caught.
const INPUTS: &[(&str, &str)] = &[
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
];

/// Every typed figure in `line`: a number (digits, with `,` or `.`) then,
/// after at most one space, a unit of time or a multiplier, not followed by
/// a letter.
fn typed_figures(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts_number = chars[i].is_ascii_digit()
            && (i == 0
                || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '.' || chars[i - 1] == '_'));
        if !starts_number {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len()
            && (chars[i].is_ascii_digit()
                || ((chars[i] == '.' || chars[i] == ',')
                    && chars.get(i + 1).is_some_and(char::is_ascii_digit)))
        {
            i += 1;
        }
        let mut j = i;
        if chars.get(j) == Some(&' ') {
            j += 1;
        }
        let rest: String = chars[j..].iter().take(3).collect();
        let unit = ["ns", "µs", "us", "ms", "s", "×", "x"]
            .into_iter()
            .find(|u| rest.starts_with(u));
        if let Some(unit) = unit {
            let end = j + unit.chars().count();
            let next = chars.get(end);
            if !next.is_some_and(|c| c.is_alphanumeric()) {
                found.push(chars[start..end].iter().collect());
                i = end;
            }
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
    let chapter = Path::new("x.md");
    let text = "a nap of 2 s took 2.00 s\n\
                ours {{#include figures/x/values.md:ratio}} against <q>1.72x</q>\n\
                <!-- 5.5 ms -->";
    assert_eq!(hand_typed(chapter, text), ["x.md:1: 2.00 s"]);
}

/// Build the book into a temporary folder with mdbook, if there is one.
fn built_book() -> Option<PathBuf> {
    let mdbook = [
        "mdbook".to_string(),
        format!(
            "{}/.cargo/bin/mdbook",
            std::env::var("HOME").unwrap_or_default()
        ),
    ]
    .into_iter()
    .find(|m| {
        Command::new(m)
            .arg("--version")
            .output()
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
    let dest = std::env::temp_dir().join(format!("coroutines-book-{}", std::process::id()));
    let out = Command::new(mdbook)
        .arg("build")
        .arg(root().join("docs"))
        .arg("--dest-dir")
        .arg(&dest)
        .output()
        .expect("run mdbook");
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
        let html = fs::read_to_string(dest.join(format!("{name}.html")))
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
        assert!(dest.join(&svg).is_file(), "the built book lacks {svg}");
    }
    let _ = fs::remove_dir_all(&dest);
}
