//! The child's side of the sandbox: `muninn <worker> MEMORY_BYTES CPU_SECONDS -- ARGS...`
//! limits itself and leaves the hub's process group before it touches the request.

use rustix::process::{Resource, Rlimit, setrlimit, setsid};

/// Reads the limits the parent put before `--` in `args` (what follows the worker's
/// name), applies them to this process (address space, CPU seconds, a new session and
/// process group) and returns the arguments after `--`. `Err`: the reason, for the
/// worker to print on standard error before it exits with status 2.
pub fn confine(args: &[String]) -> Result<&[String], ConfineError> {
    let (Some(memory), Some(cpu), Some("--")) = (
        args.first().and_then(|a| a.parse::<u64>().ok()),
        args.get(1).and_then(|a| a.parse::<u64>().ok()),
        args.get(2).map(String::as_str),
    ) else {
        return Err(ConfineError::Usage);
    };
    let limit = |resource, n| {
        setrlimit(
            resource,
            Rlimit {
                current: Some(n),
                maximum: Some(n),
            },
        )
    };
    limit(Resource::As, memory)
        .and(limit(Resource::Cpu, cpu))
        .map_err(ConfineError::Limits)?;
    setsid().map_err(ConfineError::ProcessGroup)?;
    Ok(&args[3..])
}

/// Why a worker cannot confine itself.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error("usage: muninn WORKER MEMORY_BYTES CPU_SECONDS -- [ARGS...]")]
    Usage,
    #[error("cannot limit the worker's memory and CPU time: {0}")]
    Limits(rustix::io::Errno),
    #[error("cannot give the worker a process group of its own: {0}")]
    ProcessGroup(rustix::io::Errno),
}
