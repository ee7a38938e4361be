//! The Bearer-token extractor of the management API. It also enforces the token's
//! scope: a `read` token may only GET (or HEAD), and only an `admin` token of an
//! admin user has admin powers.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use super::{ApiError, AppState};
use crate::accounts::tokens;
use crate::store::api_tokens::Scope;

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
            let caller = tokens::authenticate(&state.addrs.store, token, method.as_str()).await?;
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
