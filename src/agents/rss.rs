//! `rss` — Huginn's RssAgent: on its schedule (or when run) it fetches `url` (one or a
//! list), parses RSS 0.9x/1.0/2.0, Atom or JSON Feed ([`super::rss_feed`]), and emits
//! one event per entry it has not seen, at most `max_events_per_run` a run (newest
//! kept; the others are remembered as seen, as Huginn skips them). Seen ids are kept in
//! memory (`seen_ids`): the newest `remembered_id_count`, and never fewer than the
//! entries the agent's feeds had when last read, so an entry still in a feed is never
//! emitted twice. It sends If-None-Match / If-Modified-Since, so an unchanged feed
//! costs a 304. Fetching is done by the AgentActor (async, with a timeout, a size cap
//! and the target guard); this file decides what to fetch and what a response means.
//! Entries have Huginn's shape ([`super::rss_entry`]); `clean` sanitizes their HTML;
//! the entries a fetch emits are ordered by `events_order` (default: by
//! `date_published`, then `last_updated`, as Huginn) over all the URLs of a run, and
//! `include_sort_info` numbers them.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::rss_feed::{ParsedFeed, parse};
use super::{AgentCtx, Behavior, OptionError, opt_bool, opt_number, type_name};
use crate::feeds::order::{self, SortKey};
use crate::template::{RenderCtx, TemplateTree, Templates, context_of};

/// One fetch the agent asks for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fetch {
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// Follow redirects (at most 3, as Huginn's Faraday does), each hop through the
    /// target guard; otherwise a 3xx is the answer (http_status).
    pub follow_redirects: bool,
}

/// What a fetch brought back.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub error: Option<String>,
    /// From the first request to the last response.
    pub elapsed: std::time::Duration,
    /// The URL that gave the answer (after the redirects followed).
    pub final_url: String,
}

/// Events a run emits when `max_events_per_run` is not set.
pub const DEFAULT_MAX_EVENTS_PER_RUN: usize = 500;
/// The most `max_events_per_run` may be: one run's events are written in one batch.
pub const MAX_EVENTS_PER_RUN: usize = 10_000;
/// Huginn's RssAgent::DEFAULT_EVENTS_ORDER: by publication, then update time.
const DEFAULT_EVENTS_ORDER: &str =
    r#"[["{{date_published}}", "time"], ["{{last_updated}}", "time"]]"#;

