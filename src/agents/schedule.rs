//! Schedules: Huginn's named schedules (`every_1h`, `midnight`, `7pm`, `never` ...),
//! sub-minute ones (`every_10s`, `every_30s`), and cron expressions with five fields or
//! six (leading seconds), optionally followed by a time zone name. Huginn's day-of-week
//! numbers (0 or 7 = Sunday) are translated for the cron crate, which counts from 1.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone)]
pub struct Schedule {
    cron: cron::Schedule,
    tz: Tz,
    pub text: String,
}

/// The named schedules and what they mean as cron (seconds first).
const NAMED: &[(&str, &str)] = &[
    ("every_10s", "*/10 * * * * *"),
    ("every_30s", "*/30 * * * * *"),
    ("every_1m", "0 * * * * *"),
    ("every_2m", "0 */2 * * * *"),
    ("every_5m", "0 */5 * * * *"),
    ("every_10m", "0 */10 * * * *"),
    ("every_30m", "0 */30 * * * *"),
    ("every_1h", "0 0 * * * *"),
    ("every_2h", "0 0 */2 * * *"),
    ("every_5h", "0 0 */5 * * *"),
    ("every_12h", "0 0 */12 * * *"),
    ("every_1d", "0 0 0 * * *"),
    ("every_2d", "0 0 0 */2 * *"),
    ("every_7d", "0 0 0 * * MON"),
    ("midnight", "0 0 0 * * *"),
    ("noon", "0 0 12 * * *"),
];

fn named(name: &str) -> Option<String> {
    if let Some((_, c)) = NAMED.iter().find(|(n, _)| *n == name) {
        return Some((*c).to_string());
    }
    // 1am .. 11am, 1pm .. 11pm
    let (num, pm) = match (name.strip_suffix("am"), name.strip_suffix("pm")) {
        (Some(n), _) => (n, false),
        (_, Some(n)) => (n, true),
        _ => return None,
    };
    let h: u32 = num.parse().ok()?;
    if !(1..=11).contains(&h) {
        return None;
    }
    Some(format!("0 0 {} * * *", if pm { h + 12 } else { h }))
}

fn day_name(n: &str) -> Option<&'static str> {
    Some(match n {
        "0" | "7" => "SUN",
        "1" => "MON",
        "2" => "TUE",
        "3" => "WED",
        "4" => "THU",
        "5" => "FRI",
        "6" => "SAT",
        _ => return None,
    })
}

/// Rewrites numeric days of week (`1-5`, `0,6`) as names.
fn translate_dow(field: &str) -> String {
    field
        .split(',')
        .map(|part| {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (part, None),
            };
            let range = range
                .split('-')
                .map(|d| {
                    day_name(d)
                        .map(str::to_string)
                        .unwrap_or_else(|| d.to_string())
                })
                .collect::<Vec<_>>()
                .join("-");
            match step {
                Some(s) => format!("{range}/{s}"),
                None => range,
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl Schedule {
    /// Parses a schedule; `Ok(None)` for `never` or empty. Errors say what to write.
    pub fn parse(text: &str, default_tz: Tz) -> Result<Option<Schedule>, String> {
        let t = text.trim();
        if t.is_empty() || t == "never" {
            return Ok(None);
        }
        let (expr, tz) = match named(t) {
            Some(c) => (c, default_tz),
            None => {
                let mut fields: Vec<&str> = t.split_whitespace().collect();
                let mut tz = default_tz;
                if let Some(last) = fields.last()
                    && let Ok(z) = Tz::from_str(last)
                {
                    tz = z;
                    fields.pop();
                }
                let mut fields: Vec<String> = fields.into_iter().map(str::to_string).collect();
                match fields.len() {
                    5 => fields.insert(0, "0".into()),
                    6 => {}
                    _ => {
                        return Err(format!(
                            "{t:?} is not a schedule: use a name such as every_1h, every_10s, midnight or 7pm, \
                             or a cron expression of 5 fields (or 6 with seconds first), optionally followed by a time zone"
                        ));
                    }
                }
                fields[5] = translate_dow(&fields[5]);
                (fields.join(" "), tz)
            }
        };
        let cron = cron::Schedule::from_str(&expr)
            .map_err(|e| format!("{t:?} is not a valid cron expression: {e}"))?;
        Ok(Some(Schedule {
            cron,
            tz,
            text: t.to_string(),
        }))
    }

    /// The first firing strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .after(&after.with_timezone(&self.tz))
            .next()
            .map(|t| t.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn next(s: &str, from: DateTime<Utc>) -> DateTime<Utc> {
        Schedule::parse(s, Tz::UTC)
            .unwrap()
            .unwrap()
            .next_after(from)
            .unwrap()
    }

    #[test]
    fn names_and_crons() {
        let t = Utc.with_ymd_and_hms(2026, 11, 22, 10, 15, 7).unwrap(); // a Sunday
        assert_eq!(
            next("every_10s", t),
            Utc.with_ymd_and_hms(2026, 11, 22, 10, 15, 10).unwrap()
        );
        assert_eq!(
            next("every_1h", t),
            Utc.with_ymd_and_hms(2026, 11, 22, 11, 0, 0).unwrap()
        );
        assert_eq!(
            next("7pm", t),
            Utc.with_ymd_and_hms(2026, 11, 22, 19, 0, 0).unwrap()
        );
        assert_eq!(
            next("midnight", t),
            Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap()
        );
        assert_eq!(
            next("every_7d", t),
            Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap(),
            "Mondays"
        );
        assert_eq!(
            next("0 22 * * 1-5", t),
            Utc.with_ymd_and_hms(2026, 11, 23, 22, 0, 0).unwrap()
        );
        assert_eq!(
            next("30 * * * * *", t),
            Utc.with_ymd_and_hms(2026, 11, 22, 10, 15, 30).unwrap()
        );
        assert_eq!(
            next("0 9 * * * Europe/Paris", t),
            Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap()
        );
        assert!(Schedule::parse("never", Tz::UTC).unwrap().is_none());
        for odd in ["€", "1€", "pm", "12pm", "0am"] {
            assert!(
                Schedule::parse(odd, Tz::UTC).is_err(),
                "{odd} is not a schedule"
            );
        }
        assert!(
            Schedule::parse("every_3m", Tz::UTC)
                .unwrap_err()
                .contains("not a schedule")
        );
        assert!(Schedule::parse("61 * * * *", Tz::UTC).is_err());
    }
}
