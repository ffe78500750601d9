//! The htvault-config source: HashiCorp Vault holding the refresh token, a Kerberos
//! keytab to log in with. What `htgettoken -a HOST -i ISSUER` and
//! `igwn-robot-get --keytab FILE` do, in the same HTTP steps:
//!
//! 1. reuse the Vault token cached in `--vault-token-file` when
//!    `GET /v1/auth/token/lookup-self` says it has at least `--vault-token-minttl` left;
//! 2. else log in: a SPNEGO token for `host@<vault host>` (then `HTTP@`) made from the
//!    keytab in a private credential cache, `POST /v1/<kerberos-path>/login` with
//!    `Authorization: Negotiate …`; a login lease longer than `--vault-token-ttl` is
//!    exchanged for a shorter, non-renewable child (`POST /v1/auth/token/create`); the
//!    Vault token is stored atomically, mode 0600;
//! 3. `GET /v1/<secret-path>?minimum_seconds=<minsecs>`: `data.access_token` is the
//!    bearer token.
//!
//! `renew` runs this only when the token file is not fresh, so a fresh run makes no
//! Vault or KDC traffic at all (unlike htgettoken). The user's default credential
//! cache is never read or written.
//!
//! Here: the three steps and `revoke`/`preflight`. Beside it: `settings` (options
//! merged with the credential file and defaults; `options`, the typed ones),
//! `vault_token` (step 1 and the cached token), `kerberos` (the ticket and the SPNEGO
//! token of step 2, over `gssapi`), `keytab` (reading the principal from a keytab).

pub mod gssapi;
mod kerberos;
pub mod keytab;
pub mod options;
mod settings;
mod vault_token;

pub use self::kerberos::{kerberos_ticket, krb5_config_list};
pub use self::settings::{
    default_token_file, kerberos_ccache, normalize_server, principal_defaults, section_of,
    settings, Settings, DEFAULT_ISSUER, DEFAULT_KERBEROS_PATH, DEFAULT_PORT, DEFAULT_ROLE,
    DEFAULT_SECRET_PATH, DEFAULT_TOKEN_MINTTL, DEFAULT_TOKEN_TTL,
};
use crate::error::{Error, Result};
use crate::http::{self, Body, Reply, Retry};
use crate::secret::Secret;
use crate::source::interface::{Context, Issued};
use crate::store;
pub use options::VaultOptions;
use serde_json::Value;

use self::kerberos::prefer_no_rdns;
use self::settings::MAX_VAULT_TOKEN_LEN;
use self::vault_token::{cached_token, lock_token_file, login, read_token_file, token_file_error};

/// What `errors` a Vault error answer carries, joined; never the request's secrets.
pub(super) fn vault_errors(r: &Reply) -> String {
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    // Vault's words: shown only cleaned and redacted (it may echo a token it was sent).
    let list: Vec<String> = v["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .take(10)
                .map(crate::secret::untrusted_text)
                .collect()
        })
        .unwrap_or_default();
    if list.is_empty() {
        format!("HTTP {}", r.status)
    } else {
        format!("HTTP {}: {}", r.status, list.join("; "))
    }
}

pub(super) fn json_of(r: &Reply, what: &str, url: &str) -> Result<Value> {
    serde_json::from_slice(&r.body).map_err(|_| {
        Error::data(format!(
            "{what} {url}: the answer is not JSON (HTTP {}); is this a Vault server?",
            r.status
        ))
    })
}

/// A Vault request that failed in transport or with 5xx/429: temporary (75), except
/// TLS and configuration problems.
/// The non-empty string at `v[a][b]` of a Vault answer, as a secret.
pub(super) fn secret_at(v: &Value, a: &str, b: &str) -> Option<Secret> {
    v[a][b].as_str().filter(|t| !t.is_empty()).map(Secret::new)
}

/// A Vault API call with `token`; a failure names `what` was done at `url`.
pub(super) fn call(
    ctx: &Context,
    what: &str,
    url: &str,
    token: &Secret,
    body: Body<'_>,
    retry: Retry,
) -> Result<Reply> {
    let r = ctx
        .http
        .request(url, &[("X-Vault-Token", token.expose())], body, retry);
    unavailable(what, url, r)
}

