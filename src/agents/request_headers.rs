//! The request an agent sends (post, rss, website): its `headers` option, rendered for
//! each request and checked as HTTP, then `basic_auth`; and why such a request could
//! not be made. The error is the agent's log line; nothing is sent.

use serde_json::Value;

use crate::template::{RenderCtx, TemplateError, TemplateTree, Templates};

/// Why an agent's request could not be made from its options (and an event).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// An option's template did not render.
    #[error("{0}")]
    Template(#[from] TemplateError),
    #[error("header {name:?}: {value:?} is not a valid HTTP header")]
    InvalidHeader { name: String, value: String },
    #[error("basic_auth must render as \"user:password\" or [\"user\", \"password\"]")]
    BasicAuthShape,
    #[error("{0:?} is not an http or https URL")]
    NotHttpUrl(String),
}

/// The rendered headers, each checked as HTTP, with basic auth last.
pub fn render(
    templates: &Templates,
    tree: &TemplateTree,
    basic_auth: Option<&TemplateTree>,
    vars: &RenderCtx<'_>,
) -> Result<Vec<(String, String)>, RequestError> {
    let mut headers: Vec<(String, String)> = match templates.render_tree(tree, vars)? {
        Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
            .collect(),
        _ => Vec::new(),
    };
    for (k, v) in &headers {
        if actix_web::http::header::HeaderName::from_bytes(k.as_bytes()).is_err()
            || actix_web::http::header::HeaderValue::from_str(v).is_err()
        {
            return Err(RequestError::InvalidHeader {
                name: k.clone(),
                value: v.clone(),
            });
        }
    }
    if let Some(auth) = super::basic_auth::render(templates, basic_auth, vars)? {
        headers.push(super::basic_auth::header(&auth));
    }
    Ok(headers)
}
