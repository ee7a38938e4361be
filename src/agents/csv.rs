//! `csv` — Huginn's CsvAgent: `mode: parse` reads the CSV text at `data_path` of each
//! received event and emits a row per event (`output: event_per_row`) or all rows in one
//! (`event_per_file`), as objects by header (`with_header`, optionally only `use_fields`)
//! or as lists; `mode: serialize` writes the value at `data_path` (an object, a list of
//! objects or of lists) as CSV with every field quoted. Emitted under `data_key`.
//!
//! Differences from Huginn: file pointers (`require_signed_file_pointer`) are not
//! supported; `serialize` makes one CSV per received event (Huginn makes one per batch);
//! and a header is in the key order of muninn's JSON objects (sorted), not insertion.

use serde_json::{Map, Value};

use super::json_parse::{present, text_of};
use super::{AgentCtx, Behavior, OptionError, opt_bool};
use crate::jsonpath::{BoundedPath, PathError, QueryError};
use crate::store::events::EventRow;
use crate::template::{TemplateError, TemplateTree, Templates};

/// Rows one event may make (Huginn has no bound).
pub const MAX_ROWS: usize = 10_000;

pub struct Csv {
    templates: Templates,
    options: TemplateTree,
    serialize: bool,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    Csv::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(Csv::new(options)?))
}

impl Csv {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        if !matches!(opt_bool(options, "with_header"), Ok(Some(_))) {
            return Err(OptionError::new(
                "with_header",
                "is required and must be set to 'true' or 'false'",
            ));
        }
        let serialize = text_of(options.get("mode")) == "serialize";
        if serialize && !present(options.get("data_path")) {
            return Err(OptionError::new(
                "data_path",
                "has to be present when mode is set to serialize",
            ));
        }
        let mut templates = Templates::liquid();
        let options = templates
            .add_tree("options", options)
            .map_err(OptionError::template)?;
        Ok(Csv {
            templates,
            options,
            serialize,
        })
    }
}

/// Why an event gave no CSV events.
#[derive(Debug, thiserror::Error)]
enum CsvError {
    #[error("Could not interpolate the options: {0}")]
    Options(TemplateError),
    #[error("option \"separator\" must be one character (got {0:?})")]
    Separator(String),
    #[error("option \"data_path\" is not a valid JSONPath: {0}")]
    DataPath(PathError),
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The data is not CSV (parsing), or a row cannot be written (serializing).
    #[error(transparent)]
    Csv(#[from] csv::Error),
    #[error("{0}")]
    Output(String),
}

fn separator(opts: &Value) -> Result<u8, CsvError> {
    match text_of(opts.get("separator")).as_str() {
        "" => Ok(b','),
        "\\t" | "\t" => Ok(b'\t'),
        s if s.len() == 1 => Ok(s.as_bytes()[0]),
        s => Err(CsvError::Separator(s.to_string())),
    }
}

fn fields(opts: &Value) -> Vec<String> {
    text_of(opts.get("use_fields"))
        .split(',')
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty())
        .collect()
}

fn parse(text: &str, opts: &Value, sep: u8) -> Result<Vec<Value>, CsvError> {
    let header = opt_bool(opts, "with_header")
        .ok()
        .flatten()
        .unwrap_or(false);
    let wanted = fields(opts);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(sep)
        .has_headers(header)
        .flexible(true)
        .from_reader(text.as_bytes());
    let names: Vec<String> = if header {
        let h = reader.headers()?;
        h.iter().map(str::to_string).collect()
    } else {
        Vec::new()
    };
    let mut rows = Vec::new();
    for record in reader.records().take(MAX_ROWS) {
        let record = record?;
        let row = if header {
            let mut m = Map::new();
            for (name, value) in names.iter().zip(record.iter()) {
                if wanted.is_empty() || wanted.contains(name) {
                    m.insert(name.clone(), Value::String(value.to_string()));
                }
            }
            Value::Object(m)
        } else {
            Value::Array(
                record
                    .iter()
                    .map(|v| Value::String(v.to_string()))
                    .collect(),
            )
        };
        rows.push(row);
    }
    Ok(rows)
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn serialize(data: &Value, opts: &Value, sep: u8) -> Result<String, CsvError> {
    let rows: Vec<&Value> = match data {
        Value::Array(items) if items.first().is_some_and(|f| f.is_array() || f.is_object()) => {
            items.iter().take(MAX_ROWS).collect()
        }
        other => vec![other],
    };
    let wanted = fields(opts);
    let mut w = csv::WriterBuilder::new()
        .delimiter(sep)
        .quote_style(csv::QuoteStyle::Always)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let header = opt_bool(opts, "with_header")
        .ok()
        .flatten()
        .unwrap_or(false);
    if header && let Some(Value::Object(first)) = rows.first() {
        let names: Vec<String> = if wanted.is_empty() {
            first.keys().cloned().collect()
        } else {
            wanted.clone()
        };
        w.write_record(&names)?;
    }
    for row in rows {
        let cells: Vec<String> = match row {
            Value::Object(m) if wanted.is_empty() => m.values().map(cell).collect(),
            Value::Object(m) => wanted.iter().filter_map(|f| m.get(f)).map(cell).collect(),
            Value::Array(a) => a.iter().map(cell).collect(),
            other => vec![cell(other)],
        };
        w.write_record(&cells)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| CsvError::Output(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| CsvError::Output(e.to_string()))
}

impl Behavior for Csv {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        let rctx = ctx.event_ctx(event, payload);
        let result = self
            .templates
            .render_tree(&self.options, &rctx)
            .map_err(CsvError::Options)
            .and_then(|opts| {
                let sep = separator(&opts)?;
                let path = text_of(opts.get("data_path"));
                let path = if path.trim().is_empty() {
                    "$.data".to_string()
                } else {
                    path
                };
                let data = BoundedPath::parse_huginn(&path)
                    .map_err(CsvError::DataPath)?
                    .first(payload)?
                    .cloned()
                    .unwrap_or(Value::Null);
                let key = text_of(opts.get("data_key"));
                let key = if key.is_empty() {
                    "data".to_string()
                } else {
                    key
                };
                let mut out = Vec::new();
                if self.serialize {
                    out.push(Value::String(serialize(&data, &opts, sep)?));
                } else {
                    let rows = parse(&text_of(Some(&data)), &opts, sep)?;
                    if text_of(opts.get("output")) == "event_per_file" {
                        out.push(Value::Array(rows));
                    } else {
                        out = rows;
                    }
                }
                Ok(out
                    .into_iter()
                    .map(|v| Value::Object(Map::from_iter([(key.clone(), v)])))
                    .collect::<Vec<_>>())
            });
        match result {
            Ok(events) => events.into_iter().for_each(|e| ctx.emit(e)),
            Err(e) => ctx.error(e.to_string()),
        }
    }
}
