//! `muninn api scenarios ...`: `/api/scenarios`, in Huginn's scenario format.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use super::{Call, ListArgs, read_body};

#[derive(Subcommand)]
pub enum Action {
    /// List scenarios.
    List {
        #[command(flatten)]
        list: ListArgs,
    },
    /// Import a Huginn scenario file (or stdin: `-` or no file); creates or updates by
    /// guid and prints the import report.
    Import { file: Option<PathBuf> },
    /// Print a scenario in Huginn's export format (schema_version 1).
    Export { id: i64 },
    /// Delete a scenario.
    Delete { id: i64 },
}

pub fn call(action: &Action) -> Result<Call> {
    Ok(match action {
        Action::List { list } => Call::get(list.path("/api/scenarios", &[])?),
        Action::Import { file } => Call::send(
            "POST",
            "/api/scenarios/import".into(),
            read_body(file.as_ref())?,
        ),
        Action::Export { id } => Call::get(format!("/api/scenarios/{id}/export")),
        Action::Delete { id } => Call::delete(format!("/api/scenarios/{id}")),
    })
}
