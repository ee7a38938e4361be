//! The Bearer-token extractor of the management API. It also enforces the token's
//! scope: a `read` token may only GET (or HEAD), and only an `admin` token of an
//! admin user has admin powers.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use super::{ApiError, AppState};
use crate::store::api_tokens::{self, Scope};

/// How stale `last_used_at` may get before a request records a new time: one write a
/// minute per token at most, not one per request.
const TOUCH_EVERY_SECONDS: i64 = 60;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: i64,
    pub name: String,
    pub is_admin: bool,
    /// The token this request came with, and what it may do.
    pub token_id: i64,
    pub token_scope: Scope,
}

impl AuthUser {
    /// True when the caller may see an object owned by `owner_id`.
    pub fn can_see(&self, owner_id: i64) -> bool {
        self.is_admin || self.id == owner_id
    }

    /// The user filter for listings: `None` (everything) for an admin.
    pub fn scope(&self) -> Option<i64> {
        (!self.is_admin).then_some(self.id)
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden("this needs an admin token".into()))
        }
    }
}

fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::Unauthorized("missing API token: send Authorization: Bearer <token>".into())
        })?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the Authorization header is not valid text".into()))?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthorized(
            "the Authorization header must be \"Bearer <token>\"".into(),
        ));
    }
    Ok(token.trim().to_string())
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<AuthUser, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let method = req.method().clone();
        Box::pin(async move {
            let token = token?;
            let state =
                state.ok_or_else(|| ApiError::Internal("application state missing".into()))?;
            let caller = state
                .addrs
                .store
                .read(move |c| api_tokens::caller_for(c, &token))
                .await?
                .ok_or_else(|| ApiError::Unauthorized("invalid API token".into()))?;
            if caller.scope == Scope::Read
                && method != actix_web::http::Method::GET
                && method != actix_web::http::Method::HEAD
            {
                return Err(ApiError::Forbidden(format!(
                    "this token is read-only (scope read): {method} needs a token of scope full or admin"
                )));
            }
            let stale = caller
                .last_used_at
                .is_none_or(|t| (crate::store::now() - t).num_seconds() >= TOUCH_EVERY_SECONDS);
            let writer = state.addrs.store.writer();
            if stale && !writer.is_overloaded() {
                // Queued now, nobody waits: the request does not pay for the commit.
                let id = caller.token_id;
                drop(writer.write_repeatable(move |c, _| api_tokens::touch(c, id)));
            }
            Ok(AuthUser {
                id: caller.user.id,
                name: caller.user.name,
                is_admin: caller.user.is_admin && caller.scope == Scope::Admin,
                token_id: caller.token_id,
                token_scope: caller.scope,
            })
        })
    }
}