pub struct Rss {
    urls: Vec<String>,
    remembered: usize,
    max_per_run: usize,
    include_feed_info: bool,
    clean: bool,
    include_sort_info: bool,
    /// `events_order`, or Huginn's default for this agent ([`DEFAULT_EVENTS_ORDER`]).
    order: Vec<SortKey>,
    /// The sort keys' and the request headers' templates.
    templates: Templates,
    /// `user_agent` (as `User-Agent`) and `headers`, rendered at each run.
    headers: TemplateTree,
    basic_auth: Option<TemplateTree>,
    /// Events emitted since the run began (every URL of a run shares the bound).
    emitted_this_run: usize,
    /// This run's new entries so far, in feed order (`events_order` sorts all of them).
    run_entries: Vec<Value>,
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
        let max_per_run = match opt_number(options, "max_events_per_run")? {
            // Huginn's 0 ("no limit") is the default bound here: a run is never unbounded.
            None => DEFAULT_MAX_EVENTS_PER_RUN,
            Some(n) if n < 1.0 => DEFAULT_MAX_EVENTS_PER_RUN,
            Some(n) if n > MAX_EVENTS_PER_RUN as f64 => {
                return Err(OptionError::new(
                    "max_events_per_run",
                    format!("must be at most {MAX_EVENTS_PER_RUN} (got {n})"),
                ));
            }
            Some(n) => n as usize,
        };
        opt_number(options, "expected_update_period_in_days")?;
        // Huginn interpolates the rss agent's options (headers, events_order) as Liquid.
        let mut templates = Templates::liquid();
        let headers = request_headers(&mut templates, options)?;
        let basic_auth = super::basic_auth::compile(&mut templates, options)?;
        let given = order::parse(&mut templates, "events_order", options.get("events_order"))?
            .filter(|keys| !keys.is_empty());
        let order = match given {
            Some(keys) => keys,
            None => {
                let default: Value = serde_json::from_str(DEFAULT_EVENTS_ORDER)
                    .map_err(|e| OptionError::new("events_order", e.to_string()))?;
                order::parse(&mut templates, "events_order", Some(&default))?.unwrap_or_default()
            }
        };
        Ok(Rss {
            urls,
            remembered,
            max_per_run,
            include_feed_info: opt_bool(options, "include_feed_info")?.unwrap_or(false),
            clean: opt_bool(options, "clean")?.unwrap_or(false),
            include_sort_info: opt_bool(options, "include_sort_info")?.unwrap_or(false),
            order,
            templates,
            headers,
            basic_auth,
            emitted_this_run: 0,
            run_entries: Vec::new(),
        })
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl Behavior for Rss {
    fn check(&mut self, ctx: &mut AgentCtx<'_>) {
        self.emitted_this_run = 0;
        self.run_entries.clear();
        let given = match self.given_headers() {
            Ok(h) => h,
            Err(e) => return ctx.error(format!("Could not fetch: {e}")),
        };
        for url in &self.urls {
            let mut headers = given.clone();
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
                ..Fetch::default()
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
        let parsed = match parse(&got.body, url) {
            Ok(x) => x,
            Err(e) => return ctx.error(e.to_string()),
        };
        let etag = header(&got.headers, "etag").map(str::to_string);
        let last_modified = header(&got.headers, "last-modified").map(str::to_string);
        let validators =
            json!({"etag": etag, "last_modified": last_modified, "entries": parsed.len()});
        let Some(fresh) = self.track(ctx.memory_mut(), url, &parsed, validators) else {
            return;
        };
        let room = self.max_per_run.saturating_sub(self.emitted_this_run);
        // The newest fit; the older ones stay seen and are not emitted later.
        let skipped = fresh.len().saturating_sub(room);
        let mut message = format!("{url}: {} new entries", fresh.len());
        if skipped > 0 {
            message.push_str(&format!(
                "; emitted the newest {}, skipped {skipped} older ones (max_events_per_run = {})",
                fresh.len() - skipped,
                self.max_per_run
            ));
        }
        ctx.log(message);
        let info = self.include_feed_info.then(|| parsed.info(self.clean));
        let entries: Vec<Value> = fresh[skipped..]
            .iter()
            .map(|&pos| {
                let mut e = parsed.entry(pos, self.clean);
                if let Some(info) = &info {
                    e["feed"] = info.clone();
                }
                e
            })
            .collect();
        // The fetches of one run come back together into one context: what it will emit
        // is this run's entries of every URL so far, sorted together, as Huginn does. A
        // context with nothing emitted yet is a new run's (runs may overlap).
        if ctx.emitted.is_empty() {
            self.run_entries.clear();
        }
        self.run_entries.extend(entries);
        let mut sorted = order::sort(
            &self.templates,
            &self.order,
            self.run_entries.clone(),
            |e, _| RenderCtx::from_map(e.as_object().cloned().unwrap_or_default()),
        );
        if self.include_sort_info {
            add_sort_info(&mut sorted);
        }
        ctx.emitted = sorted;
        self.emitted_this_run += fresh.len() - skipped;
    }
}

impl Rss {
    /// The headers the options ask for (rendered now: Huginn interpolates them with no
    /// event), basic auth last.
    fn given_headers(&self) -> Result<Vec<(String, String)>, super::request_headers::RequestError> {
        let empty = json!({});
        super::request_headers::render(
            &self.templates,
            &self.headers,
            self.basic_auth.as_ref(),
            &context_of(&empty),
        )
    }

    /// Records the feed of `url` in memory: its validators, and every id in it as seen.
    /// Returns the positions (oldest first) of the entries not seen before.
    fn track(
        &self,
        memory: &mut Value,
        url: &str,
        feed: &ParsedFeed,
        validators: Value,
    ) -> Option<Vec<usize>> {
        if !memory.is_object() {
            *memory = Value::Object(Map::new());
        }
        let m = memory.as_object_mut()?;
        let http = m.entry("http").or_insert_with(|| Value::Object(Map::new()));
        if !http.is_object() {
            *http = Value::Object(Map::new());
        }
        let http = http.as_object_mut()?;
        http.insert(url.to_string(), validators);
        // What the agent's feeds held when last read: all of it stays remembered.
        let in_feeds: usize = self
            .urls
            .iter()
            .filter_map(|u| http.get(u)?.get("entries")?.as_u64())
            .map(|n| n as usize)
            .sum();
        let keep = self.remembered.max(in_feeds);
        let old = match m.remove("seen_ids") {
            Some(Value::Array(ids)) => ids,
            _ => Vec::new(),
        };
        let seen: HashSet<String> = old.iter().map(id_key).collect();
        let mut current: HashSet<&str> = HashSet::with_capacity(feed.len());
        let mut fresh = Vec::new();
        for (pos, id) in feed.ids().enumerate() {
            if current.insert(id) && !seen.contains(id) {
                fresh.push(pos);
            }
        }
        // Older ids first, then this feed's in its order, so trimming drops old ones.
        let mut ids: Vec<Value> = old
            .into_iter()
            .filter(|v| !current.contains(id_key(v).as_str()))
            .collect();
        let mut added: HashSet<&str> = HashSet::with_capacity(current.len());
        ids.extend(
            feed.ids()
                .filter(|id| added.insert(id))
                .map(|id| Value::String(id.to_string())),
        );
        let excess = ids.len().saturating_sub(keep);
        ids.drain(..excess);
        m.insert("seen_ids".into(), Value::Array(ids));
        Some(fresh)
    }
}

/// `user_agent` and `headers` (which win, as in Huginn's Faraday setup) as one tree.
fn request_headers(
    templates: &mut Templates,
    options: &Value,
) -> Result<TemplateTree, OptionError> {
    let mut all = Map::new();
    if let Some(ua) = super::opt_str(options, "user_agent")?.filter(|u| !u.trim().is_empty()) {
        all.insert("User-Agent".into(), Value::String(ua.to_string()));
    }
    match options.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => all.extend(m.clone()),
        Some(_) => {
            return Err(OptionError::new(
                "headers",
                "must be an object of header names to values",
            ));
        }
    }
    templates
        .add_tree("headers", &Value::Object(all))
        .map_err(|e| OptionError::new("headers", format!("has a template error: {e}")))
}

/// Huginn's `sort_info: {position, count}` (position 1-based) on each event of a run.
fn add_sort_info(events: &mut [Value]) {
    let count = events.len();
    for (i, e) in events.iter_mut().enumerate() {
        if let Some(m) = e.as_object_mut() {
            m.insert(
                "sort_info".into(),
                json!({"position": i + 1, "count": count}),
            );
        }
    }
}

/// A remembered id as a string (ids are strings; memory edited by hand may hold others).
fn id_key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
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

