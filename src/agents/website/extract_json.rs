//! JSON documents: each extraction's `path` (Huginn's JSONPath, through the bounded
//! evaluator in `crate::jsonpath`) gives its values.

use serde_json::Value;

use super::error::ExtractError;
use super::extract::{Extractor, How};

/// Each extraction's values, in `extract` order.
pub fn values(doc: &Value, extractors: &[Extractor]) -> Result<Vec<Vec<Value>>, ExtractError> {
    extractors
        .iter()
        .map(|e| match &e.how {
            How::Json(path) => path
                .query(doc)
                .map(|found| found.into_iter().cloned().collect())
                .map_err(|err| ExtractError::Evaluate {
                    name: e.name.clone(),
                    option: "path",
                    message: err.to_string(),
                }),
            _ => Err(ExtractError::WrongKind {
                name: e.name.clone(),
                needs: "a \"path\" for type json",
            }),
        })
        .collect()
}
