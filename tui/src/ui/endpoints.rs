//! Endpoints: the hub's inbound faces — webhook and data_output agents' URLs and
//! incoming webhooks (`/webhook/{token}`) — with the request counters the summary
//! has (webhook agents; "-" where the hub keeps none). Enter opens the request log.
//! Tokens and secrets are never shown.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};

use super::list;
use super::theme::Theme;
use super::util::{ago, cut};
use crate::app::{App, Endpoint};

/// The path of an endpoint with its secret part hidden.
pub fn shown_path(e: &Endpoint) -> String {
    match e {
        Endpoint::Incoming(_) => "/webhook/•••".into(),
        Endpoint::Agent(a) => {
            let url = a.web_request_url.as_deref().unwrap_or("-");
            // The path tells endpoints apart; the host is the hub's; the secret is
            // the last segment.
            let path = url.splitn(4, '/').nth(3).unwrap_or(url);
            match path.rsplit_once('/') {
                Some((head, _)) => format!("/{head}/•••"),
                None => path.to_string(),
            }
        }
    }
}

pub fn draw(f: &mut Frame, app: &App, t: &Theme, area: Rect) {
    let rows_of = app.endpoints();
    let wide = area.width >= 110;
    let [table_area, note] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(area);
    let name_w: u16 = if wide { 24 } else { 16 };
    let mut widths = vec![
        Constraint::Length(name_w),
        Constraint::Length(11),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(8),
        Constraint::Min(19),
    ];
    let mut header = vec![
        "Name",
        "Kind",
        "Last req",
        "Req/m",
        "Accepted",
        "401/403/413/422/429",
    ];
    if wide {
        widths.push(Constraint::Min(30));
        header.push("Path");
    }
    let rows: Vec<Row> = rows_of
        .iter()
        .map(|e| {
            let counts = app.summary.as_ref().and_then(|s| match e {
                Endpoint::Agent(a) => s.endpoints.iter().find(|c| c.agent_id == a.id),
                Endpoint::Incoming(_) => None,
            });
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
                    Cell::from("- (Enter: log)").style(t.dim()),
                ),
            };
            let mut cells = vec![
                Cell::from(cut(e.name(), name_w as usize)),
                Cell::from(e.kind().to_string()),
                Cell::from(ago(app.now, e.last_request())),
                Cell::from(per_minute),
                Cell::from(accepted),
                rejected,
            ];
            if wide {
                cells.push(Cell::from(shown_path(e)));
            }
            Row::new(cells).style(if e.disabled() { t.dim() } else { t.normal() })
        })
        .collect();
    let title = if rows_of.is_empty() && app.view().filter.is_empty() {
        " Endpoints · none (a webhook agent or an incoming webhook is one) ".to_string()
    } else {
        list::title(app, "Endpoints", rows_of.len(), "Enter request log")
    };
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.header()))
        .row_highlight_style(t.selected())
        .block(Block::default().borders(Borders::ALL).title(title));
    f.render_stateful_widget(table, table_area, &mut list::state(app));
    f.render_widget(
        Paragraph::new(Line::styled(
            "Counts since the hub started; rejected requests by answer status.",
            t.dim(),
        )),
        note,
    );
}
