//! `robot-token get`: one token file from the command line, one profile (`--profile`),
//! or every profile of the configuration file (`--all`), `--jobs` at a time.
//!
//! Each run is `renew::run`, then the deploy hook if the token was replaced, then a
//! note in the token file's lock record if anything was attempted. With `--all`, one failing profile
//! does not stop the others; the exit code is the most severe one, and a summary line
//! names each failure. Everything a configuration file can get wrong (syntax, keys,
//! values, two profiles on one token file) is found before any network traffic.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::ArgMatches;

use crate::cli::GetCmd;
use crate::commands::renew::{self, Outcome};
use crate::config::profile::{self, ConfigFile};
use crate::config::GetConfig;
use crate::error::{Error, Exit, Result};
use crate::output::{condor, hook, state};

/// The configuration file to read: `--config`, else the first default that exists.
pub fn config_path(given: Option<&PathBuf>) -> Result<PathBuf> {
    match given {
        Some(p) => Ok(p.clone()),
        None => profile::default_path().ok_or_else(|| {
            Error::config(
                "no configuration file: create ~/.config/robot-token/config.toml (or /etc/robot-token/config.toml), or give --config FILE",
            )
        }),
    }
}

pub fn run(config: Option<&PathBuf>, cmd: &GetCmd, matches: Option<&ArgMatches>) -> Result<Exit> {
    if cmd.dry_run {
        return dry_run(config, cmd, matches);
    }
    if cmd.profile.is_none() && !cmd.all {
        let cfg = GetConfig::from_args(&cmd.args)?;
        return run_one(&cfg).map(|_| Exit::Ok);
    }
    let file = ConfigFile::load(&config_path(config)?)?;
    if let Some(name) = &cmd.profile {
        let p = file.profile(name)?;
        let cfg = file
            .resolve_all(&[p], matches)?
            .pop()
            .ok_or_else(|| Error::config("no profile"))?;
        return run_one(&cfg)
            .map(|_| Exit::Ok)
            .map_err(|e| e.context(format!("profile {name}")));
    }
    let cfgs = file.resolve_all(&file.select(None)?, matches)?;
    Ok(run_all(&cfgs, cmd.jobs as usize))
}

/// `--dry-run`: the same configurations, resolved the same way, checked instead of run.
fn dry_run(config: Option<&PathBuf>, cmd: &GetCmd, matches: Option<&ArgMatches>) -> Result<Exit> {
    if cmd.profile.is_none() && !cmd.all {
        return Ok(crate::commands::dryrun::run(&[GetConfig::from_args(
            &cmd.args,
        )?]));
    }
    let file = ConfigFile::load(&config_path(config)?)?;
    let which = file.select(cmd.profile.as_deref())?;
    Ok(crate::commands::dryrun::run(
        &file.resolve_all(&which, matches)?,
    ))
}

