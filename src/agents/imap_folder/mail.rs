//! One mail as the imap_folder agent sees it: parsed (mail-parser), tested against the
//! agent's `conditions`, and turned into Huginn's event payload (`message_id`, `folder`,
//! `subject`, `from`, `to`, `cc`, `date`, `mime_type`, `body`, `matches`,
//! `has_attachment`, and `raw_mail` / `headers` when asked for).

use base64::Engine;
use mail_parser::{Address, MessageParser, MimeHeaders, PartType};
use regex::Regex;
use serde_json::{Map, Value, json};

use super::glob::Glob;
use crate::net::HeaderStyle;

/// The agent's `conditions`, compiled.
#[derive(Debug, Default)]
pub struct Conditions {
    pub subject: Option<Regex>,
    pub body: Option<Regex>,
    pub from: Option<Vec<Glob>>,
    pub to: Option<Vec<Glob>>,
    pub cc: Option<Vec<Glob>>,
    pub has_attachment: Option<bool>,
    /// Applied when the folder is read (only unread / read mails are fetched).
    pub is_unread: Option<bool>,
    /// Keys Huginn does not know: logged and ignored.
    pub unknown: Vec<String>,
}

/// What a payload carries beyond the mail itself.
#[derive(Debug)]
pub struct Shape {
    pub mime_types: Vec<String>,
    pub include_raw_mail: bool,
    /// `event_headers` (the names wanted), its style and key; None: no headers.
    pub headers: Option<HeaderChoice>,
}

#[derive(Debug)]
pub struct HeaderChoice {
    pub names: Vec<String>,
    pub style: HeaderStyle,
    pub key: String,
}

/// What a mail came to.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// It matched: the payload, and its Message-Id (for the notified list).
    Matched {
        message_id: Option<String>,
        payload: Value,
    },
    /// A condition did not hold.
    Skipped,
}

/// Tests the raw mail `raw` (from `folder`) against `cond`; `log` gets Huginn's notes.
pub fn judge(
    raw: &[u8],
    folder: &str,
    cond: &Conditions,
    shape: &Shape,
    log: &mut Vec<String>,
) -> Verdict {
    let Some(mail) = MessageParser::default().parse(raw) else {
        log.push("Skipping a mail that could not be read (empty)".into());
        return Verdict::Skipped;
    };
    let parts = body_parts(&mail, &shape.mime_types);
    let mut matches = Map::new();
    let subject = mail.subject().unwrap_or_default();
    if let Some(re) = &cond.subject {
        match re.captures(subject) {
            Some(c) => collect_names(re, &c, &mut matches),
            None => return Verdict::Skipped,
        }
    }
    let mut chosen = None;
    if let Some(re) = &cond.body {
        chosen = parts.iter().find_map(|p| {
            let c = re.captures(&p.1)?;
            collect_names(re, &c, &mut matches);
            Some(p)
        });
        if chosen.is_none() {
            return Verdict::Skipped;
        }
    }
    if !addresses_match(&mail, cond) {
        return Verdict::Skipped;
    }
    let has_attachment = has_attachment(&mail);
    if cond
        .has_attachment
        .is_some_and(|want| want != has_attachment)
    {
        return Verdict::Skipped;
    }
    for key in &cond.unknown {
        log.push(format!("Unknown condition key ignored: {key}"));
    }
    let (mime_type, body) = chosen
        .or(parts.first())
        .map_or(("text/plain".to_string(), String::new()), |p| p.clone());
    let message_id = mail.message_id().map(str::to_string);
    let mut payload = json!({
        "message_id": message_id,
        "folder": folder,
        "subject": mail.subject(),
        "from": addresses(mail.from()).into_iter().next(),
        "to": addresses(mail.to()),
        "cc": addresses(mail.cc()),
        "date": mail.date().map(iso_date),
        "mime_type": mime_type,
        "body": body,
        "matches": matches,
        "has_attachment": has_attachment,
    });
    if shape.include_raw_mail {
        payload["raw_mail"] = Value::String(encode64(raw));
    }
    if let Some(choice) = &shape.headers {
        payload[choice.key.as_str()] = Value::Object(event_headers(&mail, raw, choice));
    }
    Verdict::Matched {
        message_id,
        payload,
    }
}

/// Whether each of the `from`, `to` and `cc` conditions given matches one of the
/// mail's addresses in that header.
fn addresses_match(mail: &mail_parser::Message<'_>, cond: &Conditions) -> bool {
    [(&cond.from, "from"), (&cond.to, "to"), (&cond.cc, "cc")]
        .into_iter()
        .all(|(globs, field)| {
            globs.as_ref().is_none_or(|globs| {
                let addresses = addresses(header_addresses(mail, field));
                addresses.iter().any(|a| globs.iter().any(|g| g.matches(a)))
            })
        })
}

