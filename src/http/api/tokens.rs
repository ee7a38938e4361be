//! `/api/tokens`: a user's API tokens — list (never the secret), create with a name and
//! a scope (the secret is in that answer only), revoke, rotate. An admin token sees and
//! manages every user's tokens; other tokens their own user's. A token cannot make a
//! token of a wider scope than its own.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{ts, ts_opt};
use crate::http::{ApiError, AppState, AuthUser};
use crate::store::api_tokens::{self, ApiTokenRow, Scope};

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
    let (scope, after, fetch) = (user.scope(), page.after(), page.fetch());
    let rows = state
        .addrs
        .store
        .read(move |c| api_tokens::page(c, scope, after, fetch))
        .await?;
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
    let name = name.trim().to_string();
    if name.is_empty() || name.len() > 100 {
        return Err(ApiError::Unprocessable(
            "field \"name\" must be 1 to 100 characters".into(),
        ));
    }
    let wanted = match scope.as_deref() {
        None => Scope::Full,
        Some(s) => Scope::parse(s).ok_or_else(|| {
            ApiError::Unprocessable(format!(
                "field \"scope\" must be {}, not {s:?}",
                Scope::NAMES
            ))
        })?,
    };
    if wanted > user.token_scope {
        return Err(ApiError::Forbidden(format!(
            "a token of scope {} cannot make a token of scope {}",
            user.token_scope.as_str(),
            wanted.as_str()
        )));
    }
    let owner = user.id;
    let (row, token) = state
        .addrs
        .store
        .writer()
        .write(move |c, _| api_tokens::create(c, owner, &name, wanted))
        .await?;
    Ok(HttpResponse::Created().json(out(row, Some(token))))
}

/// The token `id` when the caller may manage it; 404 otherwise (not 403: ids of other
/// users' tokens are not confirmed).
async fn visible(state: &AppState, user: &AuthUser, id: i64) -> Result<ApiTokenRow, ApiError> {
    let row = state
        .addrs
        .store
        .read(move |c| api_tokens::find(c, id))
        .await?
        .filter(|r| user.can_see(r.user_id) && r.revoked_at.is_none())
        .ok_or_else(|| ApiError::not_found("token", id))?;
    if Scope::parse(&row.scope).is_some_and(|s| s > user.token_scope) {
        return Err(ApiError::Forbidden(format!(
            "a token of scope {} cannot manage a token of scope {}",
            user.token_scope.as_str(),
            row.scope
        )));
    }
    Ok(row)
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
    let id = path.into_inner();
    visible(&state, &user, id).await?;
    let done = state
        .addrs
        .store
        .writer()
        .write(move |c, _| api_tokens::revoke(c, id))
        .await?;
    if !done {
        return Err(ApiError::not_found("token", id));
    }
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
    let id = path.into_inner();
    visible(&state, &user, id).await?;
    let token = state
        .addrs
        .store
        .writer()
        .write(move |c, _| api_tokens::rotate(c, id))
        .await?
        .ok_or_else(|| ApiError::not_found("token", id))?;
    let row = state
        .addrs
        .store
        .read(move |c| api_tokens::find(c, id))
        .await?
        .ok_or_else(|| ApiError::not_found("token", id))?;
    Ok(HttpResponse::Ok().json(out(row, Some(token))))
}
