//! `weather` — Huginn's WeatherAgent: on its schedule (default 8pm) it reads the daily
//! forecast for `location` ("lat,lng") from Pirate Weather, at `[apis]
//! pirate_weather_url` with the path `/forecast/<api_key>/<lat>,<lng>?lang=<language>`,
//! and emits the `which_day`th day (1 = today) in Huginn's event shape, with `location`
//! added. The fetch goes through the rss/website machinery: target guard, timeout,
//! response-size limit.
//!
//! One difference: Huginn formats the date in the server's local zone; here it is UTC
//! (`tz_short: "UTC"`, `isdst: 0`), the same on every host.

use chrono::{Datelike, TimeZone, Timelike, Utc};
use serde_json::{Value, json};

use super::json_parse::{present, text_of};
use super::rss::{Fetch, Fetched};
use super::{AgentCtx, Behavior, OptionError};
use crate::template::liquid::has_markup;
use crate::template::{TemplateTree, Templates};

/// The placeholder keys Huginn's default options carry: not a key yet, nothing fetched.
const PLACEHOLDER_KEYS: &[&str] = &["your-key", "put-your-key-here"];

pub struct Weather {
    templates: Templates,
    options: TemplateTree,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    Weather::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(Weather::new(options)?))
}

/// `location`, or Huginn's older `zipcode`.
fn location(opts: &Value) -> String {
    let l = text_of(opts.get("location"));
    if l.trim().is_empty() {
        text_of(opts.get("zipcode"))
    } else {
        l
    }
}

/// Why a location is no coordinates (Huginn's messages; said after "Location ").
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LocationError {
    #[error(
        "{0} is malformed. Location for Pirate Weather must be in the format \"-00.000,-00.00000\". The number of decimal places does not matter."
    )]
    Malformed(String),
    /// Latitude or longitude out of range: which, as Huginn says it.
    #[error("{location}: {problem}")]
    OutOfRange {
        location: String,
        problem: &'static str,
    },
}

/// Huginn's VALID_COORDS_REGEX (`-?\d{1,3}\.\d+` twice, comma-separated) and its
/// range checks; the coordinates when they pass.
pub fn coordinates(location: &str) -> Result<(f64, f64), LocationError> {
    let number = |s: &str| {
        let s = s.trim();
        let digits = s.strip_prefix('-').unwrap_or(s);
        let (int, frac) = digits.split_once('.')?;
        let ok = (1..=3).contains(&int.len())
            && !frac.is_empty()
            && int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit());
        ok.then(|| s.parse::<f64>().ok()).flatten()
    };
    let parsed = location
        .split_once(',')
        .and_then(|(a, b)| Some((number(a)?, number(b)?)));
    let Some((lat, lng)) = parsed else {
        return Err(LocationError::Malformed(location.to_string()));
    };
    let problem = if lat <= -90.0 {
        Some("too low of a latitude")
    } else if lat >= 90.0 {
        Some("too big of a latitude")
    } else if lng <= -180.0 {
        Some("too low of a longitude")
    } else if lng >= 180.0 {
        Some("too high of a longitude")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(LocationError::OutOfRange {
            location: location.to_string(),
            problem,
        }),
        None => Ok((lat, lng)),
    }
}

/// Huginn's message for a `service` whose API is gone (Weather Underground, Dark Sky).
pub fn retired_service(options: &Value) -> Option<String> {
    let service = text_of(options.get("service")).trim().to_lowercase();
    let why = match service.as_str() {
        "wunderground" => {
            "The Weather Underground API has been disabled since Jan 1st 2018, please switch to Pirate Weather"
        }
        "darksky" => {
            "The Dark Sky API has been disabled since March 31, 2023, please switch to Pirate Weather"
        }
        _ => return None,
    };
    Some(format!("is {service}: {why}"))
}

