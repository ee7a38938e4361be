//! `MUNINN_<SECTION>_<KEY>` environment variables for every config key, generically:
//! the keys are walked from the defaults, so a new key is settable without code here,
//! and each value is read as the TOML type of its default (a number, a boolean, an
//! array, a string). They sit between the file and the command-line flags.

use std::ffi::OsString;

use toml::{Table, Value};

use super::{Config, ConfigError, shown};

/// Variables with a meaning of their own, read by the command line (clap) with its own
/// spelling rules ("JSON" as well as "json"); the generic reading leaves them alone.
const HANDLED_BY_FLAGS: &[&str] = &["MUNINN_LOG_FORMAT"];

/// The variable that sets `key` in `[section]`.
pub fn var_name(section: &str, key: &str) -> String {
    format!("MUNINN_{section}_{key}").to_ascii_uppercase()
}

/// Every `(section, key)` a config file may set, in the defaults' order.
pub fn keys() -> Vec<(String, String)> {
    let Ok(Value::Table(root)) = Value::try_from(Config::default()) else {
        return Vec::new();
    };
    root.iter()
        .filter_map(|(s, v)| v.as_table().map(|t| (s, t)))
        .flat_map(|(s, t)| t.keys().map(move |k| (s.clone(), k.clone())))
        .collect()
}

/// Refuses a variable of a config key whose value is not UTF-8: `std::env::var` reads
/// it as unset, so the key would silently keep its file or default value (a node id
/// set that way would become the host name, the same on every container of an image).
pub fn refuse_non_unicode(lookup: impl Fn(&str) -> Option<OsString>) -> Result<(), ConfigError> {
    for (section, key) in keys() {
        let var = var_name(&section, &key);
        if let Some(raw) = lookup(&var)
            && raw.to_str().is_none()
        {
            return Err(ConfigError::Env {
                value: shown(&raw.to_string_lossy()),
                var,
                reason: "it is not valid UTF-8 text".into(),
            });
        }
    }
    Ok(())
}

/// Sets into `tree` (a parsed config file) every key whose variable `lookup` finds.
/// A value that does not read as its key's type is an error naming the variable.
pub fn overlay(
    tree: &mut Table,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let Ok(Value::Table(defaults)) = Value::try_from(Config::default()) else {
        return Ok(());
    };
    for (section, table) in defaults
        .iter()
        .filter_map(|(s, v)| v.as_table().map(|t| (s, t)))
    {
        for (key, default) in table {
            let var = var_name(section, key);
            if HANDLED_BY_FLAGS.contains(&var.as_str()) {
                continue;
            }
            let Some(raw) = lookup(&var) else { continue };
            let value = parse_as(default, &raw).map_err(|reason| ConfigError::Env {
                var: var.clone(),
                value: shown(&raw),
                reason: reason.to_string(),
            })?;
            check_alone(section, key, &value).map_err(|reason| ConfigError::Env {
                var: var.clone(),
                value: shown(&raw),
                reason: reason.to_string(),
            })?;
            let slot = tree
                .entry(section.clone())
                .or_insert_with(|| Value::Table(Table::new()));
            if let Value::Table(t) = slot {
                t.insert(key.clone(), value);
            }
        }
    }
    Ok(())
}

/// Why a variable's value does not fit its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum EnvValueError {
    #[error("expected a whole number")]
    WholeNumber,
    #[error("expected a number")]
    Number,
    #[error("expected true or false")]
    Boolean,
    #[error("expected a TOML array such as [\"a\", \"b\"]")]
    Array,
    #[error("this key cannot be set from the environment")]
    NotSettable,
    /// The key's own rule (an enum's spelling, a number's range), in serde's words.
    #[error("{0}")]
    Refused(String),
}

/// Reads `raw` as the type of `default`.
fn parse_as(default: &Value, raw: &str) -> Result<Value, EnvValueError> {
    let raw = raw.trim();
    match default {
        Value::String(_) => Ok(Value::String(raw.to_string())),
        Value::Integer(_) => raw
            .parse::<i64>()
            .map(Value::Integer)
            .map_err(|_| EnvValueError::WholeNumber),
        Value::Float(_) => raw
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|_| EnvValueError::Number),
        Value::Boolean(_) => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(Value::Boolean(false)),
            _ => Err(EnvValueError::Boolean),
        },
        Value::Array(_) => parse_array(raw),
        _ => Err(EnvValueError::NotSettable),
    }
}

/// A TOML array (`["10.0.0.0/8", "::1"]`), or comma-separated strings (`10.0.0.0/8,::1`).
fn parse_array(raw: &str) -> Result<Value, EnvValueError> {
    if raw.starts_with('[') {
        return toml::from_str::<Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .ok_or(EnvValueError::Array);
    }
    Ok(Value::Array(
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_string()))
            .collect(),
    ))
}

/// Whether the value is one the key accepts (an enum's spelling, a number's range), on
/// its own, so the error can name the variable rather than the merged config.
fn check_alone(section: &str, key: &str, value: &Value) -> Result<(), EnvValueError> {
    let mut t = Table::new();
    let mut s = Table::new();
    s.insert(key.to_string(), value.clone());
    t.insert(section.to_string(), Value::Table(s));
    t.try_into::<Config>()
        .map(|_| ())
        .map_err(|e| EnvValueError::Refused(e.message().to_string()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(vars: &[(&str, &str)], file: &str) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut tree: Table = toml::from_str(file).unwrap();
        overlay(&mut tree, |k| vars.get(k).cloned())?;
        Config::from_tree(tree, "test")
    }

    #[test]
    fn keys_of_every_type_are_set_from_the_environment() {
        let c = load(
            &[
                ("MUNINN_SERVER_PUBLIC_URL", "https://hub.example"),
                ("MUNINN_SERVER_WORKERS", "3"),
                ("MUNINN_SERVER_ACCESS_LOG", "true"),
                ("MUNINN_METRICS_ENABLED", "false"),
                ("MUNINN_INBOUND_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
                ("MUNINN_STORAGE_SYNCHRONOUS", "normal"),
            ],
            "[server]\nworkers = 7\n",
        )
        .unwrap();
        assert_eq!(c.server.public_url, "https://hub.example");
        assert_eq!(c.server.workers, 3, "the environment beats the file");
        assert!(c.server.access_log);
        assert!(!c.metrics.enabled);
        assert_eq!(c.inbound.trusted_proxies, vec!["10.0.0.0/8", "::1"]);
        assert_eq!(c.storage.synchronous, crate::config::Synchronous::Normal);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (var, value) in [
            ("MUNINN_SERVER_WORKERS", "many"),
            ("MUNINN_METRICS_ENABLED", "perhaps"),
            ("MUNINN_STORAGE_SYNCHRONOUS", "sometimes"),
            ("MUNINN_SERVER_WORKERS", "-1"),
        ] {
            let err = load(&[(var, value)], "").unwrap_err().to_string();
            assert!(err.contains(var) && err.contains(value), "{err}");
        }
    }

    #[test]
    fn every_key_in_the_default_config_lists_its_variable() {
        let text = crate::config::DEFAULT_CONFIG;
        for (section, key) in keys() {
            let var = var_name(&section, &key);
            assert!(
                text.contains(&format!("# env: {var}\n{key} = ")),
                "default-config.toml does not name {var} beside {section}.{key}"
            );
        }
        assert!(keys().len() > 30, "the keys are walked from the defaults");
    }
}
