//! `key_value_store` — Huginn's KeyValueStoreAgent: keeps an associative array in its
//! memory, written by the events it receives (`key` and `value` are Liquid, rendered
//! with the event, `_event_` = its payload and `_value_` = the key's current value),
//! and read by the agents it controls: their templates see the store under the name in
//! `variable` (see [`super::drops`]).
//!
//! An empty rendered key ignores the event; a value rendered null or empty (`""`, `[]`,
//! `{}`) deletes the key. Beyond `max_keys` (default 100) the key written longest ago
//! goes. muninn's JSON objects keep their keys sorted, not in the order they were
//! written, so the memory also holds that order, as a list under the empty key `""`:
//! an empty key never names a stored value (such an event is ignored), and templates
//! never see that list ([`visible`]).

use serde_json::{Map, Value};

use super::json_parse::text_of;
use super::{AgentCtx, Behavior, OptionError};
use crate::store::events::EventRow;
use crate::template::{TemplateId, TemplateTree, Templates};

pub const NAME: &str = crate::agent_kind::Kind::KeyValueStore.name();

/// The memory key holding the store's keys, oldest write first.
pub const ORDER_KEY: &str = "";

/// `max_keys` when the option is absent.
pub const DEFAULT_MAX_KEYS: i64 = 100;

/// muninn's bound on `max_keys` (Huginn has none): the store lives in memory and is
/// copied into every rendering of the agents it controls.
pub const MAX_MAX_KEYS: i64 = 10_000;

pub struct KeyValueStore {
    templates: Templates,
    key: TemplateId,
    value: TemplateTree,
    max_keys: usize,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    KeyValueStore::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(KeyValueStore::new(options)?))
}

/// Huginn's rule for `variable`: a word (letters, digits, `_`) not starting with a digit.
pub fn valid_variable(v: &str) -> bool {
    !v.is_empty()
        && !v.starts_with(|c: char| c.is_ascii_digit())
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The name templates of controlled agents read the store by, when valid.
pub fn variable_of(options: &Value) -> Option<&str> {
    options
        .get("variable")
        .and_then(Value::as_str)
        .filter(|v| valid_variable(v))
}

/// The store as templates see it: the memory without the order list.
pub fn visible(memory: &Value) -> Value {
    match memory {
        Value::Object(m) => {
            let mut m = m.clone();
            m.remove(ORDER_KEY);
            Value::Object(m)
        }
        _ => Value::Object(Map::new()),
    }
}

/// Ruby's `String#to_i`: the leading integer of the text (after blanks), else 0.
fn ruby_to_i(s: &str) -> i64 {
    let t = s.trim_start();
    let (sign, digits) = match t.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, t.strip_prefix('+').unwrap_or(t)),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end]
        .parse::<i64>()
        .map_or(0, |n| n.saturating_mul(sign))
}

/// `max_keys`: Huginn's `options[:max_keys].presence.to_i`, default 100.
fn max_keys(options: &Value) -> Result<i64, OptionError> {
    let bad = || OptionError::new("max_keys", "must be a positive number.");
    let n = match options.get("max_keys") {
        v if !super::json_parse::present(v) => DEFAULT_MAX_KEYS,
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f.trunc() as i64))
            .unwrap_or(0),
        Some(Value::String(s)) => ruby_to_i(s),
        None | Some(_) => return Err(bad()),
    };
    if n <= 0 {
        return Err(bad());
    }
    if n > MAX_MAX_KEYS {
        return Err(OptionError::new(
            "max_keys",
            format!("must be at most {MAX_MAX_KEYS} (muninn's bound on a store's size)."),
        ));
    }
    Ok(n)
}

/// Huginn deletes the key when the value is nil or `empty?`.
fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

impl KeyValueStore {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        let Some(key) = options.get("key").and_then(Value::as_str) else {
            return Err(OptionError::new("key", "is required and must be a string."));
        };
        let value = match options.get("value") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => {
                return Err(OptionError::new("value", "is required."));
            }
            Some(v) => v,
        };
        if variable_of(options).is_none() {
            return Err(OptionError::new(
                "variable",
                "is required and must be valid as a variable name.",
            ));
        }
        let max_keys = max_keys(options)?;
        let mut templates = Templates::liquid();
        let key = templates.add("key", key).map_err(OptionError::template)?;
        let value = templates
            .add_tree("value", value)
            .map_err(OptionError::template)?;
        Ok(KeyValueStore {
            templates,
            key,
            value,
            max_keys: usize::try_from(max_keys).unwrap_or(usize::MAX),
        })
    }
}

/// The store's keys, oldest write first: the recorded order, then any key it misses
/// (a memory written another way), in key order, as the oldest.
fn order_of(store: &Map<String, Value>) -> Vec<String> {
    let recorded: Vec<String> = store
        .get(ORDER_KEY)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|k| !k.is_empty() && store.contains_key(*k))
        .map(str::to_string)
        .collect();
    let mut order: Vec<String> = store
        .keys()
        .filter(|k| !k.is_empty() && !recorded.contains(k))
        .cloned()
        .collect();
    for k in recorded {
        if !order.contains(&k) {
            order.push(k);
        }
    }
    order
}

impl Behavior for KeyValueStore {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        let mut rctx = ctx.event_ctx(event, payload);
        rctx.set("_event_", payload.clone());
        let key = match self.templates.render_value(&self.key, &rctx) {
            Ok(v) => text_of(Some(&v)),
            Err(e) => {
                ctx.error(format!("Could not interpolate the key: {e}"));
                return;
            }
        };
        if key.is_empty() {
            return;
        }
        let mut store = match &*ctx.memory {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        let mut order = order_of(&store);
        order.retain(|k| *k != key);
        let old = store.remove(&key).unwrap_or(Value::Null);
        rctx.set("_value_", old);
        // A value that does not render leaves the store as it was (Huginn raises
        // before it saves).
        let value = match self.templates.render_tree(&self.value, &rctx) {
            Ok(v) => v,
            Err(e) => {
                ctx.error(format!("Could not interpolate the value: {e}"));
                return;
            }
        };
        if !is_empty_value(&value) {
            store.insert(key.clone(), value);
            order.push(key);
            while order.len() > self.max_keys {
                let oldest = order.remove(0);
                store.remove(&oldest);
            }
        }
        store.insert(
            ORDER_KEY.to_string(),
            Value::Array(order.into_iter().map(Value::String).collect()),
        );
        *ctx.memory_mut() = Value::Object(store);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruby_to_i_reads_the_leading_integer() {
        assert_eq!(ruby_to_i(" 12abc"), 12);
        assert_eq!(ruby_to_i("abc"), 0);
        assert_eq!(ruby_to_i("-3"), -3);
    }

    #[test]
    fn variable_names_follow_huginns_rule() {
        assert!(valid_variable("kvs"));
        assert!(valid_variable("_a1"));
        assert!(!valid_variable("1abc"));
        assert!(!valid_variable(""));
        assert!(!valid_variable("a-b"));
        assert!(!valid_variable("é"));
    }

    #[test]
    fn the_order_list_is_hidden_and_rebuilt_when_missing() {
        let m = serde_json::json!({"b": 1, "a": 2, "": ["b"]});
        assert_eq!(visible(&m), serde_json::json!({"b": 1, "a": 2}));
        let Value::Object(map) = m else { return };
        assert_eq!(order_of(&map), vec!["a".to_string(), "b".to_string()]);
    }
}
