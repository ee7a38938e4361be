//! Runs one shell_command command within the [`Limits`], in a child process of its own.
//!
//! The child is `muninn shell-worker`: it lowers its own limits (setrlimit: address
//! space per process, CPU seconds), makes itself the leader of a new session and
//! process group, and then becomes the command (exec), so everything the command starts
//! inherits the limits and stays in that group. The parent kills the whole group when
//! the wall-clock deadline passes or the output grows past its cap, so neither a busy
//! loop nor a flood of output nor background processes outlive the run (a process
//! that calls `setsid` itself leaves the group and is not tracked). The command
//! sees a clean environment (only `PATH`): the hub's own variables (an admin token, an
//! SMTP password) never reach it.
//!
//! Not bounded here: the number of processes. RLIMIT_NPROC counts every process of the
//! hub's system user (and is not enforced for root), so a fork bomb is stopped by the
//! deadline and the group kill only; run the hub under systemd with `TasksMax=` to cap it.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::agents::insecure::Limits;

/// The hidden subcommand of the `muninn` binary that limits itself and runs a command.
pub const WORKER_ARG: &str = "shell-worker";
/// The `PATH` a command sees.
const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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
    std::env::current_exe().map_err(|e| format!("cannot find the muninn program: {e}"))
}

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

/// Runs `argv` (the program and its arguments) in the directory `path`, feeding it
/// `stdin`. `Err`: the run broke a limit and was killed (the message says which).
pub fn run(
    argv: &[String],
    path: &str,
    stdin: Option<&str>,
    limits: &Limits,
) -> Result<Ran, String> {
    let Some(program) = argv.first() else {
        return Ok(failed_to_start("the command is empty".into()));
    };
    let cpu = limits.timeout.as_secs() + 1;
    let spawned = Command::new(worker_program()?)
        .arg(WORKER_ARG)
        .arg(limits.memory_bytes.to_string())
        .arg(cpu.to_string())
        .arg("--")
        .arg(program)
        .args(&argv[1..])
        .env_clear()
        .env("PATH", SAFE_PATH)
        .current_dir(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        // Huginn reports a command that cannot start (a missing directory) in the event.
        Err(e) => return Ok(failed_to_start(format!("{e} - {path}"))),
    };
    let pid = child.id();
    let input = stdin.unwrap_or_default().as_bytes().to_vec();
    if let Some(mut s) = child.stdin.take() {
        // A command that does not read its input closes the pipe: the write fails, fine.
        std::thread::spawn(move || {
            let _ = s.write_all(&input);
        });
    }
    let overflow = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<(bool, Vec<u8>)>();
    let cap = limits.max_output_bytes;
    for (is_out, pipe) in [
        (
            true,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            false,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ] {
        let (tx, overflow) = (tx.clone(), overflow.clone());
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = pipe {
                let _ = p.take(cap as u64 + 1).read_to_end(&mut buf);
            }
            if buf.len() > cap {
                overflow.store(true, Ordering::SeqCst);
            }
            let _ = tx.send((is_out, buf));
        });
    }
    drop(tx);
    let deadline = Instant::now() + limits.timeout;
    let (mut out, mut err, mut closed) = (Vec::new(), Vec::new(), 0);
    let mut exited = false;
    // Ends when the command exited and both pipes closed (everything it started that
    // shares them is done, as Huginn reads to the end), or at a limit. The worker is
    // not reaped before its group is killed: while it is a zombie its id cannot be
    // reused, so the group the kill names is still the run's.
    loop {
        if overflow.load(Ordering::SeqCst) {
            kill_group(pid, &mut child);
            return Err(format!(
                "the command wrote more than {cap} bytes of output and was stopped \
                 ([insecure_agents] max_output_bytes)"
            ));
        }
        while let Ok((is_out, bytes)) = rx.try_recv() {
            closed += 1;
            if is_out { out = bytes } else { err = bytes }
        }
        exited = exited || has_exited(pid);
        if exited && closed == 2 {
            // What it left running in the background ends with the run.
            let status = kill_group(pid, &mut child);
            use std::os::unix::process::ExitStatusExt;
            return Ok(Ran {
                output: String::from_utf8_lossy(&out).trim().to_string(),
                errors: String::from_utf8_lossy(&err).trim().to_string(),
                exit_status: status.and_then(|s| s.code()),
                signal: status.and_then(|s| s.signal()),
            });
        }
        if Instant::now() >= deadline {
            kill_group(pid, &mut child);
            return Err(format!(
                "the command did not finish within {} s and was stopped with every process it \
                 started ([insecure_agents] timeout_seconds)",
                limits.timeout.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether the worker has ended, leaving it waitable (a zombie) for `kill_group`.
fn has_exited(pid: u32) -> bool {
    use rustix::process::{Pid, WaitId, WaitIdOptions, waitid};
    let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return true;
    };
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    // An error (no such child) means there is nothing left to wait for.
    waitid(WaitId::Pid(p), options).map_or(true, |s| s.is_some())
}

fn failed_to_start(why: String) -> Ran {
    Ran {
        output: String::new(),
        errors: why,
        exit_status: None,
        signal: None,
    }
}

/// Kills the run's process group (the worker leads it once it has started), then
/// reaps the worker and returns how it ended.
fn kill_group(pid: u32, child: &mut std::process::Child) -> Option<std::process::ExitStatus> {
    use rustix::process::{Pid, Signal, getpgid, kill_process_group};
    let leader = i32::try_from(pid).ok().and_then(Pid::from_raw);
    // Only a group the worker leads: before its setsid it is still in the hub's group.
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

/// The worker: `muninn shell-worker MEMORY_BYTES CPU_SECONDS -- PROGRAM ARGS...`.
/// Limits itself, leads a new process group, then becomes the command. Returns an
/// exit code only when that fails.
pub fn worker_main(args: &[String]) -> i32 {
    use rustix::process::{Resource, Rlimit, setrlimit, setsid};
    let (Some(memory), Some(cpu), Some("--")) = (
        args.first().and_then(|a| a.parse::<u64>().ok()),
        args.get(1).and_then(|a| a.parse::<u64>().ok()),
        args.get(2).map(String::as_str),
    ) else {
        eprintln!("usage: muninn {WORKER_ARG} MEMORY_BYTES CPU_SECONDS -- PROGRAM [ARGS...]");
        return 2;
    };
    let Some(program) = args.get(3) else {
        eprintln!("no command to run");
        return 2;
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
    if let Err(e) = limit(Resource::As, memory).and(limit(Resource::Cpu, cpu)) {
        eprintln!("cannot limit the command's memory and CPU time: {e}");
        return 2;
    }
    if let Err(e) = setsid() {
        eprintln!("cannot give the command a process group of its own: {e}");
        return 2;
    }
    use std::os::unix::process::CommandExt;
    let e = Command::new(program).args(&args[4..]).exec();
    // As a shell says it: the program is missing (127) or cannot be run (126).
    eprintln!("{program}: {e}");
    if e.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}
