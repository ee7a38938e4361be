//! Huginn's reCAPTCHA check for webhook agents (`recaptcha_secret`,
//! `recaptcha_send_remote_addr`, `score_threshold`): the `g-recaptcha-response` param
//! is removed from the params and verified against the configured verify URL
//! (`[inbound] recaptcha_verify_url`, Google's siteverify by default). Any failure is
//! Huginn's `401 Not Authorized`.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::Value;

use super::WebResponse;
use super::webhook::Recaptcha;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A verification to make.
pub struct Check {
    secret: String,
    response: String,
    remote_ip: Option<String>,
    threshold: Option<f64>,
}

fn not_authorized() -> WebResponse {
    WebResponse::text(401, "Not Authorized")
}

/// Takes the token out of the params.
pub fn take(rc: &Recaptcha, params: &mut Value, ip: Option<IpAddr>) -> Result<Check, WebResponse> {
    let token = params
        .as_object_mut()
        .and_then(|m| m.remove("g-recaptcha-response"));
    let Some(Value::String(response)) = token else {
        return Err(not_authorized());
    };
    Ok(Check {
        secret: rc.secret.clone(),
        response,
        remote_ip: if rc.send_remote_addr {
            ip.map(|i| i.to_string())
        } else {
            None
        },
        threshold: rc.score_threshold,
    })
}

pub async fn verify(url: &str, c: Check) -> Result<(), WebResponse> {
    let mut form: Vec<(&str, &str)> = vec![("secret", &c.secret), ("response", &c.response)];
    if let Some(ip) = &c.remote_ip {
        form.push(("remoteip", ip));
    }
    let client = awc::Client::builder().timeout(TIMEOUT).finish();
    let mut resp = client.post(url).send_form(&form).await.map_err(|e| {
        tracing::warn!(error = %e, "reCAPTCHA verification request failed");
        not_authorized()
    })?;
    let reply: Value = resp.json().limit(64 * 1024).await.map_err(|e| {
        tracing::warn!(error = %e, "reCAPTCHA verification answer unreadable");
        not_authorized()
    })?;
    let ok = match (c.threshold, reply.get("score").and_then(Value::as_f64)) {
        (Some(t), Some(score)) => score > t,
        _ => reply.get("success").and_then(Value::as_bool) == Some(true),
    };
    if ok { Ok(()) } else { Err(not_authorized()) }
}