/// One renewal: `renew::run`, the hand-off, the deploy hook, the note in the state.
pub fn run_one(cfg: &GetConfig) -> Result<Outcome> {
    let started = SystemTime::now();
    // --deadline bounds the whole run: the renewal, the hand-off and the hook.
    let deadline = crate::clock::from_now(cfg.deadline);
    let left = || deadline.saturating_duration_since(Instant::now());
    // --condor=credd: renew earlier by HTCondor's SEC_CREDENTIAL_REFRESH, so that a
    // running job never holds an expired token.
    let early = condor::early_renewal(
        cfg.condor.as_ref(),
        cfg.minsecs,
        cfg.timeout.min(left()).max(Duration::from_millis(100)),
    );
    let renewal = early.map(|e| {
        let mut c = cfg.clone();
        c.minsecs_extra = e.extra();
        c
    });
    let r = renew::run(renewal.as_ref().unwrap_or(cfg), deadline)
        .inspect(|o| {
            if let (Some(e), true) = (early, o.renewed) {
                e.check_lifetime(o.expires);
            }
        })
        .and_then(|o| {
            // After a renewal or a reuse: the token file is fresh, and stays so
            // whatever the hand-off does. The first token file is the one handed off.
            if let Some(mode) = &cfg.condor {
                let outfile = o.files.first().unwrap_or(&cfg.outfile);
                // The file may belong to the user root keeps it for (`-o PATH:owner=USER`).
                let target = cfg.targets()?.into_iter().find(|t| &t.path == outfile);
                let file = condor::TokenFile {
                    path: outfile,
                    also: target.as_ref().and_then(|t| t.other_owner()),
                    write: target.map(|t| t.write_mode()).unwrap_or_default(),
                };
                let timeout = cfg.timeout.min(left()).max(Duration::from_millis(100));
                condor::run(mode, &file, timeout, &|login| {
                    renew::vault_storer(cfg, login)
                })?;
            }
            Ok(o)
        })
        .and_then(|o| match (&cfg.deploy_hook, o.renewed) {
            (Some(cmd), true) => hook::run(
                cmd,
                &hook::Renewed {
                    file: o.files.first().unwrap_or(&cfg.outfile),
                    profile: cfg.profile.as_deref(),
                    expires: o.expires,
                },
                // The hook gets 5 s after SIGTERM before SIGKILL: keep them inside.
                cfg.hook_timeout
                    .min(left().saturating_sub(Duration::from_secs(5)))
                    .max(Duration::from_millis(100)),
            )
            .map(|()| o),
            _ => Ok(o),
        });
    // Only runs that did something leave a note: the fresh path writes nothing.
    let note = match &r {
        Ok(o) if o.renewed => Some(Ok(o.expires)),
        Ok(_) => None,
        Err(e) => Some(Err(e)),
    };
    if let Some(note) = note {
        state::record_run(
            &cfg.outfile,
            cfg.profile.as_deref(),
            note,
            cfg.rotating_credential()
                .and_then(|c| rewritten_since(c, started)),
        );
    }
    r
}

/// When the credential file was rewritten (a rotated refresh token is saved by an
/// atomic replace), if that was after `since`. Found by one stat after the run, so the
/// renewal itself, under its locks, does no extra write.
fn rewritten_since(credential: &Path, since: SystemTime) -> Option<i64> {
    let m = std::fs::metadata(credential).ok()?.modified().ok()?;
    if m < since {
        return None;
    }
    m.duration_since(UNIX_EPOCH).ok().map(crate::clock::secs)
}

/// Run every configuration, `jobs` at a time; report each failure and a summary.
pub fn run_all(cfgs: &[GetConfig], jobs: usize) -> Exit {
    let results: Vec<Mutex<Option<Result<Outcome>>>> =
        cfgs.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(cfg) = cfgs.get(i) else { break };
        let name = cfg.profile.as_deref().unwrap_or("-");
        let r = {
            let _span = tracing::error_span!("profile", name = %name).entered();
            run_one(cfg)
        };
        if let Err(e) = &r {
            crate::logging::error_line(&format!("profile {name}: {}", e.message()));
        }
        *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
    };
    std::thread::scope(|s| {
        // This thread is a worker too, so a failure to spawn only means less parallelism.
        for _ in 1..jobs.min(cfgs.len()) {
            if std::thread::Builder::new()
                .name("profile".into())
                .spawn_scoped(s, work)
                .is_err()
            {
                break;
            }
        }
        work();
    });

    let mut failed = Vec::new();
    let mut renewed = 0;
    for (cfg, r) in cfgs.iter().zip(results) {
        let name = cfg.profile.clone().unwrap_or_default();
        match r.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(Ok(o)) => renewed += usize::from(o.renewed),
            Some(Err(e)) => failed.push((name, e.exit())),
            None => failed.push((name, Exit::TempFail)),
        }
    }
    let n = cfgs.len();
    if failed.is_empty() {
        tracing::info!(
            "{n} profiles: {renewed} renewed, {} still fresh",
            n - renewed
        );
        return Exit::Ok;
    }
    crate::logging::error_line(&format!(
        "{} of {n} profiles failed: {}",
        failed.len(),
        super::failed_list(&failed)
    ));
    Exit::worst(failed.iter().map(|(_, e)| *e))
}
