//! Turns a caller's `SubscriptionIn` into the stored fields the delivery engine
//! compiles (`spec::Spec::from_row`), checking every rule once, here. Applied over
//! defaults on create and over the current row on update (omitted fields keep their
//! value). The checks run in a fixed field order, so the first wrong field is the one
//! named.

use awc::http::header::{HeaderName, HeaderValue};
use serde_json::Value;

use super::error::{SubscriptionError, bad};
use super::input::SubscriptionIn;
use super::shapes::{apply_retry_policy, format_template, payload_template};
use crate::delivery::filters::{Filters, TypePattern};
use crate::delivery::policy::STANDARD_SCHEDULE_MS;
use crate::delivery::signer::Scheme;
use crate::delivery::spec::{SecretEntry, open_secrets, seal_secrets};
use crate::secrets::Keyring;
use crate::store::subscriptions::SubscriptionFields;

/// A subscription ready to store, and the secret its owner is shown once (when one was
/// set or generated, and the scheme lets it be shown).
#[derive(Debug)]
pub struct Validated {
    pub fields: SubscriptionFields,
    pub shown_secret: Option<String>,
}

/// The fields of a new subscription before the caller's input is applied.
pub fn defaults() -> SubscriptionFields {
    SubscriptionFields {
        name: String::new(),
        description: None,
        url: String::new(),
        event_types: "[\"*\"]".into(),
        agent_id: None,
        filters: None,
        headers: "{}".into(),
        payload_template: None,
        signature_scheme: "hex".into(),
        signature_header: None,
        secrets: "[]".into(),
        retry_count: 3,
        retry_delay_ms: 60_000,
        max_retry_delay_ms: 3_600_000,
        retry_schedule: None,
        timeout_ms: 30_000,
        rate_limit: None,
        rate_limit_period_ms: 1000,
        max_in_flight: 8,
        ordered: false,
        is_active: true,
        failure_threshold: 5,
        circuit_cooldown_ms: 300_000,
    }
}

/// Applies `input` over `base` (the current values, or `defaults()`) and checks it all.
pub fn validate(
    input: &SubscriptionIn,
    base: SubscriptionFields,
    keys: &Keyring,
) -> Result<Validated, SubscriptionError> {
    let mut f = base;
    apply_target(input, &mut f)?;
    apply_matching(input, &mut f)?;
    apply_payload(input, &mut f)?;
    apply_signature(input, &mut f)?;
    apply_retries(input, &mut f)?;
    apply_limits(input, &mut f)?;
    let shown_secret = apply_secret(input, &mut f, keys)?;
    Ok(Validated {
        fields: f,
        shown_secret,
    })
}

fn ms(field: &str, seconds: f64, max_seconds: f64) -> Result<i64, SubscriptionError> {
    if !seconds.is_finite() || seconds < 0.0 || seconds > max_seconds {
        return Err(bad(
            field,
            format!("must be a number of seconds from 0 to {max_seconds}"),
        ));
    }
    Ok((seconds * 1000.0).round() as i64)
}

/// `10`, `"10/s"`, `"600/m"`, `{"limit": 10, "period": "second"}` -> (limit, period ms).
fn parse_rate(v: &Value) -> Result<(i32, i64), SubscriptionError> {
    let period_ms = |p: &str| match p.trim().to_ascii_lowercase().as_str() {
        "s" | "sec" | "second" | "seconds" => Ok(1000),
        "m" | "min" | "minute" | "minutes" => Ok(60_000),
        other => Err(bad(
            "rate_limit",
            format!("period {other:?} is not second or minute"),
        )),
    };
    let (n, p) = match v {
        Value::Number(n) => (n.as_i64(), 1000),
        Value::String(s) => {
            let (n, p) = s.split_once('/').unwrap_or((s.as_str(), "s"));
            (n.trim().parse().ok(), period_ms(p)?)
        }
        Value::Object(m) => (
            m.get("limit").or(m.get("requests")).and_then(Value::as_i64),
            period_ms(m.get("period").and_then(Value::as_str).unwrap_or("second"))?,
        ),
        _ => (None, 0),
    };
    match n {
        Some(n) if (1..=1_000_000).contains(&n) => Ok((n as i32, p)),
        _ => Err(bad(
            "rate_limit",
            "use requests per second (10, \"10/s\") or per minute (\"600/m\")",
        )),
    }
}

fn parse_url(u: &str) -> Result<String, SubscriptionError> {
    let parsed =
        url::Url::parse(u.trim()).map_err(|e| bad("url", format!("{u:?} is not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(bad(
            "url",
            format!("{u:?} must be an http or https URL with a host"),
        ));
    }
    Ok(parsed.to_string())
}

