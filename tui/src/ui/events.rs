//! Events: the live tail of `/api/stream`, newest first, filtered by type or agent.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Block, Borders, Cell, Row, Table, TableState};

use super::theme::Theme;
use super::util::{clock, cut, one_line};
use crate::api::StreamItem;
use crate::app::App;

pub fn draw(f: &mut Frame, app: &App, t: &Theme, area: Rect) {
    let list = app.visible_events();
    let wide = area.width >= 110;
    let (type_w, who_w): (u16, u16) = if wide { (32, 22) } else { (20, 14) };
    let widths = [
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(type_w),
        Constraint::Length(who_w),
        Constraint::Min(10),
    ];
    let rows: Vec<Row> = list
        .iter()
        .rev()
        .map(|e| match e {
            StreamItem::Event {
                id,
                agent_id,
                event_type,
                created_at,
                payload,
                ..
            } => Row::new(vec![
                Cell::from(clock(created_at)),
                Cell::from("event").style(t.accent()),
                Cell::from(cut(event_type, type_w as usize)),
                Cell::from(cut(&app.agent_name(*agent_id), who_w as usize)),
                Cell::from(one_line(&format!("#{id} {payload}"))),
            ]),
            StreamItem::Delivery {
                webhook_id,
                event_type,
                status,
                attempts,
                response_status,
                error,
                at,
                ..
            } => {
                let style = match status.as_str() {
                    "delivered" => t.good(),
                    "dead" => t.bad(),
                    _ => t.warn(),
                };
                let sub = app
                    .summary
                    .as_ref()
                    .and_then(|s| s.subscriptions.iter().find(|q| q.id == *webhook_id))
                    .map_or_else(|| format!("webhook #{webhook_id}"), |q| q.name.clone());
                let detail = format!(
                    "{status} (attempt {attempts}){}{}",
                    response_status
                        .map(|s| format!(" · {s}"))
                        .unwrap_or_default(),
                    error
                        .as_deref()
                        .map(|e| format!(" · {e}"))
                        .unwrap_or_default()
                );
                Row::new(vec![
                    Cell::from(clock(at)),
                    Cell::from("delivery").style(style),
                    Cell::from(cut(event_type, type_w as usize)),
                    Cell::from(cut(&sub, who_w as usize)),
                    Cell::from(one_line(&detail)),
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
    let title = if list.is_empty() {
        " Events · live · waiting for events ".to_string()
    } else {
        format!(
            " Events · live · newest first ({}) · / filter · c clear ",
            list.len()
        )
    };
    let table = Table::new(rows, widths)
        .header(Row::new(["Time", "Kind", "Type", "Agent / to", "Detail"]).style(t.header()))
        .row_highlight_style(t.selected())
        .block(Block::default().borders(Borders::ALL).title(title));
    let mut state =
        TableState::default().with_selected((!list.is_empty()).then(|| app.selection()));
    f.render_stateful_widget(table, area, &mut state);
}
