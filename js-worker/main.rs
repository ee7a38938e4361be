//! `muninn-js`: the java_script agent's worker program. The hub starts it through the
//! child-process sandbox (`muninn-js js-worker MEMORY_BYTES CPU_SECONDS --`); it confines
//! itself, reads one request (JSON) from standard input, runs the code in QuickJS and
//! writes the answer (JSON) to standard output.
//!
//! Why a program of its own rather than a `muninn` subcommand: QuickJS and the bundled
//! libpq (the PostgreSQL store) are both C and both define a global `unicode_normalize`,
//! so one executable cannot link both. This one does not link the muninn library at
//! all: it compiles in the three dependency-free files it shares with it (the sandbox's
//! child side, the request types, HTML character references).

mod engine;
#[path = "../src/template/liquid/html_entities.rs"]
mod html_entities;
#[path = "../src/agents/java_script/protocol.rs"]
mod protocol;
#[path = "../src/sandbox/child.rs"]
mod sandbox_child;

use std::io::{Read, Write};

use protocol::Request;

/// The largest request read (the agent's memory, an event, credentials).
const MAX_REQUEST_BYTES: u64 = 64 * 1024 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(2).collect();
    std::process::exit(run(&args));
}

fn run(args: &[String]) -> i32 {
    if let Err(e) = sandbox_child::confine(args) {
        eprintln!("{e}");
        return 2;
    }
    let mut body = Vec::new();
    if let Err(e) = std::io::stdin()
        .take(MAX_REQUEST_BYTES)
        .read_to_end(&mut body)
    {
        eprintln!("cannot read the JavaScript request: {e}");
        return 2;
    }
    let request = match serde_json::from_slice::<Request>(&body) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("the JavaScript request is not valid: {e}");
            return 2;
        }
    };
    let answer = engine::run(request);
    let mut stdout = std::io::stdout().lock();
    let written = serde_json::to_writer(&mut stdout, &answer)
        .map_err(std::io::Error::from)
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("cannot write the JavaScript answer: {e}");
            2
        }
    }
}
