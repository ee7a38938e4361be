//! Failures: recent retrying and dead deliveries, and the selected one's error in
//! full below.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Row, Table};

use super::list;
use super::theme::Theme;
use super::util::{ago, clock, cut, one_line};
use crate::api::Delivery;
use crate::app::{App, Key};

fn why(d: &Delivery) -> String {
    match (&d.last_status, &d.last_error) {
        (Some(s), Some(e)) if !e.contains(&s.to_string()) => format!("{s} {e}"),
        (_, Some(e)) => e.clone(),
        (Some(s), None) => s.to_string(),
        (None, None) => "-".into(),
    }
}

pub fn draw(f: &mut Frame, app: &App, t: &Theme, area: Rect) {
    let rows_of = app.visible_failures();
    let (table_area, note_area) = list::split(area);
    let wide = area.width >= 110;
    let sub_w: u16 = if wide { 30 } else { 16 };
    let type_w: u16 = if wide { 28 } else { 14 };
    let widths = [
        Constraint::Length(5),
        Constraint::Length(sub_w),
        Constraint::Length(type_w),
        Constraint::Length(8),
        Constraint::Length(3),
        Constraint::Min(10),
    ];
    let rows: Vec<Row> = rows_of
        .iter()
        .map(|fl| {
            let d = &fl.delivery;
            Row::new(vec![
                Cell::from(ago(app.now, Some(&d.updated_at))),
                Cell::from(cut(&app.sub_label(d.webhook_id), sub_w as usize)),
                Cell::from(cut(&fl.event_type, type_w as usize)),
                Cell::from(d.status.clone()).style(if d.status == "dead" {
                    t.bad()
                } else {
                    t.warn()
                }),
                Cell::from(d.attempts.to_string()),
                Cell::from(one_line(&why(d))),
            ])
        })
        .collect();
    let title = if rows_of.is_empty() && app.view().filter.is_empty() {
        " Failures · none: nothing is retrying or dead ".to_string()
    } else {
        list::title(app, "Failures", rows_of.len(), "Enter detail · r retry")
    };
    let table = Table::new(rows, widths)
        .header(
            Row::new([
                "Age",
                "Subscription",
                "Event type",
                "Status",
                "Att",
                "Status / error",
            ])
            .style(t.header()),
        )
        .row_highlight_style(t.selected())
        .block(Block::default().borders(Borders::ALL).title(title));
    f.render_stateful_widget(table, table_area, &mut list::state(app));
    let selected = match app.selected() {
        Some(Key::Delivery(id)) => rows_of.iter().find(|f| f.delivery.id == id),
        _ => None,
    };
    let (title, lines) = match selected {
        Some(fl) => {
            let d = &fl.delivery;
            let next = match d.next_attempt_at.as_deref() {
                Some(n) => format!(" · next attempt {}", clock(n)),
                None => String::new(),
            };
            (
                format!(
                    "delivery #{} · {} after {} attempts{next}",
                    d.id, d.status, d.attempts
                ),
                vec![Line::styled(why(d), t.bad())],
            )
        }
        None => ("error".to_string(), Vec::new()),
    };
    list::note(f, t, note_area, &title, lines);
}
