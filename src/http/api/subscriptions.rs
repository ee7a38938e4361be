//! `/api/webhooks/outgoing`: subscriptions (outgoing webhooks) in the AGiXT shape, with
//! pause/resume, secret rotation, a test send and replay; `/api/webhooks/event-types`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::subscription_shapes::{
    RetryPolicyIn, apply_retry_policy, format_template, payload_format_of, payload_template,
    retry_policy_of,
};
use super::{ts, ts_opt};
use crate::delivery::actor::{SendTest, Wake};
use crate::delivery::filters::{Filters, TypePattern};
use crate::delivery::policy::STANDARD_SCHEDULE_MS;
use crate::delivery::signer::{self, Scheme};
use crate::delivery::spec::{SecretEntry, open_secrets, seal_secrets};
use crate::event_types::CATALOG;
use crate::http::api::agents::visible_agent;
use crate::http::{ApiError, AppState, AuthUser};
use crate::hub::{SubscriptionRemoved, SubscriptionSaved};
use crate::secrets::Keyring;
use crate::store::deliveries::{self, ReplayFilter};
use crate::store::now;
use crate::store::subscriptions::{self, SubscriptionFields, SubscriptionRow};

/// The body of create and update; on update, omitted fields keep their value. Fields
/// are spelt as muninn and the documents spell them (aliases); any other is a 422.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionIn {
    #[serde(alias = "target_url", alias = "webhook_url")]
    pub url: Option<String>,
    /// TagoRUN's integration examples name one event.
    pub event: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(alias = "events")]
    pub event_types: Option<Vec<String>>,
    /// `active` is the AGiXT SDK's spelling.
    #[serde(alias = "active")]
    pub is_active: Option<bool>,
    pub headers: Option<Map<String, Value>>,
    pub secret: Option<String>,
    #[serde(default, deserialize_with = "some")]
    pub agent_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "some")]
    pub filters: Option<Option<Value>>,
    /// A template string that renders JSON, or an object of templates (TagoRUN's
    /// `payload_template`, `payload` in its integration examples).
    #[serde(default, deserialize_with = "some", alias = "payload")]
    pub payload_template: Option<Option<Value>>,
    pub retry_policy: Option<RetryPolicyIn>,
    /// `muninn` (the envelope) or `event` (`{event, data, timestamp}`); sets the
    /// payload template, so it cannot be given with one.
    pub payload_format: Option<String>,
    pub signature_scheme: Option<String>,
    #[serde(default, deserialize_with = "some")]
    pub signature_header: Option<Option<String>>,
    pub retry_count: Option<i64>,
    pub retry_delay: Option<f64>,
    pub max_retry_delay: Option<f64>,
    #[serde(default, deserialize_with = "some")]
    pub retry_schedule: Option<Option<Value>>,
    pub timeout: Option<f64>,
    #[serde(default, deserialize_with = "some")]
    pub rate_limit: Option<Option<Value>>,
    pub max_in_flight: Option<i64>,
    pub ordered: Option<bool>,
    pub failure_threshold: Option<i64>,
    pub circuit_cooldown: Option<f64>,
}

