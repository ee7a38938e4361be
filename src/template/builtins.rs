//! The functions, filters and tests a template may use: the one allow-list, and the
//! metered versions registered in every [`super::Templates`]. Tera's own `get_env` (reads
//! the process environment), and anything not listed here, do not exist for templates.
//! Every call charges the rendering's account for what it reads and admits what it
//! makes; the filters that can multiply their input's size check the size first.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use tera::{Error, Filter, Function, Result, Tera, Test, Value};

use super::budget;
use super::limits;

/// Filters users may call; `tojson` is Jinja's name for `json_encode`.
pub const FILTERS: &[&str] = &[
    "upper",
    "lower",
    "trim",
    "trim_start",
    "trim_end",
    "trim_start_matches",
    "trim_end_matches",
    "truncate",
    "wordcount",
    "replace",
    "capitalize",
    "title",
    "linebreaksbr",
    "indent",
    "striptags",
    "spaceless",
    "urlencode",
    "urlencode_strict",
    "escape",
    "escape_xml",
    "slugify",
    "addslashes",
    "split",
    "int",
    "float",
    "first",
    "last",
    "nth",
    "join",
    "sort",
    "unique",
    "slice",
    "group_by",
    "filter",
    "map",
    "concat",
    "abs",
    "pluralize",
    "round",
    "filesizeformat",
    "length",
    "reverse",
    "date",
    "json_encode",
    "tojson",
    "as_str",
    "get",
];

/// Filters the renderer handles itself rather than calling.
pub const RENDERER_FILTERS: &[&str] = &["default", "safe"];

/// Functions users may call. `now` and `get_random` read only the clock and a random
/// source; `throw` fails the rendering with the user's message.
pub const FUNCTIONS: &[&str] = &["range", "now", "throw", "get_random"];

/// Tests users may write after `is`.
pub const TESTS: &[&str] = &[
    "defined",
    "undefined",
    "odd",
    "even",
    "string",
    "number",
    "divisibleby",
    "iterable",
    "object",
    "starting_with",
    "ending_with",
    "containing",
    "matching",
];

/// Inserted at the start of every loop body; charges the body's size per iteration.
pub const TICK: &str = "__tick";
/// Wraps every `set` value; admits the value against the bounds.
pub const CAP: &str = "__cap";

/// A condition tera cannot evaluate itself, as a boolean.
pub const TRUTHY: &str = "__truthy";

struct Registry {
    filters: HashMap<String, Arc<dyn Filter>>,
    functions: HashMap<String, Arc<dyn Function>>,
    testers: HashMap<String, Arc<dyn Test>>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(build);

/// Replaces `tera`'s filters, functions and tests with the metered allow-listed ones.
pub fn install(tera: &mut Tera) {
    tera.filters = REGISTRY.filters.clone();
    tera.functions = REGISTRY.functions.clone();
    tera.testers = REGISTRY.testers.clone();
}

fn build() -> Registry {
    let stock = Tera::default();
    let mut filters: HashMap<String, Arc<dyn Filter>> = HashMap::new();
    for name in FILTERS {
        let inner: Option<Arc<dyn Filter>> = match *name {
            "replace" => Some(Arc::new(replace)),
            "indent" => Some(Arc::new(indent)),
            "join" => Some(Arc::new(join)),
            "split" => Some(Arc::new(split)),
            "json_encode" | "tojson" => Some(Arc::new(json_encode)),
            _ => stock.filters.get(*name).cloned(),
        };
        if let Some(inner) = inner {
            filters.insert(name.to_string(), Arc::new(MeteredFilter(inner)));
        }
    }
    let mut functions: HashMap<String, Arc<dyn Function>> = HashMap::new();
    for name in FUNCTIONS {
        let inner: Option<Arc<dyn Function>> = match *name {
            "range" => Some(Arc::new(limits::range)),
            _ => stock.functions.get(*name).cloned(),
        };
        if let Some(inner) = inner {
            functions.insert(name.to_string(), Arc::new(MeteredFunction(inner)));
        }
    }
    functions.insert(TICK.to_string(), Arc::new(tick));
    functions.insert(CAP.to_string(), Arc::new(cap));
    functions.insert(TRUTHY.to_string(), Arc::new(truthy));
    let mut testers: HashMap<String, Arc<dyn Test>> = HashMap::new();
    for name in TESTS {
        if let Some(inner) = stock.testers.get(*name).cloned() {
            // A regex is compiled per call: charge it like a small loop.
            let cost = if *name == "matching" { 100 } else { 1 };
            testers.insert(name.to_string(), Arc::new(MeteredTest(inner, cost)));
        }
    }
    Registry {
        filters,
        functions,
        testers,
    }
}

struct MeteredFilter(Arc<dyn Filter>);

impl Filter for MeteredFilter {
    fn filter(&self, value: &Value, args: &HashMap<String, Value>) -> Result<Value> {
        budget::charge_read(value)?;
        for a in args.values() {
            budget::charge_read(a)?;
        }
        let out = self.0.filter(value, args)?;
        budget::admit(&out)?;
        Ok(out)
    }

    fn is_safe(&self) -> bool {
        self.0.is_safe()
    }
}

struct MeteredFunction(Arc<dyn Function>);

impl Function for MeteredFunction {
    fn call(&self, args: &HashMap<String, Value>) -> Result<Value> {
        for a in args.values() {
            budget::charge_read(a)?;
        }
        let out = self.0.call(args)?;
        budget::admit(&out)?;
        Ok(out)
    }

