//! Graph: a scenario's agents as nodes and their links as edges, each agent with
//! its events per minute and whether it works. Agents are listed by depth (sources
//! first, each receiver below the deepest of its sources), indented by depth, each
//! followed by the agents it sends to. The screen lists scenarios on the left and
//! draws the selected one's graph on the right; Enter shows it full screen, where it
//! scrolls.

use std::collections::HashMap;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Wrap};

use super::detail::show;
use super::list;
use super::theme::Theme;
use super::util::cut;
use crate::api::{Agent, Scenario};
use crate::app::{App, Key};

/// Indentation stops growing here so deep graphs stay readable at 80 columns.
const MAX_INDENT: usize = 5;

/// Depth of each agent of the scenario: 0 for those no agent of it sends to.
fn depths(agents: &[&Agent]) -> HashMap<i64, usize> {
    let mut depth: HashMap<i64, usize> = agents.iter().map(|a| (a.id, 0)).collect();
    // At most one pass per agent: a cycle cannot push depths up for ever.
    for _ in 0..agents.len() {
        let mut changed = false;
        for a in agents {
            let d = depth.get(&a.id).copied().unwrap_or(0);
            for r in &a.receiver_ids {
                if let Some(rd) = depth.get_mut(r)
                    && *rd < d + 1
                    && d < agents.len()
                {
                    *rd = d + 1;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    depth
}

/// The graph of a scenario as lines.
pub fn lines(app: &App, t: &Theme, s: &Scenario) -> Vec<Line<'static>> {
    let agents: Vec<&Agent> = app
        .agents
        .iter()
        .filter(|a| s.agent_ids.contains(&a.id))
        .collect();
    if agents.is_empty() {
        return vec![Line::styled("no agents in this scenario", t.dim())];
    }
    let depth = depths(&agents);
    let mut order = agents.clone();
    order.sort_by_key(|a| {
        (
            depth.get(&a.id).copied().unwrap_or(0),
            a.name.to_lowercase(),
            a.id,
        )
    });
    let mut out = Vec::new();
    for a in order {
        let indent = "  ".repeat(depth.get(&a.id).copied().unwrap_or(0).min(MAX_INDENT));
        let (state, style) = if a.disabled {
            ("disabled", t.dim())
        } else if a.working() {
            ("ok", t.good())
        } else {
            ("NOT working", t.bad())
        };
        let rate = app
            .agent_rates
            .get(&a.id)
            .map_or_else(|| "-/min".to_string(), |r| format!("{r:.1}/min"));
        out.push(Line::from(vec![
            Span::raw(format!("{indent}● ")),
            Span::styled(a.name.clone(), t.bold()),
            Span::styled(format!(" ({}) ", a.agent_type), t.dim()),
            Span::raw(format!("{rate} · ")),
            Span::styled(state, style),
        ]));
        let to: Vec<String> = a
            .receiver_ids
            .iter()
            .map(|r| match app.agents.iter().find(|x| x.id == *r) {
                Some(x) if s.agent_ids.contains(r) => x.name.clone(),
                Some(x) => format!("{} (other scenario)", x.name),
                None => format!("#{r}"),
            })
            .collect();
        if !to.is_empty() {
            out.push(Line::styled(
                format!("{indent}  └→ {}", to.join(", ")),
                t.accent(),
            ));
        }
    }
    out
}

pub fn draw(f: &mut Frame, app: &App, t: &Theme, area: Rect) {
    let rows_of = app.visible_scenarios();
    if rows_of.is_empty() && app.view().filter.is_empty() {
        let p = Paragraph::new("No scenarios yet (create one with POST /api/scenarios).").block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Graph · scenarios "),
        );
        f.render_widget(p, area);
        return;
    }
    let left_w = if area.width >= 110 { 32 } else { 24 };
    let [left, right] =
        Layout::horizontal([Constraint::Length(left_w), Constraint::Min(10)]).areas(area);
    let rows: Vec<Row> = rows_of
        .iter()
        .map(|s| {
            Row::new(vec![
                Cell::from(cut(&s.name, left_w as usize - 6)),
                Cell::from(s.agent_ids.len().to_string()),
            ])
        })
        .collect();
    let table = Table::new(rows, [Constraint::Min(4), Constraint::Length(3)])
        .header(Row::new(["Scenario", "Ags"]).style(t.header()))
        .row_highlight_style(t.selected())
        .block(Block::default().borders(Borders::ALL).title(list::title(
            app,
            "Scenarios",
            rows_of.len(),
            "Enter",
        )));
    f.render_stateful_widget(table, left, &mut list::state(app));
    let selected = match app.selected() {
        Some(Key::Scenario(id)) => rows_of.iter().find(|s| s.id == id).copied(),
        _ => None,
    };
    let (title, body) = match selected {
        Some(s) => (
            format!(" {} · agents and links · Enter full screen ", s.name),
            lines(app, t, s),
        ),
        None => (" graph ".to_string(), Vec::new()),
    };
    let p = Paragraph::new(body)
        .wrap(Wrap { trim: false })
        .block(Block::default().borders(Borders::ALL).title(title));
    f.render_widget(p, right);
}

pub fn detail(f: &mut Frame, app: &App, t: &Theme, id: i64) {
    let Some(s) = app.scenarios.iter().find(|s| s.id == id) else {
        show(
            f,
            app,
            " Graph · Esc close ".into(),
            vec![Line::from("This scenario is gone.")],
        );
        return;
    };
    let title = format!(
        " Scenario #{id} · {} · ↑↓ PgUp PgDn scroll · Esc close ",
        s.name
    );
    show(f, app, title, lines(app, t, s));
}
