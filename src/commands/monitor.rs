//! `robot-token status` (one line per token, or `--json`) and `robot-token check`
//! (a Nagios/Icinga monitoring plugin). Both only read: the token files and the state
//! files beside the credentials. No network, no credential read.

use std::io::Write;
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::cli::{CheckArgs, Selection, StatusArgs};
use crate::clock::{human_secs, parse_duration};
use crate::commands::get;
use crate::config::profile::ConfigFile;
use crate::error::{Error, Exit, Result};
use crate::output::discovery;
use crate::output::state::{self, LastRun};
use crate::secret::{untrusted_text, untrusted_text_max};
use crate::store;
use crate::token;

/// A token file to report on.
struct Target {
    profile: Option<String>,
    file: PathBuf,
    credential: Option<PathBuf>,
    /// The profile's `minsecs`, when it sets one: `check`'s default thresholds follow it.
    minsecs: Option<i64>,
}

/// The token files a selection names: a FILE; `--profile`/`--all`; else every profile of
/// the configuration file when there is one; else the WLCG default token file.
fn targets(config: Option<&PathBuf>, sel: &Selection) -> Result<Vec<Target>> {
    if let Some(f) = &sel.file {
        return Ok(vec![Target {
            profile: None,
            file: f.clone(),
            credential: None,
            minsecs: None,
        }]);
    }
    let path = match (config, sel.profile.is_some() || sel.all) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => Some(get::config_path(None)?),
        (None, false) => crate::config::profile::default_path(),
    };
    let Some(path) = path else {
        return Ok(vec![Target {
            profile: None,
            file: discovery::token_file(),
            credential: None,
            minsecs: None,
        }]);
    };
    let file = ConfigFile::load(&path)?;
    let which = file.select(sel.profile.as_deref())?;
    let mut out = Vec::new();
    for c in file.resolve_all(&which, None)? {
        for f in c.token_files() {
            out.push(Target {
                credential: Some(c.credential_path().to_path_buf()),
                profile: c.profile.clone(),
                file: f,
                minsecs: c.minsecs,
            });
        }
    }
    Ok(out)
}

/// What a token file holds now.
enum Held {
    /// A usable token: `exp` as `token::exp_of` accepts it.
    Token {
        claims: token::Jwt,
        exp: i64,
    },
    Missing,
    Unusable(String),
    /// Cannot even look (another owner, a symlink, ...).
    Unreadable(String),
}

struct Row {
    target: Target,
    held: Held,
    rotated_at: Option<i64>,
    last: Option<LastRun>,
}

fn look(target: Target) -> Row {
    let held = match store::read_own(&target.file, token::MAX_TOKEN_LEN) {
        Ok(None) => Held::Missing,
        Err(store::FileError::TooLarge { .. }) => Held::Unusable("larger than 64 KiB".into()),
        Err(e) => Held::Unreadable(e.to_string()),
        Ok(Some(data)) => match std::str::from_utf8(&data)
            .map_err(|_| "not text".to_string())
            .and_then(|t| token::decode(token::trim(t)).map_err(|e| e.to_string()))
            // The same decision as `get` makes: an absurd `exp` is unusable, not "never".
            .and_then(|jwt| {
                jwt.expiry()
                    .map(|exp| (jwt, exp))
                    .map_err(|e| e.to_string())
            }) {
            Ok((claims, exp)) => Held::Token { claims, exp },
            Err(e) => Held::Unusable(e),
        },
    };
    let s = state::read(&target.file);
    let (rotated_at, last) = (s.rotated_at, s.last_run);
    Row {
        target,
        held,
        rotated_at,
        last,
    }
}

fn utc(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|ts| ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| t.to_string())
}

fn local(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|ts| {
            ts.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M:%S %Z")
                .to_string()
        })
        .unwrap_or_else(|_| t.to_string())
}

/// A time in the local zone with UTC in brackets; once when the local zone is UTC.
fn when(t: i64) -> String {
    let (l, u) = (local(t), utc(t));
    if l == u {
        u
    } else {
        format!("{l} ({u})")
    }
}

