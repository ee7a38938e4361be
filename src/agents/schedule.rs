//! Schedules: Huginn's named schedules (`every_1h`, `midnight`, `7pm`, `never` ...),
//! sub-minute ones (`every_10s`, `every_30s`), and cron expressions with five fields or
//! six (leading seconds), optionally followed by a time zone name.
//!
//! Cron expressions follow Unix (Vixie) cron: when both day-of-month and day-of-week are
//! restricted, a day matching EITHER fires (`0 0 1 * 1` is "the 1st, and every Monday"),
//! and 0 or 7 is Sunday. croner implements exactly that; the `cron` crate used before
//! ANDed the two fields, so schedules written for Unix cron fired on the wrong days.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
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

/// Why a text is no schedule; says what to write instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "{0:?} is not a schedule: use a name such as every_1h, every_10s, midnight or 7pm, or a cron expression of 5 fields (or 6 with seconds first), optionally followed by a time zone"
    )]
    NotASchedule(String),
    #[error("{text:?} is not a valid cron expression: {message}")]
    InvalidCron { text: String, message: String },
}

impl Schedule {
    /// Parses a schedule; `Ok(None)` for `never` or empty. Errors say what to write.
    pub fn parse(text: &str, default_tz: Tz) -> Result<Option<Schedule>, ScheduleError> {
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
                        return Err(ScheduleError::NotASchedule(t.to_string()));
                    }
                }
                (fields.join(" "), tz)
            }
        };
        // Seconds are always present here (five-field forms got a leading 0 above), so a
        // 6-field text is never mistaken for one with a year. Sloppy ranges (`0/10`)
        // stay accepted because the previous parser took them and stored agents use them.
        let parser = CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(false)
            .sloppy_ranges(true)
            .build();
        let cron = parser
            .parse(&expr)
            .map_err(|e| ScheduleError::InvalidCron {
                text: t.to_string(),
                message: e.to_string(),
            })?;
        Ok(Some(Schedule {
            cron,
            tz,
            text: t.to_string(),
        }))
    }

    /// The first firing strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&after.with_timezone(&self.tz), false)
            .ok()
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
                .to_string()
                .contains("not a schedule")
        );
        assert!(Schedule::parse("61 * * * *", Tz::UTC).is_err());
    }

    #[test]
    fn day_of_month_or_day_of_week_as_in_unix_cron() {
        // Tuesday 2026-12-01 10:00: the 1st of the month, and not a Monday.
        let t = Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0).unwrap(); // a Monday
        let firings: Vec<DateTime<Utc>> = {
            let s = Schedule::parse("0 0 1 * 1", Tz::UTC).unwrap().unwrap();
            let mut at = t;
            (0..4)
                .map(|_| {
                    at = s.next_after(at).unwrap();
                    at
                })
                .collect()
        };
        assert_eq!(
            firings,
            [
                Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(), // the 1st, a Tuesday
                Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0).unwrap(), // a Monday
                Utc.with_ymd_and_hms(2026, 12, 14, 0, 0, 0).unwrap(),
                Utc.with_ymd_and_hms(2026, 12, 21, 0, 0, 0).unwrap(),
            ],
            "the 1st OR any Monday"
        );
        // Only one of the two restricted: the other is not a wildcard that matches all days.
        assert_eq!(
            next("0 0 1 * *", t),
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            next("0 0 * * 1", t),
            Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn sunday_is_zero_or_seven_and_names_work() {
        let t = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(); // a Monday
        let sunday = Utc.with_ymd_and_hms(2026, 11, 29, 6, 0, 0).unwrap();
        for s in [
            "0 6 * * 0",
            "0 6 * * 7",
            "0 6 * * SUN",
            "0 6 * * sun",
            "0 0 6 * * 0",
        ] {
            assert_eq!(next(s, t), sunday, "{s}");
        }
        assert_eq!(
            next("0 6 * * 5-7", t),
            Utc.with_ymd_and_hms(2026, 11, 27, 6, 0, 0).unwrap(),
            "Friday to Sunday"
        );
        assert_eq!(
            next("0 6 * * 6,0", t),
            Utc.with_ymd_and_hms(2026, 11, 28, 6, 0, 0).unwrap(),
            "Saturday and Sunday"
        );
        assert_eq!(
            next("0/20 * * * *", t),
            Utc.with_ymd_and_hms(2026, 11, 23, 10, 20, 0).unwrap(),
            "a start/step range, as the previous parser took it"
        );
        assert_eq!(
            next("0 12 * JAN *", t),
            Utc.with_ymd_and_hms(2027, 1, 1, 12, 0, 0).unwrap()
        );
    }

    #[test]
    fn a_day_that_never_comes_is_no_firing_not_a_hang() {
        let t = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        let s = Schedule::parse("0 0 30 2 *", Tz::UTC).unwrap().unwrap();
        assert_eq!(s.next_after(t), None);
        for bad in [
            "0 0 1 * 8",
            "0 24 * * *",
            "0 0 0 * *",
            "0 0 * 13 *",
            "* * * * * * *",
        ] {
            assert!(Schedule::parse(bad, Tz::UTC).is_err(), "{bad}");
        }
    }
}
