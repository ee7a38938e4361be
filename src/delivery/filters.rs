//! Which events a subscription wants: event-type patterns (`agent.*`, `*`) and field
//! filters over the delivery envelope, in the AGiXT form (`{"data.level": "high"}`,
//! equality), the operator form (`[{"field", "operator", "value"}]`), or TagoRUN's
//! per-event form (`{"user.login": {"conditions": [{"field", "operator", "value"}]}}`:
//! the conditions apply to events of that type; other types pass).

use serde_json::Value;

/// What is wrong with an event-type pattern or a filter; the message names it.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("an event type pattern must not be empty")]
    EmptyPattern,
    #[error(
        "event type pattern {pattern:?} has {bad:?}: use letters, digits, '.', '_', '-' and '*'"
    )]
    PatternChar { pattern: String, bad: char },
    #[error("filters must be an object of field -> value or a list of {{field, operator, value}}")]
    Shape,
    #[error("{label}[{index}].field is required (a dotted path such as data.level)")]
    FieldRequired { label: String, index: usize },
    #[error("filter field {0:?} is not a dotted path such as data.level")]
    NotAPath(String),
    #[error("operator {0} needs a list value")]
    NeedsList(String),
    #[error("operator {0} needs a number value")]
    NeedsNumber(String),
    #[error("operator regex needs a string value")]
    NeedsString,
    #[error("regex {pattern:?} is invalid: {error}")]
    Regex {
        pattern: String,
        error: regex::Error,
    },
    #[error(
        "unknown operator {0:?}; use equals, not_equals, in, not_in, greater_than, less_than, contains, exists or regex"
    )]
    UnknownOperator(String),
    /// An error inside one filter, with where it is (`filters.x`, `filters[2]`).
    #[error("{at}: {error}")]
    At { at: String, error: Box<FilterError> },
}

impl FilterError {
    fn at(at: String) -> impl FnOnce(FilterError) -> FilterError {
        move |error| FilterError::At {
            at,
            error: Box::new(error),
        }
    }
}

/// An event-type pattern: exact, or with `*` matching any run of characters.
#[derive(Debug, Clone)]
pub struct TypePattern(String);

impl TypePattern {
    pub fn parse(p: &str) -> Result<TypePattern, FilterError> {
        let p = p.trim();
        if p.is_empty() {
            return Err(FilterError::EmptyPattern);
        }
        if let Some(bad) = p
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '*')))
        {
            return Err(FilterError::PatternChar {
                pattern: p.to_string(),
                bad,
            });
        }
        Ok(TypePattern(p.to_string()))
    }

    pub fn matches(&self, t: &str) -> bool {
        glob(self.0.as_bytes(), t.as_bytes())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    // Iterative wildcard match with backtracking to the last '*': linear in practice.
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[derive(Debug, Clone)]
enum Op {
    Equals(Value),
    NotEquals(Value),
    In(Vec<Value>),
    NotIn(Vec<Value>),
    GreaterThan(f64),
    LessThan(f64),
    Contains(Value),
    Exists(bool),
    Regex(regex::Regex),
}

#[derive(Debug, Clone)]
struct Condition {
    path: Vec<String>,
    op: Op,
}

/// All conditions must hold, and those of every per-event group whose type matches.
#[derive(Debug, Clone, Default)]
pub struct Filters(Vec<Condition>, Vec<(TypePattern, Vec<Condition>)>);

/// The most a filter regex may compile to, so a saved filter cannot cost unbounded time.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl Filters {
    /// Parses either form; errors name the filter and what is wrong.
    pub fn parse(v: &Value) -> Result<Filters, FilterError> {
        let mut out = Vec::new();
        let mut per_event = Vec::new();
        match v {
            Value::Null => {}
            Value::Object(map) => {
                for (field, value) in map {
                    if let Some(conditions) = per_event_conditions(value) {
                        let pattern = TypePattern::parse(field)
                            .map_err(FilterError::at(format!("filters.{field}")))?;
                        let group =
                            conditions_of(conditions, &format!("filters.{field}.conditions"))?;
                        per_event.push((pattern, group));
                        continue;
                    }
                    out.push(Condition {
                        path: split(field)?,
                        op: Op::Equals(value.clone()),
                    });
                }
            }
            Value::Array(items) => out = conditions_of(items, "filters")?,
            _ => return Err(FilterError::Shape),
        }
        Ok(Filters(out, per_event))
    }

    /// A field is looked up in the envelope, then in the event's payload (`data`):
    /// the documents write filters over what their events carry (`severity`,
    /// `agent_name`, `user.role`), which in muninn's envelope sits under `data`.
    pub fn matches(&self, envelope: &Value) -> bool {
        let holds = |c: &Condition| {
            let found = lookup(envelope, &c.path)
                .or_else(|| envelope.get("data").and_then(|d| lookup(d, &c.path)));
            eval(&c.op, found)
        };
        let event_type = envelope
            .get("event_type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        self.0.iter().all(holds)
            && self
                .1
                .iter()
                .filter(|(p, _)| p.matches(event_type))
                .all(|(_, group)| group.iter().all(holds))
    }
}

/// `{"conditions": [...]}` (and nothing else): a per-event group.
fn per_event_conditions(v: &Value) -> Option<&Vec<Value>> {
    let m = v.as_object()?;
    (m.len() == 1).then(|| m.get("conditions")?.as_array())?
}

fn conditions_of(items: &[Value], label: &str) -> Result<Vec<Condition>, FilterError> {
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = item.get("field").and_then(Value::as_str).ok_or_else(|| {
            FilterError::FieldRequired {
                label: label.to_string(),
                index: i,
            }
        })?;
        let operator = item
            .get("operator")
            .and_then(Value::as_str)
            .unwrap_or("equals");
        let value = item.get("value").cloned().unwrap_or(Value::Null);
        out.push(Condition {
            path: split(field)?,
            op: op(operator, value).map_err(FilterError::at(format!("{label}[{i}]")))?,
        });
    }
    Ok(out)
}