    fn is_safe(&self) -> bool {
        self.0.is_safe()
    }
}

struct MeteredTest(Arc<dyn Test>, u64);

impl Test for MeteredTest {
    fn test(&self, value: Option<&Value>, args: &[Value]) -> Result<bool> {
        budget::charge(self.1)?;
        if let Some(v) = value {
            budget::charge_read(v)?;
        }
        self.0.test(value, args)
    }
}

/// `__tick(n=...)`: one loop iteration of a body of `n` nodes. Renders nothing.
fn tick(args: &HashMap<String, Value>) -> Result<Value> {
    let n = args.get("n").and_then(Value::as_u64).unwrap_or(1);
    budget::charge(n)?;
    Ok(Value::String(String::new()))
}

/// `__cap(v=...)`: the value of a `set`, admitted against the bounds.
fn cap(args: &HashMap<String, Value>) -> Result<Value> {
    let v = args.get("v").cloned().unwrap_or(Value::Null);
    budget::admit(&v)?;
    Ok(v)
}

/// `__truthy(v=...)`: Jinja's truthiness of any value.
fn truthy(args: &HashMap<String, Value>) -> Result<Value> {
    budget::charge(1)?;
    let t = match args.get("v") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    };
    Ok(Value::Bool(t))
}

fn str_arg<'a>(
    filter: &str,
    args: &'a HashMap<String, Value>,
    name: &str,
) -> Result<Option<&'a str>> {
    match args.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Error::msg(format!(
            "Filter `{filter}` received {name}={other} but `{name}` can only be a string"
        ))),
    }
}

fn str_value<'a>(filter: &str, value: &'a Value) -> Result<&'a str> {
    value.as_str().ok_or_else(|| {
        Error::msg(format!(
            "Filter `{filter}` was called on {value} but it works only on strings"
        ))
    })
}

fn stock_filter(name: &str) -> Result<Arc<dyn Filter>> {
    static STOCK: LazyLock<Tera> = LazyLock::new(Tera::default);
    STOCK
        .filters
        .get(name)
        .cloned()
        .ok_or_else(|| Error::msg(format!("Filter `{name}` is missing")))
}

/// `replace(from, to)`, refusing before it builds an output past the value bound.
fn replace(value: &Value, args: &HashMap<String, Value>) -> Result<Value> {
    let s = str_value("replace", value)?;
    let from = str_arg("replace", args, "from")?.unwrap_or_default();
    let to = str_arg("replace", args, "to")?.unwrap_or_default();
    if to.len() > from.len() {
        let count = if from.is_empty() {
            s.chars().count() + 1
        } else {
            s.matches(from).count()
        };
        budget::precheck(
            s.len()
                .saturating_add(count.saturating_mul(to.len() - from.len())),
        )?;
    }
    stock_filter("replace")?.filter(value, args)
}

/// `indent(prefix, first, blank)`, refusing before the prefixes pass the value bound.
fn indent(value: &Value, args: &HashMap<String, Value>) -> Result<Value> {
    let s = str_value("indent", value)?;
    let prefix = str_arg("indent", args, "prefix")?.map_or(4, str::len);
    let lines = s.bytes().filter(|b| *b == b'\n').count() + 1;
    budget::precheck(s.len().saturating_add(lines.saturating_mul(prefix)))?;
    stock_filter("indent")?.filter(value, args)
}

/// `join(sep)`, refusing before the separators pass the value bound.
fn join(value: &Value, args: &HashMap<String, Value>) -> Result<Value> {
    if let Value::Array(items) = value {
        let sep = str_arg("join", args, "sep")?.map_or(0, str::len);
        let (size, _) = budget::measure(value, &budget::current_limits());
        budget::precheck(size.saturating_add(items.len().saturating_mul(sep)))?;
    }
    stock_filter("join")?.filter(value, args)
}

/// `split(pat)`, refusing before the pieces pass the value bound (each piece is a value).
fn split(value: &Value, args: &HashMap<String, Value>) -> Result<Value> {
    let s = str_value("split", value)?;
    if let Some(pat) = str_arg("split", args, "pat")? {
        let pat = pat.replace("\\n", "\n").replace("\\t", "\t");
        let pieces = if pat.is_empty() {
            s.chars().count() + 2
        } else {
            s.matches(pat.as_str()).count() + 1
        };
        budget::precheck(s.len().saturating_add(pieces.saturating_mul(56)))?;
    }
    stock_filter("split")?.filter(value, args)
}

/// `json_encode(pretty)` written into a capped buffer: pretty printing indents each line
/// by its depth, so a deep value can grow many times over.
fn json_encode(value: &Value, args: &HashMap<String, Value>) -> Result<Value> {
    let pretty = args.get("pretty").and_then(Value::as_bool).unwrap_or(false);
    let mut out = limits::CappedOutput::for_value(budget::current_limits().max_value_bytes);
    let res = if pretty {
        serde_json::to_writer_pretty(&mut out, value)
    } else {
        serde_json::to_writer(&mut out, value)
    };
    match res {
        Ok(()) => String::from_utf8(out.bytes)
            .map(Value::String)
            .map_err(|_| Error::msg("json_encode made text that is not UTF-8")),
        Err(e) => Err(Error::msg(format!("json_encode failed: {e}"))),
    }
}
