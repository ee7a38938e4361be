//! A test send (`POST /api/webhooks/outgoing/{id}/test`): a `test.webhook` event built
//! and signed by the same builder as every delivery, sent at once outside the queue,
//! breaker and rate limit, and not recorded.

use actix::prelude::*;
use serde_json::json;

use super::SubscriptionActor;
use crate::delivery::error::SendError;
use crate::delivery::request;
use crate::event_types::TEST_WEBHOOK;
use crate::store::deliveries;

/// What `POST /api/webhooks/outgoing/{id}/test` answers.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TestOutcome {
    pub success: bool,
    #[schema(required = true)]
    pub status: Option<u16>,
    #[schema(required = true)]
    pub body: Option<String>,
    #[schema(required = true)]
    pub error: Option<String>,
    pub latency_ms: u64,
    pub message_id: String,
}

/// Sends a `test.webhook` event now, outside the queue, breaker and rate limit. Its
/// `data` is the caller's `test_payload` when one was given.
#[derive(Message, Default)]
#[rtype(result = "TestOutcome")]
pub struct SendTest {
    pub data: Option<serde_json::Value>,
}

impl Handler<SendTest> for SubscriptionActor {
    type Result = ResponseFuture<TestOutcome>;

    fn handle(&mut self, msg: SendTest, _: &mut Context<Self>) -> Self::Result {
        let spec = self.spec.clone();
        let data = msg
            .data
            .unwrap_or_else(|| json!({"message": "This is a test webhook from muninn."}));
        let allow_private = self.settings.allow_private_targets;
        Box::pin(async move {
            let message_id = deliveries::new_message_id();
            let at = chrono::Utc::now();
            let env = json!({
                "id": message_id, "event_id": null, "event_type": TEST_WEBHOOK,
                "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "webhook_id": spec.id, "user_id": spec.user_id, "agent_id": null,
                "data": data,
            });
            let req = match request::signed(&spec, &message_id, TEST_WEBHOOK, &env, at) {
                Ok(req) => req,
                Err(unbuilt) => {
                    // A test send has always said the template's or the secrets' own
                    // words, without the attempt log's prefix.
                    let error = match unbuilt.error {
                        SendError::Template(e) | SendError::Signing(e) => e,
                        other => other.to_string(),
                    };
                    return TestOutcome {
                        success: false,
                        status: None,
                        body: None,
                        error: Some(error),
                        latency_ms: 0,
                        message_id,
                    };
                }
            };
            let (_, sent) = request::call(Ok(req), spec.timeout, allow_private).await;
            TestOutcome {
                success: sent.status.is_some_and(|s| (200..300).contains(&s)),
                status: sent.status,
                body: sent.excerpt,
                error: sent.error.map(|e| e.to_string()),
                latency_ms: sent.duration.as_millis() as u64,
                message_id,
            }
        })
    }
}
