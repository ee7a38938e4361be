//! Sort keys as Huginn's `SortableEvents` defines them (`events_order`,
//! `events_list_order`): a list of `expression` or `[expression, type, descending]`,
//! where `expression` is a template rendered against each event (with `_index_`, the
//! event's position in the list being sorted), `type` is `string` (default), `number`
//! or `time`, and earlier keys take precedence. Sorting is stable.

use std::cmp::Ordering;

use crate::template::RenderCtx as Context;
use chrono::{DateTime, FixedOffset};
use serde_json::Value;

use crate::options::{OptionError, type_name};
use crate::template::{TemplateId, Templates};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    String,
    Number,
    Time,
}

#[derive(Debug, Clone)]
pub struct SortKey {
    /// `None` is the built-in `{{_index_}}` (no template needed).
    expr: Option<TemplateId>,
    kind: KeyType,
    descending: bool,
}

impl SortKey {
    /// Huginn's default `events_list_order`: `[["{{_index_}}", "number", true]]`.
    pub fn index_descending() -> SortKey {
        SortKey {
            expr: None,
            kind: KeyType::Number,
            descending: true,
        }
    }
}

fn bool_of(v: &Value) -> Option<bool> {
    match v {
        Value::Null => Some(false),
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") || s.is_empty() => Some(false),
        _ => None,
    }
}

/// Parses an `events_order`-style option; `None` when absent or null.
pub fn parse(
    templates: &mut Templates,
    option: &str,
    value: Option<&Value>,
) -> Result<Option<Vec<SortKey>>, OptionError> {
    let list = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(OptionError::new(
                option,
                format!(
                    "must be a list of sort keys, each \"{{{{ expression }}}}\" or [\"{{{{ expression }}}}\", \"string\"|\"number\"|\"time\", descending?] (got {})",
                    type_name(other)
                ),
            ));
        }
    };
    let mut keys = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let label = format!("{option}[{i}]");
        let (expr, kind, desc) = match entry {
            Value::String(s) => (s.as_str(), None, &Value::Null),
            Value::Array(parts) if !parts.is_empty() && parts.len() <= 3 => {
                let Value::String(expr) = &parts[0] else {
                    return Err(OptionError::new(
                        label,
                        "first element must be a template string",
                    ));
                };
                (
                    expr.as_str(),
                    parts.get(1).filter(|v| !v.is_null()),
                    parts.get(2).unwrap_or(&Value::Null),
                )
            }
            _ => {
                return Err(OptionError::new(
                    label,
                    "must be \"{{ expression }}\" or [\"{{ expression }}\", type, descending]",
                ));
            }
        };
        let kind = match kind {
            None => KeyType::String,
            Some(Value::String(t)) if t == "string" => KeyType::String,
            Some(Value::String(t)) if t == "number" => KeyType::Number,
            Some(Value::String(t)) if t == "time" => KeyType::Time,
            Some(other) => {
                return Err(OptionError::new(
                    label,
                    format!(
                        "second element must be \"string\", \"number\" or \"time\" (got {other})"
                    ),
                ));
            }
        };
        let descending = bool_of(desc).ok_or_else(|| {
            OptionError::new(
                label.clone(),
                format!("third element must be true or false (got {desc})"),
            )
        })?;
        let expr = templates.add(&label, expr).map_err(OptionError::template)?;
        keys.push(SortKey {
            expr: Some(expr),
            kind,
            descending,
        });
    }
    Ok(Some(keys))
}

/// One evaluated key. Values of different kinds (a `time` that did not parse) compare
/// as their text, as Huginn's do.
#[derive(Debug, Clone)]
enum KeyValue {
    Str(String),
    Num(f64),
    Time(DateTime<FixedOffset>),
}

impl KeyValue {
    fn text(&self) -> String {
        match self {
            KeyValue::Str(s) => s.clone(),
            KeyValue::Num(n) => n.to_string(),
            KeyValue::Time(t) => t.to_rfc3339(),
        }
    }

    fn cmp(&self, other: &KeyValue) -> Ordering {
        match (self, other) {
            (KeyValue::Str(a), KeyValue::Str(b)) => a.cmp(b),
            (KeyValue::Num(a), KeyValue::Num(b)) => a.total_cmp(b),
            (KeyValue::Time(a), KeyValue::Time(b)) => a.cmp(b),
            (a, b) => a.text().cmp(&b.text()),
        }
    }
}

/// Ruby's `String#to_f`: the longest leading decimal number, or 0.
fn leading_number(s: &str) -> f64 {
    let s = s.trim_start();
    let bytes = s.as_bytes();
    let mut end = 0;
    let mut seen_digit = false;
    let mut seen_dot = false;
    let mut seen_exp = false;
    let mut best = 0;
    while end < bytes.len() {
        let c = bytes[end];
        match c {
            b'+' | b'-' if end == 0 => {}
            b'+' | b'-' if seen_exp && matches!(bytes[end - 1], b'e' | b'E') => {}
            b'0'..=b'9' => {
                seen_digit = true;
                best = end + 1;
            }
            b'.' if !seen_dot && !seen_exp => seen_dot = true,
            b'e' | b'E' if seen_digit && !seen_exp => seen_exp = true,
            b'_' if seen_digit => {}
            _ => break,
        }
        end += 1;
    }
    s[..best].replace('_', "").parse().unwrap_or(0.0)
}

