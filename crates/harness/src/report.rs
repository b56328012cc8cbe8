//! What comes out: one [`Row`] per case, printed as a table for people and as
//! JSON lines for scripts, plus each stage's [`Headline`] for the tour.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use serde::Serialize;

use crate::case::{CheckError, Group};
use crate::count;
use crate::measure::{least_runs, measure_group, Plan};
use crate::output::Output;
use crate::profile::Profile;

/// One line of a report: a measured case, or a figure quoted from the notes.
///
/// As JSON: `{"record":"row","stage":…,"group":…,"case":…,"baseline":…,
/// "ops":…,"median_seconds":…,"ns_per_op":…,"ratio":…,…}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The stage crate that produced the row (`stage-generator`, …).
    pub stage: String,
    /// The group (question) the case belongs to.
    pub group: String,
    /// The case's name.
    pub case: String,
    /// The case this one is compared with, if any.
    pub baseline: Option<String>,
    /// Operations one run performs.
    pub ops: u64,
    /// Median wall-clock seconds of one run.
    pub median_seconds: f64,
    /// `median_seconds / ops`, in nanoseconds.
    pub ns_per_op: f64,
    /// This case's cost per op over its baseline's (`ns_per_op / baseline
    /// ns_per_op`: for cases of equal `ops`, the ratio of their medians);
    /// `None` without a baseline.
    pub ratio: Option<f64>,
    /// Timed runs behind the median (0 for a quoted figure).
    pub runs: usize,
    /// `"measured"` (our code, here), `"cpython"` (the notes' listing in
    /// CPython, measured here by the group's script) or `"quoted"` (a
    /// figure from where `profile` says).
    pub source: String,
    /// The build profile (`"release"`/`"debug"`), or what a CPython figure
    /// ran on (`"CPython 3.11.7 + greenlet 3.1.1, measured here"`) or where
    /// a quote comes from (`"CPython, the notes"`).
    pub profile: String,
    /// Peak resident memory the case added, for memory cases.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    /// `rss_bytes / ops`, for memory cases.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_bytes_per_op: Option<f64>,
    /// Stage-specific figures (messages/s, latency percentiles, …).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// The key in [`Row::extra`] for instructions per operation, counted by
/// callgrind for groups marked [`Group::count_instructions`].
pub const INSTRUCTIONS_PER_OP: &str = "instructions_per_op";

impl Row {
    /// Instructions per operation, if this row's group counted them.
    pub fn instructions_per_op(&self) -> Option<f64> {
        self.extra.get(INSTRUCTIONS_PER_OP)?.as_f64()
    }

    /// Where a CPython row's figure comes from, for headlines:
    /// `"CPython 3.11.7 + greenlet 3.1.1, measured here"` or
    /// `"quoted: CPython, the notes"` (ours: `"measured, release build"`).
    pub fn origin(&self) -> String {
        match self.source.as_str() {
            "quoted" => format!("quoted: {}", self.profile),
            "cpython" => self.profile.clone(),
            _ => format!("measured, {} build", self.profile),
        }
    }

    /// A row of ours measured outside [`Report::measure`] (a load run, a
    /// soak, a race of handshakes): `ops` operations that took `seconds`
    /// in one run of this build, per op over at least one op. It has no
    /// baseline, ratio, memory or extra figures: set those fields after.
    ///
    /// ```
    /// let row = harness::Row::measured("stage-hub", "soak", "one hub", 1_000, 0.5);
    /// assert_eq!((row.ns_per_op, row.runs), (500_000.0, 1));
    /// assert_eq!(row.origin(), format!("measured, {} build", harness::Profile::current().name()));
    /// ```
    pub fn measured(stage: &str, group: &str, case: &str, ops: u64, seconds: f64) -> Row {
        Row {
            stage: stage.into(),
            group: group.into(),
            case: case.into(),
            baseline: None,
            ops,
            median_seconds: seconds,
            ns_per_op: seconds * 1e9 / ops.max(1) as f64,
            ratio: None,
            runs: 1,
            source: "measured".into(),
            profile: Profile::current().name().into(),
            rss_bytes: None,
            rss_bytes_per_op: None,
            extra: BTreeMap::new(),
        }
    }
}

/// A stage's one-line result, gathered by the tour into its closing table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Headline {
    /// The stage crate.
    pub stage: String,
    /// What the lesson claims, in a few words.
    pub claim: String,
    /// Our figure for it, as printed.
    pub ours: String,
    /// CPython's figure for it, saying where it comes from (measured here
    /// by our script of the notes' listing, or quoted from its source).
    pub notes: Option<String>,
}

