//! Where a new access token comes from. `obtain` is the one entry point the renewal
//! calls; it dispatches on the configured source and returns an [`Issued`] token.
//! The renewal logic does not care which source answered.
//!
//! Invariant every source keeps: anything the source must persist for the next run
//! (a rotated refresh token) is safely on disk before `obtain` returns, so the
//! caller may then write the access token.

pub mod credential;
pub mod exec;
pub mod interface;
pub mod oauth;
pub mod vault;

pub use interface::{Context, Issued, Settings, Source};

use std::path::{Path, PathBuf};

use crate::error::{Error, Result, Tag};
use crate::secret::Secret;
use crate::source::credential::{CredGrant, Credential};
use crate::source::exec::{ExecContext, ExecSettings, Printed};
use crate::source::oauth::assertion::SigningKey;
use crate::source::oauth::exchange::{self, Subject};
use crate::source::oauth::{Client, ClientAuth, Grant, TokenRequest, TOKEN_TYPE_JWT};
use crate::source::vault::VaultOptions;
use crate::store::{self, FileError};
use crate::token;

/// What can be known about the source without reading a secret or taking a lock:
/// the credential file exists. Checked before a renewal creates its locks, so a
/// mistyped path leaves no file behind.
pub fn precheck(cfg: &Settings) -> Result<()> {
    if let Source::File(file) = &cfg.kind {
        if let Err(e) = std::fs::symlink_metadata(file) {
            if e.kind() == std::io::ErrorKind::NotFound {
                return Err(Error::config(format!(
                    "credential file {} does not exist: check the path, or create it with \
                     `robot-token init --issuer URL --client-id ID -c {}`",
                    file.display(),
                    file.display()
                )));
            }
        }
    }
    Ok(())
}

/// Get a new access token from the configured source.
pub fn obtain(cfg: &Settings, ctx: &Context) -> Result<Issued> {
    match &cfg.kind {
        Source::File(file) => {
            // A credential file is read only under its own lock: a refresh token may be
            // redeemed once, and two token files can share one credential.
            let real = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
            let cred_lock = lock_credential(&real, ctx)?;
            store::remove_stale_temps(&real);
            let (real, data) = credential::read_file(file)?;
            credential::refuse_revoked(&data, &real)?;
            // A credential file with a `vault` section names an htvault-config server.
            if let Some(opts) = vault::section_of(&data, &real)? {
                let s = vault::Settings::from_options(&VaultOptions::default(), Some(&opts))?;
                return vault::obtain(&s, ctx.minsecs, ctx);
            }
            let cred = Credential::parse(&data, &real)?;
            if let Some(settings) = cred.exec.clone() {
                return from_exec(cfg, ctx, &settings, Some(cred));
            }
            let mut plan = plan_from_credential(cfg, cred)?;
            plan.lock = cred_lock;
            redeem(plan, ctx)
        }
        Source::Exec(settings) => from_exec(cfg, ctx, settings, None),
        Source::Vault(opts) => {
            if let Some(file) = &opts.credential {
                let (real, data) = credential::read_file(file)?;
                credential::refuse_revoked(&data, &real)?;
            }
            match vault::Settings::resolve(&cfg.kind)? {
                Some(s) => vault::obtain(&s, ctx.minsecs, ctx),
                None => Err(Error::usage("no Vault settings: give --vault-server")),
            }
        }
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
    cfg: &Settings,
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
        minsecs: ctx.minsecs,
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
            let mut plan = plan_from_credential(cfg, cred)?;
            plan.grant = Want::Ready(Grant::RefreshToken(rt));
            // Not ours to persist: the command keeps its own credential.
            plan.credential = None;
            plan.scope = scope;
            plan.audience = audience;
            redeem(plan, ctx)
        }
    }
}

/// Take the credential's lock, unless it is the token file's lock we already hold.
pub fn lock_credential(real: &Path, ctx: &Context) -> Result<Option<store::Lock>> {
    ctx.lock(real, "credential lock")
}

/// Everything needed to ask an OAuth2 token endpoint for a token.
struct Plan {
    issuer: Option<String>,
    token_endpoint: Option<String>,
    client: Client,
    grant: Want,
    scope: Vec<String>,
    audience: Vec<String>,
    credential: Option<Credential>,
    /// The credential's lock, whose record holds the in-flight marker.
    lock: Option<store::Lock>,
}

