//! One results file per stage: what its lesson measured, and the machine.
//!
//! `<DIR>/<stage>.json` holds the stage's report rows and headlines exactly
//! as `--json` prints them, the machine that made them and the scale. Every
//! table, value, chart and timeline is made from these files, so a stage can
//! be measured again alone (`figures --only stage-x`) and every figure that
//! mixes stages is rebuilt from what is on disk.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::Path;

use harness::Report;
use serde_json::{json, Value};

use super::machine::Machine;

/// What one stage measured.
#[derive(Debug, Clone)]
pub struct Results {
    /// The stage (`stage-greenlet`).
    pub stage: String,
    /// `full` or `quick`.
    pub scale: String,
    /// The machine.
    pub machine: Machine,
    /// Every report row, as `--json` prints it.
    pub rows: Vec<Value>,
    /// Every headline.
    pub headlines: Vec<Value>,
    /// Figures that are not report rows (the CPython greenlet, say).
    pub extra: BTreeMap<String, Value>,
}

impl Results {
    /// The results of `report`, made on `machine`.
    pub fn from_report(report: &Report, machine: &Machine, quick: bool) -> Results {
        Results {
            stage: report
                .rows()
                .first()
                .map_or_else(String::new, |r| r.stage.clone()),
            scale: if quick { "quick" } else { "full" }.to_string(),
            machine: machine.clone(),
            rows: report
                .rows()
                .iter()
                .map(|r| serde_json::to_value(r).unwrap_or_default())
                .collect(),
            headlines: report
                .headlines()
                .iter()
                .map(|h| serde_json::to_value(h).unwrap_or_default())
                .collect(),
            extra: BTreeMap::new(),
        }
    }

    /// Write `<dir>/<stage>.json`.
    pub fn save(&self, dir: &Path) -> Result<(), Box<dyn Error>> {
        let value = json!({
            "stage": self.stage,
            "scale": self.scale,
            "machine": self.machine.to_json(),
            "rows": self.rows,
            "headlines": self.headlines,
            "extra": self.extra,
        });
        let path = dir.join(format!("{}.json", self.stage));
        std::fs::write(&path, serde_json::to_string_pretty(&value)? + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(())
    }

    /// Read `<dir>/<stage>.json`, if it is there.
    pub fn load(dir: &Path, stage: &str) -> Result<Option<Results>, Box<dyn Error>> {
        let path = dir.join(format!("{stage}.json"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(None);
        };
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a results file: {e}", path.display()))?;
        let list = |k: &str| v[k].as_array().cloned().unwrap_or_default();
        Ok(Some(Results {
            stage: stage.to_string(),
            scale: v["scale"].as_str().unwrap_or("full").to_string(),
            machine: Machine::from_json(&v["machine"]),
            rows: list("rows"),
            headlines: list("headlines"),
            extra: v["extra"]
                .as_object()
                .map(|o| o.clone().into_iter().collect())
                .unwrap_or_default(),
        }))
    }

    /// The measured row `case` of `group`.
    pub fn row(&self, group: &str, case: &str) -> Result<&Value, String> {
        self.find(group, case, "measured")
    }

    /// CPython's row `case` of `group`: measured here (`source: "cpython"`)
    /// when python3 could run the listing, else the quoted figure.
    pub fn cpython(&self, group: &str, case: &str) -> Result<&Value, String> {
        self.find(group, case, "cpython")
            .or_else(|_| self.find(group, case, "quoted"))
    }

    /// The row `case` of `group` quoted from elsewhere (the notes).
    pub fn quoted(&self, group: &str, case: &str) -> Result<&Value, String> {
        self.find(group, case, "quoted")
    }

    fn find(&self, group: &str, case: &str, source: &str) -> Result<&Value, String> {
        self.rows
            .iter()
            .find(|r| r["group"] == group && r["case"] == case && r["source"] == source)
            .ok_or_else(|| {
                format!(
                    "{}: no {source} row `{case}` in group `{group}` (has the stage renamed it?)",
                    self.stage
                )
            })
    }

    /// Every row of `group`, measured first, as the report printed them.
    pub fn group(&self, group: &str) -> Vec<&Value> {
        self.rows.iter().filter(|r| r["group"] == group).collect()
    }

    /// The rows whose case starts with `prefix` in `group`, measured.
    pub fn rows_like(&self, group: &str, prefix: &str) -> Vec<&Value> {
        self.rows
            .iter()
            .filter(|r| {
                r["group"] == group
                    && r["source"] == "measured"
                    && r["case"].as_str().is_some_and(|c| c.starts_with(prefix))
            })
            .collect()
    }
}

/// Whether a CPython row was measured here (rather than quoted).
pub fn measured_here(row: &Value) -> bool {
    row["source"] == "cpython"
}

/// A number field of a row.
pub fn num(row: &Value, field: &str) -> Result<f64, String> {
    row[field]
        .as_f64()
        .ok_or_else(|| format!("row `{}` has no number `{field}`", row["case"]))
}
