//! `--condor=credd`: store the access token in the credd (`condor_store_cred
//! add-oauth`), read what its answer means, and renew earlier by the starter's
//! `SEC_CREDENTIAL_REFRESH` so that running jobs never hold an expired token.

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::secret::Secret;

use super::tools::{redact, Ran, Tools};
use super::version::{condor_version, plain_support, store_cred_args, Plain};
use super::{canonical_bytes, Mode};

/// The starter's `SEC_CREDENTIAL_REFRESH` default, in seconds (`param_integer(...,
/// 300)` in HTCondor's starter; the knob is not in its parameter table, so
/// `condor_config_val` says "Not defined" when it is unset).
pub const DEFAULT_CREDENTIAL_REFRESH: i64 = 300;

/// `SEC_CREDENTIAL_REFRESH` as this host's HTCondor configuration sets it: how often
/// a running job's starter copies the credd's token into the job's `$_CONDOR_CREDS`.
/// Unset, unreadable or not a number: HTCondor's default.
pub fn credential_refresh(tools: &Tools) -> i64 {
    let ran = match tools.run("condor_config_val", &["SEC_CREDENTIAL_REFRESH"], None, &[]) {
        Ok(r) => r,
        // No HTCondor here: the hand-off says so, with its own exit code.
        Err(e) => {
            tracing::debug!("SEC_CREDENTIAL_REFRESH: {}", e.message());
            return DEFAULT_CREDENTIAL_REFRESH;
        }
    };
    ran.show("condor_config_val");
    let value = ran.stdout.trim();
    if !ran.success() || value.is_empty() {
        tracing::debug!(
            "SEC_CREDENTIAL_REFRESH is not set ({}): HTCondor's default is {DEFAULT_CREDENTIAL_REFRESH} s",
            ran.describe()
        );
        return DEFAULT_CREDENTIAL_REFRESH;
    }
    match value.parse::<i64>() {
        Ok(v) => v,
        Err(_) => {
            tracing::warn!(
                "SEC_CREDENTIAL_REFRESH = {:?} is not a number of seconds: assuming HTCondor's \
                 default, {DEFAULT_CREDENTIAL_REFRESH} s",
                redact(value)
            );
            DEFAULT_CREDENTIAL_REFRESH
        }
    }
}

/// `--condor=credd`: renew when less than the margin (`--minsecs`, or the default rule)
/// plus `SEC_CREDENTIAL_REFRESH` is left. A running job holds the credd's token of up to
/// one refresh interval ago, so it then always has at least what the margin promises
/// the token file's readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EarlyRenewal {
    /// `SEC_CREDENTIAL_REFRESH`, in seconds (0 or less: jobs are never refreshed).
    pub refresh: i64,
    /// `--minsecs` as given (`None`: the default rule).
    pub minsecs: Option<i64>,
}

impl EarlyRenewal {
    /// What the renewal adds to the margin.
    pub fn extra(&self) -> i64 {
        self.refresh.max(0)
    }

    /// The threshold for a token that expires at `expires` and was issued now.
    pub fn minsecs(&self, expires: i64) -> i64 {
        let now = crate::token::now();
        let t = crate::token::Times {
            exp: expires,
            iat: Some(now),
        };
        crate::token::margin(self.minsecs, &t).saturating_add(self.extra())
    }

    /// After a renewal: warn when the issuer's tokens are too short for the rule.
    pub fn check_lifetime(&self, expires: i64) {
        let r = self.refresh;
        let m = crate::token::margin(
            self.minsecs,
            &crate::token::Times {
                exp: expires,
                iat: Some(crate::token::now()),
            },
        );
        if r <= 0 {
            return;
        }
        let left = expires - crate::token::now();
        if left <= r {
            tracing::warn!(
                "the new token lives {}, not longer than SEC_CREDENTIAL_REFRESH ({r} s): running \
                 jobs receive the credd's token only every {r} s and will hold an expired one; \
                 ask the issuer for tokens that live more than {} s, or lower \
                 SEC_CREDENTIAL_REFRESH on the execute points",
                crate::clock::human_secs(left),
                self.minsecs(expires)
            );
        } else if left < self.minsecs(expires) {
            tracing::warn!(
                "the new token lives {}, less than --minsecs ({m} s) plus SEC_CREDENTIAL_REFRESH \
                 ({r} s): every run renews it; lower --minsecs below {} s (and keep it above the \
                 interval between runs)",
                crate::clock::human_secs(left),
                left - r
            );
        }
    }
}

