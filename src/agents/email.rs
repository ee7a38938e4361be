//! `email` — Huginn's EmailAgent: sends each received event as a mail at once, to
//! each of `recipients` (default: the owner's address). Also holds what the email
//! family shares (EmailConcern): the options `subject`, `headline`, `body`, `from`,
//! `content_type`, `recipients`, rendered with Liquid, and their validation. Mails go
//! to the outbox (`crate::mail`), which sends, retries and logs each attempt.

use serde_json::Value;

use super::{AgentCtx, Behavior, OptionError, opt_number, type_name};
use crate::mail::{Mail, message};
use crate::store::events::EventRow;
use crate::template::{RenderCtx, TemplateError, TemplateTree, Templates};

/// The options the email agents render, compiled once.
pub struct EmailOptions {
    templates: Templates,
    subject: TemplateTree,
    headline: Option<TemplateTree>,
    body: Option<TemplateTree>,
    from: Option<TemplateTree>,
    content_type: Option<TemplateTree>,
    recipients: Option<TemplateTree>,
}

/// Devise's email rule (what Huginn checks `recipients` with): one `@`, no spaces.
fn devise_email(s: &str) -> bool {
    let mut parts = s.split('@');
    matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None)
        if !a.is_empty() && !b.is_empty() && !s.chars().any(char::is_whitespace))
}

fn present(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

impl EmailOptions {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        if !present(options.get("subject"))
            || !present(options.get("expected_receive_period_in_days"))
        {
            return Err(OptionError::new(
                "subject",
                "and expected_receive_period_in_days are required (e.g. \"subject\": \"You have a notification!\", \"expected_receive_period_in_days\": 2)",
            ));
        }
        opt_number(options, "expected_receive_period_in_days")?;
        let recipients = options.get("recipients").filter(|v| present(Some(v)));
        if let Some(r) = recipients {
            let list: Vec<&Value> = match r {
                Value::Array(items) => items.iter().collect(),
                one => vec![one],
            };
            let ok = list.iter().all(|v| {
                v.as_str()
                    .is_some_and(|s| crate::template::liquid::has_markup(s) || devise_email(s))
            });
            if !ok {
                return Err(OptionError::new(
                    "recipients",
                    "should be an email address or an array of email addresses (when provided)",
                ));
            }
        }
        let mut templates = Templates::liquid();
        let tree =
            |key: &str, templates: &mut Templates| -> Result<Option<TemplateTree>, OptionError> {
                match options.get(key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => templates
                        .add_tree(key, v)
                        .map(Some)
                        .map_err(OptionError::template),
                    Some(other) => Err(OptionError::new(
                        key,
                        format!("must be a string (got {})", type_name(other)),
                    )),
                }
            };
        let subject =
            tree("subject", &mut templates)?.unwrap_or(TemplateTree::Literal(Value::Null));
        let headline = tree("headline", &mut templates)?;
        let body = tree("body", &mut templates)?;
        let from = tree("from", &mut templates)?;
        let content_type = tree("content_type", &mut templates)?;
        let recipients = match recipients {
            Some(r) => Some(
                templates
                    .add_tree("recipients", r)
                    .map_err(OptionError::template)?,
            ),
            None => None,
        };
        Ok(EmailOptions {
            templates,
            subject,
            headline,
            body,
            from,
            content_type,
            recipients,
        })
    }

    fn text(
        &self,
        t: &Option<TemplateTree>,
        ctx: &RenderCtx<'_>,
    ) -> Result<Option<String>, TemplateError> {
        match t {
            None => Ok(None),
            Some(t) => Ok(Some(message::ruby_to_s(
                &self.templates.render_tree(t, ctx)?,
            ))),
        }
    }

    /// The mail these options make in `ctx`, without recipients or groups.
    pub fn render(&self, ctx: &RenderCtx<'_>) -> Result<Mail, TemplateError> {
        Ok(Mail {
            to: None,
            from: self.text(&self.from, ctx)?,
            subject: self
                .text(&Some(self.subject.clone()), ctx)?
                .unwrap_or_default(),
            headline: self.text(&self.headline, ctx)?,
            body: self.text(&self.body, ctx)?,
            content_type: self.text(&self.content_type, ctx)?,
            groups: Vec::new(),
            event_ids: Vec::new(),
        })
    }

    /// EmailConcern's `recipients`: the rendered list, or none (the owner's address).
    pub fn recipients(&self, ctx: &RenderCtx<'_>) -> Result<Vec<Option<String>>, TemplateError> {
        let Some(t) = &self.recipients else {
            return Ok(vec![None]);
        };
        let list: Vec<String> = match self.templates.render_tree(t, ctx)? {
            Value::Array(items) => items.iter().map(message::ruby_to_s).collect(),
            one => vec![message::ruby_to_s(&one)],
        };
        let list: Vec<Option<String>> = list
            .into_iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| Some(s.trim().to_string()))
            .collect();
        Ok(if list.is_empty() { vec![None] } else { list })
    }

    /// Queues one mail per recipient.
    pub fn queue(
        &self,
        ctx: &mut AgentCtx<'_>,
        rctx: &RenderCtx<'_>,
        event_id: Option<crate::ids::EventId>,
        mail: Mail,
    ) -> Result<(), TemplateError> {
        for to in self.recipients(rctx)? {
            ctx.mail(event_id, Mail { to, ..mail.clone() });
        }
        Ok(())
    }
}

