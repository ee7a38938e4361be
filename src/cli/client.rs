//! How the command line reaches a running hub: its URL and an API token (`--url` /
//! `MUNINN_URL`, `--token` / `MUNINN_TOKEN`, else the data directory's `admin.token`),
//! and one call over HTTP whose error answer becomes an error carrying the API's own
//! message (either error shape: a sentence, or `{code, message}`).

use anyhow::{Context as _, Result};
use muninn::config::Config;
use serde_json::Value;

/// How the CLI reaches a running hub.
#[derive(clap::Args)]
pub struct HubArgs {
    /// The hub's base URL.
    #[arg(
        long,
        env = "MUNINN_URL",
        default_value = "http://127.0.0.1:3000",
        global = true
    )]
    pub url: String,
    /// API token [default: the contents of <data dir>/admin.token]
    #[arg(long, env = "MUNINN_TOKEN", global = true)]
    pub token: Option<String>,
}

pub fn hub_token(config: &Config, hub: &HubArgs) -> Result<String> {
    if let Some(t) = &hub.token {
        return Ok(t.clone());
    }
    let path = config.admin_token_path();
    Ok(std::fs::read_to_string(&path)
        .with_context(|| {
            format!(
                "no --token or MUNINN_TOKEN given and {} cannot be read",
                path.display()
            )
        })?
        .trim()
        .to_string())
}

/// The most of an answer the CLI reads: an export of a large scenario fits.
const ANSWER_LIMIT: usize = 64 * 1024 * 1024;

/// One API call to a running hub; a non-2xx answer becomes an error with its message.
/// An empty answer (204) is `Null`.
pub async fn call_hub(
    base: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value> {
    Ok(call_hub_page(base, token, method, path, body).await?.0)
}

/// As [`call_hub`], with the next page's path when the answer is a list page that has
/// one (`Link: <path>; rel="next"`).
pub async fn call_hub_page(
    base: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<(Value, Option<String>)> {
    muninn::delivery::client::install_crypto();
    let client = awc::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .finish();
    let req = client
        .request(
            method.parse()?,
            format!("{}{path}", base.trim_end_matches('/')),
        )
        .insert_header(("Authorization", format!("Bearer {token}")));
    let mut resp = match body {
        Some(b) => req.send_json(&b).await,
        None => req.send().await,
    }
    .map_err(|e| anyhow::anyhow!("cannot reach the hub at {base}: {e}"))?;
    let bytes = resp.body().limit(ANSWER_LIMIT).await?;
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !resp.status().is_success() {
        anyhow::bail!(
            "the hub answered {}: {}",
            resp.status(),
            error_message(&value, &bytes)
        );
    }
    let next = resp
        .headers()
        .get("link")
        .and_then(|l| l.to_str().ok())
        .and_then(next_link);
    Ok((value, next))
}

/// The target of `<target>; rel="next"`.
pub fn next_link(link: &str) -> Option<String> {
    let (target, params) = link.trim().strip_prefix('<')?.split_once('>')?;
    params
        .split(';')
        .any(|p| p.trim() == "rel=\"next\"" || p.trim() == "rel=next")
        .then(|| target.to_string())
}

/// The sentence of an error answer: `{"error": "..."}`, `{"error": {"message": ...}}`,
/// else the body as text.
fn error_message(value: &Value, bytes: &[u8]) -> String {
    let e = &value["error"];
    e.as_str().or_else(|| e["message"].as_str()).map_or_else(
        || String::from_utf8_lossy(bytes).trim().to_string(),
        str::to_string,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_error_shapes_give_their_sentence() {
        assert_eq!(
            error_message(&json!({"error": "no agent 9"}), b""),
            "no agent 9"
        );
        assert_eq!(
            error_message(
                &json!({"error": {"code": "not_found", "message": "no agent 9"}}),
                b""
            ),
            "no agent 9"
        );
        assert_eq!(error_message(&Value::Null, b" Not Found\n"), "Not Found");
    }
}
