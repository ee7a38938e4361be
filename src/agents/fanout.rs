//! Fan-out bounds every agent shares: the propagation budget of each root event (how
//! many events may descend from one webhook, schedule run or manual event), and the
//! per-user emission rate. The depth cap bounds a chain; these bound a tree, which is
//! what a link cycle with fan-out grows. The per-agent rate lives in each agent's actor.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::Value;

use crate::endpoints::guard::RateLimiter;
use crate::ids::EventId;
use crate::ops::metrics;
use crate::store::agent_logs::{LEVEL_ERROR, LEVEL_INFO, NewLog};
use crate::store::events::Lineage;

/// Roots remembered at once; past this the oldest half is forgotten (a forgotten root
/// that is still growing starts a fresh budget, so the cap is generous).
const MAX_ROOTS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanOutSettings {
    /// Events that may descend from one root event (`agents.max_events_per_root`).
    pub max_events_per_root: u64,
    /// Events one agent may emit per minute (`agents.max_events_per_agent_per_minute`).
    pub agent_events_per_minute: u32,
    /// Events one user's agents may emit per minute (`agents.max_events_per_user_per_minute`).
    pub user_events_per_minute: u32,
}

impl Default for FanOutSettings {
    fn default() -> Self {
        FanOutSettings {
            max_events_per_root: 10_000,
            agent_events_per_minute: 60_000,
            user_events_per_minute: 120_000,
        }
    }
}

/// Why an emitted event was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The root's budget is spent; `first` is true for the one refusal that is logged.
    Budget {
        root: EventId,
        first: bool,
    },
    AgentRate,
    UserRate,
}

impl Refusal {
    /// The metric label.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Budget { .. } => "root_budget",
            Refusal::AgentRate => "agent_rate",
            Refusal::UserRate => "user_rate",
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Root {
    spent: u64,
    reported: bool,
}

/// The shared counters (one per hub).
#[derive(Debug)]
pub struct FanOut {
    pub settings: FanOutSettings,
    roots: Mutex<HashMap<EventId, Root>>,
    users: Mutex<HashMap<i64, RateLimiter>>,
}

impl FanOut {
    pub fn new(settings: FanOutSettings) -> FanOut {
        FanOut {
            settings,
            roots: Mutex::default(),
            users: Mutex::default(),
        }
    }

    /// Whether `root` has a counter in this run.
    pub fn knows(&self, root: EventId) -> bool {
        self.roots
            .lock()
            .map(|r| r.contains_key(&root))
            .unwrap_or(false)
    }

    /// Sets what `root` has spent from what the database holds (after a restart), so
    /// a restart never hands a growing tree a fresh budget.
    pub fn seed(&self, root: EventId, spent: u64) {
        if let Ok(mut roots) = self.roots.lock() {
            let r = roots.entry(root).or_default();
            r.spent = r.spent.max(spent);
        }
    }

    /// Counts one event descending from `root`, or refuses it when the budget is spent.
    pub fn charge_root(&self, root: EventId) -> Result<(), Refusal> {
        let Ok(mut roots) = self.roots.lock() else {
            return Ok(());
        };
        if roots.len() >= MAX_ROOTS && !roots.contains_key(&root) {
            forget_oldest_half(&mut roots);
        }
        let r = roots.entry(root).or_default();
        if r.spent >= self.settings.max_events_per_root {
            let first = !r.reported;
            r.reported = true;
            return Err(Refusal::Budget { root, first });
        }
        r.spent += 1;
        Ok(())
    }

    /// Takes one token of `user`'s emission rate.
    pub fn charge_user(&self, user: i64, now: Instant) -> Result<(), Refusal> {
        let per_minute = self.settings.user_events_per_minute;
        let Ok(mut users) = self.users.lock() else {
            return Ok(());
        };
        if users.len() >= MAX_ROOTS && !users.contains_key(&user) {
            users.clear();
        }
        users
            .entry(user)
            .or_insert_with(|| RateLimiter::new(per_minute, now))
            .take(now)
            .map_err(|_| Refusal::UserRate)
    }
}

/// One agent's side of the bounds: its own emission rate, and the episode of refusals
/// it is in, so a refusing agent logs one line when it starts and one when it ends.
#[derive(Debug)]
pub struct AgentEmission {
    rate: RateLimiter,
    refusing: Option<(Refusal, u64)>,
}

impl AgentEmission {
    pub fn new(settings: &FanOutSettings) -> AgentEmission {
        AgentEmission {
            rate: RateLimiter::new(settings.agent_events_per_minute, Instant::now()),
            refusing: None,
        }
    }

