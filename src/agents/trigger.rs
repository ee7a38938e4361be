//! `trigger` — Huginn's TriggerAgent: emits an event when a received event matches its
//! `rules`. A rule is a template that must render `true`, or `{type, path, value}` where
//! `path` is a JSONPath into the payload and `value` one value or a list (any matches).
//! Regexes are case-insensitive unless they say `(?-i)`; the comparisons `<`, `>` ...
//! read both sides as numbers the way Ruby's `to_f` does (a leading number, else 0).

use serde_json::{Map, Value};

use super::{AgentCtx, Behavior, OptionError, opt_bool, type_name};
use crate::jsonpath::{BoundedPath, QueryError};
use crate::store::events::EventRow;
use crate::template::{RenderCtx, TemplateError, TemplateId, TemplateTree, Templates};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Regex,
    NotRegex,
    Lt,
    Le,
    Eq,
    Ne,
    Ge,
    Gt,
    In,
    NotIn,
}

fn kind_of(t: &str) -> Option<Kind> {
    Some(match t.trim() {
        "regex" => Kind::Regex,
        "!regex" => Kind::NotRegex,
        "field<value" => Kind::Lt,
        "field<=value" => Kind::Le,
        "field==value" => Kind::Eq,
        "field!=value" => Kind::Ne,
        "field>=value" => Kind::Ge,
        "field>value" => Kind::Gt,
        "in" | "field in value" => Kind::In,
        "not in" | "field not in value" => Kind::NotIn,
        _ => return None,
    })
}

enum Operand {
    /// A literal, with its regex compiled when the rule is a regex rule.
    Literal(String, Option<regex::Regex>),
    Template(TemplateId),
}

enum Rule {
    Template(TemplateId),
    Field {
        kind: Kind,
        path: BoundedPath,
        values: Vec<Operand>,
    },
}

enum MustMatch {
    All,
    Any,
    AtLeast(usize),
}

pub struct Trigger {
    templates: Templates,
    rules: Vec<Rule>,
    must_match: MustMatch,
    message: Option<TemplateTree>,
    keep_event: bool,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    Trigger::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(Trigger::new(options)?))
}

/// Why a rule could not be checked against an event.
#[derive(Debug, thiserror::Error)]
enum RuleError {
    #[error("{0}")]
    Template(#[from] TemplateError),
    #[error("path {path:?} {source}")]
    Path { path: String, source: QueryError },
    /// A templated `value` rendered to a pattern that is not a regex.
    #[error("{pattern:?} is not a valid regular expression: {source}")]
    Regex {
        pattern: String,
        source: regex::Error,
    },
}

fn regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(1 << 20)
        .build()
}

fn has_syntax(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

/// One entry of `rules` (named `label` in errors): a template, or `{type, path, value}`.
fn compile_rule(templates: &mut Templates, label: &str, r: &Value) -> Result<Rule, OptionError> {
    let m = match r {
        Value::String(t) => {
            return Ok(Rule::Template(
                templates.add(label, t).map_err(OptionError::template)?,
            ));
        }
        Value::Object(m) => m,
        other => {
            return Err(OptionError::new(
                label,
                format!(
                    "must be an object {{type, path, value}} or a template (got {})",
                    type_name(other)
                ),
            ));
        }
    };
    let t = m.get("type").and_then(Value::as_str).unwrap_or_default();
    let kind = kind_of(t).ok_or_else(|| {
        OptionError::new(
            format!("{label}.type"),
            format!("{t:?} is not a rule type: use regex, !regex, field<value, field<=value, field==value, field!=value, field>=value, field>value, in, not in"),
        )
    })?;
    let path = m.get("path").and_then(Value::as_str).ok_or_else(|| {
        OptionError::new(
            format!("{label}.path"),
            "is required: a JSONPath into the event, e.g. title or data.level",
        )
    })?;
    let path = BoundedPath::parse_huginn(path)
        .map_err(|e| OptionError::new(format!("{label}.path"), e.to_string()))?;
    let raw: Vec<String> = match m.get("value") {
        Some(Value::Array(items)) => items.iter().map(scalar).collect(),
        Some(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => vec![scalar(v)],
        _ => {
            return Err(OptionError::new(
                format!("{label}.value"),
                "is required: a value or a list of values",
            ));
        }
    };
    let mut values = Vec::with_capacity(raw.len());
    for (j, v) in raw.into_iter().enumerate() {
        values.push(operand(templates, label, kind, j, v)?);
    }
    Ok(Rule::Field { kind, path, values })
}

/// The `j`th value of a field rule: a template when it has markup, else a literal
/// (its regex compiled now for a regex rule).
fn operand(
    templates: &mut Templates,
    label: &str,
    kind: Kind,
    j: usize,
    v: String,
) -> Result<Operand, OptionError> {
    if has_syntax(&v) {
        return Ok(Operand::Template(
            templates
                .add(&format!("{label}.value[{j}]"), &v)
                .map_err(OptionError::template)?,
        ));
    }
    let re = if matches!(kind, Kind::Regex | Kind::NotRegex) {
        Some(regex(&v).map_err(|e| {
            OptionError::new(
                format!("{label}.value"),
                format!("is not a valid regular expression: {e}"),
            )
        })?)
    } else {
        None
    };
    Ok(Operand::Literal(v, re))
}

/// `must_match`: all (the default), any, or at least n of the `rules` rules.
fn must_match(options: &Value, rules: usize) -> Result<MustMatch, OptionError> {
    Ok(match options.get("must_match") {
        None | Some(Value::Null) => MustMatch::All,
        Some(Value::String(s)) if s == "all" || s.is_empty() => MustMatch::All,
        Some(Value::String(s)) if s == "any" => MustMatch::Any,
        Some(v) => {
            let n = v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()));
            match n {
                Some(n) if n >= 1 && (n as usize) <= rules => MustMatch::AtLeast(n as usize),
                _ => {
                    return Err(OptionError::new(
                        "must_match",
                        format!(
                            "must be \"all\", \"any\" or a number from 1 to {} (the number of rules)",
                            rules
                        ),
                    ));
                }
            }
        }
    })
}

