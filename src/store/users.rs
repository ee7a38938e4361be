//! The `users` table.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::users;
use super::{Conn, StoreError, now};

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub is_admin: bool,
    pub created_at: NaiveDateTime,
    /// Where email agents send when they name no recipients (Huginn's `user.email`).
    pub email: Option<String>,
}

pub fn insert(conn: &mut Conn, name: &str, is_admin: bool) -> Result<UserRow, StoreError> {
    diesel::insert_into(users::table)
        .values((
            users::name.eq(name),
            users::is_admin.eq(is_admin),
            users::created_at.eq(now()),
        ))
        .returning(crate::store::backend::columns::<UserRow>())
        .get_result::<UserRow>(conn)
        .map_err(|e| {
            let e = StoreError::from(e);
            if e.is_unique_violation() {
                StoreError::Conflict(format!("a user named \"{name}\" already exists"))
            } else {
                e
            }
        })
}

pub fn find(conn: &mut Conn, id: i64) -> Result<Option<UserRow>, StoreError> {
    Ok(users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn list(conn: &mut Conn) -> Result<Vec<UserRow>, StoreError> {
    Ok(users::table
        .order(users::id.asc())
        .select(UserRow::as_select())
        .load(conn)?)
}

/// One page of [`list`]: ids above `after`, at most `limit`.
pub fn page(conn: &mut Conn, after: i64, limit: i64) -> Result<Vec<UserRow>, StoreError> {
    Ok(users::table
        .filter(users::id.gt(after))
        .order(users::id.asc())
        .limit(limit)
        .select(UserRow::as_select())
        .load(conn)?)
}

pub fn count(conn: &mut Conn) -> Result<i64, StoreError> {
    Ok(users::table.count().get_result(conn)?)
}

pub fn all_ids(conn: &mut Conn) -> Result<Vec<i64>, StoreError> {
    Ok(users::table.select(users::id).load(conn)?)
}

pub fn first_admin(conn: &mut Conn) -> Result<Option<UserRow>, StoreError> {
    Ok(users::table
        .filter(users::is_admin.eq(true))
        .order(users::id.asc())
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

/// Sets (or, with None, clears) the user's email address.
pub fn set_email(conn: &mut Conn, id: i64, email: Option<&str>) -> Result<(), StoreError> {
    diesel::update(users::table.find(id))
        .set(users::email.eq(email))
        .execute(conn)?;
    Ok(())
}

/// The user's email address, if it has one.
pub fn email_of(conn: &mut Conn, id: i64) -> Result<Option<String>, StoreError> {
    Ok(users::table
        .find(id)
        .select(users::email)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten())
}
