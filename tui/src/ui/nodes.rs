//! Nodes (N): the node the console talks to, what runs on it, and every node sharing
//! the hub's database with its last heartbeat and what it holds (the hub lists the
//! others to admins only). A late or expired node is said in words, not only in colour.

use ratatui::Frame;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::detail::show;
use super::theme::Theme;
use super::util::{age, ago, cut, one_line};
use crate::api::{ClusterNode, NodeState, NodeStatus};
use crate::app::{App, NodeCounts};

/// Node ids longer than this are cut in the table (the full id is in `/worker_status`).
const ID_WIDTH: usize = 16;

/// "3 agents, 2 webhooks, 1 claimed": what a node holds.
pub fn holdings(agents: i64, webhooks: i64, claimed: i64) -> String {
    let plural = |n: i64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{}, {}, {claimed} claimed",
        plural(agents, "agent", "agents"),
        plural(webhooks, "webhook", "webhooks")
    )
}

/// "3 nodes, 1 late, 1 expired" and how to style it; the live count for anyone but an
/// admin, who has no list.
pub fn cluster_summary(node: &NodeStatus, t: &Theme) -> (String, Style) {
    if node.nodes.is_empty() {
        let n = node.live_nodes;
        return (
            format!("{n} live node{}", if n == 1 { "" } else { "s" }),
            t.normal(),
        );
    }
    let c = NodeCounts::of(&node.nodes);
    let n = node.nodes.len();
    let mut text = format!("{n} node{}", if n == 1 { "" } else { "s" });
    if c.late > 0 {
        text.push_str(&format!(", {} late", c.late));
    }
    if c.expired > 0 {
        text.push_str(&format!(", {} expired", c.expired));
    }
    let style = if c.expired > 0 {
        t.bad()
    } else if c.late > 0 {
        t.warn()
    } else {
        t.normal()
    };
    (text, style)
}

fn state(n: &ClusterNode, t: &Theme) -> (&'static str, Style) {
    match n.state {
        Some(NodeState::Live) => ("live", t.good()),
        Some(NodeState::Late) => ("LATE", t.warn()),
        Some(NodeState::Expired) => ("EXPIRED", t.bad()),
        Some(NodeState::Unknown) => ("?", t.dim()),
        None => ("-", t.dim()),
    }
}

fn count(n: Option<i64>) -> String {
    n.map_or_else(|| "-".into(), |n| n.to_string())
}

fn row(app: &App, t: &Theme, me: &str, n: &ClusterNode) -> Line<'static> {
    let beat = match n.heartbeat_age_seconds {
        Some(s) => format!("{} ago", age(s as i64)),
        None => match ago(app.now, Some(&n.heartbeat_at)) {
            a if a == "-" => a,
            a => format!("{a} ago"),
        },
    };
    let (state, style) = state(n, t);
    let mine = n.id == me;
    Line::from(vec![
        Span::styled(if mine { "* " } else { "  " }, t.bold()),
        Span::styled(
            format!("{:<ID_WIDTH$}", cut(&one_line(&n.id), ID_WIDTH)),
            if mine { t.bold() } else { t.normal() },
        ),
        Span::raw(format!(" {beat:>9} ")),
        Span::styled(format!("{state:<8}"), style),
        Span::raw(format!(
            "{:>6} {:>8} {:>7}  ",
            count(n.owned_agents),
            count(n.owned_subscriptions),
            count(n.claimed_deliveries)
        )),
        Span::styled(cut(&n.version, 12), t.dim()),
    ])
}

fn this_node(node: &NodeStatus, t: &Theme) -> Vec<Line<'static>> {
    let label = |s: &str| Span::styled(format!("  {s:<14}"), t.dim());
    let mut lines = vec![
        Line::from(vec![
            Span::styled("Node ", t.header()),
            Span::styled(one_line(&node.node_id), t.bold()),
            Span::styled("  (the node this console talks to)", t.dim()),
        ]),
        Line::from(vec![
            label("runs here"),
            Span::raw(holdings(
                node.owned_agents,
                node.owned_subscriptions,
                node.claimed_deliveries,
            )),
        ]),
    ];
    let (summary, style) = cluster_summary(node, t);
    let mut cluster = vec![label("cluster"), Span::styled(summary, style)];
    if let (Some(h), Some(l)) = (node.heartbeat_seconds, node.lease_seconds) {
        cluster.push(Span::styled(
            format!(" · heartbeat {h}s, lease {l}s"),
            t.dim(),
        ));
    }
    lines.push(Line::from(cluster));
    if let Some(e) = &node.error {
        lines.push(Line::from(vec![
            label("last round"),
            Span::styled(format!("failed: {}", one_line(e)), t.bad()),
        ]));
    }
    lines
}

pub fn draw(f: &mut Frame, app: &App, t: &Theme) {
    let title = " Nodes · this node and the cluster · F5 reload · Esc close ".to_string();
    let Some(node) = &app.node else {
        let lines = vec![
            Line::from("loading …"),
            Line::from(""),
            Line::styled(
                "(a hub from before several nodes does not report its node in /worker_status)",
                t.dim(),
            ),
        ];
        show(f, app, title, lines);
        return;
    };
    let mut lines = this_node(node, t);
    lines.push(Line::from(""));
    if node.nodes.is_empty() {
        lines.push(Line::styled(
            "Only admins see the other nodes sharing the database.",
            t.dim(),
        ));
        show(f, app, title, lines);
        return;
    }
    lines.push(Line::styled("Nodes sharing the database", t.header()));
    lines.push(Line::styled(
        format!(
            "  {:<ID_WIDTH$} {:>9} {:<8}{:>6} {:>8} {:>7}  version",
            "node", "heartbeat", "state", "agents", "webhooks", "claimed"
        ),
        t.header(),
    ));
    lines.extend(node.nodes.iter().map(|n| row(app, t, &node.node_id, n)));
    lines.push(Line::from(""));
    lines.push(Line::styled("* the node this console talks to", t.dim()));
    if node.nodes.len() == 1 {
        lines.push(Line::styled(
            "One node: it runs every agent and webhook. Several nodes share one PostgreSQL \
             database (README: Run several nodes).",
            t.dim(),
        ));
    } else {
        let late = node.heartbeat_seconds.map_or_else(
            || "for over two heartbeats".to_string(),
            |h| format!("for over {}s (two heartbeats)", 2 * h),
        );
        let expired = node.lease_seconds.map_or_else(
            || "longer than a lease".to_string(),
            |l| format!("for over {l}s (a lease)"),
        );
        lines.push(Line::styled(
            format!(
                "LATE: no heartbeat {late}; its leases still hold. EXPIRED: silent {expired}: \
                 live nodes take its agents and webhooks, and its claimed deliveries once \
                 their claims end."
            ),
            t.dim(),
        ));
    }
    show(f, app, title, lines);
}
