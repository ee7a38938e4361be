//! One run of a JavaScript agent's code in QuickJS (through rquickjs): Huginn's API on
//! an `Agent` object, the code evaluated, then `Agent.check()` or `Agent.receive()`.
//!
//! The engine's own bounds are the first line of defence: a memory limit on the QuickJS
//! runtime (an allocation past it throws "out of memory" in the script), a stack limit
//! (deep recursion throws a RangeError), an interrupt handler that stops the script at
//! the deadline, and a cap on the bytes of events and log lines the script produces.
//! The process it runs in (this program, confined by the sandbox) has the rlimits as the
//! second line.
//!
//! Everything crosses between Rust and JavaScript as JSON text, so the script sees plain
//! objects, and NaN is kept out of memory as the string "NaN" (Huginn's `clean_nans`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rquickjs::context::EvalOptions;
use rquickjs::{Context, Ctx, Exception, Function, Object, Runtime, Value as JsValue};
use serde_json::{Map, Value};

use crate::html_entities::unescape_html;
use crate::protocol::{Action, Answer, Request};

/// The stack the script may use (deep recursion throws a RangeError past it).
const MAX_STACK_BYTES: usize = 512 * 1024;
/// The name the code is evaluated under, so error positions read "code:LINE:COLUMN".
const CODE_FILE: &str = "code";

struct State {
    actions: Vec<Action>,
    memory: Map<String, Value>,
    credentials: BTreeMap<String, String>,
    options: String,
    incoming: String,
    kvs: String,
    produced: usize,
    max_output_bytes: usize,
}

impl State {
    /// Records `action`, unless the script has produced more than its share.
    fn push(&mut self, action: Action, bytes: usize) -> Result<(), String> {
        self.produced = self.produced.saturating_add(bytes);
        if self.produced > self.max_output_bytes {
            return Err(format!(
                "the script's events and log lines are larger than {} bytes \
                 ([insecure_agents] max_output_bytes)",
                self.max_output_bytes
            ));
        }
        self.actions.push(action);
        Ok(())
    }
}

/// Huginn's API, written on top of the `__host` functions below (which take and give
/// JSON text), then `__host` is removed from the script's sight.
const PRELUDE: &str = r#"
function Agent() {}
(function (host) {
  function keepNaN(key, value) {
    return (typeof value === "number" && value !== value) ? "NaN" : value;
  }
  function asJson(value) {
    var text = JSON.stringify(value, keepNaN);
    return text === undefined ? "null" : text;
  }
  Agent.createEvent = function (payload) {
    var text = JSON.stringify(payload);
    return JSON.parse(host.emit(text === undefined ? "null" : text));
  };
  Agent.incomingEvents = function () { return JSON.parse(host.incoming()); };
  Agent.memory = function (key, value) {
    if (key !== undefined && value !== undefined) {
      host.setMemoryKey(String(key), asJson(value));
    } else if (key !== undefined) {
      return JSON.parse(host.memory())[key];
    } else {
      return JSON.parse(host.memory());
    }
  };
  Agent.setMemory = function (object) { host.setMemory(asJson(object)); };
  Agent.deleteKey = function (key) { return JSON.parse(host.deleteKey(String(key))); };
  Agent.credential = function (name, value) {
    if (value !== undefined) {
      host.setCredential(String(name), value === null ? null : String(value));
    } else {
      var found = host.credential(String(name));
      return found === undefined ? null : found;
    }
  };
  Agent.options = function (key) {
    var options = JSON.parse(host.options());
    return key !== undefined ? options[key] : options;
  };
  Agent.log = function (message) { host.log(String(message)); };
  Agent.error = function (message) { host.error(String(message)); };
  Agent.escapeHtml = function (html) { return host.escapeHtml(String(html)); };
  Agent.unescapeHtml = function (html) { return host.unescapeHtml(String(html)); };
  Object.defineProperty(Agent, "kvs", {
    get: function () { return JSON.parse(host.kvs()); },
    enumerable: true
  });
  Agent.check = function () {};
  Agent.receive = function () {};
})(__host);
delete globalThis.__host;
"#;

