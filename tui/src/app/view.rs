//! Screens and what each remembers on its own: its filter, its sort column and
//! direction, and its selection, kept as the selected object's key (never a row
//! index, so a refresh that re-sorts the rows cannot move it to another object).

/// The screens, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Screen {
    Overview,
    Queues,
    Failures,
    Agents,
    Endpoints,
    Events,
    Graph,
}

impl Screen {
    pub const ALL: [Screen; 7] = [
        Screen::Overview,
        Screen::Queues,
        Screen::Failures,
        Screen::Agents,
        Screen::Endpoints,
        Screen::Events,
        Screen::Graph,
    ];

    pub fn index(self) -> usize {
        Screen::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }

    pub fn title(self) -> &'static str {
        match self {
            Screen::Overview => "Overview",
            Screen::Queues => "Queues",
            Screen::Failures => "Failures",
            Screen::Agents => "Agents",
            Screen::Endpoints => "Endpoints",
            Screen::Events => "Events",
            Screen::Graph => "Graph",
        }
    }

    /// The screen a `:` command names: its number, its name, or the start of its
    /// name (`:q`, `:fail`), case-insensitive. Aliases cover what operators type.
    pub fn by_name(name: &str) -> Option<Screen> {
        let n = name.trim().to_lowercase();
        if n.is_empty() {
            return None;
        }
        if let Ok(i) = n.parse::<usize>() {
            return Screen::ALL.get(i.checked_sub(1)?).copied();
        }
        let alias = match n.as_str() {
            "subscriptions" | "subs" | "deliveries" => Some(Screen::Queues),
            "dead" | "dlq" => Some(Screen::Failures),
            "incoming" | "webhooks" => Some(Screen::Endpoints),
            "stream" | "tail" => Some(Screen::Events),
            "scenarios" | "scenario" => Some(Screen::Graph),
            _ => None,
        };
        alias.or_else(|| {
            Screen::ALL
                .into_iter()
                .find(|s| s.title().to_lowercase().starts_with(&n))
        })
    }

    /// The columns the screen sorts by (`s` cycles, `S` reverses); the first is the
    /// default order.
    pub fn sorts(self) -> &'static [&'static str] {
        match self {
            Screen::Overview => &[],
            Screen::Queues => &[
                "worst", "name", "pending", "retrying", "dead", "rate", "ok%",
            ],
            Screen::Failures => &["newest", "subscription", "event type", "status", "attempts"],
            Screen::Agents => &["id", "name", "type", "working", "last event", "events"],
            Screen::Endpoints => &["name", "kind", "last request", "rejected"],
            Screen::Events => &["newest", "kind", "type"],
            Screen::Graph => &["name", "agents"],
        }
    }
}

/// What a row is: the object behind it. Endpoint rows have their own keys so an
/// action on agents never takes an endpoint row for an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// A subscription (outgoing webhook), by id.
    Sub(i64),
    Delivery(i64),
    Agent(i64),
    /// A webhook or data_output agent's URL, as an endpoint.
    AgentEndpoint(i64),
    /// An incoming webhook (`/webhook/{token}`).
    Incoming(i64),
    /// An item of the live tail, by the order it arrived in.
    Stream(u64),
    Scenario(i64),
    /// The user's credentials, as one list (an overlay, on no screen).
    Credentials,
    /// The node the console talks to and its cluster (an overlay, on no screen).
    Nodes,
}

/// One screen's own state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    pub filter: String,
    /// Index into `Screen::sorts`.
    pub sort: usize,
    /// Reverses the column's natural order.
    pub reversed: bool,
    /// The selected object; `None` only while the list is empty.
    pub selected: Option<Key>,
    /// Where the selection was, for when its object goes away: the selection moves
    /// to the row now in that place.
    pub index: usize,
}
