//! Durations as Consul writes them (`3s`, `500ms`, `1m30s`) and as plain seconds (`2.5`).

use std::time::Duration;

/// The longest duration accepted anywhere (a check that waits longer is a mistake).
pub const MAX: Duration = Duration::from_secs(24 * 3600);

/// Parses `3s`, `500ms`, `1m`, `1m30s`, `1h`, `250us` or plain seconds `2.5`; refuses negatives and
/// values over a day.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return from_secs(secs, text);
    }
    let mut total = 0.0_f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("'{text}' is not a duration (e.g. 3s, 500ms, 1m, 2.5)"));
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| format!("'{text}' has a bad number"))?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            "" => return Err(format!("'{text}' needs a unit after {number} (h, m, s, ms)")),
            unit => return Err(format!("'{text}' has an unknown unit '{unit}' (h, m, s, ms, us, ns)")),
        };
        total += number * factor;
        rest = &rest[unit_len..];
    }
    from_secs(total, text)
}

fn from_secs(secs: f64, text: &str) -> Result<Duration, String> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("'{text}' is not a positive duration"));
    }
    if secs > MAX.as_secs_f64() {
        return Err(format!("'{text}' is longer than a day"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Like [`parse_duration`] but refuses zero (a deadline or interval of nothing).
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err(format!("'{text}' must be more than zero"));
    }
    Ok(d)
}

/// Formats a duration the way Consul writes it: `3s`, `500ms`, `1m30s`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms % 1000 != 0 {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consul_and_plain_forms() {
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("120"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_nonsense() {
        for bad in ["", "-1", "-1s", "3x", "s", "3 s", "1e400", "NaN", "inf", "25h", "1..2s", "ms3"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_positive_duration("0s").is_err());
    }

    #[test]
    fn formats_as_consul_writes() {
        assert_eq!(format_duration(Duration::from_secs(3)), "3s");
        assert_eq!(format_duration(Duration::from_millis(2500)), "2500ms");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        for d in ["3s", "2500ms", "1m30s", "10s", "2m"] {
            assert_eq!(format_duration(parse_duration(d).unwrap()), d);
        }
    }
}
