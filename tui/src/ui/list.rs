//! What the list screens share: the title with the screen's sort and filter, the
//! table state from the selection, and the strip under the table that shows the
//! selected row's long text (an error, a payload) in full, wrapped.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, TableState, Wrap};

use super::theme::Theme;
use crate::app::App;

/// Rows of the strip, borders included.
const NOTE_HEIGHT: u16 = 5;

/// "sort: dead ↓ · filter: x" for the screen's title.
pub fn order(app: &App) -> String {
    let v = app.view();
    let sorts = app.screen.sorts();
    let mut s = match sorts.get(v.sort) {
        Some(name) => format!(
            "sort: {name}{}",
            if v.reversed { " (reversed)" } else { "" }
        ),
        None => String::new(),
    };
    if !v.filter.is_empty() {
        s.push_str(&format!(" · filter: {}", v.filter));
    }
    s
}

pub fn state(app: &App) -> TableState {
    TableState::default().with_selected(app.selection())
}

/// Splits a list screen into the table and the strip below it (none when short).
pub fn split(area: Rect) -> (Rect, Option<Rect>) {
    if area.height < 12 {
        return (area, None);
    }
    let [table, note] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(NOTE_HEIGHT)]).areas(area);
    (table, Some(note))
}

/// The strip: the selected row's text in full, wrapped.
pub fn note(f: &mut Frame, t: &Theme, area: Option<Rect>, title: &str, lines: Vec<Line<'static>>) {
    let Some(area) = area else { return };
    let p = Paragraph::new(lines).wrap(Wrap { trim: false }).block(
        Block::default()
            .borders(Borders::ALL)
            .border_style(t.dim())
            .title(format!(" {title} ")),
    );
    f.render_widget(p, area);
}

/// "… · Enter detail" when the list is empty says how to fill it instead.
pub fn title(app: &App, name: &str, count: usize, keys: &str) -> String {
    let order = order(app);
    let order = if order.is_empty() {
        String::new()
    } else {
        format!(" · {order}")
    };
    format!(" {name} ({count}){order} · {keys} ")
}
