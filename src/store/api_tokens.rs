//! The `api_tokens` table, and how tokens are made and hashed. A token is shown
//! once when it is created; only its SHA-256 is stored.

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
}

/// Stores the hash of `token` for `user_id`. Adding a hash that exists is a no-op.
pub fn insert(conn: &mut Conn, user_id: i64, token: &str) -> Result<(), StoreError> {
    diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::user_id.eq(user_id),
            api_tokens::token_hash.eq(hash(token)),
            api_tokens::created_at.eq(now()),
        ))
        .on_conflict(api_tokens::token_hash)
        .do_nothing()
        .execute(conn)?;
    Ok(())
}

/// The user a token belongs to. The lookup is by hash, so timing reveals nothing about
/// the token itself.
pub fn user_for(conn: &mut Conn, token: &str) -> Result<Option<UserRow>, StoreError> {
    Ok(api_tokens::table
        .inner_join(users::table)
        .filter(api_tokens::token_hash.eq(hash(token)))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
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
