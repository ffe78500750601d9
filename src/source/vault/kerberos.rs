//! The Kerberos side of the Vault login: a ticket from the keytab in our private
//! credential cache, and the SPNEGO token GSSAPI makes from it.

use std::path::{Path, PathBuf};

use base64::Engine;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::source::vault::gssapi::GssErrorKind;
use crate::store::{self, WriteMode};

use super::bootstrap_hint;
use super::settings::Settings;

/// Make sure the private credential cache of `s` holds a valid ticket for the Vault
/// host (from the keytab, reusing a valid one), for tools that read the cache
/// themselves (`condor_vault_storer` runs htgettoken with `KRB5CCNAME`). Returns the
/// cache's path. The SPNEGO token made on the way is discarded unsent.
pub fn kerberos_ticket(s: &Settings) -> Result<PathBuf> {
    prefer_no_rdns();
    let (_negotiate, _principal, ccache) = spnego(s)?;
    Ok(ccache)
}

/// What `KRB5_CONFIG` becomes: `ours` first, then the user's configuration
/// (`KRB5_CONFIG`, else MIT's default `/etc/krb5.conf`). MIT reads every file of the
/// list; for a setting given twice the first file wins.
pub fn krb5_config_list(ours: &Path, current: Option<&std::ffi::OsStr>) -> std::ffi::OsString {
    let mut v = ours.as_os_str().to_os_string();
    v.push(":");
    match current.filter(|c| !c.is_empty()) {
        Some(c) => v.push(c),
        None => v.push("/etc/krb5.conf"),
    }
    v
}

/// htgettoken's Kerberos setting, kept: Vault servers are often DNS aliases, and MIT's
/// default reverse-DNS canonicalisation (`rdns = true`) would ask for a ticket for the
/// alias's real host, which the server's keytab lacks. A private file with
/// `rdns = false` goes first in `KRB5_CONFIG`; the user's configuration follows, so
/// everything else is unchanged. It changes the environment, so it runs before any
/// thread exists: at the start of a Vault run, before its first request (the HTTP
/// client resolves names in threads). Best effort: without it only aliases suffer.
pub(super) fn prefer_no_rdns() {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let Some(dir) = store::cache_dir().map(|d| d.join("krb5")) else {
            return;
        };
        let file = dir.join("rdns.conf");
        const CONF: &[u8] = b"# robot-token: as htgettoken, no reverse-DNS canonicalisation of the Vault host\n[libdefaults]\n    rdns = false\n";
        let ok = store::ensure_private_dir(&dir).is_ok()
            && (matches!(store::read_own(&file, 4096), Ok(Some(d)) if d == CONF)
                || store::atomic_write(&file, CONF, WriteMode::default()).is_ok());
        if !ok {
            tracing::debug!("Kerberos: cannot write {}; rdns left as configured", file.display());
            return;
        }
        let list = krb5_config_list(&file, std::env::var_os("KRB5_CONFIG").as_deref());
        tracing::debug!("Kerberos: KRB5_CONFIG={}", list.to_string_lossy());
        std::env::set_var("KRB5_CONFIG", list);
    });
}

/// A SPNEGO token for the Vault host from the keytab, in the private cache:
/// `(Authorization header value, principal, ccache path)`.
pub(super) fn spnego(s: &Settings) -> Result<(Zeroizing<String>, Option<String>, PathBuf)> {
    let Some(keytab) = &s.keytab else {
        return Err(Error::perm(format!(
            "no valid Vault token in {} and no keytab to log in with: give -k KEYTAB (or set KRB5_KTNAME), or {}",
            s.token_file.display(),
            bootstrap_hint(s)
        )));
    };
    let gss = crate::source::vault::gssapi::shared().map_err(|e| Error::config(e.to_string()))?;
    let ccache = s.kerberos_ccache()?;
    let who = s.principal.as_deref().unwrap_or("the keytab's principal");
    let mut last = None;
    // htgettoken asks for host@<vault host>; servers set up for browsers use HTTP@.
    for service in ["host", "HTTP"] {
        let name = format!("{service}@{}", s.host);
        match gss.negotiate(&name, Some(keytab), &ccache, s.principal.as_deref()) {
            Ok(n) => {
                tracing::debug!(
                    "Kerberos: SPNEGO token for {name} as {} ({} bytes), cache {}",
                    n.principal.as_deref().unwrap_or(who),
                    n.token.len(),
                    ccache.display()
                );
                let mut header = Zeroizing::new(String::from("Negotiate "));
                base64::engine::general_purpose::STANDARD.encode_string(&*n.token, &mut header);
                return Ok((header, n.principal.or(s.principal.clone()), ccache));
            }
            Err(e) if e.is_unknown_service() => {
                tracing::debug!("Kerberos: the KDC has no {name}");
                last = Some(e);
            }
            Err(e) => return Err(gss_error(e, s, keytab, who)),
        }
    }
    Err(gss_error(
        last.expect("tried at least one service"),
        s,
        keytab,
        who,
    ))
}

fn gss_error(
    e: crate::source::vault::gssapi::GssError,
    s: &Settings,
    keytab: &Path,
    who: &str,
) -> Error {
    match e.kind() {
        GssErrorKind::LibraryUnavailable => Error::config(e.to_string()),
        GssErrorKind::KdcUnreachable => Error::temp(format!("{e}; try again later")),
        GssErrorKind::CredentialsRejected => Error::perm(format!(
            "{e}: the keytab {} cannot log in as {who}; check it with `kinit -kt {} {}` \
             (a new keytab may be needed)",
            keytab.display(),
            keytab.display(),
            s.principal.as_deref().unwrap_or("PRINCIPAL")
        )),
        GssErrorKind::Other if e.is_unknown_service() => Error::config(format!(
            "{e}: the KDC knows neither host/{0} nor HTTP/{0}; check --vault-server",
            s.host
        )),
        GssErrorKind::Other => Error::config(e.to_string()),
    }
}