fn last_run_text(l: &LastRun) -> String {
    match (l.exit, &l.message) {
        (0, _) => format!("last renewal {}: ok", utc(l.at)),
        (code, Some(m)) => format!(
            "last renewal {}: failed ({code}): {}",
            utc(l.at),
            untrusted_text_max(m, 600)
        ),
        (code, None) => format!("last renewal {}: failed ({code})", utc(l.at)),
    }
}

impl Row {
    fn label(&self) -> String {
        match &self.target.profile {
            Some(p) => format!("{p}: {}", self.target.file.display()),
            None => self.target.file.display().to_string(),
        }
    }

    fn line(&self, now: i64) -> String {
        let mut parts = vec![self.label()];
        match &self.held {
            Held::Missing => parts.push("missing".into()),
            Held::Unusable(why) => parts.push(format!("unusable ({why})")),
            Held::Unreadable(why) => parts.push(format!("unreadable ({why})")),
            Held::Token { claims, exp } => {
                let mut who = Vec::new();
                for (name, value) in [
                    ("sub", claims.str_claim("sub").map(str::to_string)),
                    ("iss", claims.str_claim("iss").map(str::to_string)),
                    (
                        "aud",
                        Some(claims.audiences().join(" ")).filter(|s| !s.is_empty()),
                    ),
                    (
                        "scopes",
                        Some(claims.scopes().join(" ")).filter(|s| !s.is_empty()),
                    ),
                ] {
                    // The issuer's words, like any other: cleaned.
                    who.push(format!(
                        "{name} {}",
                        value.as_deref().map_or("-".into(), untrusted_text)
                    ));
                }
                parts.push(who.join(", "));
                let e = *exp;
                parts.push(if e > now {
                    format!(
                        "expires {}, in {}",
                        when(e),
                        human_secs(token::until(e, now))
                    )
                } else {
                    format!(
                        "EXPIRED {}, {} ago",
                        when(e),
                        human_secs(token::until(now, e))
                    )
                });
            }
        }
        if let Some(r) = self.rotated_at {
            parts.push(format!("refresh token rotated {}", utc(r)));
        }
        if let Some(l) = &self.last {
            parts.push(last_run_text(l));
        }
        parts.join("; ")
    }

    fn json(&self, now: i64) -> Value {
        let mut v = json!({
            "profile": self.target.profile,
            "file": self.target.file,
            "credential": self.target.credential,
            "rotated_at": self.rotated_at,
            "last_run": self.last.as_ref().map(|l| json!({
                "at": l.at, "exit": l.exit, "message": l.message, "expires": l.expires,
            })),
        });
        match &self.held {
            Held::Missing => v["state"] = json!("missing"),
            Held::Unusable(w) => {
                v["state"] = json!("unusable");
                v["reason"] = json!(w);
            }
            Held::Unreadable(w) => {
                v["state"] = json!("unreadable");
                v["reason"] = json!(w);
            }
            Held::Token { claims, exp } => {
                v["state"] = json!(if *exp <= now { "expired" } else { "valid" });
                v["sub"] = json!(claims.str_claim("sub"));
                v["iss"] = json!(claims.str_claim("iss"));
                v["aud"] = json!(claims.audiences());
                v["scopes"] = json!(claims.scopes());
                v["expires_at"] = json!(exp);
                v["remaining"] = json!(token::until(*exp, now));
            }
        }
        v
    }

    fn healthy(&self, now: i64) -> bool {
        matches!(&self.held, Held::Token { exp, .. } if *exp > now)
    }
}

pub fn status(config: Option<&PathBuf>, args: &StatusArgs) -> Result<Exit> {
    let rows: Vec<Row> = targets(config, &args.select)?
        .into_iter()
        .map(look)
        .collect();
    let now = token::now();
    let mut out = String::new();
    if args.json {
        let all: Vec<Value> = rows.iter().map(|r| r.json(now)).collect();
        out.push_str(&serde_json::to_string_pretty(&all).unwrap_or_default());
        out.push('\n');
    } else {
        for r in &rows {
            out.push_str(&r.line(now));
            out.push('\n');
        }
    }
    // A closed pipe (status | head) is not an error.
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    Ok(if rows.iter().all(|r| r.healthy(now)) {
        Exit::Ok
    } else {
        Exit::Expired
    })
}

/// Monitoring-plugin exit codes.
pub const OK: u8 = 0;
pub const WARNING: u8 = 1;
pub const CRITICAL: u8 = 2;
pub const UNKNOWN: u8 = 3;

