//! The subject token of a token exchange (RFC 8693): from a file, an environment
//! variable (GitLab CI `id_tokens:`, a CI secret), or GitHub Actions' OIDC endpoint.
//! Subject tokens are secrets: they are wrapped at once and never logged.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{io_reason, Error, Result};
use crate::http::{check_url, Http, Retry};
use crate::secret::Secret;
use crate::store;

const MAX_SUBJECT_LEN: u64 = 64 * 1024;

/// Which CI system `--ci` means, once `auto` is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ci {
    GitHub,
    GitLab,
}

/// `--ci auto`: GitHub Actions sets `GITHUB_ACTIONS=true`, GitLab CI `GITLAB_CI=true`.
pub fn detect_ci() -> Option<Ci> {
    let is_true = |k: &str| std::env::var(k).is_ok_and(|v| v == "true");
    if is_true("GITHUB_ACTIONS") {
        Some(Ci::GitHub)
    } else if is_true("GITLAB_CI") {
        Some(Ci::GitLab)
    } else {
        None
    }
}

/// Read the subject token. `ci_audience` is the audience asked of GitHub's endpoint.
pub fn subject_token(subject: &Subject, http: &Http, ci_audience: Option<&str>) -> Result<Secret> {
    let token = match subject {
        Subject::File(p) => read_file(p)?,
        Subject::Env(name) => {
            let v = std::env::var(name).map_err(|_| {
                Error::config(format!(
                    "the subject token variable ${name} is not set (GitLab CI: declare it under id_tokens: in the job)"
                ))
            })?;
            Secret::new(v.trim().to_string())
        }
        Subject::GitHub => github(http, ci_audience)?,
    };
    if token.is_empty() {
        return Err(Error::config(format!(
            "the subject token ({}) is empty",
            describe(subject)
        )));
    }
    tracing::debug!(
        "subject token {token} from {} ({} bytes)",
        describe(subject),
        token.expose().len()
    );
    Ok(token)
}

/// `get --dry-run`: is the subject token there? A file is read (and dropped); for
/// GitHub Actions only the job's variables are checked: nothing is requested.
pub fn check_available(subject: &Subject) -> Result<String> {
    match subject {
        Subject::GitHub => {
            let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty());
            if !set("ACTIONS_ID_TOKEN_REQUEST_URL") || !set("ACTIONS_ID_TOKEN_REQUEST_TOKEN") {
                return Err(Error::config(
                    "--ci github: $ACTIONS_ID_TOKEN_REQUEST_URL and $ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set; \
                     give the job `permissions: id-token: write`",
                ));
            }
            if let Ok(url) = std::env::var("ACTIONS_ID_TOKEN_REQUEST_URL") {
                check_url(&url, "$ACTIONS_ID_TOKEN_REQUEST_URL")?;
            }
            Ok("GitHub Actions' OIDC token variables are set (not requested)".into())
        }
        s => {
            // File and Env need no network: the same read the renewal does.
            let http = Http::new(
                Default::default(),
                std::time::Duration::from_secs(1),
                std::time::Instant::now(),
            );
            subject_token(s, &http, None).map(|_| format!("{} is readable", describe(s)))
        }
    }
}

pub fn describe(subject: &Subject) -> String {
    match subject {
        Subject::File(p) => format!("file {}", p.display()),
        Subject::Env(n) => format!("${n}"),
        Subject::GitHub => "GitHub Actions".into(),
    }
}

