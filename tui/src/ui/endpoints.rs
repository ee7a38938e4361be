//! Endpoints: the hub's inbound faces. Today these are webhook agents (Huginn URLs),
//! with request counters from `/api/summary` (since the hub started; a hub without
//! them shows "-"). Incoming webhooks (`/webhook/{token}`) become one more `kind` of
//! row here when the hub serves them.

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
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(19),
    ];
    let mut header = vec![
        "Name",
        "Kind",
        "Last req",
        "Req/m",
        "Accepted",
        "Events",
        "401/403/413/422/429",
    ];
    if wide {
        widths.push(Constraint::Min(30));
        header.push("URL");
    }
    let rows: Vec<Row> = list
        .iter()
        .map(|a| {
            let counts = app
                .summary
                .as_ref()
                .and_then(|s| s.endpoints.iter().find(|e| e.agent_id == a.id));
            let (per_minute, accepted, rejected) = match counts {
                Some(c) => {
                    let by: Vec<String> = ["401", "403", "413", "422", "429"]
                        .iter()
                        .map(|s| c.rejected(s).to_string())
                        .collect();
                    let any = c.rejected.values().any(|n| *n > 0);
                    (
                        c.per_minute.to_string(),
                        c.accepted.to_string(),
                        Cell::from(by.join("/")).style(if any { t.warn() } else { t.normal() }),
                    )
                }
                None => (
                    "-".into(),
                    "-".into(),
                    Cell::from("-/-/-/-/-").style(t.dim()),
                ),
            };
            let mut cells = vec![
                Cell::from(cut(&a.name, name_w as usize)),
                Cell::from("webhook"),
                Cell::from(ago(app.now, a.last_web_request_at.as_deref())),
                Cell::from(per_minute),
                Cell::from(accepted),
                Cell::from(a.events_count.to_string()),
                rejected,
            ];
            if wide {
                // The secret is the last path segment: never show it.
                let url = a.web_request_url.as_deref().unwrap_or("-");
                // The path is what tells endpoints apart; the host is the hub's.
                let path = url.splitn(4, '/').nth(3).map_or(url, |p| p);
                let shown = match path.rsplit_once('/') {
                    Some((head, _)) => format!("/{head}/•••"),
                    None => path.to_string(),
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
            "Counts since the hub started; rejected requests by answer status.",
            t.dim(),
        )),
        note,
    );
}
