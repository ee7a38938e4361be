//! The edit form of one subscription (`E` on Queues or its detail): its URL, whether
//! it is enabled, its event types and its filters, typed in place. The form is bound
//! to the subscription's id from the moment it opens; saving asks first, naming the
//! subscription and each change, and sends only the fields that changed.

use serde_json::{Value, json};

use crate::api::Subscription;
use crate::ui::util::cut;

/// How a field is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    /// Space toggles it; shown as yes/no.
    Bool,
    /// Comma-separated.
    List,
    /// JSON; empty clears it.
    Json,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// As the form labels it.
    pub label: &'static str,
    pub kind: FieldKind,
    pub hint: &'static str,
    pub original: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EditForm {
    pub id: i64,
    /// False until the subscription's settings arrive; nothing can be typed before.
    pub loaded: bool,
    pub fields: Vec<Field>,
    pub focus: usize,
    /// Why the last save was refused (shown in the form).
    pub error: Option<String>,
}

/// Values in the confirmation are cut so the dialog stays readable.
const SHOWN_MAX: usize = 40;

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

impl EditForm {
    pub fn loading(id: i64) -> EditForm {
        EditForm {
            id,
            loaded: false,
            fields: Vec::new(),
            focus: 0,
            error: None,
        }
    }

    /// Fills the form from the hub's answer.
    pub fn load(&mut self, s: &Subscription) {
        let filters = match &s.filters {
            None | Some(Value::Null) => String::new(),
            Some(v) => v.to_string(),
        };
        let field = |label, kind, hint, original: String| Field {
            label,
            kind,
            hint,
            value: original.clone(),
            original,
        };
        self.fields = vec![
            field("url", FieldKind::Text, "http or https URL", s.url.clone()),
            field(
                "enabled",
                FieldKind::Bool,
                "Space toggles (a disabled webhook sends nothing)",
                yes_no(s.is_active),
            ),
            field(
                "event types",
                FieldKind::List,
                "comma-separated types or patterns (* for all)",
                s.event_types.join(", "),
            ),
            field(
                "filters",
                FieldKind::Json,
                "JSON, as the API takes it; empty clears them",
                filters,
            ),
        ];
        self.loaded = true;
        self.focus = 0;
    }

    pub fn move_focus(&mut self, down: bool) {
        let n = self.fields.len().max(1);
        self.focus = if down {
            (self.focus + 1) % n
        } else {
            (self.focus + n - 1) % n
        };
    }

    pub fn type_char(&mut self, c: char) {
        let Some(f) = self.fields.get_mut(self.focus) else {
            return;
        };
        self.error = None;
        match f.kind {
            FieldKind::Bool if c == ' ' => f.value = yes_no(f.value != "yes"),
            FieldKind::Bool => {}
            _ => f.value.push(c),
        }
    }

    pub fn backspace(&mut self) {
        if let Some(f) = self.fields.get_mut(self.focus)
            && f.kind != FieldKind::Bool
        {
            f.value.pop();
        }
    }

    /// What saving would change: the request body (only changed fields) and, for
    /// the confirmation, each change as "name → new value". `Ok(None)` when nothing
    /// changed; `Err` says what is wrong with a field.
    pub fn changes(&self) -> Result<Option<(Value, Vec<String>)>, String> {
        let mut body = serde_json::Map::new();
        let mut said = Vec::new();
        for f in &self.fields {
            let value = f.value.trim();
            let (key, new) = match f.kind {
                FieldKind::Text => {
                    if value.is_empty() {
                        return Err(format!("{} is required", f.label));
                    }
                    if value == f.original.trim() {
                        continue;
                    }
                    ("url", json!(value))
                }
                FieldKind::Bool => {
                    if value == f.original {
                        continue;
                    }
                    ("is_active", json!(value == "yes"))
                }
                FieldKind::List => {
                    let list = |s: &str| -> Vec<String> {
                        s.split(',')
                            .map(|x| x.trim().to_string())
                            .filter(|x| !x.is_empty())
                            .collect()
                    };
                    let new = list(value);
                    if new.is_empty() {
                        return Err(format!(
                            "{} must list at least one type (* for all)",
                            f.label
                        ));
                    }
                    if new == list(&f.original) {
                        continue;
                    }
                    ("event_types", json!(new))
                }
                FieldKind::Json => {
                    let parse = |s: &str| -> Result<Value, String> {
                        if s.trim().is_empty() {
                            return Ok(Value::Null);
                        }
                        serde_json::from_str(s)
                            .map_err(|e| format!("{} is not valid JSON: {e}", f.label))
                    };
                    let new = parse(value)?;
                    if parse(&f.original).is_ok_and(|old| old == new) {
                        continue;
                    }
                    ("filters", new)
                }
            };
            let shown = match &new {
                Value::Null => "none".to_string(),
                Value::Bool(b) => yes_no(*b),
                Value::String(s) => s.clone(),
                Value::Array(a) if f.kind == FieldKind::List => a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                v => v.to_string(),
            };
            said.push(format!("{} → {}", f.label, cut(&shown, SHOWN_MAX)));
            body.insert(key.to_string(), new);
        }
        if body.is_empty() {
            return Ok(None);
        }
        Ok(Some((Value::Object(body), said)))
    }
}
