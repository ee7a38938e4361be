//! Moving values between JSON (events, options) and Liquid, and the two values Huginn
//! gives templates that are both text and object: a regex match (`{{ match }}` is the
//! matched text, `match[1]`, `match.pre_match` its parts) and a parsed URI (`{{ u }}` is
//! the URL, `u.host` its host).

use std::fmt;

use liquid_core::model::{DisplayCow, KStringCow, Object, ObjectView, State, Value, ValueView};
use serde_json::{Map, Value as Json};

pub fn to_liquid(v: &Json) -> Value {
    match v {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::scalar(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::scalar(i),
            None => Value::scalar(n.as_f64().unwrap_or(0.0)),
        },
        Json::String(s) => Value::scalar(s.clone()),
        Json::Array(a) => Value::Array(a.iter().map(to_liquid).collect()),
        Json::Object(o) => Value::Object(to_object(o)),
    }
}

pub fn to_object(o: &Map<String, Json>) -> Object {
    o.iter()
        .map(|(k, v)| (k.clone().into(), to_liquid(v)))
        .collect()
}

pub fn to_json(v: &dyn ValueView) -> Json {
    if v.is_nil() {
        return Json::Null;
    }
    if let Some(a) = v.as_array() {
        return Json::Array(a.values().map(to_json).collect());
    }
    if let Some(o) = v.as_object() {
        return Json::Object(o.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect());
    }
    let Some(s) = v.as_scalar() else {
        return Json::Null;
    };
    match v.type_name() {
        "whole number" => s.to_integer().map_or(Json::Null, Json::from),
        "fractional number" => s
            .to_float()
            .and_then(serde_json::Number::from_f64)
            .map_or(Json::Null, Json::Number),
        "boolean" => s.to_bool().map_or(Json::Null, Json::Bool),
        _ => Json::String(s.to_kstr().to_string()),
    }
}

/// A value that renders as `text` and indexes as `fields`.
#[derive(Debug)]
pub struct TextObject {
    pub text: String,
    pub fields: Object,
}

impl ValueView for TextObject {
    fn as_debug(&self) -> &dyn fmt::Debug {
        self
    }
    fn render(&self) -> DisplayCow<'_> {
        DisplayCow::Borrowed(&self.text)
    }
    fn source(&self) -> DisplayCow<'_> {
        DisplayCow::Borrowed(&self.text)
    }
    fn type_name(&self) -> &'static str {
        "string"
    }
    fn query_state(&self, state: State) -> bool {
        match state {
            State::Truthy => true,
            State::DefaultValue | State::Empty | State::Blank => self.text.is_empty(),
        }
    }
    fn to_kstr(&self) -> KStringCow<'_> {
        KStringCow::from_ref(&self.text)
    }
    fn to_value(&self) -> Value {
        Value::Object(self.fields.clone())
    }
    fn as_object(&self) -> Option<&dyn ObjectView> {
        Some(&self.fields)
    }
}

/// Huginn's MatchDataDrop: `match[0]`..`match[n]`, named groups, `size`, `names`,
/// `pre_match`, `post_match`.
pub fn match_object(re: &regex::Regex, caps: &regex::Captures<'_>, subject: &str) -> TextObject {
    let mut fields = Object::new();
    let whole = caps.get(0).map_or("", |m| m.as_str());
    for i in 0..caps.len() {
        let v = caps
            .get(i)
            .map_or(Value::Nil, |m| Value::scalar(m.as_str().to_owned()));
        fields.insert(i.to_string().into(), v);
    }
    let names: Vec<Value> = re
        .capture_names()
        .flatten()
        .map(|n| Value::scalar(n.to_owned()))
        .collect();
    for n in re.capture_names().flatten() {
        let v = caps
            .name(n)
            .map_or(Value::Nil, |m| Value::scalar(m.as_str().to_owned()));
        fields.insert(n.to_owned().into(), v);
    }
    let (start, end) = caps.get(0).map_or((0, 0), |m| (m.start(), m.end()));
    fields.insert("size".into(), Value::scalar(caps.len() as i64));
    fields.insert("names".into(), Value::Array(names));
    fields.insert(
        "pre_match".into(),
        Value::scalar(subject[..start].to_owned()),
    );
    fields.insert(
        "post_match".into(),
        Value::scalar(subject[end..].to_owned()),
    );
    TextObject {
        text: whole.to_owned(),
        fields,
    }
}