/// A stage's report: measures groups, prints them as it goes, keeps the rows.
#[derive(Debug)]
pub struct Report {
    stage: String,
    output: Output,
    profile: Profile,
    rows: Vec<Row>,
    headlines: Vec<Headline>,
}

impl Report {
    /// An empty report for `stage`, printing to `output`.
    pub fn new(stage: impl Into<String>, output: Output) -> Self {
        Report {
            stage: stage.into(),
            output,
            profile: Profile::current(),
            rows: Vec::new(),
            headlines: Vec::new(),
        }
    }

    /// Where this report prints.
    pub fn output(&self) -> Output {
        self.output
    }

    /// Measure every case of `group` by `plan`, print its table (or JSON
    /// lines), keep its rows and return them.
    ///
    /// Stops at the first case whose workload returns the wrong result.
    pub fn measure(&mut self, mut group: Group, plan: &Plan) -> Result<Vec<Row>, CheckError> {
        let mut rows = Vec::with_capacity(group.cases.len() + group.quotes.len());
        let least: usize = group.cases.iter().map(|c| least_runs(c, plan)).sum();
        let bar = self
            .output
            .progress(least as u64, format!("measuring {}", group.name));
        let names: Vec<String> = group.cases.iter().map(|c| c.name.clone()).collect();
        let mut taken = 0u64;
        let samples = measure_group(&mut group.cases, plan, |case, _, _| {
            taken += 1;
            bar.set_length(bar.length().unwrap_or(0).max(taken));
            bar.set_position(taken - 1);
            bar.set_message(format!("measuring {}", names[case]));
        });
        // Cleared before a failed check is reported, not left on screen.
        bar.finish_and_clear();
        let samples = samples?;
        for (case, sample) in group.cases.iter().zip(samples) {
            let median_seconds = sample.median.as_secs_f64();
            rows.push(Row {
                stage: self.stage.clone(),
                group: group.name.clone(),
                case: case.name.clone(),
                baseline: case.baseline.clone(),
                ops: case.ops,
                median_seconds,
                ns_per_op: median_seconds * 1e9 / case.ops as f64,
                ratio: None,
                runs: sample.runs,
                source: "measured".into(),
                profile: self.profile.name().into(),
                rss_bytes: sample.rss_bytes,
                rss_bytes_per_op: sample.rss_bytes.map(|b| b as f64 / case.ops as f64),
                extra: BTreeMap::new(),
            });
        }
        let measured = rows.len();
        let figures = match &group.cpython {
            Some(script) => script.measure(crate::cpython::interpreter().as_deref()),
            None => Err(crate::cpython::Unmeasured("no script".into())),
        };
        if let (Some(script), Err(why)) = (&group.cpython, &figures) {
            self.output.say(format!(
                "(CPython figures quoted, not measured here: {why}; {} measures them)",
                script.describe()
            ));
        }
        let quotes = figures.unwrap_or_else(|_| group.quotes.clone());
        for quote in &quotes {
            rows.push(Row {
                stage: self.stage.clone(),
                group: group.name.clone(),
                case: quote.case.clone(),
                baseline: quote.baseline.clone(),
                ops: quote.ops,
                median_seconds: quote.seconds,
                ns_per_op: quote.seconds * 1e9 / quote.ops as f64,
                ratio: None,
                runs: quote.runs,
                source: if quote.measured { "cpython" } else { "quoted" }.into(),
                profile: quote.source.clone(),
                rss_bytes: None,
                rss_bytes_per_op: None,
                extra: BTreeMap::new(),
            });
        }
        fill_ratios(&mut rows[..measured]);
        fill_ratios(&mut rows[measured..]);
        let footnote = if group.counted {
            self.count_instructions(&group.name, &mut rows[..measured])
        } else {
            None
        };
        self.emit(group.title.as_deref(), &group.name, &rows);
        if let Some(note) = footnote {
            // In the table for a person; on stderr beside a JSON report.
            self.output.table(format!("  {note}\n"));
            if self.output.is_json() {
                self.output.say(&note);
            }
        }
        self.rows.extend(rows.iter().cloned());
        Ok(rows)
    }

