//! The arguments of `status` and `check` (both in `commands::monitor`): which
//! tokens to look at, and `check`'s thresholds.

use std::path::PathBuf;

use clap::Args;

/// Which tokens `status` and `check` look at.
#[derive(Debug, Args, Clone)]
pub struct Selection {
    /// Token file [default: the profiles of the configuration file if there is one, else WLCG discovery].
    #[arg(value_name = "FILE", conflicts_with_all = ["profile", "all"])]
    pub file: Option<PathBuf>,

    /// Only this profile.
    #[arg(long, value_name = "NAME", conflicts_with = "all")]
    pub profile: Option<String>,

    /// Every profile of the configuration file.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args, Clone)]
pub struct StatusArgs {
    #[command(flatten)]
    pub select: Selection,

    /// One JSON array, one object per token, for scripts.
    #[arg(long)]
    pub json: bool,
}

pub(super) const CHECK_HELP: &str = "Output: one status line with perfdata, e.g.\n  \
ROBOT-TOKEN OK - /tmp/bt_u1000 valid for 52m 1s | remaining=3121s;450;225;0\n\n\
Default thresholds follow each token: T is the margin `get` renews at (a profile's minsecs, \
else min(1h, half the token's lifetime exp - iat)); WARNING below T/4, CRITICAL below T/8 \
(1-hour tokens: 7m30s and 3m45s; 2 hours and longer: 15m and 7m30s).\n\n\
A missing, expired or unusable token is CRITICAL; a failed last renewal is at least WARNING; \
an unreadable configuration or token file is UNKNOWN. -c is --critical here (the \
monitoring-plugin convention): name the token file as an argument.";

#[derive(Debug, Args, Clone)]
pub struct CheckArgs {
    #[command(flatten)]
    pub select: Selection,

    /// WARNING when a token has less than this left [default: a quarter of its renewal
    /// margin: 7m30s for 1-hour tokens, 15m for 2 hours and longer].
    #[arg(short, long, value_name = "DURATION")]
    pub warning: Option<String>,

    /// CRITICAL when a token has less than this left [default: an eighth of its renewal
    /// margin: 3m45s for 1-hour tokens, 7m30s for 2 hours and longer].
    #[arg(short, long, value_name = "DURATION")]
    pub critical: Option<String>,
}
