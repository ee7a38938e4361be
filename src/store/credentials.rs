//! The `user_credentials` table: Huginn's user credentials, a named value per user
//! that templates read with `{% credential NAME %}`. The value column holds the value
//! sealed by the keyring (`secrets::purpose::USER_CREDENTIALS`); this module never sees
//! a clear value. Every query takes the owner's id and filters on it, so a caller that
//! passes the wrong id finds nothing rather than someone else's row.

use std::collections::HashMap;
use std::fmt;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::user_credentials;
use super::{Conn, StoreError, now};

/// The modes Huginn knows: `text` for Liquid, `java_script` for the JavaScript agent.
pub const MODES: [&str; 2] = ["text", "java_script"];

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = user_credentials)]
pub struct CredentialRow {
    pub id: i64,
    pub user_id: i64,
    pub credential_name: String,
    /// `enc:v1:...`: open it with the keyring, never show it.
    pub sealed_value: String,
    pub mode: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

// No derived Debug: even sealed, a value has no business in a log line.
impl fmt::Debug for CredentialRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialRow")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("credential_name", &self.credential_name)
            .field("sealed_value", &"<redacted>")
            .field("mode", &self.mode)
            .finish()
    }
}

/// The columns a save sets; `None` keeps a column on update.
#[derive(Default)]
pub struct CredentialChanges {
    pub credential_name: Option<String>,
    pub sealed_value: Option<String>,
    pub mode: Option<String>,
}

/// What a save did.
#[derive(Debug)]
pub enum Saved {
    Row(CredentialRow),
    /// The owner already has another credential of this name.
    NameTaken(String),
    /// The owner has no credential with this id.
    NotFound,
    /// The owner already has this many credentials, the most allowed.
    AtLimit(u64),
}

/// One user's credentials, ordered by name (as Huginn lists them).
pub fn list(conn: &mut Conn, user_id: i64) -> Result<Vec<CredentialRow>, StoreError> {
    Ok(user_credentials::table
        .filter(user_credentials::user_id.eq(user_id))
        .order((
            user_credentials::credential_name.asc(),
            user_credentials::id.asc(),
        ))
        .select(CredentialRow::as_select())
        .load(conn)?)
}

