//! `robot-token get`: the cron job's whole life.
//!
//! fresh? → stop. Otherwise: lock → fresh now? (another run renewed) → `source::obtain`
//! (which persists a rotated refresh token itself) → check the new token → replace
//! the token file. The fresh path reads one small file and touches nothing else.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::GetConfig;
use crate::error::{Error, Exit, Result};
use crate::http::{self, Http};
use crate::output::{self, Target};
use crate::source;
use crate::store::{self, FileError};
use crate::token;

/// Space reserved for each token file's replacement before a renewal sends
/// anything: WLCG tokens are 1-4 KiB; a larger one is still written if it fits.
pub const TOKEN_RESERVE: u64 = 16 * 1024;

/// What the token file holds now.
#[derive(Debug, PartialEq, Eq)]
pub enum Current {
    Missing,
    /// Present but not a usable JWT (garbage, truncated, huge, an absurd `exp`):
    /// renewal replaces it. `token::exp_of` decides, as for every other command.
    Unusable(&'static str),
    /// A JWT that expires at this time (seconds since the epoch, at most
    /// `token::MAX_EXP`).
    Expires(i64),
}

/// How a token file we may not touch is reported. Exit 73: we cannot write it.
/// Exit 77 under the trust rule for root (a person must fix the directories).
pub fn token_file_error(e: FileError) -> Error {
    match e {
        FileError::UntrustedDir { .. } => Error::perm(format!("token file: {e}")),
        e => Error::write(format!("token file: {e}")),
    }
}

/// Look at the token file without following symlinks or trusting other users' files.
pub fn current(path: &Path) -> Result<Current> {
    current_by(path, None)
}

/// [`current`] for a token file that may also belong to `also` (its configured owner).
pub fn current_by(path: &Path, also: Option<u32>) -> Result<Current> {
    let data = match store::read_own_by(path, token::MAX_TOKEN_LEN, also) {
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

/// Seconds left, if the file holds a token with at least `minsecs` left: the fresh
/// path's one decision (`dryrun` asks it too).
pub fn fresh(cur: &Current, minsecs: i64) -> Option<i64> {
    match cur {
        Current::Expires(exp) => Some(token::until(*exp, token::now())).filter(|l| *l >= minsecs),
        _ => None,
    }
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

/// The outcome of a successful `get`.
#[derive(Debug)]
pub struct Outcome {
    pub renewed: bool,
    pub expires: i64,
    /// The token files kept fresh, in the configured order.
    pub files: Vec<PathBuf>,
}

/// Describe why a token file needs renewing.
fn log_stale(path: &Path, cur: &Current, minsecs: i64) {
    match cur {
        Current::Missing => tracing::info!("{} does not exist: getting a token", path.display()),
        Current::Unusable(why) => {
            tracing::info!("{} is unusable ({why}): replacing it", path.display())
        }
        Current::Expires(exp) if *exp <= token::now() => tracing::info!(
            "{} expired {} ago: renewing",
            path.display(),
            human_secs(token::until(token::now(), *exp))
        ),
        Current::Expires(exp) => tracing::info!(
            "{} has {} left, less than {minsecs} s: renewing",
            path.display(),
            human_secs(token::until(*exp, token::now()))
        ),
    }
}

/// The state of every token file: `Ok(Some(left))` fresh, `Ok(None)` due, or the
/// error that keeps us from using it.
type State = Result<(Current, Option<i64>)>;

fn survey(targets: &[Target], minsecs: i64) -> Vec<State> {
    targets
        .iter()
        .map(|t| {
            let cur = current_by(&t.path, t.other_owner())?;
            let left = fresh(&cur, minsecs);
            Ok((cur, left))
        })
        .collect()
}

/// When no token file that can be used is due: the outcome (fresh ones, plus the
/// errors of those that cannot be used).
fn settled(
    targets: &[Target],
    states: Vec<State>,
    minsecs: i64,
    meanwhile: bool,
) -> std::result::Result<Result<Outcome>, Vec<State>> {
    let due = states.iter().any(|s| matches!(s, Ok((_, None))));
    if due {
        return Err(states);
    }
    let mut failures = Vec::new();
    let mut expires = i64::MAX;
    for (t, st) in targets.iter().zip(states) {
        match st {
            Ok((Current::Expires(exp), Some(left))) => {
                expires = expires.min(exp);
                if meanwhile {
                    tracing::info!(
                        "another run renewed {} meanwhile; valid for {} more",
                        t.path.display(),
                        human_secs(left)
                    );
                } else {
                    tracing::info!(
                        "{} is valid for {} more (at least {minsecs} s wanted): nothing to do",
                        t.path.display(),
                        human_secs(left),
                    );
                }
            }
            Ok(_) => {}
            Err(e) => failures.push((t.path.clone(), e)),
        }
    }
    Ok(match combine(failures, targets.len()) {
        Some(e) => Err(e),
        None => Ok(Outcome {
            renewed: false,
            expires,
            files: targets.iter().map(|t| t.path.clone()).collect(),
        }),
    })
}

/// One error for the token files that failed, with the exit code of the worst.
/// A single failure keeps its own message.
pub fn combine(mut failures: Vec<(PathBuf, Error)>, total: usize) -> Option<Error> {
    if failures.len() <= 1 {
        return failures.pop().map(|(_, e)| e);
    }
    let worst = failures
        .iter()
        .map(|(_, e)| e.exit())
        .max_by_key(|x| x.severity())
        .unwrap_or(Exit::CantWrite);
    let parts: Vec<String> = failures
        .iter()
        .map(|(_, e)| e.message().to_string())
        .collect();
    let ok = total - failures.len();
    Some(Error::new(
        worst,
        format!(
            "{} of {total} token files failed{}: {}",
            failures.len(),
            if ok > 0 {
                format!(" ({ok} written)")
            } else {
                String::new()
            },
            parts.join("; ")
        ),
    ))
}

/// Renew if needed. `deadline` bounds everything from here on (the random delay,
/// lock waits, every request and retry); the caller gives what is left of it to the
/// hand-offs that follow.
pub fn run(cfg: &GetConfig, deadline: Instant) -> Result<Outcome> {
    let started = Instant::now();
    let targets = output::targets(cfg)?;
    let states = match settled(&targets, survey(&targets, cfg.minsecs), cfg.minsecs, false) {
        Ok(outcome) => return outcome,
        Err(states) => states,
    };
    for (t, st) in targets.iter().zip(&states) {
        if let Ok((cur, None)) = st {
            log_stale(&t.path, cur, cfg.minsecs);
        }
    }
    // A missing credential fails here, before anything is created or slept.
    source::precheck(cfg)?;
    spread_load(cfg.random_delay, deadline);
    http::check_trust(&cfg.trust)?;

    // Serialise with other runs for these token files, taking the locks in one
    // global order (sorted paths) so that runs with overlapping sets cannot deadlock.
    // Then look again: if another run renewed them while we waited, there is
    // nothing left to do and nothing to send.
    // A token file whose lock cannot exist (its directory is missing) cannot be
    // written either: it is reported with the others at the end.
    let mut lock_paths = Vec::new();
    let mut unlockable: Vec<(PathBuf, Error)> = Vec::new();
    for t in &targets {
        match store::lock_path(&t.path) {
            Ok(p) => lock_paths.push(p),
            Err(e) => unlockable.push((t.path.clone(), token_file_error(e))),
        }
    }
    if lock_paths.is_empty() {
        return Err(combine(unlockable, targets.len())
            .unwrap_or_else(|| Error::write("no token file can be written")));
    }
    lock_paths.sort();
    lock_paths.dedup();
    let mut _locks = Vec::with_capacity(lock_paths.len());
    for p in &lock_paths {
        _locks.push(store::lock(p, deadline).map_err(|e| match e {
            FileError::LockTimeout(_) => Error::temp(e.to_string()),
            e => token_file_error(e),
        })?);
        tracing::debug!("holding lock {}", p.display());
    }
    let states = match settled(&targets, survey(&targets, cfg.minsecs), cfg.minsecs, true) {
        Ok(outcome) => return outcome,
        Err(states) => states,
    };
    // Every token file's replacement is prepared before anything is sent: its
    // directory checked (owner, trust), its temp file created and its space
    // reserved. Files that cannot be written are reported at the end; if none can,
    // stop now, with nothing redeemed.
    let mut failures: Vec<(PathBuf, Error)> = Vec::new();
    let mut writable = Vec::new();
    for (t, st) in targets.iter().zip(states) {
        if let Some(i) = unlockable.iter().position(|(p, _)| *p == t.path) {
            failures.push(unlockable.swap_remove(i));
            continue;
        }
        let prepared = st.and_then(|_| {
            store::remove_stale_temps_by(&t.path, t.other_owner());
            store::prepare(&t.path, TOKEN_RESERVE, t.write_mode()).map_err(token_file_error)
        });
        match prepared {
            Ok(p) => writable.push((t, p)),
            Err(e) => failures.push((t.path.clone(), e)),
        }
    }
    if writable.is_empty() {
        let e = combine(failures, targets.len())
            .unwrap_or_else(|| Error::write("no token file can be written"));
        return Err(Error::new(
            e.exit(),
            format!("{}; nothing was sent", e.message()),
        ));
    }

    let http = Http::new(cfg.trust.clone(), cfg.timeout, deadline);
    let issued = source::obtain(
        cfg,
        &source::Context {
            http: &http,
            token_locks: &lock_paths,
            outfile: &targets[0].path,
            deadline,
        },
    )?;
    let endpoint = &issued.from;
    let access = &issued.access_token;
    // The same decision as for the token file (`token::exp_of`): a token with an
    // absurd `exp` is never installed, whichever source it came from.
    let exp = token::expiry(access.expose()).map_err(|e| {
        Error::data(format!(
            "{endpoint} returned an access token that is unusable ({e}); the old token is kept"
        ))
    })?;
    let left = token::until(exp, token::now());
    if left <= 0 {
        return Err(Error::data(format!(
            "{endpoint} returned a token that expired {} ago: check this host's clock; the old token is kept",
            human_secs(left.saturating_neg())
        )));
    }
    // With --condor=credd, condor::EarlyRenewal says it, naming SEC_CREDENTIAL_REFRESH.
    if left < cfg.minsecs && !matches!(cfg.condor, Some(crate::condor::Mode::Credd { .. })) {
        tracing::warn!(
            "the new token lives {}, less than --minsecs {}: every run will renew; lower --minsecs",
            human_secs(left),
            cfg.minsecs
        );
    }
    let granted = granted_scopes(issued.granted_scope.as_deref(), access.expose());
    warn_narrowed(&issued.requested_scope, granted.as_deref());
    check_required(&cfg.require_scope, granted.as_deref(), endpoint)?;

    // Every token file gets the new token, fresh ones too: after a renewal they all
    // hold the same token and expire together.
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(access.expose().len() + 1));
    bytes.extend_from_slice(access.expose().as_bytes());
    bytes.push(b'\n');
    for (t, prepared) in writable {
        match prepared.commit(&bytes) {
            Ok(()) => tracing::info!(
                "wrote {} (its sha256sum begins {}; expires in {}) in {:.1} ms",
                t.path.display(),
                crate::secret::fingerprint(&bytes),
                human_secs(left),
                started.elapsed().as_secs_f64() * 1e3
            ),
            Err(e) => failures.push((t.path.clone(), token_file_error(e))),
        }
    }
    match combine(failures, targets.len()) {
        Some(e) => Err(e),
        None => Ok(Outcome {
            renewed: true,
            expires: exp,
            files: targets.iter().map(|t| t.path.clone()).collect(),
        }),
    }
}

/// What the issuer granted: the response's `scope`, else the JWT's `scope`/`scp`.
pub fn granted_scopes(response_scope: Option<&str>, access: &str) -> Option<Vec<String>> {
    match response_scope {
        Some(s) => Some(s.split_whitespace().map(str::to_string).collect()),
        None => token::decode(access).ok().map(|jwt| jwt.scopes()),
    }
}

/// `--random-delay`: sleep a random time up to `max`, only on the way to the network,
/// so that many hosts whose cron fires at the same minute do not all hit the issuer at
/// once. The fresh path never gets here. One delay per process: with `--all`, the
/// first profile that needs a renewal sleeps, the others wait for it, then none sleeps
/// again (the load to spread is the host's, not each profile's).
fn spread_load(max: std::time::Duration, deadline: Instant) {
    static DELAYED: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    if max.is_zero() {
        return;
    }
    let mut done = DELAYED.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    // At most half of what is left of --deadline: the renewal needs the rest.
    let pause = max
        .mul_f64(store::random_fraction())
        .min(deadline.saturating_duration_since(Instant::now()) / 2);
    tracing::debug!(
        "random delay: sleeping {:.1} s (up to {} s) before renewing",
        pause.as_secs_f64(),
        max.as_secs()
    );
    std::thread::sleep(pause);
    *done = true;
}

/// Warn, without failing, when the issuer granted fewer scopes than asked for.
pub fn warn_narrowed(requested: &[String], granted: Option<&[String]>) {
    let Some(granted) = granted else { return };
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

/// `--require-scope`: a scope the issuer did not grant is an error a person must
/// look at (exit 77); the new token is not installed.
pub fn check_required(required: &[String], granted: Option<&[String]>, from: &str) -> Result<()> {
    if required.is_empty() {
        return Ok(());
    }
    let granted = granted.unwrap_or(&[]);
    // WLCG matching: `storage.read:/` grants `storage.read:/data`.
    let missing = crate::scope::missing(granted, required);
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::perm(format!(
        "{from} did not grant the required scope {} (granted: {}); the old token is kept: ask the issuer's admins for it, or drop --require-scope",
        missing.join(" "),
        if granted.is_empty() {
            "nothing".to_string()
        } else {
            granted.join(" ")
        }
    )))
}

/// The exit code of a finished `get`.
pub fn exit_of(r: &Result<Outcome>) -> Exit {
    match r {
        Ok(_) => Exit::Ok,
        Err(e) => e.exit(),
    }
}
