//! The SMTP transport: the `[smtp]` config made into a lettre async transport (tokio,
//! rustls). The password is read here, from the config or from the environment
//! variable it names, and is never logged: lettre's errors do not carry it.

use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::MailError;
use crate::config::{SmtpConfig, SmtpTls};

/// What the outbox needs from the config.
#[derive(Clone)]
pub struct SmtpSettings {
    pub config: SmtpConfig,
    /// Reads an environment variable (a closure, so tests need not set the process's).
    pub env: fn(&str) -> Option<String>,
}

impl SmtpSettings {
    pub fn from_config(config: &SmtpConfig) -> Self {
        SmtpSettings {
            config: config.clone(),
            env: |name| std::env::var(name).ok(),
        }
    }

    pub fn configured(&self) -> bool {
        !self.config.host.trim().is_empty()
    }

    /// The From address when a mail names none.
    pub fn default_from(&self) -> &str {
        self.config.from.trim()
    }

    fn password(&self) -> Result<String, MailError> {
        let var = self.config.password_env.trim();
        if var.is_empty() {
            return Ok(self.config.password.clone());
        }
        (self.env)(var).ok_or_else(|| MailError::PasswordEnv(var.to_string()))
    }

    /// A transport for the configured server, or why there is none.
    pub fn transport(&self) -> Result<Transport, MailError> {
        if !self.configured() {
            return Err(MailError::NotConfigured);
        }
        let c = &self.config;
        let host = c.host.trim().to_string();
        let tls = |host: &str| {
            TlsParameters::new(host.to_string()).map_err(|e| MailError::Build(e.to_string()))
        };
        let tls = match c.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(tls(&host)?),
            SmtpTls::Tls => Tls::Wrapper(tls(&host)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(c.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(c.timeout_seconds.clamp(1, 600))));
        if !c.user.trim().is_empty() {
            builder = builder.credentials(Credentials::new(c.user.clone(), self.password()?));
        }
        Ok(Transport {
            inner: builder.build(),
        })
    }
}

/// The SMTP server; each send opens its own connection (mail volumes are small, and
/// no background task or idle connection outlives a send).
#[derive(Clone)]
pub struct Transport {
    inner: AsyncSmtpTransport<Tokio1Executor>,
}

impl Transport {
    /// Sends one message. A 5xx answer is final; anything else may pass on a retry.
    pub async fn send(&self, message: Message) -> Result<(), MailError> {
        match self.inner.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(MailError::Refused(e.to_string())),
            Err(e) => Err(MailError::Temporary(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_host_means_not_configured_and_a_missing_password_variable_is_named() {
        let s = SmtpSettings::from_config(&SmtpConfig::default());
        assert!(matches!(s.transport(), Err(MailError::NotConfigured)));
        let s = SmtpSettings {
            config: SmtpConfig {
                host: "127.0.0.1".into(),
                tls: SmtpTls::None,
                user: "bob".into(),
                password: "in-the-file".into(),
                password_env: "MAIL_PW".into(),
                ..SmtpConfig::default()
            },
            env: |_| None,
        };
        let err = s
            .transport()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("MAIL_PW") && !err.contains("in-the-file"),
            "{err}"
        );
        let s = SmtpSettings {
            env: |_| Some("from-env".into()),
            ..s
        };
        assert_eq!(s.password().unwrap(), "from-env");
        assert!(s.transport().is_ok());
    }
}