/// Tells an absent field (keep) from `null` (clear).
fn some<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Serialize)]
pub struct SubscriptionOut {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub url: String,
    pub target_url: String,
    pub event_types: Vec<String>,
    pub agent_id: Option<i64>,
    pub filters: Option<Value>,
    pub headers: Value,
    /// The template as given: a string, or an object of templates.
    pub payload_template: Option<Value>,
    /// `muninn`, `event`, or `template` (a template of the caller's own).
    pub payload_format: &'static str,
    pub signature_scheme: String,
    pub signature_header: Option<String>,
    pub has_secret: bool,
    /// Why the webhook cannot sign (its stored secrets do not open with this hub's key):
    /// its deliveries are held until the key is restored or a new secret is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_error: Option<String>,
    /// Only in the answers to create and rotate-secret (never for `standard-v1a`, whose
    /// private key stays in the hub).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// `standard-v1a` only: the `whpk_` key receivers verify with (the newest), and
    /// every key still signing during a rotation, newest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_keys: Option<Vec<String>>,
    /// `{max_attempts, backoff}`, TagoRUN's view of the retry settings.
    pub retry_policy: Value,
    pub retry_count: i32,
    pub retry_delay: f64,
    pub max_retry_delay: f64,
    pub retry_schedule: Option<Vec<f64>>,
    pub timeout: f64,
    pub rate_limit: Option<i32>,
    pub rate_limit_period: &'static str,
    pub max_in_flight: i32,
    pub ordered: bool,
    pub is_active: bool,
    /// The same as `is_active`, for readers of the AGiXT SDK.
    pub active: bool,
    pub paused: bool,
    pub disabled_reason: Option<String>,
    pub failure_threshold: i32,
    pub circuit_cooldown: f64,
    /// `closed`, `open` or `half_open`, as last stored (the stored state changes with
    /// each attempt's outcome; an open circuit lets a probe through at
    /// `circuit_half_opens_at`).
    pub circuit_state: String,
    /// When the circuit opened; `null` while it is closed.
    pub circuit_opened_at: Option<String>,
    /// When an open circuit lets its probe through (opened + cooldown).
    pub circuit_half_opens_at: Option<String>,
    pub consecutive_failures: i32,
    pub created_at: String,
    pub updated_at: String,
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

pub fn to_out(r: SubscriptionRow, secret: Option<String>, keys: &Keyring) -> SubscriptionOut {
    let now = now();
    let opened = open_secrets(keys, &r.secrets);
    let has_secret = opened.as_ref().map_or(true, |list| {
        list.iter().any(|s| s.expires_at.is_none_or(|e| e > now))
    });
    let public_keys = (r.signature_scheme == Scheme::StandardV1a.name()).then(|| {
        opened.as_ref().map_or_else(
            |_| Vec::new(),
            |list| {
                list.iter()
                    .filter(|s| s.expires_at.is_none_or(|e| e > now))
                    .filter_map(|s| signer::public_key_of(&s.secret))
                    .collect::<Vec<_>>()
            },
        )
    });
    let signing_error = opened.err();
    let opened_at = r.circuit_opened_at.filter(|_| r.circuit_state != "closed");
    SubscriptionOut {
        public_key: public_keys.as_ref().and_then(|k| k.first().cloned()),
        public_keys,
        id: r.id,
        user_id: r.user_id,
        name: r.name,
        description: r.description,
        target_url: r.url.clone(),
        url: r.url,
        event_types: serde_json::from_str(&r.event_types).unwrap_or_default(),
        agent_id: r.agent_id,
        filters: r.filters.and_then(|f| serde_json::from_str(&f).ok()),
        headers: serde_json::from_str(&r.headers).unwrap_or_else(|_| json!({})),
        payload_format: payload_format_of(r.payload_template.as_deref()),
        payload_template: r.payload_template.as_deref().map(|t| {
            crate::template::object::stored_object(t)
                .unwrap_or_else(|| Value::String(t.to_string()))
        }),
        retry_policy: retry_policy_of(r.retry_count, r.retry_schedule.as_deref()),
        signature_scheme: r.signature_scheme,
        signature_header: r.signature_header,
        has_secret,
        signing_error,
        secret,
        retry_count: r.retry_count,
        retry_delay: secs(r.retry_delay_ms),
        max_retry_delay: secs(r.max_retry_delay_ms),
        retry_schedule: r
            .retry_schedule
            .and_then(|s| serde_json::from_str::<Vec<i64>>(&s).ok())
            .map(|v| v.into_iter().map(secs).collect()),
        timeout: secs(r.timeout_ms),
        rate_limit: r.rate_limit,
        rate_limit_period: if r.rate_limit_period_ms >= 60_000 {
            "minute"
        } else {
            "second"
        },
        max_in_flight: r.max_in_flight,
        ordered: r.ordered,
        is_active: r.is_active,
        active: r.is_active,
        paused: r.paused,
        disabled_reason: r.disabled_reason,
        failure_threshold: r.failure_threshold,
        circuit_cooldown: secs(r.circuit_cooldown_ms),
        circuit_opened_at: ts_opt(opened_at),
        circuit_half_opens_at: ts_opt(
            opened_at.map(|t| t + chrono::Duration::milliseconds(r.circuit_cooldown_ms)),
        ),
        consecutive_failures: r.consecutive_failures,
        circuit_state: r.circuit_state,
        created_at: ts(r.created_at),
        updated_at: ts(r.updated_at),
    }
}

pub(super) fn bad(field: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::Unprocessable(format!("{field}: {why}"))
}

fn ms(field: &str, seconds: f64, max_seconds: f64) -> Result<i64, ApiError> {
    if !seconds.is_finite() || seconds < 0.0 || seconds > max_seconds {
        return Err(bad(
            field,
            format!("must be a number of seconds from 0 to {max_seconds}"),
        ));
    }
    Ok((seconds * 1000.0).round() as i64)
}

/// `10`, `"10/s"`, `"600/m"`, `{"limit": 10, "period": "second"}` -> (limit, period ms).
fn parse_rate(v: &Value) -> Result<(i32, i64), ApiError> {
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

/// Refuses at save time a URL the target guard would refuse at every send (the send
/// still checks: DNS can change).
async fn check_target(state: &AppState, url: &str) -> Result<(), ApiError> {
    let allow = state.config.delivery.allow_private_targets;
    crate::delivery::guard::check_target_url(url, allow)
        .await
        .map_err(|why| bad("url", why))
}

fn parse_url(u: &str) -> Result<String, ApiError> {
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

/// Applies `input` over `base` (the current values, or defaults) and checks everything.
fn build_fields(
    input: &SubscriptionIn,
    base: SubscriptionFields,
    scheme_changed_secret: &mut Option<String>,
    keys: &Keyring,
) -> Result<SubscriptionFields, ApiError> {
    let mut f = base;
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
        f.event_types = Value::from(
            types
                .iter()
                .map(|t| t.trim().to_string())
                .collect::<Vec<_>>(),
        )
        .to_string();
    }
    if let Some(a) = input.is_active {
        f.is_active = a;
    }
    if let Some(h) = &input.headers {
        for (k, v) in h {
            let v = v
                .as_str()
                .ok_or_else(|| bad("headers", format!("value of {k:?} must be a string")))?;
            if actix_web::http::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                || actix_web::http::header::HeaderValue::from_str(v).is_err()
            {
                return Err(bad(
                    "headers",
                    format!("{k:?}: {v:?} is not a valid HTTP header"),
                ));
            }
        }
        f.headers = Value::Object(h.clone()).to_string();
    }
    if let Some(a) = input.agent_id {
        f.agent_id = a;
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
    if let Some(s) = &input.signature_scheme {
        let scheme = Scheme::parse(s).map_err(|e| bad("signature_scheme", e))?;
        f.signature_scheme = scheme.name().to_string();
    }
    if let Some(h) = &input.signature_header {
        if let Some(name) = h
            && actix_web::http::header::HeaderName::from_bytes(name.as_bytes()).is_err()
        {
            return Err(bad(
                "signature_header",
                format!("{name:?} is not a valid header name"),
            ));
        }
        f.signature_header = h.clone().filter(|h| !h.trim().is_empty());
    }
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
        f.retry_schedule = match s {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) if name == "standard" || name == "standard-webhooks" => {
                Some(Value::from(STANDARD_SCHEDULE_MS.to_vec()).to_string())
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
                Some(Value::from(v).to_string())
            }
            Some(_) => {
                return Err(bad(
                    "retry_schedule",
                    "must be a list of delays in seconds, or \"standard\"",
                ));
            }
        };
    }
    if let Some(p) = &input.retry_policy {
        apply_retry_policy(&mut f, p, input.retry_delay.is_some())?;
    }
    if let Some(t) = input.timeout {
        f.timeout_ms = ms("timeout", t, 300.0)?.max(1);
    }
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
    let scheme = Scheme::parse(&f.signature_scheme).map_err(|e| bad("signature_scheme", e))?;
    // What the owner is shown once: an HMAC secret, never a v1a private key (its
    // public key is in every answer instead).
    let shown = |secret: &str| (scheme != Scheme::StandardV1a).then(|| secret.to_string());
    if let Some(secret) = &input.secret {
        if secret.trim().is_empty() {
            return Err(bad(
                "secret",
                "must not be empty (leave it out to have one generated)",
            ));
        }
        scheme.check_secret(secret).map_err(|e| bad("secret", e))?;
        f.secrets = seal_secrets(
            keys,
            &[SecretEntry {
                secret: secret.clone(),
                expires_at: None,
            }],
        );
        *scheme_changed_secret = shown(secret);
    } else if open_secrets(keys, &f.secrets).is_ok_and(|l| {
        // Secrets that do not open are not replaced behind the user's back: the
        // webhook reports them (signing_error) until a new one is set. A secret of
        // another kind (a whsec_ under v1a; a whsk_, which its owner never saw, under
        // any HMAC scheme) cannot sign here, so a scheme change brings a new one.
        l.first().map_or(
            matches!(scheme, Scheme::Standard | Scheme::StandardV1a),
            |s| scheme.check_secret(&s.secret).is_err(),
        )
    }) {
        let secret = scheme.generate();
        f.secrets = seal_secrets(
            keys,
            &[SecretEntry {
                secret: secret.clone(),
                expires_at: None,
            }],
        );
        *scheme_changed_secret = shown(&secret);
    }
    Ok(f)
}

fn defaults() -> SubscriptionFields {
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

fn fields_of(r: &SubscriptionRow) -> SubscriptionFields {
    SubscriptionFields {
        name: r.name.clone(),
        description: r.description.clone(),
        url: r.url.clone(),
        event_types: r.event_types.clone(),
        agent_id: r.agent_id,
        filters: r.filters.clone(),
        headers: r.headers.clone(),
        payload_template: r.payload_template.clone(),
        signature_scheme: r.signature_scheme.clone(),
        signature_header: r.signature_header.clone(),
        secrets: r.secrets.clone(),
        retry_count: r.retry_count,
        retry_delay_ms: r.retry_delay_ms,
        max_retry_delay_ms: r.max_retry_delay_ms,
        retry_schedule: r.retry_schedule.clone(),
        timeout_ms: r.timeout_ms,
        rate_limit: r.rate_limit,
        rate_limit_period_ms: r.rate_limit_period_ms,
        max_in_flight: r.max_in_flight,
        ordered: r.ordered,
        is_active: r.is_active,
        failure_threshold: r.failure_threshold,
        circuit_cooldown_ms: r.circuit_cooldown_ms,
    }
}

/// A subscription the caller may see.
pub async fn visible(
    state: &AppState,
    user: &AuthUser,
    id: i64,
) -> Result<SubscriptionRow, ApiError> {
    state
        .addrs
        .store
        .read(move |c| subscriptions::find(c, id))
        .await?
        .filter(|s| user.can_see(s.user_id))
        .ok_or_else(|| ApiError::not_found("webhook", id))
}

pub async fn create_from(
    state: &AppState,
    user: &AuthUser,
    input: SubscriptionIn,
) -> Result<SubscriptionOut, ApiError> {
    if input.url.is_none() {
        return Err(bad("url", "is required (an http or https URL)"));
    }
    if let Some(Some(agent)) = input.agent_id {
        visible_agent(state, user, agent)
            .await
            .map_err(|_| bad("agent_id", format!("agent {agent} does not exist")))?;
    }
    let mut secret = None;
    let fields = build_fields(&input, defaults(), &mut secret, state.addrs.store.keys())?;
    check_target(state, &fields.url).await?;
    let user_id = user.id;
    let row = state
        .addrs
        .store
        .writer()
        .write(move |c, _| subscriptions::insert(c, user_id, &fields))
        .await?;
    state.addrs.hub.send(SubscriptionSaved(row.clone())).await?;
    Ok(to_out(row, secret, state.addrs.store.keys()))
}

pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<SubscriptionIn>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(create_from(&state, &user, body.into_inner()).await?))
}

