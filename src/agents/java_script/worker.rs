//! Runs a JavaScript agent's code in the sandbox's child process, the `muninn-js`
//! program beside `muninn` (js-worker/main.rs: why a program of its own is said there):
//! one JSON request on its standard input, one JSON answer on its standard output (as
//! the jq worker does). QuickJS is C: a fault in it, or an allocation the engine's own
//! limit did not catch, ends the child, never the hub.
//!
//! The bounds (see [`crate::sandbox`]): QuickJS's memory limit and interrupt handler act
//! first and report through the answer; the child's address space is the memory limit
//! plus room for the program itself, its CPU time and the parent's wall clock one and
//! two seconds past the timeout, so they only act when the engine's own bounds failed.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use super::protocol::{Answer, Request};
use crate::agents::insecure::Limits;
use crate::sandbox::{self, Ended};

/// The worker program, found beside the `muninn` program.
pub const PROGRAM: &str = "muninn-js";
/// What the worker is told it is (the sandbox's first argument).
const WORKER_ARG: &str = "js-worker";
/// Address space for the `muninn-js` program itself (a few MiB, and the C library's
/// allocator arenas), beyond the script's memory limit.
const PROGRAM_BYTES: u64 = 64 * 1024 * 1024;

/// Why a run gave no answer. Each is the agent's log line as it stands.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("{0}")]
    Request(serde_json::Error),
    #[error("JavaScript error: cannot start the JavaScript worker process: {0}")]
    Start(sandbox::StartError),
    #[error(
        "JavaScript error: the code did not finish within {0} s and was stopped ([insecure_agents] timeout_seconds)"
    )]
    TimedOut(u64),
    #[error(
        "JavaScript error: the code's events, log lines and memory are larger than {0} bytes and it was stopped ([insecure_agents] max_output_bytes)"
    )]
    TooMuchOutput(usize),
    /// The worker ended without an answer; `how` it ended, and what it said.
    #[error(
        "JavaScript error: the JavaScript worker stopped: {how} ([insecure_agents] memory_mb, timeout_seconds){}",
        said(.stderr)
    )]
    Stopped { how: String, stderr: String },
}

/// What the worker wrote to stderr, in parentheses after a space; nothing if nothing.
fn said(stderr: &str) -> String {
    match stderr.trim() {
        "" => String::new(),
        w => format!(" ({w})"),
    }
}

/// Runs `request` within `limits`. `Err`: the child was stopped by one of the
/// sandbox's bounds, with the message for the agent's log.
pub fn run(request: Request, limits: &Limits) -> Result<Answer, WorkerError> {
    let body = serde_json::to_vec(&request).map_err(WorkerError::Request)?;
    // Room for the answer: the script's events and logs (capped by the engine), the
    // memory it gives back (about what it was given) and the JSON around them.
    let answer_cap = limits
        .max_output_bytes
        .saturating_mul(2)
        .saturating_add(body.len())
        .saturating_add(1 << 20);
    let finished = sandbox::run(sandbox::Job {
        program: Some(PROGRAM),
        worker: WORKER_ARG,
        args: &[],
        env: &[],
        dir: None,
        stdin: body,
        limits: sandbox::Limits {
            timeout: limits.timeout + Duration::from_secs(2),
            cpu_seconds: limits.timeout.as_secs() + 1,
            memory_bytes: limits.memory_bytes.saturating_add(PROGRAM_BYTES),
            max_stdout_bytes: answer_cap,
            max_stderr_bytes: 4096,
        },
    })
    .map_err(WorkerError::Start)?;
    let status = match finished.ended {
        Ended::Exited(status) => status,
        Ended::TimedOut => return Err(WorkerError::TimedOut(limits.timeout.as_secs())),
        Ended::TooMuchOutput { .. } => return Err(WorkerError::TooMuchOutput(answer_cap)),
    };
    if let Ok(answer) = serde_json::from_slice::<Answer>(&finished.stdout) {
        return Ok(answer);
    }
    let how = match status.and_then(|s| s.signal()) {
        Some(24) => "it reached the CPU time limit".to_string(),
        Some(sig) => format!("it was ended by signal {sig}, often the memory limit"),
        None => format!(
            "it exited with {}",
            status.and_then(|s| s.code()).unwrap_or(-1)
        ),
    };
    Err(WorkerError::Stopped {
        how,
        stderr: String::from_utf8_lossy(&finished.stderr).into_owned(),
    })
}
