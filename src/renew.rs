//! `robot-token get`: the cron job's whole life.
//!
//! fresh? → stop. Otherwise: lock → fresh now? (another run renewed) → credential →
//! token request → persist a rotated refresh token → check the new token → replace
//! the token file. The fresh path reads one small file and touches nothing else.

use std::path::Path;
use std::time::Instant;

use crate::config::{GetConfig, Source};
use crate::credential::{self, ClientAuth, Credential};
use crate::error::{Error, Exit, Result, Tag};
use crate::http::{self, Http};
use crate::oauth::{self, Client, Grant, TokenRequest};
use crate::secret::Secret;
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

/// Everything needed to ask for a token, resolved from the source.
struct Plan {
    issuer: Option<String>,
    token_endpoint: Option<String>,
    client: Client,
    grant: Grant,
    scope: Vec<String>,
    audience: Vec<String>,
    credential: Option<Credential>,
}

fn default_auth(secret: &Option<Secret>) -> ClientAuth {
    if secret.is_some() {
        ClientAuth::Basic
    } else {
        ClientAuth::None
    }
}

/// The plan for a client_credentials robot given on the command line.
fn plan_from_options(
    cfg: &GetConfig,
    issuer: &Option<String>,
    client_id: &str,
    secret_file: &Path,
) -> Result<Plan> {
    let secret = Some(credential::read_secret_file(secret_file)?);
    Ok(Plan {
        issuer: issuer.clone(),
        token_endpoint: cfg.token_endpoint.clone(),
        client: Client {
            id: client_id.to_string(),
            auth: cfg.client_auth.unwrap_or(default_auth(&secret)),
            secret,
        },
        grant: Grant::ClientCredentials,
        scope: cfg.scope.clone(),
        audience: cfg.audience.clone(),
        credential: None,
    })
}

fn plan_from_credential(cfg: &GetConfig, cred: Credential) -> Plan {
    let pick = |cli: &Vec<String>, file: &Vec<String>| {
        if cli.is_empty() {
            file.clone()
        } else {
            cli.clone()
        }
    };
    let grant = match &cred.refresh_token {
        Some(rt) => Grant::RefreshToken(rt.clone()),
        None => Grant::ClientCredentials,
    };
    Plan {
        issuer: cred.issuer.clone(),
        token_endpoint: cfg
            .token_endpoint
            .clone()
            .or_else(|| cred.token_endpoint.clone()),
        client: Client {
            id: cred.client_id.clone(),
            auth: cfg
                .client_auth
                .or(cred.client_auth)
                .unwrap_or(default_auth(&cred.client_secret)),
            secret: cred.client_secret.clone(),
        },
        grant,
        scope: pick(&cfg.scope, &cred.scope),
        audience: pick(&cfg.audience, &cred.audience),
        credential: Some(cred),
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
    http::check_trust(&cfg.trust)?;
    let deadline = started + cfg.deadline;

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

    // A credential file is read only under its own lock: a refresh token may be
    // redeemed once, and two token files can share one credential.
    let (mut plan, _cred_lock) = match &cfg.source {
        Source::File(file) => {
            let real = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
            let cred_lock_path = store::lock_path(&real)
                .map_err(|e| Error::write(format!("credential lock: {e}")))?;
            let guard = if cred_lock_path != lock_path {
                Some(store::lock(&cred_lock_path, deadline).map_err(|e| match e {
                    FileError::LockTimeout(_) => Error::temp(e.to_string()),
                    e => Error::write(format!("credential lock: {e}")),
                })?)
            } else {
                None
            };
            store::remove_stale_temps(&real);
            (plan_from_credential(cfg, Credential::load(file)?), guard)
        }
        Source::Client {
            issuer,
            client_id,
            secret_file,
        } => (
            plan_from_options(cfg, issuer, client_id, secret_file)?,
            None,
        ),
    };

    let http = Http::new(cfg.trust.clone(), cfg.timeout, deadline);
    let endpoint = oauth::token_endpoint(
        &http,
        plan.issuer.as_deref(),
        plan.token_endpoint.as_deref(),
    )?;
    // An in-flight marker names the refresh token being sent. If this run dies or
    // loses the answer, the next run finds it and can say why the issuer then
    // rejects the token, instead of a generic "rejected".
    let marker = match (&plan.grant, &plan.credential) {
        (Grant::RefreshToken(rt), Some(cred)) => store::sidecar_path(&cred.path, "inflight")
            .ok()
            .map(|p| (p, rt.fingerprint())),
        _ => None,
    };
    let earlier = marker.as_ref().and_then(|(p, fp)| earlier_send(p, fp));
    if let Some((p, fp)) = &marker {
        let body = serde_json::json!({"refresh_token_sha256": fp, "sent_at": token::now()});
        if let Err(e) = store::write_marker(p, body.to_string().as_bytes()) {
            tracing::debug!("cannot write the in-flight marker: {e}");
        }
    }
    let resp = oauth::request_token(
        &http,
        &TokenRequest {
            endpoint: &endpoint,
            client: &plan.client,
            grant: &plan.grant,
            scope: &plan.scope,
            audience: &plan.audience,
        },
    );
    let resp = match (resp, earlier) {
        (Err(e), Some(at)) if e.tag() == Some(Tag::RefreshRejected) => {
            return Err(Error::perm(format!(
                "the issuer rejected the refresh token: an earlier run sent it at {at} and never \
                 got the answer (killed, or the connection was cut), so the issuer rotated it and \
                 revoked the credential; bootstrap a new credential (robot-token init)"
            ))
            .tagged(Tag::RefreshRejected));
        }
        (Err(e), _) => {
            // Keep the marker only when the answer was lost; any answer settles it.
            if e.tag() != Some(Tag::LostResponse) && e.tag() != Some(Tag::RefreshRejected) {
                clear_marker(&marker);
            }
            return Err(e);
        }
        (Ok(r), _) => r,
    };

    // A new refresh token is safe on disk before anything else happens: the old one
    // is already dead at the issuer, and reusing it would revoke the whole family.
    if let (Some(new_rt), Some(cred)) = (resp.refresh_token, plan.credential.as_mut()) {
        if cred.refresh_token.as_ref() != Some(&new_rt) {
            let old_fp = cred
                .refresh_token
                .as_ref()
                .map(|r| r.fingerprint())
                .unwrap_or_default();
            let new_fp = new_rt.fingerprint();
            cred.store_refresh_token(new_rt)?;
            tracing::info!(
                "the issuer rotated the refresh token ({old_fp} → {new_fp}); saved it to {}",
                cred.path.display()
            );
        }
    }
    clear_marker(&marker);

    let access = resp.access_token.ok_or_else(|| {
        Error::data(format!(
            "{endpoint} answered without an access_token; the old token is kept"
        ))
    })?;
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
    warn_narrowed(&plan.scope, resp.scope.as_deref(), access.expose());

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

/// When a marker shows that an earlier run sent this same refresh token and never
/// finished, the UTC time it was sent.
fn earlier_send(marker: &Path, fingerprint: &str) -> Option<String> {
    let data = store::read_own(marker, 4096).ok()??;
    let v: serde_json::Value = serde_json::from_slice(&data).ok()?;
    if v["refresh_token_sha256"].as_str()? != fingerprint {
        return None;
    }
    let at = v["sent_at"].as_i64()?;
    Some(
        jiff::Timestamp::from_second(at)
            .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|_| at.to_string()),
    )
}

fn clear_marker(marker: &Option<(std::path::PathBuf, String)>) {
    if let Some((p, _)) = marker {
        let _ = std::fs::remove_file(p);
    }
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