/// The grant a plan will redeem; a token exchange reads its subject token only
/// when the request is about to be sent.
enum Want {
    Ready(Grant),
    Exchange {
        subject: Subject,
        subject_token_type: String,
        requested_token_type: Option<String>,
        ci_audience: Option<String>,
    },
}

fn default_auth(secret: &Option<Secret>, key: &Option<SigningKey>) -> ClientAuth {
    if key.is_some() {
        ClientAuth::PrivateKeyJwt
    } else if secret.is_some() {
        ClientAuth::Basic
    } else {
        ClientAuth::None
    }
}

fn load_key(file: Option<&Path>, kid: Option<String>) -> Result<Option<SigningKey>> {
    file.map(|f| SigningKey::load(f, kid)).transpose()
}

/// A token exchange from the command line's settings, else the credential's.
fn exchange_want(cfg: &Settings, cred: Option<&Credential>) -> Option<Want> {
    let x = &cfg.exchange;
    let subject = x
        .subject
        .clone()
        .or_else(|| cred.and_then(|c| c.subject.clone()))?;
    Some(Want::Exchange {
        subject,
        subject_token_type: x
            .subject_token_type
            .clone()
            .or_else(|| cred.and_then(|c| c.subject_token_type.clone()))
            .unwrap_or_else(|| TOKEN_TYPE_JWT.to_string()),
        requested_token_type: x
            .requested_token_type
            .clone()
            .or_else(|| cred.and_then(|c| c.requested_token_type.clone())),
        ci_audience: x.ci_audience.clone(),
    })
}

/// The plan for a client given on the command line: client_credentials, or a token
/// exchange when a subject token is named.
fn plan_from_options(
    cfg: &Settings,
    issuer: &Option<String>,
    client_id: &str,
    secret_file: &Option<PathBuf>,
) -> Result<Plan> {
    let secret = secret_file
        .as_deref()
        .map(credential::read_secret_file)
        .transpose()?;
    let key = load_key(cfg.private_key_file.as_deref(), cfg.kid.clone())?;
    Ok(Plan {
        issuer: issuer.clone(),
        token_endpoint: cfg.token_endpoint.clone(),
        client: Client {
            id: client_id.to_string(),
            auth: cfg.client_auth.unwrap_or(default_auth(&secret, &key)),
            secret,
            key,
        },
        grant: exchange_want(cfg, None).unwrap_or(Want::Ready(Grant::ClientCredentials)),
        scope: cfg.scope.clone(),
        audience: cfg.audience.clone(),
        credential: None,
        lock: None,
    })
}

/// The client of a credential file, with the command line's overrides
/// (`--client-auth`, `--private-key-file`, `--kid`); the private key is loaded here.
pub fn client_of(cfg: &Settings, cred: &Credential) -> Result<Client> {
    let key_file = cfg
        .private_key_file
        .clone()
        .or_else(|| cred.private_key_file.clone());
    let key = load_key(
        key_file.as_deref(),
        cfg.kid.clone().or_else(|| cred.kid.clone()),
    )?;
    Ok(Client {
        id: cred.client_id.clone(),
        auth: cfg
            .client_auth
            .or(cred.client_auth)
            .unwrap_or(default_auth(&cred.client_secret, &key)),
        secret: cred.client_secret.clone(),
        key,
    })
}

fn plan_from_credential(cfg: &Settings, cred: Credential) -> Result<Plan> {
    let pick = |cli: &Vec<String>, file: &Vec<String>| {
        if cli.is_empty() {
            file.clone()
        } else {
            cli.clone()
        }
    };
    // A refresh token wins: it is what an earlier exchange or init left for us.
    let grant = match (&cred.refresh_token, cred.grant) {
        (Some(rt), g) if g != Some(CredGrant::ClientCredentials) => {
            Want::Ready(Grant::RefreshToken(rt.clone()))
        }
        (_, Some(CredGrant::RefreshToken)) => {
            return Err(Error::data(format!(
                "credential file {} says \"grant\": \"refresh_token\" but holds no refresh_token: bootstrap it with robot-token init",
                cred.path.display()
            )))
        }
        (_, g) => match exchange_want(cfg, Some(&cred)) {
            Some(w) if g != Some(CredGrant::ClientCredentials) => w,
            None if g == Some(CredGrant::TokenExchange) => {
                return Err(Error::config(format!(
                    "credential file {} wants a token exchange but names no subject token: set \"subject_token_file\" or \"subject_token_env\", or give --subject-token-file, --subject-token-env or --ci",
                    cred.path.display()
                )))
            }
            _ => Want::Ready(Grant::ClientCredentials),
        },
    };
    Ok(Plan {
        issuer: cred.issuer.clone(),
        token_endpoint: cfg
            .token_endpoint
            .clone()
            .or_else(|| cred.token_endpoint.clone()),
        client: client_of(cfg, &cred)?,
        // A refresh token from an exchange already carries what the exchange granted
        // (maybe narrowed): asking again for the exchange's scope would be refused.
        scope: match (&grant, cred.grant) {
            (Want::Ready(Grant::RefreshToken(_)), Some(CredGrant::TokenExchange))
                if cfg.scope.is_empty() =>
            {
                Vec::new()
            }
            _ => pick(&cfg.scope, &cred.scope),
        },
        grant,
        audience: pick(&cfg.audience, &cred.audience),
        credential: Some(cred),
        lock: None,
    })
}

