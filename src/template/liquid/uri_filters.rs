//! Huginn's URI filters: `uri_escape` (Ruby's `CGI.escape`), `to_uri` (parse, resolve
//! against a base), `uri_expand` and `rebase_hrefs` (make the URLs of an HTML fragment
//! absolute, on the elements and attributes Huginn's `HtmlTransformer` rewrites).
//!
//! `to_uri` gives the normalised URL as text: a filter's result in the `liquid` crate is
//! a plain value and must render as the URL (`{{ u | to_uri: b }}`), so the parts
//! (`u.host`, `u.path` ...) are read from such a text by [`uri_field`] when a lookup
//! finds nothing else.

use std::sync::LazyLock;

use liquid_core::error::Result;
use liquid_core::model::{Scalar, Value};
use liquid_core::{Runtime, ValueView};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use regex::Regex;
use url::Url;

use super::bounds::precheck;
use super::filter_kit::{Simple, arg_text, string, text};
use super::huginn_filters::unescape_html;

pub const FILTERS: &[Simple] = &[
    Simple::new("uri_escape", 0, 0, uri_escape),
    Simple::new("to_uri", 0, 1, to_uri),
    Simple::new("uri_expand", 0, 1, uri_expand),
    Simple::new("rebase_hrefs", 1, 1, rebase_hrefs),
];

/// `CGI.escape`: unreserved characters stay, a space is `+`, the rest `%XX`.
const CGI: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b' ');

fn uri_escape(input: &dyn ValueView, _: &[Value], _: &dyn Runtime) -> Result<Value> {
    if input.is_nil() {
        return Ok(Value::Nil);
    }
    let s = text(input);
    precheck(s.len() * 3)?;
    let escaped = utf8_percent_encode(&s, CGI).to_string().replace(' ', "+");
    // `CGI.escape` escapes `*`; percent-encoding's set above keeps it, so do it here.
    Ok(string(escaped.replace('*', "%2A")))
}

/// Characters RFC 3986 allows in a URI outside the host (plus `%`); Huginn's
/// `normalize_uri` escapes the rest (`a[]` -> `a%5B%5D`, non-ASCII as UTF-8).
const UNSAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':')
    .remove(b'/')
    .remove(b'?')
    .remove(b'#')
    .remove(b'@')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b'%');

static AUTHORITY: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://[^/?#]*").ok());

/// Escapes what a URI may not contain, leaving the scheme and authority (an IPv6 host
/// keeps its brackets).
fn escape_unsafe(s: &str) -> String {
    let s = s.trim();
    let head = AUTHORITY
        .as_ref()
        .and_then(|re| re.find(s))
        .map_or(0, |m| m.end());
    format!("{}{}", &s[..head], utf8_percent_encode(&s[head..], UNSAFE))
}

const RELATIVE_BASE: &str = "http://relative.invalid";

/// Normalises `s`, resolved against `base` when one is given. A relative reference
/// without a base stays relative (escaped).
pub fn resolve(s: &str, base: Option<&str>) -> Option<String> {
    let s = escape_unsafe(s);
    match base {
        Some(b) => {
            let b = Url::parse(&escape_unsafe(b)).ok()?;
            b.join(&s).ok().map(String::from)
        }
        None => match Url::parse(&s) {
            Ok(u) => Some(u.into()),
            Err(url::ParseError::RelativeUrlWithoutBase) => {
                let joined = Url::parse(RELATIVE_BASE)
                    .ok()?
                    .join(&format!("/{s}"))
                    .ok()?;
                let full: String = joined.into();
                let rest = full.strip_prefix(RELATIVE_BASE)?;
                Some(if s.starts_with('/') {
                    rest.to_owned()
                } else {
                    rest.trim_start_matches('/').to_owned()
                })
            }
            Err(_) => None,
        },
    }
}

fn to_uri(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    let s = text(input);
    let base = arg_text(args, 0);
    let base = (!base.is_empty()).then_some(base.as_str());
    precheck((s.len() + base.map_or(0, str::len)) * 3)?;
    Ok(resolve(&s, base).map_or(Value::Nil, string))
}

/// Huginn's `uri_expand(limit = 5)`: follows HEAD redirects (301, 302, 303, 307) and
/// gives where they lead; a text that is no http(s) URL, an error, or running out of
/// redirects gives the last URL reached. The wait is bounded by what is left of the
/// rendering's deadline (one second in a release build), so a slow host costs this
/// rendering that long at most; the requests go through the delivery engine's target
/// guard (see [`super::expander`]).
fn uri_expand(input: &dyn ValueView, args: &[Value], runtime: &dyn Runtime) -> Result<Value> {
    let s = text(input);
    let limit = arg_text(args, 0).trim().parse::<usize>().unwrap_or(5);
    precheck(s.len() * 3)?;
    let Some(url) =
        resolve(&s, None).filter(|u| u.starts_with("http://") || u.starts_with("https://"))
    else {
        return Ok(string(s));
    };
    let expander = runtime
        .registers()
        .get_mut::<super::expander::Expander>()
        .0
        .clone();
    let expanded = match expander {
        Some(e) if limit > 0 => e.expand(
            &url,
            limit.min(MAX_REDIRECTS),
            crate::template::budget::remaining(),
        ),
        _ => url,
    };
    Ok(string(expanded))
}

/// Huginn takes any limit; more hops than this are a loop, not a short link.
const MAX_REDIRECTS: usize = 20;

