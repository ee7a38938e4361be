//! `/api/users` (admin) and `/api/me`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::ts;
use crate::http::{ApiError, AppState, AuthUser};
use crate::hub::UserAdded;
use crate::store::api_tokens;
use crate::store::users::{self, UserRow};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserIn {
    /// 1 to 100 characters once trimmed.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    #[serde(default, alias = "is_admin")]
    pub admin: bool,
    /// Where email agents send when they name no recipients.
    #[serde(default)]
    pub email: Option<String>,
}

/// `PATCH /api/me`: what a user may change about itself.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeIn {
    /// A new address, or null to remove it.
    pub email: Option<String>,
}

/// A trimmed address, or None for blank; an error names the field.
fn checked_email(email: Option<String>) -> Result<Option<String>, ApiError> {
    match email
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
    {
        None => Ok(None),
        Some(e) if e.len() <= 254 && crate::mail::message::is_address(&e) => Ok(Some(e)),
        Some(e) => Err(ApiError::Unprocessable(format!(
            "field \"email\" must be an email address such as bob@example.com (got {e:?})"
        ))),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserOut {
    pub id: i64,
    pub name: String,
    pub is_admin: bool,
    #[schema(required = true)]
    pub email: Option<String>,
    pub created_at: String,
    /// Only in the answer to creating the user: the token is shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

fn out(u: UserRow, token: Option<String>) -> UserOut {
    UserOut {
        id: u.id,
        name: u.name,
        is_admin: u.is_admin,
        email: u.email,
        created_at: ts(u.created_at),
        token,
    }
}

#[utoipa::path(
    get,
    path = "/api/me",
    operation_id = "users_me",
    tag = "users",
    responses(
        (status = 200, description = "The caller", body = UserOut)
    )
)]
pub async fn me(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    let id = user.id;
    let row = state
        .addrs
        .store
        .read(move |c| users::find(c, id))
        .await?
        .ok_or_else(|| ApiError::Unauthorized("the user of this token no longer exists".into()))?;
    Ok(HttpResponse::Ok().json(out(row, None)))
}

#[utoipa::path(
    patch,
    path = "/api/me",
    operation_id = "users_update_me",
    tag = "users",
    request_body = MeIn,
    responses(
        (status = 200, description = "The caller, changed", body = UserOut)
    )
)]
pub async fn update_me(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<MeIn>,
) -> Result<HttpResponse, ApiError> {
    let email = checked_email(body.into_inner().email)?;
    let id = user.id;
    let row = state
        .addrs
        .store
        .writer()
        .write(move |c, _| {
            users::set_email(c, id, email.as_deref())?;
            users::find(c, id)
        })
        .await?
        .ok_or_else(|| ApiError::Unauthorized("the user of this token no longer exists".into()))?;
    Ok(HttpResponse::Ok().json(out(row, None)))
}

#[utoipa::path(
    get,
    path = "/api/users",
    operation_id = "users_list",
    tag = "users",
    params(super::page::PageParams),
    responses(
        (status = 200, description = "The users, oldest first; `Link: <...>; rel=\"next\"` when there are more", body = [UserOut])
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let page = super::page::Page::from_request(&req, super::page::Order::OldestFirst)?;
    let (after, fetch) = (page.after(), page.fetch());
    let rows = state
        .addrs
        .store
        .read(move |c| users::page(c, after, fetch))
        .await?;
    let (rows, next) = page.cut(rows, |u| u.id);
    let outs: Vec<UserOut> = rows.into_iter().map(|u| out(u, None)).collect();
    Ok(page.respond(&req, &outs, next))
}

#[utoipa::path(
    post,
    path = "/api/users",
    operation_id = "users_create",
    tag = "users",
    request_body = UserIn,
    responses(
        (status = 201, description = "Created; `token` is the new user's token, shown only here", body = UserOut)
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<UserIn>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let UserIn { name, admin, email } = body.into_inner();
    let email = checked_email(email)?;
    let name = name.trim().to_string();
    if name.is_empty() || name.len() > 100 {
        return Err(ApiError::Unprocessable(
            "field \"name\" must be 1 to 100 characters".into(),
        ));
    }
    let token = api_tokens::generate();
    let t = token.clone();
    let row = state
        .addrs
        .store
        .writer()
        .write(move |c, _| {
            let mut u = users::insert(c, &name, admin)?;
            if email.is_some() {
                users::set_email(c, u.id, email.as_deref())?;
                u.email = email.clone();
            }
            api_tokens::insert(c, u.id, &t)?;
            Ok(u)
        })
        .await?;
    state.addrs.hub.send(UserAdded(row.id)).await?;
    Ok(HttpResponse::Created().json(out(row, Some(token))))
}