impl Weather {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        if let Some(why) = retired_service(options) {
            return Err(OptionError::new("service", why));
        }
        let loc = location(options);
        if loc.trim().is_empty() {
            return Err(OptionError::new("location", "is required"));
        }
        // A templated location (a credential) is checked when it is rendered.
        if !has_markup(&loc) {
            coordinates(&loc)
                .map_err(|e| OptionError::new("location", format!("is invalid: {e}")))?;
        }
        if !present(options.get("api_key")) {
            return Err(OptionError::new("api_key", "is required"));
        }
        let mut templates = Templates::liquid();
        let options = templates
            .add_tree("options", options)
            .map_err(OptionError::template)?;
        Ok(Weather { templates, options })
    }

    fn rendered(&self, ctx: &mut AgentCtx<'_>) -> Option<Value> {
        let vars = ctx.render_ctx();
        match self.templates.render_tree(&self.options, &vars) {
            Ok(o) => Some(o),
            Err(e) => {
                ctx.error(format!("Could not interpolate the options: {e}"));
                None
            }
        }
    }
}

/// Huginn's `key_setup?`: a key that is not one of the default options' placeholders.
pub fn key_setup(opts: &Value) -> bool {
    let key = text_of(opts.get("api_key"));
    !key.trim().is_empty() && !PLACEHOLDER_KEYS.contains(&key.as_str())
}

/// `which_day` as Ruby's `to_i` (default 1).
fn which_day(opts: &Value) -> i64 {
    let t = text_of(opts.get("which_day"));
    let t = t.trim();
    if t.is_empty() {
        return 1;
    }
    let end = t
        .char_indices()
        .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && (*c == '-' || *c == '+')))
        .map(|(i, c)| i + c.len_utf8())
        .last()
        .unwrap_or(0);
    t[..end].parse().unwrap_or(0)
}

/// Ruby's `to_s` of a JSON number or text: integers as written, floats as Ruby
/// prints them (`12.0`, `0.25`, `1.0e-05`); absent is "".
pub fn ruby_s(v: Option<&Value>) -> Value {
    let s = match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        Some(Value::Number(n)) => ruby_float(n.as_f64().unwrap_or(0.0)),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    Value::String(s)
}

fn ruby_float(x: f64) -> String {
    if x != 0.0 && (x.abs() < 1e-4 || x.abs() >= 1e16) {
        let e = format!("{x:e}");
        let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_string()
        } else {
            format!("{mantissa}.0")
        };
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    let s = x.to_string();
    if s.contains('.') { s } else { format!("{s}.0") }
}

fn num(day: &Value, key: &str) -> Option<f64> {
    day.get(key).and_then(Value::as_f64)
}

/// `x.round.to_s` (Ruby rounds half away from zero, as `f64::round` does).
fn rounded(x: Option<f64>) -> Value {
    x.map_or(Value::Null, |x| {
        Value::String(format!("{}", x.round() as i64))
    })
}

/// One day of Pirate Weather's `daily.data` in Huginn's event shape.
pub fn model(day: &Value, which_day: i64) -> Value {
    let s = |k: &str| ruby_s(day.get(k));
    let time = day.get("time").and_then(Value::as_i64).unwrap_or(0);
    let t = Utc.timestamp_opt(time, 0).single().unwrap_or_default();
    let celsius = |f: Option<f64>| rounded(f.map(|f| (5.0 * (f - 32.0)) / 9.0));
    json!({
        "date": {
            "epoch": s("time"),
            "pretty": t.format("%l:%M %p %Z on %B %d, %Y").to_string(),
            "day": t.day(),
            "month": t.month(),
            "year": t.year(),
            "yday": t.ordinal(),
            "hour": t.hour(),
            "min": t.format("%M").to_string(),
            "sec": t.second(),
            "isdst": 0,
            "monthname": t.format("%B").to_string(),
            "monthname_short": t.format("%b").to_string(),
            "weekday_short": t.format("%a").to_string(),
            "weekday": t.format("%A").to_string(),
            "ampm": t.format("%p").to_string(),
            "tz_short": "UTC"
        },
        "period": which_day,
        "high": {
            "fahrenheit": rounded(num(day, "temperatureMax")),
            "epoch": s("temperatureMaxTime"),
            "fahrenheit_apparent": rounded(num(day, "apparentTemperatureMax")),
            "epoch_apparent": s("apparentTemperatureMaxTime"),
            "celsius": celsius(num(day, "temperatureMax"))
        },
        "low": {
            "fahrenheit": rounded(num(day, "temperatureMin")),
            "epoch": s("temperatureMinTime"),
            "fahrenheit_apparent": rounded(num(day, "apparentTemperatureMin")),
            "epoch_apparent": s("apparentTemperatureMinTime"),
            "celsius": celsius(num(day, "temperatureMin"))
        },
        "conditions": day.get("summary").cloned().unwrap_or(Value::Null),
        "icon": day.get("icon").cloned().unwrap_or(Value::Null),
        "avehumidity": num(day, "humidity").map_or(Value::Null, |h| json!((h * 100.0) as i64)),
        "sunriseTime": s("sunriseTime"),
        "sunsetTime": s("sunsetTime"),
        "moonPhase": s("moonPhase"),
        "precip": {
            "intensity": s("precipIntensity"),
            "intensity_max": s("precipIntensityMax"),
            "intensity_max_epoch": s("precipIntensityMaxTime"),
            "probability": s("precipProbability"),
            "type": day.get("precipType").cloned().unwrap_or(Value::Null)
        },
        "dewPoint": s("dewPoint"),
        "avewind": {
            "mph": rounded(num(day, "windSpeed")),
            "kph": rounded(num(day, "windSpeed").map(|w| w * 1.609344)),
            "degrees": s("windBearing")
        },
        "visibility": s("visibility"),
        "cloudCover": s("cloudCover"),
        "pressure": s("pressure"),
        "ozone": s("ozone")
    })
}