pub async fn list(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    let scope = user.scope();
    let rows = state
        .addrs
        .store
        .read(move |c| subscriptions::list(c, scope))
        .await?;
    Ok(HttpResponse::Ok().json(
        rows.into_iter()
            .map(|r| to_out(r, None, state.addrs.store.keys()))
            .collect::<Vec<_>>(),
    ))
}

pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(to_out(
        visible(&state, &user, path.into_inner()).await?,
        None,
        state.addrs.store.keys(),
    )))
}

pub async fn update_from(
    state: &AppState,
    user: &AuthUser,
    id: i64,
    input: SubscriptionIn,
) -> Result<SubscriptionOut, ApiError> {
    let current = visible(state, user, id).await?;
    if let Some(Some(agent)) = input.agent_id {
        visible_agent(state, user, agent)
            .await
            .map_err(|_| bad("agent_id", format!("agent {agent} does not exist")))?;
    }
    let mut secret = None;
    let mut fields = build_fields(
        &input,
        fields_of(&current),
        &mut secret,
        state.addrs.store.keys(),
    )?;
    if input.url.is_some() {
        check_target(state, &fields.url).await?;
    }
    if input.is_active == Some(true) {
        // Re-activating clears the reason it was turned off.
        fields.is_active = true;
    }
    let reactivate = input.is_active == Some(true) && !current.is_active;
    let row = state
        .addrs
        .store
        .writer()
        .write(move |c, _| {
            let row = subscriptions::update(c, id, &fields)?;
            if reactivate {
                subscriptions::save_circuit(c, id, "closed", None, 0)?;
            }
            Ok(row)
        })
        .await?;
    state.addrs.hub.send(SubscriptionSaved(row.clone())).await?;
    if reactivate && let Some(entry) = state.addrs.registry.subscription(id) {
        // The stored circuit is closed: so must the live one be, or it holds the
        // queue for the rest of its cooldown while the answers say closed.
        entry.addr.send(crate::delivery::ResetCircuit).await??;
    }
    Ok(to_out(row, secret, state.addrs.store.keys()))
}

