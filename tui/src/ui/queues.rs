//! Queues: one row per subscription (worst first unless sorted otherwise), and the
//! selected one's last error in full below.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Row, Table};

use super::list;
use super::theme::Theme;
use super::util::{ago, cut, one_line};
use crate::app::{App, Key};

pub fn draw(f: &mut Frame, app: &App, t: &Theme, area: Rect) {
    let queues = app.queues();
    let (table_area, note_area) = list::split(area);
    let wide = area.width >= 110;
    let mut header = vec![
        "Name",
        "Pend",
        "Fly",
        "Retry",
        "Dead",
        "/min",
        "OK%",
        "Circuit",
        "Paused",
        "Last error",
    ];
    let name_w: u16 = if wide { 30 } else { 18 };
    let mut widths = vec![
        Constraint::Length(name_w),
        Constraint::Length(4),
        Constraint::Length(3),
        Constraint::Length(5),
        Constraint::Length(4),
        Constraint::Length(4),
        Constraint::Length(4),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Min(10),
    ];
    if wide {
        header.insert(1, "URL");
        widths.insert(1, Constraint::Length(30));
    }
    let rows: Vec<Row> = queues
        .iter()
        .map(|q| {
            let mut cells = vec![
                Cell::from(cut(&q.label(), name_w as usize)),
                Cell::from(q.pending.to_string()),
                Cell::from(q.in_flight.to_string()),
                Cell::from(q.retrying.to_string()).style(if q.retrying > 0 {
                    t.warn()
                } else {
                    t.normal()
                }),
                Cell::from(q.dead.to_string()).style(if q.dead > 0 { t.bad() } else { t.normal() }),
                Cell::from(q.per_minute.to_string()),
                Cell::from(
                    q.success_ratio
                        .map_or("-".into(), |r| format!("{:.0}", r * 100.0)),
                ),
                Cell::from(if q.is_active {
                    q.circuit.clone()
                } else {
                    "off".into()
                })
                .style(if q.circuit_open() || !q.is_active {
                    t.bad()
                } else {
                    t.good()
                }),
                Cell::from(if q.paused { "paused" } else { "-" }).style(if q.paused {
                    t.warn()
                } else {
                    t.normal()
                }),
                Cell::from(one_line(q.last_error.as_deref().unwrap_or("-"))),
            ];
            if wide {
                cells.insert(1, Cell::from(cut(&q.url, 30)));
            }
            Row::new(cells)
        })
        .collect();
    let title = if queues.is_empty() && app.view().filter.is_empty() {
        " Queues · no subscriptions (create one with POST /api/webhooks/outgoing) ".to_string()
    } else {
        list::title(app, "Queues", queues.len(), "Enter detail · p t R C E D")
    };
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.header()))
        .row_highlight_style(t.selected())
        .block(Block::default().borders(Borders::ALL).title(title));
    f.render_stateful_widget(table, table_area, &mut list::state(app));
    let selected = match app.selected() {
        Some(Key::Sub(id)) => queues.iter().find(|q| q.id == id),
        _ => None,
    };
    let (title, lines) = match selected {
        Some(q) => (
            format!("#{} {} · last error", q.id, q.label()),
            vec![Line::styled(
                match (&q.last_error, &q.last_error_at) {
                    (Some(e), at) => format!("{} ago: {e}", ago(app.now, at.as_deref())),
                    (None, _) => "none".into(),
                },
                if q.last_error.is_some() {
                    t.bad()
                } else {
                    t.dim()
                },
            )],
        ),
        None => ("last error".to_string(), Vec::new()),
    };
    list::note(f, t, note_area, &title, lines);
}
