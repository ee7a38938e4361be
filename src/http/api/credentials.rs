//! `/api/credentials`: Huginn's user credentials — a named value per user that
//! templates read with `{% credential NAME %}`. Fields as Huginn names them:
//! `credential_name` (trimmed, unique per user), `credential_value` (trimmed),
//! `mode` (`text` or `java_script`, `text` by default). A body may also come wrapped as
//! Huginn's forms send it, `{"user_credential": {...}}`.
//!
//! Credentials are private to their owner, admins included: every query filters by the
//! caller's id and anyone else's id is a 404. The value is in one answer only, the
//! owner's `GET /api/credentials/{id}`; lists and the answers to saves leave it out,
//! and no error message repeats it.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ts;
use crate::accounts::credentials::{self, CredentialFields};
use crate::http::{ApiError, AppState, AuthUser};
use crate::store::credentials::CredentialRow;

/// The body of create and update; on update, omitted fields keep their value. No
/// Debug: it holds the value.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CredentialIn {
    /// Required on create.
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>)]
    credential_name: Option<Option<String>>,
    /// Required on create.
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>)]
    credential_value: Option<Option<String>>,
    /// `text` (the default) or `java_script`.
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>)]
    mode: Option<Option<String>>,
}

/// Huginn's forms send the fields wrapped.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct HuginnCredentialForm {
    user_credential: CredentialIn,
}

/// The body of create and update, in either shape `parse` reads.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum CredentialBody {
    Fields(CredentialIn),
    Form(HuginnCredentialForm),
}

/// Tells an absent field (keep) from `null` (blank).
fn some<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// No Debug either: the owner's read carries the value.
#[derive(Serialize, utoipa::ToSchema)]
struct CredentialOut {
    id: i64,
    user_id: i64,
    credential_name: String,
    mode: String,
    created_at: String,
    updated_at: String,
    /// Only in the owner's `GET /api/credentials/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    credential_value: Option<String>,
    /// Why the value cannot be read (it was sealed with a key this hub does not have).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    value_error: Option<String>,
}

fn out(r: CredentialRow) -> CredentialOut {
    CredentialOut {
        id: r.id,
        user_id: r.user_id,
        credential_name: r.credential_name,
        mode: r.mode,
        created_at: ts(r.created_at),
        updated_at: ts(r.updated_at),
        credential_value: None,
        value_error: None,
    }
}

/// The body as fields, unwrapping Huginn's `{"user_credential": {...}}`. The shape is
/// chosen here rather than by serde's untagged enum (which says only "did not match any
/// variant"), so an error names the field.
fn parse(body: Value) -> Result<CredentialFields, ApiError> {
    let form = match &body {
        Value::Object(m) => m.len() == 1 && m.get("user_credential").is_some_and(Value::is_object),
        _ => {
            return Err(ApiError::Unprocessable(
                "the body must be a JSON object with credential_name, credential_value and mode"
                    .into(),
            ));
        }
    };
    let parsed = if form {
        serde_json::from_value(body).map(CredentialBody::Form)
    } else {
        serde_json::from_value(body).map(CredentialBody::Fields)
    };
    match parsed.map_err(|e| crate::http::error::body_error(&e))? {
        CredentialBody::Fields(input)
        | CredentialBody::Form(HuginnCredentialForm {
            user_credential: input,
        }) => Ok(CredentialFields {
            credential_name: input.credential_name,
            credential_value: input.credential_value,
            mode: input.mode,
        }),
    }
}

#[utoipa::path(
    get,
    path = "/api/credentials",
    operation_id = "credentials_list",
    tag = "credentials",
    params(super::page::PageParams),
    responses(
        (status = 200, description = "OK (without the values)", body = Vec<CredentialOut>)
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let page = super::page::Page::from_request(&req, super::page::Order::OldestFirst)?;
    let (after, fetch) = (page.after(), page.fetch());
    let rows = credentials::page(&state.addrs.store, user.id, after, fetch).await?;
    let (rows, next) = page.cut(rows, |r| r.id);
    let outs: Vec<_> = rows.into_iter().map(out).collect();
    Ok(page.respond(&req, &outs, next))
}

/// The owner's read: the one answer that carries the value.
#[utoipa::path(
    get,
    path = "/api/credentials/{id}",
    operation_id = "credentials_get",
    tag = "credentials",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "OK", body = CredentialOut)
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let opened = credentials::read(&state.addrs.store, user.id, path.into_inner()).await?;
    let mut answer = out(opened.row);
    match opened.value {
        Ok(v) => answer.credential_value = Some(v),
        Err(e) => answer.value_error = Some(e.to_string()),
    }
    Ok(HttpResponse::Ok().json(answer))
}

#[utoipa::path(
    post,
    path = "/api/credentials",
    operation_id = "credentials_create",
    tag = "credentials",
    request_body = CredentialBody,
    responses(
        (status = 201, description = "Created (without the value)", body = CredentialOut)
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let input = parse(body.into_inner())?;
    let max = state.config.accounts.max_credentials_per_user;
    let row = credentials::create(&state.addrs.store, user.id, max, input).await?;
    Ok(HttpResponse::Created().json(out(row)))
}

#[utoipa::path(
    method(put, patch),
    path = "/api/credentials/{id}",
    operation_id = "credentials_update",
    tag = "credentials",
    params(("id" = i64, Path)),
    request_body = CredentialBody,
    responses(
        (status = 200, description = "OK (without the value)", body = CredentialOut)
    )
)]
pub async fn update(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let input = parse(body.into_inner())?;
    let row = credentials::update(&state.addrs.store, user.id, path.into_inner(), input).await?;
    Ok(HttpResponse::Ok().json(out(row)))
}

#[utoipa::path(
    delete,
    path = "/api/credentials/{id}",
    operation_id = "credentials_delete",
    tag = "credentials",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "No content")
    )
)]
pub async fn delete(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    credentials::delete(&state.addrs.store, user.id, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