impl Trigger {
    pub fn new(options: &Value) -> Result<Trigger, OptionError> {
        let mut templates = Templates::liquid();
        let rules_v = match options.get("rules") {
            Some(Value::Array(r)) if !r.is_empty() => r,
            Some(Value::Array(_)) | None | Some(Value::Null) => {
                return Err(OptionError::new(
                    "rules",
                    "is required: a list of rules such as {\"type\": \"regex\", \"path\": \"title\", \"value\": \"alert\"}",
                ));
            }
            Some(other) => {
                return Err(OptionError::new(
                    "rules",
                    format!("must be a list (got {})", type_name(other)),
                ));
            }
        };
        let mut rules = Vec::with_capacity(rules_v.len());
        for (i, r) in rules_v.iter().enumerate() {
            rules.push(compile_rule(&mut templates, &format!("rules[{i}]"), r)?);
        }
        let must_match = must_match(options, rules.len())?;
        let keep_event = opt_bool(options, "keep_event")?.unwrap_or(false);
        let message = match options.get("message") {
            None | Some(Value::Null) => None,
            Some(v @ Value::String(_)) => Some(
                templates
                    .add_tree("message", v)
                    .map_err(OptionError::template)?,
            ),
            Some(other) => {
                return Err(OptionError::new(
                    "message",
                    format!("must be a string (got {})", type_name(other)),
                ));
            }
        };
        if message.is_none() && !keep_event {
            return Err(OptionError::new(
                "message",
                "is required unless keep_event is true",
            ));
        }
        Ok(Trigger {
            templates,
            rules,
            must_match,
            message,
            keep_event,
        })
    }

