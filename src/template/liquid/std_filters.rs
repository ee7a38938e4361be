//! Standard Liquid filters whose `liquid` crate version differs from Ruby Liquid 5 (which
//! Huginn runs) on inputs real scenarios have: nil, empty strings, numbers as text, dates
//! as ISO-8601 or "now". Also the string-growing filters, which check the size they would
//! make before making it.

use std::fmt::Write as _;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use liquid_core::error::{Error, Result};
use liquid_core::{Runtime, Value, ValueView};

use super::bounds::precheck;
use super::filter_kit::{Simple, arg_text, string, text};

pub const FILTERS: &[Simple] = &[
    Simple::new("default", 0, 1, default),
    Simple::new("date", 1, 1, date),
    Simple::new("round", 0, 1, round),
    Simple::new("replace", 1, 2, replace),
    Simple::new("replace_first", 1, 2, replace_first),
    Simple::new("remove", 1, 1, remove),
    Simple::new("remove_first", 1, 1, remove_first),
    Simple::new("append", 1, 1, append),
    Simple::new("prepend", 1, 1, prepend),
    Simple::new("join", 0, 1, join),
    Simple::new("base64_encode", 0, 0, base64_encode),
    Simple::new("base64_decode", 0, 0, base64_decode),
    Simple::new("base64_url_safe_encode", 0, 0, base64_url_safe_encode),
    Simple::new("base64_url_safe_decode", 0, 0, base64_url_safe_decode),
];

/// Ruby Liquid: nil, false and empty strings/arrays/hashes are "missing".
fn default(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    let missing = input.is_nil()
        || input.as_scalar().and_then(|s| s.to_bool()) == Some(false)
        || input.as_array().is_some_and(|a| a.size() == 0)
        || input.as_object().is_some_and(|o| o.size() == 0)
        || input
            .as_scalar()
            .is_some_and(|s| s.to_bool().is_none() && s.to_kstr().is_empty());
    Ok(if missing {
        args.first().cloned().unwrap_or_else(|| string(""))
    } else {
        input.to_value()
    })
}

/// Ruby Liquid's `Utils.to_date`: "now"/"today", unix seconds, or a parsable time; nil,
/// "" and anything else unparsable leave the input as it was.
pub fn parse_date(s: &str) -> Option<DateTime<FixedOffset>> {
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    if lower == "now" || lower == "today" {
        return Some(Utc::now().fixed_offset());
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = s.parse().ok()?;
        return Utc
            .timestamp_opt(secs, 0)
            .single()
            .map(|d| d.fixed_offset());
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d);
    }
    if let Ok(d) = DateTime::parse_from_rfc2822(s) {
        return Some(d);
    }
    for f in [
        "%Y-%m-%d %H:%M:%S %z",
        "%Y-%m-%d %H:%M:%S%.f %z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ] {
        if let Ok(d) = DateTime::parse_from_str(s, f) {
            return Some(d);
        }
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Some(d.and_utc().fixed_offset());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|d| d.and_utc().fixed_offset());
    }
    let d = liquid_core::model::DateTime::from_str(s)?;
    let offset = FixedOffset::east_opt(d.offset().whole_seconds())?;
    offset.timestamp_opt(d.unix_timestamp(), 0).single()
}

fn date(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    let format = arg_text(args, 0);
    if format.is_empty() || input.is_nil() {
        return Ok(input.to_value());
    }
    let parsed = if input.type_name() == "whole number" {
        input
            .as_scalar()
            .and_then(|s| s.to_integer())
            .and_then(|n| Utc.timestamp_opt(n, 0).single())
            .map(|d| d.fixed_offset())
    } else {
        parse_date(&text(input))
    };
    let Some(d) = parsed else {
        return Ok(input.to_value());
    };
    let mut out = String::new();
    write!(out, "{}", d.format(&format))
        .map_err(|_| Error::with_msg(format!("invalid date format {format:?}")))?;
    Ok(string(out))
}

/// Ruby Liquid's `Utils.to_number`: numbers as they are, decimal text as a float, other
/// text by its leading integer, anything else 0.
pub fn to_number(v: &dyn ValueView) -> f64 {
    let Some(s) = v.as_scalar() else { return 0.0 };
    if let Some(i) = s.to_integer() {
        return i as f64;
    }
    if let Some(f) = s.to_float() {
        return f;
    }
    let t = s.to_kstr();
    let t = t.trim();
    let end = t
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
        .map_or(t.len(), |(i, _)| i);
    t[..end].parse::<i64>().map_or(0.0, |i| i as f64)
}

