//! A property test over templates generated from tera's grammar (nested for/if/set,
//! filters, expressions, literals): compiling and rendering never panics, aborts or
//! overflows the stack, and every rendering stays within its bounds. The default case
//! count suits CI; `PROPTEST_CASES=200000 cargo test --lib template::fuzz` runs it long.

use proptest::prelude::*;
use serde_json::json;

use super::limits::Limits;
use super::{Templates, context_of};

const IDENTS: &[&str] = &["a", "s", "items", "n", "n.k", "missing", "loop.index", "x"];

const FILTERS: &[&str] = &[
    "upper",
    "length",
    "join(sep=s)",
    "replace(from='l', to=s)",
    "split(pat='')",
    "json_encode",
    "tojson(pretty=true)",
    "first",
    "reverse",
    "sort",
    "concat(with=items)",
    "indent(prefix=s)",
    "truncate(length=3)",
    "default(value=1)",
    "as_str",
    "int",
    "float",
    "round",
    "abs",
    "unique",
    "slice(end=2)",
    "wordcount",
    "title",
    "date",
    "get(key='k')",
    "nope",
    "safe",
    "linebreaksbr",
    "escape",
    "urlencode",
    "filesizeformat",
];

const OPS: &[&str] = &[
    "+", "-", "*", "/", "%", "~", "==", "!=", "<", "and", "or", "in",
];

fn expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (-3i64..100).prop_map(|n| n.to_string()),
        "[a-z ]{0,6}".prop_map(|s| format!("'{s}'")),
        proptest::sample::select(IDENTS).prop_map(str::to_string),
        (0u32..20_000).prop_map(|n| format!("range(end={n})")),
    ];
    leaf.prop_recursive(6, 48, 3, |inner| {
        prop_oneof![
            (inner.clone(), proptest::sample::select(OPS), inner.clone())
                .prop_map(|(l, op, r)| format!("{l} {op} {r}")),
            (inner.clone(), proptest::sample::select(FILTERS))
                .prop_map(|(e, f)| format!("{e} | {f}")),
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[{}]", items.join(", "))),
            inner.clone().prop_map(|e| format!("({e})")),
            inner.prop_map(|e| format!("not {e}")),
        ]
    })
}

fn body() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        "[a-z{}%# ]{0,8}",
        expr().prop_map(|e| format!("{{{{ {e} }}}}")),
        expr().prop_map(|e| format!("{{% set v = {e} %}}")),
        expr().prop_map(|e| format!("{{% set_global s = s ~ {e} %}}")),
        Just("{% set_global s = s ~ s %}".to_string()),
        Just("{% break %}".to_string()),
    ];
    leaf.prop_recursive(5, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 1..4).prop_map(|v| v.concat()),
            (expr(), inner.clone(), inner.clone())
                .prop_map(|(c, t, e)| format!("{{% if {c} %}}{t}{{% else %}}{e}{{% endif %}}")),
            (expr(), inner).prop_map(|(c, b)| format!("{{% for x in {c} %}}{b}{{% endfor %}}")),
        ]
    })
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

/// Tighter than the defaults so each case is quick; the bounds are the same code.
const LIMITS: Limits = Limits {
    max_steps: 20_000,
    max_value_bytes: 64 * 1024,
    max_produced_bytes: 1024 * 1024,
    max_output_bytes: 256 * 1024,
    ..Limits::DEFAULT
};

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn generated_templates_never_panic_and_stay_bounded(source in body()) {
        let vars = json!({"a": 2, "s": "hello", "items": [3, 1, 2], "n": {"k": "v"}});
        let ctx = context_of(&vars);
        let mut t = Templates::with_limits(LIMITS);
        if let Ok(id) = t.add("fuzz", &source) {
            match t.render(&id, &ctx) {
                Ok(out) => prop_assert!(out.len() <= LIMITS.max_output_bytes),
                Err(e) => prop_assert!(
                    !e.0.contains("the template engine failed"),
                    "{source:?} panicked inside tera: {}", e.0
                ),
            }
        }
    }
}