/// What a renewal would send, told without sending it (`get --dry-run`). Built by the
/// real run's own planning code, so its errors (and exit codes) are the real run's.
#[derive(Debug)]
pub struct Preview {
    pub issuer: Option<String>,
    /// Given explicitly (`--token-endpoint`, the credential's); else from discovery.
    pub token_endpoint: Option<String>,
    pub client_id: String,
    pub client_auth: &'static str,
    /// The grant's short name: refresh_token, client_credentials, token_exchange.
    pub grant: &'static str,
    /// Where a token exchange gets its subject token.
    pub subject: Option<Subject>,
    /// The credential file a rotated (or first) refresh token would be written to.
    pub rewrites: Option<PathBuf>,
}

/// The plan of an OAuth2 source: from `cred` (a parsed credential file), else from the
/// command line's client. Loads the private key and reads a client secret file, as the
/// renewal does; sends nothing.
pub fn preview(cfg: &Settings, cred: Option<Credential>) -> Result<Preview> {
    let plan = match (cred, &cfg.kind) {
        (Some(c), _) => plan_from_credential(cfg, c)?,
        (
            None,
            Source::Client {
                issuer,
                client_id,
                secret_file,
            },
        ) => plan_from_options(cfg, issuer, client_id, secret_file)?,
        (None, _) => return Err(Error::usage("not an OAuth2 client")),
    };
    let (grant, subject) = match &plan.grant {
        Want::Ready(Grant::RefreshToken(_)) => ("refresh_token", None),
        Want::Ready(Grant::ClientCredentials) => ("client_credentials", None),
        Want::Ready(_) => ("token_exchange", None),
        Want::Exchange { subject, .. } => ("token_exchange", Some(subject.clone())),
    };
    Ok(Preview {
        issuer: plan.issuer.clone(),
        token_endpoint: plan.token_endpoint.clone(),
        client_id: plan.client.id.clone(),
        client_auth: oauth::auth_name(plan.client.auth),
        grant,
        subject,
        rewrites: plan.credential.as_ref().map(|c| c.path.clone()),
    })
}

