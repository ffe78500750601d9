//! `--condor`: hand the token to HTCondor after a successful `get` (renewed or reused).
//!
//! - `file`: the token file is what HTCondor's client tools read (a raw JWT and one
//!   newline); warn when `$XDG_RUNTIME_DIR/bt_u<euid>` shadows it.
//! - `credd`: store the access token in the credd for `use_oauth_services = NAME`,
//!   piped on stdin to `condor_store_cred add-oauth`, gated on `condor_version`. A
//!   running job only receives the credd's token at the starter's next
//!   `SEC_CREDENTIAL_REFRESH` tick, so the renewal is moved earlier by that much
//!   ([`early_renewal`]).
//! - `vault-storer`: check HTCondor's `SEC_CREDENTIAL_GETTOKEN_OPTS` against our Vault
//!   options, then run HTCondor's Vault credential storer with our Kerberos cache.
//!
//! HTCondor's commands run with stdin closed or piped, a timeout, capped output, and
//! never a secret in argv or the environment. Their output is shown only with -v.
//!
//! Here: the modes, the file hand-off and `get --dry-run`'s preflight. Beside it:
//! `tools` (running HTCondor's commands), `version` (what each release can store),
//! `credd` and `vault_storer` (the two modes that call HTCondor).

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::output::discovery;
use crate::secret::Secret;
use crate::store::{self, FileError, WriteMode};
use crate::token;

mod credd;
mod tools;
mod vault_storer;
mod version;

use self::credd::{classify_store_cred, store_in_credd, Failure};
pub use self::credd::{
    credential_refresh, early_renewal, EarlyRenewal, DEFAULT_CREDENTIAL_REFRESH,
};
pub use self::tools::{redact, Ran, Tools};
pub use self::vault_storer::{
    gettoken_mismatch, normalize_vault, parse_gettoken_opts, user_config_line, GettokenOpts,
    VaultStorer,
};
use self::version::condor_version;
pub use self::version::{parse_version, plain_support, store_cred_args, Plain, Version};

use self::vault_storer::run_vault_storer;

/// `--condor[=MODE]` as configured (checked without I/O by `config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The token file is the hand-off (client tools, `scitokens_file`).
    File,
    /// Store the access token in the credd under this service (and handle).
    Credd {
        service: String,
        handle: Option<String>,
    },
    /// Run HTCondor's Vault credential storer, as `igwn-robot-get --condor` does.
    VaultStorer,
}

/// A hand-off ready to run: the mode with what it needs resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handoff {
    File,
    Credd {
        service: String,
        handle: Option<String>,
    },
    VaultStorer(VaultStorer),
}

/// Check a `--condor-service` or `--condor-handle` value: the credd makes file names
/// of it (`<service>_<handle>.use`), and condor_store_cred must not take it for an option.
pub fn check_name(what: &str, v: &str) -> std::result::Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && !v.starts_with(['-', '.'])
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {v:?}: use 1-64 letters, digits, '_', '-' or '.', not starting with '-' or '.'"
        ))
    }
}

/// The HTCondor IDTOKENS directory `path` is in, if any (`~/.condor/tokens.d`,
/// `/etc/condor/tokens.d`): no place for a SciToken.
pub fn in_idtokens_dir(path: &Path) -> Option<PathBuf> {
    let abs = store::absolute(path);
    let dir = abs.parent()?;
    let is = dir.file_name() == Some(OsStr::new("tokens.d"))
        && matches!(
            dir.parent()
                .and_then(Path::file_name)
                .and_then(OsStr::to_str),
            Some(".condor" | "condor")
        );
    is.then(|| dir.to_path_buf())
}

/// What `--condor=vault-storer` needs from the Vault source, looked up by the caller
/// (outputs take nothing from a source): `None` when the source is not Vault. With
/// `true`, the Kerberos cache must also hold a valid ticket.
pub type StorerLookup<'a> = &'a dyn Fn(bool) -> Result<Option<VaultStorer>>;