/// A subject token file may be a platform's (a projected token owned by root, behind
/// a symlink), but not one that another user could have planted or may rewrite.
fn read_file(path: &Path) -> Result<Secret> {
    let fail = |why: String| {
        Error::config(format!(
            "cannot read subject token file {}: {why}",
            path.display()
        ))
    };
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| fail(io_reason(&e)))?;
    let meta = file.metadata().map_err(|e| fail(io_reason(&e)))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    if meta.uid() != store::euid() && meta.uid() != 0 {
        return Err(Error::perm(format!(
            "unsafe subject token file {}: owned by {}, not by you or root",
            path.display(),
            store::user_name(meta.uid())
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Error::perm(format!(
            "unsafe subject token file {}: others may write it (mode {:o}); chmod go-w it",
            path.display(),
            meta.mode() & 0o7777
        )));
    }
    let mut data = zeroize::Zeroizing::new(String::new());
    file.take(MAX_SUBJECT_LEN + 1)
        .read_to_string(&mut data)
        .map_err(|e| fail(io_reason(&e)))?;
    if data.len() as u64 > MAX_SUBJECT_LEN {
        return Err(Error::data(format!(
            "subject token file {} is larger than 64 KiB",
            path.display()
        )));
    }
    Ok(Secret::new(data.trim().to_string()))
}

/// GitHub Actions: `GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=…` with
/// `Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN` answers `{"value": "<jwt>"}`.
fn github(http: &Http, audience: Option<&str>) -> Result<Secret> {
    let missing = || {
        Error::config(
            "--ci github: $ACTIONS_ID_TOKEN_REQUEST_URL and $ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set; \
             give the job `permissions: id-token: write`",
        )
    };
    let url = std::env::var("ACTIONS_ID_TOKEN_REQUEST_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(missing)?;
    let bearer = std::env::var("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| Secret::new(format!("bearer {v}")))
        .ok_or_else(missing)?;
    let mut parsed = check_url(&url, "$ACTIONS_ID_TOKEN_REQUEST_URL")?;
    if let Some(a) = audience {
        parsed.query_pairs_mut().append_pair("audience", a);
    }
    // The query carries no secret (the bearer token travels in the header), but
    // messages name only the endpoint.
    let mut shown = parsed.clone();
    shown.set_query(None);
    let shown = shown.to_string();
    tracing::info!(
        "requesting the GitHub Actions OIDC token from {shown} (audience {})",
        audience.unwrap_or("GitHub's default")
    );
    let reply = http
        .send(
            parsed.as_str(),
            &[
                ("Accept", "application/json; api-version=2.0"),
                ("Authorization", bearer.expose()),
            ],
            None,
            Retry::Idempotent,
        )
        .map_err(|f| f.into_error("cannot fetch the GitHub Actions OIDC token from", &shown))?;
    match reply.status {
        200 => {}
        401 | 403 => {
            return Err(Error::perm(format!(
                "{shown} refused the GitHub Actions OIDC token request (HTTP {}): give the job `permissions: id-token: write`",
                reply.status
            )))
        }
        429 | 500..=599 => {
            return Err(Error::temp(format!(
                "{shown} answered HTTP {} to the OIDC token request; a later run will retry",
                reply.status
            )))
        }
        s => {
            return Err(Error::config(format!(
                "{shown} answered HTTP {s} to the OIDC token request"
            )))
        }
    }
    let v: Value = serde_json::from_slice(&reply.body).map_err(|_| {
        Error::data(format!(
            "{shown} answered the OIDC token request with something that is not JSON"
        ))
    })?;
    match v.get("value") {
        Some(Value::String(s)) if !s.is_empty() => Ok(Secret::new(s.clone())),
        _ => Err(Error::data(format!(
            "{shown} answered the OIDC token request without a \"value\""
        ))),
    }
}

/// Token-exchange settings from the command line (they override the credential's).
#[derive(Debug, Clone, Default)]
pub struct ExchangeOptions {
    pub subject: Option<Subject>,
    pub subject_token_type: Option<String>,
    pub requested_token_type: Option<String>,
    /// Audience of the GitHub Actions identity token [default: the issuer URL].
    pub ci_audience: Option<String>,
}

/// Where the subject token of a token exchange comes from. The token itself is read
/// only when it is needed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    File(PathBuf),
    /// The name of an environment variable (GitLab CI `id_tokens:`, a CI secret).
    Env(String),
    /// GitHub Actions' OIDC token endpoint (`ACTIONS_ID_TOKEN_REQUEST_URL`).
    GitHub,
}