    /// Keeps the emitted events the bounds allow, in order; logs why others were not.
    pub fn admit(
        &mut self,
        fan: &FanOut,
        user_id: i64,
        emitted: Vec<(Value, Lineage)>,
        logs: &mut Vec<NewLog>,
    ) -> Vec<(Value, Lineage)> {
        let mut kept = Vec::with_capacity(emitted.len());
        let now = Instant::now();
        for (payload, lineage) in emitted {
            let verdict = lineage
                .root
                .map_or(Ok(()), |root| fan.charge_root(root))
                .and_then(|()| self.rate.take(now).map_err(|_| Refusal::AgentRate))
                .and_then(|()| fan.charge_user(user_id, now));
            match verdict {
                Ok(()) => {
                    if let Some((first, n)) = self.refusing.take() {
                        logs.push(log(LEVEL_INFO, ended(first, n)));
                    }
                    kept.push((payload, lineage));
                }
                Err(refusal) => {
                    metrics::emission_refused(refusal.reason());
                    self.refuse(refusal, fan, logs);
                }
            }
        }
        kept
    }

    fn refuse(&mut self, refusal: Refusal, fan: &FanOut, logs: &mut Vec<NewLog>) {
        let s = fan.settings;
        match refusal {
            Refusal::Budget { root, first } => {
                if first {
                    logs.push(log(LEVEL_ERROR, format!(
                        "Stopped propagating event {root}: {} events already descend from it (agents.max_events_per_root); the rest are dropped. Is there a link cycle with fan-out?",
                        s.max_events_per_root
                    )));
                }
            }
            Refusal::AgentRate | Refusal::UserRate => match &mut self.refusing {
                Some((_, n)) => *n += 1,
                None => {
                    let (who, limit, knob) = if refusal == Refusal::AgentRate {
                        (
                            "this agent",
                            s.agent_events_per_minute,
                            "agents.max_events_per_agent_per_minute",
                        )
                    } else {
                        (
                            "this user's agents",
                            s.user_events_per_minute,
                            "agents.max_events_per_user_per_minute",
                        )
                    };
                    logs.push(log(LEVEL_ERROR, format!(
                        "Emitting too fast: {who} may emit {limit} events per minute ({knob}); events over it are dropped until the rate falls"
                    )));
                    self.refusing = Some((refusal, 1));
                }
            },
        }
    }
}

fn ended(first: Refusal, n: u64) -> String {
    let what = if first == Refusal::AgentRate {
        "agent"
    } else {
        "user"
    };
    format!("Emitting again: {n} events were dropped by the {what} emission rate limit")
}

fn log(level: i32, message: String) -> NewLog {
    NewLog {
        level,
        message,
        inbound_event_id: None,
    }
}

fn forget_oldest_half(roots: &mut HashMap<EventId, Root>) {
    let mut ids: Vec<EventId> = roots.keys().copied().collect();
    ids.sort_unstable();
    if let Some(&cut) = ids.get(ids.len() / 2) {
        roots.retain(|id, _| *id >= cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fan(budget: u64, per_minute: u32) -> FanOut {
        FanOut::new(FanOutSettings {
            max_events_per_root: budget,
            agent_events_per_minute: per_minute,
            user_events_per_minute: per_minute,
        })
    }

    #[test]
    fn a_root_spends_its_budget_once_and_reports_once() {
        let f = fan(3, 0);
        for _ in 0..3 {
            assert_eq!(f.charge_root(EventId(9)), Ok(()));
        }
        assert_eq!(
            f.charge_root(EventId(9)),
            Err(Refusal::Budget {
                root: EventId(9),
                first: true
            })
        );
        assert_eq!(
            f.charge_root(EventId(9)),
            Err(Refusal::Budget {
                root: EventId(9),
                first: false
            })
        );
        assert_eq!(
            f.charge_root(EventId(10)),
            Ok(()),
            "another root has its own budget"
        );
    }

    #[test]
    fn a_seeded_root_resumes_where_the_database_says() {
        let f = fan(5, 0);
        f.seed(EventId(4), 5);
        assert!(f.knows(EventId(4)));
        assert!(matches!(
            f.charge_root(EventId(4)),
            Err(Refusal::Budget { .. })
        ));
    }

    #[test]
    fn the_user_rate_is_a_token_bucket() {
        let f = fan(10, 2);
        let now = Instant::now();
        assert_eq!(f.charge_user(1, now), Ok(()));
        assert_eq!(f.charge_user(1, now), Ok(()));
        assert_eq!(f.charge_user(1, now), Err(Refusal::UserRate));
        assert_eq!(f.charge_user(2, now), Ok(()), "per user");
        assert_eq!(fan(10, 0).charge_user(1, now), Ok(()), "0 is no limit");
    }

    #[test]
    fn the_roots_map_stays_bounded() {
        let f = fan(1, 0);
        for root in 0..(MAX_ROOTS as i64 + 10) {
            let _ = f.charge_root(EventId(root));
        }
        assert!(f.roots.lock().unwrap().len() <= MAX_ROOTS);
    }
}
