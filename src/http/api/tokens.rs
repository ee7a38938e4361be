//! `/api/tokens`: a user's API tokens — list (never the secret), create with a name and
//! a scope (the secret is in that answer only), revoke, rotate. An admin token sees and
//! manages every user's tokens; other tokens their own user's. A token cannot make a
//! token of a wider scope than its own.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{ts, ts_opt};
use crate::accounts::tokens::{self, TokenCaller};
use crate::http::{ApiError, AppState, AuthUser};
use crate::store::api_tokens::{ApiTokenRow, Scope};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    /// 1 to 100 characters once trimmed.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// `admin`, `full` or `read`; `full` when left out.
    #[serde(default)]
    #[schema(value_type = Option<Scope>)]
    pub scope: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenOut {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    /// Always one of [`Scope`]'s names (`Scope::as_str`).
    #[schema(value_type = Scope)]
    pub scope: String,
    pub created_at: String,
    #[schema(required = true)]
    pub last_used_at: Option<String>,
    #[schema(required = true)]
    pub revoked_at: Option<String>,
    /// Only in the answers to create and rotate: the secret is shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// The caller as the tokens workflows see it.
fn caller(user: &AuthUser) -> TokenCaller {
    TokenCaller {
        user_id: user.id,
        scope: user.scope(),
        token_scope: user.token_scope,
    }
}

fn out(r: ApiTokenRow, token: Option<String>) -> TokenOut {
    TokenOut {
        id: r.id,
        user_id: r.user_id,
        name: r.name,
        scope: r.scope,
        created_at: ts(r.created_at),
        last_used_at: ts_opt(r.last_used_at),
        revoked_at: ts_opt(r.revoked_at),
        token,
    }
}

#[utoipa::path(
    get,
    path = "/api/tokens",
    operation_id = "tokens_list",
    tag = "tokens",
    params(super::page::PageParams),
    responses(
        (status = 200, description = "The tokens, oldest first (never their secrets); `Link: <...>; rel=\"next\"` when there are more", body = [TokenOut])
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let page = super::page::Page::from_request(&req, super::page::Order::OldestFirst)?;
    let (after, fetch) = (page.after(), page.fetch());
    let rows = tokens::page(&state.addrs.store, caller(&user), after, fetch).await?;
    let (rows, next) = page.cut(rows, |r| r.id);
    let outs: Vec<TokenOut> = rows.into_iter().map(|r| out(r, None)).collect();
    Ok(page.respond(&req, &outs, next))
}

#[utoipa::path(
    post,
    path = "/api/tokens",
    operation_id = "tokens_create",
    tag = "tokens",
    request_body = TokenIn,
    responses(
        (status = 201, description = "Created; `token` is the secret, shown only here", body = TokenOut)
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<TokenIn>,
) -> Result<HttpResponse, ApiError> {
    let TokenIn { name, scope } = body.into_inner();
    let (row, token) =
        tokens::create(&state.addrs.store, caller(&user), &name, scope.as_deref()).await?;
    Ok(HttpResponse::Created().json(out(row, Some(token))))
}

#[utoipa::path(
    delete,
    path = "/api/tokens/{id}",
    operation_id = "tokens_revoke",
    tag = "tokens",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "No content")
    )
)]
pub async fn revoke(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    tokens::revoke(&state.addrs.store, caller(&user), path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    post,
    path = "/api/tokens/{id}/rotate",
    operation_id = "tokens_rotate",
    tag = "tokens",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "The token with its new secret in `token`, shown only here", body = TokenOut)
    )
)]
pub async fn rotate(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (row, token) = tokens::rotate(&state.addrs.store, caller(&user), path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(out(row, Some(token))))
}
