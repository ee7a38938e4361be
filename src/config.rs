//! One `Config` struct for every knob. Sources, weakest first: the built-in defaults
//! (documented in `default-config.toml`, which `muninn config` prints), a TOML file,
//! `MUNINN_*` environment variables, then command-line flags.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub mod accounts;
pub mod cluster;
pub mod env;
pub mod jabber;

pub use accounts::AccountsConfig;
pub use cluster::ClusterConfig;
pub use jabber::JabberConfig;

/// The commented default configuration, the documentation of every key.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("config file {path} is invalid: {reason}")]
    Parse { path: String, reason: String },
    #[error("environment variable {var}={value:?} is invalid: {reason}")]
    Env {
        var: String,
        value: String,
        reason: String,
    },
    #[error("{key} = {value:?} is invalid: {reason}")]
    Value {
        key: &'static str,
        value: String,
        reason: String,
    },
}

/// The start of a long value, for a message (a 10 KB value is not repeated whole).
pub(crate) fn shown(value: &str) -> String {
    const KEEP: usize = 64;
    match value.char_indices().nth(KEEP) {
        Some((end, _)) => format!("{}...", &value[..end]),
        None => value.to_string(),
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub agents: AgentsConfig,
    pub delivery: DeliveryConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    pub inbound: InboundConfig,
    pub smtp: SmtpConfig,
    pub apis: ApisConfig,
    pub files: FilesConfig,
    pub insecure_agents: InsecureAgentsConfig,
    pub sentiment: SentimentConfig,
    pub jabber: JabberConfig,
    pub cluster: ClusterConfig,
    pub accounts: AccountsConfig,
    /// Taken from MUNINN_ADMIN_TOKEN only; never read from a file.
    #[serde(skip)]
    pub admin_token: Option<String>,
    /// `serve --safe`: the API and the store run, no agent, subscription or incoming
    /// webhook does, so an operator can fix or delete one that breaks the hub.
    #[serde(skip)]
    pub safe_mode: bool,
    /// `serve --init`: start with a new database even where the data directory's marker
    /// says one existed (see `store::files`).
    #[serde(skip)]
    pub init: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    pub public_url: String,
    pub max_body_bytes: usize,
    pub body_read_timeout_seconds: u64,
    pub workers: usize,
    pub shutdown_timeout_seconds: u64,
    pub access_log: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:3000".into(),
            public_url: String::new(),
            max_body_bytes: 1024 * 1024,
            body_read_timeout_seconds: 30,
            workers: 0,
            shutdown_timeout_seconds: 30,
            access_log: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub synchronous: Synchronous,
    pub busy_timeout_ms: u64,
    pub reader_threads: usize,
    pub writer_batch_max: usize,
    pub writer_queue_max: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from("./muninn-data"),
            database_url: String::new(),
            synchronous: Synchronous::Full,
            busy_timeout_ms: 5000,
            reader_threads: 2,
            writer_batch_max: 1024,
            writer_queue_max: 20_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentsConfig {
    pub max_propagation_depth: u32,
    pub max_events_per_root: u64,
    pub max_events_per_agent_per_minute: u32,
    pub max_events_per_user_per_minute: u32,
    pub log_length: i64,
    pub mailbox_capacity: usize,
    pub propagation_interval_seconds: u64,
    pub timezone: String,
    pub expiry_interval_seconds: u64,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            max_propagation_depth: 32,
            max_events_per_root: 10_000,
            max_events_per_agent_per_minute: 60_000,
            max_events_per_user_per_minute: 120_000,
            log_length: 200,
            mailbox_capacity: 256,
            propagation_interval_seconds: 60,
            timezone: "UTC".into(),
            expiry_interval_seconds: 60,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    pub allow_private_targets: bool,
    pub poll_interval_ms: u64,
    pub window: usize,
    pub secret_rotation_grace_seconds: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            allow_private_targets: false,
            poll_interval_ms: 1000,
            window: 256,
            secret_rotation_grace_seconds: 86_400,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub enabled: bool,
    pub token: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            token: String::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Inbound endpoints: both the Huginn web-request URLs and `/webhook/{token}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InboundConfig {
    pub default_rate_limit_per_minute: u32,
    pub web_request_rate_limit_per_minute: u32,
    pub idempotency_window_seconds: i64,
    pub token_rotation_grace_seconds: i64,
    pub log_retention: i64,
    pub trusted_proxies: Vec<String>,
    pub recaptcha_verify_url: String,
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            default_rate_limit_per_minute: 100,
            web_request_rate_limit_per_minute: 0,
            idempotency_window_seconds: 86_400,
            token_rotation_grace_seconds: 86_400,
            log_retention: 1000,
            trusted_proxies: Vec::new(),
            recaptcha_verify_url: "https://www.google.com/recaptcha/api/siteverify".into(),
        }
    }
}

/// How the email agents connect to the SMTP server (see `crate::mail`). Empty `host`:
/// no SMTP; email agents still save, and each mail fails with a log line that says
/// what to configure.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub user: String,
    pub password: String,
    pub password_env: String,
    pub from: String,
    pub timeout_seconds: u64,
    pub max_attempts: u32,
    pub retry_base_ms: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: String::new(),
            port: 587,
            tls: SmtpTls::Starttls,
            user: String::new(),
            password: String::new(),
            password_env: String::new(),
            from: String::new(),
            timeout_seconds: 30,
            max_attempts: 5,
            retry_base_ms: 30_000,
        }
    }
}

/// Where the local_file and read_file agents may read and write (see
/// `crate::agents::files`). Empty: those agents are refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    pub allowed_dirs: Vec<std::path::PathBuf>,
    pub max_file_bytes: u64,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            allowed_dirs: Vec::new(),
            max_file_bytes: 8 * 1024 * 1024,
        }
    }
}

/// The sentiment agent's word list (see `crate::agents::sentiment::lexicon`): a CSV file
/// in ANEW's layout that the operator provides; empty: sentiment agents are refused.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SentimentConfig {
    pub lexicon_path: String,
}

/// The password never shows in a printed config.
impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field(
                "password",
                &if self.password.is_empty() {
                    ""
                } else {
                    "<set>"
                },
            )
            .field("password_env", &self.password_env)
            .field("from", &self.from)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("max_attempts", &self.max_attempts)
            .field("retry_base_ms", &self.retry_base_ms)
            .finish()
    }
}

/// The agent types that run the user's own code on the host (shell_command): off
/// unless the operator turns them on, as Huginn's `ENABLE_INSECURE_AGENTS`. When on,
/// every run is bounded by these limits (see `agents::insecure`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InsecureAgentsConfig {
    pub enabled: bool,
    pub timeout_seconds: u64,
    pub max_output_bytes: usize,
    pub memory_mb: u64,
}

impl Default for InsecureAgentsConfig {
    fn default() -> Self {
        InsecureAgentsConfig {
            enabled: false,
            timeout_seconds: 10,
            max_output_bytes: 1024 * 1024,
            memory_mb: 512,
        }
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (a relay on the same host).
    None,
    /// Plain connection upgraded with STARTTLS, required (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// Where the agent types that call a third-party API send their requests (Huginn
/// hard-codes these). A base is replaceable so tests, mirrors and self-hosted
/// look-alikes can stand in for the real service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApisConfig {
    /// The pushover agent's base: it posts to `<base>/1/messages.json`.
    pub pushover_url: String,
    /// The weather agent's base: it reads `<base>/forecast/<key>/<lat>,<lng>`.
    pub pirate_weather_url: String,
    /// The github_notifications agent's base: it reads `<base>/notifications`.
    pub github_url: String,
}

impl Default for ApisConfig {
    fn default() -> Self {
        ApisConfig {
            pushover_url: "https://api.pushover.net".into(),
            pirate_weather_url: "https://api.pirateweather.net".into(),
            github_url: "https://api.github.com".into(),
        }
    }
}

/// Values that override the file: from flags, or from the environment through clap.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub bind: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub synchronous: Option<String>,
    pub log_format: Option<String>,
    pub admin_token: Option<String>,
}

impl Config {
    /// Parses a TOML document; unknown keys are errors that name the key.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            reason: e.to_string(),
        })
    }

    /// Reads a parsed TOML tree (a file with environment variables set into it).
    pub fn from_tree(tree: toml::Table, origin: &str) -> Result<Config, ConfigError> {
        tree.try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: origin.to_string(),
                reason: e.to_string(),
            })
    }

    /// Loads `file` if given (defaults otherwise), sets the `MUNINN_<SECTION>_<KEY>`
    /// environment variables into it, and applies the overrides.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Config, ConfigError> {
        let (text, origin) = match file {
            Some(path) => (
                std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?,
                path.display().to_string(),
            ),
            None => (String::new(), "the defaults".to_string()),
        };
        let mut tree: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: origin.clone(),
            reason: e.to_string(),
        })?;
        env::refuse_non_unicode(|var| std::env::var_os(var))?;
        env::overlay(&mut tree, |var| std::env::var(var).ok())?;
        let mut config = Config::from_tree(tree, &origin)?;
        config.apply(overrides)?;
        config.timezone()?;
        config.jabber.extra_roots()?;
        config.cluster.check()?;
        Ok(config)
    }

    pub fn apply(&mut self, o: Overrides) -> Result<(), ConfigError> {
        if let Some(v) = o.bind {
            self.server.bind = v;
        }
        if let Some(v) = o.data_dir {
            self.storage.data_dir = v;
        }
        if let Some(v) = o.database_url {
            self.storage.database_url = v;
        }
        if let Some(v) = o.synchronous {
            self.storage.synchronous = match v.to_ascii_lowercase().as_str() {
                "full" => Synchronous::Full,
                "normal" => Synchronous::Normal,
                _ => {
                    return Err(ConfigError::Value {
                        key: "storage.synchronous",
                        value: v,
                        reason: "use \"full\" or \"normal\"".into(),
                    });
                }
            };
        }
        if let Some(v) = o.log_format {
            self.log.format = match v.to_ascii_lowercase().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError::Value {
                        key: "log.format",
                        value: v,
                        reason: "use \"text\" or \"json\"".into(),
                    });
                }
            };
        }
        for p in &self.inbound.trusted_proxies {
            crate::net::parse_net(p).map_err(|e| ConfigError::Value {
                key: "inbound.trusted_proxies",
                value: p.clone(),
                reason: e.to_string(),
            })?;
        }
        if let Some(v) = o.admin_token.filter(|t| !t.trim().is_empty()) {
            self.admin_token = Some(v);
        }
        Ok(())
    }

    /// The time zone schedules are read in.
    pub fn timezone(&self) -> Result<chrono_tz::Tz, ConfigError> {
        self.agents
            .timezone
            .parse()
            .map_err(|_| ConfigError::Value {
                key: "agents.timezone",
                value: self.agents.timezone.clone(),
                reason: "use an IANA time zone name such as UTC or Europe/Paris".into(),
            })
    }

    pub fn database_path(&self) -> PathBuf {
        if self.storage.database_url.trim().is_empty() {
            self.storage.data_dir.join("muninn.db")
        } else {
            path_from_url(self.storage.database_url.trim())
        }
    }

    /// `storage.database_url` when it names a PostgreSQL database (`postgres://` or
    /// `postgresql://`); `None` for the embedded SQLite default.
    pub fn postgres_url(&self) -> Option<&str> {
        let url = self.storage.database_url.trim();
        (url.starts_with("postgres://") || url.starts_with("postgresql://")).then_some(url)
    }

    pub fn admin_token_path(&self) -> PathBuf {
        self.storage.data_dir.join("admin.token")
    }

    /// `inbound.trusted_proxies`, parsed; invalid entries were refused at load.
    pub fn trusted_proxies(&self) -> Vec<ipnet::IpNet> {
        self.inbound
            .trusted_proxies
            .iter()
            .filter_map(|p| crate::net::parse_net(p).ok())
            .collect()
    }
}

/// How hard SQLite works to make a commit survive a power cut (`storage.synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// fsync on every commit: a 2xx survives power loss (the default).
    Full,
    /// fsync at checkpoints only: a 2xx survives a crash of muninn, not of the machine.
    Normal,
}

/// `storage.database_url`: accepts `sqlite://path`, `sqlite:path` or a plain path.
pub fn path_from_url(url: &str) -> PathBuf {
    let stripped = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    PathBuf::from(stripped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_defaults_are_the_defaults() {
        let parsed = Config::from_toml(DEFAULT_CONFIG, "default-config.toml").unwrap();
        let defaults = Config::default();
        assert_eq!(
            toml::to_string(&parsed).unwrap(),
            toml::to_string(&defaults).unwrap()
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::from_toml("[server]\nbnid = \"x\"\n", "f.toml").unwrap_err();
        assert!(err.to_string().contains("bnid"), "{err}");
    }

    #[test]
    fn flags_beat_the_file() {
        let mut c = Config::from_toml("[server]\nbind = \"0.0.0.0:1\"\n", "f").unwrap();
        c.apply(Overrides {
            bind: Some("127.0.0.1:9".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.server.bind, "127.0.0.1:9");
        assert_eq!(c.database_path(), PathBuf::from("./muninn-data/muninn.db"));
    }

    #[test]
    fn only_a_postgres_scheme_names_postgres() {
        let mut c = Config::default();
        assert_eq!(c.postgres_url(), None, "the default is SQLite");
        for sqlite in ["sqlite:///var/lib/m.db", "/var/lib/postgres/m.db", "m.db"] {
            c.storage.database_url = sqlite.into();
            assert_eq!(c.postgres_url(), None, "{sqlite}");
        }
        for pg in ["postgres://u@h/db", " postgresql://u:p@h:5432/db "] {
            c.storage.database_url = pg.into();
            assert_eq!(c.postgres_url(), Some(pg.trim()), "{pg}");
        }
    }

    #[test]
    fn bad_values_say_what_to_use() {
        let mut c = Config::default();
        let err = c
            .apply(Overrides {
                synchronous: Some("sometimes".into()),
                ..Default::default()
            })
            .unwrap_err();
        assert!(err.to_string().contains("\"full\" or \"normal\""));
    }
}
