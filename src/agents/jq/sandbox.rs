//! The jq sandbox: every jq filter runs in a child process, `muninn jq-worker`.
//!
//! Why a process, and the bounds it runs within: see [`crate::sandbox`]. jaq (like jq)
//! has no step or memory budget and no way to interrupt an evaluation from outside —
//! `last(range(1e18))` is one call that never returns, `[repeat(1)]` or string doubling
//! grows until the allocator fails — so the sandbox's limits are the only ones. The
//! worker's empty environment means jq's `$ENV`/`env` see no secrets of the hub.

use std::io::{Read, Write};
use std::process::ExitStatus;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::engine;
use crate::sandbox::{self, Ended};

/// The hidden subcommand of the `muninn` binary that runs one filter.
pub const WORKER_ARG: &str = "jq-worker";
/// Wall-clock time one filter may take, including the worker's start.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// CPU seconds the worker may use (the kernel stops it at this limit).
const CPU_SECONDS: u64 = 4;
/// Address space the worker may map: the binary itself plus room for the filter's data.
const MEMORY_BYTES: u64 = 1024 * 1024 * 1024;
/// The largest request (filter, variables and input) and the largest answer.
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;
pub const MAX_OUTPUT_BYTES: usize = 16 * 1024 * 1024;
const MAX_STDERR_BYTES: usize = 4096;

/// Sets the program run as the worker (tests: the built `muninn` binary, since their
/// own executable is the test harness). The first call wins.
pub use crate::sandbox::set_worker_program;

const LIMITS: sandbox::Limits = sandbox::Limits {
    timeout: TIMEOUT,
    cpu_seconds: CPU_SECONDS,
    memory_bytes: MEMORY_BYTES,
    max_stdout_bytes: MAX_OUTPUT_BYTES,
    max_stderr_bytes: MAX_STDERR_BYTES,
};

#[derive(Serialize, Deserialize)]
struct Request {
    filter: String,
    vars: Vec<(String, Value)>,
    input: Value,
    max_outputs: usize,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Outputs { values: Vec<Value>, more: bool },
    Error(String),
}

/// Why a filter run gave no outputs.
#[derive(Debug, thiserror::Error)]
pub enum JqError {
    /// The filter itself failed (it does not compile, raised an error…), as the worker
    /// said it.
    #[error("{0}")]
    Filter(String),
    #[error("the event and variables are larger than {} MiB, the most jq is given", MAX_INPUT_BYTES >> 20)]
    InputTooLarge,
    #[error("{0}")]
    Request(serde_json::Error),
    #[error("cannot start the jq worker process: {0}")]
    Start(crate::sandbox::StartError),
    #[error("jq was stopped after {} s: the filter did not finish in time", TIMEOUT.as_secs())]
    TimedOut,
    #[error("jq was stopped: its output is larger than {} MiB", MAX_OUTPUT_BYTES >> 20)]
    TooMuchOutput,
    /// The worker ended without an answer: killed at a limit, most likely.
    #[error("{}", died(.status, .stderr))]
    Died {
        status: Option<ExitStatus>,
        stderr: String,
    },
}

impl From<engine::EngineError> for JqError {
    fn from(e: engine::EngineError) -> Self {
        JqError::Filter(e.to_string())
    }
}

/// What one run of a filter gave: its outputs (at most `max_outputs`) and whether it
/// produced more than that.
pub struct Outputs {
    pub values: Vec<Value>,
    pub more: bool,
}

/// Runs `filter` on `input` in a worker process, within the limits above.
pub fn run(
    filter: &str,
    vars: Vec<(String, Value)>,
    input: &Value,
    max_outputs: usize,
) -> Result<Outputs, JqError> {
    let request = Request {
        filter: filter.to_string(),
        vars,
        input: input.clone(),
        max_outputs,
    };
    let body = serde_json::to_vec(&request).map_err(JqError::Request)?;
    if body.len() > MAX_INPUT_BYTES {
        return Err(JqError::InputTooLarge);
    }
    // Unit tests have no `muninn` binary to start: they run the engine in-process
    // (tests/logic_agents.rs runs the real worker, hostile filters included).
    if cfg!(test) {
        return engine::run(
            &request.filter,
            &request.vars,
            &request.input,
            request.max_outputs,
        )
        .map(|(values, more)| Outputs { values, more })
        .map_err(JqError::from);
    }
    let finished = sandbox::run(sandbox::Job {
        program: None,
        worker: WORKER_ARG,
        args: &[],
        env: &[],
        dir: None,
        stdin: body,
        limits: LIMITS,
    })
    .map_err(JqError::Start)?;
    let (out, err) = (finished.stdout, finished.stderr);
    let status = match finished.ended {
        Ended::Exited(status) => status,
        Ended::TimedOut => return Err(JqError::TimedOut),
        Ended::TooMuchOutput { stdout: true } => return Err(JqError::TooMuchOutput),
        Ended::TooMuchOutput { stdout: false } => None,
    };
    match serde_json::from_slice::<Answer>(&out) {
        Ok(Answer::Outputs { values, more }) => Ok(Outputs { values, more }),
        Ok(Answer::Error(e)) => Err(JqError::Filter(e)),
        Err(_) => Err(JqError::Died {
            status,
            stderr: String::from_utf8_lossy(&err).into_owned(),
        }),
    }
}

fn died(status: &Option<ExitStatus>, stderr: &str) -> String {
    let why = stderr.trim();
    let status = status.map_or_else(|| "killed".to_string(), |s| s.to_string());
    format!(
        "jq was stopped ({status}): the filter used more than {} MiB of memory or {} s of CPU time{}",
        MEMORY_BYTES >> 20,
        CPU_SECONDS,
        if why.is_empty() {
            String::new()
        } else {
            format!(" ({why})")
        }
    )
}

/// The worker: limits itself, reads one request from stdin, writes the answer to
/// stdout. Returns the process exit code.
pub fn worker_main(args: &[String]) -> i32 {
    if let Err(e) = sandbox::confine(args) {
        eprintln!("{e}");
        return 2;
    }
    let mut body = Vec::new();
    if let Err(e) = std::io::stdin()
        .take(MAX_INPUT_BYTES as u64 + 1)
        .read_to_end(&mut body)
    {
        eprintln!("cannot read the jq request: {e}");
        return 2;
    }
    let answer = match serde_json::from_slice::<Request>(&body) {
        Ok(r) => match engine::run(&r.filter, &r.vars, &r.input, r.max_outputs) {
            Ok((values, more)) => Answer::Outputs { values, more },
            Err(e) => Answer::Error(e.to_string()),
        },
        Err(e) => Answer::Error(format!("the jq request is not valid: {e}")),
    };
    let mut stdout = std::io::stdout().lock();
    let written = serde_json::to_writer(&mut stdout, &answer)
        .map_err(std::io::Error::from)
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("cannot write the jq answer: {e}");
            2
        }
    }
}
