//! Closing a subscription's circuit by hand (`POST /api/webhooks/outgoing/{id}/reset-circuit`):
//! the live breaker is closed first, then the stored circuit is written through the
//! Writer. The write is queued from inside the actor, after every attempt outcome it
//! queued before, so an older outcome cannot land after it and reopen the stored state.

use actix::prelude::*;
use serde_json::json;

use super::SubscriptionActor;
use crate::event_types::CIRCUIT_CLOSED;
use crate::store::StoreError;
use crate::store::subscriptions;
use crate::store::system_events;

/// Closes the circuit and forgets the failures counted so far. Answers whether the
/// circuit was open (or half-open); closing a closed circuit changes nothing but the
/// failure count, and emits no event.
#[derive(Message)]
#[rtype(result = "Result<bool, StoreError>")]
pub struct ResetCircuit;

impl Handler<ResetCircuit> for SubscriptionActor {
    type Result = ResponseFuture<Result<bool, StoreError>>;

    fn handle(&mut self, _: ResetCircuit, ctx: &mut Context<Self>) -> Self::Result {
        let was_open = self.breaker.reset();
        if was_open {
            crate::delivery::signals::circuit(
                crate::delivery::breaker::Transition::Closed,
                self.spec.id,
                &self.spec.url,
                0,
            );
        }
        self.opened_at = None;
        // Written below; until then (or if that fails) the next outcome writes it too.
        self.saved_circuit = None;
        self.publish();
        let (id, user_id, url) = (self.spec.id, self.spec.user_id, self.spec.url.clone());
        let write = self.store.writer().write_repeatable(move |c, out| {
            subscriptions::save_circuit(c, id, subscriptions::CircuitState::Closed, None, 0)?;
            if was_open {
                system_events::record(
                    c,
                    out,
                    user_id,
                    CIRCUIT_CLOSED,
                    json!({"webhook_id": id, "url": url, "reset_by_hand": true}),
                )?;
            }
            Ok(was_open)
        });
        // What waited behind the open circuit goes now.
        self.backlog = true;
        self.refill(ctx);
        self.pump(ctx);
        Box::pin(write)
    }
}
