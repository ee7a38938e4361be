//! `/api/webhooks/incoming`: incoming webhooks in the AGiXT shape. Create, list, read,
//! update, delete, and rotate the token. Options are checked (and the transform
//! compiled) on save, so a bad template or allowlist is a 422 here rather than a
//! failure on the first request. The signature secret is write-only: it is stored
//! sealed and used, never shown. The token is shown once, in the answers to create and
//! rotate (as an API token is): only its digest is stored, so reads show `token` and
//! `url` as null; a user who lost it rotates to get a new one.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::agents::base_url;
use super::{ts, ts_opt};
use crate::endpoints::guard::ProtectionOptions;
use crate::endpoints::incoming::{Compiled, compile};
use crate::endpoints::incoming_service::{IncomingError, IncomingWebhooks};
use crate::http::{ApiError, AppState, AuthUser};
use crate::hub::Addrs;
use crate::secrets::Keyring;
use crate::store::incoming_webhooks::IncomingRow;

pub use crate::endpoints::incoming_service::{IncomingIn, generate_token};

impl From<IncomingError> for ApiError {
    fn from(e: IncomingError) -> ApiError {
        match e {
            IncomingError::Invalid(m) => ApiError::Unprocessable(m),
            IncomingError::NotFound(id) => ApiError::not_found("incoming webhook", id),
            IncomingError::Store(s) => s.into(),
            IncomingError::HubUnavailable => actix::MailboxError::Closed.into(),
        }
    }
}

/// The workflows over this server's store and hub.
pub fn service(state: &AppState) -> IncomingWebhooks<'_, Addrs> {
    IncomingWebhooks {
        store: &state.addrs.store,
        running: &state.addrs,
        rotation_grace_seconds: state.config.inbound.token_rotation_grace_seconds,
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

/// The answer for `row`, with the clear token when this answer issued it.
fn answer(state: &AppState, req: &HttpRequest, row: &IncomingRow, token: Option<&str>) -> Value {
    to_out(row, &base_url(state, req), token, state.addrs.store.keys())
}

#[utoipa::path(
    post,
    path = "/api/webhooks/incoming",
    operation_id = "incoming_webhooks_create",
    tag = "incoming_webhooks",
    responses(
        (status = 201, description = "Created")
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    body: web::Json<IncomingIn>,
) -> Result<HttpResponse, ApiError> {
    let issued = service(&state).create(user.id, &body).await?;
    Ok(HttpResponse::Created().json(answer(&state, &req, &issued.row, Some(&issued.token))))
}

#[utoipa::path(
    get,
    path = "/api/webhooks/incoming",
    operation_id = "incoming_webhooks_list",
    tag = "incoming_webhooks",
    params(super::page::PageParams),
    responses(
        (status = 200, description = "OK")
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let page = super::page::Page::from_request(&req, super::page::Order::OldestFirst)?;
    let rows = service(&state)
        .page(user.scope(), page.after(), page.fetch())
        .await?;
    let (rows, next) = page.cut(rows, |r| r.id);
    let base = base_url(&state, &req);
    let keys = state.addrs.store.keys();
    let outs: Vec<Value> = rows.iter().map(|r| to_out(r, &base, None, keys)).collect();
    Ok(page.respond(&req, &outs, next))
}

#[utoipa::path(
    get,
    path = "/api/webhooks/incoming/{id}",
    operation_id = "incoming_webhooks_get",
    tag = "incoming_webhooks",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "OK")
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let row = service(&state).get(user.scope(), *id).await?;
    Ok(HttpResponse::Ok().json(answer(&state, &req, &row, None)))
}

#[utoipa::path(
    method(put, patch),
    path = "/api/webhooks/incoming/{id}",
    operation_id = "incoming_webhooks_update",
    tag = "incoming_webhooks",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "OK")
    )
)]
pub async fn update(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<i64>,
    body: web::Json<IncomingIn>,
) -> Result<HttpResponse, ApiError> {
    let row = service(&state).update(user.scope(), *id, &body).await?;
    Ok(HttpResponse::Ok().json(answer(&state, &req, &row, None)))
}

#[utoipa::path(
    delete,
    path = "/api/webhooks/incoming/{id}",
    operation_id = "incoming_webhooks_delete",
    tag = "incoming_webhooks",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "No content")
    )
)]
pub async fn delete(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    service(&state).delete(user.scope(), *id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Issues a new token; the old one keeps working for `[inbound] token_rotation_grace_seconds`.
#[utoipa::path(
    post,
    path = "/api/webhooks/incoming/{id}/rotate",
    operation_id = "incoming_webhooks_rotate",
    tag = "incoming_webhooks",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "OK")
    )
)]
pub async fn rotate(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let issued = service(&state).rotate(user.scope(), *id).await?;
    Ok(HttpResponse::Ok().json(answer(&state, &req, &issued.row, Some(&issued.token))))
}
