//! `rss` — Huginn's RssAgent: on its schedule (or when run) it fetches `url` (one or a
//! list), parses RSS 2.0 (the `rss` crate) or Atom (`atom_syndication`), and emits one
//! event per entry it has not seen; seen ids are kept in memory (`seen_ids`, the newest
//! `remembered_id_count`). It sends If-None-Match / If-Modified-Since, so an unchanged
//! feed costs a 304. Fetching is done by the AgentActor (async, with a timeout and the
//! target guard); this file decides what to fetch and what a response means.

use serde_json::{Map, Value, json};

use super::{AgentCtx, Behavior, OptionError, opt_bool, opt_number, type_name};

/// One fetch the agent asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetch {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// What a fetch brought back.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub error: Option<String>,
}

pub struct Rss {
    urls: Vec<String>,
    remembered: usize,
    max_per_run: Option<usize>,
    include_feed_info: bool,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    Rss::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(Rss::new(options)?))
}

impl Rss {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        let urls: Vec<String> = match options.get("url") {
            Some(Value::String(u)) if !u.trim().is_empty() => vec![u.trim().to_string()],
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(|s| s.trim().to_string())
                        .ok_or_else(|| OptionError::new("url", "must be a URL or a list of URLs"))
                })
                .collect::<Result<_, _>>()?,
            None | Some(Value::Null) | Some(Value::String(_)) | Some(Value::Array(_)) => {
                return Err(OptionError::new(
                    "url",
                    "is required: the feed URL, or a list of them",
                ));
            }
            Some(other) => {
                return Err(OptionError::new(
                    "url",
                    format!("must be a URL or a list of URLs (got {})", type_name(other)),
                ));
            }
        };
        for u in &urls {
            match url::Url::parse(u) {
                Ok(p) if matches!(p.scheme(), "http" | "https") => {}
                _ => {
                    return Err(OptionError::new(
                        "url",
                        format!("{u:?} is not an http or https URL"),
                    ));
                }
            }
        }
        let remembered = opt_number(options, "remembered_id_count")?
            .map_or(500, |n| n as usize)
            .clamp(1, 100_000);
        let max_per_run = opt_number(options, "max_events_per_run")?
            .map(|n| n as usize)
            .filter(|n| *n > 0);
        opt_number(options, "expected_update_period_in_days")?;
        Ok(Rss {
            urls,
            remembered,
            max_per_run,
            include_feed_info: opt_bool(options, "include_feed_info")?.unwrap_or(false),
        })
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The entries of a feed, oldest first, as Huginn's event payloads, with the feed's info.
pub fn parse(body: &[u8], url: &str) -> Result<(Vec<Value>, Value), String> {
    if let Ok(channel) = rss::Channel::read_from(body) {
        let feed = json!({"title": channel.title(), "url": url, "description": channel.description(), "link": channel.link()});
        let mut entries: Vec<Value> = channel
            .items()
            .iter()
            .map(|i| {
                let link = i.link().unwrap_or_default();
                let id = i.guid().map(|g| g.value().to_string()).filter(|g| !g.is_empty()).unwrap_or_else(|| {
                    if link.is_empty() { i.title().unwrap_or_default().to_string() } else { link.to_string() }
                });
                json!({
                    "id": id,
                    "url": link,
                    "urls": if link.is_empty() { vec![] } else { vec![link] },
                    "links": if link.is_empty() { vec![] } else { vec![json!({"href": link, "rel": "alternate"})] },
                    "title": i.title(),
                    "description": i.description(),
                    "content": i.content(),
                    "image": Value::Null,
                    "enclosure": i.enclosure().map(|e| json!({"url": e.url(), "type": e.mime_type(), "length": e.length()})),
                    "authors": i.author().map(|a| vec![a]).unwrap_or_default(),
                    "categories": i.categories().iter().map(|c| c.name()).collect::<Vec<_>>(),
                    "date_published": i.pub_date().and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok()).map(|d| d.to_rfc3339()),
                    "last_updated": Value::Null,
                })
            })
            .collect();
        entries.reverse();
        return Ok((entries, feed));
    }
    match atom_syndication::Feed::read_from(body) {
        Ok(f) => {
            let feed = json!({"title": f.title().as_str(), "url": url, "id": f.id()});
            let mut entries: Vec<Value> = f
                .entries()
                .iter()
                .map(|e| {
                    let links: Vec<Value> = e
                        .links()
                        .iter()
                        .map(|l| json!({"href": l.href(), "rel": l.rel()}))
                        .collect();
                    let url = e
                        .links()
                        .iter()
                        .find(|l| l.rel() == "alternate")
                        .or(e.links().first())
                        .map(|l| l.href().to_string())
                        .unwrap_or_default();
                    json!({
                        "id": e.id(),
                        "url": url,
                        "urls": e.links().iter().map(|l| l.href()).collect::<Vec<_>>(),
                        "links": links,
                        "title": e.title().as_str(),
                        "description": e.summary().map(|s| s.as_str()),
                        "content": e.content().and_then(|c| c.value()),
                        "image": Value::Null,
                        "enclosure": Value::Null,
                        "authors": e.authors().iter().map(|a| a.name()).collect::<Vec<_>>(),
                        "categories": e.categories().iter().map(|c| c.term()).collect::<Vec<_>>(),
                        "date_published": e.published().map(|d| d.to_rfc3339()),
                        "last_updated": e.updated().to_rfc3339(),
                    })
                })
                .collect();
            entries.sort_by(|a, b| {
                let key = |v: &Value| {
                    v["date_published"]
                        .as_str()
                        .or(v["last_updated"].as_str())
                        .unwrap_or_default()
                        .to_string()
                };
                key(a).cmp(&key(b))
            });
            Ok((entries, feed))
        }
        Err(e) => Err(format!(
            "the response from {url} is neither RSS nor Atom ({e})"
        )),
    }
}

