//! `extract`: what each extraction is (compiled at save), and how the values of all
//! extractions become rows — Huginn's `Output`/`Repeater`: every extraction must match
//! the same number of times ("Got an uneven number of matches") except `repeat` ones,
//! whose first value goes into every row; `hidden` values are left out of the event but
//! stay visible to `template`.

use serde_json::{Map, Value};

use super::error::ExtractError;
use super::options::{DocType, MAX_VALUES, json_path, ruby_regex};
use crate::agents::{OptionError, opt_bool};
use crate::jsonpath::BoundedPath;

/// An HTML/XML node set: a CSS selector (compiled per run from checked text) or XPath.
#[derive(Debug, Clone)]
pub enum Select {
    Css(String),
    XPath(String),
}

#[derive(Debug, Clone)]
pub enum Index {
    Number(usize),
    Name(String),
}

#[derive(Debug, Clone)]
pub enum How {
    /// `css`/`xpath` then `value` (an XPath, `.` by default; may be a Liquid template).
    Node {
        select: Select,
        value: String,
        raw: bool,
        single_array: bool,
    },
    Json(BoundedPath),
    Text {
        regex: regex::Regex,
        index: Index,
    },
}

#[derive(Debug, Clone)]
pub struct Extractor {
    pub name: String,
    pub how: How,
    pub repeat: bool,
    pub hidden: bool,
}

fn bad(message: String) -> OptionError {
    OptionError::new("extract", message)
}

/// Checks and compiles one extraction, with Huginn's messages.
pub fn compile(name: &str, details: &Value, doc_type: DocType) -> Result<Extractor, OptionError> {
    let flag = |k: &str| {
        opt_bool(details, k)
            .map(|b| b.unwrap_or(false))
            .map_err(|e| bad(format!("{name}: {e}")))
    };
    let how = match doc_type {
        DocType::Html | DocType::Xml => node_how(name, details)?,
        DocType::Json => match get(details, "path") {
            Some(Value::String(p)) => How::Json(json_path(name, p)?),
            Some(_) => {
                return Err(bad(format!(
                    "Wrong type of \"path\" value in extraction details for {name:?}"
                )));
            }
            None => {
                return Err(bad(format!(
                    "When type is json, all extractions must have a path attribute (bad extraction details for {name:?})"
                )));
            }
        },
        DocType::Text => text_how(name, get(details, "regexp"), get(details, "index"))?,
    };
    Ok(Extractor {
        name: name.to_string(),
        how,
        repeat: flag("repeat")?,
        hidden: flag("hidden")?,
    })
}

/// A detail given and not null.
fn get<'a>(details: &'a Value, k: &str) -> Option<&'a Value> {
    details.get(k).filter(|v| !v.is_null())
}

/// An HTML or XML extraction: `css` or `xpath`, then `value`, `raw`, `single_array`.
fn node_how(name: &str, details: &Value) -> Result<How, OptionError> {
    if let Some(m) = details.as_object()
        && let Some(k) = m.keys().find(|k| {
            !matches!(
                k.as_str(),
                "css" | "xpath" | "value" | "repeat" | "hidden" | "raw" | "single_array"
            )
        })
    {
        return Err(bad(format!("Unknown key {k:?} in extraction details")));
    }
    let flag = |k: &str| {
        opt_bool(details, k)
            .map(|b| b.unwrap_or(false))
            .map_err(|e| bad(format!("{name}: {e}")))
    };
    let select = match (get(details, "css"), get(details, "xpath")) {
        (Some(Value::String(css)), _) => {
            super::extract_html::check_css(css)
                .map_err(|e| OptionError::new(format!("extract.{name}.css"), e.to_string()))?;
            Select::Css(css.clone())
        }
        (Some(_), _) => {
            return Err(bad(format!(
                "Wrong type of \"css\" value in extraction details for {name:?}"
            )));
        }
        (None, Some(Value::String(x))) => {
            super::extract_html::check_xpath(x)
                .map_err(|e| OptionError::new(format!("extract.{name}.xpath"), e.to_string()))?;
            Select::XPath(x.clone())
        }
        (None, Some(_)) => {
            return Err(bad(format!(
                "Wrong type of \"xpath\" value in extraction details for {name:?}"
            )));
        }
        (None, None) => {
            return Err(bad(format!(
                "When type is html or xml, all extractions must have a css or xpath attribute (bad extraction details for {name:?})"
            )));
        }
    };
    Ok(How::Node {
        select,
        value: node_value(name, get(details, "value"))?,
        raw: flag("raw")?,
        single_array: flag("single_array")?,
    })
}