/// Where it sends, and what it is called.
fn apply_target(
    input: &SubscriptionIn,
    f: &mut SubscriptionFields,
) -> Result<(), SubscriptionError> {
    if let Some(u) = &input.url {
        f.url = parse_url(u)?;
    }
    if f.url.is_empty() {
        return Err(bad("url", "is required (an http or https URL)"));
    }
    if let Some(n) = &input.name {
        f.name = n.trim().to_string();
    }
    if f.name.is_empty() {
        f.name = f.url.clone();
    }
    if input.description.is_some() {
        f.description = input.description.clone();
    }
    Ok(())
}

/// The most headers a subscription adds to each delivery, and their total size (names
/// and values): every delivery carries them, beside the signature headers, and a
/// receiver refuses a request whose headers exceed its limit (Node: 16 KiB in all,
/// nginx: 8 KiB a line) with a 431 that would make every delivery fail.
const MAX_HEADERS: usize = 64;
const MAX_HEADER_BYTES: usize = 8 * 1024;

/// Which events it takes, and the headers it adds.
fn apply_matching(
    input: &SubscriptionIn,
    f: &mut SubscriptionFields,
) -> Result<(), SubscriptionError> {
    let single;
    let event_types = match (&input.event_types, &input.event) {
        (Some(_), Some(_)) => return Err(bad("event", "give event or event_types, not both")),
        (None, Some(e)) => {
            single = vec![e.clone()];
            Some(&single)
        }
        (types, None) => types.as_ref(),
    };
    if let Some(types) = event_types {
        if types.is_empty() {
            return Err(bad(
                "event_types",
                "must list at least one event type or pattern (\"*\" for all)",
            ));
        }
        for t in types {
            TypePattern::parse(t).map_err(|e| bad("event_types", e))?;
        }
        let trimmed: Vec<String> = types.iter().map(|t| t.trim().to_string()).collect();
        f.event_types = Value::from(trimmed).to_string();
    }
    if let Some(a) = input.is_active {
        f.is_active = a;
    }
    if let Some(h) = &input.headers {
        if h.len() > MAX_HEADERS {
            return Err(bad(
                "headers",
                format!("at most {MAX_HEADERS} headers (got {})", h.len()),
            ));
        }
        let bytes: usize = h
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        if bytes > MAX_HEADER_BYTES {
            return Err(bad(
                "headers",
                format!(
                    "names and values add up to {bytes} bytes; at most {MAX_HEADER_BYTES} \
                     (receivers refuse larger headers, e.g. Node's 16 KiB limit for all of them)"
                ),
            ));
        }
        for (k, v) in h {
            let v = v
                .as_str()
                .ok_or_else(|| bad("headers", format!("value of {k:?} must be a string")))?;
            if HeaderName::from_bytes(k.as_bytes()).is_err() || HeaderValue::from_str(v).is_err() {
                return Err(bad(
                    "headers",
                    format!("{k:?}: {v:?} is not a valid HTTP header"),
                ));
            }
        }
        f.headers = Value::Object(h.clone()).to_string();
    }
    if let Some(a) = input.agent_id {
        f.agent_id = a.map(crate::ids::AgentId);
    }
    if let Some(filters) = &input.filters {
        f.filters = match filters {
            None | Some(Value::Null) => None,
            Some(v) => {
                Filters::parse(v).map_err(|e| bad("filters", e))?;
                Some(v.to_string())
            }
        };
    }
    Ok(())
}

/// What the body looks like.
fn apply_payload(
    input: &SubscriptionIn,
    f: &mut SubscriptionFields,
) -> Result<(), SubscriptionError> {
    if let Some(format) = &input.payload_format {
        if input.payload_template.is_some() {
            return Err(bad(
                "payload_format",
                "give payload_format or payload_template, not both",
            ));
        }
        f.payload_template = format_template(Some(format.as_str()))?;
    }
    if let Some(t) = &input.payload_template {
        f.payload_template = payload_template(t.as_ref())?;
    }
    Ok(())
}

/// How it signs (the secret itself is `apply_secret`'s, once the scheme is known).
fn apply_signature(
    input: &SubscriptionIn,
    f: &mut SubscriptionFields,
) -> Result<(), SubscriptionError> {
    if let Some(s) = &input.signature_scheme {
        let scheme = Scheme::parse(s).map_err(|e| bad("signature_scheme", e))?;
        f.signature_scheme = scheme.name().to_string();
    }
    if let Some(h) = &input.signature_header {
        if let Some(name) = h
            && HeaderName::from_bytes(name.as_bytes()).is_err()
        {
            return Err(bad(
                "signature_header",
                format!("{name:?} is not a valid header name"),
            ));
        }
        f.signature_header = h.clone().filter(|h| !h.trim().is_empty());
    }
    Ok(())
}

