//! The child-process sandbox: user-written code (a jq filter, a shell command, a
//! JavaScript agent) runs in a child process of its own, `muninn <worker> ...`, never in
//! the hub.
//!
//! Why a process: a thread cannot be stopped or capped. A busy loop in an engine with no
//! budget never returns, a memory bomb makes an allocation fail and a failed allocation
//! aborts the whole process; a child can be killed, and its failures are its own.
//!
//! The bounds, in the order they act:
//! - the child lowers its own address-space and CPU limits (setrlimit) and makes itself
//!   the leader of a new session and process group ([`confine`]) before it does anything
//!   with the request, so everything it starts inherits the limits and stays in the group;
//! - the parent kills the whole group at a wall-clock deadline, and as soon as standard
//!   output or standard error grows past its cap ([`run`]);
//! - the child starts with an empty environment plus what the caller names, so the hub's
//!   own variables (an admin token, an SMTP password) never reach the user's code.
//!
//! Not bounded here: the number of processes. RLIMIT_NPROC counts every process of the
//! hub's system user (and is not enforced for root), so a fork bomb is stopped by the
//! deadline and the group kill only; run the hub under systemd with `TasksMax=` to cap it.
//!
//! The caller blocks until the child ends (at most the timeout): agents' handlers are
//! synchronous, so a hostile program holds up the agents that share its arbiter thread
//! for that long, never the HTTP workers.

mod child;

pub use child::{ConfineError, confine};

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

static WORKER_PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// Sets the program run as the worker (tests: the built `muninn` binary, since their
/// own executable is the test harness). The first call wins.
pub fn set_worker_program(path: impl Into<PathBuf>) {
    let _ = WORKER_PROGRAM.set(path.into());
}

fn worker_program() -> Result<PathBuf, std::io::Error> {
    match WORKER_PROGRAM.get() {
        Some(p) => Ok(p.clone()),
        None => std::env::current_exe(),
    }
}

/// The program a job runs: `muninn` itself, or the program `name` beside it.
fn program_of(name: Option<&str>) -> Result<PathBuf, std::io::Error> {
    let muninn = worker_program()?;
    Ok(match (name, muninn.parent()) {
        (Some(name), Some(dir)) => dir.join(name),
        (Some(name), None) => PathBuf::from(name),
        (None, _) => muninn,
    })
}

/// What one run may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time from the start; then the group is killed.
    pub timeout: Duration,
    /// CPU seconds of each process (the kernel stops it at this limit).
    pub cpu_seconds: u64,
    /// Address space of each process (RLIMIT_AS), the binary itself included.
    pub memory_bytes: u64,
    /// Bytes of standard output, and of standard error; one more and the group is killed.
    pub max_stdout_bytes: usize,
    pub max_stderr_bytes: usize,
}

/// One run: `muninn <worker> MEMORY_BYTES CPU_SECONDS -- <args>...`.
pub struct Job<'a> {
    /// None: the `muninn` program; a name: the program of that name in its directory
    /// (`muninn-js`).
    pub program: Option<&'a str>,
    /// The hidden subcommand of the `muninn` binary (`jq-worker`).
    pub worker: &'a str,
    /// What follows the `--`, for the worker to read after [`confine`].
    pub args: &'a [String],
    /// The only environment variables the child sees.
    pub env: &'a [(&'a str, &'a str)],
    /// The child's working directory (None: the hub's).
    pub dir: Option<&'a Path>,
    pub stdin: Vec<u8>,
    pub limits: Limits,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The child exited (or was ended by a signal, the CPU limit's included) and both of
    /// its pipes closed; None when its status could not be read.
    Exited(Option<ExitStatus>),
    /// The wall-clock deadline passed: the group was killed.
    TimedOut,
    /// Standard output (true) or standard error (false) grew past its cap: the group was
    /// killed.
    TooMuchOutput { stdout: bool },
}

