//! Events: the live tail of `/api/stream`, newest first, filtered by type, agent,
//! subscription or status; the selected item's detail in full below.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Row, Table};

use super::list;
use super::theme::Theme;
use super::util::{clock, cut, one_line};
use crate::api::StreamItem;
use crate::app::{App, Key};

/// The Detail column: what happened, in one line (the strip shows it wrapped).
fn detail(e: &StreamItem) -> String {
    match e {
        StreamItem::Event { id, payload, .. } => format!("#{id} {payload}"),
        StreamItem::Delivery {
            delivery_id,
            status,
            attempts,
            response_status,
            error,
            ..
        } => format!(
            "#{delivery_id} {status} (attempt {attempts}){}{}",
            response_status
                .map(|s| format!(" · {s}"))
                .unwrap_or_default(),
            error
                .as_deref()
                .map(|e| format!(" · {e}"))
                .unwrap_or_default()
        ),
        StreamItem::Lagged { skipped } => {
            format!("{skipped} items skipped: the console read too slowly")
        }
    }
}

pub fn draw(f: &mut Frame, app: &App, t: &Theme, area: Rect) {
    let rows_of = app.visible_events();
    let (table_area, note_area) = list::split(area);
    let wide = area.width >= 110;
    let (type_w, who_w): (u16, u16) = if wide { (32, 22) } else { (16, 12) };
    let widths = [
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(type_w),
        Constraint::Length(who_w),
        Constraint::Min(10),
    ];
    let rows: Vec<Row> = rows_of
        .iter()
        .map(|(_, e)| match e {
            StreamItem::Event {
                agent_id,
                event_type,
                created_at,
                ..
            } => Row::new(vec![
                Cell::from(clock(created_at)),
                Cell::from("event").style(t.accent()),
                Cell::from(cut(event_type, type_w as usize)),
                Cell::from(cut(&app.agent_name(*agent_id), who_w as usize)),
                Cell::from(one_line(&detail(e))),
            ]),
            StreamItem::Delivery {
                webhook_id,
                event_type,
                status,
                at,
                ..
            } => {
                let style = match status.as_str() {
                    "delivered" => t.good(),
                    "dead" => t.bad(),
                    _ => t.warn(),
                };
                Row::new(vec![
                    Cell::from(clock(at)),
                    Cell::from("delivery").style(style),
                    Cell::from(cut(event_type, type_w as usize)),
                    Cell::from(cut(&app.sub_label(*webhook_id), who_w as usize)),
                    Cell::from(one_line(&detail(e))),
                ])
            }
            StreamItem::Lagged { skipped } => Row::new(vec![
                Cell::from(""),
                Cell::from("skipped").style(t.warn()),
                Cell::from(format!("{skipped} items")),
                Cell::from(""),
                Cell::from("the console read too slowly; the hub dropped these"),
            ]),
        })
        .collect();
    let title = if rows_of.is_empty() && app.view().filter.is_empty() {
        " Events · live · waiting for events ".to_string()
    } else {
        list::title(
            app,
            "Events · live",
            rows_of.len(),
            "Enter detail · c clear",
        )
    };
    let table = Table::new(rows, widths)
        .header(Row::new(["Time", "Kind", "Type", "Agent / to", "Detail"]).style(t.header()))
        .row_highlight_style(t.selected())
        .block(Block::default().borders(Borders::ALL).title(title));
    f.render_stateful_widget(table, table_area, &mut list::state(app));
    let selected = match app.selected() {
        Some(Key::Stream(seq)) => rows_of.iter().find(|(s, _)| *s == seq),
        _ => None,
    };
    let lines = selected.map_or_else(Vec::new, |(_, e)| vec![Line::from(one_line(&detail(e)))]);
    list::note(f, t, note_area, "selected", lines);
}
