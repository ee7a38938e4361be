//! Per filter and tag: what a template renders.

use serde_json::{Map, Value, json};

use super::{CredentialSource, NoCredentials, compile, has_markup};
use crate::template::limits::Limits;

pub fn render_with(src: &str, vars: Value, creds: &dyn CredentialSource) -> Result<Value, String> {
    let limits = Limits::default();
    let vars: Map<String, Value> = vars.as_object().cloned().unwrap_or_default();
    compile(src, &limits)
        .and_then(|t| t.render(&vars, creds, &limits))
        .map_err(|e| e.to_string())
}

pub fn render(src: &str, vars: Value) -> Result<Value, String> {
    render_with(src, vars, &NoCredentials)
}

fn text(src: &str, vars: Value) -> String {
    match render(src, vars) {
        Ok(Value::String(s)) => s,
        other => format!("<{other:?}>"),
    }
}

struct Creds;
impl CredentialSource for Creds {
    fn credential(&self, name: &str) -> Option<String> {
        (name == "api_key").then(|| "s3cret".to_owned())
    }
}

#[test]
fn markup_is_recognised() {
    assert!(has_markup("a {{ b }}"));
    assert!(has_markup("{% if a %}{% endif %}"));
    assert!(!has_markup("plain { text }"));
}

#[test]
fn credential_reads_the_source_given_to_render() {
    let out = render_with(
        "k={% credential api_key %};m={% credential other %}",
        json!({}),
        &Creds,
    );
    assert_eq!(out, Ok(json!("k=s3cret;m=")));
}

#[test]
fn echo_renders_like_an_output() {
    assert_eq!(text("{% echo x | upcase %}!", json!({"x": "a"})), "A!");
}

#[test]
fn uuidv4_renders_a_fresh_uuid() {
    let a = text("{% uuidv4 %}", json!({}));
    let b = text("{% uuidv4 %}", json!({}));
    assert_eq!(a.len(), 36);
    assert_eq!(&a[14..15], "4");
    assert_ne!(a, b);
}

#[test]
fn standard_filters_keep_liquid_semantics() {
    assert_eq!(
        text("{{ 'a b' | upcase | append: '!' }}", json!({})),
        "A B!"
    );
    assert_eq!(
        text("{{ x | split: ',' | join: '-' }}", json!({"x": "a,b"})),
        "a-b"
    );
    assert_eq!(text("{{ x | join }}", json!({"x": ["a", "b"]})), "a b");
    assert_eq!(text("{{ x | size }}", json!({"x": [1, 2, 3]})), "3");
    assert_eq!(text("{{ 'x' | prepend: 'y' }}", json!({})), "yx");
    assert_eq!(
        text("{{ 'aXbX' | replace_first: 'X', '-' }}", json!({})),
        "a-bX"
    );
    assert_eq!(text("{{ 'aXbX' | remove_first: 'X' }}", json!({})), "abX");
    assert_eq!(text("{{ 1 | plus: 2 }}", json!({})), "3");
    assert_eq!(text("{{ n | round: 1 }}", json!({"n": 2.345})), "2.3");
}

#[test]
fn date_accepts_now_and_unix_times() {
    let year = text("{{ 'now' | date: '%Y' }}", json!({}));
    assert!(year.starts_with("20"), "{year}");
    assert_eq!(text("{{ '86400' | date: '%F' }}", json!({})), "1970-01-02");
}

#[test]
fn control_flow_and_loops() {
    let src = "{% for i in (1..5) limit: 3 offset: 1 %}{{ forloop.index }}:{{ i }}{% unless forloop.last %},{% endunless %}{% endfor %}";
    assert_eq!(text(src, json!({})), "1:2,2:3,3:4");
    let src = "{% for x in xs reversed %}{{ x }}{% else %}none{% endfor %}";
    assert_eq!(text(src, json!({"xs": [1, 2, 3]})), "321");
    assert_eq!(text(src, json!({})), "none");
    let src = "{% for x in xs %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}";
    assert_eq!(text(src, json!({"xs": [1, 2, 3]})), "1");
    let src = "{% for x in xs %}{% if x == 2 %}{% continue %}{% endif %}{{ x }}{% endfor %}";
    assert_eq!(text(src, json!({"xs": [1, 2, 3]})), "13");
    let src = "{% for a in xs %}{% for b in xs %}{{ forloop.parentloop.index }}{{ b }} {% endfor %}{% endfor %}";
    assert_eq!(text(src, json!({"xs": [1, 2]})), "11 12 21 22 ");
    let src = "{% for p in h %}{{ p[0] }}={{ p[1] }};{% endfor %}";
    assert_eq!(text(src, json!({"h": {"a": 1}})), "a=1;");
    let src =
        "{% capture c %}{{ 'x' | upcase }}{% endcapture %}{% assign d = c | append: c %}{{ d }}";
    assert_eq!(text(src, json!({})), "XX");
    let src = "{% case x %}{% when 1 %}one{% else %}other{% endcase %}";
    assert_eq!(text(src, json!({"x": 1})), "one");
}

