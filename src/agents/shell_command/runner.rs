//! Runs one shell_command command within the [`Limits`], in a child process of its own.
//!
//! The child is `muninn shell-worker` run through [`crate::sandbox`]: it confines itself
//! (address space per process, CPU seconds, a process group of its own) and then becomes
//! the command (exec), so everything the command starts inherits the limits and stays in
//! that group, which the sandbox kills at the deadline or when the output grows past its
//! cap (a process that calls `setsid` itself leaves the group and is not tracked). The
//! command sees a clean environment (only `PATH`).

use std::path::Path;
use std::process::Command;

use crate::agents::insecure::Limits;
use crate::sandbox::{self, Ended, StartError};

/// The hidden subcommand of the `muninn` binary that limits itself and runs a command.
pub const WORKER_ARG: &str = "shell-worker";
/// The `PATH` a command sees.
const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Sets the program run as the worker (tests: the built `muninn` binary, since their
/// own executable is the test harness). The first call wins.
pub use crate::sandbox::set_worker_program;

/// What a command that ran gave, as Huginn reports it (output and errors stripped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub output: String,
    pub errors: String,
    /// None when it could not start or was ended by a signal.
    pub exit_status: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
}

/// Why a run was stopped (or never started: no worker program).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    NoWorker(StartError),
    #[error(
        "the command wrote more than {0} bytes of output and was stopped ([insecure_agents] max_output_bytes)"
    )]
    TooMuchOutput(usize),
    #[error(
        "the command did not finish within {0} s and was stopped with every process it started ([insecure_agents] timeout_seconds)"
    )]
    TimedOut(u64),
}

/// Runs `argv` (the program and its arguments) in the directory `path`, feeding it
/// `stdin`. `Err`: the run broke a limit and was killed (the message says which).
pub fn run(
    argv: &[String],
    path: &str,
    stdin: Option<&str>,
    limits: &Limits,
) -> Result<Ran, RunError> {
    if argv.is_empty() {
        return Ok(failed_to_start("the command is empty".into()));
    }
    let finished = sandbox::run(sandbox::Job {
        program: None,
        worker: WORKER_ARG,
        args: argv,
        env: &[("PATH", SAFE_PATH)],
        dir: Some(Path::new(path)),
        stdin: stdin.unwrap_or_default().as_bytes().to_vec(),
        limits: sandbox::Limits {
            timeout: limits.timeout,
            cpu_seconds: limits.timeout.as_secs() + 1,
            memory_bytes: limits.memory_bytes,
            max_stdout_bytes: limits.max_output_bytes,
            max_stderr_bytes: limits.max_output_bytes,
        },
    });
    let finished = match finished {
        Ok(f) => f,
        Err(e @ StartError::NoProgram(_)) => return Err(RunError::NoWorker(e)),
        // Huginn reports a command that cannot start (a missing directory) in the event.
        Err(StartError::Spawn(e)) => return Ok(failed_to_start(format!("{e} - {path}"))),
    };
    match finished.ended {
        Ended::Exited(status) => {
            use std::os::unix::process::ExitStatusExt;
            Ok(Ran {
                output: String::from_utf8_lossy(&finished.stdout).trim().to_string(),
                errors: String::from_utf8_lossy(&finished.stderr).trim().to_string(),
                exit_status: status.and_then(|s| s.code()),
                signal: status.and_then(|s| s.signal()),
            })
        }
        Ended::TooMuchOutput { .. } => Err(RunError::TooMuchOutput(limits.max_output_bytes)),
        Ended::TimedOut => Err(RunError::TimedOut(limits.timeout.as_secs())),
    }
}

fn failed_to_start(why: String) -> Ran {
    Ran {
        output: String::new(),
        errors: why,
        exit_status: None,
        signal: None,
    }
}

/// The worker: `muninn shell-worker MEMORY_BYTES CPU_SECONDS -- PROGRAM ARGS...`.
/// Limits itself, leads a new process group, then becomes the command. Returns an
/// exit code only when that fails.
pub fn worker_main(args: &[String]) -> i32 {
    let argv = match sandbox::confine(args) {
        Ok(argv) => argv,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let Some(program) = argv.first() else {
        eprintln!("no command to run");
        return 2;
    };
    use std::os::unix::process::CommandExt;
    let e = Command::new(program).args(&argv[1..]).exec();
    // As a shell says it: the program is missing (127) or cannot be run (126).
    eprintln!("{program}: {e}");
    if e.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}
