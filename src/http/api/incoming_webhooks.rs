//! `/api/webhooks/incoming`: incoming webhooks in the AGiXT shape. Create, list, read,
//! update, delete, and rotate the token. Options are checked (and the transform
//! compiled) on save, so a bad template or allowlist is a 422 here rather than a
//! failure on the first request. The signature secret is write-only: it is stored
//! sealed and used, never shown. The token is shown once, in the answers to create and
//! rotate (as an API token is): only its digest is stored, so reads show `token` and
//! `url` as null; a user who lost it rotates to get a new one.

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use super::agents::base_url;
use super::{ts, ts_opt};
use crate::agents::kind;
use crate::endpoints::guard::ProtectionOptions;
use crate::endpoints::incoming::{Compiled, compile};
use crate::endpoints::transform::Transform;
use crate::http::{ApiError, AppState, AuthUser};
use crate::hub::{IncomingRemoved, IncomingSaved};
use crate::secrets::{Keyring, purpose, token_digest};
use crate::store::incoming_webhooks::{self, IncomingChanges, IncomingRow};
use crate::store::{agents, inbound_log};

/// A new token: 32 bytes from the OS-seeded CSPRNG, URL-safe base64.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "whk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Tells an absent field (keep) from `null` (clear).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
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

fn text_field(v: &Option<Value>, field: &str) -> Result<Option<Option<String>>, ApiError> {
    match v {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(ApiError::Unprocessable(format!(
            "field \"{field}\" must be a string or null"
        ))),
    }
}

/// The API's view of a row. `token` is the clear token, known only in the answer that
/// issued it.
fn to_out(row: &IncomingRow, base: &str, token: Option<&str>, keys: &Keyring) -> Value {
    let compiled = compile(row, keys);
    let protections = compiled.as_ref().ok().map(|c: &Compiled| &c.protections);
    let mut out = json!({
        "id": row.id,
        "name": row.name,
        "token": token,
        "agent_id": row.agent_id,
        "description": row.description,
        "is_active": row.is_active,
        "active": row.is_active,
        "transform_template": row.transform_template.as_deref().map(|t| {
            crate::template::object::stored_object(t).unwrap_or_else(|| Value::String(t.to_string()))
        }),
        "rate_limit": row.rate_limit,
        "allowed_ips": protections.and_then(ProtectionOptions::allowed_ips_json),
        "signature": protections.and_then(|p| p.signature.as_ref()).map(|s| s.public_json()),
        "max_body_bytes": row.max_body_bytes,
        "response_headers": row.response_headers.as_deref().and_then(|h| serde_json::from_str::<Value>(h).ok()),
        "previous_token_expires_at": ts_opt(row.previous_expires_at),
        "created_at": ts(row.created_at),
        "updated_at": ts(row.updated_at),
        "url": token.map(|t| format!("{base}/webhook/{t}")),
    });
    // Why the endpoint answers 503 (e.g. its signature secret does not open with this
    // hub's key), so the owner does not read a missing option as "no signature check".
    if let (Err(e), Some(o)) = (compiled, out.as_object_mut()) {
        o.insert("options_error".into(), json!(e));
    }
    out
}

