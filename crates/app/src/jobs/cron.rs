//! Five-field cron expressions (`minute hour day-of-month month day-of-week`, UTC) and the
//! `@hourly`-style aliases: numbers, `*`, ranges `a-b`, steps `*/n` and `a-b/n`, lists.
//! Day of week is 0–7 (0 and 7 are Sunday). As in Vixie cron, when both day fields are
//! restricted a day matching either one matches. Small on purpose: schedules here are
//! hourly to weekly, and a parser of our own keeps proc-macro dependencies out of the build.

use chrono::{DateTime, Datelike, Duration, DurationRound, Timelike, Utc};

/// A parsed schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    text: String,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_restricted: bool,
    weekdays_restricted: bool,
}

impl Cron {
    /// Parses an expression.
    ///
    /// # Errors
    /// A message naming the field that is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let expanded = match text.trim() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [mi, h, dom, mo, dow] = fields.as_slice() else {
            return Err(format!(
                "{text:?}: expected 5 fields (minute hour day-of-month month day-of-week) or an alias such as @daily"
            ));
        };
        let mut weekdays = field(dow, 0, 7, "day-of-week")?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1; // 7 is Sunday too
        }
        Ok(Self {
            text: text.trim().to_owned(),
            minutes: field(mi, 0, 59, "minute")?,
            hours: field(h, 0, 23, "hour")?,
            days: field(dom, 1, 31, "day-of-month")?,
            months: field(mo, 1, 12, "month")?,
            weekdays,
            days_restricted: !dom.starts_with('*'),
            weekdays_restricted: !dow.starts_with('*'),
        })
    }

    /// The expression as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first tick strictly after `t` (within the next five years; `None` past that,
    /// e.g. for `0 0 31 2 *`).
    #[must_use]
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut c = t.duration_trunc(Duration::minutes(1)).ok()? + Duration::minutes(1);
        let limit = t + Duration::days(5 * 366);
        while c <= limit {
            if !bit(self.months, c.month()) {
                // First minute of the next month.
                let (y, m) = if c.month() == 12 {
                    (c.year() + 1, 1)
                } else {
                    (c.year(), c.month() + 1)
                };
                c = chrono::NaiveDate::from_ymd_opt(y, m, 1)?
                    .and_hms_opt(0, 0, 0)?
                    .and_utc();
                continue;
            }
            if !self.day_matches(c) {
                c = c.duration_trunc(Duration::days(1)).ok()? + Duration::days(1);
                continue;
            }
            if !bit(self.hours, c.hour()) {
                c = c.duration_trunc(Duration::hours(1)).ok()? + Duration::hours(1);
                continue;
            }
            if !bit(self.minutes, c.minute()) {
                c += Duration::minutes(1);
                continue;
            }
            return Some(c);
        }
        None
    }

    fn day_matches(&self, c: DateTime<Utc>) -> bool {
        let dom = bit(self.days, c.day());
        let dow = bit(self.weekdays, c.weekday().num_days_from_sunday());
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => dom || dow,
            (true, false) => dom,
            (false, true) => dow,
            (false, false) => true,
        }
    }
}

fn bit(set: u64, n: u32) -> bool {
    set & (1 << n) != 0
}

fn field(text: &str, min: u32, max: u32, name: &str) -> Result<u64, String> {
    let bad = |why: &str| format!("{name} field {text:?}: {why}");
    let num = |s: &str| -> Result<u32, String> {
        let n: u32 = s.parse().map_err(|_| bad("not a number"))?;
        if n < min || n > max {
            return Err(bad(&format!("{n} is outside {min}-{max}")));
        }
        Ok(n)
    };
    let mut set = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| bad("step is not a number"))?;
                if step == 0 {
                    return Err(bad("step 0"));
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (num(a)?, num(b)?)
        } else {
            let n = num(range)?;
            // `5/15` means 5, 20, 35, 50 as in Vixie cron.
            (n, if step > 1 { max } else { n })
        };
        if lo > hi {
            return Err(bad("range goes backwards"));
        }
        let mut n = lo;
        while n <= hi {
            set |= 1 << n;
            n += step;
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("valid time")
    }

    #[test]
    fn next_ticks() {
        let c = Cron::parse("*/15 * * * *").expect("parses");
        assert_eq!(
            c.next_after(at(2026, 11, 25, 10, 7)),
            Some(at(2026, 11, 25, 10, 15))
        );
        assert_eq!(
            c.next_after(at(2026, 11, 25, 10, 15)),
            Some(at(2026, 11, 25, 10, 30))
        );
        let daily = Cron::parse("30 3 * * *").expect("parses");
        assert_eq!(
            daily.next_after(at(2026, 11, 25, 4, 0)),
            Some(at(2026, 11, 26, 3, 30))
        );
        // 2026-11-29 is a Sunday.
        let weekly = Cron::parse("0 4 * * 0").expect("parses");
        assert_eq!(
            weekly.next_after(at(2026, 11, 25, 4, 0)),
            Some(at(2026, 11, 29, 4, 0))
        );
        let sunday7 = Cron::parse("0 4 * * 7").expect("parses");
        assert_eq!(
            sunday7.next_after(at(2026, 11, 25, 4, 0)),
            Some(at(2026, 11, 29, 4, 0))
        );
        let hourly = Cron::parse("@hourly").expect("parses");
        assert_eq!(
            hourly.next_after(at(2026, 12, 31, 23, 59)),
            Some(at(2027, 1, 1, 0, 0))
        );
        let leap = Cron::parse("0 0 29 2 *").expect("parses");
        assert_eq!(
            leap.next_after(at(2026, 3, 1, 0, 0)),
            Some(at(2028, 2, 29, 0, 0))
        );
        assert_eq!(
            Cron::parse("0 0 31 2 *")
                .expect("parses")
                .next_after(at(2026, 1, 1, 0, 0)),
            None
        );
        let either = Cron::parse("0 0 1 * 1").expect("parses");
        // 2026-11-30 is a Monday, before December 1st.
        assert_eq!(
            either.next_after(at(2026, 11, 25, 0, 0)),
            Some(at(2026, 11, 30, 0, 0))
        );
        let list = Cron::parse("5,10-12,50-59/5 * * * *").expect("parses");
        assert_eq!(
            list.next_after(at(2026, 1, 1, 0, 10)),
            Some(at(2026, 1, 1, 0, 11))
        );
        assert_eq!(
            list.next_after(at(2026, 1, 1, 0, 12)),
            Some(at(2026, 1, 1, 0, 50))
        );
    }

    #[test]
    fn errors_name_the_field() {
        for (text, word) in [
            ("* * * *", "5 fields"),
            ("60 * * * *", "minute"),
            ("* 24 * * *", "hour"),
            ("* * 0 * *", "day-of-month"),
            ("* * * 13 *", "month"),
            ("* * * * 8", "day-of-week"),
            ("*/0 * * * *", "step 0"),
            ("5-1 * * * *", "backwards"),
        ] {
            let e = Cron::parse(text).expect_err(text);
            assert!(e.contains(word), "{text}: {e}");
        }
    }
}