    #[test]
    fn emits_only_unseen_entries_and_remembers_validators() {
        let mut r = Rss::new(&json!({"url": "http://x/feed"})).unwrap();
        let row = crate::agents::event_formatting::tests_support::row();
        let mut memory = json!({});
        let fetch = Fetch {
            url: "http://x/feed".into(),
            headers: vec![],
            ..Fetch::default()
        };
        let got = Fetched {
            status: Some(200),
            headers: vec![("ETag".into(), "\"v1\"".into())],
            body: RSS.as_bytes().to_vec(),
            error: None,
            ..Fetched::default()
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

    fn feed(ids: &[&str]) -> Vec<u8> {
        let items: String = ids
            .iter()
            .map(|i| format!("<item><title>{i}</title><guid>{i}</guid></item>"))
            .collect();
        format!(r#"<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>http://x</link><description>d</description>{items}</channel></rss>"#).into_bytes()
    }

    /// Fetches `body` as `url` in a run of its own; returns the ids emitted.
    fn run(r: &mut Rss, memory: &mut Value, url: &str, body: Vec<u8>) -> Vec<String> {
        let row = crate::agents::event_formatting::tests_support::row();
        let mut ctx = AgentCtx::new(&row, memory);
        r.check(&mut ctx);
        let fetch = Fetch {
            url: url.into(),
            headers: vec![],
            ..Fetch::default()
        };
        let got = Fetched {
            status: Some(200),
            headers: vec![],
            body,
            error: None,
            ..Fetched::default()
        };
        r.fetched(&mut ctx, &fetch, &got);
        ctx.emitted
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn every_feeds_ids_stay_remembered_and_runs_are_bounded() {
        let (a, b) = ("http://x/a", "http://x/b");
        let mut r =
            Rss::new(&json!({"url": [a, b], "remembered_id_count": 1, "max_events_per_run": 2}))
                .unwrap();
        let mut memory = json!({});
        assert_eq!(
            run(&mut r, &mut memory, a, feed(&["a3", "a2", "a1"])),
            ["a2", "a3"]
        );
        assert_eq!(
            run(&mut r, &mut memory, b, feed(&["b2", "b1"])),
            ["b1", "b2"]
        );
        // Reading one feed does not make the agent forget the other's entries.
        assert!(run(&mut r, &mut memory, a, feed(&["a3", "a2", "a1"])).is_empty());
        assert!(run(&mut r, &mut memory, b, feed(&["b2", "b1"])).is_empty());
        assert_eq!(
            run(&mut r, &mut memory, a, feed(&["a4", "a3", "a2"])),
            ["a4"]
        );
        assert_eq!(memory["seen_ids"].as_array().unwrap().len(), 5);
        assert_eq!(
            Rss::new(&json!({"url": a, "max_events_per_run": 0}))
                .unwrap()
                .max_per_run,
            DEFAULT_MAX_EVENTS_PER_RUN
        );
    }

    fn got(body: Vec<u8>) -> Fetched {
        Fetched {
            status: Some(200),
            headers: vec![],
            body,
            error: None,
            ..Fetched::default()
        }
    }

    fn fetch(url: &str) -> Fetch {
        Fetch {
            url: url.into(),
            headers: vec![],
            ..Fetch::default()
        }
    }

    #[test]
    fn the_urls_of_a_run_are_sorted_together() {
        let (a, b) = ("http://x/a", "http://x/b");
        let mut r = Rss::new(
            &json!({"url": [a, b], "events_order": ["{{title}}"], "include_sort_info": true}),
        )
        .unwrap();
        let row = crate::agents::event_formatting::tests_support::row();
        let mut memory = json!({});
        {
            let mut ctx = AgentCtx::new(&row, &mut memory);
            r.check(&mut ctx);
            r.fetched(&mut ctx, &fetch(a), &got(feed(&["m", "c"])));
            r.fetched(&mut ctx, &fetch(b), &got(feed(&["x", "a"])));
            let titles: Vec<&str> = ctx
                .emitted
                .iter()
                .map(|e| e["title"].as_str().unwrap())
                .collect();
            assert_eq!(titles, ["a", "c", "m", "x"]);
            assert_eq!(
                ctx.emitted[3]["sort_info"],
                json!({"position": 4, "count": 4})
            );
        }
        // The next run's context starts afresh: only its own new entry.
        let mut ctx = AgentCtx::new(&row, &mut memory);
        r.fetched(&mut ctx, &fetch(a), &got(feed(&["n", "m", "c"])));
        assert_eq!(ctx.emitted.len(), 1);
        assert_eq!(
            ctx.emitted[0]["sort_info"],
            json!({"position": 1, "count": 1})
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
