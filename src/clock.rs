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

#[cfg(test)]
mod tests {
    use super::*;

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
