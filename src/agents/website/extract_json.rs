//! JSON documents: each extraction's `path` (Huginn's JSONPath, through the bounded
//! evaluator in `crate::jsonpath`) gives its values.

use serde_json::Value;

use super::extract::{Extractor, How};

/// Each extraction's values, in `extract` order.
pub fn values(doc: &Value, extractors: &[Extractor]) -> Result<Vec<Vec<Value>>, String> {
    extractors
        .iter()
        .map(|e| match &e.how {
            How::Json(path) => path
                .query(doc)
                .map(|found| found.into_iter().cloned().collect())
                .map_err(|err| format!("extract.{}.path: {err}", e.name)),
            _ => Err(format!(
                "extract.{}: needs a \"path\" for type json",
                e.name
            )),
        })
        .collect()
}
