//! `robot-token revoke`: retire a robot, given the options of its `get` line or its
//! profile.
//!
//! 1. Under the token files' locks (and the credential's), so no renewal runs meanwhile:
//!    - OAuth: revoke the refresh token at the issuer's `revocation_endpoint` (RFC 7009,
//!      from discovery) with the client's authentication;
//!    - Vault: `vault::revoke` (the cached Vault token; with `--force` also the refresh
//!      token stored in Vault, as `htdestroytoken -f`);
//!    - client_credentials, token exchange without a refresh token, exec: nothing to
//!      revoke at an issuer; say so.
//! 2. Mark the credential file: `refresh_token` removed, `revoked_at` set (`get` then
//!    refuses it). It is kept: it may hold a client secret the operator still needs.
//! 3. Remove the token files, their leftovers, and robot-token's own files: each
//!    file's lock, whose record holds a token file's last run (for `status`) or the
//!    credential's in-flight marker.
//!
//! A refusal or a network failure in step 1 changes no file, so revoke can be run
//! again. A credential already marked is not sent anywhere again: a second revoke is a
//! no-op (it only removes files a later run may have left).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::ArgMatches;

use crate::cli::RevokeCmd;
use crate::commands::get::config_path;
use crate::commands::renew;
use crate::config::profile::ConfigFile;
use crate::config::GetConfig;
use crate::error::{Error, Exit, Result};
use crate::http::{self, Http};
use crate::output::condor;
use crate::source::credential::{self, Credential};
use crate::source::vault::{self, VaultOptions};
use crate::source::{self, oauth, Context, Source};
use crate::store;

pub fn run(
    config: Option<&PathBuf>,
    cmd: &RevokeCmd,
    matches: Option<&ArgMatches>,
) -> Result<Exit> {
    let (cfg, name) = match &cmd.profile {
        Some(name) => {
            let file = ConfigFile::load(&config_path(config)?)?;
            let p = file.profile(name)?;
            let cfg = file
                .resolve_all(&[p], matches)?
                .pop()
                .ok_or_else(|| Error::config("no profile"))?;
            (cfg, Some(name))
        }
        None => (GetConfig::from_args(&cmd.args)?, None),
    };
    let lines = revoke(&cfg, cmd.force).map_err(|e| match name {
        Some(n) => e.context(format!("profile {n}")),
        None => e,
    })?;
    // The report is what the operator asked for; -q (errors only) silences it.
    if tracing::enabled!(tracing::Level::WARN) {
        let mut out = std::io::stdout().lock();
        for l in &lines {
            // Not println!: a closed stdout must not panic.
            let _ = writeln!(out, "{l}");
        }
    }
    Ok(Exit::Ok)
}

/// Now, as the credential's `revoked_at` (RFC 3339, UTC).
fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Retire the robot of `cfg`; one line per thing done.
pub fn revoke(cfg: &GetConfig, force: bool) -> Result<Vec<String>> {
    let targets = cfg.targets()?;
    let deadline = crate::clock::from_now(cfg.deadline);
    let mut lines = Vec::new();

    // No renewal may run meanwhile: hold the token files' locks, in get's order.
    let mut lock_paths = Vec::new();
    for t in &targets {
        lock_paths.push(store::lock_path(&t.path).map_err(renew::token_file_error)?);
    }
    let locks = renew::lock_in_order(&mut lock_paths, deadline)?;
    let http = Http::new(cfg.trust.clone(), cfg.timeout, deadline);
    let first = renew::first_file(cfg, &targets);
    // Revocation asks no source for a token: the default margin.
    let ctx = Context {
        minsecs_is_default: cfg.minsecs.is_none(),
        ..Context::new(&http, &lock_paths, &first, deadline)
    };

    // The credential file, when there is one: its real path (for its own files), and
    // its lock, held to the end.
    let mut credential_file = None;
    let mut _cred_lock = None;
    match &cfg.source.kind {
        Source::File(path) => {
            let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            _cred_lock = source::lock_credential(&real, &ctx)?;
            let (real, data) = credential::read_file(path)?;
            credential_file = Some(real.clone());
            match credential::revoked_at_in(&data) {
                Some(at) => lines.push(already(&real, &at)),
                None => {
                    if let Some(opts) = vault::section_of(&data, &real)? {
                        http::check_trust(&cfg.trust)?;
                        let s =
                            vault::Settings::from_options(&VaultOptions::default(), Some(&opts))?;
                        lines.extend(vault::revoke(&s, force, &ctx)?);
                        mark(&real, &data, &mut lines)?;
                    } else {
                        let mut cred = Credential::parse(&data, &real)?;
                        lines.push(at_issuer(cfg, &cred, &http)?);
                        let at = now_rfc3339();
                        cred.store_revoked(&at)?;
                        lines.push(kept(&real, &at));
                    }
                }
            }
        }
        Source::Vault(opts) => {
            let marked = match &opts.credential {
                Some(path) => {
                    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
                    _cred_lock = source::lock_credential(&real, &ctx)?;
                    let (real, data) = credential::read_file(path)?;
                    credential_file = Some(real.clone());
                    Some((real, data))
                }
                None => None,
            };
            match marked
                .as_ref()
                .and_then(|(real, data)| Some((real, credential::revoked_at_in(data)?)))
            {
                Some((real, at)) => lines.push(already(real, &at)),
                None => {
                    http::check_trust(&cfg.trust)?;
                    let s = vault::Settings::resolve(&cfg.source.kind)?
                        .ok_or_else(|| Error::usage("no Vault settings: give --vault-server"))?;
                    lines.extend(vault::revoke(&s, force, &ctx)?);
                    if let Some((real, data)) = &marked {
                        mark(real, data, &mut lines)?;
                    }
                }
            }
        }
        Source::Client { issuer, .. } => lines.push(format!(
            "no refresh token (a client_credentials robot): nothing to revoke at {}; the client \
             itself stays registered there: ask its administrators to disable it if it is not \
             used elsewhere",
            issuer.as_deref().unwrap_or("the issuer")
        )),
        Source::Exec(settings) => lines.push(format!(
            "the exec command {} obtains this robot's tokens: nothing for robot-token to revoke; \
             retire the credential where that command keeps it",
            settings.program()
        )),
    }

    // Local files. Every one is tried; failures are reported together at the end.
    let mut failures = Vec::new();
    for t in &targets {
        store::remove_stale_temps_by(&t.path, t.other_owner());
        match store::remove_own_by(&t.path, t.other_owner()) {
            Ok(true) => lines.push(format!("removed {}", t.path.display())),
            Ok(false) => {}
            Err(e) => failures.push(format!("token file: {e}")),
        }
    }
    drop(locks);
    for p in &lock_paths {
        let _ = std::fs::remove_file(p);
    }
    // robot-token's own file for the credential: its lock, whose record holds the
    // in-flight marker (a token file's lock, removed above, holds its last run).
    drop(_cred_lock);
    if let Some(real) = &credential_file {
        store::remove_stale_temps(real);
        if let Ok(p) = store::lock_path(real) {
            if let Err(e) = store::remove_own(&p) {
                failures.push(e.to_string());
            }
        }
    }
    if let Some(condor::Mode::Credd { service, handle }) = &cfg.condor {
        lines.push(format!(
            "the token HTCondor's credd holds for service {service} stays until it expires: \
             `condor_store_cred delete-oauth -s {service}{}` removes it",
            handle
                .as_deref()
                .map(|h| format!(" -H {h}"))
                .unwrap_or_default()
        ));
    }
    if !failures.is_empty() {
        return Err(Error::write(format!(
            "revoked, but {} file(s) could not be removed: {}",
            failures.len(),
            failures.join("; ")
        )));
    }
    Ok(lines)
}

