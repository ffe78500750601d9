//! Checked time arithmetic: the one place where a duration meets a clock. Durations
//! come from options (bounded at [`MAX_DURATION`] when parsed), from issuers (Retry-After,
//! device-flow `expires_in` and `interval`: anything up to 2^64-1 s) and from constants;
//! none of them may overflow an `Instant`, a `Duration` or an `i64`, and none may abort
//! the run.

use std::time::{Duration, Instant};

/// The longest duration an option accepts: 10 years (3653 days). Longer is a typo or
/// an attack, never a setting; `parse_duration` refuses it (exit 64).
pub const MAX_DURATION: Duration = Duration::from_secs(3653 * 86_400);

/// `start + d`; when that does not fit in an `Instant`, the latest of
/// `start + MAX_DURATION` and `start` that does (in practice: never on Linux).
pub fn after(start: Instant, d: Duration) -> Instant {
    start
        .checked_add(d)
        .or_else(|| start.checked_add(d.min(MAX_DURATION)))
        .unwrap_or(start)
}

/// `Instant::now() + d`, checked: see [`after`].
pub fn from_now(d: Duration) -> Instant {
    after(Instant::now(), d)
}

/// Whole seconds of `d` as an `i64`, saturating (a `u64` past `i64::MAX` must not
/// turn negative).
pub fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Whole seconds as an `i64`, saturating.
pub fn secs_u64(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

/// Human form of a number of seconds: 1h 2m 3s.
pub fn human_secs(s: i64) -> String {
    // unsigned_abs: -i64::MIN does not fit in an i64.
    let (sign, s) = (if s < 0 { "-" } else { "" }, s.unsigned_abs());
    let (d, h, m, sec) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    let mut out = String::from(sign);
    if d > 0 {
        out.push_str(&format!("{d}d "));
    }
    if d > 0 || h > 0 {
        out.push_str(&format!("{h}h "));
    }
    if d > 0 || h > 0 || m > 0 {
        out.push_str(&format!("{m}m "));
    }
    out.push_str(&format!("{sec}s"));
    out
}

/// Seconds, or a duration such as `90s`, `30m`, `1h`, `1h 30m`, `7d`; at most 10 years
/// ([`MAX_DURATION`]): longer is refused, never wrapped around.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let secs = match s.parse::<u64>() {
        Ok(n) => Some(n as f64),
        // Digits past u64::MAX: a number, only too large.
        Err(_) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => Some(f64::INFINITY),
        Err(_) => s.parse::<jiff::Span>().ok().and_then(|span| {
            span.total((
                jiff::Unit::Second,
                jiff::SpanRelativeTo::days_are_24_hours(),
            ))
            .ok()
        }),
    };
    match secs {
        // Compared as f64 first: Duration::from_secs_f64 panics past u64::MAX seconds.
        Some(t) if t > MAX_DURATION.as_secs_f64() => Err(format!(
            "{s:?} is more than 10 years ({}d)",
            MAX_DURATION.as_secs() / 86_400
        )),
        Some(t) if t >= 0.0 && t.is_finite() => Ok(match s.parse::<u64>() {
            Ok(n) => Duration::from_secs(n),
            Err(_) => Duration::from_secs_f64(t),
        }),
        _ => Err(format!(
            "{s:?} is not a duration (use seconds, or e.g. 90s, 30m, 1h, 7d)"
        )),
    }
}

/// A whole number of seconds from a file (JSON), bounded like [`parse_duration`].
pub fn duration_secs(n: u64) -> std::result::Result<Duration, String> {
    let d = Duration::from_secs(n);
    if d > MAX_DURATION {
        return Err(format!(
            "{n} s is more than 10 years ({}d)",
            MAX_DURATION.as_secs() / 86_400
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3600"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-5").is_err());
        assert_eq!(parse_duration("3653d"), Ok(MAX_DURATION));
        for huge in [
            "3654d",
            "9223372036854775808",
            "18446744073709551615",
            "99999999999999999999999",
            "7000000d",
        ] {
            let e = parse_duration(huge).unwrap_err();
            assert!(e.contains("10 years"), "{huge}: {e}");
        }
        assert!(duration_secs(u64::MAX).is_err());
        assert_eq!(duration_secs(60), Ok(Duration::from_secs(60)));
    }

    #[test]
    fn nothing_overflows() {
        let now = Instant::now();
        let far = after(now, Duration::MAX);
        assert!(far >= now);
        assert!(from_now(Duration::from_secs(u64::MAX)) >= now);
        assert_eq!(secs(Duration::MAX), i64::MAX);
        assert_eq!(secs(Duration::from_secs(5)), 5);
        assert_eq!(secs_u64(u64::MAX), i64::MAX);
    }
}