impl Behavior for Rss {
    fn check(&mut self, ctx: &mut AgentCtx<'_>) {
        for url in &self.urls {
            let mut headers = Vec::new();
            if let Some(cache) = ctx
                .memory
                .pointer(&format!("/http/{}", escape_pointer(url)))
            {
                if let Some(etag) = cache.get("etag").and_then(Value::as_str) {
                    headers.push(("If-None-Match".to_string(), etag.to_string()));
                }
                if let Some(lm) = cache.get("last_modified").and_then(Value::as_str) {
                    headers.push(("If-Modified-Since".to_string(), lm.to_string()));
                }
            }
            ctx.fetch(Fetch {
                url: url.clone(),
                headers,
            });
        }
    }

    fn fetched(&mut self, ctx: &mut AgentCtx<'_>, fetch: &Fetch, got: &Fetched) {
        let url = &fetch.url;
        let status = match (got.status, &got.error) {
            (_, Some(e)) => return ctx.error(format!("Could not fetch {url}: {e}")),
            (Some(304), _) => return ctx.log(format!("{url} has not changed")),
            (Some(s), _) if (200..300).contains(&s) => s,
            (Some(s), _) => {
                return ctx.error(format!("Could not fetch {url}: the server answered {s}"));
            }
            (None, None) => return ctx.error(format!("Could not fetch {url}")),
        };
        let _ = status;
        let (entries, feed) = match parse(&got.body, url) {
            Ok(x) => x,
            Err(e) => return ctx.error(e),
        };
        let (remembered, max, include_feed) =
            (self.remembered, self.max_per_run, self.include_feed_info);
        let etag = header(&got.headers, "etag").map(str::to_string);
        let last_modified = header(&got.headers, "last-modified").map(str::to_string);
        let mut fresh = Vec::new();
        {
            let memory = ctx.memory_mut();
            if !memory.is_object() {
                *memory = Value::Object(Map::new());
            }
            let Some(m) = memory.as_object_mut() else {
                return;
            };
            let seen = m
                .entry("seen_ids")
                .or_insert_with(|| Value::Array(Vec::new()));
            if !seen.is_array() {
                *seen = Value::Array(Vec::new());
            }
            if let Value::Array(seen) = seen {
                for mut e in entries {
                    let id = e["id"].clone();
                    if seen.contains(&id) {
                        continue;
                    }
                    seen.push(id);
                    if include_feed {
                        e["feed"] = feed.clone();
                    }
                    fresh.push(e);
                }
                let excess = seen.len().saturating_sub(remembered);
                seen.drain(..excess);
            }
            let http = m.entry("http").or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(h) = http {
                h.insert(
                    url.clone(),
                    json!({"etag": etag, "last_modified": last_modified}),
                );
            }
        }
        if let Some(max) = max {
            let skip = fresh.len().saturating_sub(max);
            fresh.drain(..skip);
        }
        ctx.log(format!("{url}: {} new entries", fresh.len()));
        for e in fresh {
            ctx.emit(e);
        }
    }
}

