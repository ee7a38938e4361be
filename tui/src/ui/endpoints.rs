//! Endpoints: the hub's inbound faces. Today these are webhook agents (Huginn
//! URLs); incoming webhooks (`/webhook/{token}`) are one more `kind` of row here when
//! the hub serves them, and the request counters (per minute, accepted, rejected by
//! reason) fill in from the hub's inbound statistics. Until then those columns show
//! "-" rather than a guess.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};

use super::theme::Theme;
use super::util::{ago, cut};
use crate::app::App;

pub fn draw(f: &mut Frame, app: &App, t: &Theme, area: Rect) {
    let list = app.endpoints();
    let wide = area.width >= 110;
    let [table_area, note] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(area);
    let name_w: u16 = if wide { 24 } else { 16 };
    let mut widths = vec![
        Constraint::Length(name_w),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Min(19),
    ];
    let mut header = vec![
        "Name",
        "Kind",
        "Last req",
        "Req/m",
        "Accepted",
        "Events",
        "Rej 401/403/413/422/429",
    ];
    if wide {
        widths.push(Constraint::Length(30));
        header.push("URL");
    }
    let rows: Vec<Row> = list
        .iter()
        .map(|a| {
            let mut cells = vec![
                Cell::from(cut(&a.name, name_w as usize)),
                Cell::from("webhook"),
                Cell::from(ago(app.now, a.last_web_request_at.as_deref())),
                Cell::from("-"),
                Cell::from("-"),
                Cell::from(a.events_count.to_string()),
                Cell::from("-/-/-/-/-").style(t.dim()),
            ];
            if wide {
                // The secret is the last path segment: never show it.
                let url = a.web_request_url.as_deref().unwrap_or("-");
                let shown = match url.rsplit_once('/') {
                    Some((head, _)) => format!("{head}/•••"),
                    None => url.to_string(),
                };
                cells.push(Cell::from(shown));
            }
            Row::new(cells).style(if a.disabled { t.dim() } else { t.normal() })
        })
        .collect();
    let title = if list.is_empty() {
        " Endpoints · none (a webhook agent is an endpoint) ".to_string()
    } else {
        format!(" Endpoints ({}) · Enter detail ", list.len())
    };
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.header()))
        .row_highlight_style(t.selected())
        .block(Block::default().borders(Borders::ALL).title(title));
    let mut state =
        TableState::default().with_selected((!list.is_empty()).then(|| app.selection()));
    f.render_stateful_widget(table, table_area, &mut state);
    f.render_widget(
        Paragraph::new(Line::styled(
            "Request counters appear when the hub serves inbound statistics.",
            t.dim(),
        )),
        note,
    );
}
