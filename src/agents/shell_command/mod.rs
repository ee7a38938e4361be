//! `shell_command` — Huginn's ShellCommandAgent: runs `command` (a shell command line,
//! run with `sh -c`, or an array of program and arguments, run without a shell) in the
//! directory `path`, feeding it `stdin`, on its schedule and for each received event
//! (every option is Liquid, rendered with the event), and emits
//! `{command, path, exit_status, errors, output}`.
//!
//! An insecure type (see `agents::insecure`): it runs only when the operator enabled
//! them, and then within the configured limits, in a child process (`runner`). The run
//! is synchronous: the agents sharing this agent's arbiter thread wait for it, at most
//! `[insecure_agents] timeout_seconds`.

pub mod runner;

use serde_json::{Value, json};

use super::json_parse::present;
use super::{AgentCtx, Behavior, OptionError, boolify};
use crate::store::events::EventRow;
use crate::template::liquid::has_markup;
use crate::template::{RenderCtx, TemplateId, TemplateTree, Templates};

pub struct ShellCommand {
    templates: Templates,
    command: TemplateTree,
    path: TemplateId,
    stdin: Option<TemplateId>,
    suppress_on_failure: bool,
    suppress_on_empty_output: bool,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    ShellCommand::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(ShellCommand::new(options)?))
}

const REQUIRED: &str =
    "is required: the path, command, and expected_update_period_in_days fields are all required.";

impl ShellCommand {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        for key in ["path", "command", "expected_update_period_in_days"] {
            if !present(options.get(key)) {
                return Err(OptionError::new(key, REQUIRED));
            }
        }
        let stdin = match options.get("stdin") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(OptionError::new("stdin", "must be a string.")),
        };
        let command = &options["command"];
        let all_strings = match command {
            Value::String(_) => true,
            Value::Array(items) => items.iter().all(Value::is_string),
            _ => false,
        };
        if !all_strings {
            return Err(OptionError::new(
                "command",
                "must be a shell command line string or an array of command line arguments.",
            ));
        }
        let path = match &options["path"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        // A templated path is known only when rendered; it is checked when it runs.
        if !has_markup(&path) && !std::path::Path::new(&path).is_dir() {
            return Err(OptionError::new(
                "path",
                format!("{path} is not a real directory."),
            ));
        }
        let mut templates = Templates::liquid();
        let command = templates
            .add_tree("command", command)
            .map_err(OptionError::template)?;
        let path = templates
            .add("path", &path)
            .map_err(OptionError::template)?;
        let stdin = stdin
            .map(|s| templates.add("stdin", &s))
            .transpose()
            .map_err(OptionError::template)?;
        Ok(ShellCommand {
            templates,
            command,
            path,
            stdin,
            suppress_on_failure: boolify(options.get("suppress_on_failure")).unwrap_or(false),
            suppress_on_empty_output: boolify(options.get("suppress_on_empty_output"))
                .unwrap_or(false),
        })
    }

    fn render(
        &self,
        rctx: &RenderCtx<'_>,
    ) -> Result<(Value, String, Option<String>), crate::template::TemplateError> {
        let command = self.templates.render_tree(&self.command, rctx)?;
        let path = self.templates.render(&self.path, rctx)?;
        let stdin = match &self.stdin {
            Some(id) => Some(self.templates.render(id, rctx)?),
            None => None,
        };
        Ok((command, path, stdin))
    }

    fn handle(&self, ctx: &mut AgentCtx<'_>, rctx: &RenderCtx<'_>) {
        let Some(limits) = ctx.insecure else {
            ctx.error(format!(
                "Unable to run: {}",
                super::insecure::not_enabled(super::Kind::ShellCommand.name())
            ));
            return;
        };
        let (command, path, stdin) = match self.render(rctx) {
            Ok(x) => x,
            Err(e) => {
                ctx.error(format!("Could not interpolate the options: {e}"));
                return;
            }
        };
        let argv: Vec<String> = match &command {
            Value::String(line) => vec!["sh".into(), "-c".into(), line.clone()],
            Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect(),
            other => vec![other.to_string()],
        };
        let shown = match &command {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let ran = match runner::run(&argv, &path, stdin.as_deref(), &limits) {
            Ok(r) => r,
            Err(why) => {
                ctx.error(format!("Ran '{shown}' under '{path}': {why}"));
                return;
            }
        };
        if let Some(sig) = ran.signal {
            ctx.error(format!(
                "'{shown}' was ended by signal {sig}{}",
                match sig {
                    24 => " (SIGXCPU: it reached the CPU time limit)",
                    6 | 11 => " (often: it reached the memory limit, [insecure_agents] memory_mb)",
                    _ => "",
                }
            ));
        }
        let failed = ran.exit_status != Some(0);
        let suppressed = (self.suppress_on_failure && failed)
            || (self.suppress_on_empty_output && ran.output.is_empty());
        if !suppressed {
            ctx.emit(json!({
                "command": command,
                "path": path,
                "exit_status": ran.exit_status,
                "errors": ran.errors,
                "output": ran.output,
            }));
        }
        ctx.log(format!("Ran '{shown}' under '{path}'"));
    }
}

impl Behavior for ShellCommand {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        let rctx = ctx.event_ctx(event, payload);
        self.handle(ctx, &rctx);
    }

    fn check(&mut self, ctx: &mut AgentCtx<'_>) {
        let rctx = ctx.render_ctx();
        self.handle(ctx, &rctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(options: Value) -> String {
        ShellCommand::new(&options)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn validates_as_huginn() {
        let ok = json!({"path": "/", "command": "pwd", "expected_update_period_in_days": "1"});
        assert!(ShellCommand::new(&ok).is_ok());
        let mut no_command = ok.clone();
        no_command["command"] = Value::Null;
        assert!(invalid(no_command).contains("fields are all required"));
        let mut bad_path = ok.clone();
        bad_path["path"] = json!("notarealpath/itreallyisnt");
        assert_eq!(
            invalid(bad_path),
            "option \"path\" notarealpath/itreallyisnt is not a real directory."
        );
        let mut stdin = ok.clone();
        stdin["stdin"] = json!(1);
        assert_eq!(invalid(stdin), "option \"stdin\" must be a string.");
        let mut array = ok.clone();
        array["command"] = json!(["echo", 1]);
        assert!(invalid(array).contains("must be a shell command line string or an array"));
        let mut templated = ok;
        templated["path"] = json!("{{ dir }}");
        templated["command"] = json!(["ls", "{{ name }}"]);
        assert!(ShellCommand::new(&templated).is_ok());
    }
}
