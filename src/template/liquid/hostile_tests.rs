//! Hostile templates: each fails fast with an error that names the bound, and random
//! text never panics.

use proptest::prelude::*;
use serde_json::json;

use super::tests::render;
use super::{NoCredentials, compile};
use crate::template::limits::Limits;

fn error_of(src: &str) -> String {
    render(src, json!({"big": "x".repeat(100_000)}))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

#[test]
fn a_huge_range_fails_before_it_allocates() {
    let e = error_of("{% for i in (1..1000000000) %}{{ i }}{% endfor %}");
    assert!(e.contains("work limit"), "{e}");
}

#[test]
fn nested_loops_hit_the_work_limit() {
    // A smaller budget than the default keeps the test quick; the bound is the same.
    let limits = Limits {
        max_steps: 20_000,
        ..Limits::default()
    };
    let src = "{% for a in (1..1000) %}{% for b in (1..1000) %}{% for c in (1..1000) %}x{% endfor %}{% endfor %}{% endfor %}";
    let e = compile(src, &limits)
        .and_then(|t| t.render(&Default::default(), &NoCredentials, &limits))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("work limit"), "{e}");
}

#[test]
fn capture_doubling_hits_the_value_limit() {
    let src = "{% assign x = 'ab' %}{% for i in (1..64) %}{% capture x %}{{ x }}{{ x }}{% endcapture %}{% endfor %}{{ x | size }}";
    let e = error_of(src);
    assert!(e.contains("value size limit"), "{e}");
    let src =
        "{% assign x = 'ab' %}{% for i in (1..64) %}{% assign x = x | append: x %}{% endfor %}";
    assert!(error_of(src).contains("value size limit"));
    let src = "{{ big | replace: 'x', big }}";
    assert!(error_of(src).contains("value size limit"));
}

#[test]
fn deep_nesting_is_refused_at_compile() {
    let src = "{% if a %}".repeat(10_000) + &"{% endif %}".repeat(10_000);
    let e = compile(&src, &Limits::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("depth limit") || e.contains("size limit"), "{e}");
    let src = format!("{{{{ a{}{} }}}}", "[a".repeat(500), "]".repeat(500));
    let e = compile(&src, &Limits::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("depth limit"), "{e}");
}

#[test]
fn huge_output_hits_the_output_limit() {
    let e = error_of("{% for i in (1..100000) %}{{ big }}{% endfor %}");
    assert!(
        e.contains("output limit") || e.contains("work limit"),
        "{e}"
    );
}

#[test]
fn catastrophic_regexes_run_in_linear_time() {
    let out = render(
        "{{ s | regex_replace: '(a+)+$', 'x' }}",
        json!({"s": format!("{}b", "a".repeat(5000))}),
    );
    assert!(out.is_ok(), "{out:?}");
    let e = error_of("{{ 'a' | regex_replace: '(?:a{1000}){1000}', '' }}");
    assert!(e.contains("invalid regular expression"), "{e}");
}

#[test]
fn reading_a_big_assigned_value_in_a_loop_is_charged() {
    let src = "{% assign b = big | append: '' %}{% for i in (1..100000) %}{% if b == 'x' %}{% endif %}{% endfor %}";
    let e = error_of(src);
    assert!(e.contains("work limit") || e.contains("time limit"), "{e}");
}

#[test]
fn the_deadline_is_kept() {
    let limits = Limits {
        deadline: std::time::Duration::from_millis(1),
        ..Limits::default()
    };
    let t = compile("{% for i in (1..900000) %}{{ i }}{% endfor %}", &limits);
    let e = t
        .and_then(|t| t.render(&Default::default(), &NoCredentials, &limits))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("time limit") || e.contains("output limit"),
        "{e}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn random_template_text_never_panics(src in "(\\{\\{|\\}\\}|\\{%|%\\}|[a-z|:'\"., ()\\[\\]$-]|for|in|if|endif|endfor|assign|=|capture|endcapture|regex_replace|with|1\\.\\.9){0,40}") {
        let limits = Limits::default();
        if let Ok(t) = compile(&src, &limits) {
            let _ = t.render(&Default::default(), &NoCredentials, &limits);
        }
    }
}