fn evaluate(kind: KeyType, text: String) -> KeyValue {
    match kind {
        KeyType::String => KeyValue::Str(text),
        KeyType::Number => KeyValue::Num(leading_number(&text)),
        KeyType::Time => match super::time::parse(&text) {
            Some(t) => KeyValue::Time(t),
            None => KeyValue::Str(text),
        },
    }
}

/// Sorts `items` stably by `keys`. `context(item, index)` builds the render context of
/// one item; a key that fails to render sorts as an empty string.
pub fn sort<T>(
    templates: &Templates,
    keys: &[SortKey],
    items: Vec<T>,
    context: impl Fn(&T, usize) -> Context<'static>,
) -> Vec<T> {
    if keys.is_empty() {
        return items;
    }
    let mut keyed: Vec<(Vec<KeyValue>, usize, T)> = items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let needs_context = keys.iter().any(|k| k.expr.is_some());
            let ctx = needs_context.then(|| {
                let mut ctx = context(&item, index);
                ctx.insert("_index_", &index);
                ctx
            });
            let values = keys
                .iter()
                .map(|k| match (&k.expr, &ctx) {
                    (Some(expr), Some(ctx)) => {
                        let text = templates.render(expr, ctx).unwrap_or_else(|e| {
                            tracing::debug!(error = %e, "sort key did not render; sorting it as \"\"");
                            String::new()
                        });
                        evaluate(k.kind, text)
                    }
                    _ => KeyValue::Num(index as f64),
                })
                .collect();
            (values, index, item)
        })
        .collect();
    keyed.sort_by(|(a, ai, _), (b, bi, _)| {
        for (k, (x, y)) in keys.iter().zip(a.iter().zip(b)) {
            let c = x.cmp(y);
            if c != Ordering::Equal {
                return if k.descending { c.reverse() } else { c };
            }
        }
        ai.cmp(bi)
    });
    keyed.into_iter().map(|(_, _, item)| item).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(order: Value, items: Vec<Value>) -> Vec<Value> {
        let mut t = Templates::liquid();
        let keys = parse(&mut t, "events_order", Some(&order))
            .unwrap()
            .unwrap();
        sort(&t, &keys, items, |v, _| {
            crate::template::RenderCtx::from_map(v.as_object().cloned().unwrap_or_default())
        })
    }

    #[test]
    fn sorts_by_type_and_direction_stably() {
        let items = vec![
            json!({"n": "10", "s": "b", "t": "2026-01-02T00:00:00Z"}),
            json!({"n": "9", "s": "a", "t": "2026-01-01T00:00:00Z"}),
            json!({"n": "9", "s": "c", "t": "2026-01-03T00:00:00Z"}),
        ];
        let s = |v: Vec<Value>| {
            v.iter()
                .map(|x| x["s"].as_str().unwrap().to_string())
                .collect::<String>()
        };
        assert_eq!(s(run(json!(["{{ s }}"]), items.clone())), "abc");
        assert_eq!(s(run(json!([["{{ n }}", "string"]]), items.clone())), "bac");
        assert_eq!(s(run(json!([["{{ n }}", "number"]]), items.clone())), "acb");
        assert_eq!(
            s(run(json!([["{{ n }}", "number", true]]), items.clone())),
            "bac"
        );
        assert_eq!(
            s(run(json!([["{{ t }}", "time", true]]), items.clone())),
            "cba"
        );
        assert_eq!(
            s(run(
                json!([["{{ _index_ }}", "number", true]]),
                items.clone()
            )),
            "cab"
        );
        assert_eq!(
            s(run(
                json!([["{{ n }}", "number"], ["{{ s }}", "string", true]]),
                items
            )),
            "cab"
        );
    }

    #[test]
    fn ruby_to_f() {
        assert_eq!(leading_number("12.5abc"), 12.5);
        assert_eq!(leading_number("  -3"), -3.0);
        assert_eq!(leading_number("abc"), 0.0);
        assert_eq!(leading_number("1e3x"), 1000.0);
        assert_eq!(leading_number("1_000"), 1000.0);
    }

    #[test]
    fn bad_keys_are_named() {
        let mut t = Templates::liquid();
        for bad in [
            json!("x"),
            json!([3]),
            json!([["{{a}}", "date"]]),
            json!([["{{a}}", "string", "maybe"]]),
        ] {
            let e = parse(&mut t, "events_order", Some(&bad)).unwrap_err();
            assert!(e.option.starts_with("events_order"), "{e}");
        }
    }
}
