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
use crate::http::{ApiError, AppState, AuthUser, ErrorCode};
use crate::secrets::purpose;
use crate::store::credential_cache as credentials;
use crate::store::credentials::{self as table, CredentialChanges, CredentialRow, MODES, Saved};

/// Longest name, in characters (Huginn's column is a 255-character string).
const NAME_MAX: usize = 255;
/// Largest value, in bytes (Huginn's column is a 64 KiB text).
const VALUE_MAX: usize = 65_535;

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
fn parse(body: Value) -> Result<CredentialIn, ApiError> {
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
        CredentialBody::Fields(fields)
        | CredentialBody::Form(HuginnCredentialForm {
            user_credential: fields,
        }) => Ok(fields),
    }
}

/// Checks and trims the fields given; `creating` makes name and value required.
/// Every problem is reported, not just the first; none repeats the value.
fn validate(
    input: CredentialIn,
    creating: bool,
) -> Result<(CredentialChanges, Option<String>), ApiError> {
    let mut problems = Vec::new();
    let name = match input.credential_name {
        None if creating => Some(None),
        other => other,
    };
    let name = name.map(|n| n.unwrap_or_default().trim().to_string());
    match &name {
        Some(n) if n.is_empty() => problems.push("credential_name: can't be blank".to_string()),
        Some(n) if n.chars().count() > NAME_MAX => problems.push(format!(
            "credential_name: is too long (at most {NAME_MAX} characters)"
        )),
        _ => {}
    }
    let value = match input.credential_value {
        None if creating => Some(None),
        other => other,
    };
    let value = value.map(|v| v.unwrap_or_default().trim().to_string());
    match &value {
        Some(v) if v.is_empty() => problems.push("credential_value: can't be blank".to_string()),
        Some(v) if v.len() > VALUE_MAX => problems.push(format!(
            "credential_value: is too long (at most {VALUE_MAX} bytes)"
        )),
        _ => {}
    }
    let mode = match input.mode {
        None => None,
        Some(Some(m)) if MODES.contains(&m.as_str()) => Some(m),
        Some(m) => {
            problems.push(format!(
                "mode: must be text or java_script, not {}",
                m.map_or("null".to_string(), |m| format!("{m:?}"))
            ));
            None
        }
    };
    if !problems.is_empty() {
        return Err(ApiError::Unprocessable(problems.join("; ")));
    }
    let changes = CredentialChanges {
        credential_name: name,
        sealed_value: None,
        mode,
    };
    Ok((changes, value))
}

fn saved(s: Saved, id: Option<i64>) -> Result<CredentialRow, ApiError> {
    match s {
        Saved::Row(r) => Ok(r),
        Saved::NameTaken(name) => Err(ApiError::field(
            ErrorCode::ValidationFailed,
            "credential_name",
            format!(
                "credential_name: has already been taken: you already have a credential named {name:?}"
            ),
        )),
        Saved::NotFound => Err(ApiError::not_found("credential", id.unwrap_or_default())),
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
    let (owner, after, fetch) = (user.id, page.after(), page.fetch());
    let rows = state
        .addrs
        .store
        .read(move |c| table::page(c, owner, after, fetch))
        .await?;
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
    let (id, owner) = (path.into_inner(), user.id);
    let row = state
        .addrs
        .store
        .read(move |c| table::find(c, owner, id))
        .await?
        .ok_or_else(|| ApiError::not_found("credential", id))?;
    let opened = state
        .addrs
        .store
        .keys()
        .open(purpose::USER_CREDENTIALS, &row.sealed_value);
    let mut answer = out(row);
    match opened {
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
    let (mut changes, value) = validate(parse(body.into_inner())?, true)?;
    let store = &state.addrs.store;
    // Sealed here: the clear value never reaches the writer or the database.
    changes.sealed_value = value.map(|v| store.keys().seal(purpose::USER_CREDENTIALS, &v));
    let owner = user.id;
    let done = credentials::write(store, owner, move |c| table::insert(c, owner, &changes)).await?;
    Ok(HttpResponse::Created().json(out(saved(done, None)?)))
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
    let id = path.into_inner();
    let (mut changes, value) = validate(parse(body.into_inner())?, false)?;
    let store = &state.addrs.store;
    changes.sealed_value = value.map(|v| store.keys().seal(purpose::USER_CREDENTIALS, &v));
    let owner = user.id;
    let done =
        credentials::write(store, owner, move |c| table::update(c, owner, id, &changes)).await?;
    Ok(HttpResponse::Ok().json(out(saved(done, Some(id))?)))
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
    let (id, owner) = (path.into_inner(), user.id);
    let gone = credentials::write(&state.addrs.store, owner, move |c| {
        table::delete(c, owner, id)
    })
    .await?;
    if !gone {
        return Err(ApiError::not_found("credential", id));
    }
    Ok(HttpResponse::NoContent().finish())
}
