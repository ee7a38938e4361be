//! What the subscription workflows ask of a subscription's running actor: a test send
//! and closing the circuit by hand. With several nodes (PostgreSQL) the actor runs on
//! the node that holds the subscription's lease; asked on another node, the ask is
//! carried there (`hub::forward`) and [`on_actor`] runs it, its answer as JSON.

use actix::Addr;
use serde_json::Value;

use super::error::SubscriptionError;
use crate::delivery::ResetCircuit;
use crate::delivery::actor::{SendTest, SubscriptionActor};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ActorAsk {
    /// A test send; answers a `TestOutcome`.
    Test { data: Option<Value> },
    /// Close the circuit; answers whether it was open.
    ResetCircuit,
}

/// Carries out `ask` on this node's actor of the subscription; the answer as JSON.
pub async fn on_actor(
    addr: &Addr<SubscriptionActor>,
    ask: ActorAsk,
) -> Result<Value, SubscriptionError> {
    let answer = match ask {
        ActorAsk::Test { data } => serde_json::to_value(addr.send(SendTest { data }).await?),
        ActorAsk::ResetCircuit => serde_json::to_value(addr.send(ResetCircuit).await??),
    };
    // Both are plain data: serialising them cannot fail.
    answer.map_err(|e| SubscriptionError::Invalid(e.to_string()))
}
