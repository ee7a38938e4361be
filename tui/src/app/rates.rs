//! The agents' events per minute (the Graph's rates), from their event counts a
//! minute apart.

use crate::api::Agent;
use crate::app::App;

impl App {
    /// Keeps the agents' event counts of the last minute and derives their rates.
    pub(super) fn sample_rates(&mut self, agents: &[Agent]) {
        const WINDOW_SECONDS: i64 = 60;
        let counts: Vec<(i64, i64)> = agents.iter().map(|a| (a.id, a.events_count)).collect();
        self.agent_samples.push_back((self.now, counts));
        // Keep one sample older than the window to measure across all of it.
        while self.agent_samples.len() > 2
            && self
                .agent_samples
                .get(1)
                .is_some_and(|(t, _)| (self.now - *t).num_seconds() >= WINDOW_SECONDS)
        {
            self.agent_samples.pop_front();
        }
        // Bounded even if the clock stands still.
        while self.agent_samples.len() > 600 {
            self.agent_samples.pop_front();
        }
        self.agent_rates.clear();
        let (Some((t0, first)), Some((t1, last))) =
            (self.agent_samples.front(), self.agent_samples.back())
        else {
            return;
        };
        let secs = (*t1 - *t0).num_milliseconds() as f64 / 1000.0;
        if secs < 1.0 {
            return;
        }
        for (id, n) in last {
            if let Some((_, m)) = first.iter().find(|(i, _)| i == id) {
                self.agent_rates
                    .insert(*id, ((n - m).max(0) as f64) * 60.0 / secs);
            }
        }
    }
}