pub struct Email {
    options: EmailOptions,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    EmailOptions::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(Email {
        options: EmailOptions::new(options)?,
    }))
}

impl Behavior for Email {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        let rctx = ctx.event_ctx(event, payload);
        let made = self.options.render(&rctx).and_then(|mut mail| {
            mail.groups = vec![message::present(payload)];
            mail.event_ids = vec![event.id.0];
            self.options.queue(ctx, &rctx, Some(event.id), mail)
        });
        if let Err(e) = made {
            ctx.error(format!("Error sending mail with event {}: {e}", event.id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::event_formatting::tests_support::{event, row};
    use serde_json::json;

    fn receive(options: Value, payload: Value) -> Vec<(Option<crate::ids::EventId>, Mail)> {
        let mut b = build(&options).unwrap();
        let row = row();
        let mut memory = json!({});
        let mut ctx = AgentCtx::new(&row, &mut memory);
        b.receive(&mut ctx, &event(&payload), &payload);
        ctx.mails
    }

    #[test]
    fn renders_every_option_and_one_mail_per_recipient() {
        let mails = receive(
            json!({"subject": "{{foo.subject}}", "headline": "h {{n}}", "body": "{{some_html}}",
                   "expected_receive_period_in_days": "2",
                   "recipients": ["a@example.com", "{{to}}"]}),
            json!({"foo": {"subject": "Something you should know about"}, "n": 1,
                   "some_html": "<strong>rain!</strong>", "to": "b@example.com"}),
        );
        assert_eq!(mails.len(), 2);
        let (event_id, m) = &mails[1];
        assert_eq!(*event_id, Some(crate::ids::EventId(7)));
        assert_eq!(m.to.as_deref(), Some("b@example.com"));
        assert_eq!(m.subject, "Something you should know about");
        assert_eq!(m.headline.as_deref(), Some("h 1"));
        assert_eq!(m.body.as_deref(), Some("<strong>rain!</strong>"));
        assert_eq!(m.groups[0].title, "Event");
    }

    #[test]
    fn recipients_default_to_the_owner() {
        let mails = receive(
            json!({"subject": "s", "expected_receive_period_in_days": 2}),
            json!({"message": "hi!"}),
        );
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].1.to, None);
        assert_eq!(mails[0].1.groups[0].title, "hi!");
    }
}
