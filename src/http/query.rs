//! `Query<T>`: actix's query extractor, but an error names the parameter at fault
//! (`?limit=abc` is "limit: invalid digit found in string", with `field: "limit"`),
//! which serde_urlencoded's own messages do not.

use std::future::{Ready, ready};
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

use super::error::{ApiError, ErrorCode};

/// The query string, deserialized as `T`.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> Query<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Query<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse(req.query_string()).map(Query))
    }
}

/// Reads `query` as `T`; the error names the parameter that could not be read.
pub fn parse<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // A missing or unknown parameter fails at the top, where serde names it.
        let field = match path.as_str() {
            "." | "" => super::error::named_field(&inner),
            _ => Some(path),
        };
        let message = match &field {
            Some(f) => format!("query parameter {f}: {inner}"),
            None => format!("invalid query parameters: {inner}"),
        };
        ApiError::Coded {
            code: ErrorCode::InvalidQueryParameter,
            message,
            field,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Q {
        limit: Option<i64>,
        after: Option<i64>,
    }

    fn field(r: Result<Q, ApiError>) -> Option<String> {
        match r {
            Err(ApiError::Coded { field, code, .. }) => {
                assert_eq!(code, ErrorCode::InvalidQueryParameter);
                field
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_parameter_at_fault_is_named() {
        assert_eq!(field(parse("after=1&limit=abc")).as_deref(), Some("limit"));
        assert_eq!(field(parse("after=-x")).as_deref(), Some("after"));
        assert_eq!(field(parse("lmit=3")).as_deref(), Some("lmit"));
        let ok: Q = parse("limit=3").unwrap();
        assert_eq!(ok.limit, Some(3));
        let none: Q = parse("").unwrap();
        assert_eq!(none.limit, None);
    }
}