/// Checks the input against the current row (for updates) and turns it into changes.
async fn changes(
    state: &AppState,
    owner: i64,
    input: &IncomingIn,
    current: Option<&IncomingRow>,
) -> Result<IncomingChanges, ApiError> {
    let mut c = IncomingChanges::default();
    if let Some(name) = &input.name {
        if name.trim().is_empty() {
            return Err(ApiError::Unprocessable(
                "field \"name\" must not be empty".into(),
            ));
        }
        c.name = Some(name.trim().to_string());
    } else if current.is_none() {
        return Err(ApiError::Unprocessable("field \"name\" is required".into()));
    }
    if let Some(agent_id) = input.agent_id {
        let row = state
            .addrs
            .store
            .read(move |conn| agents::find(conn, agent_id))
            .await?;
        let Some(row) = row.filter(|r| r.user_id == owner) else {
            return Err(ApiError::Unprocessable(format!(
                "agent_id: agent {agent_id} does not exist or belongs to another user"
            )));
        };
        if !kind(&row.agent_type).is_some_and(|k| k.can_receive_events) {
            return Err(ApiError::Unprocessable(format!(
                "agent_id: agent {agent_id} ({}) cannot receive events; pick an agent that takes events from other agents",
                row.agent_type
            )));
        }
        c.agent_id = Some(agent_id);
    } else if current.is_none() {
        return Err(ApiError::Unprocessable(
            "field \"agent_id\" is required: the agent that receives the webhook's events".into(),
        ));
    }
    c.description = text_field(&input.description, "description")?;
    c.is_active = input.is_active;
    c.transform_template = match &input.transform_template {
        Some(o @ Value::Object(_)) => Some(Some(crate::template::object::store(o))),
        other => {
            text_field(other, "transform_template")?.map(|t| t.filter(|t| !t.trim().is_empty()))
        }
    };
    if let Some(Some(t)) = &c.transform_template {
        Transform::new(t).map_err(|e| ApiError::Unprocessable(format!("invalid {e}")))?;
    }
    if let Some(h) = &input.response_headers {
        crate::endpoints::incoming::parse_response_headers(h).map_err(ApiError::Unprocessable)?;
        c.response_headers = Some((!h.is_null()).then(|| h.to_string()));
    }
    // The protection options, merged over the current ones, are checked together.
    let keys = state.addrs.store.keys();
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
        .map_err(ApiError::Unprocessable)?;
    if input.rate_limit.is_some() {
        c.rate_limit = Some(parsed.rate_limit.map(i64::from));
    }
    if input.max_body_bytes.is_some() {
        c.max_body_bytes = Some(parsed.max_body_bytes.map(|m| m as i64));
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
    Ok(c)
}

async fn visible(state: &AppState, user: &AuthUser, id: i64) -> Result<IncomingRow, ApiError> {
    state
        .addrs
        .store
        .read(move |c| incoming_webhooks::find(c, id))
        .await?
        .filter(|r| user.can_see(r.user_id))
        .ok_or_else(|| ApiError::not_found("incoming webhook", id))
}

pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    body: web::Json<IncomingIn>,
) -> Result<HttpResponse, ApiError> {
    let c = changes(&state, user.id, &body, None).await?;
    let token = generate_token();
    let digest = token_digest(&token);
    let owner = user.id;
    let row = state
        .addrs
        .store
        .writer()
        .write(move |conn, _| incoming_webhooks::insert(conn, owner, &digest, &c))
        .await?;
    state.addrs.hub.send(IncomingSaved(row.clone())).await?;
    let keys = state.addrs.store.keys();
    Ok(HttpResponse::Created().json(to_out(&row, &base_url(&state, &req), Some(&token), keys)))
}

pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let scope = user.scope();
    let rows = state
        .addrs
        .store
        .read(move |c| incoming_webhooks::list(c, scope))
        .await?;
    let base = base_url(&state, &req);
    let keys = state.addrs.store.keys();
    Ok(HttpResponse::Ok().json(
        rows.iter()
            .map(|r| to_out(r, &base, None, keys))
            .collect::<Vec<_>>(),
    ))
}

pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let row = visible(&state, &user, *id).await?;
    let keys = state.addrs.store.keys();
    Ok(HttpResponse::Ok().json(to_out(&row, &base_url(&state, &req), None, keys)))
}

pub async fn update(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<i64>,
    body: web::Json<IncomingIn>,
) -> Result<HttpResponse, ApiError> {
    let current = visible(&state, &user, *id).await?;
    let c = changes(&state, current.user_id, &body, Some(&current)).await?;
    let id = current.id;
    let row = state
        .addrs
        .store
        .writer()
        .write(move |conn, _| incoming_webhooks::update(conn, id, &c))
        .await?;
    state.addrs.hub.send(IncomingSaved(row.clone())).await?;
    let keys = state.addrs.store.keys();
    Ok(HttpResponse::Ok().json(to_out(&row, &base_url(&state, &req), None, keys)))
}

pub async fn delete(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let current = visible(&state, &user, *id).await?;
    let id = current.id;
    state
        .addrs
        .store
        .writer()
        .write(move |conn, _| {
            inbound_log::delete_endpoint(conn, &crate::endpoints::incoming::endpoint_key(id))?;
            incoming_webhooks::delete(conn, id)
        })
        .await?;
    state.addrs.hub.send(IncomingRemoved(id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Issues a new token; the old one keeps working for `[inbound] token_rotation_grace_seconds`.
pub async fn rotate(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let current = visible(&state, &user, *id).await?;
    let id = current.id;
    let grace = state.config.inbound.token_rotation_grace_seconds;
    let until = (grace > 0).then(|| {
        chrono::TimeDelta::try_seconds(grace)
            .and_then(|d| crate::store::now().checked_add_signed(d))
            .unwrap_or(chrono::NaiveDateTime::MAX)
    });
    let token = generate_token();
    let digest = token_digest(&token);
    let row = state
        .addrs
        .store
        .writer()
        .write(move |conn, _| incoming_webhooks::rotate(conn, id, &digest, until))
        .await?;
    state.addrs.hub.send(IncomingSaved(row.clone())).await?;
    let keys = state.addrs.store.keys();
    Ok(HttpResponse::Ok().json(to_out(&row, &base_url(&state, &req), Some(&token), keys)))
}
