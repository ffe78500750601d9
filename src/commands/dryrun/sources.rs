//! The source's checks of `get --dry-run`: the credential file, the client it names
//! (with its key and the issuer's discovery document and clock), the Vault login's
//! settings, an exec command. Nothing that redeems is sent.

use std::path::PathBuf;

use crate::clock::human_secs;
use crate::config::GetConfig;
use crate::error::Error;
use crate::http::{self, Retry};
use crate::output::condor;
use crate::source::credential::{self, Credential};
use crate::source::oauth::exchange;
use crate::source::vault::{self, VaultOptions};
use crate::source::{self, Context, Source};
use crate::token;

use super::{describe_trust, describe_vault, Checks, MAX_SKEW_SECS};

/// A credential file is readable, safe and not retired: its real path and bytes.
fn credential_file_checks(
    path: &std::path::Path,
    c: &mut Checks,
) -> Option<(std::path::PathBuf, zeroize::Zeroizing<Vec<u8>>)> {
    let what = format!("credential {}", path.display());
    let (real, data) = c.check(&what, credential::read_file(path), |(real, _)| {
        format!(
            "{} is readable, yours, mode 0600 or stricter",
            real.display()
        )
    })?;
    c.check(&what, credential::refuse_revoked(&data, &real), |_| {
        "not revoked".into()
    })?;
    Some((real, data))
}

/// The credential (or client, or Vault) checks.
pub(super) fn source_checks(
    cfg: &GetConfig,
    ctx: &Context,
    online: bool,
    c: &mut Checks,
) -> Option<()> {
    match &cfg.source.kind {
        Source::File(path) => {
            let what = format!("credential {}", path.display());
            let (real, data) = credential_file_checks(path, c)?;
            let section = c.check(&what, vault::section_of(&data, &real), |_| {
                "valid JSON, version 1".into()
            })?;
            if let Some(opts) = section {
                let s = c.check(
                    "Vault settings",
                    vault::Settings::from_options(&VaultOptions::default(), Some(&opts)),
                    describe_vault,
                )?;
                vault_checks(&s, ctx, online, c);
                return Some(());
            }
            let cred = c.check(&what, Credential::parse(&data, &real), |cred| {
                format!("client {}", cred.client_id)
            })?;
            if let Some(exec) = &cred.exec {
                exec_check(exec, c);
                return Some(());
            }
            oauth_checks(cfg, Some(cred), ctx, online, c)
        }
        Source::Client { .. } => oauth_checks(cfg, None, ctx, online, c),
        Source::Exec(exec) => {
            exec_check(exec, c);
            Some(())
        }
        Source::Vault(opts) => {
            if let Some(path) = &opts.credential {
                credential_file_checks(path, c)?;
            }
            let s = c.check(
                "Vault settings",
                vault::Settings::resolve(&cfg.source.kind).and_then(|s| {
                    s.ok_or_else(|| Error::usage("no Vault settings: give --vault-server"))
                }),
                describe_vault,
            )?;
            vault_checks(&s, ctx, online, c);
            Some(())
        }
    }
}

fn vault_checks(s: &vault::Settings, ctx: &Context, online: bool, c: &mut Checks) {
    if !online {
        return;
    }
    let (checks, date) = vault::preflight(s, ctx);
    for (what, r) in checks {
        c.check(&what, r, |d| d.clone());
    }
    clock(&format!("Vault {}", s.server), date.as_deref(), c);
    c.plan.push(format!("reads the token from {}", s.server));
}

fn exec_check(exec: &crate::source::exec::ExecSettings, c: &mut Checks) {
    let program = exec.program();
    let path = exec
        .env
        .get("PATH")
        .map(std::ffi::OsString::from)
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    let found = if program.contains('/') {
        let p = PathBuf::from(program);
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(&p)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .then_some(p)
    } else {
        condor::Tools {
            path,
            timeout: std::time::Duration::from_secs(1),
        }
        .find(program)
    };
    let r = found.ok_or_else(|| {
        Error::config(format!(
            "cannot start the exec command {program:?}: not found or not executable; check \
             \"command\" (an absolute path is best)"
        ))
    });
    c.check("exec command", r, |p| {
        format!("{} is executable (it is not run)", p.display())
    });
    c.plan.push(format!("runs {program}"));
}

