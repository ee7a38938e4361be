//! Huginn's tags (`credential`, `line_break`, `uuidv4`) and a `capture` that holds what it
//! captures to the value bound (the crate's collects without limit, and a capture inside
//! a loop doubling a variable would exhaust memory).

use std::collections::HashMap;
use std::io::Write;

use liquid_core::error::{Error, Result};
use liquid_core::model::{KString, Value};
use liquid_core::parser::TagReflection;
use liquid_core::{
    BlockReflection, Language, ParseBlock, ParseTag, Renderable, Runtime, TagBlock, TagTokenIter,
    Template,
};

use super::bounds::{CappedWriter, admit};

/// The credentials the template names, read before the rendering starts.
#[derive(Default)]
pub struct Credentials(pub HashMap<String, String>);

fn write_str(w: &mut dyn Write, s: &str) -> Result<()> {
    w.write_all(s.as_bytes())
        .map_err(|e| Error::with_msg(e.to_string()))
}

macro_rules! tag_reflection {
    ($t:ty, $name:literal) => {
        impl TagReflection for $t {
            fn tag(&self) -> &str {
                $name
            }
            fn description(&self) -> &str {
                ""
            }
        }
    };
}

/// `{% credential NAME %}`: the user's credential of that name, "" when there is none.
#[derive(Clone, Copy, Debug)]
pub struct CredentialTag;
tag_reflection!(CredentialTag, "credential");

#[derive(Debug)]
struct Credential(String);

impl ParseTag for CredentialTag {
    fn parse(&self, arguments: TagTokenIter<'_>, _: &Language) -> Result<Box<dyn Renderable>> {
        let name: Vec<String> = arguments.map(|t| t.as_str().to_owned()).collect();
        let name = name.join(" ");
        if name.is_empty() {
            return Err(Error::with_msg(
                "the credential tag needs a name: {% credential NAME %}",
            ));
        }
        Ok(Box::new(Credential(name)))
    }
    fn reflection(&self) -> &dyn TagReflection {
        self
    }
}

impl Renderable for Credential {
    fn render_to(&self, w: &mut dyn Write, runtime: &dyn Runtime) -> Result<()> {
        let value = runtime
            .registers()
            .get_mut::<Credentials>()
            .0
            .get(&self.0)
            .cloned()
            .unwrap_or_default();
        write_str(w, &value)
    }
}

/// Names of the credentials a source reads, so that only those are fetched.
pub fn credential_names(src: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = src;
    while let Some(at) = rest.find("{%") {
        rest = &rest[at + 2..];
        let end = rest.find("%}").unwrap_or(rest.len());
        let inner = rest[..end].trim_matches(|c: char| c == '-' || c.is_whitespace());
        if let Some(name) = inner
            .strip_prefix("credential")
            .filter(|n| n.starts_with(char::is_whitespace))
        {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            if !names.contains(&name) {
                names.push(name);
            }
        }
        rest = &rest[end..];
    }
    names
}

/// `{% line_break %}`: a newline.
#[derive(Clone, Copy, Debug)]
pub struct LineBreakTag;
tag_reflection!(LineBreakTag, "line_break");

#[derive(Debug)]
struct Fixed(&'static str);

impl Renderable for Fixed {
    fn render_to(&self, w: &mut dyn Write, _: &dyn Runtime) -> Result<()> {
        write_str(w, self.0)
    }
}

impl ParseTag for LineBreakTag {
    fn parse(&self, mut arguments: TagTokenIter<'_>, _: &Language) -> Result<Box<dyn Renderable>> {
        arguments.expect_nothing()?;
        Ok(Box::new(Fixed("\n")))
    }
    fn reflection(&self) -> &dyn TagReflection {
        self
    }
}

/// `{% uuidv4 %}`: a fresh random UUID.
#[derive(Clone, Copy, Debug)]
pub struct Uuidv4Tag;
tag_reflection!(Uuidv4Tag, "uuidv4");

#[derive(Debug)]
struct Uuid;

impl Renderable for Uuid {
    fn render_to(&self, w: &mut dyn Write, _: &dyn Runtime) -> Result<()> {
        write_str(w, &uuid::Uuid::new_v4().to_string())
    }
}

impl ParseTag for Uuidv4Tag {
    fn parse(&self, mut arguments: TagTokenIter<'_>, _: &Language) -> Result<Box<dyn Renderable>> {
        arguments.expect_nothing()?;
        Ok(Box::new(Uuid))
    }
    fn reflection(&self) -> &dyn TagReflection {
        self
    }
}

/// `{% echo expression | filters %}` (Liquid 5): the same as `{{ ... }}`.
#[derive(Clone, Copy, Debug)]
pub struct EchoTag;
tag_reflection!(EchoTag, "echo");

impl ParseTag for EchoTag {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        options: &Language,
    ) -> Result<Box<dyn Renderable>> {
        let chain = arguments
            .expect_next("an expression expected")?
            .expect_filter_chain(options)
            .into_result()?;
        arguments.expect_nothing()?;
        Ok(Box::new(chain))
    }
    fn reflection(&self) -> &dyn TagReflection {
        self
    }
}

/// `{% capture name %}...{% endcapture %}`, bounded.
#[derive(Clone, Copy, Debug)]
pub struct CaptureBlock;

impl BlockReflection for CaptureBlock {
    fn start_tag(&self) -> &str {
        "capture"
    }
    fn end_tag(&self) -> &str {
        "endcapture"
    }
    fn description(&self) -> &str {
        ""
    }
}

#[derive(Debug)]
struct Capture {
    id: KString,
    body: Template,
}

impl ParseBlock for CaptureBlock {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        mut tokens: TagBlock<'_, '_>,
        options: &Language,
    ) -> Result<Box<dyn Renderable>> {
        let id = arguments
            .expect_next("Identifier expected")?
            .expect_identifier()
            .into_result()?;
        let id = KString::from_ref(id);
        arguments.expect_nothing()?;
        let body = Template::new(tokens.parse_all(options)?);
        Ok(Box::new(Capture { id, body }))
    }
    fn reflection(&self) -> &dyn BlockReflection {
        self
    }
}

impl Renderable for Capture {
    fn render_to(&self, _: &mut dyn Write, runtime: &dyn Runtime) -> Result<()> {
        let mut buf = CappedWriter::value();
        self.body.render_to(&mut buf, runtime)?;
        let value = Value::scalar(buf.into_string());
        admit(&value)?;
        runtime.set_global(self.id.clone(), value);
        Ok(())
    }
}
