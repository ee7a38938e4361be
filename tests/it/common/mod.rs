//! Shared helpers of the integration tests: `TestHub` starts the real server on
//! 127.0.0.1:0 with a temporary data dir; `Resp` is what a client saw.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod api;
pub mod imap;
pub mod load;
pub mod postgres;
pub mod process;
pub mod sink;
pub mod smtp;
pub mod xmpp;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use awc::http::Method;
use serde_json::Value;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

/// What the client received.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct TestHub {
    pub base: String,
    pub dir: tempfile::TempDir,
    client: awc::Client,
    /// The cluster the hub's database is on, when it runs on PostgreSQL; stopped
    /// when the hub is dropped.
    pub pg: Option<postgres::PgCluster>,
    /// Stops the hub's thread when the TestHub drops: the tests share one process, and
    /// a hub left running would keep its threads, timers and files to the end of it.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `MUNINN_TEST_BACKEND=postgres` runs every TestHub on a throwaway PostgreSQL cluster
/// instead of SQLite, so the integration suite can be run against both.
pub const BACKEND_ENV: &str = "MUNINN_TEST_BACKEND";

/// The tests' HTTP client. A pooled connection is reused only while it has been idle
/// under 2 s, well inside the server's keep-alive (actix-web's 5 s): one idle for about
/// 5 s races the server closing it, and the request written into the closing
/// connection fails with "connector has been disconnected" (under load, a test's own
/// work between two requests, such as parsing a large feed, takes that long).
pub fn client() -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().conn_keep_alive(Duration::from_secs(2)))
        .timeout(Duration::from_secs(20))
        .disable_redirects()
        .finish()
}

impl TestHub {
    /// Starts a hub with the default configuration plus `tweak`; on PostgreSQL when
    /// [`BACKEND_ENV`] says so.
    pub async fn start_with(tweak: impl FnOnce(&mut muninn::Config)) -> TestHub {
        let pg = (std::env::var(BACKEND_ENV).as_deref() == Ok("postgres")).then(|| {
            postgres::PgCluster::start().unwrap_or_else(|| {
                panic!("{BACKEND_ENV}=postgres, but PostgreSQL could not be started")
            })
        });
        Self::start_on(pg, tweak).await
    }

