//! One pagination for muninn's own lists: a cursor by id and a `limit`, with the next
//! page announced in a `Link: <…>; rel="next"` header (RFC 8288) so the bodies stay the
//! arrays the contracts print.
//!
//! Oldest-first lists take `after` (the last id of the previous page: ids above it);
//! newest-first lists (deliveries, logs, attempts) take `before` (ids below it), as
//! `/api/events?order=desc` always has. A list asks the store for one row more than a
//! page: that row only says whether a next page exists, so the last page has no `Link`
//! and a client following `next` stops without fetching an empty page.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use crate::http::ApiError;
use crate::http::ErrorCode;

/// Rows a page holds when the request names no `limit`.
pub const DEFAULT_LIMIT: i64 = 100;
/// The most rows one page may hold; a larger `limit` is a 400.
pub const MAX_LIMIT: i64 = 1000;

/// Which way a list runs, and so which cursor parameter it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Ascending ids; the cursor is `after`.
    OldestFirst,
    /// Descending ids; the cursor is `before`.
    NewestFirst,
}

impl Order {
    fn cursor_name(self) -> &'static str {
        match self {
            Order::OldestFirst => "after",
            Order::NewestFirst => "before",
        }
    }
}

/// A page request: the cursor (None = from the start) and the page size.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub cursor: Option<i64>,
    pub limit: i64,
    order: Order,
}

impl Page {
    /// Reads the cursor and `limit` from the query string (default [`DEFAULT_LIMIT`]).
    pub fn from_request(req: &HttpRequest, order: Order) -> Result<Page, ApiError> {
        Page::with_default(req, order, DEFAULT_LIMIT)
    }

    /// As [`Page::from_request`] with another default page size (a list whose contract
    /// prints one).
    pub fn with_default(req: &HttpRequest, order: Order, default: i64) -> Result<Page, ApiError> {
        let limit = match param(req, "limit")? {
            None => default.min(MAX_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
            Some(n) => {
                return Err(ApiError::field(
                    ErrorCode::InvalidQueryParameter,
                    "limit",
                    format!("limit must be from 1 to {MAX_LIMIT} (got {n})"),
                ));
            }
        };
        Ok(Page {
            cursor: param(req, order.cursor_name())?,
            limit,
            order,
        })
    }

    /// The cursor as a bound for an ascending query (0 = from the start: ids are positive).
    pub fn after(&self) -> i64 {
        self.cursor.unwrap_or(0)
    }

    /// The cursor as a bound for a descending query.
    pub fn before(&self) -> i64 {
        self.cursor.unwrap_or(i64::MAX)
    }

    /// How many rows to ask the store for: one more than the page.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// Cuts what the store returned to the page; the cursor of the next page if the
    /// extra row came back.
    pub fn cut<T>(&self, mut rows: Vec<T>, id: impl Fn(&T) -> i64) -> (Vec<T>, Option<i64>) {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        if rows.len() <= limit {
            return (rows, None);
        }
        rows.truncate(limit);
        let next = rows.last().map(id);
        (rows, next)
    }

    /// `200` with the page as a JSON array, and `Link: <…>; rel="next"` when one follows.
    pub fn respond<T: Serialize>(
        &self,
        req: &HttpRequest,
        items: &[T],
        next: Option<i64>,
    ) -> HttpResponse {
        let mut resp = HttpResponse::Ok();
        if let Some(n) = next {
            resp.insert_header((
                header::LINK,
                next_link(req, self.order.cursor_name(), &n.to_string()),
            ));
        }
        resp.json(items)
    }

    /// As [`Page::respond`] for a list that pages by `offset` (a ring of recent lines
    /// without lasting ids): the next page is the same request at `next_offset`.
    pub fn respond_offset<T: Serialize>(
        &self,
        req: &HttpRequest,
        items: &[T],
        next_offset: Option<i64>,
    ) -> HttpResponse {
        let mut resp = HttpResponse::Ok();
        if let Some(n) = next_offset {
            resp.insert_header((header::LINK, next_link(req, "offset", &n.to_string())));
        }
        resp.json(items)
    }
}

/// `offset`, for the logs whose contract prints it (0 when absent; negative is a 400).
pub fn offset(req: &HttpRequest) -> Result<i64, ApiError> {
    match param(req, "offset")? {
        Some(n) if n < 0 => Err(ApiError::field(
            ErrorCode::InvalidQueryParameter,
            "offset",
            format!("offset must be 0 or more (got {n})"),
        )),
        n => Ok(n.unwrap_or(0)),
    }
}

/// An integer query parameter; a value that is not one is a 400 naming it.
pub fn param(req: &HttpRequest, name: &str) -> Result<Option<i64>, ApiError> {
    let raw = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned());
    match raw.as_deref() {
        None | Some("") => Ok(None),
        Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
            ApiError::field(
                ErrorCode::InvalidQueryParameter,
                name,
                format!("{name} must be an integer (got {v:?})"),
            )
        }),
    }
}

