//! Overlays: help, confirmation, delivery attempt detail, agent detail.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Wrap};
use serde_json::Value;

use super::popup;
use super::theme::Theme;
use super::util::{ago, is_secret_header};
use crate::api::{Agent, AgentLog, Delivery};
use crate::app::App;
use crate::input::KEYS;

pub fn help(f: &mut Frame, t: &Theme) {
    let full = f.area();
    let w = full.width.min(72);
    let h = (KEYS.len() as u16 + 2).min(full.height);
    let area = Rect {
        x: full.x + (full.width - w) / 2,
        y: full.y + (full.height - h) / 2,
        width: w,
        height: h,
    };
    popup(f, area);
    let rows: Vec<Row> = KEYS
        .iter()
        .map(|(k, what)| Row::new(vec![Span::styled(*k, t.bold()), Span::raw(*what)]))
        .collect();
    let table = Table::new(rows, [Constraint::Length(16), Constraint::Min(10)]).block(
        Block::default()
            .borders(Borders::ALL)
            .title(" Keys · Esc/q/? close "),
    );
    f.render_widget(table, area);
}

pub fn confirm(f: &mut Frame, t: &Theme, question: &str) {
    let full = f.area();
    let w = (question.chars().count() as u16 + 6).clamp(30, full.width);
    let area = Rect {
        x: full.x + (full.width - w) / 2,
        y: full.y + full.height.saturating_sub(7) / 2,
        width: w,
        height: 7.min(full.height),
    };
    popup(f, area);
    let p = Paragraph::new(vec![
        Line::from(question.to_string()),
        Line::from(""),
        Line::from(vec![
            Span::styled("[y]", t.bold()),
            Span::raw(" yes    "),
            Span::styled("[n]", t.bold()),
            Span::raw(" no"),
        ]),
    ])
    .wrap(Wrap { trim: true })
    .block(
        Block::default()
            .borders(Borders::ALL)
            .title(" Confirm ")
            .border_style(t.warn()),
    );
    f.render_widget(p, area);
}

pub(super) fn pretty(v: &Value) -> Vec<Line<'static>> {
    serde_json::to_string_pretty(v)
        .unwrap_or_default()
        .lines()
        .map(|l| Line::from(format!("  {l}")))
        .collect()
}

pub(super) fn text_block(s: &str) -> Vec<Line<'static>> {
    // A JSON body reads better pretty-printed.
    if let Ok(v) = serde_json::from_str::<Value>(s)
        && (v.is_object() || v.is_array())
    {
        return pretty(&v);
    }
    s.lines().map(|l| Line::from(format!("  {l}"))).collect()
}

pub(super) fn show(f: &mut Frame, app: &App, title: String, lines: Vec<Line<'static>>) {
    // Between the tab bar and the status line: the screen below is not half-visible.
    let full = f.area();
    let area = Rect {
        x: full.x,
        y: full.y + 1.min(full.height),
        width: full.width,
        height: full.height.saturating_sub(2),
    };
    popup(f, area);
    let p = Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .scroll((app.detail_scroll, 0))
        .block(Block::default().borders(Borders::ALL).title(title));
    f.render_widget(p, area);
}

