//! Text documents: each extraction's `regexp` is matched repeatedly from the start to
//! the end of the text (Ruby's `String#scan`), taking the group `index` (a number or a
//! name) of each match; a group that did not take part is null.

use serde_json::Value;

use super::error::ExtractError;
use super::extract::{Extractor, How, Index};
use super::options::MAX_VALUES;

/// Each extraction's values, in `extract` order.
pub fn values(text: &str, extractors: &[Extractor]) -> Result<Vec<Vec<Value>>, ExtractError> {
    extractors
        .iter()
        .map(|e| match &e.how {
            How::Text { regex, index } => {
                let mut out = Vec::new();
                for caps in regex.captures_iter(text) {
                    if out.len() >= MAX_VALUES {
                        return Err(ExtractError::TooManyMatches(e.name.clone()));
                    }
                    let m = match index {
                        Index::Number(i) => caps.get(*i),
                        Index::Name(n) => caps.name(n),
                    };
                    out.push(m.map_or(Value::Null, |m| Value::String(m.as_str().to_string())));
                }
                Ok(out)
            }
            _ => Err(ExtractError::WrongKind {
                name: e.name.clone(),
                needs: "a \"regexp\" and an \"index\" for type text",
            }),
        })
        .collect()
}