/// `value` of a node extraction: an XPath (`.` by default), or a Liquid template that
/// renders one at each run.
fn node_value(name: &str, value: Option<&Value>) -> Result<String, OptionError> {
    match value {
        None => Ok(".".to_string()),
        Some(Value::String(v)) => {
            // A templated value is compiled when it is rendered, at each run.
            if !crate::template::liquid::has_markup(v) {
                super::extract_html::check_xpath(v).map_err(|e| {
                    OptionError::new(format!("extract.{name}.value"), e.to_string())
                })?;
            } else {
                crate::template::validate_liquid_tree(
                    &format!("extract.{name}.value"),
                    &Value::String(v.clone()),
                )
                .map_err(OptionError::template)?;
            }
            Ok(v.clone())
        }
        Some(_) => Err(bad(format!(
            "Wrong type of \"value\" value in extraction details for {name:?}"
        ))),
    }
}

fn text_how(name: &str, regexp: Option<&Value>, index: Option<&Value>) -> Result<How, OptionError> {
    let regex = match regexp {
        Some(Value::String(r)) => {
            ruby_regex(r).map_err(|e| bad(format!("invalid regexp for {name:?}: {e}")))?
        }
        Some(_) => {
            return Err(bad(format!(
                "Wrong type of \"regexp\" value in extraction details for {name:?}"
            )));
        }
        None => {
            return Err(bad(format!(
                "When type is text, all extractions must have a regexp attribute (bad extraction details for {name:?})"
            )));
        }
    };
    let index = match index {
        Some(Value::Number(n)) if n.as_u64().is_some() => {
            Index::Number(n.as_u64().unwrap_or_default() as usize)
        }
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Index::Number(s.parse().unwrap_or(usize::MAX))
        }
        Some(Value::String(s)) => {
            if !regex.capture_names().flatten().any(|n| n == s) {
                return Err(bad(format!(
                    "no named capture {s:?} found in regexp for {name:?})"
                )));
            }
            Index::Name(s.clone())
        }
        Some(_) => {
            return Err(bad(format!(
                "Wrong type of \"index\" value in extraction details for {name:?}"
            )));
        }
        None => {
            return Err(bad(format!(
                "When type is text, all extractions must have an index attribute (bad extraction details for {name:?})"
            )));
        }
    };
    Ok(How::Text { regex, index })
}

/// The rows a document gives: each extraction's values by name, hidden ones included.
pub struct Rows {
    pub rows: Vec<Map<String, Value>>,
    pub hidden: Vec<String>,
}

/// Builds rows from each extraction's values (in `extract` order), as Huginn's `Output`.
/// `agent_name` and `extract_text` word the uneven-matches error as Huginn does.
pub fn rows(
    extractors: &[Extractor],
    values: Vec<Vec<Value>>,
    agent_name: &str,
    extract_text: &str,
) -> Result<Rows, ExtractError> {
    let mut size: Option<usize> = None;
    let mut columns: Vec<(&str, Column)> = Vec::with_capacity(extractors.len());
    for (e, vals) in extractors.iter().zip(values) {
        if e.repeat {
            let first = vals.into_iter().next().unwrap_or(Value::Null);
            columns.push((&e.name, Column::Repeat(first)));
            continue;
        }
        if vals.len() > MAX_VALUES {
            return Err(ExtractError::TooManyValues {
                name: e.name.clone(),
                count: vals.len(),
            });
        }
        match size {
            Some(s) if s != vals.len() => {
                return Err(ExtractError::UnevenMatches {
                    agent: agent_name.to_string(),
                    extract: extract_text.to_string(),
                });
            }
            _ => size = Some(vals.len()),
        }
        columns.push((&e.name, Column::Values(vals)));
    }
    let size = size.ok_or(ExtractError::NoNonRepeatKey)?;
    let mut rows: Vec<Map<String, Value>> = (0..size).map(|_| Map::new()).collect();
    for (name, column) in columns {
        match column {
            Column::Repeat(v) => {
                for row in &mut rows {
                    row.insert(name.to_string(), v.clone());
                }
            }
            Column::Values(vals) => {
                for (row, v) in rows.iter_mut().zip(vals) {
                    row.insert(name.to_string(), v);
                }
            }
        }
    }
    let hidden = extractors
        .iter()
        .filter(|e| e.hidden)
        .map(|e| e.name.clone())
        .collect();
    Ok(Rows { rows, hidden })
}

enum Column {
    Repeat(Value),
    Values(Vec<Value>),
}
