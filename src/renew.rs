//! `robot-token get`: the cron job's whole life.
//!
//! fresh? → stop. Otherwise: lock → fresh now? (another run renewed) → `source::obtain`
//! (which persists a rotated refresh token itself) → check the new token → replace
//! the token file. The fresh path reads one small file and touches nothing else.

use std::path::Path;
use std::time::Instant;

use crate::config::GetConfig;
use crate::error::{Error, Exit, Result};
use crate::http::{self, Http};
use crate::source;
use crate::store::{self, FileError, WriteMode};
use crate::token;

/// What the token file holds now.
#[derive(Debug, PartialEq, Eq)]
pub enum Current {
    Missing,
    /// Present but not a usable JWT (garbage, truncated, huge): renewal replaces it.
    Unusable(&'static str),
    /// A JWT that expires at this time (seconds since the epoch).
    Expires(i64),
}

/// How a token file we may not touch is reported. Exit 73: we cannot write it.
pub fn token_file_error(e: FileError) -> Error {
    Error::write(format!("token file: {e}"))
}

/// Look at the token file without following symlinks or trusting other users' files.
pub fn current(path: &Path) -> Result<Current> {
    let data = match store::read_own(path, token::MAX_TOKEN_LEN) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(Current::Missing),
        Err(FileError::TooLarge { .. }) => return Ok(Current::Unusable("larger than 64 KiB")),
        Err(e) => return Err(token_file_error(e)),
    };
    let Ok(text) = std::str::from_utf8(&data) else {
        return Ok(Current::Unusable("not text"));
    };
    Ok(match token::expiry(token::trim(text)) {
        Ok(exp) => Current::Expires(exp),
        Err(e) => Current::Unusable(e.0),
    })
}

/// Seconds left, if the file holds a token with at least `minsecs` left.
fn fresh(cur: &Current, minsecs: i64) -> Option<i64> {
    match cur {
        Current::Expires(exp) if exp - token::now() >= minsecs => Some(exp - token::now()),
        _ => None,
    }
}