/// After a successful `get`: resolve the configured mode and hand the token off.
pub fn run(mode: &Mode, file: &TokenFile, timeout: Duration, storer: StorerLookup) -> Result<()> {
    let handoff = match mode {
        Mode::File => Handoff::File,
        Mode::Credd { service, handle } => {
            warn_underscore(service);
            Handoff::Credd {
                service: service.clone(),
                handle: handle.clone(),
            }
        }
        Mode::VaultStorer => Handoff::VaultStorer(storer(true)?.ok_or_else(not_vault)?),
    };
    hand_off_file(&handoff, file, &Tools::from_env(timeout))
}

fn not_vault() -> Error {
    Error::usage(
        "--condor=vault-storer needs the Vault source (--vault-server with a keytab, or a \
         credential file with a \"vault\" section)",
    )
}

/// `get --dry-run` for `--condor`: the hand-off's tools are found, HTCondor's version
/// band is known, the vault-storer settings agree, and the credd answers a query
/// (`condor_store_cred query-oauth`). Nothing is stored and no storer runs. The checks
/// (name, outcome) in the hand-off's order, up to the first that fails.
pub fn preflight(
    mode: &Mode,
    outfile: &Path,
    timeout: Duration,
    storer: StorerLookup,
) -> Vec<(String, Result<String>)> {
    let tools = Tools::from_env(timeout);
    let mut out = Vec::new();
    let (service, handle) = match mode {
        Mode::File => {
            out.push((
                "HTCondor".into(),
                Ok(format!(
                    "--condor=file: HTCondor's tools read {} (set _CONDOR_SCITOKENS_FILE if it \
                     is not where bearer token discovery looks)",
                    outfile.display()
                )),
            ));
            return out;
        }
        Mode::Credd { service, handle } => {
            let band = condor_version(&tools).and_then(|v| {
                let vs = format!("{}.{}.{}", v.0, v.1, v.2);
                match plain_support(v) {
                    Plain::Unsupported => Err(Error::config(format!(
                        "HTCondor {vs} cannot store a plain access token in the credd: \
                         --condor=credd needs HTCondor 24.7.3 or later (24.10.2 or later uses \
                         -P); upgrade HTCondor, or use --condor=file"
                    ))),
                    Plain::Flag => Ok(format!("HTCondor {vs} stores plain tokens with -P")),
                    Plain::Implicit => Ok(format!("HTCondor {vs} stores plain tokens without -P")),
                }
            });
            let stop = band.is_err();
            out.push(("HTCondor version".into(), band));
            if stop {
                return out;
            }
            (service.clone(), handle.clone())
        }
        Mode::VaultStorer => {
            let v = match storer(false) {
                Ok(Some(v)) => v,
                Ok(None) => {
                    out.push(("HTCondor vault-storer".into(), Err(not_vault())));
                    return out;
                }
                Err(e) => {
                    out.push(("HTCondor vault-storer".into(), Err(e)));
                    return out;
                }
            };
            let opts = tools
                .run(
                    "condor_config_val",
                    &["SEC_CREDENTIAL_GETTOKEN_OPTS"],
                    None,
                    &[],
                )
                .map(|ran| {
                    if ran.success() {
                        ran.stdout.trim().to_string()
                    } else {
                        String::new()
                    }
                });
            let agree = opts.and_then(|opts| {
                let diff = gettoken_mismatch(&parse_gettoken_opts(&opts), &v);
                if diff.is_empty() {
                    return Ok(format!("SEC_CREDENTIAL_GETTOKEN_OPTS = {opts} agrees"));
                }
                Err(Error::config(format!(
                    "HTCondor's SEC_CREDENTIAL_GETTOKEN_OPTS ({}) does not match robot-token's \
                     Vault options ({}): add this line to ~/.condor/user_config: {}",
                    if opts.is_empty() { "unset" } else { &opts },
                    diff.join(", "),
                    user_config_line(&v)
                )))
            });
            let storer = ["condor_credential_storer", "condor_vault_storer"]
                .into_iter()
                .find_map(|n| tools.find(n))
                .map(|p| format!("{} is installed", p.display()))
                .ok_or_else(|| {
                    Error::config(
                        "neither condor_credential_storer nor condor_vault_storer is on PATH: \
                         install HTCondor's Vault credmon tools on this access point",
                    )
                });
            let stop = agree.is_err() || storer.is_err();
            out.push(("HTCondor SEC_CREDENTIAL_GETTOKEN_OPTS".into(), agree));
            out.push(("HTCondor Vault storer".into(), storer));
            if stop {
                return out;
            }
            (v.issuer, None)
        }
    };
    let mut q = vec!["query-oauth", "-s", service.as_str()];
    if let Some(h) = &handle {
        q.extend(["-H", h.as_str()]);
    }
    let answered = tools
        .run("condor_store_cred", &q, None, &[])
        .and_then(|ran| {
            ran.show("condor_store_cred");
            match classify_store_cred(&ran) {
                Failure::Unreachable(why) => Err(Error::temp(format!(
                "condor_store_cred could not reach the credd ({why}): start the credd (and the \
                 schedd), or check CREDD_HOST; a later run will store the token"
            ))),
                Failure::Denied(why) => Err(Error::config(format!(
                    "the credd denied a query for service {service} ({why}): the credd's \
                 ALLOW_WRITE must admit this user and host"
                ))),
                Failure::Config(why) => Err(Error::config(format!(
                    "the credd refused a query for service {service} ({why}): check ALLOW_WRITE, \
                 SEC_CREDENTIAL_DIRECTORY_OAUTH and a credmon claiming {service}"
                ))),
                Failure::Unknown => Ok(format!(
                    "the credd answered a query for service {service} ({})",
                    ran.describe()
                )),
            }
        });
    out.push(("HTCondor credd".into(), answered));
    out
}