/// JSON pointer escaping for a URL used as a key.
fn escape_pointer(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSS: &str = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>http://x</link><description>d</description>
        <item><title>Two</title><link>http://x/2</link><guid>2</guid></item>
        <item><title>One</title><link>http://x/1</link><guid>1</guid></item></channel></rss>"#;
    const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>urn:a</id><updated>2026-11-01T00:00:00Z</updated>
        <entry><title>E</title><id>urn:e</id><updated>2026-11-01T00:00:00Z</updated><link href="http://a/e"/></entry></feed>"#;

    #[test]
    fn parses_both_formats_oldest_first() {
        let (e, f) = parse(RSS.as_bytes(), "http://x/feed").unwrap();
        assert_eq!(
            e.iter()
                .map(|x| x["title"].as_str().unwrap())
                .collect::<Vec<_>>(),
            ["One", "Two"]
        );
        assert_eq!(f["title"], "T");
        let (e, _) = parse(ATOM.as_bytes(), "http://a").unwrap();
        assert_eq!(e[0]["url"], "http://a/e");
        assert_eq!(e[0]["id"], "urn:e");
        assert!(
            parse(b"<html/>", "http://h")
                .unwrap_err()
                .contains("neither RSS nor Atom")
        );
    }

    #[test]
    fn emits_only_unseen_entries_and_remembers_validators() {
        let mut r = Rss::new(&json!({"url": "http://x/feed"})).unwrap();
        let row = crate::agents::event_formatting::tests_support::row();
        let mut memory = json!({});
        let fetch = Fetch {
            url: "http://x/feed".into(),
            headers: vec![],
        };
        let got = Fetched {
            status: Some(200),
            headers: vec![("ETag".into(), "\"v1\"".into())],
            body: RSS.as_bytes().to_vec(),
            error: None,
        };
        let mut ctx = AgentCtx::new(&row, &mut memory);
        r.fetched(&mut ctx, &fetch, &got);
        assert_eq!(ctx.emitted.len(), 2);
        let mut ctx = AgentCtx::new(&row, &mut memory);
        r.fetched(&mut ctx, &fetch, &got);
        assert!(ctx.emitted.is_empty());
        let mut ctx = AgentCtx::new(&row, &mut memory);
        r.check(&mut ctx);
        assert_eq!(
            ctx.fetches[0].headers,
            vec![("If-None-Match".to_string(), "\"v1\"".to_string())]
        );
    }

    #[test]
    fn bad_urls_are_refused() {
        assert_eq!(Rss::new(&json!({})).err().unwrap().option, "url");
        assert_eq!(
            Rss::new(&json!({"url": "ftp://x"})).err().unwrap().option,
            "url"
        );
    }
}
