//! Huginn's own filters (`app/concerns/liquid_interpolatable.rb`, `Filters`) other than
//! the URI ones ([`super::uri_filters`]): regex, JSON, digests, XPath quoting, HTML
//! unescaping, `group_by` and `as_object`.

use hmac::{Hmac, KeyInit, Mac};
use liquid_core::error::{Error, Result};
use liquid_core::model::Object;
use liquid_core::{Runtime, Value, ValueView};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::bounds::precheck;
use super::convert::{to_json, to_liquid};
use super::filter_kit::{Simple, arg_text, string, text};
use super::regex_util;

pub const FILTERS: &[Simple] = &[
    Simple::new("unescape", 0, 0, unescape),
    Simple::new("to_xpath", 0, 0, to_xpath),
    Simple::new("regex_extract", 1, 2, regex_extract),
    Simple::new("regex_replace", 1, 2, regex_replace),
    Simple::new("regex_replace_first", 1, 2, regex_replace_first),
    Simple::new("json", 0, 0, json),
    Simple::new("fromjson", 0, 0, fromjson),
    Simple::new("hex_encode", 0, 0, hex_encode),
    Simple::new("hex_decode", 0, 0, hex_decode),
    Simple::new("md5", 0, 0, md5),
    Simple::new("sha1", 0, 0, sha1),
    Simple::new("sha256", 0, 0, sha256),
    Simple::new("hmac_sha1", 1, 1, hmac_sha1),
    Simple::new("hmac_sha256", 1, 1, hmac_sha256),
    Simple::new("as_object", 0, 0, as_object),
    Simple::new("group_by", 1, 1, group_by),
];

pub use super::html_entities::unescape_html;

fn unescape(input: &dyn ValueView, _: &[Value], _: &dyn Runtime) -> Result<Value> {
    Ok(string(unescape_html(&text(input))))
}

/// Quotes a string as an XPath literal, with `concat()` when it has both quote kinds.
pub fn xpath_literal(s: &str) -> String {
    let mut subs = Vec::new();
    let mut rest = s;
    if rest.is_empty() {
        subs.push(String::new());
    }
    while !rest.is_empty() {
        let run = rest.find('"').unwrap_or(rest.len());
        let run = if run == 0 {
            rest.find('\'').unwrap_or(rest.len())
        } else {
            run
        };
        subs.push(rest[..run].to_owned());
        rest = &rest[run..];
    }
    let quoted: Vec<String> = subs
        .iter()
        .map(|x| {
            if x.contains('"') {
                format!("'{x}'")
            } else {
                format!("\"{x}\"")
            }
        })
        .collect();
    if quoted.len() == 1 {
        quoted.concat()
    } else {
        format!("concat({})", quoted.join(", "))
    }
}

fn to_xpath(input: &dyn ValueView, _: &[Value], _: &dyn Runtime) -> Result<Value> {
    let s = text(input);
    precheck(s.len() * 2 + 16)?;
    Ok(string(xpath_literal(&s)))
}

/// `input[regex, index]`: the whole match, a numbered or a named group; nil when there
/// is no match or no such group.
fn regex_extract(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    let subject = text(input);
    let re = regex_util::compile(&arg_text(args, 0))?;
    regex_util::charge_search(&subject)?;
    let Some(caps) = re.captures(&subject) else {
        return Ok(Value::Nil);
    };
    let m = match args.get(1) {
        None => caps.get(0),
        Some(i) if i.type_name() == "whole number" => i
            .as_scalar()
            .and_then(|s| s.to_integer())
            .and_then(|n| usize::try_from(n).ok())
            .and_then(|n| caps.get(n)),
        Some(name) => caps.name(&text(name)),
    };
    Ok(m.map_or(Value::Nil, |m| string(m.as_str())))
}

fn regex_replace(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    regex_util::replace(&text(input), &arg_text(args, 0), &arg_text(args, 1), false).map(string)
}

fn regex_replace_first(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    regex_util::replace(&text(input), &arg_text(args, 0), &arg_text(args, 1), true).map(string)
}

fn json(input: &dyn ValueView, _: &[Value], _: &dyn Runtime) -> Result<Value> {
    let s = serde_json::to_string(&to_json(input))
        .map_err(|e| Error::with_msg(format!("json: {e}")))?;
    Ok(string(s))
}