fn lookup<'a>(root: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = Some(root);
    for key in path {
        cur = cur.and_then(|v| match v {
            Value::Object(m) => m.get(key),
            Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        });
    }
    cur
}

fn split(field: &str) -> Result<Vec<String>, FilterError> {
    let parts: Vec<String> = field.split('.').map(str::to_string).collect();
    if parts.iter().any(String::is_empty) {
        return Err(FilterError::NotAPath(field.to_string()));
    }
    Ok(parts)
}

fn op(name: &str, value: Value) -> Result<Op, FilterError> {
    let list = |v: Value| match v {
        Value::Array(a) => Ok(a),
        _ => Err(FilterError::NeedsList(name.to_string())),
    };
    let num = |v: &Value| number(v).ok_or_else(|| FilterError::NeedsNumber(name.to_string()));
    Ok(match name {
        "equals" | "eq" => Op::Equals(value),
        "not_equals" | "neq" => Op::NotEquals(value),
        "in" => Op::In(list(value)?),
        "not_in" => Op::NotIn(list(value)?),
        "greater_than" | "gt" => Op::GreaterThan(num(&value)?),
        "less_than" | "lt" => Op::LessThan(num(&value)?),
        "contains" => Op::Contains(value),
        "exists" => Op::Exists(value.as_bool().unwrap_or(true)),
        "regex" => {
            let pattern = value.as_str().ok_or(FilterError::NeedsString)?;
            Op::Regex(
                regex::RegexBuilder::new(pattern)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|error| FilterError::Regex {
                        pattern: pattern.to_string(),
                        error,
                    })?,
            )
        }
        other => return Err(FilterError::UnknownOperator(other.to_string())),
    })
}

/// Equality that lets "5" equal 5, as values from forms and query strings are strings.
fn loose_eq(a: &Value, b: &Value) -> bool {
    a == b
        || match (a, b) {
            (Value::String(s), other) | (other, Value::String(s)) if !other.is_string() => {
                let rendered = other.to_string();
                *s == rendered
            }
            _ => false,
        }
}