pub(super) fn unavailable(
    what: &str,
    url: &str,
    r: std::result::Result<Reply, http::Failure>,
) -> Result<Reply> {
    match r {
        Err(f) => Err(f.into_error(what, url).context_if_temp("Vault unreachable")),
        Ok(r) if r.status >= 500 || r.status == 429 => Err(Error::temp(format!(
            "{what} {url}: Vault answered {}; try again later",
            vault_errors(&r)
        ))),
        Ok(r) => Ok(r),
    }
}

trait TempContext {
    fn context_if_temp(self, what: &str) -> Error;
}

impl TempContext for Error {
    fn context_if_temp(self, what: &str) -> Error {
        if self.exit() == crate::error::Exit::TempFail {
            self.context(what)
        } else {
            self
        }
    }
}

/// The htgettoken command that re-bootstraps the credential in Vault by its OIDC
/// (browser) flow, for messages.
pub(super) fn bootstrap_hint(s: &Settings) -> String {
    let server = s.server.trim_start_matches("https://");
    let server = server.strip_suffix(":8200").unwrap_or(server);
    format!(
        "re-bootstrap the credential in Vault interactively (htgettoken's OIDC flow): \
         `htgettoken -a {server} -i {} -r {} --credkey {}`",
        s.issuer, s.role, s.credkey
    )
}

/// The least time left asked of Vault when the default margin is more than it can
/// give: htgettoken's own default `--minsecs`.
const VAULT_FLOOR_SECS: i64 = 60;

/// Get a bearer token from Vault.
pub fn obtain(s: &Settings, minsecs: i64, ctx: &Context) -> Result<Issued> {
    if s.keytab.is_some() {
        prefer_no_rdns();
    }
    // One run at a time per Vault token file: logins and token exchanges are state
    // changes at Vault, and several token files may share one Vault token.
    let _lock = lock_token_file(s, ctx)?;
    store::remove_stale_temps(&s.token_file);

    let (mut vault_token, cached) = match cached_token(s, ctx)? {
        Some(t) => (t, true),
        None => (login(s, ctx)?, false),
    };
    let mut r = creds_reply(s, &vault_token, minsecs, ctx)?;
    // A cached token may belong to another role or credkey sharing the file (the
    // default /tmp/vt_u<uid> is per user): log in once more before giving up.
    if cached && matches!(r.status, 401 | 403) && s.keytab.is_some() {
        tracing::info!(
            "Vault refused the cached Vault token for this credential ({}): logging in again",
            vault_errors(&r)
        );
        vault_token = login(s, ctx)?;
        r = creds_reply(s, &vault_token, minsecs, ctx)?;
    }
    // htvault-config answers 400 when even a refreshed token cannot have
    // `minimum_seconds` left: its tokens live less. Without --minsecs that margin was
    // only the default's guess (one hour when no token on disk says more), so take
    // the token it has; the next runs know its lifetime. An explicit --minsecs is not
    // lowered behind the user's back.
    let mut minsecs = minsecs;
    if r.status == 400 && ctx.minsecs_is_default && minsecs > VAULT_FLOOR_SECS {
        tracing::info!(
            "Vault cannot give a token with {minsecs} s left (its tokens live less); asking \
             for one with at least {VAULT_FLOOR_SECS} s"
        );
        minsecs = VAULT_FLOOR_SECS;
        r = creds_reply(s, &vault_token, minsecs, ctx)?;
    }
    issued_from(s, r, minsecs)
}