    fn rule_matches(
        &self,
        rule: &Rule,
        payload: &Value,
        ctx: &RenderCtx<'_>,
    ) -> Result<bool, RuleError> {
        match rule {
            Rule::Template(id) => Ok(self.templates.render(id, ctx)?.trim() == "true"),
            Rule::Field { kind, path, values } => {
                let field = path
                    .first(payload)
                    .map_err(|source| RuleError::Path {
                        path: path.as_str().to_string(),
                        source,
                    })?
                    .map(scalar)
                    .unwrap_or_default();
                let mut operands = Vec::with_capacity(values.len());
                for v in values {
                    operands.push(match v {
                        Operand::Literal(s, re) => (s.clone(), re.clone()),
                        Operand::Template(id) => (self.templates.render(id, ctx)?, None),
                    });
                }
                let compiled =
                    |(s, re): &(String, Option<regex::Regex>)| -> Result<regex::Regex, RuleError> {
                        match re {
                            Some(r) => Ok(r.clone()),
                            None => regex(s).map_err(|source| RuleError::Regex {
                                pattern: s.clone(),
                                source,
                            }),
                        }
                    };
                let num = |s: &str| ruby_to_f(s);
                Ok(match kind {
                    Kind::Regex => {
                        let mut any = false;
                        for o in &operands {
                            any |= compiled(o)?.is_match(&field);
                        }
                        any
                    }
                    Kind::NotRegex => {
                        let mut any = false;
                        for o in &operands {
                            any |= !compiled(o)?.is_match(&field);
                        }
                        any
                    }
                    Kind::Lt => operands.iter().any(|(s, _)| num(&field) < num(s)),
                    Kind::Le => operands.iter().any(|(s, _)| num(&field) <= num(s)),
                    Kind::Gt => operands.iter().any(|(s, _)| num(&field) > num(s)),
                    Kind::Ge => operands.iter().any(|(s, _)| num(&field) >= num(s)),
                    Kind::Eq | Kind::In => operands.iter().any(|(s, _)| *s == field),
                    Kind::Ne => operands.iter().any(|(s, _)| *s != field),
                    Kind::NotIn => !operands.iter().any(|(s, _)| *s == field),
                })
            }
        }
    }
}

/// A JSON value as Ruby's `to_s` shows it: strings as they are, null as "".
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Ruby's `String#to_f`: the longest leading number, else 0.
pub fn ruby_to_f(s: &str) -> f64 {
    let t = s.trim_start();
    let b = t.as_bytes();
    let mut end = 0;
    if end < b.len() && (b[end] == b'+' || b[end] == b'-') {
        end += 1;
    }
    let digits_start = end;
    while end < b.len() && (b[end].is_ascii_digit() || b[end] == b'_') {
        end += 1;
    }
    if end < b.len() && b[end] == b'.' && end + 1 < b.len() && b[end + 1].is_ascii_digit() {
        end += 1;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
    }
    if end == digits_start {
        return 0.0;
    }
    if end < b.len() && (b[end] == b'e' || b[end] == b'E') {
        let mut e = end + 1;
        if e < b.len() && (b[e] == b'+' || b[e] == b'-') {
            e += 1;
        }
        if e < b.len() && b[e].is_ascii_digit() {
            while e < b.len() && b[e].is_ascii_digit() {
                e += 1;
            }
            end = e;
        }
    }
    t[..end].replace('_', "").parse().unwrap_or(0.0)
}