/// For `--condor=credd`, read `SEC_CREDENTIAL_REFRESH` and say how the renewal moves.
/// One `condor_config_val` per run: the credd hand-off runs HTCondor's tools on
/// every run anyway, fresh or not.
pub fn early_renewal(
    mode: Option<&Mode>,
    minsecs: Option<i64>,
    timeout: Duration,
) -> Option<EarlyRenewal> {
    if !matches!(mode, Some(Mode::Credd { .. })) {
        return None;
    }
    let refresh = credential_refresh(&Tools::from_env(timeout));
    let e = EarlyRenewal { refresh, minsecs };
    let threshold = match minsecs {
        Some(m) => format!(
            "{} s is left (--minsecs {m} s + SEC_CREDENTIAL_REFRESH {refresh} s)",
            m.saturating_add(e.extra())
        ),
        None => format!(
            "the default margin (1 hour, or half the token's lifetime) + \
             SEC_CREDENTIAL_REFRESH {refresh} s is left"
        ),
    };
    if refresh <= 0 {
        tracing::warn!(
            "SEC_CREDENTIAL_REFRESH is {refresh}: HTCondor never gives running jobs a renewed \
             token, only jobs that start after it is stored; set it (default \
             {DEFAULT_CREDENTIAL_REFRESH} s) on the execute points"
        );
    } else {
        tracing::info!(
            "--condor=credd: renewing when less than {threshold}, so that running jobs never \
             hold an expired token"
        );
    }
    Some(e)
}

pub(super) fn store_in_credd(
    tools: &Tools,
    service: &str,
    handle: Option<&str>,
    tok: &Secret,
    token_file: &Path,
) -> Result<()> {
    let v = condor_version(tools)?;
    let vs = format!("{}.{}.{}", v.0, v.1, v.2);
    let plain = plain_support(v);
    if plain == Plain::Unsupported {
        return Err(Error::config(format!(
            "HTCondor {vs} cannot store a plain access token in the credd: --condor=credd needs \
             HTCondor 24.7.3 or later (24.10.2 or later uses -P); the token file {} is up to date; \
             upgrade HTCondor, or use --condor=file",
            token_file.display()
        )));
    }
    let args = store_cred_args(service, handle, plain);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Exactly the token file's bytes: `sha256sum` of the file and of the credd's
    // `.use` file show the fingerprint printed below.
    let bytes = canonical_bytes(tok);
    let ran = tools.run("condor_store_cred", &args, Some(&bytes), &[])?;
    ran.show("condor_store_cred");
    if ran.success() {
        tracing::info!(
            "stored {} in the credd as service {service}{} (HTCondor {vs}{}); the stored bytes' \
             sha256sum begins {}",
            token_file.display(),
            handle.map(|h| format!(", handle {h}")).unwrap_or_default(),
            if plain == Plain::Flag { ", -P" } else { "" },
            crate::secret::fingerprint(&bytes)
        );
        return Ok(());
    }
    // Its answer may not say why ("Operation failed. Make sure your ALLOW_WRITE ...").
    // Then ask again without the token, with -d, which names an unreachable credd
    // ("Unable to contact local credd").
    let reason = match classify_store_cred(&ran) {
        Failure::Unknown => {
            let mut q = vec!["query-oauth", "-s", service];
            if let Some(h) = handle {
                q.extend(["-H", h]);
            }
            q.push("-d");
            match tools.run("condor_store_cred", &q, None, &[]) {
                Ok(d) => match classify_store_cred(&d) {
                    f @ (Failure::Unreachable(_) | Failure::Denied(_)) => f,
                    _ => Failure::Config(ran.last_line()),
                },
                Err(_) => Failure::Config(ran.last_line()),
            }
        }
        f => f,
    };
    let file = token_file.display();
    Err(match reason {
        Failure::Unreachable(why) => Error::temp(format!(
            "condor_store_cred could not reach the credd ({why}); the token file {file} is up to \
             date; a later run will store the token"
        )),
        Failure::Denied(why) => Error::config(format!(
            "the credd denied condor_store_cred access to store the token for service {service} \
             ({why}); the token file {file} is up to date; the credd's ALLOW_WRITE must admit \
             this user and host"
        )),
        Failure::Config(why) => Error::config(format!(
            "condor_store_cred refused to store the token for service {service} ({why}); the token \
             file {file} is up to date; check the credd's configuration (ALLOW_WRITE, \
             SEC_CREDENTIAL_DIRECTORY_OAUTH, a credmon claiming {service}), --condor-service, \
             and that condor_store_cred is the one condor_version belongs to"
        )),
        Failure::Unknown => Error::config(format!(
            "condor_store_cred failed ({}); the token file {file} is up to date",
            ran.describe()
        )),
    })
}

