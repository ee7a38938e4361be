//! Overview: rates as sparklines and the numbers that say "something is stuck".

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline};

use super::theme::Theme;
use super::util::{bytes, duration};
use crate::api::Summary;
use crate::app::App;

/// Per-minute rate from the last minute of buckets.
fn per_minute(series: &[u64], bucket_seconds: u64) -> u64 {
    let n = (60 / bucket_seconds.max(1)) as usize;
    series.iter().rev().take(n).sum()
}

fn spark(
    f: &mut Frame,
    t: &Theme,
    area: Rect,
    title: String,
    data: &[u64],
    style: ratatui::style::Style,
) {
    let s = Sparkline::default()
        .block(Block::default().borders(Borders::ALL).title(title))
        .data(data)
        .style(style);
    f.render_widget(s, area);
    let _ = t;
}

pub fn draw(f: &mut Frame, app: &App, t: &Theme, area: Rect) {
    let empty = Summary::default();
    let s = app.summary.as_ref().unwrap_or(&empty);
    let r = &s.rates;
    let b = r.bucket_seconds.max(1);
    let window = duration(b * r.events.len() as u64);
    let spark_h = if area.height >= 30 { 8 } else { 5 };
    let [ingest, delivery, numbers] = Layout::vertical([
        Constraint::Length(spark_h),
        Constraint::Length(spark_h),
        Constraint::Min(4),
    ])
    .areas(area);
    spark(
        f,
        t,
        ingest,
        format!(
            " Ingest: {}/min · events per {b}s over the last {window} · total {} ",
            per_minute(&r.events, b),
            r.events_total
        ),
        &r.events,
        t.accent(),
    );
    let [ok, failed] = Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)])
        .areas(delivery);
    spark(
        f,
        t,
        ok,
        format!(
            " Delivered: {}/min · total {} ",
            per_minute(&r.delivered, b),
            r.delivered_total
        ),
        &r.delivered,
        t.good(),
    );
    spark(
        f,
        t,
        failed,
        format!(
            " Failed: {}/min · {} ",
            per_minute(&r.failed, b),
            r.failed_total
        ),
        &r.failed,
        t.bad(),
    );
    let q = &s.queue;
    let warn_if = |n: i64, style| if n > 0 { style } else { t.normal() };
    let row = |label: &str, value: String, style| {
        Line::from(vec![
            Span::styled(format!("{label:<18}"), t.dim()),
            Span::styled(value, style),
        ])
    };
    let left = vec![
        row(
            "queue depth",
            format!("{}", q.pending + q.retrying),
            warn_if(q.pending + q.retrying, t.warn()),
        ),
        row("  in flight", format!("{}", q.in_flight), t.normal()),
        row(
            "  retrying",
            format!("{}", q.retrying),
            warn_if(q.retrying, t.warn()),
        ),
        row("dead", format!("{}", q.dead), warn_if(q.dead, t.bad())),
        row(
            "open circuits",
            format!("{}", q.open_circuits),
            warn_if(q.open_circuits as i64, t.bad()),
        ),
        row(
            "paused",
            format!("{}", q.paused),
            warn_if(q.paused as i64, t.warn()),
        ),
    ];
    let a = &s.agents;
    let right = vec![
        row(
            "agents not working",
            format!("{} of {}", a.not_working, a.total),
            warn_if(a.not_working as i64, t.bad()),
        ),
        row("agents disabled", format!("{}", a.disabled), t.normal()),
        row(
            "subscriptions",
            format!("{}", s.subscriptions.len()),
            t.normal(),
        ),
        row("database", bytes(s.database_bytes), t.normal()),
        row("uptime", duration(s.uptime_seconds), t.normal()),
        row("version", s.version.clone(), t.normal()),
    ];
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" {} ", app.base_url));
    let inner = block.inner(numbers);
    f.render_widget(block, numbers);
    let [l, rr] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner);
    f.render_widget(Paragraph::new(left), l);
    f.render_widget(Paragraph::new(right), rr);
}