/// Runs the request's code; never panics on anything the script does.
pub fn run(request: Request) -> Answer {
    let function = if request.function == "receive" {
        "receive"
    } else {
        "check"
    };
    let state = Rc::new(RefCell::new(State {
        actions: Vec::new(),
        memory: request.memory,
        credentials: request.credentials,
        options: request.options.to_string(),
        incoming: Value::Array(request.incoming_events).to_string(),
        kvs: Value::Object(request.kvs).to_string(),
        produced: 0,
        max_output_bytes: request.max_output_bytes,
    }));
    let timeout = Duration::from_millis(request.timeout_ms);
    let limits = Bounds {
        deadline: Instant::now() + timeout,
        timeout,
        memory_bytes: request.memory_bytes,
    };
    let error = execute(&request.code, function, &state, &limits).err();
    // The runtime (and the closures that shared the state) is gone: the state is ours.
    let state = state.borrow();
    Answer {
        actions: state.actions.clone(),
        memory: state.memory.clone(),
        error,
    }
}

struct Bounds {
    deadline: Instant,
    timeout: Duration,
    memory_bytes: u64,
}

/// Sets up the runtime within `bounds`, evaluates the code and calls the handler.
/// `Err`: the message for the agent's log.
fn execute(
    code: &str,
    function: &str,
    state: &Rc<RefCell<State>>,
    bounds: &Bounds,
) -> Result<(), String> {
    let engine_failed = |e: rquickjs::Error| format!("JavaScript error: the engine failed: {e}");
    let runtime = Runtime::new().map_err(engine_failed)?;
    runtime.set_memory_limit(usize::try_from(bounds.memory_bytes).unwrap_or(usize::MAX));
    runtime.set_max_stack_size(MAX_STACK_BYTES);
    let interrupted = Arc::new(AtomicBool::new(false));
    let (flag, deadline) = (interrupted.clone(), bounds.deadline);
    runtime.set_interrupt_handler(Some(Box::new(move || {
        let late = Instant::now() >= deadline;
        if late {
            flag.store(true, Ordering::SeqCst);
        }
        late
    })));
    let context = Context::full(&runtime).map_err(engine_failed)?;
    context.with(|ctx| {
        let script = |source: &str, file: &str| {
            let mut options = EvalOptions::default();
            // Huginn's V8 evaluates the code as sloppy-mode script, not strict.
            options.strict = false;
            options.filename = Some(file.to_string());
            ctx.eval_with_options::<(), _>(source, options)
        };
        let described = |e: rquickjs::Error| describe(&ctx, e, &interrupted, bounds);
        install_host(&ctx, state).map_err(described)?;
        script(PRELUDE, "muninn").map_err(described)?;
        script(code, CODE_FILE).map_err(described)?;
        script(&format!("Agent.{function}();"), "muninn").map_err(described)
    })
}

/// The message for an error the engine returned: the script's exception (with the
/// line it was thrown at), or which bound stopped it.
fn describe(ctx: &Ctx<'_>, e: rquickjs::Error, interrupted: &AtomicBool, b: &Bounds) -> String {
    let thrown = match e {
        rquickjs::Error::Exception => thrown_text(&ctx.catch()),
        other => other.to_string(),
    };
    if interrupted.load(Ordering::SeqCst) {
        return format!(
            "JavaScript error: the code did not finish within {} s and was stopped \
             ([insecure_agents] timeout_seconds)",
            b.timeout.as_secs_f64()
        );
    }
    if thrown.contains("out of memory") {
        return format!(
            "JavaScript error: the code used more than {} MiB of memory and was stopped \
             ([insecure_agents] memory_mb)",
            b.memory_bytes >> 20
        );
    }
    format!("JavaScript error: {thrown}")
}

/// What a thrown value says: an Error's name and message and where in the code it was
/// thrown; anything else (`throw "oh no"`) as text.
fn thrown_text(value: &JsValue<'_>) -> String {
    if let Some(exception) = value.as_exception() {
        let name: Option<String> = exception.get("name").ok();
        let message = exception.message().unwrap_or_default();
        let head = match name {
            Some(n) if !n.is_empty() => format!("{n}: {message}"),
            _ => message,
        };
        return match exception.stack().as_deref().and_then(code_position) {
            Some((line, column)) => format!("{head} (line {line}, column {column})"),
            None => head,
        };
    }
    if let Some(s) = value.as_string().and_then(|s| s.to_string().ok()) {
        return s;
    }
    let ctx = value.ctx();
    ctx.json_stringify(value.clone())
        .ok()
        .flatten()
        .and_then(|s| s.to_string().ok())
        .unwrap_or_else(|| format!("a {} was thrown", value.type_name()))
}

