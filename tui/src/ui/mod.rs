//! Drawing: one file per screen, each a function of `App` (no I/O, no state changes
//! except the page size the lists report back). `draw` lays out the tab bar, the
//! screen, the overlays and the status line.

mod agents;
mod credentials;
mod detail;
mod edit;
mod endpoints;
mod events;
mod failures;
mod graph;
mod list;
mod more_detail;
mod nodes;
mod overview;
mod queues;
pub mod theme;
pub mod util;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Tabs, Wrap};

use crate::app::{App, Detail, PromptKind, Screen};
use crate::worker::Connection;
use theme::Theme;

pub fn draw(f: &mut Frame, app: &mut App) {
    let t = Theme::new(app.color);
    let [top, body, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    draw_tabs(f, app, &t, top);
    // Rows a page holds: the body minus borders and the header row.
    app.page = body.height.saturating_sub(3).max(1) as usize;
    if let Some(msg) = blocking_message(app) {
        let p = Paragraph::new(msg)
            .wrap(Wrap { trim: true })
            .block(Block::default().borders(Borders::ALL).title(" muninn "));
        f.render_widget(p, body);
    } else {
        match app.screen {
            Screen::Overview => overview::draw(f, app, &t, body),
            Screen::Queues => queues::draw(f, app, &t, body),
            Screen::Failures => failures::draw(f, app, &t, body),
            Screen::Agents => agents::draw(f, app, &t, body),
            Screen::Endpoints => endpoints::draw(f, app, &t, body),
            Screen::Events => events::draw(f, app, &t, body),
            Screen::Graph => graph::draw(f, app, &t, body),
        }
    }
    draw_status(f, app, &t, bottom);
    match &app.detail {
        None => {}
        Some(Detail::Delivery(id, d)) => detail::delivery(f, app, &t, *id, d.as_deref()),
        Some(Detail::Agent(id, a)) => detail::agent(f, app, &t, *id, a.as_deref()),
        Some(Detail::Queue(id, q)) => more_detail::queue(f, app, &t, *id, q.as_deref()),
        Some(Detail::Event(seq)) => more_detail::event(f, app, &t, *seq),
        Some(Detail::Endpoint(k, d)) => more_detail::endpoint(f, app, &t, *k, d.as_deref()),
        Some(Detail::Graph(id)) => graph::detail(f, app, &t, *id),
        Some(Detail::Edit(form)) => edit::form(f, app, &t, form),
        Some(Detail::Credentials(c)) => credentials::draw(f, app, &t, c.as_deref()),
        Some(Detail::Nodes) => nodes::draw(f, app, &t),
    }
    if app.help {
        detail::help(f, &t);
    }
    if let Some(c) = &app.confirm {
        detail::confirm(f, &t, &c.question);
    }
}

/// When there is nothing to show but a connection problem, the body says so.
fn blocking_message(app: &App) -> Option<Vec<Line<'static>>> {
    match &app.connection {
        Connection::Unauthorized(e) => Some(vec![
            Line::from("The hub refused the API token."),
            Line::from(""),
            Line::from(e.clone()),
            Line::from(""),
            Line::from(
                "Pass --token, set MUNINN_TOKEN, or point --data-dir at the hub's data directory (it holds admin.token).",
            ),
        ]),
        Connection::Disconnected(e) if app.summary.is_none() => Some(vec![
            Line::from(format!(
                "Cannot reach the hub at {} — retrying.",
                app.base_url
            )),
            Line::from(""),
            Line::from(e.clone()),
            Line::from(""),
            Line::from("Is `muninn serve` running? Set the address with --url or MUNINN_URL."),
        ]),
        Connection::Connecting if app.summary.is_none() => Some(vec![Line::from(format!(
            "Connecting to {} …",
            app.base_url
        ))]),
        _ => None,
    }
}

fn draw_tabs(f: &mut Frame, app: &App, t: &Theme, area: Rect) {
    let titles: Vec<Line> = Screen::ALL
        .iter()
        .enumerate()
        .map(|(i, s)| Line::from(format!("{} {}", i + 1, s.title())))
        .collect();
    let tabs = Tabs::new(titles)
        .select(app.screen.index())
        .style(t.normal())
        .highlight_style(t.selected())
        .divider("|")
        .padding("", "");
    f.render_widget(tabs, area);
}

fn draw_status(f: &mut Frame, app: &App, t: &Theme, area: Rect) {
    if let Some((kind, text)) = &app.prompt {
        let (lead, hint) = match kind {
            PromptKind::Filter => ("/", "  Enter keep · Esc clear"),
            PromptKind::Jump => (":", "  screen name · Enter go · Esc cancel"),
        };
        let line = Line::from(vec![
            Span::styled(lead, t.bold()),
            Span::raw(text.clone()),
            Span::styled("_", t.dim()),
            Span::styled(hint, t.dim()),
        ]);
        f.render_widget(Paragraph::new(line), area);
        return;
    }
    let (state, style) = match (&app.connection, app.stale_for()) {
        (Connection::Connected, _) => ("● connected".to_string(), t.good()),
        (Connection::Connecting, _) => ("○ connecting".to_string(), t.warn()),
        // What is on screen is old: say how old.
        (Connection::Disconnected(_), Some(age)) => (
            format!("✖ STALE: hub not answering, data {} old", util::age(age)),
            t.bad(),
        ),
        (Connection::Disconnected(_), None) => ("✖ disconnected — retrying".to_string(), t.bad()),
        (Connection::Unauthorized(_), _) => ("✖ token refused".to_string(), t.bad()),
    };
    let mut spans = vec![Span::styled(state, style)];
    // Behind a load balancer each refresh may reach another node: say which answered.
    if let Some(n) = app.node.as_ref().filter(|_| app.is_cluster()) {
        spans.push(Span::styled(format!(" · node {}", n.node_id), t.dim()));
    }
    if let Some(m) = app.message() {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(
            m.text.clone(),
            if m.ok { t.normal() } else { t.bad() },
        ));
    }
    let help = " ? help  q quit";
    let [left, right] =
        Layout::horizontal([Constraint::Min(1), Constraint::Length(help.len() as u16)]).areas(area);
    f.render_widget(Paragraph::new(Line::from(spans)), left);
    f.render_widget(Paragraph::new(Span::styled(help, t.dim())), right);
}

pub fn popup(f: &mut Frame, area: Rect) {
    f.render_widget(Clear, area);
}
