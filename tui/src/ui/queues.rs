//! Queues: one row per subscription, worst first.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Block, Borders, Cell, Row, Table, TableState};

use super::theme::Theme;
use super::util::{cut, one_line};
use crate::app::App;

pub fn draw(f: &mut Frame, app: &App, t: &Theme, area: Rect) {
    let queues = app.queues();
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
    let name_w: u16 = if wide { 24 } else { 16 };
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
                Cell::from(cut(&q.name, name_w as usize)),
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
    let title = format!(
        " Queues ({}) · worst first · p pause/resume · R replay dead ",
        queues.len()
    );
    let empty = queues.is_empty();
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.header()))
        .row_highlight_style(t.selected())
        .block(Block::default().borders(Borders::ALL).title(if empty {
            " Queues · no subscriptions (create one with POST /api/webhooks/outgoing) ".to_string()
        } else {
            title
        }));
    let mut state = TableState::default().with_selected((!empty).then(|| app.selection()));
    f.render_stateful_widget(table, area, &mut state);
}