/// One page of a user's credentials by id: ids above `after`, at most `limit`.
pub fn page(
    conn: &mut Conn,
    user_id: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<CredentialRow>, StoreError> {
    Ok(user_credentials::table
        .filter(user_credentials::user_id.eq(user_id))
        .filter(user_credentials::id.gt(after))
        .order(user_credentials::id.asc())
        .limit(limit)
        .select(CredentialRow::as_select())
        .load(conn)?)
}

/// The credential `id` when `user_id` owns it.
pub fn find(conn: &mut Conn, user_id: i64, id: i64) -> Result<Option<CredentialRow>, StoreError> {
    Ok(user_credentials::table
        .filter(user_credentials::id.eq(id))
        .filter(user_credentials::user_id.eq(user_id))
        .select(CredentialRow::as_select())
        .first(conn)
        .optional()?)
}

/// The id of `user_id`'s credential called `name`, if there is one.
pub fn id_by_name(conn: &mut Conn, user_id: i64, name: &str) -> Result<Option<i64>, StoreError> {
    Ok(user_credentials::table
        .filter(user_credentials::user_id.eq(user_id))
        .filter(user_credentials::credential_name.eq(name))
        .select(user_credentials::id)
        .first::<i64>(conn)
        .optional()?)
}

/// Whether `user_id` has a credential called `name` other than `except`.
fn name_taken(
    conn: &mut Conn,
    user_id: i64,
    name: &str,
    except: Option<i64>,
) -> Result<bool, StoreError> {
    let mut q = user_credentials::table
        .filter(user_credentials::user_id.eq(user_id))
        .filter(user_credentials::credential_name.eq(name))
        .select(user_credentials::id)
        .into_boxed();
    if let Some(id) = except {
        q = q.filter(user_credentials::id.ne(id));
    }
    Ok(q.first::<i64>(conn).optional()?.is_some())
}

/// Creates a credential as [`insert`] does, unless `user_id` already has `max` of them
/// (0: no limit). The count runs in the write, so saves at the same time cannot pass
/// the limit together. A taken name is reported as such, not as the limit.
pub fn insert_within(
    conn: &mut Conn,
    user_id: i64,
    max: u64,
    c: &CredentialChanges,
) -> Result<Saved, StoreError> {
    let name = c.credential_name.as_deref().unwrap_or_default();
    if max > 0 && !name_taken(conn, user_id, name, None)? {
        let have: i64 = user_credentials::table
            .filter(user_credentials::user_id.eq(user_id))
            .count()
            .get_result(conn)?;
        if u64::try_from(have).unwrap_or(0) >= max {
            return Ok(Saved::AtLimit(max));
        }
    }
    insert(conn, user_id, c)
}

/// Creates a credential; `c` must hold the name and the sealed value (`mode` defaults
/// to `text`). The name check runs in the write, so two saves of one name cannot both
/// pass it (the unique index is the backstop).
pub fn insert(conn: &mut Conn, user_id: i64, c: &CredentialChanges) -> Result<Saved, StoreError> {
    let name = c.credential_name.clone().unwrap_or_default();
    if name_taken(conn, user_id, &name, None)? {
        return Ok(Saved::NameTaken(name));
    }
    let at = now();
    let row = diesel::insert_into(user_credentials::table)
        .values((
            user_credentials::user_id.eq(user_id),
            user_credentials::credential_name.eq(&name),
            user_credentials::sealed_value.eq(c.sealed_value.clone().unwrap_or_default()),
            user_credentials::mode.eq(c.mode.clone().unwrap_or_else(|| "text".into())),
            user_credentials::created_at.eq(at),
            user_credentials::updated_at.eq(at),
        ))
        .returning(crate::store::backend::columns::<CredentialRow>())
        .get_result::<CredentialRow>(conn)?;
    Ok(Saved::Row(row))
}

/// Changes the columns `c` sets of `user_id`'s credential `id`.
pub fn update(
    conn: &mut Conn,
    user_id: i64,
    id: i64,
    c: &CredentialChanges,
) -> Result<Saved, StoreError> {
    let Some(mut row) = find(conn, user_id, id)? else {
        return Ok(Saved::NotFound);
    };
    if let Some(name) = &c.credential_name {
        if name_taken(conn, user_id, name, Some(id))? {
            return Ok(Saved::NameTaken(name.clone()));
        }
        row.credential_name = name.clone();
    }
    if let Some(v) = &c.sealed_value {
        row.sealed_value = v.clone();
    }
    if let Some(m) = &c.mode {
        row.mode = m.clone();
    }
    let row = diesel::update(
        user_credentials::table
            .filter(user_credentials::id.eq(id))
            .filter(user_credentials::user_id.eq(user_id)),
    )
    .set((
        user_credentials::credential_name.eq(&row.credential_name),
        user_credentials::sealed_value.eq(&row.sealed_value),
        user_credentials::mode.eq(&row.mode),
        user_credentials::updated_at.eq(now()),
    ))
    .returning(crate::store::backend::columns::<CredentialRow>())
    .get_result::<CredentialRow>(conn)?;
    Ok(Saved::Row(row))
}

/// Deletes `user_id`'s credential `id`; false when the user has none with that id.
pub fn delete(conn: &mut Conn, user_id: i64, id: i64) -> Result<bool, StoreError> {
    let n = diesel::delete(
        user_credentials::table
            .filter(user_credentials::id.eq(id))
            .filter(user_credentials::user_id.eq(user_id)),
    )
    .execute(conn)?;
    Ok(n == 1)
}

/// Name -> sealed value of one user's credentials, what a rendering reads.
pub fn sealed_by_name(
    conn: &mut Conn,
    user_id: i64,
) -> Result<HashMap<String, String>, StoreError> {
    Ok(user_credentials::table
        .filter(user_credentials::user_id.eq(user_id))
        .select((
            user_credentials::credential_name,
            user_credentials::sealed_value,
        ))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect())
}

/// Every user's credentials as user id -> (name -> sealed value): the start-time load.
pub fn all_sealed(conn: &mut Conn) -> Result<HashMap<i64, HashMap<String, String>>, StoreError> {
    let rows: Vec<(i64, String, String)> = user_credentials::table
        .select((
            user_credentials::user_id,
            user_credentials::credential_name,
            user_credentials::sealed_value,
        ))
        .load(conn)?;
    let mut all: HashMap<i64, HashMap<String, String>> = HashMap::new();
    for (user, name, sealed) in rows {
        all.entry(user).or_default().insert(name, sealed);
    }
    Ok(all)
}

/// (id, sealed value) of every credential, for re-sealing with a new key.
pub fn all_for_reseal(conn: &mut Conn) -> Result<Vec<(i64, String)>, StoreError> {
    Ok(user_credentials::table
        .select((user_credentials::id, user_credentials::sealed_value))
        .order(user_credentials::id.asc())
        .load(conn)?)
}

/// Replaces a value with its re-sealed form (same clear value, new key).
pub fn set_sealed(conn: &mut Conn, id: i64, sealed: &str) -> Result<(), StoreError> {
    diesel::update(user_credentials::table.find(id))
        .set(user_credentials::sealed_value.eq(sealed))
        .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{test_conn, users};

    fn changes(name: &str, sealed: &str) -> CredentialChanges {
        CredentialChanges {
            credential_name: Some(name.into()),
            sealed_value: Some(sealed.into()),
            mode: None,
        }
    }

    fn row(s: Saved) -> CredentialRow {
        match s {
            Saved::Row(r) => r,
            other => panic!("not saved: {other:?}"),
        }
    }

    #[test]
    fn every_query_is_scoped_to_its_owner() {
        let (_dir, mut conn) = test_conn();
        let a = users::insert(&mut conn, "a", false).unwrap().id;
        let b = users::insert(&mut conn, "b", false).unwrap().id;
        let ra = row(insert(&mut conn, a, &changes("k", "enc:a")).unwrap());
        assert_eq!(ra.mode, "text");
        // Another user may use the same name; the same user may not.
        row(insert(&mut conn, b, &changes("k", "enc:b")).unwrap());
        assert!(matches!(
            insert(&mut conn, a, &changes("k", "enc:c")).unwrap(),
            Saved::NameTaken(n) if n == "k"
        ));
        assert!(find(&mut conn, b, ra.id).unwrap().is_none());
        assert!(matches!(
            update(&mut conn, b, ra.id, &changes("x", "enc:x")).unwrap(),
            Saved::NotFound
        ));
        assert!(!delete(&mut conn, b, ra.id).unwrap());
        assert_eq!(list(&mut conn, a).unwrap().len(), 1);
        assert_eq!(sealed_by_name(&mut conn, a).unwrap()["k"], "enc:a");
        let all = all_sealed(&mut conn).unwrap();
        assert_eq!(all[&b]["k"], "enc:b");
        assert!(delete(&mut conn, a, ra.id).unwrap());
        assert!(find(&mut conn, a, ra.id).unwrap().is_none());
    }

    #[test]
    fn renaming_onto_a_taken_name_is_refused_and_keeping_the_name_is_not() {
        let (_dir, mut conn) = test_conn();
        let a = users::insert(&mut conn, "a", false).unwrap().id;
        let one = row(insert(&mut conn, a, &changes("one", "enc:1")).unwrap());
        row(insert(&mut conn, a, &changes("two", "enc:2")).unwrap());
        assert!(matches!(
            update(&mut conn, a, one.id, &changes("two", "enc:9")).unwrap(),
            Saved::NameTaken(_)
        ));
        let same = row(update(&mut conn, a, one.id, &changes("one", "enc:3")).unwrap());
        assert_eq!(same.sealed_value, "enc:3");
        assert!(
            !format!("{same:?}").contains("enc:3"),
            "Debug hides the value"
        );
    }
}
