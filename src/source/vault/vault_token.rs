//! The Vault token between runs: cached in its file (locked, read without following
//! links), obtained by a Kerberos login when missing or too short-lived, and
//! narrowed to a shorter-lived child token as htgettoken does.

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::http::{Body, Retry};
use crate::secret::Secret;
use crate::source::interface::Context;
use crate::store::{self, FileError, WriteMode};

use super::kerberos::spnego;
use super::settings::{Settings, MAX_VAULT_TOKEN_LEN};
use super::{bootstrap_hint, call, json_of, secret_at, unavailable, vault_errors};

/// The Vault token file's lock, unless this run already holds it (through a token
/// file that shares the lock).
pub(super) fn lock_token_file(s: &Settings, ctx: &Context) -> Result<Option<store::Lock>> {
    ctx.lock(&s.token_file, "Vault token file lock")
}

/// The Vault token in the token file, if there is one (no request).
pub(super) fn read_token_file(s: &Settings) -> Result<Option<Secret>> {
    let data = match store::read_own(&s.token_file, MAX_VAULT_TOKEN_LEN) {
        Ok(Some(d)) => Zeroizing::new(d),
        Ok(None) | Err(FileError::TooLarge { .. }) => return Ok(None),
        Err(e) => return Err(token_file_error(e)),
    };
    let text = String::from_utf8_lossy(&data);
    let token = Secret::new(text.trim());
    if token.is_empty() || token.expose().contains(char::is_whitespace) {
        return Ok(None);
    }
    Ok(Some(token))
}

/// A Vault token file we may not use (exit 73, as for the token file), with the
/// option that moves it.
pub(super) fn token_file_error(e: FileError) -> Error {
    match e {
        FileError::ForeignOwner { path, uid } => Error::write(format!(
            "Vault token file {} is owned by {} (uid {uid}), not by you: have it removed, or \
             give --vault-token-file a path you own",
            path.display(),
            store::user_name(uid)
        )),
        e => Error::write(format!("Vault token file: {e}")),
    }
}

/// The cached Vault token, if it is valid for at least `token_minttl`.
pub(super) fn cached_token(s: &Settings, ctx: &Context) -> Result<Option<Secret>> {
    let data = match store::read_own(&s.token_file, MAX_VAULT_TOKEN_LEN) {
        Ok(Some(d)) => Zeroizing::new(d),
        Ok(None) => {
            tracing::info!("no cached Vault token in {}", s.token_file.display());
            return Ok(None);
        }
        Err(FileError::TooLarge { .. }) => {
            tracing::info!(
                "{} is not a Vault token file: replacing it",
                s.token_file.display()
            );
            return Ok(None);
        }
        Err(e) => return Err(token_file_error(e)),
    };
    let text = String::from_utf8_lossy(&data);
    let token = Secret::new(text.trim());
    if token.is_empty() || token.expose().contains(char::is_whitespace) {
        return Ok(None);
    }
    let url = s.url("auth/token/lookup-self");
    let what = "looking up the Vault token at";
    let r = call(ctx, what, &url, &token, Body::Get, Retry::Idempotent)?;
    if r.status != 200 {
        tracing::info!(
            "the cached Vault token {token} is no longer valid ({}): logging in again",
            vault_errors(&r)
        );
        return Ok(None);
    }
    let v = json_of(&r, "looking up the Vault token at", &url)?;
    let ttl = v["data"]["ttl"].as_i64().unwrap_or(0);
    let never_expires = ttl == 0 && v["data"]["expire_time"].is_null();
    let min = crate::clock::secs(s.token_minttl);
    if never_expires || ttl >= min {
        tracing::info!(
            "reusing the cached Vault token {token} from {} ({} left)",
            s.token_file.display(),
            if never_expires {
                "no expiry".to_string()
            } else {
                crate::clock::human_secs(ttl)
            }
        );
        Ok(Some(token))
    } else {
        tracing::info!(
            "the cached Vault token {token} has {} left, less than --vault-token-minttl {}: logging in again",
            crate::clock::human_secs(ttl),
            crate::clock::human_secs(min)
        );
        Ok(None)
    }
}

