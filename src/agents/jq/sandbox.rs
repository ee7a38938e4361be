//! The jq sandbox: every jq filter runs in a child process, `muninn jq-worker`.
//!
//! Why a process: a jq filter is user-written code, and jaq (like jq) has no step or
//! memory budget and no way to interrupt an evaluation from outside — `last(range(1e18))`
//! is one call that never returns, `[repeat(1)]` or string doubling grows until the
//! allocator fails, and a failed allocation aborts the whole process. A thread cannot be
//! stopped or capped; a process can. The worker lowers its own address-space and CPU
//! limits (setrlimit) before it reads the request, so a memory bomb makes the worker's
//! allocation fail (the worker dies, not the hub) and a busy loop is killed by the kernel
//! at the CPU limit; the parent also kills it at a wall-clock deadline and reads at most
//! `MAX_OUTPUT_BYTES` of what it writes. The worker starts with an empty environment, so
//! jq's `$ENV`/`env` see no secrets of the hub.
//!
//! The caller blocks until the worker ends (at most `TIMEOUT`): agents' handlers are
//! synchronous, so a hostile filter holds up the agents that share its arbiter thread
//! for that long, never the HTTP workers.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::engine;

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
const MAX_STDERR_BYTES: u64 = 4096;

static WORKER_PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// Sets the program run as the worker (tests: the built `muninn` binary, since their
/// own executable is the test harness). The first call wins.
pub fn set_worker_program(path: impl Into<PathBuf>) {
    let _ = WORKER_PROGRAM.set(path.into());
}

fn worker_program() -> Result<PathBuf, String> {
    if let Some(p) = WORKER_PROGRAM.get() {
        return Ok(p.clone());
    }
    std::env::current_exe().map_err(|e| format!("cannot find the muninn program to run jq: {e}"))
}

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
) -> Result<Outputs, String> {
    let request = Request {
        filter: filter.to_string(),
        vars,
        input: input.clone(),
        max_outputs,
    };
    let body = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
    if body.len() > MAX_INPUT_BYTES {
        return Err(format!(
            "the event and variables are larger than {} MiB, the most jq is given",
            MAX_INPUT_BYTES >> 20
        ));
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
        .map(|(values, more)| Outputs { values, more });
    }
    let (status, out, err) = run_worker(body)?;
    let Some(status) = status else {
        return Err(format!(
            "jq was stopped after {} s: the filter did not finish in time",
            TIMEOUT.as_secs()
        ));
    };
    if out.len() > MAX_OUTPUT_BYTES {
        return Err(format!(
            "jq was stopped: its output is larger than {} MiB",
            MAX_OUTPUT_BYTES >> 20
        ));
    }
    match serde_json::from_slice::<Answer>(&out) {
        Ok(Answer::Outputs { values, more }) => Ok(Outputs { values, more }),
        Ok(Answer::Error(e)) => Err(e),
        Err(_) => Err(died(status, &err)),
    }
}

fn died(status: ExitStatus, stderr: &[u8]) -> String {
    let why = String::from_utf8_lossy(stderr);
    let why = why.trim();
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

type Finished = (Option<ExitStatus>, Vec<u8>, Vec<u8>);

/// Starts the worker, feeds it `body`, and waits until it ends or the deadline passes
/// (then kills it: the status is None).
fn run_worker(body: Vec<u8>) -> Result<Finished, String> {
    let mut child = Command::new(worker_program()?)
        .arg(WORKER_ARG)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the jq worker process: {e}"))?;
    let stdin = child.stdin.take();
    let writer = std::thread::spawn(move || {
        // A worker that dies early closes the pipe: the write fails, which is fine.
        if let Some(mut s) = stdin {
            let _ = s.write_all(&body);
        }
    });
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || read_capped(stdout, MAX_OUTPUT_BYTES as u64 + 1));
    let stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || read_capped(stderr, MAX_STDERR_BYTES));
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let _ = writer.join();
    let out = reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    Ok((status, out, err))
}

fn read_capped(pipe: Option<impl Read>, cap: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(p) = pipe {
        let _ = p.take(cap).read_to_end(&mut buf);
    }
    buf
}

/// The worker: limits itself, reads one request from stdin, writes the answer to
/// stdout. Returns the process exit code.
pub fn worker_main() -> i32 {
    use rustix::process::{Resource, Rlimit, setrlimit};
    let limit = |resource, n| {
        setrlimit(
            resource,
            Rlimit {
                current: Some(n),
                maximum: Some(n),
            },
        )
    };
    if let Err(e) = limit(Resource::As, MEMORY_BYTES).and(limit(Resource::Cpu, CPU_SECONDS)) {
        eprintln!("cannot limit the jq worker's memory and CPU time: {e}");
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
            Err(e) => Answer::Error(e),
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
