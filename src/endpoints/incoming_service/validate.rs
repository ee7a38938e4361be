//! Turns a caller's `IncomingIn` into the stored changes, checking every option (and
//! compiling the transform) on save, so a bad template or allowlist is a 422 rather
//! than a failure on the first request.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use super::IncomingError;
use crate::endpoints::guard::ProtectionOptions;
use crate::endpoints::incoming::compile;
use crate::endpoints::transform::Transform;
use crate::secrets::{Keyring, purpose};
use crate::store::incoming_webhooks::{IncomingChanges, IncomingRow};

/// Tells an absent field (keep) from `null` (clear).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The body of create and update; on update, omitted fields keep their value.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncomingIn {
    pub name: Option<String>,
    pub agent_id: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Value>,
    /// `active` is the AGiXT SDK's spelling.
    #[serde(alias = "active")]
    pub is_active: Option<bool>,
    /// A template string that renders JSON, or an object of templates (AGiXT's
    /// `payload_transformation`).
    #[serde(
        default,
        deserialize_with = "present",
        alias = "payload_transformation"
    )]
    pub transform_template: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub rate_limit: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub allowed_ips: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub signature: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub max_body_bytes: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub response_headers: Option<Value>,
}

fn invalid(message: impl Into<String>) -> IncomingError {
    IncomingError::Invalid(message.into())
}

fn text_field(v: &Option<Value>, field: &str) -> Result<Option<Option<String>>, IncomingError> {
    match v {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(invalid(format!(
            "field \"{field}\" must be a string or null"
        ))),
    }
}

/// The name (checked first, as its message is the first a caller sees). `current` is
/// the row being updated (None on create).
pub fn name_change(
    input: &IncomingIn,
    current: Option<&IncomingRow>,
) -> Result<IncomingChanges, IncomingError> {
    let mut c = IncomingChanges::default();
    if let Some(name) = &input.name {
        if name.trim().is_empty() {
            return Err(invalid("field \"name\" must not be empty"));
        }
        c.name = Some(name.trim().to_string());
    } else if current.is_none() {
        return Err(invalid("field \"name\" is required"));
    }
    Ok(c)
}

/// The options after the agent check: description, active, transform, headers, and the
/// protection options merged over the current ones.
pub fn option_changes(
    input: &IncomingIn,
    current: Option<&IncomingRow>,
    keys: &Keyring,
    c: &mut IncomingChanges,
) -> Result<(), IncomingError> {
    c.description = text_field(&input.description, "description")?;
    c.is_active = input.is_active;
    c.transform_template = match &input.transform_template {
        Some(o @ Value::Object(_)) => Some(Some(crate::template::object::store(o))),
        other => {
            text_field(other, "transform_template")?.map(|t| t.filter(|t| !t.trim().is_empty()))
        }
    };
    if let Some(Some(t)) = &c.transform_template {
        Transform::new(t).map_err(|e| invalid(format!("invalid {e}")))?;
    }
    if let Some(h) = &input.response_headers {
        crate::endpoints::incoming::parse_response_headers(h)
            .map_err(|e| invalid(e.to_string()))?;
        c.response_headers = Some((!h.is_null()).then(|| h.to_string()));
    }
    protection_changes(input, current, keys, c)
}

/// The protection options (rate limit, allowlist, signature, body size) are checked
/// together, merged over the current ones.
fn protection_changes(
    input: &IncomingIn,
    current: Option<&IncomingRow>,
    keys: &Keyring,
    c: &mut IncomingChanges,
) -> Result<(), IncomingError> {
    let previous = current
        .and_then(|r| compile(r, keys).ok())
        .map(|c| c.protections);
    let mut merged = Map::new();
    if let Some(p) = &previous {
        if let Some(r) = current.and_then(|r| r.rate_limit) {
            merged.insert("rate_limit".into(), json!(r));
        }
        if let Some(m) = current.and_then(|r| r.max_body_bytes) {
            merged.insert("max_body_bytes".into(), json!(m));
        }
        if let Some(ips) = p.allowed_ips_json() {
            merged.insert("allowed_ips".into(), ips);
        }
        if let Some(s) = &p.signature {
            merged.insert("signature".into(), s.stored_json());
        }
    }
    for (key, value) in [
        ("rate_limit", &input.rate_limit),
        ("allowed_ips", &input.allowed_ips),
        ("signature", &input.signature),
        ("max_body_bytes", &input.max_body_bytes),
    ] {
        match value {
            None => {}
            Some(Value::Null) => {
                merged.remove(key);
            }
            Some(v) => {
                merged.insert(key.into(), v.clone());
            }
        }
    }
    let parsed = ProtectionOptions::from_json(&Value::Object(merged), previous.as_ref())
        .map_err(|e| invalid(e.message))?;
    if input.rate_limit.is_some() {
        c.rate_limit = Some(parsed.rate_limit.map(i64::from));
    }
    if input.max_body_bytes.is_some() {
        // The column is a signed 64-bit number: a larger limit (any u64 is accepted) is
        // stored as the largest it holds, not wrapped to a negative one the endpoint
        // would then refuse to load.
        c.max_body_bytes = Some(
            parsed
                .max_body_bytes
                .map(|m| i64::try_from(m).unwrap_or(i64::MAX)),
        );
    }
    if input.allowed_ips.is_some() {
        c.allowed_ips = Some(parsed.allowed_ips_json().map(|v| v.to_string()));
    }
    if input.signature.is_some() {
        c.signature = Some(
            parsed
                .signature
                .as_ref()
                .map(|s| keys.seal(purpose::INCOMING_SIGNATURE, &s.stored_json().to_string())),
        );
    }
    Ok(())
}
