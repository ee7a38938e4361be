//! The edit form of a subscription: one line per field, the focused one marked and
//! followed by how to type it; what the last save refused, in red.

use ratatui::Frame;
use ratatui::text::{Line, Span};

use super::detail::show;
use super::theme::Theme;
use crate::app::{App, EditForm};

pub fn form(f: &mut Frame, app: &App, t: &Theme, form: &EditForm) {
    let id = form.id;
    let title = format!(
        " Edit #{id} · {} · ↑↓ field · Enter save · Esc cancel ",
        app.sub_label(id)
    );
    if !form.loaded {
        show(f, app, title, vec![Line::from("loading …")]);
        return;
    }
    let mut lines = Vec::new();
    for (i, field) in form.fields.iter().enumerate() {
        let focused = i == form.focus;
        let changed = field.value.trim() != field.original.trim();
        let marker = if focused { "▶ " } else { "  " };
        let mut spans = vec![
            Span::styled(format!("{marker}{:<12}", field.label), t.dim()),
            Span::styled(
                field.value.clone(),
                if focused { t.selected() } else { t.normal() },
            ),
        ];
        if focused {
            spans.push(Span::styled("_", t.dim()));
        }
        if changed {
            spans.push(Span::styled("  (changed)", t.warn()));
        }
        lines.push(Line::from(spans));
        if focused {
            lines.push(Line::styled(format!("{:14}{}", "", field.hint), t.dim()));
        }
    }
    lines.push(Line::from(""));
    if let Some(e) = &form.error {
        lines.push(Line::styled(e.clone(), t.bad()));
    } else {
        lines.push(Line::styled(
            "Only the changed fields are sent; Enter shows them and asks first.",
            t.dim(),
        ));
    }
    show(f, app, title, lines);
}