fn state_name(s: u8) -> &'static str {
    match s {
        OK => "OK",
        WARNING => "WARNING",
        CRITICAL => "CRITICAL",
        _ => "UNKNOWN",
    }
}

/// Worst first: CRITICAL, UNKNOWN, WARNING, OK.
fn rank(s: u8) -> u8 {
    match s {
        CRITICAL => 3,
        UNKNOWN => 2,
        WARNING => 1,
        _ => 0,
    }
}

/// Is this process `robot-token [--config F] check ...`? Then a usage error is UNKNOWN.
pub fn is_check_invocation() -> bool {
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        let a = a.to_string_lossy();
        if a == "--config" {
            args.next();
        } else if !a.starts_with('-') {
            return a == "check";
        }
    }
    false
}

fn threshold(name: &str, v: &str) -> std::result::Result<i64, String> {
    parse_duration(v).map(crate::clock::secs).map_err(|e| {
        // `check -c robot.json`: -c is `get`'s credential, but here the plugin
        // convention's --critical.
        let file_like = v.contains('/') || v.contains('.') || std::path::Path::new(v).exists();
        if name == "critical" && file_like {
            format!(
                "-c/--{name}: {e}. In check, -c is --critical (the monitoring-plugin convention), \
                 not a credential: name the token file as an argument (robot-token check FILE), \
                 or use --profile NAME"
            )
        } else {
            format!("--{name}: {e}")
        }
    })
}

/// WARNING and CRITICAL thresholds for one token: as given, or relative to the margin
/// `get` renews it at (the profile's minsecs, else `token::default_minsecs` of the
/// token's own lifetime): a healthy robot renews at that margin, so a quarter of it left
/// means renewals have been failing for a while, an eighth that the token is about to
/// run out. With a 1-hour token renewed by cron every 15 minutes (plus up to 5 minutes
/// of random delay), at least 10 minutes are always left: OK, where fixed 2h/30m
/// thresholds said WARNING after every renewal.
fn thresholds(r: &Row, warn: Option<i64>, crit: Option<i64>) -> (i64, i64) {
    let margin = match (&r.target.minsecs, &r.held) {
        (Some(m), _) => *m,
        (None, Held::Token { claims, exp }) => token::default_minsecs(*exp, claims.iat()),
        (None, _) => token::DEFAULT_MINSECS,
    };
    let (w, c) = default_thresholds(margin);
    match (warn, crit) {
        (Some(w), Some(c)) => (w, c),
        (Some(w), None) => (w, c.min(w)),
        (None, Some(c)) => (w.max(c), c),
        (None, None) => (w, c),
    }
}

/// `check`'s default (WARNING, CRITICAL) for a token renewed at `margin` seconds left.
pub fn default_thresholds(margin: i64) -> (i64, i64) {
    (margin / 4, margin / 8)
}

/// One token's verdict: state and what to say.
fn judge(r: &Row, now: i64, warn: i64, crit: i64) -> (u8, String, Option<i64>) {
    let name = match &r.target.profile {
        Some(p) => p.clone(),
        None => r.target.file.display().to_string(),
    };
    let (mut state, mut text, remaining) = match &r.held {
        Held::Missing => (CRITICAL, format!("{name} is missing"), None),
        Held::Unusable(w) => (CRITICAL, format!("{name} is unusable ({w})"), None),
        Held::Unreadable(w) => (UNKNOWN, format!("{name} cannot be read ({w})"), None),
        Held::Token { exp, .. } => {
            let left = token::until(*exp, now);
            if left <= 0 {
                (
                    CRITICAL,
                    format!("{name} expired {} ago", human_secs(left.saturating_neg())),
                    Some(left),
                )
            } else if left < crit {
                (
                    CRITICAL,
                    format!(
                        "{name} valid for {}, less than {}",
                        human_secs(left),
                        human_secs(crit)
                    ),
                    Some(left),
                )
            } else if left < warn {
                (
                    WARNING,
                    format!(
                        "{name} valid for {}, less than {}",
                        human_secs(left),
                        human_secs(warn)
                    ),
                    Some(left),
                )
            } else {
                (
                    OK,
                    format!("{name} valid for {}", human_secs(left)),
                    Some(left),
                )
            }
        }
    };
    // A failed last renewal is news before the token runs out.
    if let Some(l) = r.last.as_ref().filter(|l| l.exit != 0) {
        if rank(state) < rank(WARNING) {
            state = WARNING;
        }
        text.push_str(&format!(
            ", but the last renewal failed ({}): {}",
            l.exit,
            // Recorded cleaned, but the file may be older or edited: clean again.
            untrusted_text_max(l.message.as_deref().unwrap_or("no message"), 600)
        ));
    }
    // A `|` would end the plugin's text and start its perfdata.
    (state, plugin_text(&text), remaining)
}

