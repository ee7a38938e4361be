//! Runs the real `muninn` binary, for tests that kill and restart it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct HubProcess {
    pub child: Child,
    pub base: String,
    /// The hub's log lines so far (the first 100 000).
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// Log lines a [`HubProcess`] keeps for the test to read.
const LOG_KEEP: usize = 100_000;

impl HubProcess {
    /// Starts `muninn serve` on 127.0.0.1:0 with `data_dir` and waits for its
    /// "listening" log line to learn the port. `envs` are added to the environment.
    pub fn start(data_dir: &Path, envs: &[(&str, &str)]) -> HubProcess {
        Self::start_args(data_dir, &[], envs)
    }

    /// Like [`HubProcess::start`], with more arguments to `serve` (`--safe`, `--init`).
    pub fn start_args(data_dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> HubProcess {
        Self::spawn(serve_command(data_dir, args, None), envs)
    }

    /// Like [`HubProcess::start`], run by `sh` after `umask <mask>`.
    pub fn start_with_umask(data_dir: &Path, mask: &str, envs: &[(&str, &str)]) -> HubProcess {
        Self::spawn(serve_command(data_dir, &[], Some(mask)), envs)
    }

    fn spawn(mut cmd: Command, envs: &[(&str, &str)]) -> HubProcess {
        cmd.env_remove("RUST_LOG")
            .env_remove("MUNINN_ADMIN_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start muninn");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        // MUNINN_TEST_ECHO=1 copies the hub's log to the test's stderr (for debugging).
        let echo = std::env::var_os("MUNINN_TEST_ECHO").is_some();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if echo {
                    eprintln!("{line}");
                }
                {
                    let mut kept = kept.lock().unwrap();
                    if kept.len() < LOG_KEEP {
                        kept.push(line.clone());
                    }
                }
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["fields"]["message"] == "muninn is listening"
                    && let Some(addr) = v["fields"]["address"].as_str()
                {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("muninn did not report its address within 30 s");
        HubProcess {
            child,
            base: format!("http://{addr}"),
            log,
        }
    }

    /// The hub's log lines so far, whole (every field, not only the message).
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The messages of the hub's JSON log lines so far.
    pub fn log_messages(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["fields"]["message"].as_str().map(str::to_string))
            .collect()
    }

    /// The hub's JSON log lines so far, whole (level, target, fields).
    pub fn log_json(&self) -> Vec<serde_json::Value> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .collect()
    }

    /// Waits (bounded, 15 s) for a log line whose `fields.signal` is `signal`.
    pub fn wait_signal(&self, signal: &str) -> serde_json::Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(v) = self
                .log_json()
                .into_iter()
                .find(|v| v["fields"]["signal"] == signal)
            {
                return v;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {signal} log line within 15 s: {:?}",
                self.log_messages()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends a signal by name ("TERM", "INT", "KILL") with kill(1), so the tests need
    /// no unsafe code.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {name} failed");
    }

    /// Waits (bounded) for the process to exit and returns its status.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "muninn did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// `muninn serve --bind 127.0.0.1:0 --log-format json --data-dir <dir> <args>`, run
/// through `sh -c "umask <mask>; exec ..."` when `umask` is given.
pub fn serve_command(data_dir: &Path, args: &[&str], umask: Option<&str>) -> Command {
    let bin = env!("CARGO_BIN_EXE_muninn");
    let mut cmd = match umask {
        Some(mask) => {
            let mut c = Command::new("sh");
            c.args(["-c", &format!("umask {mask} && exec \"$0\" \"$@\""), bin]);
            c
        }
        None => Command::new(bin),
    };
    cmd.args([
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--data-dir",
    ])
    .arg(data_dir)
    .args(args);
    cmd
}

/// Runs `muninn serve` expecting it to refuse to start: waits (bounded) for it to exit
/// and returns its status and what it wrote to stderr.
pub fn serve_refused(
    data_dir: &Path,
    args: &[&str],
    within: Duration,
) -> (std::process::ExitStatus, String) {
    let mut cmd = serve_command(data_dir, args, None);
    cmd.env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start muninn");
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            return (status, err);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "muninn serve did not exit within {within:?}: it started when it should have refused"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking-free HTTP client for these tests (see [`super::client`] for its pool).
pub fn client() -> awc::Client {
    super::client()
}

/// Sets up the load tests' pipeline on a hub started by [`HubProcess`]: a webhook agent
/// (secret `s`) whose events a subscription sends to `sink_url`. Answers the agent's
/// Huginn URL.
pub async fn webhook_to_sink(base: &str, token: &str, sink_url: &str) -> String {
    let (status, agent) = api(
        base,
        token,
        "POST",
        "/api/agents",
        Some(serde_json::json!({"type": "webhook", "name": "in", "options": {"secret": "s"}})),
    )
    .await;
    assert_eq!(status, 201, "{agent}");
    let (status, sub) = api(
        base,
        token,
        "POST",
        "/api/webhooks/outgoing",
        Some(serde_json::json!({"url": sink_url, "event_types": ["event.created"]})),
    )
    .await;
    assert_eq!(status, 201, "{sub}");
    format!("{base}/users/1/web_requests/{}/s", agent["id"])
}

/// One API call to a hub started by [`HubProcess`], as `token`; the body as JSON
/// (`Null` when it is not JSON).
pub async fn api(
    base: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let c = client();
    let req = c
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .insert_header(("Authorization", format!("Bearer {token}")));
    let mut resp = match body {
        Some(b) => req.send_json(&b).await,
        None => req.send().await,
    }
    .unwrap();
    let bytes = resp.body().await.unwrap();
    (
        resp.status().as_u16(),
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// [`serve_refused`] with `envs` added to the environment (a database URL, a node id).
pub fn serve_refused_with(
    data_dir: &Path,
    envs: &[(&str, &str)],
    within: Duration,
) -> (std::process::ExitStatus, String) {
    let mut cmd = serve_command(data_dir, &[], None);
    cmd.env_remove("RUST_LOG")
        .env_remove("MUNINN_ADMIN_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start muninn");
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            return (status, err);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "muninn serve did not exit within {within:?}: it started when it should have refused"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
