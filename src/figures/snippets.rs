//! What chapters include: markdown tables of a group's rows, and single
//! values to put inside a sentence.
//!
//! A table is a file of its own (`{{#include figures/hub/costs.md}}`). The
//! values of a chapter are anchored lines of one file, included inline:
//! `the switch costs {{#include figures/greenlet/values.md:round_trip}} here`.
//! An included anchor has no line break of its own, so it reads as part of
//! the sentence.

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use harness::report::{human_bytes, human_seconds, INSTRUCTIONS_PER_OP};
use serde_json::Value;

/// A ratio as the book prints it: `9.71×`.
pub fn ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}×")
    } else if r >= 10.0 {
        format!("{r:.1}×")
    } else {
        format!("{r:.2}×")
    }
}

/// A fraction as a percentage: `0.62` → `62%`.
pub fn percent(f: f64) -> String {
    format!("{:.0}%", f * 100.0)
}

/// Seconds as the book prints them (`22.2 ns`, `5.00 s`).
pub fn seconds(s: f64) -> String {
    human_seconds(s)
}

/// Nanoseconds as the book prints them.
pub fn nanos(ns: f64) -> String {
    human_seconds(ns / 1e9)
}

/// Bytes as the book prints them (`4.0 KiB`).
pub fn bytes(b: f64) -> String {
    human_bytes(b.max(0.0) as u64)
}

/// A count with thousands separators: `75,012`.
pub fn count(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Where a CPython row's figure comes from, in words for a sentence:
/// "measured here (CPython 3.11.7)" or "quoted (CPython, the notes)".
pub fn source_words(row: &Value) -> String {
    let profile = row["profile"].as_str().unwrap_or("CPython");
    if row["source"] == "cpython" {
        format!(
            "measured here ({})",
            profile.trim_end_matches(", measured here")
        )
    } else {
        format!("quoted ({profile})")
    }
}

/// A report's rows as a markdown table: case, median, per op, ratio (and
/// memory, if any row has it); rows quoted from the notes say so.
pub fn table(rows: &[&Value]) -> String {
    let with_rss = rows.iter().any(|r| r["rss_bytes"].is_number());
    let with_instructions = rows.iter().any(|r| r[INSTRUCTIONS_PER_OP].is_number());
    let mut out = String::from("| case | median | per op | ratio |");
    if with_instructions {
        out.push_str(" instructions per op |");
    }
    if with_rss {
        out.push_str(" resident memory | per op |");
    }
    out.push_str("\n|:--|--:|--:|--:|");
    if with_instructions {
        out.push_str("--:|");
    }
    if with_rss {
        out.push_str("--:|--:|");
    }
    out.push('\n');
    for r in rows {
        let case = r["case"].as_str().unwrap_or("?").replace('|', "\\|");
        let profile = r["profile"].as_str().unwrap_or("CPython");
        let case = match r["source"].as_str() {
            Some("quoted") => format!("{case} *(quoted: {profile})*"),
            Some("cpython") => format!("{case} *({profile})*"),
            _ => case,
        };
        let _ = write!(
            out,
            "| {case} | {} | {} | {} |",
            seconds(r["median_seconds"].as_f64().unwrap_or(0.0)),
            nanos(r["ns_per_op"].as_f64().unwrap_or(0.0)),
            r["ratio"].as_f64().map_or_else(|| "–".to_string(), ratio),
        );
        if with_instructions {
            let cell = r[INSTRUCTIONS_PER_OP]
                .as_f64()
                .map_or_else(|| "–".to_string(), |i| format!("{i:.0}"));
            let _ = write!(out, " {cell} |");
        }
        if with_rss {
            let cell = |f: &str| r[f].as_f64().map_or_else(|| "–".to_string(), bytes);
            let _ = write!(
                out,
                " {} | {} |",
                cell("rss_bytes"),
                cell("rss_bytes_per_op")
            );
        }
        out.push('\n');
    }
    out
}

/// Where a stage's snippets and pictures go, and what was written there.
#[derive(Debug)]
pub struct Out {
    /// The stage's folder (`docs/src/figures/greenlet`).
    pub dir: PathBuf,
    values: Vec<(String, String)>,
}

impl Out {
    /// Snippets for the folder `dir` (created if missing).
    pub fn new(dir: &Path) -> Result<Out, Box<dyn Error>> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Out {
            dir: dir.to_path_buf(),
            values: Vec::new(),
        })
    }

    /// The path of `file` in the folder.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Write `<name>.md`: `rows` as a table.
    pub fn table(&self, name: &str, rows: &[&Value]) -> Result<(), Box<dyn Error>> {
        write(&self.path(&format!("{name}.md")), &table(rows))
    }

    /// Write `<name>.md` as it is (a table made by hand).
    pub fn text(&self, name: &str, text: &str) -> Result<(), Box<dyn Error>> {
        write(&self.path(&format!("{name}.md")), text)
    }

    /// Write `<name>.txt`: what a listing printed, for a ```text block.
    pub fn transcript(&self, name: &str, text: &str) -> Result<(), Box<dyn Error>> {
        write(&self.path(&format!("{name}.txt")), text)
    }

    /// Remember `text` as value `name` (anchors: letters, digits, `_`).
    pub fn value(&mut self, name: &str, text: impl Into<String>) {
        self.values.push((name.to_string(), text.into()));
    }

    /// Write `values.md` with every value remembered.
    pub fn finish(&mut self) -> Result<(), Box<dyn Error>> {
        if self.values.is_empty() {
            return Ok(());
        }
        let mut out = String::from(
            "<!-- Written by `cargo run --release -- figures`; chapters include each value \
             by its anchor. Do not edit: run figures again. -->\n",
        );
        for (name, text) in &self.values {
            let _ = write!(out, "ANCHOR: {name}\n{text}\nANCHOR_END: {name}\n");
        }
        write(&self.path("values.md"), &out)
    }
}

fn write(path: &Path, text: &str) -> Result<(), Box<dyn Error>> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_print_the_way_the_book_reads_them() {
        assert_eq!(ratio(9.714), "9.71×");
        assert_eq!(ratio(14.86), "14.9×");
        assert_eq!(count(75012.4), "75,012");
        assert_eq!(count(512.0), "512");
        assert_eq!(nanos(22.2), "22.2 ns");
        assert_eq!(percent(0.624), "62%");
    }

    #[test]
    fn a_table_marks_quoted_rows_and_shows_memory_when_there_is_any() {
        let measured = json!({"case": "a", "median_seconds": 0.011, "ns_per_op": 0.55,
            "ratio": null, "source": "measured", "profile": "release"});
        let quoted = json!({"case": "b", "median_seconds": 1.24, "ns_per_op": 61.9,
            "ratio": 1.72, "source": "quoted", "profile": "CPython, the notes"});
        let t = table(&[&measured, &quoted]);
        assert!(t.contains("| a | 11.0 ms | 0.55 ns | – |"), "{t}");
        assert!(t.contains("*(quoted: CPython, the notes)*"), "{t}");
        assert!(!t.contains("resident"));
    }
}