/// The OAuth2 checks: the client (secret or key), the token endpoint (discovery, https
/// or loopback, TLS), the issuer's clock, the subject token of an exchange.
fn oauth_checks(
    cfg: &GetConfig,
    cred: Option<Credential>,
    ctx: &Context,
    online: bool,
    c: &mut Checks,
) -> Option<()> {
    // The renewal prepares the credential's rewrite before it sends its refresh token.
    let rewrite = cred.clone();
    let p = c.check("client", source::preview(&cfg.source, cred), |p| {
        format!("{} authenticates by {}", p.client_id, p.client_auth)
    })?;
    let rewrite = rewrite.filter(|_| p.grant == "refresh_token");
    if let Some(subject) = &p.subject {
        c.check("subject token", exchange::check_available(subject), |d| {
            d.clone()
        });
    }
    if !online {
        rewrite_check(rewrite.as_ref(), c);
        return Some(());
    }
    let http = ctx.http;
    let (endpoint, date, discovery) = match (&p.token_endpoint, &p.issuer) {
        (Some(ep), _) => (
            c.check(
                "token endpoint",
                http::check_url(ep, "token endpoint").map(|_| ep.clone()),
                |ep| format!("{ep} (given; no discovery)"),
            ),
            None,
            None,
        ),
        (None, Some(issuer)) => {
            let url = format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            );
            match c.check(
                &format!("discovery {url}"),
                crate::issuer::discover_with_date(http, issuer),
                |_| "fetched".into(),
            ) {
                Some((meta, date)) => {
                    let ep = meta.token_endpoint.clone().ok_or_else(|| {
                        Error::config(format!(
                            "the discovery document of {issuer} names no token_endpoint: set \
                             token_endpoint in the credential file"
                        ))
                    });
                    let ep = ep.and_then(|ep| {
                        http::check_url(&ep, "token endpoint from discovery").map(|_| ep)
                    });
                    (
                        c.check("token endpoint", ep, |ep| {
                            format!("{ep} (https, or http to a loopback address)")
                        }),
                        date,
                        Some(url),
                    )
                }
                None => (None, None, None),
            }
        }
        (None, None) => {
            c.fail(
                "token endpoint",
                Error::config("no issuer and no token endpoint configured"),
            );
            (None, None, None)
        }
    };
    rewrite_check(rewrite.as_ref(), c);
    let Some(endpoint) = endpoint else {
        return Some(());
    };
    // The TLS chain: proven by the discovery GET when the token endpoint is on the same
    // origin; otherwise a GET to the token endpoint (not a token request) proves it.
    let same_origin = discovery
        .as_deref()
        .is_some_and(|d| origin(d) == origin(&endpoint));
    if !same_origin {
        let r = http
            .send(&endpoint, &[], None, Retry::Idempotent)
            .map(|r| r.date)
            .map_err(|f| f.into_error("cannot reach the token endpoint", &endpoint));
        if let Some(d) = c.check("token endpoint reachable", r, |_| {
            format!("{} answers (a GET, not a token request)", origin(&endpoint))
        }) {
            clock(&origin(&endpoint), d.as_deref(), c);
        }
    }
    if endpoint.starts_with("https://") {
        c.pass(
            "TLS",
            &format!(
                "the certificate of {} chains to a trusted CA ({})",
                origin(&endpoint),
                describe_trust(&cfg.trust)
            ),
        );
    }
    if let Some(d) = &discovery {
        clock(&origin(d), date.as_deref(), c);
    }
    c.plan.push(format!(
        "with the {} grant at {endpoint} as client {}",
        p.grant, p.client_id
    ));
    Some(())
}

/// The renewal's own check before it sends a refresh token (issue #13): the
/// credential's rewrite prepared in its real directory, temp file and space
/// (`Credential::prepare_rewrite`), here dropped uncommitted.
fn rewrite_check(cred: Option<&Credential>, c: &mut Checks) {
    if let Some(cred) = cred {
        c.check(
            &format!("credential {}", cred.path.display()),
            cred.prepare_rewrite().map(drop),
            |_| "its directory takes the rewrite of a rotated refresh token (temp file created, space reserved, removed)".into(),
        );
    }
}

/// `scheme://host:port` of a URL, for comparing and naming servers.
fn origin(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => url.to_string(),
    }
}

/// Compare a server's `Date` header with this host's clock; warn beyond a minute.
pub(super) fn clock(server: &str, date: Option<&str>, c: &mut Checks) {
    let Some(date) = date else { return };
    let parsed = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(date.trim());
    let Ok(theirs) = parsed else {
        return;
    };
    let skew = token::now() - theirs.as_second();
    if skew.abs() > MAX_SKEW_SECS {
        c.warn(
            "clock",
            &format!(
                "this host's clock is {} {} than {server}'s (Date: {date}): token exp and nbf \
                 checks fail with skewed clocks; fix the time (NTP: chronyc tracking, \
                 timedatectl)",
                human_secs(skew.abs()),
                if skew > 0 { "ahead" } else { "behind" }
            ),
        );
    } else {
        c.pass(
            "clock",
            &format!("within {} of {server}'s", human_secs(skew.abs().max(1))),
        );
    }
}