/// Redeem a plan at the token endpoint; persist a rotated refresh token first.
fn redeem(mut plan: Plan, ctx: &Context) -> Result<Issued> {
    let endpoint = oauth::token_endpoint(
        ctx.http,
        plan.issuer.as_deref(),
        plan.token_endpoint.as_deref(),
    )?;
    let grant = match plan.grant {
        Want::Ready(g) => g,
        Want::Exchange {
            subject,
            subject_token_type,
            requested_token_type,
            ci_audience,
        } => {
            let aud = ci_audience.or_else(|| plan.issuer.clone());
            Grant::TokenExchange {
                subject_token: exchange::subject_token(&subject, ctx.http, aud.as_deref())?,
                subject_token_type,
                requested_token_type,
            }
        }
    };
    // Redeeming a stored refresh token kills it at the issuer: before sending it,
    // prove that its successor can be saved (the rewrite's temp file exists in the
    // credential's real directory with its space reserved) and that the in-flight
    // marker can be written. Any failure here stops the run with nothing sent.
    let rotating = matches!(grant, Grant::RefreshToken(_)) && plan.credential.is_some();
    let mut prepared = match (&plan.credential, rotating) {
        (Some(cred), true) => Some(cred.prepare_rewrite()?),
        _ => None,
    };
    let lock = plan.lock.as_ref().filter(|_| rotating);
    if let Some(l) = lock {
        l.reserve_record().map_err(|e| {
            Error::write(format!(
                "cannot reserve the in-flight marker ({e}); nothing was sent, the credential is unchanged: free some space"
            ))
        })?;
    }
    let fingerprint = match &grant {
        Grant::RefreshToken(rt) => Some(rt.fingerprint()),
        _ => None,
    };
    let earlier = lock
        .zip(fingerprint.as_deref())
        .and_then(|(l, fp)| earlier_send(l, fp));

    // From here until the successor is on disk, termination signals wait.
    let hold = rotating.then(crate::signals::Hold::new);
    // The in-flight marker names the refresh token being sent. If this run dies or
    // loses the answer, the next run finds it and can say why the issuer then
    // rejects the token, instead of a generic "rejected".
    if let (Some(l), Some(fp)) = (lock, &fingerprint) {
        set_marker(l, Some(fp)).map_err(|e| {
            Error::write(format!(
                "cannot write the in-flight marker ({e}); nothing was sent, the credential is unchanged"
            ))
        })?;
    }
    let resp = oauth::request_token(
        ctx.http,
        &TokenRequest {
            endpoint: &endpoint,
            client: &plan.client,
            grant: &grant,
            scope: &plan.scope,
            audience: &plan.audience,
        },
    );
    // Any answer settles the marker; only a lost one leaves it for the next run. A
    // success clears it only once the successor is saved: a kill in between must
    // still be reported as what it is.
    let refused = matches!(&resp, Err(e) if e.tag() != Some(Tag::LostResponse));
    if let (true, Some(l)) = (refused, lock) {
        let _ = set_marker(l, None);
    }
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
            // A refresh token that came from an exchange is renewed by exchanging again.
            let from_exchange = plan
                .credential
                .as_ref()
                .filter(|c| c.grant == Some(CredGrant::TokenExchange));
            if let (Some(Tag::RefreshRejected), Some(c)) = (e.tag(), from_exchange) {
                return Err(Error::perm(format!(
                    "{}; or delete \"refresh_token\" from {} so that the next run exchanges the subject token again",
                    e.message(),
                    c.path.display()
                ))
                .tagged(Tag::RefreshRejected));
            }
            return Err(e);
        }
        (Ok(r), _) => r,
    };

    // A new refresh token is safe on disk before anything else happens: the old one
    // is already dead at the issuer, and reusing it would revoke the whole family.
    match (resp.refresh_token, plan.credential.as_mut()) {
        (Some(new_rt), Some(cred)) if cred.refresh_token.as_ref() != Some(&new_rt) => {
            let old = cred.refresh_token.as_ref().map(|r| r.fingerprint());
            let new_fp = new_rt.fingerprint();
            let p = match prepared.take() {
                Some(p) => p,
                None => cred.prepare_rewrite()?,
            };
            cred.store_refresh_token(p, new_rt)?;
            match old {
                Some(old_fp) => tracing::info!(
                    "the issuer rotated the refresh token ({old_fp} → {new_fp}); saved it to {}",
                    cred.path.display()
                ),
                None => tracing::info!(
                    "the issuer returned a refresh token ({new_fp}); saved it to {}: later runs use the refresh_token grant",
                    cred.path.display()
                ),
            }
        }
        (Some(new_rt), None) if matches!(grant, Grant::RefreshToken(_)) => tracing::info!(
            "the issuer returned a refresh token {new_rt}; the exec command owns the credential, \
             so robot-token does not store it"
        ),
        (Some(_), None) => tracing::info!(
            "the issuer returned a refresh token, but there is no credential file to keep it in (use -c FILE)"
        ),
        _ => {}
    }
    if let Some(l) = lock {
        let _ = set_marker(l, None);
    }
    // Saved: a held signal may act now.
    drop(hold);

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

/// When the credential's lock record shows that an earlier run sent this same
/// refresh token and never got the answer, the UTC time it was sent.
fn earlier_send(lock: &store::Lock, fingerprint: &str) -> Option<String> {
    let rec = lock.record();
    let v = rec.get("inflight")?;
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

/// Set (a fingerprint) or clear (`None`) the in-flight marker. Not synced: its loss
/// in a power cut only costs the next run a less precise message.
fn set_marker(lock: &store::Lock, fingerprint: Option<&str>) -> std::result::Result<(), FileError> {
    let mut rec = lock.record();
    match fingerprint {
        Some(fp) => {
            rec.insert(
                "inflight".into(),
                serde_json::json!({"refresh_token_sha256": fp, "sent_at": token::now()}),
            );
        }
        None => {
            if rec.remove("inflight").is_none() {
                return Ok(());
            }
        }
    }
    lock.set_record(&rec)
}
