//! `on_change` memory: Huginn compares a result with the payloads of the agent's last
//! events (`uniqueness_look_back`, by default the larger of 200 and 3x the results of
//! the page). muninn keeps short digests of the last payloads in the agent's memory
//! (`seen`, newest last, at most `MAX_LOOK_BACK`), so the check costs no query and the
//! memory stays bounded. Key order does not matter (Huginn's `same_json?`).

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::options::MAX_LOOK_BACK;

const UNIQUENESS_LOOK_BACK: usize = 200;
const UNIQUENESS_FACTOR: usize = 3;

/// How many recent payloads a page of `results` results is compared with.
pub fn look_back(given: Option<usize>, results: usize) -> usize {
    given
        .unwrap_or_else(|| (UNIQUENESS_FACTOR * results).max(UNIQUENESS_LOOK_BACK))
        .min(MAX_LOOK_BACK)
}

/// The digest of a payload, the same whatever its keys' order.
pub fn digest(payload: &Value) -> String {
    let mut h = Sha256::new();
    h.update(canonical(payload).to_string().as_bytes());
    hex::encode(&h.finalize()[..12])
}

fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Array(
                keys.into_iter()
                    .map(|k| Value::Array(vec![Value::String(k.clone()), canonical(&m[k])]))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// The last `n` digests in memory (a snapshot taken before a page's results are added:
/// as Huginn, results of one page are compared with earlier events only).
pub fn recent(memory: &Value, n: usize) -> Vec<String> {
    let all = memory.get("seen").and_then(Value::as_array);
    let all = all.map(Vec::as_slice).unwrap_or_default();
    all[all.len().saturating_sub(n)..]
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// Records emitted payloads' digests, keeping the newest `MAX_LOOK_BACK`.
pub fn remember(memory: &mut Value, digests: Vec<String>) {
    if digests.is_empty() {
        return;
    }
    if !memory.is_object() {
        *memory = Value::Object(Map::new());
    }
    let Some(m) = memory.as_object_mut() else {
        return;
    };
    let mut list = match m.remove("seen") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    list.extend(digests.into_iter().map(Value::String));
    let excess = list.len().saturating_sub(MAX_LOOK_BACK);
    list.drain(..excess);
    m.insert("seen".into(), Value::Array(list));
}
