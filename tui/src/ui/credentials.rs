//! Credentials (K): the names and modes of the user's credentials, as templates read
//! them with `{% credential NAME %}`. The hub lists no values and the console keeps
//! none, so nothing here can show a secret.

use ratatui::Frame;
use ratatui::text::{Line, Span};

use super::detail::show;
use super::theme::Theme;
use super::util::{ago, cut};
use crate::api::Credential;
use crate::app::App;

/// Names longer than this are cut (the full name is in `GET /api/credentials`).
const NAME_WIDTH: usize = 32;

pub fn draw(f: &mut Frame, app: &App, t: &Theme, list: Option<&[Credential]>) {
    let title = " Credentials · names only, never values · F5 reload · Esc close ".to_string();
    let Some(list) = list else {
        show(f, app, title, vec![Line::from("loading …")]);
        return;
    };
    if list.is_empty() {
        let lines = vec![
            Line::from("No credentials yet."),
            Line::from(""),
            Line::styled(
                "Add one with POST /api/credentials {\"credential_name\": ..., \"credential_value\": ...};",
                t.dim(),
            ),
            Line::styled("templates read it with {% credential NAME %}.", t.dim()),
        ];
        show(f, app, title, lines);
        return;
    }
    let mut sorted: Vec<&Credential> = list.iter().collect();
    sorted.sort_by(|a, b| a.credential_name.cmp(&b.credential_name));
    let mut lines = vec![Line::styled(
        format!("{:<NAME_WIDTH$}  {:<12}  updated", "name", "mode"),
        t.header(),
    )];
    lines.extend(sorted.into_iter().map(|c| {
        Line::from(vec![
            Span::styled(
                format!("{:<NAME_WIDTH$}", cut(&c.credential_name, NAME_WIDTH)),
                t.bold(),
            ),
            Span::raw(format!("  {:<12}  ", cut(&c.mode, 12))),
            Span::styled(updated(app, c), t.dim()),
        ])
    }));
    show(f, app, title, lines);
}

fn updated(app: &App, c: &Credential) -> String {
    match ago(app.now, Some(&c.updated_at)) {
        a if a == "-" => a,
        a => format!("{a} ago"),
    }
}
