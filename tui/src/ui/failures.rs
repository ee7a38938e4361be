//! Failures: recent retrying and dead deliveries.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Block, Borders, Cell, Row, Table, TableState};

use super::theme::Theme;
use super::util::{ago, cut, one_line};
use crate::app::App;

pub fn draw(f: &mut Frame, app: &App, t: &Theme, area: Rect) {
    let list = app.visible_failures();
    let wide = area.width >= 110;
    let sub_w: u16 = if wide { 24 } else { 16 };
    let type_w: u16 = if wide { 28 } else { 14 };
    let widths = [
        Constraint::Length(5),
        Constraint::Length(sub_w),
        Constraint::Length(type_w),
        Constraint::Length(8),
        Constraint::Length(3),
        Constraint::Min(10),
    ];
    let rows: Vec<Row> = list
        .iter()
        .map(|fl| {
            let d = &fl.delivery;
            let why = match (&d.last_status, &d.last_error) {
                (Some(s), Some(e)) if !e.contains(&s.to_string()) => format!("{s} {e}"),
                (_, Some(e)) => e.clone(),
                (Some(s), None) => s.to_string(),
                (None, None) => "-".into(),
            };
            Row::new(vec![
                Cell::from(ago(app.now, Some(&d.updated_at))),
                Cell::from(cut(&fl.subscription, sub_w as usize)),
                Cell::from(cut(&fl.event_type, type_w as usize)),
                Cell::from(d.status.clone()).style(if d.status == "dead" {
                    t.bad()
                } else {
                    t.warn()
                }),
                Cell::from(d.attempts.to_string()),
                Cell::from(one_line(&why)),
            ])
        })
        .collect();
    let title = if list.is_empty() {
        " Failures · none: nothing is retrying or dead ".to_string()
    } else {
        format!(
            " Failures ({}) · Enter detail · r retry · R replay all dead ",
            list.len()
        )
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
    let mut state =
        TableState::default().with_selected((!list.is_empty()).then(|| app.selection()));
    f.render_stateful_widget(table, area, &mut state);
}