/// When it tries again, and how long one attempt may take.
fn apply_retries(
    input: &SubscriptionIn,
    f: &mut SubscriptionFields,
) -> Result<(), SubscriptionError> {
    if let Some(n) = input.retry_count {
        if !(0..=100).contains(&n) {
            return Err(bad("retry_count", "must be from 0 to 100"));
        }
        f.retry_count = n as i32;
    }
    if let Some(d) = input.retry_delay {
        f.retry_delay_ms = ms("retry_delay", d, 7.0 * 86400.0)?;
    }
    if let Some(d) = input.max_retry_delay {
        f.max_retry_delay_ms = ms("max_retry_delay", d, 30.0 * 86400.0)?;
    }
    if let Some(s) = &input.retry_schedule {
        f.retry_schedule = retry_schedule(s.as_ref())?;
    }
    if let Some(p) = &input.retry_policy {
        apply_retry_policy(f, p, input.retry_delay.is_some())?;
    }
    if let Some(t) = input.timeout {
        f.timeout_ms = ms("timeout", t, 300.0)?.max(1);
    }
    Ok(())
}

fn retry_schedule(s: Option<&Value>) -> Result<Option<String>, SubscriptionError> {
    match s {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(name)) if name == "standard" || name == "standard-webhooks" => {
            Ok(Some(Value::from(STANDARD_SCHEDULE_MS.to_vec()).to_string()))
        }
        Some(Value::Array(items)) if items.len() <= 100 => {
            let v = items
                .iter()
                .map(|i| {
                    i.as_f64()
                        .ok_or_else(|| bad("retry_schedule", "must list delays in seconds"))
                        .and_then(|d| ms("retry_schedule", d, 30.0 * 86400.0))
                })
                .collect::<Result<Vec<i64>, _>>()?;
            Ok(Some(Value::from(v).to_string()))
        }
        Some(_) => Err(bad(
            "retry_schedule",
            "must be a list of delays in seconds, or \"standard\"",
        )),
    }
}

/// How fast it may send, and when its circuit opens.
fn apply_limits(
    input: &SubscriptionIn,
    f: &mut SubscriptionFields,
) -> Result<(), SubscriptionError> {
    if let Some(r) = &input.rate_limit {
        match r {
            None | Some(Value::Null) => f.rate_limit = None,
            Some(v) => {
                let (n, p) = parse_rate(v)?;
                f.rate_limit = Some(n);
                f.rate_limit_period_ms = p;
            }
        }
    }
    if let Some(n) = input.max_in_flight {
        if !(1..=1000).contains(&n) {
            return Err(bad("max_in_flight", "must be from 1 to 1000"));
        }
        f.max_in_flight = n as i32;
    }
    if let Some(o) = input.ordered {
        f.ordered = o;
    }
    if let Some(n) = input.failure_threshold {
        if !(1..=1000).contains(&n) {
            return Err(bad("failure_threshold", "must be from 1 to 1000"));
        }
        f.failure_threshold = n as i32;
    }
    if let Some(c) = input.circuit_cooldown {
        f.circuit_cooldown_ms = ms("circuit_cooldown", c, 86400.0)?;
    }
    Ok(())
}

/// Sets the secret the caller gave, or generates one when the scheme needs one the
/// stored secrets cannot give; returns what the owner is shown once.
fn apply_secret(
    input: &SubscriptionIn,
    f: &mut SubscriptionFields,
    keys: &Keyring,
) -> Result<Option<String>, SubscriptionError> {
    let scheme = Scheme::parse(&f.signature_scheme).map_err(|e| bad("signature_scheme", e))?;
    // What the owner is shown once: an HMAC secret, never a v1a private key (its
    // public key is in every answer instead).
    let shown = |secret: &str| (scheme != Scheme::StandardV1a).then(|| secret.to_string());
    let one = |secret: &str| {
        seal_secrets(
            keys,
            &[SecretEntry {
                secret: secret.to_string(),
                expires_at: None,
            }],
        )
    };
    if let Some(secret) = &input.secret {
        if secret.trim().is_empty() {
            return Err(bad(
                "secret",
                "must not be empty (leave it out to have one generated)",
            ));
        }
        scheme.check_secret(secret).map_err(|e| bad("secret", e))?;
        f.secrets = one(secret);
        return Ok(shown(secret));
    }
    // Secrets that do not open are not replaced behind the user's back: the webhook
    // reports them (signing_error) until a new one is set. A secret of another kind (a
    // whsec_ under v1a; a whsk_, which its owner never saw, under any HMAC scheme)
    // cannot sign here, so a scheme change brings a new one.
    let needs_new = open_secrets(keys, &f.secrets).is_ok_and(|l| {
        l.first().map_or(
            matches!(scheme, Scheme::Standard | Scheme::StandardV1a),
            |s| scheme.check_secret(&s.secret).is_err(),
        )
    });
    if !needs_new {
        return Ok(None);
    }
    let secret = scheme.generate();
    f.secrets = one(&secret);
    Ok(shown(&secret))
}
