//! `/api/webhooks/incoming`: incoming webhooks in the AGiXT shape. Create, list, read,
//! update, delete, and rotate the token. Options are checked (and the transform
//! compiled) on save, so a bad template or allowlist is a 422 here rather than a
//! failure on the first request. The signature secret is write-only: it is stored
//! sealed and used, never shown. The token is shown once, in the answers to create and
//! rotate (as an API token is): only its digest is stored, so reads show `token` and
//! `url` as null; a user who lost it rotates to get a new one.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::Value;

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

/// The API's view of an incoming webhook.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IncomingOut {
    pub id: i64,
    pub name: String,
    /// The clear token, only in the answers to create and rotate (null otherwise).
    #[schema(required = true)]
    pub token: Option<String>,
    pub agent_id: i64,
    #[schema(required = true)]
    pub description: Option<String>,
    pub is_active: bool,
    /// The same as `is_active`, for readers of the AGiXT SDK.
    pub active: bool,
    /// The template as given: a string, or an object of templates.
    #[schema(required = true)]
    pub transform_template: Option<Value>,
    #[schema(required = true)]
    pub rate_limit: Option<i64>,
    /// Addresses and CIDR ranges.
    #[schema(required = true)]
    pub allowed_ips: Option<Value>,
    /// The check without its secret (`{scheme, header, tolerance_seconds}`).
    #[schema(required = true)]
    pub signature: Option<Value>,
    #[schema(required = true)]
    pub max_body_bytes: Option<i64>,
    #[schema(required = true)]
    pub response_headers: Option<Value>,
    #[schema(required = true)]
    pub previous_token_expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// `/webhook/{token}`, only beside the clear token (null otherwise).
    #[schema(required = true)]
    pub url: Option<String>,
    /// Why the endpoint answers 503 (e.g. its signature secret does not open with this
    /// hub's key), so the owner does not read a missing option as "no signature check".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options_error: Option<String>,
}

/// The API's view of a row. `token` is the clear token, known only in the answer that
/// issued it.
fn to_out(row: &IncomingRow, base: &str, token: Option<&str>, keys: &Keyring) -> IncomingOut {
    let compiled = compile(row, keys);
    let protections = compiled.as_ref().ok().map(|c: &Compiled| &c.protections);
    IncomingOut {
        id: row.id.0,
        name: row.name.clone(),
        token: token.map(str::to_string),
        agent_id: row.agent_id.0,
        description: row.description.clone(),
        is_active: row.is_active,
        active: row.is_active,
        transform_template: row.transform_template.as_deref().map(|t| {
            crate::template::object::stored_object(t)
                .unwrap_or_else(|| Value::String(t.to_string()))
        }),
        rate_limit: row.rate_limit,
        allowed_ips: protections.and_then(ProtectionOptions::allowed_ips_json),
        signature: protections
            .and_then(|p| p.signature.as_ref())
            .map(|s| s.public_json()),
        max_body_bytes: row.max_body_bytes,
        response_headers: row
            .response_headers
            .as_deref()
            .and_then(|h| serde_json::from_str::<Value>(h).ok()),
        previous_token_expires_at: ts_opt(row.previous_expires_at),
        created_at: ts(row.created_at),
        updated_at: ts(row.updated_at),
        url: token.map(|t| format!("{base}/webhook/{t}")),
        options_error: compiled.err().map(|e| e.to_string()),
    }
}

/// The answer for `row`, with the clear token when this answer issued it.
fn answer(
    state: &AppState,
    req: &HttpRequest,
    row: &IncomingRow,
    token: Option<&str>,
) -> IncomingOut {
    to_out(row, &base_url(state, req), token, state.addrs.store.keys())
}

#[utoipa::path(
    post,
    path = "/api/webhooks/incoming",
    operation_id = "incoming_webhooks_create",
    tag = "incoming_webhooks",
    request_body = IncomingIn,
    responses(
        (status = 201, description = "Created; `token` and `url` are shown only here", body = IncomingOut)
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
        (status = 200, description = "The incoming webhooks, oldest first (`token` and `url` null); `Link: <...>; rel=\"next\"` when there are more", body = [IncomingOut])
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
    let (rows, next) = page.cut(rows, |r| r.id.0);
    let base = base_url(&state, &req);
    let keys = state.addrs.store.keys();
    let outs: Vec<IncomingOut> = rows.iter().map(|r| to_out(r, &base, None, keys)).collect();
    Ok(page.respond(&req, &outs, next))
}

#[utoipa::path(
    get,
    path = "/api/webhooks/incoming/{id}",
    operation_id = "incoming_webhooks_get",
    tag = "incoming_webhooks",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "The incoming webhook (`token` and `url` null)", body = IncomingOut)
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<crate::ids::IncomingWebhookId>,
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
    request_body = IncomingIn,
    responses(
        (status = 200, description = "The incoming webhook, changed", body = IncomingOut)
    )
)]
pub async fn update(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<crate::ids::IncomingWebhookId>,
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
    id: web::Path<crate::ids::IncomingWebhookId>,
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
        (status = 200, description = "The new `token` and `url`, shown only here; the old token works until `previous_token_expires_at`", body = IncomingOut)
    )
)]
pub async fn rotate(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<crate::ids::IncomingWebhookId>,
) -> Result<HttpResponse, ApiError> {
    let issued = service(&state).rotate(user.scope(), *id).await?;
    Ok(HttpResponse::Ok().json(answer(&state, &req, &issued.row, Some(&issued.token))))
}
