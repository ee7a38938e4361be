//! The insecure agent type (shell_command) through the real server: refused while
//! `[insecure_agents]` is off (a save is a 422, an import keeps it disabled, an agent
//! stored while they were on is disabled at the next start with a log line), and when
//! on, Huginn's spec cases and hostile commands (a busy loop, a flood of output, a
//! memory bomb, background processes), each ending with a clear log line while the hub
//! keeps answering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::process::{HubProcess, api};
use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

async fn enabled_hub() -> TestHub {
    TestHub::start_with(|c| {
        c.insecure_agents.enabled = true;
        c.insecure_agents.timeout_seconds = 3;
        c.insecure_agents.max_output_bytes = 64 * 1024;
        c.insecure_agents.memory_mb = 256;
    })
    .await
}

fn shell(name: &str, options: Value) -> Value {
    json!({"type": "shell_command", "name": name, "options": options})
}

async fn id_of(hub: &TestHub, body: Value) -> i64 {
    hub.add_agent(ADMIN_TOKEN, body).await["id"]
        .as_i64()
        .unwrap()
}

async fn run(hub: &TestHub, id: i64) {
    let r = hub
        .post_json(&format!("/api/agents/{id}/run"), ADMIN_TOKEN, &json!({}))
        .await;
    assert!(r.status < 300, "{} {}", r.status, r.text());
}