/// The first "code:LINE:COLUMN" of a stack trace: where in the user's code it happened.
fn code_position(stack: &str) -> Option<(u32, u32)> {
    let at = stack.find(&format!("{CODE_FILE}:"))?;
    let mut parts = stack[at + CODE_FILE.len() + 1..].split(':');
    let line = parts.next()?.trim().parse().ok()?;
    let column = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()?;
    Some((line, column))
}

/// The `__host` object the prelude builds on.
fn install_host<'js>(ctx: &Ctx<'js>, state: &Rc<RefCell<State>>) -> rquickjs::Result<()> {
    let host = Object::new(ctx.clone())?;
    let throw = |ctx: &Ctx<'js>, why: String| Exception::throw_message(ctx, &why);

    let s = state.clone();
    host.set(
        "emit",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, text: String| {
            let payload: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            s.borrow_mut()
                .push(Action::Emit(payload), text.len())
                .map_err(|why| throw(&ctx, why))?;
            Ok::<_, rquickjs::Error>(text)
        })?,
    )?;
    for (name, error) in [("log", false), ("error", true)] {
        let s = state.clone();
        host.set(
            name,
            Function::new(ctx.clone(), move |ctx: Ctx<'js>, message: String| {
                let bytes = message.len();
                let action = if error {
                    Action::Error(message)
                } else {
                    Action::Log(message)
                };
                s.borrow_mut()
                    .push(action, bytes)
                    .map_err(|why| throw(&ctx, why))
            })?,
        )?;
    }
    let s = state.clone();
    host.set(
        "incoming",
        Function::new(ctx.clone(), move || s.borrow().incoming.clone())?,
    )?;
    let s = state.clone();
    host.set(
        "kvs",
        Function::new(ctx.clone(), move || s.borrow().kvs.clone())?,
    )?;
    let s = state.clone();
    host.set(
        "options",
        Function::new(ctx.clone(), move || s.borrow().options.clone())?,
    )?;
    let s = state.clone();
    host.set(
        "memory",
        Function::new(ctx.clone(), move || {
            Value::Object(s.borrow().memory.clone()).to_string()
        })?,
    )?;
    let s = state.clone();
    host.set(
        "setMemoryKey",
        Function::new(ctx.clone(), move |key: String, text: String| {
            let value = serde_json::from_str(&text).unwrap_or(Value::Null);
            s.borrow_mut().memory.insert(key, value);
        })?,
    )?;
    let s = state.clone();
    host.set(
        "setMemory",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, text: String| match serde_json::from_str(&text) {
                Ok(Value::Object(memory)) => {
                    s.borrow_mut().memory = memory;
                    Ok(())
                }
                _ => Err(throw(&ctx, "setMemory needs an object".into())),
            },
        )?,
    )?;
    let s = state.clone();
    host.set(
        "deleteKey",
        Function::new(ctx.clone(), move |key: String| {
            let removed = s.borrow_mut().memory.remove(&key);
            removed.unwrap_or(Value::Null).to_string()
        })?,
    )?;
    let s = state.clone();
    host.set(
        "credential",
        Function::new(ctx.clone(), move |name: String| {
            s.borrow().credentials.get(name.trim()).cloned()
        })?,
    )?;
    let s = state.clone();
    host.set(
        "setCredential",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, name: String, value: Option<String>| {
                let name = name.trim().to_string();
                if name.is_empty() {
                    return Err(throw(&ctx, "a credential needs a name".into()));
                }
                // Huginn saves `nil`, which its validation refuses with an exception
                // the script sees: nothing is saved and, uncaught, the run ends.
                let Some(value) = value else {
                    return Err(throw(
                        &ctx,
                        format!(
                            "this.credential({name:?}, null): credential_value: can't be \
                             blank; the credential was not saved"
                        ),
                    ));
                };
                let mut st = s.borrow_mut();
                st.credentials.insert(name.clone(), value.clone());
                let bytes = name.len() + value.len();
                st.push(Action::SetCredential { name, value }, bytes)
                    .map_err(|why| throw(&ctx, why))
            },
        )?,
    )?;
    host.set(
        "escapeHtml",
        Function::new(ctx.clone(), |text: String| escape_html(&text))?,
    )?;
    host.set(
        "unescapeHtml",
        Function::new(ctx.clone(), |text: String| unescape_html(&text))?,
    )?;
    ctx.globals().set("__host", host)
}

/// Ruby's `CGI.escapeHTML`: the five characters that matter in HTML text and attributes.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
