//! `report.json`: the source of truth, described by `reports/report.schema.json`.

use crate::model::Report;

/// Pretty JSON with a trailing newline.
pub fn render(report: &Report) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(report).expect("a report always serializes");
    bytes.push(b'\n');
    bytes
}

/// The JSON Schema of `report.json`, generated from the model; the committed
/// copy under `reports/` is compared against it in a test.
pub fn schema() -> Vec<u8> {
    let schema = schemars::schema_for!(Report);
    let mut bytes = serde_json::to_vec_pretty(&schema).expect("a schema always serializes");
    bytes.push(b'\n');
    bytes
}