/// Human form of a number of seconds: 1h 2m 3s.
pub fn human_secs(s: i64) -> String {
    let (sign, s) = if s < 0 { ("-", -s) } else { ("", s) };
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

/// The outcome of a successful `get`.
#[derive(Debug)]
pub struct Outcome {
    pub renewed: bool,
    pub expires: i64,
}

pub fn run(cfg: &GetConfig) -> Result<Outcome> {
    let started = Instant::now();
    let path = &cfg.outfile;
    let cur = current(path)?;
    if let Some(left) = fresh(&cur, cfg.minsecs) {
        tracing::info!(
            "{} is valid for {} more (at least {} s wanted): nothing to do",
            path.display(),
            human_secs(left),
            cfg.minsecs
        );
        let Current::Expires(exp) = cur else {
            unreachable!()
        };
        return Ok(Outcome {
            renewed: false,
            expires: exp,
        });
    }
    match &cur {
        Current::Missing => tracing::info!("{} does not exist: getting a token", path.display()),
        Current::Unusable(why) => {
            tracing::info!("{} is unusable ({why}): replacing it", path.display())
        }
        Current::Expires(exp) if *exp <= token::now() => tracing::info!(
            "{} expired {} ago: renewing",
            path.display(),
            human_secs(token::now() - exp)
        ),
        Current::Expires(exp) => tracing::info!(
            "{} has {} left, less than {} s: renewing",
            path.display(),
            human_secs(exp - token::now()),
            cfg.minsecs
        ),
    }
    spread_load(cfg.random_delay);
    http::check_trust(&cfg.trust)?;
    // The deadline counts from here: a --random-delay does not eat into it.
    let deadline = Instant::now() + cfg.deadline;

    // Serialise with other runs for this token file. Then look again: if another run
    // renewed it while we waited, there is nothing left to do and nothing to send.
    let lock_path = store::lock_path(path).map_err(token_file_error)?;
    let _lock = store::lock(&lock_path, deadline).map_err(|e| match e {
        FileError::LockTimeout(_) => Error::temp(e.to_string()),
        e => token_file_error(e),
    })?;
    tracing::debug!("holding lock {}", lock_path.display());
    let cur = current(path)?;
    if let Some(left) = fresh(&cur, cfg.minsecs) {
        tracing::info!(
            "another run renewed {} meanwhile; valid for {} more",
            path.display(),
            human_secs(left)
        );
        let Current::Expires(exp) = cur else {
            unreachable!()
        };
        return Ok(Outcome {
            renewed: false,
            expires: exp,
        });
    }
    store::check_target(path).map_err(token_file_error)?;
    store::remove_stale_temps(path);

    let http = Http::new(cfg.trust.clone(), cfg.timeout, deadline);
    let issued = source::obtain(
        cfg,
        &source::Context {
            http: &http,
            token_lock: &lock_path,
            deadline,
        },
    )?;
    let endpoint = &issued.from;
    let access = &issued.access_token;
    let exp = token::expiry(access.expose()).map_err(|e| {
        Error::data(format!(
            "{endpoint} returned an access token that is unusable ({e}); the old token is kept"
        ))
    })?;
    let left = exp - token::now();
    if left <= 0 {
        return Err(Error::data(format!(
            "{endpoint} returned a token that expired {} ago: check this host's clock; the old token is kept",
            human_secs(-left)
        )));
    }
    if left < cfg.minsecs {
        tracing::warn!(
            "the new token lives {}, less than --minsecs {}: every run will renew; lower --minsecs",
            human_secs(left),
            cfg.minsecs
        );
    }
    warn_narrowed(
        &issued.requested_scope,
        issued.granted_scope.as_deref(),
        access.expose(),
    );

    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(access.expose().len() + 1));
    bytes.extend_from_slice(access.expose().as_bytes());
    bytes.push(b'\n');
    store::atomic_write(path, &bytes, WriteMode::default()).map_err(token_file_error)?;
    tracing::info!(
        "wrote {} (token {access}, expires in {}) in {:.1} ms",
        path.display(),
        human_secs(left),
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(Outcome {
        renewed: true,
        expires: exp,
    })
}

/// `--random-delay`: sleep a random time up to `max`, only on the way to the network,
/// so that many hosts whose cron fires at the same minute do not all hit the issuer at
/// once. The fresh path never gets here. One delay per process: with `--all`, the
/// first profile that needs a renewal sleeps, the others wait for it, then none sleeps
/// again (the load to spread is the host's, not each profile's).
fn spread_load(max: std::time::Duration) {
    static DELAYED: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    if max.is_zero() {
        return;
    }
    let mut done = DELAYED.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    let pause = max.mul_f64(store::random_fraction());
    tracing::debug!(
        "random delay: sleeping {:.1} s (up to {} s) before renewing",
        pause.as_secs_f64(),
        max.as_secs()
    );
    std::thread::sleep(pause);
    *done = true;
}

/// Warn, without failing, when the issuer granted fewer scopes than asked for.
fn warn_narrowed(requested: &[String], granted: Option<&str>, access: &str) {
    if requested.is_empty() {
        return;
    }
    let granted: Vec<String> = match granted {
        Some(s) => s.split_whitespace().map(str::to_string).collect(),
        None => match token::decode(access) {
            Ok(jwt) => jwt.scopes(),
            Err(_) => return,
        },
    };
    let missing: Vec<&str> = requested
        .iter()
        .filter(|s| !granted.contains(s))
        // Protocol scopes are not repeated in access tokens.
        .filter(|s| {
            !matches!(
                s.as_str(),
                "openid" | "offline_access" | "profile" | "email" | "wlcg"
            )
        })
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        tracing::warn!(
            "the issuer narrowed the scope: not granted: {}",
            missing.join(" ")
        );
    }
}

/// The exit code of a finished `get`.
pub fn exit_of(r: &Result<Outcome>) -> Exit {
    match r {
        Ok(_) => Exit::Ok,
        Err(e) => e.exit(),
    }
}
