//! `http_status` — Huginn's HttpStatusAgent: requests `url` (GET) when it runs (default
//! `every_12h`) or for each received event (`url` rendered with the event), and emits
//! `{url, response_received, elapsed_time, final_url, redirected, status, headers}`.
//! The request goes through the agents' fetch machinery (`AgentCtx::fetch`: the target
//! guard, the timeout, the response-size bound); redirects are followed unless
//! `disable_redirect_follow`, each hop through the guard.
//!
//! Memory `last_status`: the last status as text (null after a failure); with
//! `changes_only` an event is emitted only when it changes. Working when the last
//! status is a positive number, as in Huginn.

use std::collections::VecDeque;

use serde_json::{Map, Value, json};

use super::json_parse::{present, text_of};
use super::rss::{Fetch, Fetched};
use super::{AgentCtx, Behavior, OptionError, boolify};
use crate::store::events::EventRow;
use crate::template::{RenderCtx, TemplateId, Templates};

pub const NAME: &str = crate::agent_kind::Kind::HttpStatus.name();

/// Requests asked for and not answered yet, most that are kept (a burst of events
/// beyond this is refused with a log rather than queued without bound).
const MAX_PENDING: usize = 1000;

pub struct HttpStatus {
    templates: Templates,
    url: TemplateId,
    headers_to_save: TemplateId,
    disable_redirect_follow: TemplateId,
    changes_only: TemplateId,
    /// What each request in flight was for: its URL, the headers to save and whether
    /// it follows redirects and reports changes only.
    pending: VecDeque<Pending>,
}

struct Pending {
    url: String,
    headers: Vec<String>,
    follow: bool,
    changes_only: bool,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    HttpStatus::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(HttpStatus::new(options)?))
}

impl HttpStatus {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        if !present(options.get("url")) {
            return Err(OptionError::new(
                "url",
                "is required: a url must be specified",
            ));
        }
        let mut templates = Templates::liquid();
        let mut add = |name: &str| {
            templates
                .add(name, &text_of(options.get(name)))
                .map_err(OptionError::template)
        };
        Ok(HttpStatus {
            url: add("url")?,
            headers_to_save: add("headers_to_save")?,
            disable_redirect_follow: add("disable_redirect_follow")?,
            changes_only: add("changes_only")?,
            templates,
            pending: VecDeque::new(),
        })
    }

    fn request(&mut self, ctx: &mut AgentCtx<'_>, rctx: &RenderCtx<'_>) {
        let render = |id| self.templates.render(id, rctx);
        let (url, headers, no_follow, changes_only) = match (
            render(&self.url),
            render(&self.headers_to_save),
            render(&self.disable_redirect_follow),
            render(&self.changes_only),
        ) {
            (Ok(u), Ok(h), Ok(d), Ok(c)) => (u.trim().to_string(), h, d, c),
            (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => {
                ctx.error(format!("Could not interpolate the options: {e}"));
                return;
            }
        };
        if self.pending.len() >= MAX_PENDING {
            ctx.error(format!(
                "{MAX_PENDING} requests are already waiting; {url} is not checked this time"
            ));
            return;
        }
        let follow = !boolify(Some(&Value::String(no_follow))).unwrap_or(false);
        self.pending.push_back(Pending {
            url: url.clone(),
            headers: headers
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_string)
                .collect(),
            follow,
            changes_only: boolify(Some(&Value::String(changes_only))).unwrap_or(false),
        });
        ctx.fetch(Fetch {
            url,
            follow_redirects: follow,
            ..Fetch::default()
        });
    }
}

