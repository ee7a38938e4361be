//! `website` — Huginn's WebsiteAgent: fetches `url` (one or a list) on its schedule, or
//! a URL made from each received event (`url_from_event`), or reads a document from
//! the event itself (`data_from_event`); parses it as html, xml, json or text; extracts
//! values (`extract`: CSS/XPath, JSONPath, regexp) into rows; shapes each row with
//! `template` (which sees `_url_` and `_response_`); and emits one event per row —
//! every row (`all`), the rows not emitted lately (`on_change`, [`seen`]), or each
//! merged into the received event (`merge`).
//!
//! Fetching is the rss agent's path: the AgentActor makes the request off the mailbox
//! (target guard, timeout, size cap) and hands the response back to
//! [`Behavior::fetched`]; in `on_change` mode the page's ETag/Last-Modified are sent
//! back, so an unchanged page costs a 304 and emits nothing (as it would anyway). What
//! a fetch was for (the event's payload to merge, its template variables) waits in
//! `pending`, keyed by the event that caused it and the URL.

mod css_xml;
mod error;
mod extract;
mod extract_html;
mod extract_json;
mod extract_text;
mod options;
mod request;
mod seen;

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Map, Value, json};

use super::rss::{Fetch, Fetched};
use super::{AgentCtx, Behavior, OptionError};
use crate::ids::EventId;
use crate::store::events::EventRow;
use crate::template::{RenderCtx, TemplateError, TemplateTree};
use error::ExtractError;
use options::{DocType, Mode, Options};

pub use options::literal_urls;

/// Fetches waiting for their response, at most (older ones are forgotten first).
const MAX_PENDING: usize = 1_000;
/// URLs one rendering of `url`/`url_from_event` may give.
const MAX_URLS: usize = 100;

pub struct Website {
    o: Options,
    pending: HashMap<(Option<EventId>, String), VecDeque<Pending>>,
    order: VecDeque<(Option<EventId>, String)>,
}

/// What a fetch was made for.
struct Pending {
    existing: Map<String, Value>,
    vars: RenderCtx<'static>,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    Options::parse(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(Website {
        o: Options::parse(options)?,
        pending: HashMap::new(),
        order: VecDeque::new(),
    }))
}

impl Behavior for Website {
    fn check(&mut self, ctx: &mut AgentCtx<'_>) {
        let vars = ctx.render_ctx();
        if let Some(tree) = &self.o.url {
            match self.urls(tree, &vars) {
                Ok(urls) => {
                    for u in urls {
                        self.queue(ctx, &u, Map::new(), vars.clone());
                    }
                }
                Err(e) => ctx.error(format!("Error when fetching url: {e}")),
            }
        }
    }

    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        let vars = ctx.event_ctx(event, payload);
        let existing = match (self.o.mode, payload) {
            (Mode::Merge, Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        if let Some((id, source)) = &self.o.data_from_event {
            let data = match self.o.templates.render_value(id, &vars) {
                Ok(Value::String(s)) => s,
                Ok(Value::Null) => String::new(),
                Ok(other) => other.to_string(),
                Err(e) => return ctx.error(format!("Error when handling event data: {e}")),
            };
            if data.trim().is_empty() {
                return ctx.error(format!(
                    "No data was found in the Event payload using the template {source}"
                ));
            }
            let mut vars = vars;
            vars.set("_response_", response_from_event(payload));
            if let Err(e) = self.handle_data(ctx, &data, vars, existing) {
                ctx.error(format!("Error when handling event data: {e}"));
            }
            return;
        }
        let urls = match (&self.o.url_from_event, &self.o.url) {
            (Some(id), _) => self.o.templates.render_value(id, &vars).map(url_list),
            (None, Some(tree)) => self.urls(tree, &vars),
            (None, None) => return,
        };
        match urls {
            Ok(urls) => {
                for u in urls {
                    self.queue(ctx, &u, existing.clone(), vars.clone());
                }
            }
            Err(e) => ctx.error(format!("Error when fetching url: {e}")),
        }
    }

    fn fetched(&mut self, ctx: &mut AgentCtx<'_>, fetch: &Fetch, got: &Fetched) {
        let url = &fetch.url;
        let pending = self.take_pending(ctx.inbound, url);
        let Pending { existing, mut vars } = pending.unwrap_or_else(|| Pending {
            existing: Map::new(),
            vars: ctx.render_ctx(),
        });
        let status = match (got.status, &got.error) {
            (_, Some(e)) => return ctx.error(format!("Error when fetching url: {url}: {e}")),
            (Some(304), _) => return ctx.log(format!("{url} has not changed (304)")),
            (Some(s), _) if (200..300).contains(&s) || self.o.success_codes.contains(&s) => s,
            (Some(s), _) => {
                return ctx.error(format!(
                    "Error when fetching url: Failed: {url} answered {s}"
                ));
            }
            (None, None) => return ctx.error(format!("Error when fetching url: {url}")),
        };
        let body = String::from_utf8_lossy(&got.body);
        vars.set("_url_", Value::String(url.clone()));
        vars.set(
            "_response_",
            json!({"status": status, "headers": request::response_headers(&got.headers), "url": url}),
        );
        match self.handle_data(ctx, &body, vars, existing) {
            Ok(()) if self.o.mode == Mode::OnChange => remember_validators(ctx, url, got),
            Ok(()) => {}
            Err(e) => ctx.error(format!("Error when fetching url: {url}: {e}")),
        }
    }
}

impl Website {
    /// The URLs `url` renders to (a string or a list).
    fn urls(
        &self,
        tree: &TemplateTree,
        vars: &RenderCtx<'_>,
    ) -> Result<Vec<String>, TemplateError> {
        self.o.templates.render_tree(tree, vars).map(url_list)
    }

