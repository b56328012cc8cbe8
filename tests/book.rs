//! The book cannot drift from the code: every listing in `docs/src` is
//! included from a compiled file by anchor, and this test fails when an
//! include names a file or an anchor that does not exist, when a chapter
//! named in `SUMMARY.md` is missing, or when Rust code is pasted into a
//! chapter instead of included.

use std::fs;
use std::path::{Path, PathBuf};

fn book_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/src")
}

fn chapters() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![book_src()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).expect("docs/src is readable") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// One `{{#include path[:anchor]}}` found in a chapter.
#[derive(Debug)]
struct Include {
    chapter: PathBuf,
    line: usize,
    target: String,
    anchor: Option<String>,
}

fn includes_in(chapter: &Path, text: &str) -> Vec<Include> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(start) = rest.find("{{#") {
            let after = &rest[start + 3..];
            let Some(end) = after.find("}}") else { break };
            let directive = after[..end].trim();
            rest = &after[end + 2..];
            let Some((kind, arg)) = directive.split_once(char::is_whitespace) else {
                continue;
            };
            if !matches!(kind, "include" | "rustdoc_include") {
                continue;
            }
            let mut parts = arg.trim().splitn(2, ':');
            let target = parts.next().unwrap_or_default().to_string();
            let anchor = parts.next().map(str::to_string);
            found.push(Include {
                chapter: chapter.to_path_buf(),
                line: i + 1,
                target,
                anchor,
            });
        }
    }
    found
}

fn check_include(include: &Include) -> Result<(), String> {
    let here = format!("{}:{}", include.chapter.display(), include.line);
    let dir = include
        .chapter
        .parent()
        .expect("a chapter lives in a folder");
    let file = dir.join(&include.target);
    let source = fs::read_to_string(&file).map_err(|e| {
        format!(
            "{here}: includes {} which cannot be read: {e}",
            file.display()
        )
    })?;
    let Some(anchor) = &include.anchor else {
        return Ok(());
    };
    if anchor.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        return Err(format!(
            "{here}: includes {} by line numbers ({anchor}); line numbers drift, use an ANCHOR",
            include.target
        ));
    }
    let has = |marker: &str| {
        source.lines().any(|l| {
            l.split_once(marker)
                .is_some_and(|(_, name)| name.trim() == anchor.as_str())
        })
    };
    if !has("ANCHOR:") || !has("ANCHOR_END:") {
        return Err(format!(
            "{here}: anchor `{anchor}` is not marked in {} (needs `ANCHOR: {anchor}` and `ANCHOR_END: {anchor}`)",
            include.target
        ));
    }
    Ok(())
}

/// Rust shown in the book must come from compiled code: a ```rust block may
/// hold only include directives.
fn pasted_rust(chapter: &Path, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut in_rust = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            match in_rust {
                None if info.trim().split(',').next() == Some("rust") => in_rust = Some(i + 1),
                None if !info.trim().is_empty() => in_rust = Some(0),
                None => in_rust = Some(0),
                Some(_) => in_rust = None,
            }
            continue;
        }
        if let Some(start) = in_rust.filter(|&s| s > 0) {
            if !trimmed.is_empty() && !trimmed.starts_with("{{#") {
                problems.push(format!(
                    "{}:{}: the rust block opened at line {start} pastes code; include it by anchor from a crate instead",
                    chapter.display(),
                    i + 1
                ));
                in_rust = Some(0);
            }
        }
    }
    problems
}

#[test]
fn every_include_names_a_file_and_anchor_that_exist() {
    let mut problems = Vec::new();
    let mut count = 0;
    for chapter in chapters() {
        let text = fs::read_to_string(&chapter).expect("chapter is readable");
        for include in includes_in(&chapter, &text) {
            count += 1;
            if let Err(problem) = check_include(&include) {
                problems.push(problem);
            }
        }
        problems.extend(pasted_rust(&chapter, &text));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(count > 0, "the book includes no code at all");
}

#[test]
fn every_chapter_in_the_summary_exists() {
    let summary = fs::read_to_string(book_src().join("SUMMARY.md")).expect("SUMMARY.md");
    let mut missing = Vec::new();
    for link in summary.split("](").skip(1) {
        let target = link.split(')').next().unwrap_or_default();
        if !target.is_empty() && !book_src().join(target).is_file() {
            missing.push(target.to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "SUMMARY.md names missing chapters: {missing:?}"
    );
}

#[test]
fn the_checker_catches_a_missing_anchor_and_pasted_code() {
    let chapter = book_src().join("introduction.md");
    let text = "{{#include ../../Cargo.toml:no_such_anchor}}\n```rust\nfn main() {}\n```\n";
    let includes = includes_in(&chapter, text);
    assert_eq!(includes.len(), 1);
    let err = check_include(&includes[0]).unwrap_err();
    assert!(err.contains("no_such_anchor"), "{err}");
    assert_eq!(pasted_rust(&chapter, text).len(), 1);
}
