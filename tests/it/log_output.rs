//! What the hub writes to a stdout that is not a terminal (journald, a file, a pipe).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn text_logs_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_muninn"))
        .args(["serve", "--bind", "127.0.0.1:0", "--log-format", "text"])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("RUST_LOG")
        .env_remove("MUNINN_ADMIN_TOKEN")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start muninn");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<Vec<String>>();
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let done = line.contains("muninn is listening");
            lines.push(line);
            if done {
                break;
            }
        }
        let _ = tx.send(lines);
    });
    let lines = rx.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    let lines = lines.expect("muninn did not log that it is listening within 30 s");
    assert!(
        lines.iter().any(|l| l.contains("INFO")),
        "text log lines name their level: {lines:?}"
    );
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "an escape code in {line:?}");
    }
}