impl Behavior for Trigger {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        // Building the context copies the payload: only when a template will read it.
        let tctx = if self.templates.is_empty() {
            RenderCtx::new()
        } else {
            ctx.event_ctx(event, payload)
        };
        let mut matched = 0;
        for (i, rule) in self.rules.iter().enumerate() {
            match self.rule_matches(rule, payload, &tctx) {
                Ok(true) => matched += 1,
                Ok(false) => {}
                Err(e) => {
                    ctx.error(format!(
                        "rules[{i}] could not be checked against event {}: {e}",
                        event.id
                    ));
                    return;
                }
            }
        }
        let fire = match self.must_match {
            MustMatch::All => matched == self.rules.len(),
            MustMatch::Any => matched > 0,
            MustMatch::AtLeast(n) => matched >= n,
        };
        if !fire {
            return;
        }
        let message = match &self.message {
            None => None,
            Some(t) => match self.templates.render_tree(t, &tctx) {
                Ok(Value::String(s)) => Some(s),
                Ok(other) => Some(other.to_string()),
                Err(e) => {
                    ctx.error(format!(
                        "option \"message\" could not be rendered for event {}: {e}",
                        event.id
                    ));
                    return;
                }
            },
        };
        let out = if self.keep_event {
            let mut p = payload.as_object().cloned().unwrap_or_default();
            if let Some(m) = message.filter(|m| !m.trim().is_empty()) {
                p.insert("message".into(), Value::String(m));
            }
            Value::Object(p)
        } else {
            let mut p = Map::new();
            p.insert("message".into(), Value::String(message.unwrap_or_default()));
            Value::Object(p)
        };
        ctx.emit(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fire(options: Value, payload: Value) -> Vec<Value> {
        let mut t = Trigger::new(&options).unwrap();
        let row = crate::agents::event_formatting::tests_support::row();
        let event = crate::agents::event_formatting::tests_support::event(&payload);
        let mut memory = json!({});
        let mut ctx = AgentCtx::new(&row, &mut memory);
        t.receive(&mut ctx, &event, &payload);
        ctx.emitted
    }

    #[test]
    fn rule_types() {
        let rule = |t: &str, v: Value| json!({"rules": [{"type": t, "path": "x", "value": v}], "message": "hit"});
        assert_eq!(
            fire(rule("regex", json!("^AL")), json!({"x": "alert"})).len(),
            1,
            "case-insensitive"
        );
        assert_eq!(
            fire(rule("regex", json!("(?-i)^AL")), json!({"x": "alert"})).len(),
            0
        );
        assert_eq!(
            fire(rule("!regex", json!("foo")), json!({"x": "bar"})).len(),
            1
        );
        assert_eq!(
            fire(rule("field>value", json!("10")), json!({"x": "10.5kg"})).len(),
            1
        );
        assert_eq!(
            fire(rule("field<=value", json!(3)), json!({"x": 3})).len(),
            1
        );
        assert_eq!(
            fire(rule("field==value", json!(["a", "b"])), json!({"x": "b"})).len(),
            1
        );
        assert_eq!(
            fire(rule("not in", json!(["a", "b"])), json!({"x": "c"})).len(),
            1
        );
        assert_eq!(
            fire(rule("not in", json!(["a", "b"])), json!({"x": "a"})).len(),
            0
        );
        assert_eq!(
            fire(
                rule("field==value", json!("{{ want }}")),
                json!({"x": "y", "want": "y"})
            )
            .len(),
            1
        );
    }

    #[test]
    fn must_match_message_and_keep_event() {
        let o = json!({"rules": [{"type": "regex", "path": "a", "value": "x"}, {"type": "regex", "path": "b", "value": "x"}],
                       "must_match": 1, "message": "got {{ a }}"});
        assert_eq!(
            fire(o, json!({"a": "x", "b": "no"})),
            vec![json!({"message": "got x"})]
        );
        let o =
            json!({"rules": [{"type": "regex", "path": "a", "value": "x"}], "keep_event": true});
        assert_eq!(
            fire(o, json!({"a": "x", "n": 1})),
            vec![json!({"a": "x", "n": 1})]
        );
    }

    #[test]
    fn bad_options_name_the_rule() {
        let err = Trigger::new(
            &json!({"rules": [{"type": "regex", "path": "a", "value": "("}], "message": "m"}),
        )
        .err()
        .unwrap();
        assert_eq!(err.option, "rules[0].value");
        let err = Trigger::new(
            &json!({"rules": [{"type": "like", "path": "a", "value": "x"}], "message": "m"}),
        )
        .err()
        .unwrap();
        assert_eq!(err.option, "rules[0].type");
        assert_eq!(
            Trigger::new(&json!({"rules": [{"type": "regex", "path": "a", "value": "x"}]}))
                .err()
                .unwrap()
                .option,
            "message"
        );
        assert_eq!(
            Trigger::new(&json!({"rules": []})).err().unwrap().option,
            "rules"
        );
    }

    #[test]
    fn paths_run_inside_the_jsonpath_bounds() {
        let err = Trigger::new(&json!({"rules": [{"type": "regex", "path": "$..*..*..*..*..*..*", "value": "x"}], "message": "m"}))
            .err()
            .unwrap();
        assert_eq!(err.option, "rules[0].path");
        assert!(err.problem.contains("(JSONPath descendant limit)"), "{err}");

        let mut t = Trigger::new(
            &json!({"rules": [{"type": "regex", "path": "$..*", "value": "x"}], "message": "m"}),
        )
        .unwrap();
        let payload = json!({"items": (0..20_000).collect::<Vec<_>>()});
        let row = crate::agents::event_formatting::tests_support::row();
        let event = crate::agents::event_formatting::tests_support::event(&payload);
        let mut memory = json!({});
        let mut ctx = AgentCtx::new(&row, &mut memory);
        t.receive(&mut ctx, &event, &payload);
        assert!(ctx.emitted.is_empty());
        assert_eq!(
            ctx.logs[0].message,
            "rules[0] could not be checked against event 7: path \"$..*\" would select more than 10000 values (JSONPath result limit)"
        );
    }

    #[test]
    fn to_f_like_ruby() {
        assert_eq!(ruby_to_f("12.5abc"), 12.5);
        assert_eq!(ruby_to_f("abc"), 0.0);
        assert_eq!(ruby_to_f(" -3e2"), -300.0);
        assert_eq!(ruby_to_f("1_000"), 1000.0);
    }
}