/// Retire a Vault robot. With `force`, first delete the refresh token stored in Vault:
/// `DELETE /v1/<secret path>` with `X-Vault-Token`, the request `htdestroytoken -f` sends
/// (htvault-config's Kerberos policy grants "delete" on that path); the cached Vault
/// token is used, else one from a keytab login. Then revoke the cached Vault token
/// (`POST /v1/auth/token/revoke-self`) and remove its file, its lock and the private
/// Kerberos cache. A refusal stops before any file is removed, so revoke can be run
/// again. Returns one line per thing done, for the report.
pub fn revoke(s: &Settings, force: bool, ctx: &Context) -> Result<Vec<String>> {
    if s.keytab.is_some() {
        prefer_no_rdns();
    }
    let lock = lock_token_file(s, ctx)?;
    let mut done = Vec::new();
    let mut token = read_token_file(s)?;
    if force {
        let url = creds_url(s);
        let delete = |t: &Secret| {
            call(
                ctx,
                "deleting the refresh token at",
                &url,
                t,
                Body::Delete,
                Retry::Idempotent,
            )
        };
        let mut answer = token.as_ref().map(delete).transpose()?;
        // No cached token, or Vault no longer takes it: the keytab can log in.
        let usable = matches!(&answer, Some(r) if !matches!(r.status, 401 | 403));
        if !usable && s.keytab.is_some() {
            let fresh = login(s, ctx)?;
            answer = Some(delete(&fresh)?);
            token = Some(fresh);
        }
        match answer {
            None => {
                return Err(Error::perm(format!(
                    "no Vault token in {} and no keytab to log in with, so the refresh token in \
                     Vault cannot be deleted; nothing was changed: give -k KEYTAB",
                    s.token_file.display()
                )))
            }
            Some(r) if matches!(r.status, 200 | 204) => done.push(format!(
                "deleted the refresh token stored in Vault at {url}"
            )),
            Some(r) if r.status == 404 => done.push(format!(
                "Vault holds no refresh token at {url} (already deleted)"
            )),
            Some(r) => {
                return Err(Error::perm(format!(
                    "Vault refused to delete the refresh token at {url} ({}); nothing was \
                     changed: check --credkey {} and --role {}, or ask the Vault administrators",
                    vault_errors(&r),
                    s.credkey,
                    s.role
                )))
            }
        }
    }
    match &token {
        Some(t) => {
            let url = s.url("auth/token/revoke-self");
            // Idempotent: a repeat after a lost answer finds the token already dead (403).
            let what = "revoking the Vault token at";
            let r = call(ctx, what, &url, t, Body::Empty, Retry::Idempotent)?;
            match r.status {
                200 | 204 => done.push(format!("revoked the Vault token {t} at {url}")),
                401 | 403 => done.push(format!(
                    "the Vault token {t} in {} was no longer valid",
                    s.token_file.display()
                )),
                _ => {
                    return Err(Error::perm(format!(
                        "Vault refused to revoke the Vault token at {url} ({}); no file was \
                         removed: run revoke again",
                        vault_errors(&r)
                    )))
                }
            }
        }
        None => done.push(format!(
            "no Vault token in {}: nothing to revoke in Vault",
            s.token_file.display()
        )),
    }
    match store::remove_own(&s.token_file) {
        Ok(true) => done.push(format!("removed {}", s.token_file.display())),
        Ok(false) => {}
        Err(e) => return Err(token_file_error(e)),
    }
    drop(lock);
    if let Ok(p) = store::lock_path(&s.token_file) {
        let _ = std::fs::remove_file(p);
    }
    if let Some(cc) = s.keytab.as_ref().and_then(|_| s.kerberos_ccache().ok()) {
        if std::fs::remove_file(&cc).is_ok() {
            done.push(format!(
                "removed the Kerberos ticket cache {}",
                cc.display()
            ));
        }
    }
    if !force {
        done.push(format!(
            "the refresh token stays in Vault at {}: the keytab can still log in and read tokens; \
             add --force to delete it too (as htdestroytoken -f does)",
            creds_url(s)
        ));
    }
    Ok(done)
}