fn already(credential: &Path, at: &str) -> String {
    format!(
        "{} was already revoked at {at}: nothing to revoke",
        credential.display()
    )
}

/// Mark a credential file that is not an OAuth2 client's (a `vault` section) revoked,
/// and say so.
fn mark(real: &Path, data: &[u8], lines: &mut Vec<String>) -> Result<()> {
    let at = now_rfc3339();
    credential::mark_revoked(real, data, &at)?;
    lines.push(kept(real, &at));
    Ok(())
}

fn kept(real: &Path, at: &str) -> String {
    format!(
        "kept {} without its refresh_token and with \"revoked_at\": \"{at}\" (robot-token get \
         refuses it now; it still holds the client's settings)",
        real.display()
    )
}

/// Step 1 for an OAuth credential file: revoke its refresh token, if it has one.
fn at_issuer(cfg: &GetConfig, cred: &Credential, http: &Http) -> Result<String> {
    if let Some(exec) = &cred.exec {
        return Ok(format!(
            "the exec command {} obtains this robot's tokens: nothing for robot-token to revoke; \
             retire the credential where that command keeps it",
            exec.program()
        ));
    }
    let Some(rt) = &cred.refresh_token else {
        return Ok(format!(
            "{} holds no refresh token (client_credentials or a token exchange): nothing to \
             revoke at {}; the client itself stays registered there",
            cred.path.display(),
            cred.issuer.as_deref().unwrap_or("the issuer")
        ));
    };
    http::check_trust(&cfg.trust)?;
    let (endpoint, aud) = revocation_endpoint(http, cfg, cred)?;
    let client = source::client_of(&cfg.source, cred)?;
    oauth::revoke_refresh_token(http, &endpoint, &client, &aud, rt)?;
    Ok(format!("revoked the refresh token {rt} at {endpoint}"))
}

/// The revocation endpoint (the credential's `revocation_endpoint`, else discovery) and
/// the audience of a client assertion for it (the token endpoint).
fn revocation_endpoint(
    http: &Http,
    cfg: &GetConfig,
    cred: &Credential,
) -> Result<(String, String)> {
    let token_endpoint = cfg
        .source
        .token_endpoint
        .clone()
        .or_else(|| cred.token_endpoint.clone());
    if let Some(ep) = &cred.revocation_endpoint {
        let aud = token_endpoint
            .or_else(|| cred.issuer.clone())
            .unwrap_or_else(|| ep.clone());
        return Ok((ep.clone(), aud));
    }
    let Some(issuer) = &cred.issuer else {
        return Err(Error::config(format!(
            "{} names no issuer, so its revocation endpoint cannot be discovered; nothing was \
             changed: add \"revocation_endpoint\" (or \"issuer\") to it",
            cred.path.display()
        )));
    };
    let meta = crate::issuer::discover(http, issuer)?;
    let Some(ep) = meta.revocation_endpoint else {
        return Err(Error::config(format!(
            "the discovery document of {issuer} names no revocation_endpoint: this issuer does \
             not offer RFC 7009 revocation; nothing was changed: ask its administrators to revoke \
             the refresh token (or delete the client), or set \"revocation_endpoint\" in {}",
            cred.path.display()
        )));
    };
    let aud = token_endpoint
        .or(meta.token_endpoint)
        .unwrap_or_else(|| issuer.clone());
    Ok((ep, aud))
}