/// `<path?query>; rel="next"`: the request's own path and parameters with `name` set to
/// `value` (and `offset` dropped, which a cursor replaces). A relative reference, which
/// RFC 8288 resolves against the request's URL, so it is right behind a proxy too.
pub fn next_link(req: &HttpRequest, name: &str, value: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        if k != name && k != "offset" {
            query.append_pair(&k, &v);
        }
    }
    query.append_pair(name, value);
    format!("<{}?{}>; rel=\"next\"", req.path(), query.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn limit_bounds_and_names() {
        let req = TestRequest::with_uri("/api/x?limit=abc").to_http_request();
        let e = Page::from_request(&req, Order::OldestFirst).unwrap_err();
        assert!(e.to_string().contains("limit"), "{e}");
        let req = TestRequest::with_uri("/api/x?limit=1001").to_http_request();
        assert!(Page::from_request(&req, Order::OldestFirst).is_err());
        let req = TestRequest::with_uri("/api/x?limit=0").to_http_request();
        assert!(Page::from_request(&req, Order::OldestFirst).is_err());
        let req = TestRequest::with_uri("/api/x?after=x").to_http_request();
        let e = Page::from_request(&req, Order::OldestFirst).unwrap_err();
        assert!(e.to_string().contains("after"), "{e}");
        let req = TestRequest::with_uri("/api/x?limit=1000&after=7").to_http_request();
        let p = Page::from_request(&req, Order::OldestFirst).unwrap();
        assert_eq!((p.limit, p.after()), (1000, 7));
    }

    #[test]
    fn cut_keeps_the_page_and_names_the_next_cursor() {
        let req = TestRequest::with_uri("/api/x?limit=2").to_http_request();
        let p = Page::from_request(&req, Order::OldestFirst).unwrap();
        assert_eq!(p.cut(vec![1, 2, 3], |i| *i), (vec![1, 2], Some(2)));
        assert_eq!(p.cut(vec![1, 2], |i| *i), (vec![1, 2], None));
    }

    #[test]
    fn next_link_keeps_filters_and_replaces_the_cursor() {
        let req =
            TestRequest::with_uri("/api/d?status=dead&before=9&offset=4&limit=2").to_http_request();
        assert_eq!(
            next_link(&req, "before", "5"),
            "</api/d?status=dead&limit=2&before=5>; rel=\"next\""
        );
    }
}

/// The paging parameters of muninn's lists, as the OpenAPI document shows them (the
/// handlers read them through [`Page`]).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // read by `Page` from the query string; this type documents them
pub struct PageParams {
    /// Items with an id after this one (oldest-first lists; the `Link` header's next page).
    pub after: Option<i64>,
    /// Items with an id before this one (newest-first lists: deliveries, logs).
    pub before: Option<i64>,
    /// Items per page, 1 to 1000 (default 100).
    pub limit: Option<i64>,
}
