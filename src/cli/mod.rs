//! `muninn api ...`: the management API from the command line, so scripts need not
//! write curl. One file per resource group turns its subcommand into one HTTP call
//! ([`Call`]); this file sends it with [`client`] and prints the API's JSON answer as
//! it is (indented with `--pretty`, nothing for an empty answer). An error answer
//! exits non-zero with the API's message on stderr.

mod agents;
pub mod client;
pub mod copy_db;
mod deliveries;
mod events;
mod scenarios;
mod subscriptions;
mod tokens;

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Subcommand;
use muninn::config::Config;
use serde_json::Value;

pub use client::{HubArgs, call_hub, call_hub_page, hub_token};

#[derive(clap::Args)]
pub struct ApiArgs {
    #[command(flatten)]
    pub hub: HubArgs,
    /// Print the JSON indented.
    #[arg(long, global = true)]
    pub pretty: bool,
    #[command(subcommand)]
    pub group: Group,
}

#[derive(Subcommand)]
pub enum Group {
    /// Agents: list, get, create, update, delete, run, enable, disable, logs.
    Agents {
        #[command(subcommand)]
        action: agents::Action,
    },
    /// Outgoing webhooks: list, get, create, update, delete, pause, resume, replay.
    Subscriptions {
        #[command(subcommand)]
        action: subscriptions::Action,
    },
    /// Deliveries of outgoing webhooks: list, get, retry.
    Deliveries {
        #[command(subcommand)]
        action: deliveries::Action,
    },
    /// Events: list, get.
    Events {
        #[command(subcommand)]
        action: events::Action,
    },
    /// Scenarios (Huginn's format): list, import, export, delete.
    Scenarios {
        #[command(subcommand)]
        action: scenarios::Action,
    },
    /// API tokens of the token's user: list, create, revoke, rotate.
    Tokens {
        #[command(subcommand)]
        action: tokens::Action,
    },
}

/// The one HTTP call a subcommand makes.
pub struct Call {
    method: &'static str,
    path: String,
    body: Option<Value>,
}

impl Call {
    fn get(path: String) -> Call {
        Call {
            method: "GET",
            path,
            body: None,
        }
    }

    fn delete(path: String) -> Call {
        Call {
            method: "DELETE",
            path,
            body: None,
        }
    }

    fn send(method: &'static str, path: String, body: Value) -> Call {
        Call {
            method,
            path,
            body: Some(body),
        }
    }
}

/// What every list takes: the page (`--limit`, `--after`) and any other query parameter.
#[derive(clap::Args)]
pub struct ListArgs {
    /// At most this many items.
    #[arg(long)]
    limit: Option<u32>,
    /// Only items after this id (the next page of an oldest-first list).
    #[arg(long)]
    after: Option<i64>,
    /// Only items before this id (the next page of a newest-first list: deliveries,
    /// logs, events with order=desc).
    #[arg(long)]
    before: Option<i64>,
    /// Any other query parameter, as KEY=VALUE (repeatable), e.g. --param order=desc.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
}

impl ListArgs {
    /// `path` with this list's query, plus `more` (only those given).
    fn path(&self, path: &str, more: &[(&str, Option<String>)]) -> Result<String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let given = [
            ("limit", self.limit.map(|l| l.to_string())),
            ("after", self.after.map(|a| a.to_string())),
            ("before", self.before.map(|b| b.to_string())),
        ];
        for (k, v) in given.iter().chain(more) {
            if let Some(v) = v {
                pairs.push((k.to_string(), v.clone()));
            }
        }
        for p in &self.params {
            let (k, v) = p
                .split_once('=')
                .with_context(|| format!("--param {p:?} is not KEY=VALUE"))?;
            pairs.push((k.to_string(), v.to_string()));
        }
        if pairs.is_empty() {
            return Ok(path.to_string());
        }
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        Ok(format!("{path}?{query}"))
    }
}

/// The JSON body of a create or update: the file, or stdin when none or `-` is given.
fn read_body(file: Option<&PathBuf>) -> Result<Value> {
    let (text, from) = match file.filter(|f| f.as_os_str() != "-") {
        Some(f) => (
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?,
            f.display().to_string(),
        ),
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read the JSON body from stdin")?;
            (s, "stdin".to_string())
        }
    };
    serde_json::from_str(&text).with_context(|| format!("{from} is not JSON"))
}

/// Runs `muninn api ...`: one call, its answer on stdout.
pub fn run(config: &Config, args: &ApiArgs) -> Result<()> {
    let call = match &args.group {
        Group::Agents { action } => agents::call(action)?,
        Group::Subscriptions { action } => subscriptions::call(action)?,
        Group::Deliveries { action } => deliveries::call(action)?,
        Group::Events { action } => events::call(action)?,
        Group::Scenarios { action } => scenarios::call(action)?,
        Group::Tokens { action } => tokens::call(action)?,
    };
    let token = hub_token(config, &args.hub)?;
    let (answer, next) = actix::System::new().block_on(call_hub_page(
        &args.hub.url,
        &token,
        call.method,
        &call.path,
        call.body,
    ))?;
    // stdout stays the API's JSON; where the next page is goes to stderr.
    if let Some(next) = next {
        eprintln!("more: the next page is GET {next}");
    }
    if !answer.is_null() {
        let text = if args.pretty {
            serde_json::to_string_pretty(&answer)?
        } else {
            serde_json::to_string(&answer)?
        };
        println!("{text}");
    }
    Ok(())
}
