//! Lengths of time as operators type them: `90d`, `24h`, `30m`, `45s`, `2w` (one whole
//! number and one unit). Used by the CLI for a service key's lifetime and rotation grace.

use std::fmt;

/// The longest span accepted (about 100 years): keeps every later date arithmetic in range.
const MAX_SECONDS: u64 = 100 * 366 * 86_400;

/// A validated span of whole seconds, at most about 100 years. Zero is allowed (`0s`, a
/// grace period that ends at once); callers that need more say so.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(u64);

impl Span {
    /// Parses `<number><unit>` with unit `s`, `m`, `h`, `d` or `w`.
    ///
    /// # Errors
    /// A message saying what is accepted.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a duration such as 90d, 24h, 30m or 45s");
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (digits, unit) = s.split_at(split);
        if digits.is_empty() || digits.len() > 12 {
            return Err(bad());
        }
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let unit_seconds = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            _ => return Err(bad()),
        };
        match n.checked_mul(unit_seconds) {
            Some(secs) if secs <= MAX_SECONDS => Ok(Self(secs)),
            _ => Err(format!("{s:?} is longer than 100 years")),
        }
    }

    /// A span of whole seconds, capped at about 100 years.
    #[must_use]
    pub const fn from_secs(secs: u64) -> Self {
        Self(if secs > MAX_SECONDS {
            MAX_SECONDS
        } else {
            secs
        })
    }

    /// The span in seconds.
    #[must_use]
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// True for `0s`.
    #[must_use]
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Span {
    /// The largest unit that divides the span exactly (`86400` seconds prints `1d`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = [(7 * 86_400, 'w'), (86_400, 'd'), (3_600, 'h'), (60, 'm')];
        for (secs, unit) in units {
            if self.0 != 0 && self.0.is_multiple_of(secs) {
                return write!(f, "{}{unit}", self.0 / secs);
            }
        }
        write!(f, "{}s", self.0)
    }
}

impl std::str::FromStr for Span {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        for (s, secs) in [
            ("90d", 90 * 86_400),
            ("24h", 86_400),
            ("30m", 1_800),
            ("45s", 45),
            ("2w", 14 * 86_400),
            ("0s", 0),
        ] {
            assert_eq!(Span::parse(s).map(Span::as_secs), Ok(secs), "{s}");
        }
    }

    #[test]
    fn refuses_anything_else() {
        for s in [
            "",
            "d",
            "90",
            "90 d",
            "-1d",
            "1.5h",
            "1y",
            "1dd",
            "1D",
            "36600w",
            "99999999999999s",
        ] {
            assert!(Span::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn displays_the_largest_exact_unit() {
        for (s, shown) in [("90d", "90d"), ("48h", "2d"), ("90m", "90m"), ("0s", "0s")] {
            assert_eq!(Span::parse(s).expect("valid").to_string(), shown);
        }
    }
}