fn round(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    let n = args
        .first()
        .map_or(0.0, |a| to_number(a))
        .clamp(-20.0, 20.0) as i32;
    let x = to_number(input);
    if n <= 0 {
        let p = 10f64.powi(-n);
        let r = (x / p).round() * p;
        if r.is_finite() && r.abs() < 9.0e18 {
            return Ok(Value::scalar(r as i64));
        }
        return Ok(Value::scalar(r));
    }
    let p = 10f64.powi(n);
    Ok(Value::scalar((x * p).round() / p))
}

/// Ruby's `gsub`/`sub` with a plain string pattern; an empty pattern matches between
/// every character, as Ruby's does.
fn substitute(input: &str, pat: &str, rep: &str, first: bool) -> Result<String> {
    let count = if pat.is_empty() {
        input.chars().count() + 1
    } else {
        input.matches(pat).count()
    };
    let count = if first { count.min(1) } else { count };
    precheck(input.len().saturating_add(count.saturating_mul(rep.len())))?;
    if pat.is_empty() {
        let mut out = String::with_capacity(input.len() + count * rep.len());
        out.push_str(rep);
        if first {
            out.push_str(input);
            return Ok(out);
        }
        for c in input.chars() {
            out.push(c);
            out.push_str(rep);
        }
        return Ok(out);
    }
    Ok(if first {
        input.replacen(pat, rep, 1)
    } else {
        input.replace(pat, rep)
    })
}

fn replace(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    substitute(&text(input), &arg_text(args, 0), &arg_text(args, 1), false).map(string)
}

fn replace_first(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    substitute(&text(input), &arg_text(args, 0), &arg_text(args, 1), true).map(string)
}

fn remove(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    substitute(&text(input), &arg_text(args, 0), "", false).map(string)
}

fn remove_first(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    substitute(&text(input), &arg_text(args, 0), "", true).map(string)
}

fn append(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    let (a, b) = (text(input), arg_text(args, 0));
    precheck(a.len().saturating_add(b.len()))?;
    Ok(string(a + &b))
}

fn prepend(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    let (a, b) = (text(input), arg_text(args, 0));
    precheck(a.len().saturating_add(b.len()))?;
    Ok(string(b + &a))
}

/// Ruby Liquid joins with a space unless told otherwise; a non-array input is one item.
fn join(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    let glue = args.first().map_or_else(|| " ".to_owned(), |g| text(g));
    let Some(items) = input.as_array() else {
        return Ok(string(text(input)));
    };
    let mut out = String::new();
    for (i, item) in items.values().enumerate() {
        let t = text(item);
        precheck(out.len() + glue.len() + t.len())?;
        if i > 0 {
            out.push_str(&glue);
        }
        out.push_str(&t);
    }
    Ok(string(out))
}

fn base64_encode(input: &dyn ValueView, _: &[Value], _: &dyn Runtime) -> Result<Value> {
    use base64::Engine as _;
    let s = text(input);
    precheck(s.len() / 3 * 4 + 4)?;
    Ok(string(base64::engine::general_purpose::STANDARD.encode(s)))
}

fn base64_url_safe_encode(input: &dyn ValueView, _: &[Value], _: &dyn Runtime) -> Result<Value> {
    use base64::Engine as _;
    let s = text(input);
    precheck(s.len() / 3 * 4 + 4)?;
    Ok(string(base64::engine::general_purpose::URL_SAFE.encode(s)))
}

/// Ruby Liquid raises "invalid base64 provided to base64_decode" on bad input.
fn decode64(engine: &base64::engine::GeneralPurpose, s: &str, name: &str) -> Result<Value> {
    use base64::Engine as _;
    let bytes = engine
        .decode(s.trim())
        .map_err(|_| Error::with_msg(format!("invalid base64 provided to {name}")))?;
    Ok(string(String::from_utf8_lossy(&bytes).into_owned()))
}

fn base64_decode(input: &dyn ValueView, _: &[Value], _: &dyn Runtime) -> Result<Value> {
    decode64(
        &base64::engine::general_purpose::STANDARD,
        &text(input),
        "base64_decode",
    )
}

fn base64_url_safe_decode(input: &dyn ValueView, _: &[Value], _: &dyn Runtime) -> Result<Value> {
    decode64(
        &base64::engine::general_purpose::URL_SAFE,
        &text(input),
        "base64_url_safe_decode",
    )
}