/// Log in with Kerberos, store the Vault token, return it.
pub(super) fn login(s: &Settings, ctx: &Context) -> Result<Secret> {
    let (negotiate, principal, _ccache) = spnego(s)?;
    let who = principal.as_deref().unwrap_or("the keytab's principal");
    let url = s.url(&format!("{}/login", s.kerberos_path));
    // A SPNEGO token is single-use (servers keep a replay cache): never resend one
    // that may have arrived.
    let r = ctx.http.request(
        &url,
        &[("Authorization", negotiate.as_str())],
        Body::Empty,
        Retry::AtMostOnce,
    );
    drop(negotiate);
    let r = unavailable("Kerberos login at", &url, r)?;
    match r.status {
        200 => {}
        404 => {
            return Err(Error::config(format!(
                "Vault has no Kerberos login at {url} ({}): check --issuer-name {} and --role {}",
                vault_errors(&r),
                s.issuer,
                s.role
            )))
        }
        _ => {
            return Err(Error::perm(format!(
                "Vault refused the Kerberos login of {who} at {url} ({}): if this principal \
                 should be allowed, ask the Vault administrators; otherwise {}",
                vault_errors(&r),
                bootstrap_hint(s)
            )))
        }
    }
    let v = json_of(&r, "Kerberos login at", &url)?;
    let token = secret_at(&v, "auth", "client_token").ok_or_else(|| {
        Error::data(format!(
            "Kerberos login at {url}: no auth.client_token in the answer"
        ))
    })?;
    let lease = v["auth"]["lease_duration"].as_u64().unwrap_or(0);
    tracing::info!(
        "logged in to Vault as {who}: Vault token {token}, lease {}",
        crate::clock::human_secs(crate::clock::secs_u64(lease))
    );
    let token = if lease > s.token_ttl.as_secs() || lease == 0 {
        shorter_token(s, token, ctx)?
    } else {
        token
    };
    let mut bytes = Zeroizing::new(Vec::with_capacity(token.expose().len() + 1));
    bytes.extend_from_slice(token.expose().as_bytes());
    bytes.push(b'\n');
    store::atomic_write(&s.token_file, &bytes, WriteMode::default()).map_err(token_file_error)?;
    tracing::info!(
        "stored the Vault token {token} in {}",
        s.token_file.display()
    );
    Ok(token)
}

/// Exchange a login token whose lease exceeds `--vault-token-ttl` for a
/// non-renewable child that lives `--vault-token-ttl`, as htgettoken does, so the
/// token on disk is worth less when stolen.
///
/// The parent is not revoked: Vault revokes a token's children with it, and the
/// endpoints that make a child outlive its parent (`create-orphan`, `revoke-orphan`)
/// need privileges that a robot's login policy does not grant. The parent is never
/// written anywhere and is wiped from memory here.
fn shorter_token(s: &Settings, parent: Secret, ctx: &Context) -> Result<Secret> {
    let url = s.url("auth/token/create");
    let body = serde_json::json!({
        "ttl": format!("{}s", s.token_ttl.as_secs()),
        "renewable": "false",
    })
    .to_string();
    // Not retried once it may have arrived: each success creates a token.
    let what = "creating a shorter Vault token at";
    let r = call(
        ctx,
        what,
        &url,
        &parent,
        Body::Json(&body),
        Retry::AtMostOnce,
    )?;
    let child = (r.status == 200)
        .then(|| json_of(&r, "creating a shorter Vault token at", &url).ok())
        .flatten()
        .and_then(|v| v["auth"]["client_token"].as_str().map(Secret::new))
        .filter(|t| !t.is_empty());
    match child {
        Some(child) => {
            tracing::info!(
                "exchanged it for the Vault token {child} valid {} (--vault-token-ttl)",
                crate::clock::human_secs(crate::clock::secs(s.token_ttl))
            );
            Ok(child)
        }
        None => {
            tracing::warn!(
                "Vault did not create a shorter Vault token ({}); keeping the login token",
                vault_errors(&r)
            );
            Ok(parent)
        }
    }
}