    /// Asks for `url` to be fetched, remembering what for.
    fn queue(
        &mut self,
        ctx: &mut AgentCtx<'_>,
        url: &str,
        existing: Map<String, Value>,
        vars: RenderCtx<'static>,
    ) {
        let lower = url.trim().to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return ctx.error(format!("Ignoring a non-HTTP url: {url:?}"));
        }
        let url = match url::Url::parse(url.trim()) {
            Ok(u) => u.to_string(),
            Err(e) => return ctx.error(format!("Error when fetching url: {url:?}: {e}")),
        };
        let mut headers = match crate::agents::request_headers::render(
            &self.o.templates,
            &self.o.headers,
            self.o.basic_auth.as_ref(),
            &vars,
        ) {
            Ok(h) => h,
            Err(e) => return ctx.error(format!("Error when fetching url: {e}")),
        };
        if self.o.mode == Mode::OnChange
            && let Some(cache) = ctx.memory.get("http").and_then(|h| h.get(&url))
        {
            if let Some(etag) = cache.get("etag").and_then(Value::as_str) {
                headers.push(("If-None-Match".into(), etag.into()));
            }
            if let Some(lm) = cache.get("last_modified").and_then(Value::as_str) {
                headers.push(("If-Modified-Since".into(), lm.into()));
            }
        }
        ctx.log(format!("Fetching {url}"));
        if self.order.len() >= MAX_PENDING
            && let Some(oldest) = self.order.pop_front()
            && let Some(q) = self.pending.get_mut(&oldest)
        {
            q.pop_front();
            if q.is_empty() {
                self.pending.remove(&oldest);
            }
        }
        let key = (ctx.inbound, url.clone());
        self.order.push_back(key.clone());
        self.pending
            .entry(key)
            .or_default()
            .push_back(Pending { existing, vars });
        ctx.fetch(Fetch {
            url,
            headers,
            ..Fetch::default()
        });
    }

    fn take_pending(&mut self, inbound: Option<EventId>, url: &str) -> Option<Pending> {
        let key = (inbound, url.to_string());
        let q = self.pending.get_mut(&key)?;
        let p = q.pop_front();
        if q.is_empty() {
            self.pending.remove(&key);
        }
        if let Some(i) = self.order.iter().position(|k| *k == key) {
            self.order.remove(i);
        }
        p
    }