fn eval(op: &Op, v: Option<&Value>) -> bool {
    match op {
        Op::Exists(want) => v.is_some_and(|v| !v.is_null()) == *want,
        Op::NotEquals(x) => !v.is_some_and(|v| loose_eq(v, x)),
        Op::NotIn(xs) => !v.is_some_and(|v| xs.iter().any(|x| loose_eq(v, x))),
        _ => {
            let Some(v) = v else { return false };
            match op {
                Op::Equals(x) => loose_eq(v, x),
                Op::In(xs) => xs.iter().any(|x| loose_eq(v, x)),
                Op::GreaterThan(n) => number(v).is_some_and(|x| x > *n),
                Op::LessThan(n) => number(v).is_some_and(|x| x < *n),
                Op::Contains(x) => match (v, x) {
                    (Value::String(s), Value::String(sub)) => s.contains(sub.as_str()),
                    (Value::Array(a), x) => a.iter().any(|e| loose_eq(e, x)),
                    (Value::Object(m), Value::String(k)) => m.contains_key(k),
                    _ => false,
                },
                Op::Regex(re) => match v {
                    Value::String(s) => re.is_match(s),
                    other => re.is_match(&other.to_string()),
                },
                Op::Exists(_) | Op::NotEquals(_) | Op::NotIn(_) => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patterns() {
        let p = TypePattern::parse("agent.*").unwrap();
        assert!(p.matches("agent.created") && !p.matches("event.created"));
        assert!(TypePattern::parse("*").unwrap().matches("anything.at.all"));
        assert!(
            TypePattern::parse("*.dead")
                .unwrap()
                .matches("delivery.dead")
        );
        assert!(
            TypePattern::parse("event.created")
                .unwrap()
                .matches("event.created")
        );
        assert!(TypePattern::parse("a b").is_err());
    }

    #[test]
    fn both_filter_forms() {
        let env = json!({"event_type": "x", "data": {"level": "high", "n": 7, "tags": ["a", "b"], "msg": "disk full"}});
        assert!(
            Filters::parse(&json!({"data.level": "high"}))
                .unwrap()
                .matches(&env)
        );
        assert!(
            !Filters::parse(&json!({"data.level": "low"}))
                .unwrap()
                .matches(&env)
        );
        let f = Filters::parse(&json!([
            {"field": "data.n", "operator": "greater_than", "value": 5},
            {"field": "data.n", "operator": "less_than", "value": "10"},
            {"field": "data.tags", "operator": "contains", "value": "b"},
            {"field": "data.level", "operator": "in", "value": ["high", "critical"]},
            {"field": "data.msg", "operator": "regex", "value": "^disk"},
            {"field": "data.missing", "operator": "exists", "value": false},
            {"field": "data.level", "operator": "not_equals", "value": "low"}
        ]))
        .unwrap();
        assert!(f.matches(&env));
    }

    #[test]
    fn fields_the_envelope_lacks_are_read_from_the_payload() {
        let env = json!({"event_type": "agent.updated", "user_id": 7, "data": {"severity": "high", "agent_name": "prod"}});
        let f = Filters::parse(&json!({"severity": "high", "agent_name": "prod", "user_id": "7"}))
            .unwrap();
        assert!(f.matches(&env));
        assert!(
            !Filters::parse(&json!({"severity": "low"}))
                .unwrap()
                .matches(&env)
        );
    }

    #[test]
    fn per_event_conditions_apply_to_their_event_only() {
        let f = Filters::parse(&json!({
            "user.login": {"conditions": [
                {"field": "user.role", "operator": "equals", "value": "admin"},
                {"field": "location.country", "operator": "in", "value": ["US", "CA"]}]},
            "data.received": {"conditions": [
                {"field": "device.type", "operator": "equals", "value": "sensor"},
                {"field": "data.value", "operator": "greater_than", "value": 100}]}
        }))
        .unwrap();
        let login = |role, country| json!({"event_type": "user.login", "data": {"user": {"role": role}, "location": {"country": country}}});
        assert!(f.matches(&login("admin", "CA")));
        assert!(!f.matches(&login("admin", "FR")));
        assert!(!f.matches(&login("viewer", "US")));
        let reading = |v| json!({"event_type": "data.received", "data": {"device": {"type": "sensor"}, "data": {"value": v}}});
        assert!(f.matches(&reading(150)));
        assert!(!f.matches(&reading(50)));
        assert!(f.matches(&json!({"event_type": "system.alert", "data": {}})));
        let err = Filters::parse(&json!({"user.login": {"conditions": [{"field": "a", "operator": "between", "value": 1}]}})).unwrap_err().to_string();
        assert!(
            err.contains("filters.user.login.conditions[0]") && err.contains("between"),
            "{err}"
        );
    }

    #[test]
    fn bad_filters_are_explained() {
        assert!(
            Filters::parse(&json!([{"field": "a", "operator": "like"}]))
                .unwrap_err()
                .to_string()
                .contains("unknown operator")
        );
        assert!(
            Filters::parse(&json!([{"field": "a", "operator": "regex", "value": "("}]))
                .unwrap_err()
                .to_string()
                .contains("invalid")
        );
        assert!(
            Filters::parse(&json!([{"operator": "equals"}]))
                .unwrap_err()
                .to_string()
                .contains("field is required")
        );
    }
}