/// What a run gave.
#[derive(Debug)]
pub struct Finished {
    pub ended: Ended,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Why a run did not start.
#[derive(Debug)]
pub enum StartError {
    /// The `muninn` program itself cannot be found.
    NoProgram(std::io::Error),
    /// The child could not be started (e.g. its working directory is missing).
    Spawn(std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::NoProgram(e) => write!(f, "cannot find the muninn program: {e}"),
            StartError::Spawn(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// Runs `job` to its end or to a limit, then kills what is left of its process group.
// One idea: the life of one child, from spawn through feeding stdin and reading both
// pipes under their caps to the kill at the deadline, in one place so that every way
// out of it reaps the child and its group.
pub fn run(job: Job<'_>) -> Result<Finished, StartError> {
    let limits = job.limits;
    let mut command = Command::new(program_of(job.program).map_err(StartError::NoProgram)?);
    command
        .arg(job.worker)
        .arg(limits.memory_bytes.to_string())
        .arg(limits.cpu_seconds.to_string())
        .arg("--")
        .args(job.args)
        .env_clear()
        // mimalloc (the binary's allocator) reserves 1 GiB of address space for its
        // first arena at the first allocation, before the worker lowers RLIMIT_AS to
        // `memory_bytes`: the worker then had no address space left, its main thread's
        // stack could not grow and it died of SIGSEGV on a filter as small as `.` (5 of
        // 8 runs of a debug-info build; VmSize at start 1.14 GB, 150 MB with this).
        .env("MIMALLOC_ARENA_RESERVE", "16MiB")
        .envs(job.env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = job.dir {
        command.current_dir(dir);
    }
    let mut child = command.spawn().map_err(StartError::Spawn)?;
    let pid = child.id();
    if let Some(mut s) = child.stdin.take() {
        let input = job.stdin;
        // A child that does not read its input closes the pipe: the write fails, fine.
        std::thread::spawn(move || {
            let _ = s.write_all(&input);
        });
    }
    let overflow = Arc::new(AtomicBool::new(false));
    let overflow_on_stdout = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<(bool, Vec<u8>)>();
    let pipes = [
        (
            true,
            limits.max_stdout_bytes,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            false,
            limits.max_stderr_bytes,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ];
    for (is_out, cap, pipe) in pipes {
        let (tx, overflow, on_stdout) = (tx.clone(), overflow.clone(), overflow_on_stdout.clone());
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = pipe {
                let _ = p.take(cap as u64 + 1).read_to_end(&mut buf);
            }
            if buf.len() > cap {
                on_stdout.store(is_out, Ordering::SeqCst);
                overflow.store(true, Ordering::SeqCst);
            }
            let _ = tx.send((is_out, buf));
        });
    }
    drop(tx);
    let deadline = Instant::now() + limits.timeout;
    let (mut stdout, mut stderr, mut closed) = (Vec::new(), Vec::new(), 0);
    let mut exited = false;
    // Ends when the child exited and both pipes closed (everything it started that
    // shares them is done), or at a limit. The child is not reaped before its group is
    // killed: while it is a zombie its id cannot be reused, so the group the kill names
    // is still the run's.
    loop {
        while let Ok((is_out, bytes)) = rx.try_recv() {
            closed += 1;
            if is_out {
                stdout = bytes
            } else {
                stderr = bytes
            }
        }
        if overflow.load(Ordering::SeqCst) {
            kill_group(pid, &mut child);
            let stdout_overflowed = overflow_on_stdout.load(Ordering::SeqCst);
            return Ok(Finished {
                ended: Ended::TooMuchOutput {
                    stdout: stdout_overflowed,
                },
                stdout,
                stderr,
            });
        }
        exited = exited || has_exited(pid);
        if exited && closed == 2 {
            // What it left running in the background ends with the run.
            let status = kill_group(pid, &mut child);
            return Ok(Finished {
                ended: Ended::Exited(status),
                stdout,
                stderr,
            });
        }
        if Instant::now() >= deadline {
            kill_group(pid, &mut child);
            return Ok(Finished {
                ended: Ended::TimedOut,
                stdout,
                stderr,
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether the child has ended, leaving it waitable (a zombie) for `kill_group`.
fn has_exited(pid: u32) -> bool {
    use rustix::process::{Pid, WaitId, WaitIdOptions, waitid};
    let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return true;
    };
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    // An error (no such child) means there is nothing left to wait for.
    waitid(WaitId::Pid(p), options).map_or(true, |s| s.is_some())
}

/// Kills the run's process group (the child leads it once it has confined itself),
/// then reaps the child and returns how it ended.
fn kill_group(pid: u32, child: &mut Child) -> Option<ExitStatus> {
    use rustix::process::{Pid, Signal, getpgid, kill_process_group};
    let leader = i32::try_from(pid).ok().and_then(Pid::from_raw);
    // Only a group the child leads: before its setsid it is still in the hub's group.
    if let Some(p) = leader
        && getpgid(Some(p)).ok() == Some(p)
    {
        // One kill reaches every member (fork waits for it); a few more for stragglers.
        for _ in 0..3 {
            if kill_process_group(p, Signal::KILL).is_err() {
                break;
            }
        }
    }
    let _ = child.kill();
    child.wait().ok()
}
