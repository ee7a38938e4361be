//! Enums stored in text columns (a delivery's status, a subscription's circuit): the
//! stored text is the enum's `as_str`, byte for byte what the column held when it was a
//! plain string, so no migration is needed. Written once for both backends and for the
//! multi-connection that hands a value to whichever of them runs the query.

/// A stored value the enum does not know: reading the row fails (fail closed) rather
/// than guess what the value meant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?} in the {table} table")]
pub struct UnknownStoredValue {
    pub what: &'static str,
    pub table: &'static str,
    pub value: String,
}

/// Implements diesel's `FromSql`/`ToSql` for `Text` on SQLite, PostgreSQL and the
/// multi-backend for `$ty`, which has `as_str(self) -> &'static str` and
/// `parse(&str) -> Option<$ty>`. `$what` and `$table` name it in the error of an unknown
/// stored value.
macro_rules! stored_as_text {
    ($ty:ty, $what:literal, $table:literal) => {
        impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $ty
        where
            DB: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                let value = String::from_sql(bytes)?;
                <$ty>::parse(&value).ok_or_else(|| {
                    Box::new($crate::store::text_enum::UnknownStoredValue {
                        what: $what,
                        table: $table,
                        value,
                    }) as Box<dyn std::error::Error + Send + Sync>
                })
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::sqlite::Sqlite> for $ty {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::sqlite::Sqlite>,
            ) -> diesel::serialize::Result {
                out.set_value(self.as_str());
                Ok(diesel::serialize::IsNull::No)
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $ty {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg>>::to_sql(
                    self.as_str(),
                    &mut out.reborrow(),
                )
            }
        }

        /// Through the multi-connection: the value is handed to whichever backend runs
        /// the query, which writes it with one of the two impls above.
        impl diesel::serialize::ToSql<diesel::sql_types::Text, $crate::store::backend::MultiBackend>
            for $ty
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, $crate::store::backend::MultiBackend>,
            ) -> diesel::serialize::Result {
                out.set_value((diesel::sql_types::Text, self));
                Ok(diesel::serialize::IsNull::No)
            }
        }
    };
}
pub(crate) use stored_as_text;
