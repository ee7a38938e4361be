//! `/api/users` (admin) and `/api/me`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::ts;
use crate::accounts::users::{self, NewUser};
use crate::http::{ApiError, AppState, AuthUser};
use crate::store::users::UserRow;

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
    let row = users::me(&state.addrs.store, user.id).await?;
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
    let email = body.into_inner().email;
    let row = users::set_my_email(&state.addrs.store, user.id, email).await?;
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
    let rows = users::page(&state.addrs.store, after, fetch).await?;
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
    let input = NewUser { name, admin, email };
    let (row, token) = users::create(&state.addrs.store, &state.addrs, input).await?;
    Ok(HttpResponse::Created().json(out(row, Some(token))))
}