/// The parts of a URL a template can ask a `to_uri` result for.
pub fn uri_field(s: &str, field: &str) -> Option<Value> {
    if !matches!(
        field,
        "scheme" | "userinfo" | "host" | "port" | "path" | "query" | "fragment"
    ) {
        return None;
    }
    let opt = |v: Option<&str>| v.map_or(Value::Nil, |v| Value::scalar(v.to_owned()));
    let Ok(u) = Url::parse(s) else {
        // A relative reference: only its path, query and fragment.
        let (before_frag, frag) = s.split_once('#').map_or((s, None), |(a, b)| (a, Some(b)));
        let (path, query) = before_frag
            .split_once('?')
            .map_or((before_frag, None), |(a, b)| (a, Some(b)));
        return Some(match field {
            "path" => Value::scalar(path.to_owned()),
            "query" => opt(query),
            "fragment" => opt(frag),
            _ => Value::Nil,
        });
    };
    Some(match field {
        "scheme" => Value::scalar(u.scheme().to_owned()),
        "userinfo" => {
            if u.username().is_empty() && u.password().is_none() {
                Value::Nil
            } else {
                let mut ui = u.username().to_owned();
                if let Some(p) = u.password() {
                    ui = format!("{ui}:{p}");
                }
                Value::scalar(ui)
            }
        }
        "host" => opt(u.host_str()),
        "port" => u
            .port_or_known_default()
            .map_or(Value::Nil, |p| Value::Scalar(Scalar::new(i64::from(p)))),
        "path" => Value::scalar(u.path().to_owned()),
        "query" => opt(u.query()),
        _ => opt(u.fragment()),
    })
}

/// Attribute kinds, as Huginn's `HtmlTransformer::URI_ATTRIBUTES`.
#[derive(Clone, Copy)]
enum Kind {
    Single,
    Multiple,
    CommaSeparated,
}

fn uri_attribute(element: &str, attr: &str) -> Option<Kind> {
    use Kind::*;
    Some(match (element, attr) {
        ("a" | "area" | "base" | "link", "href") => Single,
        ("applet", "archive") => CommaSeparated,
        ("applet" | "object", "codebase") => Single,
        (
            "audio" | "embed" | "frame" | "iframe" | "img" | "input" | "script" | "source"
            | "video",
            "src",
        ) => Single,
        ("blockquote" | "del" | "ins" | "q", "cite") => Single,
        ("body", "background") => Single,
        ("button" | "input", "formaction") => Single,
        ("command", "icon") => Single,
        ("form", "action") => Single,
        ("frame" | "iframe" | "img", "longdesc") => Single,
        ("head", "profile") => Single,
        ("html", "manifest") => Single,
        ("img" | "source", "srcset") => CommaSeparated,
        ("img" | "input" | "object", "usemap") => Single,
        ("object", "archive") => Multiple,
        ("object", "classid" | "data") => Single,
        ("video", "poster") => Single,
        _ => return None,
    })
}

static TAG: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"<([a-zA-Z][a-zA-Z0-9]*)(\s[^<>]*)?>").ok());
static ATTR: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r#"([a-zA-Z_:][-a-zA-Z0-9_:.]*)(\s*=\s*)("([^"]*)"|'([^']*)')"#).ok()
});
static MULTI: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\S+").ok());
static COMMA: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"((?:\A|,)\s*)(\S+)").ok());

fn rebase_value(kind: Kind, value: &str, base: &str) -> String {
    let one = |u: &str| resolve(u, Some(base)).unwrap_or_else(|| u.to_owned());
    match kind {
        Kind::Single => one(value.trim()),
        Kind::Multiple => match MULTI.as_ref() {
            Some(re) => re
                .replace_all(value, |c: &regex::Captures<'_>| one(&c[0]))
                .into_owned(),
            None => value.to_owned(),
        },
        Kind::CommaSeparated => match COMMA.as_ref() {
            Some(re) => re
                .replace_all(value, |c: &regex::Captures<'_>| {
                    format!("{}{}", &c[1], one(&c[2]))
                })
                .into_owned(),
            None => value.to_owned(),
        },
    }
}

fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;")
}

/// Rewrites the URI attributes of each start tag (quoted values only) against `base`.
pub fn rebase(html: &str, base: &str) -> String {
    let (Some(tag), Some(attr)) = (TAG.as_ref(), ATTR.as_ref()) else {
        return html.to_owned();
    };
    tag.replace_all(html, |t: &regex::Captures<'_>| {
        let element = t[1].to_ascii_lowercase();
        let Some(attrs) = t.get(2) else {
            return t[0].to_owned();
        };
        let rewritten = attr.replace_all(attrs.as_str(), |a: &regex::Captures<'_>| {
            let name = a[1].to_ascii_lowercase();
            let Some(kind) = uri_attribute(&element, &name) else {
                return a[0].to_owned();
            };
            let raw = a.get(4).or(a.get(5)).map_or("", |m| m.as_str());
            let value = rebase_value(kind, &unescape_html(raw), base);
            format!("{}{}\"{}\"", &a[1], &a[2], escape_attr(&value))
        });
        format!("<{}{}>", &t[1], rewritten)
    })
    .into_owned()
}

fn rebase_hrefs(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    let html = text(input);
    let base = arg_text(args, 0);
    if Url::parse(&escape_unsafe(&base)).is_err() {
        // Huginn returns the input when the base is not a URL.
        return Ok(string(html));
    }
    precheck(html.len().saturating_mul(2) + 4096)?;
    super::bounds::charge(1 + (html.len() / 1024) as u64)?;
    Ok(string(rebase(&html, &base)))
}
