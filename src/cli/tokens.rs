//! `muninn api tokens ...`: `/api/tokens`, the API tokens of the calling token's user
//! (`muninn token ...` works on the database directly, for any user).

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use super::Call;

#[derive(Subcommand)]
pub enum Action {
    /// List tokens (never their secrets).
    List,
    /// Create a token and print it (its secret is shown only this once).
    Create {
        /// A name to tell the token by, e.g. "ci".
        #[arg(long)]
        name: String,
        /// admin, full or read [default: full]
        #[arg(long)]
        scope: Option<String>,
    },
    /// Revoke a token; it stops working at once.
    Revoke { id: i64 },
    /// Replace a token's secret with a new one (printed once).
    Rotate { id: i64 },
}

pub fn call(action: &Action) -> Result<Call> {
    Ok(match action {
        Action::List => Call::get("/api/tokens".into()),
        Action::Create { name, scope } => {
            let mut body = json!({ "name": name });
            if let Some(s) = scope {
                body["scope"] = json!(s);
            }
            Call::send("POST", "/api/tokens".into(), body)
        }
        Action::Revoke { id } => Call::delete(format!("/api/tokens/{id}")),
        Action::Rotate { id } => Call::send("POST", format!("/api/tokens/{id}/rotate"), json!({})),
    })
}