pub fn delivery(f: &mut Frame, app: &App, t: &Theme, id: i64, d: Option<&Delivery>) {
    let title = format!(" Delivery #{id} · r retry · ↑↓ PgUp PgDn scroll · Esc close ");
    let Some(d) = d else {
        show(f, app, title, vec![Line::from("loading …")]);
        return;
    };
    let sub = format!("{} (#{})", app.sub_label(d.webhook_id), d.webhook_id);
    let event_type = app
        .failures
        .iter()
        .find(|f| f.delivery.id == d.id)
        .map_or("", |f| f.event_type.as_str());
    let label = |s: &str| Span::styled(format!("{s:<14}"), t.dim());
    let mut lines = vec![
        Line::from(vec![
            label("status"),
            Span::styled(
                d.status.clone(),
                if d.status == "dead" {
                    t.bad()
                } else {
                    t.warn()
                },
            ),
        ]),
        Line::from(vec![label("subscription"), Span::raw(sub)]),
        Line::from(vec![
            label("event"),
            Span::raw(format!("#{} {}", d.event_id, event_type)),
        ]),
        Line::from(vec![label("message id"), Span::raw(d.message_id.clone())]),
        Line::from(vec![label("attempts"), Span::raw(d.attempts.to_string())]),
        Line::from(vec![
            label("last error"),
            Span::raw(d.last_error.clone().unwrap_or_else(|| "-".into())),
        ]),
    ];
    if d.status == "dead" {
        lines.push(Line::styled("r: retry it (asks first)", t.dim()));
    }
    let attempts = d.attempt_log.as_deref().unwrap_or_default();
    if attempts.is_empty() {
        lines.push(Line::from(""));
        lines.push(Line::from("no attempts recorded"));
    }
    for a in attempts.iter().rev() {
        lines.push(Line::from(""));
        lines.push(Line::styled(
            format!(
                "── attempt {} · {} ago · {} ms ──",
                a.attempt_number,
                ago(app.now, Some(&a.started_at)),
                a.duration_ms
            ),
            t.header(),
        ));
        let status = match (a.response_status, &a.error) {
            (Some(s), Some(e)) => format!("{s} · {e}"),
            (Some(s), None) => s.to_string(),
            (None, Some(e)) => e.clone(),
            (None, None) => "-".into(),
        };
        lines.push(Line::from(vec![label("response"), Span::raw(status)]));
        lines.push(Line::styled("request headers", t.bold()));
        if let Value::Object(h) = &a.request_headers {
            for (k, v) in h {
                let v = if is_secret_header(k) {
                    "[masked]".to_string()
                } else {
                    v.as_str().map_or_else(|| v.to_string(), str::to_string)
                };
                lines.push(Line::from(format!("  {k}: {v}")));
            }
        }
        lines.push(Line::styled("payload", t.bold()));
        lines.extend(text_block(&a.request_body));
        lines.push(Line::styled("response body (excerpt)", t.bold()));
        lines.extend(text_block(a.response_body.as_deref().unwrap_or("(none)")));
    }
    show(f, app, title, lines);
}

pub fn agent(f: &mut Frame, app: &App, t: &Theme, id: i64, a: Option<&(Agent, Vec<AgentLog>)>) {
    let Some((a, logs)) = a else {
        show(
            f,
            app,
            format!(" Agent #{id} · Esc close "),
            vec![Line::from("loading …")],
        );
        return;
    };
    let title = format!(
        " Agent #{} · {} · e x M · ↑↓ scroll · Esc close ",
        a.id, a.name
    );
    let label = |s: &str| Span::styled(format!("{s:<14}"), t.dim());
    let working = if a.disabled {
        "disabled"
    } else if a.working() {
        "working"
    } else {
        "NOT working"
    };
    let mut lines = vec![
        Line::from(vec![label("type"), Span::raw(a.agent_type.clone())]),
        Line::from(vec![label("state"), Span::raw(working)]),
        Line::from(vec![
            label("schedule"),
            Span::raw(a.schedule.clone().unwrap_or_else(|| "-".into())),
        ]),
        Line::from(vec![label("events"), Span::raw(a.events_count.to_string())]),
        Line::from(vec![
            label("last event"),
            Span::raw(ago(app.now, a.last_event_at.as_deref())),
        ]),
        Line::from(vec![
            label("last check"),
            Span::raw(ago(app.now, a.last_check_at.as_deref())),
        ]),
        Line::from(vec![
            label("last error"),
            Span::raw(ago(app.now, a.last_error_at.as_deref())),
        ]),
        Line::from(""),
        Line::styled("options", t.bold()),
    ];
    // Secrets in options (a webhook agent's `secret`) are masked.
    let mut options = a.options.clone();
    if let Value::Object(m) = &mut options {
        for (k, v) in m.iter_mut() {
            if is_secret_header(k) {
                *v = Value::String("[masked]".into());
            }
        }
    }
    lines.extend(pretty(&options));
    lines.push(Line::styled("memory", t.bold()));
    lines.extend(pretty(&a.memory));
    lines.push(Line::styled("recent logs", t.bold()));
    if logs.is_empty() {
        lines.push(Line::from("  (none)"));
    }
    for l in logs {
        let style = if l.level >= 4 { t.bad() } else { t.normal() };
        lines.push(Line::styled(
            format!("  {} ago  {}", ago(app.now, Some(&l.created_at)), l.message),
            style,
        ));
    }
    show(f, app, title, lines);
}