/// The mail's date as ISO 8601 with its own offset (Huginn's `date.iso8601`).
fn iso_date(d: &mail_parser::DateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}:{:02}",
        d.year,
        d.month,
        d.day,
        d.hour,
        d.minute,
        d.second,
        if d.tz_before_gmt && (d.tz_hour > 0 || d.tz_minute > 0) {
            '-'
        } else {
            '+'
        },
        d.tz_hour,
        d.tz_minute
    )
}

fn collect_names(re: &Regex, c: &regex::Captures<'_>, matches: &mut Map<String, Value>) {
    for name in re.capture_names().flatten() {
        let v = c.name(name).map(|m| m.as_str().to_string());
        matches.insert(name.to_string(), json!(v));
    }
}

fn header_addresses<'a>(
    mail: &'a mail_parser::Message<'a>,
    field: &str,
) -> Option<&'a Address<'a>> {
    match field {
        "from" => mail.from(),
        "to" => mail.to(),
        _ => mail.cc(),
    }
}

/// The mail addresses of a header (an unreadable one, like `.` or `@`, has none).
fn addresses(header: Option<&Address<'_>>) -> Vec<String> {
    header
        .map(|a| {
            a.iter()
                .filter_map(|addr| addr.address())
                .filter(|s| {
                    s.split_once('@')
                        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
                })
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The non-attachment text parts whose type is in `mime_types`, in that list's order
/// (a mail's own order among parts of one type): (MIME type, decoded text).
fn body_parts(mail: &mail_parser::Message<'_>, mime_types: &[String]) -> Vec<(String, String)> {
    let mut parts: Vec<(usize, String, String)> = mail
        .parts
        .iter()
        .filter(|p| matches!(p.body, PartType::Text(_) | PartType::Html(_)))
        .filter(|p| {
            p.attachment_name().is_none()
                && !p.content_disposition().is_some_and(|d| d.is_attachment())
        })
        .filter_map(|p| {
            let mime = p.content_type().map_or("text/plain".to_string(), |ct| {
                format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()).to_lowercase()
            });
            let rank = mime_types
                .iter()
                .position(|m| m.eq_ignore_ascii_case(&mime))?;
            Some((
                rank,
                mime,
                p.text_contents().unwrap_or_default().to_string(),
            ))
        })
        .collect();
    parts.sort_by_key(|p| p.0);
    parts.into_iter().map(|(_, m, t)| (m, t)).collect()
}

/// Huginn's rule from the BODYSTRUCTURE: a multipart/mixed anywhere in the mail.
fn has_attachment(mail: &mail_parser::Message<'_>) -> bool {
    mail.parts.iter().any(|p| {
        matches!(p.body, PartType::Multipart(_))
            && p.content_type().is_some_and(|ct| {
                ct.ctype().eq_ignore_ascii_case("multipart")
                    && ct
                        .subtype()
                        .is_some_and(|s| s.eq_ignore_ascii_case("mixed"))
            })
    })
}

/// Ruby's `Base64.encode64`: lines of 60 characters, each ending in a newline.
fn encode64(raw: &[u8]) -> String {
    let flat = base64::engine::general_purpose::STANDARD.encode(raw);
    let mut out = String::with_capacity(flat.len() + flat.len() / 60 + 1);
    for chunk in flat.as_bytes().chunks(60) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

/// The top-level header fields named in `choice` (a repeated field's values joined by
/// newlines), names written in its style.
fn event_headers(
    mail: &mail_parser::Message<'_>,
    raw: &[u8],
    choice: &HeaderChoice,
) -> Map<String, Value> {
    let mut all: Vec<(String, String)> = Vec::new();
    for h in mail.headers() {
        let name = choice.style.apply(h.name.as_str());
        let value = raw
            .get(h.offset_start as usize..h.offset_end as usize)
            .map(|v| unfold(&String::from_utf8_lossy(v)))
            .unwrap_or_default();
        match all.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => {
                v.push('\n');
                v.push_str(&value);
            }
            None => all.push((name, value)),
        }
    }
    let wanted: Vec<String> = choice.names.iter().map(|n| choice.style.apply(n)).collect();
    all.into_iter()
        .filter(|(n, _)| wanted.contains(n))
        .map(|(n, v)| (n, Value::String(v)))
        .collect()
}

/// A header value on one line, without its surrounding whitespace.
fn unfold(v: &str) -> String {
    v.split("\r\n")
        .flat_map(|l| l.split('\n'))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