    /// Parses `body`, extracts its rows, shapes them with `template`, and emits the
    /// ones the mode lets through.
    fn handle_data(
        &mut self,
        ctx: &mut AgentCtx<'_>,
        body: &str,
        vars: RenderCtx<'static>,
        existing: Map<String, Value>,
    ) -> Result<(), ExtractError> {
        let Some(extractors) = &self.o.extract else {
            let doc: Value = serde_json::from_str(body).map_err(ExtractError::NotJson)?;
            let Value::Object(doc) = doc else {
                return Err(ExtractError::NotAnObject);
            };
            self.emit_new(ctx, vec![doc], existing);
            return Ok(());
        };
        let values = match self.o.doc_type {
            DocType::Json => {
                let doc: Value = serde_json::from_str(body).map_err(ExtractError::NotJson)?;
                extract_json::values(&doc, extractors)?
            }
            DocType::Text => extract_text::values(body, extractors)?,
            DocType::Html | DocType::Xml => {
                let exprs = value_exprs(extractors, &vars)?;
                let xml = self.o.doc_type == DocType::Xml;
                let ns = self.o.use_namespaces.unwrap_or(false);
                extract_html::values(body, xml, ns, extractors, &exprs)?
            }
        };
        let rows = extract::rows(extractors, values, &ctx.agent.name, &self.o.extract_text)?;
        let mut results = Vec::with_capacity(rows.rows.len());
        for row in rows.rows {
            let mut result = row.clone();
            for h in &rows.hidden {
                result.remove(h);
            }
            if let Some(t) = &self.o.template {
                let mut tv = vars.clone();
                for (k, v) in row {
                    tv.set(k, v);
                }
                match self.o.templates.render_tree(t, &tv) {
                    Ok(Value::Object(m)) => result.extend(m),
                    Ok(_) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            results.push(result);
        }
        self.emit_new(ctx, results, existing);
        Ok(())
    }

    /// Emits each result merged into `existing`; in `on_change` mode only those not
    /// among the agent's recent payloads.
    fn emit_new(
        &self,
        ctx: &mut AgentCtx<'_>,
        results: Vec<Map<String, Value>>,
        existing: Map<String, Value>,
    ) {
        let total = results.len();
        let on_change = self.o.mode == Mode::OnChange;
        let recent: HashSet<String> = if on_change {
            let n = seen::look_back(self.o.look_back, total);
            seen::recent(ctx.memory, n).into_iter().collect()
        } else {
            HashSet::new()
        };
        let mut digests = Vec::new();
        for r in results {
            if on_change {
                let d = seen::digest(&Value::Object(r.clone()));
                if recent.contains(&d) {
                    continue;
                }
                digests.push(d);
            }
            let mut payload = existing.clone();
            payload.extend(r);
            ctx.emit(Value::Object(payload));
        }
        if on_change {
            ctx.log(format!("{total} results, {} new", digests.len()));
            seen::remember(ctx.memory_mut(), digests);
        } else {
            ctx.log(format!("{total} results"));
        }
    }
}

/// `value` of each extraction: a Liquid template is rendered now (with `_url_` and
/// `_response_`), as Huginn interpolates `extract`.
fn value_exprs(
    extractors: &[extract::Extractor],
    vars: &RenderCtx<'_>,
) -> Result<Vec<String>, TemplateError> {
    extractors
        .iter()
        .map(|e| match &e.how {
            extract::How::Node { value, .. } if crate::template::liquid::has_markup(value) => {
                let mut t = crate::template::Templates::liquid();
                let id = t.add(&format!("extract.{}.value", e.name), value)?;
                t.render(&id, vars)
            }
            extract::How::Node { value, .. } => Ok(value.clone()),
            _ => Ok(String::new()),
        })
        .collect()
}

/// A rendered `url`: one URL, or a list of them (bounded).
fn url_list(v: Value) -> Vec<String> {
    match v {
        Value::String(s) if s.trim().is_empty() => Vec::new(),
        Value::String(s) => vec![s],
        Value::Array(items) => items
            .into_iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .filter(|s| !s.trim().is_empty())
            .take(MAX_URLS)
            .collect(),
        _ => Vec::new(),
    }
}

/// `_response_` for `data_from_event`: the event's `status` (when a whole number),
/// `headers` (when an object) and `url`, as Huginn's ResponseFromEventDrop.
fn response_from_event(payload: &Value) -> Value {
    let status = match payload.get("status") {
        Some(Value::Number(n)) => n.as_i64().map(Value::from),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok().map(Value::from),
        _ => None,
    };
    let headers: Vec<(String, String)> = payload
        .get("headers")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "status": status,
        "headers": request::response_headers(&headers),
        "url": payload.get("url").cloned().unwrap_or(Value::Null),
    })
}

/// Keeps the page's validators so the next fetch is conditional.
fn remember_validators(ctx: &mut AgentCtx<'_>, url: &str, got: &Fetched) {
    let header = |name: &str| {
        got.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| Value::String(v.clone()))
    };
    let (etag, lm) = (header("etag"), header("last-modified"));
    let memory = ctx.memory_mut();
    if !memory.is_object() {
        *memory = Value::Object(Map::new());
    }
    let Some(m) = memory.as_object_mut() else {
        return;
    };
    let http = m.entry("http").or_insert_with(|| json!({}));
    if !http.is_object() {
        *http = json!({});
    }
    if let Some(h) = http.as_object_mut() {
        if etag.is_none() && lm.is_none() {
            h.remove(url);
        } else {
            h.insert(url.to_string(), json!({"etag": etag, "last_modified": lm}));
        }
        // Bounded: the agent's URLs (a `url_from_event` agent may see many).
        while h.len() > MAX_PENDING {
            let Some(first) = h.keys().next().cloned() else {
                break;
            };
            h.remove(&first);
        }
    }
}

#[cfg(test)]
mod tests;
