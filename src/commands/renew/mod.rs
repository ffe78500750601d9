//! `robot-token get`: the cron job's whole life.
//!
//! fresh? → stop. Otherwise: lock → fresh now? (another run renewed) → `source::obtain`
//! (which persists a rotated refresh token itself) → check the new token → replace
//! the token file. The fresh path reads one small file and touches nothing else.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::clock::human_secs;
use crate::config::GetConfig;
use crate::error::{Error, Exit, Result};
use crate::http::{self, Http};
use crate::output::condor;
use crate::output::target::Target;
use crate::scope;
use crate::source::{self, vault};
use crate::store::{self, FileError};
use crate::token::{self, default_minsecs, margin, DEFAULT_MINSECS};

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
    /// A JWT: when it expires (at most `token::MAX_EXP`) and, if it says, when it was
    /// issued.
    Expires(token::Times),
}

/// How a token file we may not touch is reported. Exit 73: we cannot write it.
/// Exit 77 under the trust rule for root (a person must fix the directories).
pub fn token_file_error(e: FileError) -> Error {
    match e {
        FileError::UntrustedDir { .. } => Error::perm(format!("token file: {e}")),
        e => Error::write(format!("token file: {e}")),
    }
}

/// A token file whose directory is missing cannot be written: say which directory,
/// before anything is sent (exit 73).
fn directory_exists(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::write(format!(
            "token file {}: the directory {} does not exist: create it (mkdir -p -m 700 {}), \
             or choose another token file (-o, BEARER_TOKEN_FILE)",
            path.display(),
            dir.display(),
            dir.display()
        ))),
        _ => Ok(()),
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
    Ok(match token::times(token::trim(text)) {
        Ok(t) => Current::Expires(t),
        Err(e) => Current::Unusable(e.0),
    })
}

/// A token's lifetime as issued, `exp - iat`, when it has a usable `iat`.
fn lifetime(t: &token::Times) -> Option<i64> {
    t.iat
        .filter(|i| *i < t.exp)
        .map(|i| t.exp.saturating_sub(i))
}

/// The renewal rule of a run: `--minsecs` (or the default rule), plus `extra` seconds
/// (`--condor=credd` adds HTCondor's SEC_CREDENTIAL_REFRESH).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Margin {
    pub minsecs: Option<i64>,
    pub extra: i64,
}

impl Margin {
    pub fn of(cfg: &GetConfig) -> Margin {
        Margin {
            minsecs: cfg.minsecs,
            extra: cfg.minsecs_extra,
        }
    }

    /// The margin for this token.
    pub fn secs(&self, t: &token::Times) -> i64 {
        margin(self.minsecs, t).saturating_add(self.extra.max(0))
    }

    fn text(&self, t: &token::Times) -> String {
        match self.extra {
            e if e > 0 => format!(
                "{} ({} + SEC_CREDENTIAL_REFRESH {e} s)",
                human_secs(self.secs(t)),
                margin_text(self.minsecs, t)
            ),
            _ => margin_text(self.minsecs, t),
        }
    }
}

/// Seconds left, if the file holds a token with at least its margin left: the fresh
/// path's one decision (`dryrun` asks it too).
pub fn fresh(cur: &Current, m: Margin) -> Option<i64> {
    match cur {
        Current::Expires(t) => {
            let left = token::until(t.exp, token::now());
            (left >= m.secs(t)).then_some(left)
        }
        _ => None,
    }
}