impl Behavior for Weather {
    fn check(&mut self, ctx: &mut AgentCtx<'_>) {
        let Some(opts) = self.rendered(ctx) else {
            return;
        };
        if !key_setup(&opts) {
            ctx.log("api_key is not set up (it is a placeholder); no forecast fetched");
            return;
        }
        let loc = location(&opts);
        let (lat, lng) = match coordinates(&loc) {
            Ok(c) => c,
            Err(e) => {
                ctx.error(format!("Location {e}"));
                return;
            }
        };
        let language = text_of(opts.get("language"));
        let language = if language.trim().is_empty() {
            "en".to_string()
        } else {
            language.trim().to_lowercase()
        };
        let key = text_of(opts.get("api_key"));
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let url = format!(
            "{}/forecast/{}/{lat},{lng}?lang={}",
            ctx.apis.pirate_weather_url.trim_end_matches('/'),
            enc(key.trim()),
            enc(&language)
        );
        ctx.fetch(Fetch {
            url,
            headers: vec![("Accept".into(), "application/json".into())],
            ..Default::default()
        });
    }

    fn fetched(&mut self, ctx: &mut AgentCtx<'_>, _fetch: &Fetch, got: &Fetched) {
        if let Some(e) = &got.error {
            ctx.error(format!(
                "Could not fetch the forecast from Pirate Weather: {e}"
            ));
            return;
        }
        if let Some(status) = got.status.filter(|s| !(200..300).contains(s)) {
            ctx.error(format!("Pirate Weather answered HTTP {status}"));
            return;
        }
        let body: Value = match serde_json::from_slice(&got.body) {
            Ok(v) => v,
            Err(e) => {
                ctx.error(format!("Pirate Weather's answer is not JSON: {e}"));
                return;
            }
        };
        let Some(opts) = self.rendered(ctx) else {
            return;
        };
        let day = which_day(&opts);
        let forecast = usize::try_from(day - 1)
            .ok()
            .and_then(|i| body.pointer("/daily/data")?.get(i));
        let Some(forecast) = forecast else {
            ctx.error(format!(
                "Pirate Weather's answer has no daily forecast for which_day {day}"
            ));
            return;
        };
        let mut event = model(forecast, day);
        event["location"] = Value::String(location(&opts));
        ctx.emit(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruby_numbers_and_coordinates() {
        assert_eq!(ruby_float(12.0), "12.0");
        assert_eq!(ruby_float(0.25), "0.25");
        assert_eq!(ruby_float(0.00001), "1.0e-05");
        assert_eq!(ruby_float(-0.000123), "-0.000123");
        assert_eq!(
            coordinates("37.779329, -122.41915"),
            Ok((37.779329, -122.41915))
        );
        assert!(
            coordinates("94103")
                .unwrap_err()
                .to_string()
                .contains("is malformed")
        );
        assert!(
            coordinates("137.779329, -122.41915")
                .unwrap_err()
                .to_string()
                .contains("too big of a latitude")
        );
        assert!(
            coordinates("37.779329, -522.41915")
                .unwrap_err()
                .to_string()
                .contains("too low of a longitude")
        );
        assert!(coordinates("37,-122").is_err(), "decimals are required");
    }
}