/// The token file handed off: its path, the other user it may belong to (root
/// keeping a file for a service user), and how to rewrite it.
pub struct TokenFile<'a> {
    pub path: &'a Path,
    pub also: Option<u32>,
    pub write: WriteMode,
}

/// Hand off the fresh token in `token_file` (ours) to HTCondor.
pub fn hand_off(handoff: &Handoff, token_file: &Path, tools: &Tools) -> Result<()> {
    let file = TokenFile {
        path: token_file,
        also: None,
        write: WriteMode::default(),
    };
    hand_off_file(handoff, &file, tools)
}

pub fn hand_off_file(handoff: &Handoff, file: &TokenFile, tools: &Tools) -> Result<()> {
    let token_file = file.path;
    let token = canonical_file(file, tools.timeout)?;
    match handoff {
        Handoff::File => {
            warn_shadowed(token_file, &token);
            if tracing::enabled!(tracing::Level::INFO) {
                let abs = store::absolute(token_file);
                // Not println!: a closed stdout must not panic.
                let _ = writeln!(
                    std::io::stdout(),
                    "export _CONDOR_SCITOKENS_FILE={}\nscitokens_file = {}",
                    shell_quote(&abs),
                    abs.display()
                );
            }
            Ok(())
        }
        Handoff::Credd { service, handle } => {
            store_in_credd(tools, service, handle.as_deref(), &token, token_file)
        }
        Handoff::VaultStorer(v) => run_vault_storer(tools, v, token_file),
    }
}

// ---------------------------------------------------------------------------
// The token file, in the form HTCondor reads.

