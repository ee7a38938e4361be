//! Agents: name, type, working, last event, events, last error.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Block, Borders, Cell, Row, Table};

use super::list;
use super::theme::Theme;
use super::util::{ago, cut};
use crate::app::App;

pub fn draw(f: &mut Frame, app: &App, t: &Theme, area: Rect) {
    let rows_of = app.visible_agents();
    let wide = area.width >= 110;
    let name_w: u16 = if wide { 36 } else { 18 };
    let widths = [
        Constraint::Length(4),
        Constraint::Length(name_w),
        Constraint::Length(16),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Min(8),
    ];
    let rows: Vec<Row> = rows_of
        .iter()
        .map(|a| {
            let (working, style) = if a.disabled {
                ("disabled", t.dim())
            } else if a.working() {
                ("yes", t.good())
            } else {
                ("NO", t.bad())
            };
            Row::new(vec![
                Cell::from(a.id.to_string()),
                Cell::from(cut(&a.name, name_w as usize)),
                Cell::from(cut(&a.agent_type, 16)),
                Cell::from(working).style(style),
                Cell::from(ago(app.now, a.last_event_at.as_deref())),
                Cell::from(a.events_count.to_string()),
                Cell::from(match &a.last_error_at {
                    Some(e) => format!("{} ago", ago(app.now, Some(e))),
                    None => "-".into(),
                }),
            ])
        })
        .collect();
    let title = if rows_of.is_empty() && app.view().filter.is_empty() {
        " Agents · none yet (create one with POST /api/agents) ".to_string()
    } else {
        list::title(app, "Agents", rows_of.len(), "Enter detail · e x M")
    };
    let table = Table::new(rows, widths)
        .header(
            Row::new([
                "Id",
                "Name",
                "Type",
                "Working",
                "Last event",
                "Events",
                "Last error",
            ])
            .style(t.header()),
        )
        .row_highlight_style(t.selected())
        .block(Block::default().borders(Borders::ALL).title(title));
    f.render_stateful_widget(table, area, &mut list::state(app));
}
