//! The one place that turns what was typed (`cli`) into what the program runs with,
//! with every check that needs no I/O. Nothing deeper looks at raw flags.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{GetArgs, InspectArgs};
use crate::credential::ClientAuth;
use crate::discovery;
use crate::error::{Error, Result};
use crate::http::TrustOptions;

/// Where the long-lived credential comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A version-1 credential file.
    File(PathBuf),
    /// client_credentials from options: issuer, client id and a secret file.
    Client {
        issuer: Option<String>,
        client_id: String,
        secret_file: PathBuf,
    },
}

#[derive(Debug, Clone)]
pub struct GetConfig {
    pub outfile: PathBuf,
    pub minsecs: i64,
    pub source: Source,
    pub token_endpoint: Option<String>,
    pub client_auth: Option<ClientAuth>,
    pub scope: Vec<String>,
    pub audience: Vec<String>,
    pub trust: TrustOptions,
    pub timeout: Duration,
    pub deadline: Duration,
    /// The profile this configuration comes from, for messages and hooks.
    pub profile: Option<String>,
    pub deploy_hook: Option<String>,
    pub hook_timeout: Duration,
    pub random_delay: Duration,
}

impl GetConfig {
    /// The long-lived secret this configuration reads, beside which its state file
    /// (last rotation, last run) lives.
    pub fn credential_path(&self) -> &std::path::Path {
        match &self.source {
            Source::File(p) => p,
            Source::Client { secret_file, .. } => secret_file,
        }
    }
}

/// Seconds, or a duration such as `90s`, `30m`, `1h`, `1h 30m`, `7d`.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    let secs = s.parse::<jiff::Span>().ok().and_then(|span| {
        span.total((
            jiff::Unit::Second,
            jiff::SpanRelativeTo::days_are_24_hours(),
        ))
        .ok()
    });
    match secs {
        Some(t) if t >= 0.0 && t.is_finite() => Ok(Duration::from_secs_f64(t)),
        _ => Err(format!(
            "{s:?} is not a duration (use seconds, or e.g. 90s, 30m, 1h, 7d)"
        )),
    }
}

fn duration_opt(name: &str, v: &str) -> Result<Duration> {
    parse_duration(v).map_err(|e| Error::usage(format!("--{name}: {e}")))
}

fn words(v: &[String]) -> Vec<String> {
    v.iter()
        .flat_map(|s| s.split_whitespace())
        .map(str::to_string)
        .collect()
}

/// `--capath`, else `$X509_CERT_DIR`, else the grid CA directory when it exists.
fn capath_or_default(explicit: &Option<PathBuf>) -> Option<PathBuf> {
    explicit.clone().or_else(|| {
        std::env::var_os("X509_CERT_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("/etc/grid-security/certificates")))
            .filter(|p| p.is_dir())
    })
}

/// What `inspect --verify` checks and how it reaches the issuer.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    pub expect: crate::verify::Expect,
    pub trust: TrustOptions,
    pub timeout: Duration,
}

impl VerifyConfig {
    /// `None` without --verify; the options that only --verify uses are refused then.
    pub fn from_args(a: &InspectArgs) -> Result<Option<VerifyConfig>> {
        if !a.verify {
            let stray = [
                ("--issuer", a.issuer.is_some()),
                ("--audience", !a.audience.is_empty()),
                ("--require-scope", !a.require_scope.is_empty()),
            ];
            if let Some((name, _)) = stray.iter().find(|(_, set)| *set) {
                return Err(Error::usage(format!(
                    "{name} is checked only with --verify: add --verify"
                )));
            }
            return Ok(None);
        }
        let timeout = duration_opt("timeout", &a.timeout)?;
        if timeout.is_zero() {
            return Err(Error::usage("--timeout must be positive"));
        }
        Ok(Some(VerifyConfig {
            expect: crate::verify::Expect {
                issuer: a.issuer.clone(),
                audience: words(&a.audience),
                scopes: words(&a.require_scope),
            },
            trust: TrustOptions {
                capath: capath_or_default(&a.capath),
                cafile: a.cafile.clone(),
            },
            timeout,
        }))
    }
}

impl GetConfig {
    pub fn from_args(a: &GetArgs) -> Result<GetConfig> {
        let source = match (&a.credential, &a.client_id, &a.client_secret_file) {
            (Some(c), None, None) => Source::File(c.clone()),
            (Some(_), _, _) => {
                return Err(Error::usage(
                    "--credential cannot be combined with --client-id or --client-secret-file: the credential file holds the client",
                ))
            }
            (None, Some(id), Some(secret)) => {
                if a.issuer.is_none() && a.token_endpoint.is_none() {
                    return Err(Error::usage("--client-id needs --issuer (or --token-endpoint)"));
                }
                Source::Client {
                    issuer: a.issuer.clone(),
                    client_id: id.clone(),
                    secret_file: secret.clone(),
                }
            }
            (None, Some(_), None) => {
                return Err(Error::usage(
                    "--client-id needs --client-secret-file for the client_credentials grant",
                ))
            }
            (None, None, _) => {
                return Err(Error::usage(
                    "no credential: give -c FILE (or ROBOT_TOKEN_CREDENTIAL), or --issuer, --client-id and --client-secret-file",
                ))
            }
        };
        if matches!(source, Source::File(_)) && a.issuer.is_some() {
            return Err(Error::usage(
                "--issuer cannot be combined with --credential: set \"issuer\" in the credential file",
            ));
        }
        let minsecs = duration_opt("minsecs", &a.minsecs)?.as_secs() as i64;
        let timeout = duration_opt("timeout", &a.timeout)?;
        let deadline = duration_opt("deadline", &a.deadline)?;
        let hook_timeout = duration_opt("hook-timeout", &a.hook_timeout)?;
        let random_delay = duration_opt("random-delay", &a.random_delay)?;
        let deploy_hook = match a.deploy_hook.as_deref().map(str::trim) {
            Some("") => return Err(Error::usage("--deploy-hook is empty")),
            Some(_) => a.deploy_hook.clone(),
            None => None,
        };
        if timeout.is_zero() || deadline.is_zero() || hook_timeout.is_zero() {
            return Err(Error::usage(
                "--timeout, --deadline and --hook-timeout must be positive",
            ));
        }
        let capath = capath_or_default(&a.capath);
        Ok(GetConfig {
            outfile: a.outfile.clone().unwrap_or_else(discovery::token_file),
            minsecs,
            source,
            token_endpoint: a.token_endpoint.clone(),
            client_auth: a.client_auth.as_deref().and_then(ClientAuth::parse),
            scope: words(&a.scope),
            audience: words(&a.audience),
            trust: TrustOptions {
                capath,
                cafile: a.cafile.clone(),
            },
            timeout,
            deadline,
            profile: None,
            deploy_hook,
            hook_timeout,
            random_delay,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3600"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-5").is_err());
    }
}
