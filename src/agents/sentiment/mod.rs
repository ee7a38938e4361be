//! `sentiment` — Huginn's SentimentAgent: for each received event, every value the
//! JSONPath `content` selects is scored for valence (good-bad), arousal
//! (active-passive) and dominance (strong-weak), each the mean over its words found in
//! the lexicon, and emitted as `{content, valence, arousal, dominance, original_event}`.
//! As in Huginn the text is lower-cased and stripped of everything but `a`-`z` and
//! spaces before it is split into words; when the valences found sum to 0 (no word
//! found), the three scores are "Insufficient data for meaningful answer".
//!
//! The lexicon is the operator's ([`lexicon`]): without one a sentiment agent cannot be
//! saved or enabled. A content value that is not text is scored as its JSON text
//! (Huginn fails on it).

pub mod lexicon;

use serde_json::{Value, json};

use super::json_parse::{present, text_of};
use super::{AgentCtx, Behavior, OptionError};
use crate::jsonpath::BoundedPath;
use crate::store::events::EventRow;
use crate::template::{TemplateId, Templates};

pub const NAME: &str = crate::agent_kind::Kind::Sentiment.name();

/// Huginn's scores when no word of the text is in the lexicon.
pub const INSUFFICIENT: &str = "Insufficient data for meaningful answer";

/// Why a sentiment agent may not be saved, enabled or run here, and how to change that.
pub fn not_configured() -> String {
    format!(
        "sentiment agents need a lexicon of word scores in ANEW's CSV layout, and none is configured: \
         muninn ships none (ANEW is released for academic research only); the operator sets {} \
         to such a file and restarts muninn",
        lexicon::SETTING
    )
}

pub struct Sentiment {
    templates: Templates,
    content: TemplateId,
    /// `content` parsed once when it has no Liquid.
    path: Option<BoundedPath>,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    Sentiment::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(Sentiment::new(options)?))
}

/// A `content` that is no JSONPath.
#[derive(Debug, thiserror::Error)]
#[error("option \"content\" is not a valid JSONPath: {0}")]
struct BadContentPath(crate::jsonpath::PathError);

fn parse_path(text: &str) -> Result<BoundedPath, BadContentPath> {
    BoundedPath::parse_huginn(text).map_err(BadContentPath)
}

impl Sentiment {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        if !present(options.get("content")) {
            return Err(OptionError::new("content", "must be present"));
        }
        if !present(options.get("expected_receive_period_in_days")) {
            return Err(OptionError::new(
                "expected_receive_period_in_days",
                "must be present",
            ));
        }
        let text = text_of(options.get("content"));
        let path = if crate::template::liquid::has_markup(&text) {
            None
        } else {
            Some(parse_path(&text).map_err(|why| {
                OptionError::new("content", format!("is not a valid JSONPath: {}", why.0))
            })?)
        };
        let mut templates = Templates::liquid();
        let content = templates
            .add("content", &text)
            .map_err(OptionError::template)?;
        Ok(Sentiment {
            templates,
            content,
            path,
        })
    }
}

/// Huginn's `sentiment_values`: the mean valence, arousal and dominance of the words
/// of `text` found in the lexicon.
pub fn scores(lexicon: &lexicon::Lexicon, text: &str) -> [Value; 3] {
    let cleaned: String = text
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || *c == ' ')
        .collect();
    let (mut sum, mut found) = ([0.0f64; 3], 0u32);
    for word in cleaned.split_whitespace() {
        if let Some(vad) = lexicon.get(word) {
            for (s, v) in sum.iter_mut().zip(vad) {
                *s += v;
            }
            found += 1;
        }
    }
    if sum[0] == 0.0 {
        return [INSUFFICIENT, INSUFFICIENT, INSUFFICIENT].map(|s| Value::String(s.into()));
    }
    sum.map(|s| json!(s / f64::from(found)))
}

impl Behavior for Sentiment {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, _event: &EventRow, payload: &Value) {
        let Some(lexicon) = ctx.sentiment.clone() else {
            ctx.error(not_configured());
            return;
        };
        let rendered;
        let path = match &self.path {
            Some(p) => p,
            None => {
                let text = match self.templates.render(&self.content, &ctx.render_ctx()) {
                    Ok(t) => t,
                    Err(e) => {
                        ctx.error(format!("Could not interpolate the options: {e}"));
                        return;
                    }
                };
                rendered = match parse_path(&text) {
                    Ok(p) => p,
                    Err(why) => {
                        ctx.error(why.to_string());
                        return;
                    }
                };
                &rendered
            }
        };
        let values = match path.query(payload) {
            Ok(v) => v,
            Err(e) => {
                ctx.error(format!("Could not read {}: {e}", path.as_str()));
                return;
            }
        };
        for content in values {
            let [valence, arousal, dominance] = scores(&lexicon, &text_of(Some(content)));
            ctx.emit(json!({
                "content": content,
                "valence": valence,
                "arousal": arousal,
                "dominance": dominance,
                "original_event": payload,
            }));
        }
    }
}