    /// Count `rows`' instructions per op under callgrind (see [`count`]) and
    /// record them in each row; a note for the table when they could not be.
    fn count_instructions(&self, group: &str, rows: &mut [Row]) -> Option<String> {
        let spinner = self
            .output
            .progress(1, format!("counting {group}'s instructions (callgrind)"));
        let counted = count::per_op(group);
        spinner.finish_and_clear();
        match counted {
            Ok(counts) => {
                for row in rows {
                    if let Some(&per_op) = counts.get(&row.case) {
                        row.extra.insert(INSTRUCTIONS_PER_OP.into(), per_op.into());
                    }
                }
                None
            }
            Err(why) => Some(format!("instructions not counted: {why}")),
        }
    }

    /// Add rows a stage measured by other means (a load generator in another
    /// process, say) and print them like measured ones. Ratios are filled in
    /// from baselines named within `rows`.
    pub fn push_rows(&mut self, title: Option<&str>, mut rows: Vec<Row>) {
        fill_ratios(&mut rows);
        let group = rows.first().map(|r| r.group.clone()).unwrap_or_default();
        self.emit(title, &group, &rows);
        self.rows.extend(rows);
    }

    /// Record the stage's headline result (printed by [`Report::finish`]).
    pub fn headline(
        &mut self,
        claim: impl Into<String>,
        ours: impl Into<String>,
        notes: Option<String>,
    ) {
        self.headlines.push(Headline {
            stage: self.stage.clone(),
            claim: claim.into(),
            ours: ours.into(),
            notes,
        });
    }

    /// Every row measured so far.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Find a measured row by group and case name.
    pub fn row(&self, group: &str, case: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.group == group && r.case == case && r.source == "measured")
    }

    /// CPython's row for `case` in `group`: measured here by the group's
    /// script, or quoted when it could not run.
    pub fn cpython_row(&self, group: &str, case: &str) -> Option<&Row> {
        self.rows.iter().find(|r| {
            r.group == group && r.case == case && matches!(r.source.as_str(), "cpython" | "quoted")
        })
    }

    /// The headlines recorded so far.
    pub fn headlines(&self) -> &[Headline] {
        &self.headlines
    }

    /// Print the headlines (as JSON lines with `--json`) and hand the report back.
    pub fn finish(self) -> Self {
        for h in &self.headlines {
            let mut value = serde_json::to_value(h).unwrap_or_default();
            if let Some(obj) = value.as_object_mut() {
                obj.insert("record".into(), "headline".into());
            }
            self.output.json_line(&value);
            let notes = h
                .notes
                .as_deref()
                .map(|n| format!(" (CPython: {n})"))
                .unwrap_or_default();
            // A headline is a timing too: an unoptimized one says so.
            let build = if self.profile.optimized || h.ours.contains("debug") {
                ""
            } else {
                " [debug build]"
            };
            self.output
                .table(format!("=> {}: {}{}{build}\n", h.claim, h.ours, notes));
        }
        self
    }

    fn emit(&self, title: Option<&str>, group: &str, rows: &[Row]) {
        for row in rows {
            let mut value = serde_json::to_value(row).unwrap_or_default();
            if let Some(obj) = value.as_object_mut() {
                obj.insert("record".into(), "row".into());
            }
            self.output.json_line(&value);
        }
        let mut text = render_table(title.unwrap_or(group), &self.profile, rows);
        // The first table a person sees says what its columns mean.
        if !self.output.is_json() && !self.output.is_silent() && !LEGEND_SHOWN.swap(true, Relaxed) {
            text.push_str(LEGEND);
        }
        self.output.table(text);
    }
}

/// Whether this process has printed [`LEGEND`] yet: once, under the first
/// table, however many reports (the tour makes one per stage) follow.
static LEGEND_SHOWN: AtomicBool = AtomicBool::new(false);

/// What the columns of every report table mean, printed under the first.
pub const LEGEND: &str = concat!(
    "  (runs: timed runs of the case, after a warm-up unless it waits; median: the\n",
    "   middle one's wall-clock time, a whole run of `ops` operations; per op:\n",
    "   median / ops, what the title says one operation is; ratio: per op over\n",
    "   the baseline's, the case it is compared with, measured in the same run;\n",
    "   rows marked CPython are the notes' listing run here by our script, else\n",
    "   quoted from the source named; they are compared among themselves)\n",
);
/// Set each row's ratio to its cost per op over its baseline's.
///
/// Per op rather than per run, so that a case may run a different count
/// from its baseline (a thousand greenlet lives against a million switches)
/// and still be compared fairly; with equal counts the two are the same.
fn fill_ratios(rows: &mut [Row]) {
    let per_op: BTreeMap<String, f64> =
        rows.iter().map(|r| (r.case.clone(), r.ns_per_op)).collect();
    for row in rows.iter_mut() {
        row.ratio = row
            .baseline
            .as_ref()
            .and_then(|b| per_op.get(b))
            .filter(|&&base| base > 0.0)
            .map(|base| row.ns_per_op / base);
    }
}

