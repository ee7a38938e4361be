//! The jq language, through jaq (a jq engine written in Rust): compiling a filter (the
//! save-time check, with jaq's message and the place in the filter) and running it on
//! one input. Running is unbounded in time and memory, so the hub only runs filters in
//! the worker process (see `sandbox`); compiling is linear in the filter's size and is
//! done in-process when an agent is saved.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data};
use jaq_json::Val;
use serde_json::Value;

/// Explains where `part` (a slice of `whole`) starts: `line L, column C`.
fn place(whole: &str, part: &str) -> String {
    let start = (part.as_ptr() as usize)
        .saturating_sub(whole.as_ptr() as usize)
        .min(whole.len());
    let before = whole.get(..start).unwrap_or(whole);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}")
}

fn load_error(code: &str, e: &jaq_core::load::Error<&str>) -> String {
    use jaq_core::load::Error;
    match e {
        Error::Io(errs) => errs
            .iter()
            .map(|(path, why)| format!("cannot load module {path:?}: {why}"))
            .collect::<Vec<_>>()
            .join("; "),
        Error::Lex(errs) => errs
            .iter()
            .map(|(expected, found)| {
                format!("expected {} at {}", expected.as_str(), place(code, found))
            })
            .collect::<Vec<_>>()
            .join("; "),
        Error::Parse(errs) => errs
            .iter()
            .map(|(expected, found)| {
                let what = if found.is_empty() {
                    "the end of the filter".to_string()
                } else {
                    format!("{:?} at {}", first_token(found), place(code, found))
                };
                format!("expected {} but found {what}", expected.as_str())
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// The first word or symbol of the rest of the filter, for a short error message.
fn first_token(rest: &str) -> String {
    let t: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace())
        .take(20)
        .collect();
    if t.is_empty() {
        rest.chars().take(1).collect()
    } else {
        t
    }
}

type Filter = jaq_core::Filter<data::JustLut<Val>>;

/// Why a filter gave no outputs. It crosses from the worker process as its text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The filter does not compile: jaq's message with its place in the filter.
    #[error("{0}")]
    Compile(String),
    #[error("the input is not JSON jq can read: {0}")]
    Input(String),
    #[error("jq produced a value that is not JSON ({message}): {value}")]
    Output { message: String, value: String },
    /// The filter raised an error (`error("text")`, a type error).
    #[error("jq error: {0}")]
    Raised(String),
}

/// Compiles `code` with the named variables (`$name`) defined; the error is jaq's
/// message with its place in the filter.
fn compile(code: &str, var_names: &[String]) -> Result<Filter, EngineError> {
    // jq reads an empty program as `.`; jaq refuses it.
    let code = if code.trim().is_empty() { "." } else { code };
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let arena = Arena::default();
    let modules = Loader::new(defs)
        .load(&arena, File { code, path: () })
        .map_err(|errs| {
            EngineError::Compile(
                errs.iter()
                    .map(|(_, e)| load_error(code, e))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
    let globals: Vec<String> = var_names.iter().map(|n| format!("${n}")).collect();
    Compiler::default()
        .with_funs(funs)
        .with_global_vars(globals.iter().map(String::as_str))
        .compile(modules)
        .map_err(|errs| {
            EngineError::Compile(
                errs.iter()
                    .flat_map(|(_, es)| es.iter())
                    .map(|(name, undefined)| {
                        format!(
                            "undefined {} {name} at {}",
                            undefined.as_str(),
                            place(code, name)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })
}

/// Checks that `code` compiles with these variables, as the agent does when saved.
pub fn check(code: &str, var_names: &[String]) -> Result<(), EngineError> {
    compile(code, var_names).map(|_| ())
}

fn to_val(v: &Value) -> Result<Val, EngineError> {
    jaq_json::read::parse_single(v.to_string().as_bytes())
        .map_err(|e| EngineError::Input(format!("{e:?}")))
}

fn from_val(v: &Val) -> Result<Value, EngineError> {
    serde_json::from_str(&v.to_string()).map_err(|e| EngineError::Output {
        message: e.to_string(),
        value: v.to_string(),
    })
}

/// Runs `code` on `input` with `vars` bound, keeping at most `max_outputs` results.
/// Returns the outputs and whether more were produced than kept. Unbounded in time and
/// memory: only the worker process calls this.
pub fn run(
    code: &str,
    vars: &[(String, Value)],
    input: &Value,
    max_outputs: usize,
) -> Result<(Vec<Value>, bool), EngineError> {
    let names: Vec<String> = vars.iter().map(|(n, _)| n.clone()).collect();
    let filter = compile(code, &names)?;
    let values = vars
        .iter()
        .map(|(_, v)| to_val(v))
        .collect::<Result<Vec<_>, _>>()?;
    let ctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new(values));
    let mut outputs = filter.id.run((ctx, to_val(input)?));
    let mut kept = Vec::new();
    for out in outputs.by_ref().take(max_outputs) {
        match jaq_core::unwrap_valr(out) {
            Ok(v) => kept.push(from_val(&v)?),
            Err(e) => {
                // `error("text")` reads as jq prints it: the text, not a JSON string.
                let shown = e.to_string();
                let text = match serde_json::from_str::<Value>(&shown) {
                    Ok(Value::String(s)) => s,
                    _ => shown,
                };
                return Err(EngineError::Raised(text));
            }
        }
    }
    let more = outputs.next().is_some();
    Ok((kept, more))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn runs_filters_with_variables() {
        let (out, more) = run(
            ". + {extra: $v} | del(.numbers)",
            &[("v".into(), json!([1, 2]))],
            &json!({"name": "foo", "numbers": [1]}),
            10,
        )
        .unwrap();
        assert_eq!(out, vec![json!({"name": "foo", "extra": [1, 2]})]);
        assert!(!more);
        let (out, more) = run(".[]", &[], &json!([1, 2, 3]), 2).unwrap();
        assert_eq!(out, vec![json!(1), json!(2)]);
        assert!(more, "a third output was produced and dropped");
    }

    #[test]
    fn compile_errors_name_the_problem_and_place() {
        let e = check(".a |", &[]).unwrap_err().to_string();
        assert_eq!(e, "expected term but found the end of the filter");
        let e = check(".a\n| $nope", &[]).unwrap_err().to_string();
        assert_eq!(e, "undefined variable $nope at line 2, column 3");
        let e = check("nosuchfn(1)", &[]).unwrap_err().to_string();
        assert!(
            e.contains("nosuchfn") && e.contains("line 1, column 1"),
            "{e}"
        );
        assert!(check("$x", &["x".into()]).is_ok());
        assert!(
            check("", &[]).is_ok(),
            "an empty filter is identity, as in Huginn"
        );
        let e = run("error(\"boom\")", &[], &json!(1), 5)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "jq error: boom");
    }
}
