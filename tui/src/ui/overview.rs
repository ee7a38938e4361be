//! Overview: rates as sparklines and the numbers that say "something is stuck".

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline};

use super::nodes;
use super::theme::Theme;
use super::util::{bytes, duration};
use crate::api::{NodeStatus, Summary};
use crate::app::App;

/// Per-minute rate from the last minute of buckets.
fn per_minute(series: &[u64], bucket_seconds: u64) -> u64 {
    let n = (60 / bucket_seconds.max(1)) as usize;
    series.iter().rev().take(n).sum()
}

/// The last buckets that fit, each drawn `k` columns wide so the series fills the
/// box and always ends with "now" at the right edge.
fn fit(data: &[u64], width: u16) -> Vec<u64> {
    let width = width as usize;
    if width == 0 {
        return Vec::new();
    }
    let k = (width / data.len().max(1)).max(1);
    let shown = data.len().min(width / k);
    let mut out = vec![0; width.saturating_sub(shown * k)];
    for v in &data[data.len() - shown..] {
        out.extend(std::iter::repeat_n(*v, k));
    }
    out
}

fn spark(f: &mut Frame, area: Rect, title: String, data: &[u64], style: Style) {
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    let data = fit(data, inner.width);
    let s = Sparkline::default().block(block).data(&data).style(style);
    f.render_widget(s, area);
}

pub fn draw(f: &mut Frame, app: &App, t: &Theme, area: Rect) {
    let empty = Summary::default();
    let s = app.summary.as_ref().unwrap_or(&empty);
    let r = &s.rates;
    let b = r.bucket_seconds.max(1);
    let window = format!("{}m", (b * r.events.len() as u64).div_ceil(60));
    let spark_h = if area.height >= 30 { 8 } else { 5 };
    let [ingest, delivery, numbers] = Layout::vertical([
        Constraint::Length(spark_h),
        Constraint::Length(spark_h),
        Constraint::Min(4),
    ])
    .areas(area);
    spark(
        f,
        ingest,
        format!(
            " Ingest: {}/min · events per {b}s, last {window} · total {} ",
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
        failed,
        format!(
            " Failed: {}/min · total {} ",
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
            Span::styled(format!("{label:<20}"), t.dim()),
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
        row(
            "database",
            s.database_bytes
                .map_or_else(|| "(admins only)".into(), bytes),
            t.normal(),
        ),
        row("uptime", duration(s.uptime_seconds), t.normal()),
        row("version", s.version.clone(), t.normal()),
    ];
    // The node that answered: on one box only its name, in the title.
    let title = match &app.node {
        Some(n) => format!(" {} · node {} ", app.base_url, n.node_id),
        None => format!(" {} ", app.base_url),
    };
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(numbers);
    f.render_widget(block, numbers);
    let cluster = app.node.as_ref().filter(|_| app.is_cluster());
    let [columns, node_line] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(u16::from(cluster.is_some())),
    ])
    .areas(inner);
    let [l, rr] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(columns);
    f.render_widget(Paragraph::new(left), l);
    f.render_widget(Paragraph::new(right), rr);
    if let Some(n) = cluster {
        f.render_widget(Paragraph::new(node_summary(n, t)), node_line);
    }
}

/// Several nodes: what this one runs, and whether any is late or gone (N lists them).
fn node_summary(n: &NodeStatus, t: &Theme) -> Line<'static> {
    let (cluster, style) = nodes::cluster_summary(n, t);
    Line::from(vec![
        Span::styled("this node: ", t.dim()),
        Span::raw(nodes::holdings(
            n.owned_agents,
            n.owned_subscriptions,
            n.claimed_deliveries,
        )),
        Span::styled(" · ", t.dim()),
        Span::styled(cluster, style),
        Span::styled(" (N)", t.dim()),
    ])
}