/// The table a person reads: one line per row, quoted rows marked.
pub fn render_table(title: &str, profile: &Profile, rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n{title}  [{profile}]");
    let width = rows.iter().map(|r| r.case.len()).max().unwrap_or(4).max(4);
    let with_rss = rows.iter().any(|r| r.rss_bytes.is_some());
    let with_instructions = rows.iter().any(|r| r.instructions_per_op().is_some());
    let _ = write!(
        out,
        "  {:<width$}  {:>4}  {:>10}  {:>10}  {:>8}",
        "case", "runs", "median", "per op", "ratio"
    );
    if with_instructions {
        let _ = write!(out, "  {:>9}", "instr/op");
    }
    if with_rss {
        let _ = write!(out, "  {:>10}  {:>9}", "rss", "rss/op");
    }
    let _ = writeln!(out);
    for row in rows {
        let ratio = row
            .ratio
            .map_or_else(|| "-".to_string(), |r| format!("{r:.2}x"));
        let runs = if row.source == "quoted" {
            "-".to_string()
        } else {
            row.runs.to_string()
        };
        let _ = write!(
            out,
            "  {:<width$}  {runs:>4}  {:>10}  {:>10}  {:>8}",
            row.case,
            human_seconds(row.median_seconds),
            human_seconds(row.ns_per_op / 1e9),
            ratio
        );
        if with_instructions {
            let instructions = row
                .instructions_per_op()
                .map_or_else(|| "-".into(), human_count);
            let _ = write!(out, "  {instructions:>9}");
        }
        if with_rss {
            let rss = row.rss_bytes.map_or_else(|| "-".into(), human_bytes);
            let per = row
                .rss_bytes_per_op
                .map_or_else(|| "-".into(), |b| human_bytes(b as u64));
            let _ = write!(out, "  {rss:>10}  {per:>9}");
        }
        match row.source.as_str() {
            "quoted" => {
                let _ = write!(out, "  (quoted: {})", row.profile);
            }
            "cpython" => {
                let _ = write!(out, "  ({})", row.profile);
            }
            _ => {}
        }
        let _ = writeln!(out);
    }
    out
}

/// `0.000000025` → `"25.0 ns"`, `1.5` → `"1.50 s"`: three significant figures.
/// The unit and the decimals are chosen for the value as it will be shown,
/// rounded: `0.9996` is `"1.00 s"`, not `"1000 ms"`.
pub fn human_seconds(seconds: f64) -> String {
    // Below these a value rounds (to three figures) to less than the next
    // unit or decimal place; at or above them, to at least it.
    const NEXT_UNIT: f64 = 0.9995;
    let (value, unit) = if seconds >= NEXT_UNIT {
        (seconds, "s")
    } else if seconds >= NEXT_UNIT * 1e-3 {
        (seconds * 1e3, "ms")
    } else if seconds >= NEXT_UNIT * 1e-6 {
        (seconds * 1e6, "µs")
    } else {
        (seconds * 1e9, "ns")
    };
    if value >= 99.95 {
        format!("{value:.0} {unit}")
    } else if value >= 9.995 {
        format!("{value:.1} {unit}")
    } else {
        format!("{value:.2} {unit}")
    }
}

/// An instruction count per op: whole above 100, one decimal below
/// (`154.37` → `"154"`, `3.52` → `"3.5"`).
pub fn human_count(count: f64) -> String {
    if count >= 100.0 {
        format!("{count:.0}")
    } else {
        format!("{count:.1}")
    }
}