/// Why an HTCondor command failed, by its output and exit status.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Failure {
    /// The daemon could not be reached or did not answer in time: exit 75.
    Unreachable(String),
    /// The daemon refused the client (its security policy): exit 78.
    Denied(String),
    /// It answered no, or was called wrongly for this installation: exit 78.
    Config(String),
    /// Not classified by its output.
    Unknown,
}

/// Output of condor_store_cred that says the credd answered no. HTCondor 25 also
/// prints "Unable to contact local credd" after a denial, so this is looked for first.
pub(super) const DENIED: &[&str] = &["received \"denied\""];

/// Output of condor_store_cred that names an unreachable credd.
const UNREACHABLE: &[&str] = &[
    "unable to contact",
    "can't find address",
    "failed to connect",
    "connection refused",
    "timed out",
    "timeout",
    "credmon did not process",
    "communication",
];

/// Output that names a configuration problem.
const MISCONFIGURED: &[&str] = &[
    "unrecognized option",
    "usage:",
    "not a known credential type",
    "configuration error",
    "not allowed",
    "missing or bad arguments",
    "mismatched",
    "json",
    "did not match",
    "permission denied",
    "not authorized",
    "failed to authenticate",
    "not running as system",
];

/// `12/06/26 20:46:25 ERROR: ...` (HTCondor's -d lines) → `ERROR: ...`.
pub(super) fn strip_log_stamp(line: &str) -> &str {
    let mut words = line.splitn(3, ' ');
    match (words.next(), words.next(), words.next()) {
        (Some(d), Some(t), Some(rest))
            if d.len() == 8
                && d.bytes().all(|b| b.is_ascii_digit() || b == b'/')
                && t.len() == 8
                && t.bytes().all(|b| b.is_ascii_digit() || b == b':') =>
        {
            rest
        }
        _ => line,
    }
}

pub(super) fn classify_store_cred(ran: &Ran) -> Failure {
    if ran.timed_out {
        return Failure::Unreachable(format!("no answer within {} s", ran.timeout.as_secs()));
    }
    let all = format!("{}\n{}", ran.stdout, ran.stderr);
    let find = |pats: &[&str]| {
        all.lines()
            .find(|l| {
                let l = l.to_ascii_lowercase();
                pats.iter().any(|p| l.contains(p))
            })
            .map(|l| redact(strip_log_stamp(l.trim())))
    };
    if let Some(l) = find(DENIED) {
        return Failure::Denied(l);
    }
    if let Some(l) = find(UNREACHABLE) {
        return Failure::Unreachable(l);
    }
    if let Some(l) = find(MISCONFIGURED) {
        return Failure::Config(l);
    }
    // Exit 2: a credential is stored that does not match the request.
    if ran.code == Some(2) {
        return Failure::Config("a stored credential does not match the request".into());
    }
    Failure::Unknown
}
