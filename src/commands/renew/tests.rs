use crate::token::{self, default_minsecs, margin};

#[test]
fn default_margin_is_an_hour_or_half_the_lifetime() {
    let now = 1_800_000_000;
    // INDIGO IAM's 1-hour tokens: half an hour.
    assert_eq!(default_minsecs(now + 3600, Some(now)), 1800);
    // 20-minute WLCG tokens: 10 minutes.
    assert_eq!(default_minsecs(now + 1200, Some(now)), 600);
    // 2 hours and longer (igwn-robot-get's 3-hour tokens): the classic hour.
    assert_eq!(default_minsecs(now + 7200, Some(now)), 3600);
    assert_eq!(default_minsecs(now + 3 * 3600, Some(now)), 3600);
    // No iat, or one that makes no sense: the lifetime is unknown, one hour.
    assert_eq!(default_minsecs(now + 600, None), 3600);
    assert_eq!(default_minsecs(now, Some(now + 10)), 3600);
    assert_eq!(default_minsecs(i64::MAX, Some(i64::MIN)), 3600);
    // An explicit --minsecs is taken exactly, whatever the lifetime.
    let t = token::Times {
        exp: now + 3600,
        iat: Some(now),
    };
    assert_eq!(margin(Some(3600), &t), 3600);
    assert_eq!(margin(Some(5), &t), 5);
    assert_eq!(margin(None, &t), 1800);
}

/// The README's crontab line (every 15 minutes, no --minsecs) against an issuer
/// of 1-hour tokens, over a simulated day in which cron starts each run up to 20 s
/// late: at most one renewal per half lifetime, never less than 15 minutes left,
/// and `check` with its defaults says OK at every second in between.
#[test]
fn cron_every_15_minutes_with_one_hour_tokens() {
    for lifetime in [3600, 2 * 3600, 3 * 3600] {
        let start = 1_800_000_000;
        let mut tok = token::Times {
            exp: start + 60,
            iat: Some(start + 60 - lifetime),
        };
        let mut renewals = Vec::new();
        let mut min_left = i64::MAX;
        let mut jitter = 7u64;
        let mut next_run = start;
        for now in start..start + 86_400 {
            if now >= next_run {
                if tok.exp - now < margin(None, &tok) {
                    tok = token::Times {
                        exp: now + lifetime,
                        iat: Some(now),
                    };
                    renewals.push(now);
                }
                jitter = jitter.wrapping_mul(6364136223846793005).wrapping_add(1);
                next_run = next_run - next_run % 900 + 900 + (jitter >> 59) as i64;
            }
            let left = tok.exp - now;
            min_left = min_left.min(left);
            if now > start + 900 {
                let (warn, _) =
                    crate::commands::monitor::default_thresholds(default_minsecs(tok.exp, tok.iat));
                assert!(
                    left >= warn,
                    "lifetime {lifetime}: WARNING at {now}: {left} left"
                );
            }
        }
        let gaps: Vec<i64> = renewals.windows(2).map(|w| w[1] - w[0]).collect();
        let half = lifetime / 2;
        assert!(
            gaps.iter().all(|g| *g >= half.min(3600)),
            "lifetime {lifetime}: renewals closer than the margin: {gaps:?}"
        );
        if lifetime == 3600 {
            assert!(min_left >= 900 - 20, "{min_left}");
            // About every 30 to 45 minutes: 32 to 48 renewals a day, not 96.
            assert!((30..=49).contains(&renewals.len()), "{}", renewals.len());
        }
    }
}