    /// Starts a hub on a database in `pg` (SQLite in the temp dir when `None`).
    pub async fn start_on(
        pg: Option<postgres::PgCluster>,
        tweak: impl FnOnce(&mut muninn::Config),
    ) -> TestHub {
        let dir = tempfile::tempdir().unwrap();
        let mut config = muninn::Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        config.admin_token = Some(ADMIN_TOKEN.to_string());
        config.server.workers = 2;
        if let Some(pg) = &pg {
            config.storage.database_url = pg.create_database("hub");
        }
        tweak(&mut config);
        // The sandboxed workers (jq, shell_command, JavaScript) are the built programs,
        // for every hub of this one test process, before any of them can run one: the
        // default, the process's own executable, is this test harness, which started
        // as `it jq-worker ...` would run the suite's own tests named like its
        // arguments (a "4" matches dozens) instead of the filter.
        muninn::sandbox::set_worker_program(env!("CARGO_BIN_EXE_muninn"));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let system = actix::System::new();
            let outcome = system.block_on(async move {
                tokio::select! {
                    outcome = muninn::run(config, listener) => outcome,
                    // Dropping the server stops its workers and closes the listener.
                    _ = stopped => Ok(()),
                }
            });
            if let Err(e) = outcome {
                eprintln!("test hub stopped: {e}");
            }
            // The actors' arbiters stop with the system; `run` returns once it has.
            actix::System::current().stop();
            let _ = system.run();
        });
        let hub = TestHub {
            base,
            dir,
            pg,
            stop: Some(stop),
            client: client(),
        };
        hub.wait_healthy().await;
        hub
    }

    pub async fn start() -> TestHub {
        Self::start_with(|_| {}).await
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = self
                .client
                .get(format!("{}/healthz", self.base))
                .send()
                .await
                && r.status().as_u16() == 200
            {
                return;
            }
            assert!(Instant::now() < deadline, "hub did not become healthy");
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a request; `token` adds `Authorization: Bearer`.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.insert_header(("Authorization", format!("Bearer {t}")));
        }
        for (n, v) in headers {
            req = req.insert_header((*n, *v));
        }
        let mut resp = match body {
            Some(b) => req.send_body(b).await,
            None => req.send().await,
        }
        .unwrap_or_else(|e| panic!("request to {path} failed: {e}"));
        let body = resp.body().limit(64 * 1024 * 1024).await.unwrap().to_vec();
        Resp {
            status: resp.status().as_u16(),
            headers: resp
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.request("GET", path, Some(token), &[], None).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.request("DELETE", path, Some(token), &[], None).await
    }

    pub async fn send_json(&self, method: &str, path: &str, token: &str, body: &Value) -> Resp {
        self.request(
            method,
            path,
            Some(token),
            &[("content-type", "application/json")],
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.send_json("POST", path, token, body).await
    }

    /// Creates a user through the admin API; returns (id, token).
    pub async fn add_user(&self, name: &str) -> (i64, String) {
        let r = self
            .post_json(
                "/api/users",
                ADMIN_TOKEN,
                &serde_json::json!({"name": name}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let j = r.json();
        (
            j["id"].as_i64().unwrap(),
            j["token"].as_str().unwrap().to_string(),
        )
    }

    /// Creates an agent; returns its JSON.
    pub async fn add_agent(&self, token: &str, body: Value) -> Value {
        let r = self.post_json("/api/agents", token, &body).await;
        assert_eq!(r.status, 201, "creating agent {body}: {}", r.text());
        r.json()
    }

    /// Creates the usual entry point: a webhook agent named `in` with secret `s`;
    /// returns its id.
    pub async fn add_webhook_agent(&self, token: &str) -> i64 {
        self.add_agent(
            token,
            serde_json::json!({"type": "webhook", "name": "in", "options": {"secret": "s"}}),
        )
        .await["id"]
            .as_i64()
            .unwrap()
    }

    /// Payloads of an agent's events, oldest first.
    pub async fn payloads(&self, token: &str, agent_id: i64) -> Vec<Value> {
        let r = self
            .get(&format!("/api/agents/{agent_id}/events?limit=1000"), token)
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["payload"].clone())
            .collect()
    }

    /// Waits (bounded) until the agent's payloads equal `want`; returns what was seen last.
    pub async fn wait_payloads(&self, token: &str, agent_id: i64, want: &[Value]) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.payloads(token, agent_id).await;
            if got == want || Instant::now() > deadline {
                return got;
            }
            actix_rt::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// True when `actual` has everything `expected` has: objects by key (recursively),
/// arrays element by element with the same length, other values equal.
impl TestHub {
    /// Waits (bounded) until agent `id` has logged a line containing `text` at least
    /// `times` times; panics with the log when it has not.
    pub async fn wait_log(&self, token: &str, id: i64, text: &str, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let logs = self
                .get(&format!("/api/agents/{id}/logs"), token)
                .await
                .json();
            let n = logs
                .as_array()
                .unwrap()
                .iter()
                .filter(|l| l["message"].as_str().unwrap_or("").contains(text))
                .count();
            if n >= times {
                return;
            }
            assert!(Instant::now() < deadline, "no log {text:?}: {logs}");
            actix_rt::time::sleep(Duration::from_millis(30)).await;
        }
    }
}

pub fn json_contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, ev)| a.get(k).is_some_and(|av| json_contains(av, ev))),
        (Value::Array(a), Value::Array(e)) => {
            a.len() == e.len() && a.iter().zip(e).all(|(x, y)| json_contains(x, y))
        }
        (a, e) => a == e,
    }
}
