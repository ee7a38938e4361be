//! The mail as Huginn's SystemMailer writes it: `present` turns an event's payload
//! into a titled group of `key: value` lines (EmailConcern), the text and HTML views
//! lay out a headline and the groups (or the `body` option instead), and
//! `content_type` picks one view or, by default, sends both as multipart/alternative
//! so the reader's mail program chooses.

use lettre::Message;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use serde_json::Value;

use super::{Group, Mail, MailError};

/// The payload keys whose value becomes a group's title (EmailConcern's MAIN_KEYS).
const MAIN_KEYS: [&str; 5] = ["title", "message", "text", "main", "value"];

/// A value as Ruby's `to_s` shows it: strings bare, nil empty, hashes and arrays in
/// Ruby 3.4's `inspect` form (`{"a" => 1}`), so a mail reads as Huginn's does.
pub fn ruby_to_s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => ruby_inspect(other),
    }
}

fn ruby_inspect(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::String(s) => Value::String(s.clone()).to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(ruby_inspect)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{} => {}", Value::String(k.clone()), ruby_inspect(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// EmailConcern's `present(payload)`: the first main key present gives the title and
/// is left out of the lines; otherwise the title is "Event". Lines are sorted by key.
pub fn present(payload: &Value) -> Group {
    let Value::Object(map) = payload else {
        return Group {
            title: ruby_to_s(payload),
            entries: Vec::new(),
        };
    };
    let main = MAIN_KEYS.iter().find(|k| map.contains_key(**k)).copied();
    let title = main
        .and_then(|k| map.get(k))
        .map_or_else(|| "Event".to_string(), ruby_to_s);
    let mut keys: Vec<&String> = map.keys().filter(|k| Some(k.as_str()) != main).collect();
    keys.sort();
    let entries = keys
        .into_iter()
        .map(|k| format!("{k}: {}", map.get(k).map(ruby_to_s).unwrap_or_default()))
        .collect();
    Group { title, entries }
}

fn present_str(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.trim().is_empty())
}

/// The text/plain view: the body as it is, else the headline and the groups.
pub fn text_view(mail: &Mail) -> String {
    if let Some(body) = present_str(&mail.body) {
        return body.to_string();
    }
    let mut out = String::new();
    if let Some(h) = &mail.headline {
        out.push_str(h);
        out.push_str("\n\n");
    }
    for g in &mail.groups {
        out.push_str(&g.title);
        out.push('\n');
        for e in &g.entries {
            out.push_str("  ");
            out.push_str(e);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// Rails' `sanitize`: safe HTML kept, scripts and event handlers gone. Like Rails, the
/// text inside a removed element stays.
fn sanitize(html: &str) -> String {
    ammonia::Builder::default()
        .clean_content_tags(std::collections::HashSet::new())
        .clean(html)
        .to_string()
}

/// The text/html view: the sanitized body, else the headline and the groups.
pub fn html_view(mail: &Mail) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta content=\"text/html; charset=UTF-8\" http-equiv=\"Content-Type\" />\n  </head>\n  <body>\n",
    );
    if let Some(body) = present_str(&mail.body) {
        out.push_str(&sanitize(body));
        out.push('\n');
    } else {
        if let Some(h) = &mail.headline {
            out.push_str(&format!("    <h1>{}</h1>\n", sanitize(h)));
        }
        for g in &mail.groups {
            out.push_str("    <div style='margin-bottom: 10px;'>\n");
            out.push_str(&format!("      <div>{}</div>\n", sanitize(&g.title)));
            for e in &g.entries {
                out.push_str(&format!(
                    "      <div style='margin-left: 10px;'>\n        {}\n      </div>\n",
                    sanitize(e)
                ));
            }
            out.push_str("    </div>\n");
        }
    }
    out.push_str("  </body>\n</html>\n");
    out
}

fn mailbox(what: &'static str, value: &str) -> Result<Mailbox, MailError> {
    value
        .trim()
        .parse()
        .map_err(|e: lettre::address::AddressError| MailError::Address {
            what,
            value: value.to_string(),
            reason: e.to_string(),
        })
}

/// Whether `s` reads as an email address (`a@b.c` or `Name <a@b.c>`): what the agents
/// check `recipients` with when they are saved.
pub fn is_address(s: &str) -> bool {
    s.trim().parse::<Mailbox>().is_ok()
}

/// The MIME message for `mail` to `to`, from the mail's `from` or `default_from`.
pub fn build(mail: &Mail, to: &str, default_from: &str) -> Result<Message, MailError> {
    let from = present_str(&mail.from).unwrap_or(default_from);
    if from.trim().is_empty() {
        return Err(MailError::NotConfigured);
    }
    let builder = Message::builder()
        .from(mailbox("from", from)?)
        .to(mailbox("recipient", to)?)
        .subject(mail.subject.clone());
    let built = match mail.content_type.as_deref().map(str::trim) {
        Some("text/plain") => builder.singlepart(SinglePart::plain(text_view(mail))),
        Some("text/html") => builder.singlepart(SinglePart::html(html_view(mail))),
        _ => builder.multipart(MultiPart::alternative_plain_html(
            text_view(mail),
            html_view(mail),
        )),
    };
    built.map_err(|e| MailError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn present_picks_the_main_key_and_sorts_the_rest() {
        let g = present(&json!({"message": "hi!", "data": "Something you should know about"}));
        assert_eq!(g.title, "hi!");
        assert_eq!(g.entries, vec!["data: Something you should know about"]);
        let g = present(&json!({"b": 1, "a": {"x": [1, null]}}));
        assert_eq!(g.title, "Event");
        assert_eq!(g.entries, vec!["a: {\"x\" => [1, nil]}", "b: 1"]);
        assert_eq!(present(&json!("plain")).title, "plain");
    }

    #[test]
    fn views_follow_huginns_templates() {
        let mail = Mail {
            subject: "s".into(),
            headline: Some("Your notifications:".into()),
            groups: vec![present(&json!({"data": "Something else"}))],
            ..Mail::default()
        };
        assert_eq!(
            text_view(&mail),
            "Your notifications:\n\nEvent\n  data: Something else\n\n"
        );
        let html = html_view(&Mail {
            body: Some("<script>console.log('hello')</script><strong>rain!</strong>".into()),
            ..mail
        });
        assert!(
            html.contains("<body>\nconsole.log('hello')<strong>rain!</strong>\n  </body>"),
            "{html}"
        );
    }

    #[test]
    fn content_type_picks_the_parts() {
        let mail = Mail {
            subject: "s".into(),
            body: Some("<b>x</b>".into()),
            content_type: Some("text/plain".into()),
            ..Mail::default()
        };
        let m = build(&mail, "bob@example.com", "hub@example.com").unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(
            text.contains("Content-Type: text/plain; charset=utf-8"),
            "{text}"
        );
        assert!(!text.contains("multipart"));
        let m = build(
            &Mail {
                content_type: None,
                ..mail
            },
            "bob@example.com",
            "hub@example.com",
        )
        .unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(text.contains("multipart/alternative"), "{text}");
        assert!(matches!(
            build(&Mail::default(), "bob@example.com", ""),
            Err(MailError::NotConfigured)
        ));
        assert!(is_address("Bob <bob@example.com>") && !is_address("bob"));
    }
}