/// Waits (bounded) until one of the agent's log messages contains `needle`.
async fn wait_log(hub: &TestHub, agent: i64, needle: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let logs = hub
            .get(&format!("/api/agents/{agent}/logs"), ADMIN_TOKEN)
            .await
            .json();
        let logs = logs.as_array().cloned().unwrap_or_default();
        if logs
            .iter()
            .any(|l| l["message"].as_str().unwrap_or("").contains(needle))
        {
            return logs;
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {needle:?}: {logs:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (bounded) for an event of the agent whose payload has everything `want` has.
async fn wait_event(hub: &TestHub, agent: i64, want: Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = hub.payloads(ADMIN_TOKEN, agent).await;
        if let Some(p) = got.iter().find(|p| common::json_contains(p, &want)) {
            return p.clone();
        }
        assert!(Instant::now() < deadline, "no event like {want}: {got:?}");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

fn message(r: &common::Resp) -> String {
    r.text()
}

#[actix_rt::test]
async fn while_off_a_save_and_a_dry_run_are_refused_and_an_import_keeps_them_disabled() {
    let hub = TestHub::start().await;
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &shell(
                "s",
                json!({"path": "/", "command": "pwd", "expected_update_period_in_days": 1}),
            ),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        message(&r).contains("[insecure_agents] enabled = true")
            && message(&r).contains("MUNINN_INSECURE_AGENTS_ENABLED=true"),
        "{}",
        r.text()
    );
    let r = hub
        .post_json(
            "/api/agents/dry_run",
            ADMIN_TOKEN,
            &json!({"type": "Agents::ShellCommandAgent",
                    "options": {"path": "/", "command": "pwd", "expected_update_period_in_days": 1}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());

    let file = json!({
        "schema_version": 1, "name": "cmds", "guid": "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0",
        "agents": [{"type": "Agents::ShellCommandAgent", "name": "Lister", "guid": "f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1",
                    "options": {"path": "/", "command": "ls", "expected_update_period_in_days": "1"},
                    "schedule": "never", "propagate_immediately": false}],
        "links": [], "control_links": []
    });
    let r = hub
        .post_json("/api/scenarios/import", ADMIN_TOKEN, &file)
        .await;
    assert!(r.status < 300, "{}", r.text());
    let result: Value = r.json();
    let problem = result["problems"][0]["problem"]
        .as_str()
        .unwrap_or_default();
    assert!(
        problem.contains("[insecure_agents] enabled = true"),
        "{result}"
    );
    let agents = hub.get("/api/agents", ADMIN_TOKEN).await.json();
    let lister = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Lister")
        .expect("the agent was created");
    assert_eq!(lister["disabled"], true, "{lister}");
    // Enabling it is refused as creating one is.
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/agents/{}", lister["id"]),
            ADMIN_TOKEN,
            &json!({"disabled": false}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
}

#[actix_rt::test]
async fn runs_a_command_line_and_an_argument_array_as_huginn() {
    let hub = enabled_hub().await;
    let s = id_of(
        &hub,
        shell(
            "line",
            json!({"path": "/", "command": "pwd; echo 'warning!' >&2", "expected_update_period_in_days": "1"}),
        ),
    )
    .await;
    run(&hub, s).await;
    let got = wait_event(&hub, s, json!({"output": "/"})).await;
    assert_eq!(
        got,
        json!({"command": "pwd; echo 'warning!' >&2", "path": "/", "exit_status": 0,
               "errors": "warning!", "output": "/"})
    );

    // Received events interpolate every option; an array runs without a shell; stdin is fed.
    let m = id_of(&hub, json!({"type": "manual_event", "name": "m"})).await;
    let a = id_of(
        &hub,
        json!({"type": "Agents::ShellCommandAgent", "name": "array", "source_ids": [m], "options": {
            "path": "{{ dir }}",
            "command": ["sh", "-c", "read x; echo \"hello, $x.\"; echo $MUNINN_ADMIN_TOKEN; exit 4", "{{ cmd }}"],
            "stdin": "{{ name }}",
            "expected_update_period_in_days": 1}}),
    )
    .await;
    let r = hub
        .post_json(
            &format!("/api/agents/{m}/events"),
            ADMIN_TOKEN,
            &json!({"name": "Huginn", "cmd": "ls", "dir": "/tmp"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let got = wait_event(&hub, a, json!({"path": "/tmp"})).await;
    assert_eq!(
        got["output"], "hello, Huginn.",
        "the hub's environment is not passed on"
    );
    assert_eq!(got["exit_status"], 4);
    assert_eq!(got["command"][3], "ls");

    // A directory that does not exist: Huginn's error in the event, no exit status.
    let r = hub
        .post_json(
            &format!("/api/agents/{m}/events"),
            ADMIN_TOKEN,
            &json!({"name": "x", "cmd": "ls", "dir": "/no/such/dir"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let got = wait_event(&hub, a, json!({"path": "/no/such/dir"})).await;
    assert_eq!(got["exit_status"], Value::Null, "{got}");
    assert!(
        got["errors"].as_str().unwrap().contains("/no/such/dir"),
        "{got}"
    );
}

#[actix_rt::test]
async fn suppress_on_failure_and_on_empty_output() {
    let hub = enabled_hub().await;
    let case = |name: &str, command: &str, option: &str| {
        shell(
            name,
            json!({"path": "/", "command": command, "expected_update_period_in_days": 1, option: true}),
        )
    };
    let failing = id_of(
        &hub,
        case("f", "echo failed; exit 1", "suppress_on_failure"),
    )
    .await;
    let empty = id_of(&hub, case("e", "true", "suppress_on_empty_output")).await;
    let kept = id_of(
        &hub,
        case("k", "echo failed; exit 1", "suppress_on_empty_output"),
    )
    .await;
    for id in [failing, empty, kept] {
        run(&hub, id).await;
    }
    wait_event(&hub, kept, json!({"exit_status": 1, "output": "failed"})).await;
    wait_log(&hub, failing, "Ran 'echo failed; exit 1' under '/'").await;
    wait_log(&hub, empty, "Ran 'true' under '/'").await;
    assert!(hub.payloads(ADMIN_TOKEN, failing).await.is_empty());
    assert!(hub.payloads(ADMIN_TOKEN, empty).await.is_empty());
}

#[actix_rt::test]
async fn hostile_commands_end_with_a_clear_error_and_the_hub_keeps_answering() {
    let hub = enabled_hub().await;
    let cases = [
        ("loop", "while :; do :; done", "did not finish within 3 s"),
        ("flood", "yes", "wrote more than 65536 bytes of output"),
        // Background processes holding the output: killed with the whole group.
        (
            "background",
            "sleep 987654 & sleep 987654 & echo started",
            "did not finish within 3 s",
        ),
    ];
    let mut ids = Vec::new();
    for (name, command, _) in cases {
        let id = id_of(
            &hub,
            shell(
                name,
                json!({"path": "/", "command": command, "expected_update_period_in_days": 1}),
            ),
        )
        .await;
        run(&hub, id).await;
        ids.push(id);
    }
    for ((_, _, needle), id) in cases.iter().zip(&ids) {
        wait_log(&hub, *id, needle).await;
        assert!(hub.payloads(ADMIN_TOKEN, *id).await.is_empty());
    }
    // Nothing the background case started is left running.
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("987654"))
        .collect();
    assert!(left.is_empty(), "left running: {left:?}");

    // A memory bomb: the allocation fails at the limit, the command reports it.
    let bomb = id_of(
        &hub,
        shell(
            "bomb",
            json!({"path": "/", "command": "awk 'BEGIN { s = \"x\"; while (1) s = s s }'",
                   "expected_update_period_in_days": 1}),
        ),
    )
    .await;
    run(&hub, bomb).await;
    let got = wait_event(&hub, bomb, json!({"output": ""})).await;
    assert_ne!(got["exit_status"], 0, "{got}");
    assert!(got["errors"].as_str().unwrap().contains("memory"), "{got}");
    assert_eq!(hub.get("/api/agents", ADMIN_TOKEN).await.status, 200);
}

#[actix_rt::test]
async fn an_agent_saved_while_enabled_is_disabled_at_a_start_where_they_are_off() {
    const TOKEN: &str = "insecure-admin-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let on = [
        ("MUNINN_ADMIN_TOKEN", TOKEN),
        ("MUNINN_INSECURE_AGENTS_ENABLED", "true"),
    ];
    let hub = HubProcess::start(dir.path(), &on);
    let (status, agent) = api(
        &hub.base,
        TOKEN,
        "POST",
        "/api/agents",
        Some(shell(
            "s",
            json!({"path": "/", "command": "echo hi", "expected_update_period_in_days": 1}),
        )),
    )
    .await;
    assert_eq!(status, 201, "{agent}");
    let id = agent["id"].as_i64().unwrap();
    hub.kill();

    let hub = HubProcess::start(dir.path(), &[("MUNINN_ADMIN_TOKEN", TOKEN)]);
    let (_, agent) = api(&hub.base, TOKEN, "GET", &format!("/api/agents/{id}"), None).await;
    assert_eq!(agent["disabled"], true, "{agent}");
    let (_, logs) = api(
        &hub.base,
        TOKEN,
        "GET",
        &format!("/api/agents/{id}/logs"),
        None,
    )
    .await;
    assert!(
        logs.as_array().unwrap().iter().any(|l| l["message"]
            .as_str()
            .unwrap_or("")
            .contains("Disabled at start: shell_command agents run commands on this host and are not enabled")),
        "{logs}"
    );
    // Running it now does nothing: it is disabled.
    let (status, body) = api(
        &hub.base,
        TOKEN,
        "POST",
        &format!("/api/agents/{id}/run"),
        None,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    hub.kill();
}