/// The margin and how it came about, for messages: `1h 0m 0s (--minsecs)`,
/// `30m 0s (half its 1h 0m 0s lifetime)`, `1h 0m 0s (the default)`.
fn margin_text(minsecs: Option<i64>, t: &token::Times) -> String {
    match (minsecs, lifetime(t)) {
        (Some(m), _) => format!("{} (--minsecs)", human_secs(m)),
        (None, Some(l)) if l / 2 < DEFAULT_MINSECS => format!(
            "{} (half its {} lifetime)",
            human_secs(l / 2),
            human_secs(l)
        ),
        (None, _) => format!("{} (the default)", human_secs(DEFAULT_MINSECS)),
    }
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
fn log_stale(path: &Path, cur: &Current, m: Margin) {
    match cur {
        Current::Missing => tracing::info!("{} does not exist: getting a token", path.display()),
        Current::Unusable(why) => {
            tracing::info!("{} is unusable ({why}): replacing it", path.display())
        }
        Current::Expires(t) if t.exp <= token::now() => tracing::info!(
            "{} expired {} ago: renewing",
            path.display(),
            human_secs(token::until(token::now(), t.exp))
        ),
        Current::Expires(t) => tracing::info!(
            "{} has {} left, less than {}: renewing",
            path.display(),
            human_secs(token::until(t.exp, token::now())),
            m.text(t)
        ),
    }
}

/// The state of every token file: `Ok(Some(left))` fresh, `Ok(None)` due, or the
/// error that keeps us from using it.
type State = Result<(Current, Option<i64>)>;

fn survey(targets: &[Target], m: Margin) -> Vec<State> {
    targets
        .iter()
        .map(|t| {
            let cur = current_by(&t.path, t.other_owner())?;
            let left = fresh(&cur, m);
            Ok((cur, left))
        })
        .collect()
}

/// When no token file that can be used is due: the outcome (fresh ones, plus the
/// errors of those that cannot be used).
fn settled(
    targets: &[Target],
    states: Vec<State>,
    m: Margin,
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
            Ok((Current::Expires(tm), Some(left))) => {
                expires = expires.min(tm.exp);
                if meanwhile {
                    tracing::info!(
                        "another run renewed {} meanwhile; valid for {} more",
                        t.path.display(),
                        human_secs(left)
                    );
                } else {
                    tracing::info!(
                        "{} is valid for {} more: nothing to do; it is renewed when less than {} is left",
                        t.path.display(),
                        human_secs(left),
                        m.text(&tm),
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
    let targets = cfg.targets()?;
    let margin = Margin::of(cfg);
    let states = match settled(&targets, survey(&targets, margin), margin, false) {
        Ok(outcome) => return outcome,
        Err(states) => states,
    };
    for (t, st) in targets.iter().zip(&states) {
        if let Ok((cur, None)) = st {
            log_stale(&t.path, cur, margin);
        }
    }
    // A missing credential fails here, before anything is created or slept.
    source::precheck(&cfg.source)?;
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
            // A missing directory gets its own message: which one, and the fix.
            Err(e) => unlockable.push((
                t.path.clone(),
                directory_exists(&t.path)
                    .err()
                    .unwrap_or_else(|| token_file_error(e)),
            )),
        }
    }
    if lock_paths.is_empty() {
        return Err(combine(unlockable, targets.len())
            .unwrap_or_else(|| Error::write("no token file can be written")));
    }
    let _locks = lock_in_order(&mut lock_paths, deadline)?;
    let states = match settled(&targets, survey(&targets, margin), margin, true) {
        Ok(outcome) => return outcome,
        Err(states) => states,
    };
    let old: Vec<token::Times> = states
        .iter()
        .filter_map(|s| match s {
            Ok((Current::Expires(t), _)) => Some(*t),
            _ => None,
        })
        .collect();
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
        &cfg.source,
        &source::Context {
            minsecs: wanted_minsecs(cfg.minsecs, &old).saturating_add(cfg.minsecs_extra.max(0)),
            minsecs_is_default: cfg.minsecs.is_none(),
            ..source::Context::new(&http, &lock_paths, &targets[0].path, deadline)
        },
    )?;
    let endpoint = &issued.from;
    let access = &issued.access_token;
    // The same decision as for the token file (`token::exp_of`): a token with an
    // absurd `exp` is never installed, whichever source it came from.
    let new = token::times(access.expose()).map_err(|e| {
        Error::data(format!(
            "{endpoint} returned an access token that is unusable ({e}); the old token is kept"
        ))
    })?;
    let exp = new.exp;
    let left = token::until(exp, token::now());
    if left <= 0 {
        return Err(Error::data(format!(
            "{endpoint} returned a token that expired {} ago: check this host's clock; the old token is kept",
            human_secs(left.saturating_neg())
        )));
    }
    // With --condor=credd, condor::EarlyRenewal says it, naming SEC_CREDENTIAL_REFRESH.
    if !matches!(cfg.condor, Some(crate::output::condor::Mode::Credd { .. })) {
        warn_short_lifetime(cfg.minsecs, &new, left, &old);
    }
    let granted = scope::granted_scopes(issued.granted_scope.as_deref(), access.expose());
    scope::warn_narrowed(&issued.requested_scope, granted.as_deref());
    scope::check_required(&cfg.require_scope, granted.as_deref(), endpoint)?;

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

/// The margin a source that decides freshness itself is asked for (Vault's
/// `minimum_seconds`, an exec command's `ROBOT_TOKEN_EXEC_MINSECS`): `--minsecs`, else
/// the default rule for the tokens on disk (the largest), else one hour.
pub fn wanted_minsecs(minsecs: Option<i64>, old: &[token::Times]) -> i64 {
    minsecs.unwrap_or_else(|| {
        old.iter()
            .map(|t| default_minsecs(t.exp, t.iat))
            .max()
            .unwrap_or(DEFAULT_MINSECS)
    })
}

/// An explicit `--minsecs` at least as long as the tokens live makes every run renew
/// (and rotate the refresh token). Say so once, when such a token is first installed,
/// not at every cron run: when a token it replaces already lived no longer than
/// `--minsecs`, that run said it. Without `--minsecs` this cannot happen: the default
/// margin is at most half the lifetime. A token handed out already aged (a cached
/// one) is only worth a note.
fn warn_short_lifetime(minsecs: Option<i64>, new: &token::Times, left: i64, old: &[token::Times]) {
    let Some(m) = minsecs else {
        if left < margin(None, new) {
            tracing::info!(
                "the new token has only {} left, less than {}: the next run renews it again",
                human_secs(left),
                margin_text(None, new)
            );
        }
        return;
    };
    let lives = lifetime(new).unwrap_or(left);
    if lives > m {
        if left < m {
            tracing::info!(
                "the new token has only {} left, less than --minsecs {}: the next run renews it again",
                human_secs(left),
                human_secs(m)
            );
        }
        return;
    }
    if old.iter().any(|t| lifetime(t).is_some_and(|l| l <= m)) {
        tracing::info!(
            "the new token lives {}, not more than --minsecs {}: every run renews",
            human_secs(lives),
            human_secs(m)
        );
        return;
    }
    tracing::warn!(
        "the issuer's tokens live {}, not more than --minsecs {}: every run renews the token and \
         rotates the refresh token. Set --minsecs below the lifetime (e.g. -m {}), or leave it \
         out for the default, min(1h, half the lifetime). Said once: later runs renew quietly",
        human_secs(lives),
        human_secs(m),
        default_minsecs(new.exp, new.iat).min(lives / 2).max(1)
    );
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

/// The exit code of a finished `get`.
pub fn exit_of(r: &Result<Outcome>) -> Exit {
    match r {
        Ok(_) => Exit::Ok,
        Err(e) => e.exit(),
    }
}

/// What `--condor=vault-storer` needs from the Vault source; `login`: make sure the
/// cache the storer's htgettoken reads holds a valid ticket. On the fresh path no
/// login happened, so one may be needed (a still-valid ticket is reused).
pub fn vault_storer(cfg: &GetConfig, login: bool) -> Result<Option<condor::VaultStorer>> {
    let Some(s) = vault::settings(&cfg.source.kind)? else {
        return Ok(None);
    };
    let ccache = if login {
        vault::kerberos_ticket(&s)?
    } else {
        std::path::PathBuf::new()
    };
    Ok(Some(condor::VaultStorer {
        vault_server: s.server,
        issuer: s.issuer,
        role: s.role,
        credkey: s.credkey,
        ccache,
    }))
}

/// The first token file, which an exec command is told about: the first of
/// `targets`, else the configured one.
pub fn first_file(cfg: &GetConfig, targets: &[Target]) -> PathBuf {
    targets
        .first()
        .map(|t| t.path.clone())
        .unwrap_or_else(|| cfg.outfile.clone())
}

/// Take the token files' locks in one global order (sorted paths, each once), so that
/// runs sharing files never wait on each other in a circle.
pub fn lock_in_order(lock_paths: &mut Vec<PathBuf>, deadline: Instant) -> Result<Vec<store::Lock>> {
    lock_paths.sort();
    lock_paths.dedup();
    let mut locks = Vec::with_capacity(lock_paths.len());
    for p in lock_paths.iter() {
        locks.push(store::lock(p, deadline).map_err(|e| match e {
            FileError::LockTimeout(_) => Error::temp(e.to_string()),
            e => token_file_error(e),
        })?);
        tracing::debug!("holding lock {}", p.display());
    }
    Ok(locks)
}

#[cfg(test)]
mod tests;