/// Make sure the token file is exactly a raw JWT and one newline (no JSON, no CR,
/// no `Bearer `), rewriting a reused file that holds the token in another shape.
/// Returns the token.
fn canonical_file(file: &TokenFile, timeout: Duration) -> Result<Secret> {
    let path = file.path;
    let read = |path: &Path| -> Result<(Vec<u8>, Secret)> {
        let data = store::read_own_by(path, token::MAX_TOKEN_LEN, file.also)
            .map_err(|e| Error::write(format!("token file: {e}")))?
            .ok_or_else(|| {
                Error::write(format!(
                    "token file {} vanished before the HTCondor hand-off",
                    path.display()
                ))
            })?;
        let text = std::str::from_utf8(&data).unwrap_or("");
        let tok = token::trim(text);
        let tok = tok.strip_prefix("Bearer ").unwrap_or(tok);
        token::split(tok).map_err(|e| {
            Error::data(format!(
                "token file {}: {e}: HTCondor needs the raw JWT",
                path.display()
            ))
        })?;
        let secret = Secret::new(tok);
        Ok((zeroize::Zeroizing::new(data).to_vec(), secret))
    };
    let (data, tok) = read(path)?;
    let want = canonical_bytes(&tok);
    if data == *want {
        return Ok(tok);
    }
    // Written by another tool in a shape HTCondor may refuse: rewrite it, under the
    // token file's lock so a renewal running now is not undone.
    let lock_path = store::lock_path(path).map_err(|e| Error::write(format!("token file: {e}")))?;
    let _lock = store::lock(&lock_path, crate::clock::from_now(timeout)).map_err(|e| match e {
        FileError::LockTimeout(_) => Error::temp(e.to_string()),
        e => Error::write(format!("token file: {e}")),
    })?;
    let (data, tok) = read(path)?;
    let want = canonical_bytes(&tok);
    if data != *want {
        store::atomic_write(path, &want, file.write)
            .map_err(|e| Error::write(format!("token file: {e}")))?;
        tracing::info!(
            "rewrote {} as a raw JWT and one newline, the form HTCondor reads",
            path.display()
        );
    }
    Ok(tok)
}

pub(super) fn canonical_bytes(tok: &Secret) -> zeroize::Zeroizing<Vec<u8>> {
    let mut v = zeroize::Zeroizing::new(Vec::with_capacity(tok.expose().len() + 1));
    v.extend_from_slice(tok.expose().as_bytes());
    v.push(b'\n');
    v
}

/// WLCG discovery looks in `$XDG_RUNTIME_DIR/bt_u<euid>` before `/tmp/bt_u<euid>`: a
/// different token there wins in interactive shells without `BEARER_TOKEN_FILE`.
fn warn_shadowed(written: &Path, tok: &Secret) {
    let Some(xdg) = discovery::xdg_runtime_file() else {
        return;
    };
    if let (Ok(a), Ok(b)) = (std::fs::metadata(&xdg), std::fs::metadata(written)) {
        if a.dev() == b.dev() && a.ino() == b.ino() {
            return;
        }
    }
    let same = match store::read_own(&xdg, token::MAX_TOKEN_LEN) {
        Ok(None) => return,
        Err(_) if std::fs::symlink_metadata(&xdg).is_err() => return,
        Ok(Some(d)) => {
            let d = zeroize::Zeroizing::new(d);
            token::trim(std::str::from_utf8(&d).unwrap_or("")) == tok.expose()
        }
        Err(_) => false,
    };
    if !same {
        tracing::warn!(
            "{} exists and differs from {}: HTCondor tools in interactive shells read it first \
             (WLCG discovery); remove it, or set BEARER_TOKEN_FILE={} there",
            xdg.display(),
            written.display(),
            written.display()
        );
    }
}

fn shell_quote(p: &Path) -> String {
    let s = p.to_string_lossy();
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

// ---------------------------------------------------------------------------
// credd

/// HTCondor 25.13.2 and later credmons read a credd file `a_b` as provider `a` with
/// handle `b` (unless `CREDMON_ALLOW_SPECIAL_CHAR_NAMES`): say so before a credmon
/// on the access point misreads the robot's token.
fn warn_underscore(service: &str) {
    if let Some((name, handle)) = service.split_once('_') {
        tracing::warn!(
            "--condor-service {service} contains '_': HTCondor's credmons (25.13.2 and later) \
             read it as service {name:?} with handle {handle:?}; for a handle say so \
             (--condor-service {name} --condor-handle {handle}), else choose a name without '_'"
        );
    }
}

// ---------------------------------------------------------------------------
// vault-storer

// ---------------------------------------------------------------------------
// Running HTCondor's commands.

#[cfg(test)]
mod tests;
