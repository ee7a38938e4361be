//! Steps many tests take through the API, written once: each asserts the status the
//! step must answer (naming the body when it does not), so a test reads as the steps
//! a user takes and a changed answer fails in one place.

use serde_json::Value;

use super::TestHub;

impl TestHub {
    /// Sends `payload` as JSON to webhook agent `agent` (secret `s`, as
    /// [`TestHub::add_webhook_agent`] makes it) of `token`'s user; asserts the 201.
    pub async fn send_to_webhook(&self, token: &str, agent: i64, payload: &Value) {
        let me = self.get("/api/me", token).await.json();
        let path = format!("/users/{}/web_requests/{agent}/s", me["id"]);
        let r = self.post_json(&path, token, payload).await;
        assert_eq!(
            r.status,
            201,
            "sending to webhook agent {agent}: {}",
            r.text()
        );
    }
}
