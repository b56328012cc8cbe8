//! CPython's side of each comparison, measured on this machine when it can
//! be, quoted (and labelled as quoted) when it cannot.
//!
//! The lessons set our figures beside the notes' CPython timings. A figure
//! from another machine and another year only hints at the comparison; the
//! same listing run here, in the same lesson, makes it. So a group may carry
//! a [`Script`]: a small Python program of our own that runs the notes'
//! listing and prints its timings as one JSON object. When `python3` (with
//! the module the listing needs, `greenlet` or `gevent`) is there, the
//! group's CPython rows are *measured here* (`source: "cpython"`); when it
//! is not, they fall back to the group's [`Quote`]s
//! (`source: "quoted"`), each naming where its figure comes from.
//!
//! The interpreter is `python3` on the `PATH`, or whatever
//! `COROUTINES_PYTHON` names; `COROUTINES_PYTHON=none` turns measuring off.
//!
//! A script is run as `python3 - ARGS…` with its text on stdin. It prints
//! `{"python": "3.11.7", "modules": {"greenlet": "3.1.1"}, "runs": 3,
//! "cases": {"KEY": {"seconds": …, "ops": …}, …}}`, the seconds being the
//! median of its timed runs, or exits with status 3 when a module it needs
//! is missing (saying which on stderr).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::case::Quote;

/// Exit status with which a script says a module it needs is missing.
pub const MISSING_MODULE: i32 = 3;

/// The environment variable naming the interpreter (`none`: do not measure).
pub const PYTHON_VAR: &str = "COROUTINES_PYTHON";

/// The interpreter to measure with: `$COROUTINES_PYTHON`, else `python3`;
/// `None` when `COROUTINES_PYTHON` is `none` or empty.
pub fn interpreter() -> Option<PathBuf> {
    match std::env::var_os(PYTHON_VAR) {
        Some(v) if v.is_empty() || v == "none" => None,
        Some(v) => Some(PathBuf::from(v)),
        None => Some(PathBuf::from("python3")),
    }
}

/// One Python listing of the notes, and the rows it gives a group.
#[derive(Debug, Clone)]
pub struct Script {
    name: String,
    source: String,
    args: Vec<String>,
    needs: Option<String>,
    rows: Vec<(String, String, Option<String>)>,
}

impl Script {
    /// The script `name` (its file name, for messages) with text `source`.
    pub fn new(name: impl Into<String>, source: impl Into<String>) -> Self {
        Script {
            name: name.into(),
            source: source.into(),
            args: Vec::new(),
            needs: None,
            rows: Vec::new(),
        }
    }

    /// The script imports `module` (`greenlet`, `gevent`), installed with pip.
    pub fn needs(mut self, module: &str) -> Self {
        self.needs = Some(module.into());
        self
    }

    /// What measures these figures, for the line saying they are quoted:
    /// "python3 with greenlet (pip install greenlet)".
    pub fn describe(&self) -> String {
        match &self.needs {
            Some(m) => format!("python3 with {m} (`pip install {m}`)"),
            None => "python3".into(),
        }
    }

    /// Pass `arg` on the script's command line.
    pub fn arg(mut self, arg: impl ToString) -> Self {
        self.args.push(arg.to_string());
        self
    }

    /// The timing the script reports under `key` becomes the row `case`
    /// (compared with the row `baseline`, if given).
    pub fn row(mut self, key: &str, case: &str, baseline: Option<&str>) -> Self {
        self.rows
            .push((key.into(), case.into(), baseline.map(str::to_string)));
        self
    }

    /// Run the script with `python` and turn its timings into CPython
    /// figures measured here, or say why it could not.
    pub fn measure(&self, python: Option<&std::path::Path>) -> Result<Vec<Quote>, Unmeasured> {
        let python = python.ok_or_else(|| Unmeasured(format!("{PYTHON_VAR}=none")))?;
        let mut child = Command::new(python)
            .arg("-")
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Unmeasured(format!("no {} ({e})", python.display())))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(self.source.as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|e| Unmeasured(format!("{} failed: {e}", self.name)))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last_line = stderr.lines().last().unwrap_or_default().trim().to_string();
        if out.status.code() == Some(MISSING_MODULE) {
            return Err(Unmeasured(last_line));
        }
        if !out.status.success() {
            return Err(Unmeasured(format!("{} failed: {last_line}", self.name)));
        }
        let report: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| Unmeasured(format!("{} printed no JSON report ({e})", self.name)))?;
        let label = label(&report);
        let runs = report["runs"].as_u64().unwrap_or(1) as usize;
        self.rows
            .iter()
            .map(|(key, case, baseline)| {
                let figure = &report["cases"][key];
                let (Some(seconds), Some(ops)) =
                    (figure["seconds"].as_f64(), figure["ops"].as_u64())
                else {
                    return Err(Unmeasured(format!("{} reported no `{key}`", self.name)));
                };
                let mut quote =
                    Quote::new(label.clone(), case.clone(), seconds, ops).measured(runs);
                if let Some(b) = baseline {
                    quote = quote.baseline(b.clone());
                }
                Ok(quote)
            })
            .collect()
    }
}

/// `CPython 3.11.7 + greenlet 3.1.1, measured here`.
fn label(report: &Value) -> String {
    let python = report["python"].as_str().unwrap_or("?");
    let modules: BTreeMap<String, String> = report["modules"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("?").to_string()))
                .collect()
        })
        .unwrap_or_default();
    let mut text = format!("CPython {python}");
    for (module, version) in modules {
        text.push_str(&format!(" + {module} {version}"));
    }
    text.push_str(", measured here");
    text
}

/// Why a group's CPython figures are the quoted ones this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmeasured(pub String);

impl std::fmt::Display for Unmeasured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = r#"
import json, sys
n = int(sys.argv[1])
if len(sys.argv) > 2:
    print("no module named greenlet: pip install greenlet", file=sys.stderr)
    sys.exit(3)
print(json.dumps({"python": "3.x", "modules": {"greenlet": "9.9"}, "runs": 2,
                  "cases": {"loop": {"seconds": 0.5, "ops": n}}}))
"#;

    /// `python3`, or `None` (and a note) on a machine without it; CI has it.
    fn python3() -> Option<PathBuf> {
        let found = Command::new("python3")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found || std::env::var_os("CI").is_none(),
            "CI needs python3"
        );
        found.then(|| PathBuf::from("python3"))
    }

    #[test]
    fn a_script_s_timings_become_figures_measured_here() {
        let Some(python) = python3() else { return };
        let script = Script::new("tiny.py", TINY)
            .arg(10)
            .row("loop", "a loop (CPython)", None);
        let figures = script.measure(Some(&python)).unwrap();
        assert_eq!(figures.len(), 1);
        assert_eq!(
            figures[0].source,
            "CPython 3.x + greenlet 9.9, measured here"
        );
        assert_eq!(
            (figures[0].seconds, figures[0].ops, figures[0].runs),
            (0.5, 10, 2)
        );
        assert!(figures[0].measured);
    }

    #[test]
    fn a_missing_module_or_interpreter_says_why() {
        let script = Script::new("tiny.py", TINY).arg(10).arg("need");
        if let Some(python) = python3() {
            let why = script.measure(Some(&python)).unwrap_err();
            assert!(why.0.contains("pip install greenlet"), "{why}");
        }
        let why = script
            .measure(Some("/nonexistent/python3".as_ref()))
            .unwrap_err();
        assert!(why.0.contains("/nonexistent/python3"), "{why}");
        assert!(script.measure(None).is_err());
    }
}
