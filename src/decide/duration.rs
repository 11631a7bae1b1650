//! Go-style durations ("1h30m", "1.5h", "90s"), the format Kubernetes users know
//! from `metav1.Duration`.

use chrono::Duration;
use thiserror::Error;

/// A duration string that does not parse.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{input:?} is not a duration: {problem} (use Go syntax such as \"30m\", \"1h30m\", \"8h\")")]
pub struct DurationError {
    input: String,
    problem: &'static str,
}

/// Parses a non-negative Go duration. Hours are the largest unit, as in Go.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let fail = |problem| DurationError {
        input: input.to_string(),
        problem,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(fail("it is empty"));
    }
    if s == "0" {
        return Ok(Duration::zero());
    }
    let mut total_nanos: i128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err(fail("a number is missing"));
        }
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let unit_nanos: i128 = match unit {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" | "µs" => 1_000,
            "ns" => 1,
            "" => return Err(fail("a unit is missing")),
            _ => return Err(fail("the unit is not one of h, m, s, ms, us, ns")),
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && frac.is_empty() || frac.contains('.') {
            return Err(fail("a number is malformed"));
        }
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| fail("a number is too large"))?
        };
        let mut value = whole
            .checked_mul(unit_nanos)
            .ok_or_else(|| fail("it is too large"))?;
        let mut scale = unit_nanos;
        for digit in frac.chars().take(18) {
            scale /= 10;
            value += i128::from(digit.to_digit(10).unwrap_or(0)) * scale;
        }
        total_nanos = total_nanos
            .checked_add(value)
            .ok_or_else(|| fail("it is too large"))?;
        rest = tail;
    }
    // chrono's Duration covers about ±292 years; refuse anything near that.
    const LIMIT: i128 = 100 * 365 * 24 * 3_600_000_000_000;
    if total_nanos > LIMIT {
        return Err(fail("it is longer than 100 years"));
    }
    i64::try_from(total_nanos)
        .map(Duration::nanoseconds)
        .map_err(|_| fail("it is too large"))
}

/// Formats a duration compactly in Go syntax ("2h", "1h30m", "45s").
pub fn format(d: Duration) -> String {
    if d <= Duration::zero() {
        return "0s".to_string();
    }
    let total_ms = d.num_milliseconds();
    let (h, rem) = (total_ms / 3_600_000, total_ms % 3_600_000);
    let (m, rem) = (rem / 60_000, rem % 60_000);
    let (s, ms) = (rem / 1000, rem % 1000);
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if s > 0 || ms > 0 {
        if ms > 0 {
            out += format!("{s}.{:03}", ms).trim_end_matches('0');
            out += "s";
        } else {
            out += &format!("{s}s");
        }
    }
    if out.is_empty() {
        out = format!("{}ms", d.num_milliseconds());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse("30m").unwrap(), Duration::minutes(30));
        assert_eq!(parse("1h30m").unwrap(), Duration::minutes(90));
        assert_eq!(parse("1.5h").unwrap(), Duration::minutes(90));
        assert_eq!(parse("90s").unwrap(), Duration::seconds(90));
        assert_eq!(parse("250ms").unwrap(), Duration::milliseconds(250));
        assert_eq!(parse("720h").unwrap(), Duration::hours(720));
        assert_eq!(parse("0").unwrap(), Duration::zero());
    }

    #[test]
    fn refuses_what_go_refuses() {
        for bad in ["", "h", "1", "1d", "-1h", "1h-30m", "1..5h", "one hour", "1 h"] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
        let err = parse("1d").unwrap_err().to_string();
        assert!(err.contains("\"1d\"") && err.contains("h, m, s"), "{err}");
        assert!(parse("99999999999999999999h").is_err());
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format(Duration::hours(2)), "2h");
        assert_eq!(format(Duration::minutes(90)), "1h30m");
        assert_eq!(format(Duration::seconds(45)), "45s");
        assert_eq!(format(Duration::milliseconds(1500)), "1.5s");
        for s in ["2h", "1h30m", "45s", "8h", "1h0m1s"] {
            assert_eq!(parse(&format(parse(s).unwrap())).unwrap(), parse(s).unwrap());
        }
    }
}