#[test]
fn assigned_arrays_loop_laxly() {
    let src = "{% assign s = xs | sort: 'n' %}{% for x in s %}[{{ x.n }}{{ x.missing.deeper }}]{% endfor %}";
    assert_eq!(text(src, json!({"xs": [{"n": 2}, {"n": 1}]})), "[1][2]");
}

#[test]
fn as_object_returns_numbers_and_objects_themselves() {
    assert_eq!(
        render("{{ n | as_object }}", json!({"n": 42})),
        Ok(json!(42))
    );
    assert_eq!(
        render(
            "{{ a.b | as_object }}",
            json!({"a": {"b": [1, {"c": true}]}})
        ),
        Ok(json!([1, {"c": true}]))
    );
    assert_eq!(
        render("x {{ missing | as_object }}", json!({})),
        Ok(Value::Null)
    );
}

#[test]
fn match_exposes_its_parts() {
    let src = r#"{% regex_replace "(\d)(?<rest>\d)" in %}a12b34{% with %}[{{ match.pre_match }}|{{ match.post_match }}|{{ match.size }}|{{ match[1] }}|{{ match.names | join: ',' }}|{{ rest }}]{% endregex_replace %}"#;
    assert_eq!(
        text(src, json!({})),
        "a[a|b34|3|1|rest|2]b[a12b||3|3|rest|4]"
    );
}

#[test]
fn regex_replace_without_with_removes_matches() {
    assert_eq!(
        text(
            r#"{% regex_replace "\d" %}a1b2{% endregex_replace %}"#,
            json!({})
        ),
        "ab"
    );
}

#[test]
fn to_uri_exposes_the_parts_of_a_url() {
    let src = "{% assign u = s | to_uri %}{{ u.scheme }}|{{ u.userinfo }}|{{ u.host }}|{{ u.port }}|{{ u.path }}|{{ u.query }}|{{ u.fragment }}";
    assert_eq!(
        text(src, json!({"s": "https://me:pw@example.com/a/b?q=1#top"})),
        "https|me:pw|example.com|443|/a/b|q=1|top"
    );
}

#[test]
fn hex_and_escape_filters() {
    assert_eq!(text("{{ 'Hi' | hex_encode }}", json!({})), "4869");
    assert_eq!(text("{{ '4869' | hex_decode }}", json!({})), "Hi");
    assert_eq!(
        text("{{ 'a b&c/d*' | uri_escape }}", json!({})),
        "a+b%26c%2Fd%2A"
    );
    assert_eq!(text("{{ '&nbsp;&amp;' | unescape }}", json!({})), "&nbsp;&");
    assert_eq!(text("{{ 'x' | fromjson }}", json!({})), "");
}

#[test]
fn compile_errors_are_one_line() {
    for src in [
        "{{ x | nosuchfilter }}",
        "{% nosuchtag %}",
        "{% if x %}",
        "{{bar}",
        "{% include 'x' %}",
    ] {
        let e = compile(src, &Limits::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!e.is_empty(), "{src} compiles");
        assert!(!e.contains('\n'), "{src}: {e}");
    }
}

#[test]
fn render_errors_are_one_line() {
    let e = render("{{ x | regex_replace: '(', '' }}", json!({"x": "a"}))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("invalid regular expression"), "{e}");
    assert!(!e.contains('\n'), "{e}");
}

#[test]
fn base64_filters() {
    assert_eq!(text("{{ 'Hi?>' | base64_encode }}", json!({})), "SGk/Pg==");
    assert_eq!(
        text("{{ 'Hi?>' | base64_url_safe_encode }}", json!({})),
        "SGk_Pg=="
    );
    assert_eq!(text("{{ 'SGk/Pg==' | base64_decode }}", json!({})), "Hi?>");
    assert!(render("{{ '%%' | base64_decode }}", json!({})).is_err());
    assert_eq!(text("{{ '<b>' | h }}", json!({})), "&lt;b&gt;");
}

#[test]
fn errors_name_the_problem_and_the_place() {
    let e = compile("{{bar}", &Limits::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        e,
        "Variable '{{' at line 1, column 1 was not properly terminated with '}}'"
    );
    let e = compile("{{ 1 + }}", &Limits::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("(at line 1, column"), "{e}");
    let e = compile("{{ x | nosuch }}", &Limits::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(e, "Unknown filter; requested filter=nosuch");
}
