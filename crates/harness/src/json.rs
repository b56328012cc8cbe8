//! Reading a report back: the JSON lines `--json` prints.
//!
//! `--json` is a contract other tools rely on (plots, checks, the tests of
//! every stage binary): stdout carries nothing but JSON objects, one a line,
//! each a `"row"` with the fields [`Row`](crate::Row) documents or a
//! `"headline"`. [`read_report`] checks exactly that, so every consumer
//! holds the output to the same promise.

use serde_json::Value;

/// The fields every `"row"` record carries, whatever the stage.
pub const ROW_FIELDS: [&str; 8] = [
    "stage",
    "group",
    "case",
    "baseline",
    "ops",
    "median_seconds",
    "ns_per_op",
    "ratio",
];

/// Parse `text` (a stage's stdout under `--json`) into its records, or say
/// which line breaks the contract: a line that is not JSON, a record that
/// is neither a row nor a headline, or a row missing one of [`ROW_FIELDS`].
///
/// ```
/// let good = r#"{"record":"headline","stage":"s","claim":"c","ours":"1x","notes":null}"#;
/// assert_eq!(harness::json::read_report(good).unwrap().len(), 1);
/// let err = harness::json::read_report("table").unwrap_err();
/// assert!(err.contains("not JSON"), "{err}");
/// ```
pub fn read_report(text: &str) -> Result<Vec<Value>, String> {
    text.lines()
        .map(|line| {
            let value: Value =
                serde_json::from_str(line).map_err(|e| format!("not JSON ({e}): {line}"))?;
            match value["record"].as_str() {
                Some("row") => {
                    if let Some(missing) = ROW_FIELDS.iter().find(|f| value.get(**f).is_none()) {
                        return Err(format!("a row without `{missing}`: {line}"));
                    }
                }
                Some("headline") => {}
                other => return Err(format!("unexpected record {other:?}: {line}")),
            }
            Ok(value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Case, Group, Output, Plan, Report};

    #[test]
    fn a_report_reads_back_and_a_row_missing_a_field_does_not() {
        let mut report = Report::new("t", Output::silent());
        let rows = report
            .measure(
                Group::new("g").case(Case::new("one", 1, || 1u64)),
                &Plan::exactly(0, 1),
            )
            .unwrap();
        let mut value = serde_json::to_value(&rows[0]).unwrap();
        value["record"] = "row".into();
        assert_eq!(read_report(&value.to_string()).unwrap().len(), 1);
        value.as_object_mut().unwrap().remove("ratio");
        let err = read_report(&value.to_string()).unwrap_err();
        assert!(err.contains("without `ratio`"), "{err}");
    }
}
