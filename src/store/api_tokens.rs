//! The `api_tokens` table, and how tokens are made and hashed. A token is shown
//! once when it is created (or rotated); only its SHA-256 is stored. Each token has a
//! name, a scope (`admin`: all its user may do; `full`: all but admin-only work;
//! `read`: GET only) and, once revoked, a revocation time: revoked rows are kept so
//! the list can say when, but they never authenticate again.

use base64::Engine;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::schema::{api_tokens, users};
use super::users::UserRow;
use super::{Conn, StoreError, now};

/// 32 random bytes from the OS-seeded CSPRNG, URL-safe base64 without padding.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "mun_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_tokens)]
pub struct ApiTokenRow {
    pub id: i64,
    pub user_id: i64,
    pub token_hash: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub name: String,
    pub scope: String,
    pub revoked_at: Option<NaiveDateTime>,
}

/// What a token may do, from most to least.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Full,
    Admin,
}

impl Scope {
    pub const NAMES: &'static str = "admin, full or read";

    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "admin" => Some(Scope::Admin),
            "full" => Some(Scope::Full),
            "read" => Some(Scope::Read),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Full => "full",
            Scope::Read => "read",
        }
    }
}

/// Who a presented token speaks for, and with which token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: UserRow,
    pub token_id: i64,
    /// An unknown stored scope reads as `read`: a bad row must not widen power.
    pub scope: Scope,
    pub last_used_at: Option<NaiveDateTime>,
}

/// Stores the hash of `token` for `user_id`. Adding a hash that exists is a no-op.
pub fn insert(conn: &mut Conn, user_id: i64, token: &str) -> Result<(), StoreError> {
    // Upserts are not in the multi-backend's dialect: built once, run on the raw
    // connection of either backend.
    let insert = diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::user_id.eq(user_id),
            api_tokens::token_hash.eq(hash(token)),
            api_tokens::created_at.eq(now()),
        ))
        .on_conflict(api_tokens::token_hash)
        .do_nothing();
    crate::per_backend!(conn, |c| insert.execute(c))?;
    Ok(())
}

/// The user a live (not revoked) token belongs to. The lookup is by hash, so timing
/// reveals nothing about the token itself.
pub fn user_for(conn: &mut Conn, token: &str) -> Result<Option<UserRow>, StoreError> {
    Ok(caller_for(conn, token)?.map(|c| c.user))
}

/// The user, token id and scope of a live token.
pub fn caller_for(conn: &mut Conn, token: &str) -> Result<Option<Caller>, StoreError> {
    let found = api_tokens::table
        .inner_join(users::table)
        .filter(api_tokens::token_hash.eq(hash(token)))
        .filter(api_tokens::revoked_at.is_null())
        .select((
            UserRow::as_select(),
            api_tokens::id,
            api_tokens::scope,
            api_tokens::last_used_at,
        ))
        .first::<(UserRow, i64, String, Option<NaiveDateTime>)>(conn)
        .optional()?;
    Ok(found.map(|(user, token_id, scope, last_used_at)| Caller {
        user,
        token_id,
        scope: Scope::parse(&scope).unwrap_or(Scope::Read),
        last_used_at,
    }))
}

/// Makes a token for `user_id`; the answer holds the only copy of the token.
pub fn create(
    conn: &mut Conn,
    user_id: i64,
    name: &str,
    scope: Scope,
) -> Result<(ApiTokenRow, String), StoreError> {
    let token = generate();
    let row = diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::user_id.eq(user_id),
            api_tokens::token_hash.eq(hash(&token)),
            api_tokens::created_at.eq(now()),
            api_tokens::name.eq(name),
            api_tokens::scope.eq(scope.as_str()),
        ))
        .returning(crate::store::backend::columns::<ApiTokenRow>())
        .get_result::<ApiTokenRow>(conn)?;
    Ok((row, token))
}

/// Tokens, oldest first: one user's, or everyone's for `None`.
pub fn list(conn: &mut Conn, user_id: Option<i64>) -> Result<Vec<ApiTokenRow>, StoreError> {
    let mut q = api_tokens::table
        .select(ApiTokenRow::as_select())
        .order(api_tokens::id.asc())
        .into_boxed();
    if let Some(u) = user_id {
        q = q.filter(api_tokens::user_id.eq(u));
    }
    Ok(q.load(conn)?)
}

/// One page of [`list`]: ids above `after`, at most `limit`.
pub fn page(
    conn: &mut Conn,
    user_id: Option<i64>,
    after: i64,
    limit: i64,
) -> Result<Vec<ApiTokenRow>, StoreError> {
    let mut q = api_tokens::table
        .select(ApiTokenRow::as_select())
        .filter(api_tokens::id.gt(after))
        .order(api_tokens::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(u) = user_id {
        q = q.filter(api_tokens::user_id.eq(u));
    }
    Ok(q.load(conn)?)
}

pub fn find(conn: &mut Conn, id: i64) -> Result<Option<ApiTokenRow>, StoreError> {
    Ok(api_tokens::table
        .find(id)
        .select(ApiTokenRow::as_select())
        .first(conn)
        .optional()?)
}

/// The live (not revoked) token `id`, if `scope` (a user filter; `None` for everyone's)
/// may see it.
pub fn find_owned(
    conn: &mut Conn,
    scope: Option<i64>,
    id: i64,
) -> Result<Option<ApiTokenRow>, StoreError> {
    let mut q = api_tokens::table
        .find(id)
        .filter(api_tokens::revoked_at.is_null())
        .select(ApiTokenRow::as_select())
        .into_boxed();
    if let Some(uid) = scope {
        q = q.filter(api_tokens::user_id.eq(uid));
    }
    Ok(q.first(conn).optional()?)
}

/// Revokes a live token; false when there is none with that id.
pub fn revoke(conn: &mut Conn, id: i64) -> Result<bool, StoreError> {
    let n = diesel::update(
        api_tokens::table
            .find(id)
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(now()))
    .execute(conn)?;
    Ok(n == 1)
}

/// Gives a live token a new secret (same id, name and scope); the old one stops
/// working at once. `None` when there is no live token with that id.
pub fn rotate(conn: &mut Conn, id: i64) -> Result<Option<String>, StoreError> {
    let token = generate();
    let n = diesel::update(
        api_tokens::table
            .find(id)
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set((
        api_tokens::token_hash.eq(hash(&token)),
        api_tokens::last_used_at.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok((n == 1).then_some(token))
}

/// Records that a token was just used.
pub fn touch(conn: &mut Conn, id: i64) -> Result<(), StoreError> {
    diesel::update(api_tokens::table.find(id))
        .set(api_tokens::last_used_at.eq(now()))
        .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_unique_and_url_safe() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(a.len() >= 4 + 43);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