/// `get --dry-run` for the Vault source: what a renewal checks and reads before its
/// login, in its order, without logging in: the keytab (mode, the principal in it),
/// the GSSAPI library, the private ticket cache, the Vault token file, Vault itself
/// (`GET /v1/sys/health`, unauthenticated), the cached Vault token
/// (`lookup-self`, a read). Stops at a check the next ones depend on. Returns the
/// checks (name, outcome) and the `Date` header Vault answered with.
pub fn preflight(s: &Settings, ctx: &Context) -> (Vec<(String, Result<String>)>, Option<String>) {
    let mut out: Vec<(String, Result<String>)> = Vec::new();
    if let Some(k) = &s.keytab {
        let who = s.principal.clone().unwrap_or_default();
        let held = match keytab::holds(k, &who) {
            Ok(Some(false)) => Err(Error::perm(format!(
                "the keytab {} holds no key for {who}: check --principal, or the keytab with \
                 `klist -k {}`",
                k.display(),
                k.display()
            ))),
            Ok(_) => Ok(format!(
                "{} is yours, mode 0600 or stricter, and holds {who}",
                k.display()
            )),
            Err(e) => Err(e),
        };
        let stop = held.is_err();
        out.push((format!("keytab {}", k.display()), held));
        if stop {
            return (out, None);
        }
        out.push((
            "GSSAPI library".into(),
            crate::source::vault::gssapi::shared()
                .map(|_| "libgssapi_krb5.so.2 loads (no login is tried)".into())
                .map_err(|e| Error::config(e.to_string())),
        ));
        out.push((
            "Kerberos ticket cache".into(),
            s.kerberos_ccache()
                .map(|p| format!("{} is private", p.parent().unwrap_or(&p).display())),
        ));
    }
    let file = store::read_own(&s.token_file, MAX_VAULT_TOKEN_LEN)
        .map(|_| format!("{} is yours or absent", s.token_file.display()))
        .map_err(token_file_error);
    let stop = file.is_err();
    out.push(("Vault token file".into(), file));
    if stop {
        return (out, None);
    }
    // Standbys answer 429/472/473 by default; these parameters make them answer 200.
    let url = s.url("sys/health?standbyok=true&perfstandbyok=true");
    let r = ctx.http.request(&url, &[], Body::Get, Retry::Idempotent);
    let date = r.as_ref().ok().and_then(|r| r.date.clone());
    let shown = s.url("sys/health");
    match unavailable("reaching Vault at", &shown, r) {
        Ok(r) => out.push((
            format!("Vault {}", s.server),
            Ok(format!("{shown} answers HTTP {}", r.status)),
        )),
        Err(e) => {
            out.push((format!("Vault {}", s.server), Err(e)));
            return (out, date);
        }
    }
    let cached = match cached_token(s, ctx) {
        Ok(Some(t)) => Ok(format!(
            "the Vault token {t} in {} is valid for at least --vault-token-minttl: a renewal \
             reuses it",
            s.token_file.display()
        )),
        Ok(None) if s.keytab.is_some() => Ok(format!(
            "no usable Vault token in {}: a renewal logs in with the keytab",
            s.token_file.display()
        )),
        Ok(None) => Err(Error::perm(format!(
            "no valid Vault token in {} and no keytab to log in with: give -k KEYTAB (or set \
             KRB5_KTNAME), or {}",
            s.token_file.display(),
            bootstrap_hint(s)
        ))),
        Err(e) => Err(e),
    };
    out.push(("cached Vault token".into(), cached));
    (out, date)
}

fn creds_url(s: &Settings) -> String {
    s.url(&s.secret_path)
}

/// Ask for the bearer token at the secret path: the answer, or a temporary error.
fn creds_reply(s: &Settings, vault_token: &Secret, minsecs: i64, ctx: &Context) -> Result<Reply> {
    let path_url = creds_url(s);
    let url = format!("{path_url}?minimum_seconds={}", minsecs.max(0));
    let r = ctx.http.request(
        &url,
        &[("X-Vault-Token", vault_token.expose())],
        Body::Get,
        Retry::Idempotent,
    );
    unavailable("reading the token from", &path_url, r)
}

/// The bearer token in an answer of the secret path, or what a person must do.
fn issued_from(s: &Settings, r: Reply, minsecs: i64) -> Result<Issued> {
    let path_url = creds_url(s);
    match r.status {
        200 => {}
        403 | 401 => {
            return Err(Error::perm(format!(
                "Vault refused to read {path_url} ({}): the credential is not stored or not \
                 allowed for this login; {}",
                vault_errors(&r),
                bootstrap_hint(s)
            )))
        }
        404 => {
            return Err(Error::perm(format!(
                "Vault holds no credential at {path_url} ({}): check --credkey {}, or {}",
                vault_errors(&r),
                s.credkey,
                bootstrap_hint(s)
            )))
        }
        _ => {
            return Err(Error::perm(format!(
                "Vault could not provide a token with {minsecs} s left from {path_url} ({}): \
                 lower --minsecs if it exceeds the issuer's token lifetime; otherwise {}",
                vault_errors(&r),
                bootstrap_hint(s)
            )))
        }
    }
    let v = json_of(&r, "reading the token from", &path_url)?;
    let access_token = secret_at(&v, "data", "access_token").ok_or_else(|| {
        Error::data(format!(
            "{path_url} answered without data.access_token; the old token is kept"
        ))
    })?;
    Ok(Issued {
        access_token,
        granted_scope: None,
        requested_scope: Vec::new(),
        from: path_url,
    })
}

#[cfg(test)]
mod tests;