impl Behavior for HttpStatus {
    fn check(&mut self, ctx: &mut AgentCtx<'_>) {
        let rctx = RenderCtx::new().with_credentials(ctx.credentials.clone());
        self.request(ctx, &rctx);
    }

    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        let rctx = ctx.event_ctx(event, payload);
        self.request(ctx, &rctx);
    }

    fn fetched(&mut self, ctx: &mut AgentCtx<'_>, fetch: &Fetch, got: &Fetched) {
        let Some(i) = self.pending.iter().position(|p| p.url == fetch.url) else {
            return;
        };
        let Some(p) = self.pending.remove(i) else {
            return;
        };
        // Huginn counts a response with a status as received; anything else (refused,
        // timed out, no connection) is not.
        let status = got.status.filter(|s| *s > 0);
        let current = status.map(|s| s.to_string()).unwrap_or_default();
        let last = text_of(ctx.memory.get("last_status"));
        if p.changes_only && current == last {
            return;
        }
        let mut payload = Map::new();
        payload.insert("url".into(), json!(p.url));
        payload.insert("response_received".into(), json!(false));
        payload.insert("elapsed_time".into(), json!(got.elapsed.as_secs_f64()));
        let remembered = match status {
            Some(_) => {
                let final_url = if p.follow {
                    got.final_url.clone()
                } else {
                    p.url.clone()
                };
                payload.insert("redirected".into(), json!(final_url != p.url));
                payload.insert("final_url".into(), json!(final_url));
                payload.insert("response_received".into(), json!(true));
                payload.insert("status".into(), json!(current));
                if !p.headers.is_empty() {
                    let saved: Map<String, Value> = p
                        .headers
                        .iter()
                        .map(|h| {
                            let v = got
                                .headers
                                .iter()
                                .find(|(n, _)| n.eq_ignore_ascii_case(h))
                                .map_or(Value::Null, |(_, v)| json!(v));
                            (h.clone(), v)
                        })
                        .collect();
                    payload.insert("headers".into(), Value::Object(saved));
                }
                json!(current)
            }
            None => Value::Null,
        };
        ctx.emit(Value::Object(payload));
        if ctx.memory.get("last_status") != Some(&remembered) {
            let memory = ctx.memory_mut();
            if !memory.is_object() {
                *memory = Value::Object(Map::new());
            }
            memory["last_status"] = remembered;
        }
    }
}

/// Huginn's `working?`: `memory['last_status'].to_i > 0`.
pub fn working(memory: &Value) -> bool {
    let text = text_of(memory.get("last_status"));
    let digits: String = text
        .trim()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse::<u64>().is_ok_and(|n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::event_formatting::tests_support::row;

    fn answer(status: Option<u16>) -> Fetched {
        Fetched {
            status,
            headers: vec![("Server".into(), "s".into())],
            final_url: "http://h/final".into(),
            ..Fetched::default()
        }
    }

    /// Runs a check and hands back `got`; returns what was emitted.
    fn check(a: &mut HttpStatus, memory: &mut Value, got: Fetched) -> Vec<Value> {
        let row = row();
        let mut ctx = AgentCtx::new(&row, memory);
        a.check(&mut ctx);
        let fetch = ctx.fetches.pop().unwrap();
        a.fetched(&mut ctx, &fetch, &got);
        ctx.emitted
    }

    #[test]
    fn events_follow_huginns_shape() {
        let mut a =
            HttpStatus::new(&json!({"url": "http://h/", "headers_to_save": "server, x"})).unwrap();
        let mut memory = json!({});
        let e = check(&mut a, &mut memory, answer(Some(200))).remove(0);
        assert_eq!(e["status"], "200");
        assert_eq!(e["response_received"], true);
        assert_eq!(e["final_url"], "http://h/final");
        assert_eq!(e["redirected"], true);
        assert_eq!(e["headers"], json!({"server": "s", "x": null}));
        assert!(e["elapsed_time"].is_f64());
        assert_eq!(memory["last_status"], "200");
        assert!(working(&memory));

        let e = check(&mut a, &mut memory, answer(None)).remove(0);
        assert_eq!(e["response_received"], false);
        assert!(e.get("status").is_none() && e.get("final_url").is_none());
        assert_eq!(memory["last_status"], Value::Null);
        assert!(!working(&memory));
    }

    #[test]
    fn changes_only_skips_a_repeated_status_and_no_follow_keeps_the_url() {
        let mut a = HttpStatus::new(
            &json!({"url": "http://h/", "changes_only": "true", "disable_redirect_follow": true}),
        )
        .unwrap();
        let mut memory = json!({});
        let e = check(&mut a, &mut memory, answer(Some(301)));
        assert_eq!(e[0]["final_url"], "http://h/");
        assert_eq!(e[0]["redirected"], false);
        assert!(check(&mut a, &mut memory, answer(Some(301))).is_empty());
        assert_eq!(check(&mut a, &mut memory, answer(Some(200))).len(), 1);
        // Failures repeat as the empty status: reported once.
        assert_eq!(check(&mut a, &mut memory, answer(None)).len(), 1);
        assert!(check(&mut a, &mut memory, answer(None)).is_empty());
    }

    #[test]
    fn working_reads_the_status_as_ruby_to_i() {
        for (m, want) in [
            (json!({"last_status": "200"}), true),
            (json!({"last_status": "304"}), true),
            (json!({"last_status": "0"}), false),
            (json!({}), false),
            (json!({"last_status": "-1"}), false),
        ] {
            assert_eq!(working(&m), want, "{m}");
        }
    }
}