/// Parses JSON; nil when it is not JSON (as Huginn).
fn fromjson(input: &dyn ValueView, _: &[Value], _: &dyn Runtime) -> Result<Value> {
    Ok(serde_json::from_str::<serde_json::Value>(&text(input))
        .map_or(Value::Nil, |v| to_liquid(&v)))
}

fn hex_encode(input: &dyn ValueView, _: &[Value], _: &dyn Runtime) -> Result<Value> {
    let s = text(input);
    precheck(s.len() * 2)?;
    Ok(string(hex::encode(s.as_bytes())))
}

/// Ruby's `pack('H*')`: pairs of hex digits to bytes, an odd last digit as a high
/// nibble; bytes that are not UTF-8 become U+FFFD.
fn hex_decode(input: &dyn ValueView, _: &[Value], _: &dyn Runtime) -> Result<Value> {
    let s = text(input);
    let digits: Vec<u8> = s
        .chars()
        .map(|c| c.to_digit(16).unwrap_or(0) as u8)
        .collect();
    let bytes: Vec<u8> = digits
        .chunks(2)
        .map(|p| (p[0] << 4) | p.get(1).copied().unwrap_or(0))
        .collect();
    Ok(string(String::from_utf8_lossy(&bytes).into_owned()))
}

fn md5(input: &dyn ValueView, _: &[Value], _: &dyn Runtime) -> Result<Value> {
    Ok(string(hex::encode(Md5::digest(text(input).as_bytes()))))
}

fn sha1(input: &dyn ValueView, _: &[Value], _: &dyn Runtime) -> Result<Value> {
    Ok(string(hex::encode(Sha1::digest(text(input).as_bytes()))))
}

fn sha256(input: &dyn ValueView, _: &[Value], _: &dyn Runtime) -> Result<Value> {
    Ok(string(hex::encode(Sha256::digest(text(input).as_bytes()))))
}

fn hmac_sha1(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(arg_text(args, 0).as_bytes())
        .map_err(|e| Error::with_msg(format!("hmac_sha1: {e}")))?;
    mac.update(text(input).as_bytes());
    Ok(string(hex::encode(mac.finalize().into_bytes())))
}

fn hmac_sha256(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(arg_text(args, 0).as_bytes())
        .map_err(|e| Error::with_msg(format!("hmac_sha256: {e}")))?;
    mac.update(text(input).as_bytes());
    Ok(string(hex::encode(mac.finalize().into_bytes())))
}

/// Where `as_object` leaves its value for the rendering to return.
#[derive(Default)]
pub struct AsObject(pub Option<serde_json::Value>);

/// The message that stops the rendering once `as_object` has its value (Huginn throws).
pub const AS_OBJECT_STOP: &str = "as_object stops the rendering";

fn as_object(input: &dyn ValueView, _: &[Value], runtime: &dyn Runtime) -> Result<Value> {
    runtime.registers().get_mut::<AsObject>().0 = Some(to_json(input));
    Err(Error::with_msg(AS_OBJECT_STOP))
}

/// `[{name, items}]` in the order the names first appear; anything but an array is
/// returned as it is.
fn group_by(input: &dyn ValueView, args: &[Value], _: &dyn Runtime) -> Result<Value> {
    let Some(items) = input.as_array() else {
        return Ok(input.to_value());
    };
    let prop = arg_text(args, 0);
    let mut groups: Vec<(Value, Vec<Value>)> = Vec::new();
    for item in items.values() {
        // Finding the group is linear in the groups so far; charged as such.
        super::bounds::charge(1 + groups.len() as u64 / 64)?;
        let key = item
            .as_object()
            .and_then(|o| o.get(&prop))
            .map_or(Value::Nil, |v| v.to_value());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(item.to_value()),
            None => groups.push((key, vec![item.to_value()])),
        }
    }
    Ok(Value::Array(
        groups
            .into_iter()
            .map(|(name, items)| {
                let mut o = Object::new();
                o.insert("name".into(), name);
                o.insert("items".into(), Value::Array(items));
                Value::Object(o)
            })
            .collect(),
    ))
}