pub async fn update(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    body: web::Json<SubscriptionIn>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .json(update_from(&state, &user, path.into_inner(), body.into_inner()).await?))
}

pub async fn delete(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = visible(&state, &user, path.into_inner()).await?.id;
    state
        .addrs
        .store
        .writer()
        .write(move |c, _| subscriptions::delete(c, id))
        .await?;
    state.addrs.hub.send(SubscriptionRemoved(id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn set_paused(
    state: &AppState,
    user: &AuthUser,
    id: i64,
    paused: bool,
) -> Result<HttpResponse, ApiError> {
    let id = visible(state, user, id).await?.id;
    let row = state
        .addrs
        .store
        .writer()
        .write(move |c, _| subscriptions::set_paused(c, id, paused))
        .await?;
    state.addrs.hub.send(SubscriptionSaved(row.clone())).await?;
    Ok(HttpResponse::Ok().json(to_out(row, None, state.addrs.store.keys())))
}

pub async fn pause(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    set_paused(&state, &user, path.into_inner(), true).await
}

pub async fn resume(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    set_paused(&state, &user, path.into_inner(), false).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateIn {
    pub secret: Option<String>,
    #[serde(alias = "grace_period")]
    pub grace_period_seconds: Option<u64>,
}

/// Keeps at most this many old secrets signing at once.
const MAX_OLD_SECRETS: usize = 10;

pub async fn rotate_secret(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let current = visible(&state, &user, path.into_inner()).await?;
    let input: RotateIn = optional_body(&body)?.unwrap_or_default();
    let grace = input
        .grace_period_seconds
        .unwrap_or(state.config.delivery.secret_rotation_grace_seconds)
        .min(30 * 86400);
    let scheme = Scheme::parse(&current.signature_scheme).unwrap_or(Scheme::Hex);
    let new_secret = match input.secret.filter(|s| !s.trim().is_empty()) {
        Some(s) => {
            scheme.check_secret(&s).map_err(|e| bad("secret", e))?;
            s
        }
        None => scheme.generate(),
    };
    let at = now();
    let expires = at + chrono::Duration::seconds(grace as i64);
    let mut secrets = vec![SecretEntry {
        secret: new_secret.clone(),
        expires_at: None,
    }];
    // Old secrets that no longer open (the key that sealed them is gone) cannot sign
    // anyway: the rotation replaces them, which is how a user recovers such a webhook.
    let old_secrets = open_secrets(state.addrs.store.keys(), &current.secrets)
        .inspect_err(|e| tracing::warn!(subscription_id = current.id, error = %e, "rotating the secret of a webhook whose old secrets do not open; they are dropped"))
        .unwrap_or_default();
    // An old secret of another scheme (kept from before a scheme change) cannot sign.
    for old in old_secrets
        .into_iter()
        .filter(|s| s.expires_at.is_none_or(|e| e > at))
        .filter(|s| scheme.check_secret(&s.secret).is_ok())
    {
        let until = old.expires_at.map_or(expires, |e| e.min(expires));
        secrets.push(SecretEntry {
            secret: old.secret,
            expires_at: Some(until),
        });
    }
    secrets.truncate(MAX_OLD_SECRETS + 1);
    let text = seal_secrets(state.addrs.store.keys(), &secrets);
    let id = current.id;
    let row = state
        .addrs
        .store
        .writer()
        .write(move |c, _| subscriptions::set_secrets(c, id, &text))
        .await?;
    state.addrs.hub.send(SubscriptionSaved(row.clone())).await?;
    let mut answer = json!({
        "id": id,
        "previous_secrets_expire_at": ts(expires),
        "subscription": to_out(row, None, state.addrs.store.keys()),
    });
    // A v1a private key stays in the hub: the owner gets the public key to publish.
    answer[if scheme == Scheme::StandardV1a {
        "public_key"
    } else {
        "secret"
    }] = json!(match scheme {
        Scheme::StandardV1a => signer::public_key_of(&new_secret),
        _ => Some(new_secret),
    });
    Ok(HttpResponse::Ok().json(answer))
}

/// An optional JSON body: none (or only whitespace) is None, but one that is sent is
/// checked like any other, so a misspelt field is a 422 naming it rather than ignored.
fn optional_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| match e.classify() {
            serde_json::error::Category::Data => {
                ApiError::Unprocessable(format!("invalid request body: {e}"))
            }
            _ => ApiError::BadRequest(format!("the request body is not valid JSON: {e}")),
        })
}

/// The optional body of a test send: `{"test_payload": {...}}` becomes the event's `data`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestIn {
    pub test_payload: Option<Value>,
}

/// `POST /api/webhooks/outgoing/{id}/test` and the AGiXT SDK's `/api/webhooks/test/{id}`.
pub async fn test(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = visible(&state, &user, path.into_inner()).await?.id;
    let data = optional_body::<TestIn>(&body)?.and_then(|b| b.test_payload);
    let entry = state.addrs.registry.subscription(id).ok_or_else(|| {
        ApiError::Unprocessable(format!(
            "webhook {id} is not running (its stored settings are invalid)"
        ))
    })?;
    let outcome = entry.addr.send(SendTest { data }).await?;
    Ok(HttpResponse::Ok().json(outcome))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayIn {
    pub since: Option<String>,
    pub until: Option<String>,
    pub status: Option<Value>,
    pub event_type: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
}

fn parse_time(field: &str, v: &str) -> Result<chrono::NaiveDateTime, ApiError> {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.naive_utc())
        .map_err(|e| bad(field, format!("{v:?} is not an RFC 3339 time ({e})")))
}

/// Re-queues deliveries in batches through the Writer, without a cap.
const REPLAY_BATCH: i64 = 1000;

pub async fn replay(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let sub = visible(&state, &user, path.into_inner()).await?;
    let input: ReplayIn = optional_body(&body)?.unwrap_or_default();
    let statuses: Vec<String> = match &input.status {
        None | Some(Value::Null) => vec![deliveries::DEAD.to_string()],
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(_) => return Err(bad("status", "must be a status or a list of them")),
    };
    for s in &statuses {
        if !deliveries::STATUSES.contains(&s.as_str()) {
            return Err(bad(
                "status",
                format!("{s:?} is not one of {}", deliveries::STATUSES.join(", ")),
            ));
        }
    }
    let filter = ReplayFilter {
        subscription_id: sub.id,
        statuses,
        since: input
            .since
            .as_deref()
            .map(|s| parse_time("since", s))
            .transpose()?,
        until: input
            .until
            .as_deref()
            .map(|s| parse_time("until", s))
            .transpose()?,
        event_type: input.event_type.clone(),
    };
    let f = filter.clone();
    let matched = state
        .addrs
        .store
        .read(move |c| deliveries::count_for_replay(c, &f))
        .await?;
    if input.dry_run || matched == 0 {
        return Ok(HttpResponse::Ok()
            .json(json!({"matched": matched, "queued": 0, "dry_run": input.dry_run})));
    }
    let store = state.addrs.store.clone();
    let entry = state.addrs.registry.subscription(sub.id);
    actix_web::rt::spawn(async move {
        let mut after = 0;
        loop {
            let f = filter.clone();
            match store
                .writer()
                .write(move |c, _| deliveries::requeue_batch(c, &f, after, REPLAY_BATCH))
                .await
            {
                Ok(ids) if ids.is_empty() => break,
                Ok(ids) => {
                    after = ids.last().copied().unwrap_or(after);
                    if let Some(e) = &entry {
                        e.addr.do_send(Wake);
                    }
                }
                Err(e) => {
                    tracing::error!(subscription_id = filter.subscription_id, error = %e, "replay stopped");
                    break;
                }
            }
        }
    });
    Ok(HttpResponse::Accepted()
        .json(json!({"matched": matched, "queued": matched, "dry_run": false})))
}

/// `{"event_types": [{"type", "description"}]}`, as the AGiXT document prints it.
pub async fn event_types() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "event_types": CATALOG }))
}