/// `8192` → `"8.0 KiB"`.
pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.1} GiB", b / (1u64 << 30) as f64)
    } else if b >= (1u64 << 20) as f64 {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Case, Quote};

    fn group() -> Group {
        Group::new("g")
            .case(Case::new("fast", 10, || 1u64).expect(1))
            .case(
                Case::new("slow", 10, || {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    1u64
                })
                .baseline("fast")
                .expect(1),
            )
            .quote(Quote::new("CPython", "fast", 1.0, 10))
            .quote(Quote::new("CPython", "slow", 3.0, 10).baseline("fast"))
    }

    #[test]
    fn ratios_compare_measured_with_measured_and_quoted_with_quoted() {
        let mut report = Report::new("t", Output::silent());
        let rows = report.measure(group(), &Plan::quick()).unwrap();
        assert_eq!(rows.len(), 4);
        assert!(rows[1].ratio.unwrap() > 1.0);
        assert_eq!(rows[3].ratio, Some(3.0));
        assert_eq!(rows[3].source, "quoted");
    }

    #[test]
    fn a_ratio_compares_cost_per_op_when_counts_differ() {
        let mut rows = Report::new("t", Output::silent())
            .measure(group(), &Plan::quick())
            .unwrap();
        // The same time for twice the ops is half the cost per op.
        rows[0].ops = 5;
        rows[0].ns_per_op = rows[0].median_seconds * 1e9 / 5.0;
        rows[1].ops = 10;
        rows[1].median_seconds = rows[0].median_seconds;
        rows[1].ns_per_op = rows[1].median_seconds * 1e9 / 10.0;
        fill_ratios(&mut rows[..2]);
        assert!((rows[1].ratio.unwrap() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn json_rows_carry_the_documented_fields() {
        let mut report = Report::new("t", Output::silent());
        let rows = report.measure(group(), &Plan::quick()).unwrap();
        let value = serde_json::to_value(&rows[1]).unwrap();
        for field in crate::json::ROW_FIELDS {
            assert!(value.get(field).is_some(), "missing {field}");
        }
        assert!(value.get("rss_bytes").is_none());
    }

    #[test]
    fn memory_cases_carry_rss_per_op_in_json_and_the_table() {
        let group = Group::new("m")
            .case(Case::new("sleepers", 4, || crate::Outcome::with_rss(4, 8192)).expect(4));
        let rows = Report::new("t", Output::silent())
            .measure(group, &Plan::quick())
            .unwrap();
        let value = serde_json::to_value(&rows[0]).unwrap();
        assert_eq!(value["rss_bytes"], 8192);
        assert_eq!(value["rss_bytes_per_op"], 2048.0);
        let text = render_table("m", &Profile::current(), &rows);
        assert!(
            text.contains("rss/op") && text.contains("2.0 KiB"),
            "{text}"
        );
    }

    #[test]
    fn the_table_names_the_build_and_every_case() {
        let rows = Report::new("t", Output::silent())
            .measure(group(), &Plan::quick())
            .unwrap();
        let text = render_table("title", &Profile { optimized: false }, &rows);
        assert!(text.contains("DEBUG build"));
        assert!(text.contains("slow") && text.contains("(quoted: CPython)"));
    }

    #[test]
    fn the_table_says_how_many_runs_are_behind_each_median() {
        let rows = Report::new("t", Output::silent())
            .measure(group(), &Plan::exactly(0, 2))
            .unwrap();
        let text = render_table("title", &Profile::current(), &rows);
        let header = text.lines().find(|l| l.contains("case")).unwrap();
        assert!(
            header.contains("runs") && header.contains("median"),
            "{text}"
        );
        let fast = text
            .lines()
            .find(|l| l.trim_start().starts_with("fast"))
            .unwrap();
        assert_eq!(fast.split_whitespace().nth(1), Some("2"), "{text}");
        // A quoted figure was never run here.
        let quoted = text.lines().find(|l| l.contains("(quoted")).unwrap();
        assert_eq!(quoted.split_whitespace().nth(1), Some("-"), "{text}");
    }

    #[test]
    fn the_legend_explains_every_column() {
        for column in ["runs:", "median:", "per op:", "ratio:", "quoted", "CPython"] {
            assert!(LEGEND.contains(column), "{column}");
        }
    }

    #[test]
    fn human_units() {
        assert_eq!(human_seconds(25e-9), "25.0 ns");
        assert_eq!(human_seconds(1.5), "1.50 s");
        assert_eq!(human_seconds(0.0123), "12.3 ms");
        // Rounding never gives four figures or a unit's worth of the one below.
        assert_eq!(human_seconds(0.9996), "1.00 s");
        assert_eq!(human_seconds(0.9994), "999 ms");
        assert_eq!(human_seconds(0.09996), "100 ms");
        assert_eq!(human_seconds(0.009996), "10.0 ms");
        assert_eq!(human_seconds(999.6e-9), "1.00 µs");
        assert_eq!(human_bytes(8192), "8.0 KiB");
    }
}