/// Text for the plugin's output: one line, no `|` (which starts the perfdata).
fn plugin_text(s: &str) -> String {
    crate::secret::scrub(s).replace('|', "/")
}

/// Print the plugin's output and return its exit code.
pub fn check(config: Option<&PathBuf>, args: &CheckArgs) -> u8 {
    let (state, out) = match check_text(config, args) {
        Ok(x) => x,
        Err(e) => (
            UNKNOWN,
            format!("ROBOT-TOKEN UNKNOWN - {}\n", plugin_text(e.message())),
        ),
    };
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    state
}

fn check_text(config: Option<&PathBuf>, args: &CheckArgs) -> Result<(u8, String)> {
    let given = |name: &str, v: &Option<String>| {
        v.as_deref()
            .map(|v| threshold(name, v))
            .transpose()
            .map_err(Error::usage)
    };
    let warn = given("warning", &args.warning)?;
    let crit = given("critical", &args.critical)?;
    if let (Some(w), Some(c)) = (warn, crit) {
        if c > w {
            return Err(Error::usage("--critical must not be longer than --warning"));
        }
    }
    let rows: Vec<Row> = targets(config, &args.select)?
        .into_iter()
        .map(look)
        .collect();
    let now = token::now();
    let limits: Vec<(i64, i64)> = rows.iter().map(|r| thresholds(r, warn, crit)).collect();
    let verdicts: Vec<(u8, String, Option<i64>)> = rows
        .iter()
        .zip(&limits)
        .map(|(r, (w, c))| judge(r, now, *w, *c))
        .collect();
    let worst = verdicts
        .iter()
        .map(|v| v.0)
        .max_by_key(|s| rank(*s))
        .unwrap_or(UNKNOWN);
    let perf = |label: &str, left: Option<i64>, (warn, crit): (i64, i64)| {
        let value = left.map_or("U".to_string(), |l| format!("{l}s"));
        format!("{label}={value};{warn};{crit};0")
    };
    let mut out = String::new();
    if let ([(s, text, left)], [limit]) = (verdicts.as_slice(), limits.as_slice()) {
        out.push_str(&format!(
            "ROBOT-TOKEN {} - {text} | {}\n",
            state_name(*s),
            perf("remaining", *left, *limit)
        ));
        return Ok((*s, out));
    }
    let count = |s: u8| verdicts.iter().filter(|v| v.0 == s).count();
    let mut summary = Vec::new();
    for s in [CRITICAL, UNKNOWN, WARNING, OK] {
        if count(s) > 0 {
            summary.push(format!("{} {}", count(s), state_name(s).to_lowercase()));
        }
    }
    let problems: Vec<&str> = verdicts
        .iter()
        .filter(|v| v.0 != OK)
        .map(|v| v.1.as_str())
        .collect();
    let perfdata: Vec<String> = rows
        .iter()
        .zip(&verdicts)
        .zip(&limits)
        .map(|((r, v), limit)| {
            let label = match &r.target.profile {
                Some(p) => plugin_text(&format!("remaining_{p}")),
                None => "remaining".to_string(),
            };
            perf(&label, v.2, *limit)
        })
        .collect();
    let detail = if problems.is_empty() {
        "all fine".to_string()
    } else {
        problems.join("; ")
    };
    out.push_str(&format!(
        "ROBOT-TOKEN {} - {} of {} tokens: {detail} | {}\n",
        state_name(worst),
        summary.join(", "),
        rows.len(),
        perfdata.join(" ")
    ));
    // Long output: one line per token.
    for (_, text, _) in &verdicts {
        out.push_str(text);
        out.push('\n');
    }
    Ok((worst, out))
}
