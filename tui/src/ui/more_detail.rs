//! The detail views of Queues (a subscription: circuit, next retry, window, rate,
//! last errors in full), Events (an event's payload) and Endpoints (the request
//! log). Long text wraps; every view scrolls.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::text::{Line, Span};
use serde_json::Value;

use super::detail::{pretty, show};
use super::endpoints::shown_path;
use super::theme::Theme;
use super::util::{age, ago, clock};
use crate::api::{EndpointDetail, QueueDetail, StreamItem, Subscription};
use crate::app::{App, Endpoint, Key};

fn label(t: &Theme, s: &str) -> Span<'static> {
    Span::styled(format!("{s:<13}"), t.dim())
}

fn field(t: &Theme, name: &str, value: String) -> Line<'static> {
    Line::from(vec![label(t, name), Span::raw(value)])
}

fn parse(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// "12:05:00 (in 3m)" or "(3m ago)".
fn when(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let d = (t - now).num_seconds();
    let rel = if d >= 0 {
        format!("in {}", age(d))
    } else {
        format!("{} ago", age(-d))
    };
    format!("{} ({rel})", t.format("%H:%M:%S"))
}

fn retries(s: &Subscription) -> String {
    match &s.retry_schedule {
        Some(v) if !v.is_empty() => {
            let steps: Vec<String> = v.iter().map(|x| format!("{x}s")).collect();
            format!("{} · schedule {}", s.retry_count, steps.join(", "))
        }
        _ => format!(
            "{} · first after {}s, doubling up to {}s",
            s.retry_count, s.retry_delay, s.max_retry_delay
        ),
    }
}

pub fn queue(f: &mut Frame, app: &App, t: &Theme, id: i64, d: Option<&QueueDetail>) {
    let name = app.sub_label(id);
    let title = format!(" Queue #{id} · {name} · p t R C E D · ↑↓ scroll · Esc close ");
    let Some(d) = d else {
        show(f, app, title, vec![Line::from("loading …")]);
        return;
    };
    let s = &d.sub;
    let live = app
        .summary
        .as_ref()
        .and_then(|x| x.subscriptions.iter().find(|q| q.id == id));
    let state = match (s.is_active, s.paused) {
        (false, _) => format!(
            "off: {}",
            s.disabled_reason.as_deref().unwrap_or("deactivated")
        ),
        (true, true) => "paused".into(),
        (true, false) => "active".into(),
    };
    let open = s.circuit_state == "open" || live.is_some_and(|q| q.circuit_open());
    // The circuit opens on a failure and half-opens a cooldown later; the last
    // failure is the latest attempt that did not succeed.
    let last_failure = d
        .attempts
        .iter()
        .filter(|a| a.error_message.is_some() || a.response_status.is_none_or(|c| c >= 300))
        .filter_map(|a| parse(&a.created_at))
        .max()
        .or_else(|| {
            live.and_then(|q| q.last_error_at.as_deref())
                .and_then(parse)
        });
    let opened = s
        .circuit_opened_at
        .as_deref()
        .or_else(|| live.and_then(|q| q.circuit_opened_at.as_deref()))
        .and_then(parse);
    let circuit = if open {
        let cooldown = chrono::Duration::milliseconds((s.circuit_cooldown * 1000.0) as i64);
        // The hub says when it opened; older hubs leave it to be estimated.
        let exact = s
            .circuit_half_opens_at
            .as_deref()
            .and_then(parse)
            .or_else(|| opened.map(|o| o + cooldown));
        match (exact, opened, last_failure) {
            (Some(h), Some(o), _) => format!(
                "OPEN since {} · half-opens {}",
                when(app.now, o),
                when(app.now, h)
            ),
            (Some(h), None, _) => {
                format!("OPEN · half-opens {}", when(app.now, h))
            }
            (None, _, last_failure) => match last_failure {
                Some(t) => format!(
                    "OPEN · half-opens ≈ {} (last failure + {}s cooldown)",
                    when(app.now, t + cooldown),
                    s.circuit_cooldown
                ),
                None => format!("OPEN · half-opens {}s after it opened", s.circuit_cooldown),
            },
        }
    } else {
        format!(
            "{} · opens after {} failures in a row",
            s.circuit_state, s.failure_threshold
        )
    };
    let next = d
        .retrying
        .iter()
        .filter_map(|x| x.next_attempt_at.as_deref().and_then(parse))
        .min();
    let next_retry = match next {
        Some(n) => format!("{} · {} retrying", when(app.now, n), d.retrying.len()),
        None => "none retrying".into(),
    };
    let rate = match s.rate_limit {
        Some(n) => format!("at most {n} per {}", s.rate_limit_period),
        None => "unlimited".into(),
    };
    let mut lines = vec![
        field(t, "url", s.url.clone()),
        Line::from(vec![
            label(t, "state"),
            Span::styled(
                state,
                if s.is_active && !s.paused {
                    t.good()
                } else {
                    t.warn()
                },
            ),
        ]),
        Line::from(vec![
            label(t, "circuit"),
            Span::styled(circuit, if open { t.bad() } else { t.normal() }),
        ]),
        field(t, "next retry", next_retry),
        field(
            t,
            "window",
            format!(
                "{} in flight at most · {}",
                s.max_in_flight,
                if s.ordered { "in order" } else { "unordered" }
            ),
        ),
        field(t, "rate", rate),
        field(t, "retries", retries(s)),
        field(t, "timeout", format!("{}s", s.timeout)),
        field(
            t,
            "events",
            if s.event_types.is_empty() {
                "all".into()
            } else {
                s.event_types.join(", ")
            },
        ),
    ];
    if let Some(q) = live {
        lines.push(field(
            t,
            "queue",
            format!(
                "{} pending · {} in flight · {} retrying · {} dead · {}/min",
                q.pending, q.in_flight, q.retrying, q.dead, q.per_minute
            ),
        ));
    }
    lines.push(Line::from(""));
    lines.push(Line::styled("last errors, newest first", t.header()));
    let failed: Vec<_> = d
        .attempts
        .iter()
        .filter(|a| a.error_message.is_some() || a.response_status.is_none_or(|c| c >= 300))
        .collect();
    if failed.is_empty() {
        lines.push(Line::from("  none among the latest attempts"));
    }
    for a in failed {
        let status = a
            .response_status
            .map_or_else(|| "no answer".to_string(), |c| c.to_string());
        lines.push(Line::styled(
            format!(
                "{} · delivery #{} · attempt {} · {status}",
                clock(&a.created_at),
                a.delivery_id,
                a.retry_count + 1
            ),
            t.bold(),
        ));
        lines.push(Line::styled(
            format!("  {}", a.error_message.as_deref().unwrap_or("-")),
            t.bad(),
        ));
    }
    show(f, app, title, lines);
}

pub fn event(f: &mut Frame, app: &App, t: &Theme, seq: u64) {
    let item = app.events.iter().find(|(s, _)| *s == seq).map(|(_, e)| e);
    let Some(StreamItem::Event {
        id,
        agent_id,
        event_type,
        created_at,
        payload,
        ..
    }) = item
    else {
        let lines = vec![Line::from(
            "This event has left the live tail (it keeps the latest 1000).",
        )];
        show(f, app, " Event · Esc close ".into(), lines);
        return;
    };
    let title = format!(" Event #{id} · {event_type} · ↑↓ PgUp PgDn scroll · Esc close ");
    let mut lines = vec![
        field(t, "type", event_type.clone()),
        field(
            t,
            "agent",
            match agent_id {
                Some(a) => format!("{} (#{a})", app.agent_name(Some(*a))),
                None => "system".into(),
            },
        ),
        field(
            t,
            "created",
            format!("{} ({} ago)", created_at, ago(app.now, Some(created_at))),
        ),
        Line::from(""),
        Line::styled("payload", t.header()),
    ];
    lines.extend(pretty(if payload.is_null() {
        &Value::Null
    } else {
        payload
    }));
    show(f, app, title, lines);
}

pub fn endpoint(f: &mut Frame, app: &App, t: &Theme, key: Key, d: Option<&EndpointDetail>) {
    let e = match key {
        Key::AgentEndpoint(id) => app.agents.iter().find(|a| a.id == id).map(Endpoint::Agent),
        Key::Incoming(id) => app
            .incoming
            .iter()
            .find(|w| w.id == id)
            .map(Endpoint::Incoming),
        _ => None,
    };
    let (name, kind, path) = e.map_or_else(
        || ("(gone)".to_string(), String::new(), String::new()),
        |e| (e.name().to_string(), e.kind().to_string(), shown_path(&e)),
    );
    let title = format!(" Endpoint · {name} · request log · ↑↓ scroll · Esc close ");
    let mut lines = vec![field(t, "kind", kind.clone()), field(t, "path", path)];
    let Some(d) = d else {
        lines.push(Line::from("loading …"));
        show(f, app, title, lines);
        return;
    };
    if let Some(s) = &d.stats {
        let by: Vec<String> = s
            .rejected_by_reason
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        lines.push(field(
            t,
            "received",
            format!(
                "{} · accepted {} · duplicates {} · rejected {} · avg {:.1} ms",
                s.received, s.accepted, s.duplicates, s.rejected, s.average_processing_ms
            ),
        ));
        if !by.is_empty() {
            lines.push(field(t, "rejected by", by.join(" · ")));
        }
    }
    if let Some(n) = &d.note {
        lines.push(Line::from(""));
        lines.push(Line::styled(n.clone(), t.warn()));
    }
    lines.push(Line::from(""));
    let header = if kind == "data_output" {
        // The hub keeps a feed's requests in memory only.
        "requests, newest first (the last 100 since the hub started)"
    } else {
        "requests, newest first"
    };
    lines.push(Line::styled(header, t.header()));
    if d.logs.is_empty() && d.note.is_none() {
        lines.push(Line::from("  none yet"));
    }
    for l in &d.logs {
        let style = if l.accepted { t.good() } else { t.bad() };
        let events: Vec<String> = l.event_ids.iter().map(|i| format!("#{i}")).collect();
        let why = match (&l.reason, &l.detail) {
            (Some(r), Some(d)) => format!(" · {r}: {d}"),
            (Some(r), None) => format!(" · {r}"),
            _ => String::new(),
        };
        lines.push(Line::from(vec![
            Span::raw(format!("{} {} ", clock(&l.received_at), l.method)),
            Span::styled(l.status.to_string(), style),
            Span::raw(format!(
                " from {} · {} ms{why}{}",
                l.source_ip.as_deref().unwrap_or("?"),
                l.processing_ms,
                if events.is_empty() {
                    String::new()
                } else {
                    format!(" · events {}", events.join(","))
                }
            )),
        ]));
    }
    show(f, app, title, lines);
}
