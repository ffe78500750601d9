//! Where a new access token comes from. `obtain` is the one entry point the renewal
//! calls; it dispatches on the configured source and returns an [`Issued`] token.
//! The renewal logic does not care which source answered.
//!
//! Invariant every source keeps: anything the source must persist for the next run
//! (a rotated refresh token) is safely on disk before `obtain` returns, so the
//! caller may then write the access token.

use std::path::{Path, PathBuf};

use crate::config::{GetConfig, Source, VaultOptions};
use crate::credential::{self, ClientAuth, Credential};
use crate::error::{Error, Result, Tag};
use crate::exec::{self, ExecContext, ExecSettings, Printed};
use crate::http::Http;
use crate::oauth::{self, Client, Grant, TokenRequest};
use crate::secret::Secret;
use crate::store::{self, FileError};
use crate::token;
use crate::vault;

/// A token a source obtained, not yet checked or installed.
#[derive(Debug)]
pub struct Issued {
    pub access_token: Secret,
    /// What the issuer says it granted, when it says (`scope` of the response).
    pub granted_scope: Option<String>,
    /// What was asked for, for the narrowing check.
    pub requested_scope: Vec<String>,
    /// Where it came from, for messages (a token endpoint or Vault URL).
    pub from: String,
}

/// What a source needs from the run besides its configuration.
pub struct Context<'a> {
    pub http: &'a Http,
    /// Locks already held for the token files: a credential with one of these lock
    /// paths must not be locked twice.
    pub token_locks: &'a [PathBuf],
    /// The first token file (for an exec command's context).
    pub outfile: &'a Path,
    pub deadline: std::time::Instant,
}

impl Context<'_> {
    /// Does this run already hold the lock at `path`?
    pub fn holds(&self, path: &Path) -> bool {
        self.token_locks.iter().any(|l| l == path)
    }
}

/// Get a new access token from the configured source.
pub fn obtain(cfg: &GetConfig, ctx: &Context) -> Result<Issued> {
    match &cfg.source {
        Source::File(file) => {
            // A credential file is read only under its own lock: a refresh token may be
            // redeemed once, and two token files can share one credential.
            let real = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
            let _cred_lock = lock_credential(&real, ctx)?;
            store::remove_stale_temps(&real);
            let (real, data) = credential::read_file(file)?;
            // A credential file with a `vault` section names an htvault-config server.
            if let Some(opts) = vault::section_of(&data, &real)? {
                let s = vault::Settings::from_options(&VaultOptions::default(), Some(&opts))?;
                return vault::obtain(&s, cfg.minsecs, ctx);
            }
            let cred = Credential::parse(&data, &real)?;
            if let Some(settings) = cred.exec.clone() {
                return from_exec(cfg, ctx, &settings, Some(cred));
            }
            redeem(plan_from_credential(cfg, cred), ctx)
        }
        Source::Exec(settings) => from_exec(cfg, ctx, settings, None),
        Source::Vault(_) => match vault::Settings::resolve(cfg)? {
            Some(s) => vault::obtain(&s, cfg.minsecs, ctx),
            None => Err(Error::usage("no Vault settings: give --vault-server")),
        },
        Source::Client {
            issuer,
            client_id,
            secret_file,
        } => redeem(plan_from_options(cfg, issuer, client_id, secret_file)?, ctx),
    }
}

/// The exec source: run the command; redeem a refresh token it prints at the
/// credential's issuer. The command owns the long-lived credential, so a refresh
/// token the issuer rotates is not stored anywhere by robot-token.
fn from_exec(
    cfg: &GetConfig,
    ctx: &Context,
    settings: &ExecSettings,
    cred: Option<Credential>,
) -> Result<Issued> {
    let pick = |cli: &Vec<String>, file: Option<&Vec<String>>| match file {
        Some(f) if cli.is_empty() => f.clone(),
        _ => cli.clone(),
    };
    let scope = pick(&cfg.scope, cred.as_ref().map(|c| &c.scope));
    let audience = pick(&cfg.audience, cred.as_ref().map(|c| &c.audience));
    let exec_ctx = ExecContext {
        issuer: cred.as_ref().and_then(|c| c.issuer.clone()),
        scope: scope.clone(),
        audience: audience.clone(),
        minsecs: cfg.minsecs,
        credential: cred.as_ref().map(|c| c.path.clone()),
        outfile: Some(ctx.outfile.to_path_buf()),
    };
    let program = settings.program().to_string();
    match exec::run(settings, &exec_ctx, ctx.deadline)? {
        Printed::Access { token, expires_in } => {
            tracing::info!(
                "the exec command {program} printed an access token {token}{}",
                expires_in
                    .map(|s| format!(" (expires_in {s} s)"))
                    .unwrap_or_default()
            );
            Ok(Issued {
                access_token: token,
                granted_scope: None,
                requested_scope: scope,
                from: format!("the exec command {program}"),
            })
        }
        Printed::Refresh(rt) => {
            let Some(cred) = cred.filter(|c| {
                !c.client_id.is_empty() && (c.issuer.is_some() || c.token_endpoint.is_some())
            }) else {
                return Err(Error::config(format!(
                    "the exec command {program} printed only a refresh token: set \"issuer\" and \"client_id\" \
                     (and the client's secret) in the credential file to redeem it; the old token is kept"
                )));
            };
            tracing::info!("the exec command {program} printed a refresh token {rt}: redeeming it");
            let mut plan = plan_from_credential(cfg, cred);
            plan.grant = Grant::RefreshToken(rt);
            // Not ours to persist: the command keeps its own credential.
            plan.credential = None;
            plan.scope = scope;
            plan.audience = audience;
            redeem(plan, ctx)
        }
    }
}

/// Take the credential's lock, unless it is the token file's lock we already hold.
fn lock_credential(real: &Path, ctx: &Context) -> Result<Option<store::Lock>> {
    let cred_lock_path =
        store::lock_path(real).map_err(|e| Error::write(format!("credential lock: {e}")))?;
    if ctx.holds(&cred_lock_path) {
        return Ok(None);
    }
    store::lock(&cred_lock_path, ctx.deadline)
        .map(Some)
        .map_err(|e| match e {
            FileError::LockTimeout(_) => Error::temp(e.to_string()),
            e => Error::write(format!("credential lock: {e}")),
        })
}

/// Everything needed to ask an OAuth2 token endpoint for a token.
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

/// Redeem a plan at the token endpoint; persist a rotated refresh token first.
fn redeem(mut plan: Plan, ctx: &Context) -> Result<Issued> {
    let endpoint = oauth::token_endpoint(
        ctx.http,
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
        ctx.http,
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
    if let (Some(new_rt), None, Grant::RefreshToken(_)) =
        (&resp.refresh_token, &plan.credential, &plan.grant)
    {
        tracing::info!(
            "the issuer returned a refresh token {new_rt}; the exec command owns the credential, \
             so robot-token does not store it"
        );
    }
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

    let access_token = resp.access_token.ok_or_else(|| {
        Error::data(format!(
            "{endpoint} answered without an access_token; the old token is kept"
        ))
    })?;
    Ok(Issued {
        access_token,
        granted_scope: resp.scope,
        requested_scope: plan.scope,
        from: endpoint,
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

fn clear_marker(marker: &Option<(PathBuf, String)>) {
    if let Some((p, _)) = marker {
        let _ = std::fs::remove_file(p);
    }
}
