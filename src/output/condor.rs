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

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{io_reason, Error, Result};
use crate::output::discovery;
use crate::secret::Secret;
use crate::store::{self, FileError, WriteMode};
use crate::token;

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

/// What the vault-storer mode needs from the Vault source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultStorer {
    /// The Vault server: a host, `host:port` or a URL (the Vault source gives
    /// `https://host:8200`); compared as htgettoken resolves it.
    pub vault_server: String,
    /// The htvault-config issuer name (`-i`), also the credd service name.
    pub issuer: String,
    pub role: String,
    pub credkey: String,
    /// The Kerberos credential cache our keytab login used.
    pub ccache: PathBuf,
}

/// Where HTCondor's commands are found and how long each may run.
#[derive(Debug, Clone)]
pub struct Tools {
    /// Directories searched, `$PATH` style.
    pub path: OsString,
    pub timeout: Duration,
}

impl Tools {
    /// `$PATH`, then `/usr/sbin` and `/sbin`: packages put `condor_store_cred` in
    /// `/usr/sbin`, which cron's default PATH (`/usr/bin:/bin`) lacks.
    pub fn from_env(timeout: Duration) -> Tools {
        let mut path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
        path.push(":/usr/sbin:/sbin");
        Tools { path, timeout }
    }
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

fn canonical_bytes(tok: &Secret) -> zeroize::Zeroizing<Vec<u8>> {
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

/// What the installed HTCondor can do with a plain access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plain {
    /// 24.10.2 and later: `-P` says "plain token, store as .use".
    Flag,
    /// 24.7.3 to 24.10.1: plain tokens are stored without `-P` for unclaimed services.
    Implicit,
    /// Older: the credd cannot hold a plain access token.
    Unsupported,
}

pub type Version = (u32, u32, u32);

/// `$CondorVersion: 24.10.2 2024-10-01 BuildID: ... $` → (24, 10, 2).
pub fn parse_version(out: &str) -> Option<Version> {
    let rest = &out[out.find("$CondorVersion:")? + "$CondorVersion:".len()..];
    let word = rest.split_whitespace().next()?;
    let mut it = word.split('.').map(|n| n.parse::<u32>().ok());
    match (it.next()??, it.next()??, it.next()??, it.next()) {
        (a, b, c, None) => Some((a, b, c)),
        _ => None,
    }
}

pub fn plain_support(v: Version) -> Plain {
    if v >= (24, 10, 2) {
        Plain::Flag
    } else if v >= (24, 7, 3) {
        Plain::Implicit
    } else {
        Plain::Unsupported
    }
}

/// The exact arguments of `condor_store_cred` for this version band.
pub fn store_cred_args(service: &str, handle: Option<&str>, plain: Plain) -> Vec<String> {
    let mut a = vec!["add-oauth".to_string(), "-s".into(), service.into()];
    if let Some(h) = handle {
        a.extend(["-H".into(), h.into()]);
    }
    if plain == Plain::Flag {
        a.push("-P".into());
    }
    a.extend(["-i".into(), "-".into()]);
    a
}

fn condor_version(tools: &Tools) -> Result<Version> {
    let ran = tools.run("condor_version", &[], None, &[])?;
    ran.show("condor_version");
    if !ran.success() {
        return Err(Error::config(format!(
            "condor_version failed ({}): check the HTCondor installation",
            ran.describe()
        )));
    }
    parse_version(&ran.stdout).ok_or_else(|| {
        Error::config(format!(
            "cannot read HTCondor's version from condor_version ({:?})",
            ran.stdout.lines().next().unwrap_or("")
        ))
    })
}

fn store_in_credd(
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
enum Failure {
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
const DENIED: &[&str] = &["received \"denied\""];
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
fn strip_log_stamp(line: &str) -> &str {
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

fn classify_store_cred(ran: &Ran) -> Failure {
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

// ---------------------------------------------------------------------------
// vault-storer

/// `--credkey`, `--role` and `--vaultserver` as htgettoken options in
/// `SEC_CREDENTIAL_GETTOKEN_OPTS`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GettokenOpts {
    pub credkey: Option<String>,
    pub role: Option<String>,
    pub vaultserver: Option<String>,
}

/// Parse htgettoken options the way its option parser takes them:
/// `--name=V`, `--name V`, `-a V`, `-aV`.
pub fn parse_gettoken_opts(s: &str) -> GettokenOpts {
    let words: Vec<String> = s
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_string())
        .collect();
    let mut o = GettokenOpts::default();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        let next = words.get(i + 1).cloned();
        let mut take = |long: &str, short: Option<&str>| -> Option<Option<String>> {
            if let Some(v) = w.strip_prefix(&format!("{long}=")) {
                return Some(Some(v.to_string()));
            }
            if w == long {
                i += 1;
                return Some(next.clone());
            }
            if let Some(sh) = short {
                if w == sh {
                    i += 1;
                    return Some(next.clone());
                }
                if let Some(v) = w.strip_prefix(sh) {
                    if !v.is_empty() && !w.starts_with("--") {
                        return Some(Some(v.to_string()));
                    }
                }
            }
            None
        };
        if let Some(v) = take("--credkey", None) {
            o.credkey = v;
        } else if let Some(v) = take("--role", Some("-r")) {
            o.role = v;
        } else if let Some(v) = take("--vaultserver", Some("-a")) {
            o.vaultserver = v;
        }
        i += 1;
    }
    o
}

/// A Vault server as htgettoken resolves it: `https://` and port 8200 added.
pub fn normalize_vault(s: &str) -> String {
    let s = s.trim().trim_end_matches('/');
    let s = s.strip_prefix("https://").unwrap_or(s);
    if s.contains("://") {
        return s.to_string();
    }
    let hostport = if s
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        s.to_string()
    } else {
        format!("{s}:8200")
    };
    format!("https://{}", hostport.to_ascii_lowercase())
}

/// The `--vaultserver` value htgettoken needs for our server: the bare host when
/// https and port 8200 are implied.
fn vaultserver_arg(s: &str) -> String {
    let n = normalize_vault(s);
    match n
        .strip_prefix("https://")
        .and_then(|h| h.strip_suffix(":8200"))
    {
        Some(host) => host.to_string(),
        None => n.strip_prefix("https://").unwrap_or(&n).to_string(),
    }
}

/// The line for `~/.condor/user_config` that matches our Vault options.
pub fn user_config_line(v: &VaultStorer) -> String {
    format!(
        "SEC_CREDENTIAL_GETTOKEN_OPTS = --credkey={} --role={} --vaultserver={}",
        v.credkey,
        v.role,
        vaultserver_arg(&v.vault_server)
    )
}

/// What differs between HTCondor's options and ours (empty: they agree).
pub fn gettoken_mismatch(have: &GettokenOpts, v: &VaultStorer) -> Vec<String> {
    let mut out = Vec::new();
    if have.credkey.as_deref() != Some(v.credkey.as_str()) {
        out.push(format!(
            "--credkey is {:?}, ours {:?}",
            have.credkey.as_deref().unwrap_or("unset"),
            v.credkey
        ));
    }
    if have.role.as_deref() != Some(v.role.as_str()) {
        out.push(format!(
            "--role is {:?}, ours {:?}",
            have.role.as_deref().unwrap_or("unset"),
            v.role
        ));
    }
    if have.vaultserver.as_deref().map(normalize_vault) != Some(normalize_vault(&v.vault_server)) {
        out.push(format!(
            "--vaultserver is {:?}, ours {:?}",
            have.vaultserver.as_deref().unwrap_or("unset"),
            vaultserver_arg(&v.vault_server)
        ));
    }
    out
}

fn run_vault_storer(tools: &Tools, v: &VaultStorer, token_file: &Path) -> Result<()> {
    let ran = tools.run(
        "condor_config_val",
        &["SEC_CREDENTIAL_GETTOKEN_OPTS"],
        None,
        &[],
    )?;
    ran.show("condor_config_val");
    // Exit 1 with "Not defined: ..." when unset.
    let opts = if ran.success() {
        ran.stdout.trim().to_string()
    } else {
        String::new()
    };
    let diff = gettoken_mismatch(&parse_gettoken_opts(&opts), v);
    if !diff.is_empty() {
        let line = user_config_line(v);
        // The line alone on stdout, ready for `>> ~/.condor/user_config`.
        let _ = writeln!(std::io::stdout(), "{line}");
        return Err(Error::config(format!(
            "HTCondor's SEC_CREDENTIAL_GETTOKEN_OPTS ({}) does not match robot-token's Vault \
             options ({}): its Vault credmon would fetch another robot's tokens; add this line to \
             ~/.condor/user_config: {line}",
            if opts.is_empty() { "unset" } else { &opts },
            diff.join(", ")
        )));
    }
    let storer = ["condor_credential_storer", "condor_vault_storer"]
        .into_iter()
        .find(|n| tools.find(n).is_some())
        .ok_or_else(|| {
            Error::config(
                "neither condor_credential_storer nor condor_vault_storer is on PATH: install \
                 HTCondor's Vault credmon tools on this access point",
            )
        })?;

    // The storer's htgettoken writes a bearer token of its own to $BEARER_TOKEN_FILE
    // (else bt_u<euid>) with its own --minsecs: give it a private throwaway file so
    // that our --outfile stays exactly what our renewal wrote.
    let scratch = Scratch::new()?;
    let ccache = v.ccache.as_os_str();
    let ccache: OsString = if ccache.to_string_lossy().contains(':') {
        ccache.to_os_string()
    } else {
        let mut s = OsString::from("FILE:");
        s.push(ccache);
        s
    };
    let bt = scratch.0.join("bt");
    let env: [(&str, &OsStr); 2] = [
        ("KRB5CCNAME", ccache.as_os_str()),
        ("BEARER_TOKEN_FILE", bt.as_os_str()),
    ];
    let ran = tools.run(storer, &["-v", &v.issuer], None, &env)?;
    ran.show(storer);
    if ran.success() {
        tracing::info!(
            "{storer} stored Vault credentials for {} in the credd",
            v.issuer
        );
        return Ok(());
    }
    let file = token_file.display();
    let all = format!("{}\n{}", ran.stdout, ran.stderr);
    // The first line that says what is wrong (a bash script's "line 433: htgettoken:
    // command not found" comes before its own summary, "htgettoken failed").
    let config_line = all
        .lines()
        .find(|l| {
            let l = l.to_ascii_lowercase();
            STORER_MISCONFIGURED.iter().any(|p| l.contains(p))
        })
        .map(|l| redact(l.trim()));
    // With -v its output is already above; without, say how to see it.
    let see = if tracing::enabled!(tracing::Level::INFO) {
        "its output is above"
    } else {
        "run with -v to see its output"
    };
    Err(match config_line {
        Some(_) if all.contains("htgettoken: command not found") => Error::config(format!(
            "{storer} -v {} failed: htgettoken is not installed on this host ({storer} runs it \
             to get the Vault token); the token file {file} is up to date; install htgettoken",
            v.issuer
        )),
        Some(line) if !ran.timed_out => {
            let how = ran.describe();
            let why = if how.contains(&line) {
                how
            } else {
                format!("{line}; {how}")
            };
            Error::config(format!(
                "{storer} -v {} failed ({why}); the token file {file} is up to date; {see}",
                v.issuer
            ))
        }
        _ => Error::temp(format!(
            "{storer} -v {} failed ({}); the token file {file} is up to date; a later run will \
             try again; {see}",
            v.issuer,
            ran.describe()
        )),
    })
}

/// Output of HTCondor's credential storer that names a problem a retry cannot fix.
const STORER_MISCONFIGURED: &[&str] = &[
    "neither sec_credential_gettoken_opts",
    "command not found",
    "no such file",
    "only one underscore",
    "do not match the request",
    "usage:",
];

/// A private directory, removed with what is in it on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch> {
        let base = std::env::temp_dir();
        let mut last = None;
        for i in 0..16u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let p = base.join(format!(
                "robot-token-condor.{}.{:08x}{i}",
                std::process::id(),
                nanos
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&p) {
                Ok(()) => return Ok(Scratch(p)),
                Err(e) => last = Some(e),
            }
        }
        Err(Error::write(format!(
            "cannot create a private directory in {}: {}",
            base.display(),
            last.map(|e| io_reason(&e)).unwrap_or_default()
        )))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// Running HTCondor's commands.

/// Most output kept from one command: enough for any message, bounded for a runaway.
const OUTPUT_CAP: usize = 64 * 1024;

/// A finished (or killed) command.
#[derive(Debug)]
pub struct Ran {
    /// Exit code; None when killed by a signal (our timeout included).
    pub code: Option<i32>,
    pub timed_out: bool,
    pub timeout: Duration,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    fn describe(&self) -> String {
        match (self.timed_out, self.code) {
            (true, _) => format!("no answer within {} s, killed", self.timeout.as_secs()),
            (false, Some(c)) => match self.last_line() {
                l if l.is_empty() => format!("exit {c}"),
                l => format!("exit {c}: {l}"),
            },
            (false, None) => "killed by a signal".into(),
        }
    }

    /// The last non-empty line of its output, redacted.
    fn last_line(&self) -> String {
        let last = |t: &str| {
            t.lines()
                .rfind(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_string())
        };
        redact(
            &last(&self.stderr)
                .or_else(|| last(&self.stdout))
                .unwrap_or_default(),
        )
    }

    /// With -v, show what the command printed (it may be noisy), redacted.
    fn show(&self, name: &str) {
        if !tracing::enabled!(tracing::Level::INFO) {
            return;
        }
        for l in self.stdout.lines().chain(self.stderr.lines()).take(200) {
            if !l.trim().is_empty() {
                tracing::info!("{name}: {}", redact(l));
            }
        }
    }
}

/// Hide anything in a line that looks like a bearer or Vault token: HTCondor's and
/// htgettoken's verbose output is shown to the user, and must never carry a secret.
pub fn redact(line: &str) -> String {
    line.split(' ')
        .map(|w| {
            let core = w.trim_matches(|c: char| "\"',;()[]{}<>".contains(c));
            let jwt =
                core.len() > 40 && core.matches('.').count() == 2 && token::split(core).is_ok();
            let vault = core.len() > 20
                && ["hvs.", "hvb.", "hvr.", "s."]
                    .iter()
                    .any(|p| core.starts_with(p))
                && core
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
            if jwt || vault {
                w.replace(core, "[redacted]")
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Tools {
    /// The executable `name` in our search path.
    pub fn find(&self, name: &str) -> Option<PathBuf> {
        std::env::split_paths(&self.path)
            .filter(|d| !d.as_os_str().is_empty())
            .map(|d| d.join(name))
            .find(|p| {
                std::fs::metadata(p)
                    .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                    .unwrap_or(false)
            })
    }

    /// Run `name args`: stdin closed, or fed `input` through a pipe (the only way a
    /// secret reaches a child); output captured and capped; killed with its process
    /// group after the timeout.
    pub fn run(
        &self,
        name: &str,
        args: &[&str],
        input: Option<&[u8]>,
        env: &[(&str, &OsStr)],
    ) -> Result<Ran> {
        let prog = self.find(name).ok_or_else(|| {
            Error::config(format!(
                "{name} is not on PATH: install HTCondor's tools on this host, or set PATH in the \
                 crontab"
            ))
        })?;
        let mut cmd = Command::new(&prog);
        cmd.args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("PATH", &self.path)
            // A token in our environment is not for HTCondor's helpers.
            .env_remove("BEARER_TOKEN")
            .process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        tracing::debug!("running {} {}", prog.display(), args.join(" "));
        let mut child = cmd.spawn().map_err(|e| {
            Error::config(format!("cannot run {}: {}", prog.display(), io_reason(&e)))
        })?;
        let pid = child.id() as libc::pid_t;
        if let (Some(mut stdin), Some(data)) = (child.stdin.take(), input) {
            let data = zeroize::Zeroizing::new(data.to_vec());
            // A thread, so that a child that never reads cannot block us past the timeout.
            std::thread::spawn(move || {
                let _ = stdin.write_all(&data);
            });
        }
        let (tx, rx) = mpsc::channel();
        for (i, pipe) in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .enumerate()
        {
            let tx = tx.clone();
            if let Some(mut pipe) = pipe {
                std::thread::spawn(move || {
                    let mut kept = Vec::new();
                    let mut buf = [0u8; 8192];
                    loop {
                        match pipe.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                let room = OUTPUT_CAP.saturating_sub(kept.len());
                                kept.extend_from_slice(&buf[..n.min(room)]);
                            }
                        }
                    }
                    let _ = tx.send((i, kept));
                });
            }
        }
        drop(tx);
        let deadline = crate::clock::from_now(self.timeout);
        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() >= deadline => {
                    timed_out = true;
                    // SAFETY: kill(2) on the child's own process group; no memory involved.
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                    break child.wait().ok();
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => break None,
            }
        };
        // Whatever the group left on its pipes; a grandchild that escaped the group
        // and holds them open does not keep us here long.
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let until = crate::clock::from_now(Duration::from_secs(2));
        while let Ok((i, data)) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            if i == 0 {
                out = data;
            } else {
                err = data;
            }
        }
        Ok(Ran {
            code: status.and_then(|s| s.code().or(s.signal().map(|_| -1)).filter(|c| *c >= 0)),
            timed_out,
            timeout: self.timeout,
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let out = "$CondorVersion: 24.10.2 2024-10-01 BuildID: 123 PackageID: 24.10.2-1 $\n\
                   $CondorPlatform: X86_64-Debian_13 $\n";
        assert_eq!(parse_version(out), Some((24, 10, 2)));
        assert_eq!(
            parse_version("$CondorVersion: 23.9.6 2026-07-12 PackageID: 23.9.6+dfsg-2.1+b10 $"),
            Some((23, 9, 6))
        );
        assert_eq!(parse_version("condor 24"), None);
        assert_eq!(parse_version("$CondorVersion: 24.x.1 $"), None);
        assert_eq!(plain_support((24, 10, 2)), Plain::Flag);
        assert_eq!(plain_support((25, 0, 0)), Plain::Flag);
        assert_eq!(plain_support((24, 10, 1)), Plain::Implicit);
        assert_eq!(plain_support((24, 7, 3)), Plain::Implicit);
        assert_eq!(plain_support((24, 7, 2)), Plain::Unsupported);
        assert_eq!(plain_support((23, 9, 6)), Plain::Unsupported);
        // Read in HTCondor's sources: -P came with HTCONDOR-3084, first tagged v24.10.2;
        // the credd's writing of an unclaimed service's token as .use with
        // HTCONDOR-2803, first tagged v24.7.3; the 24.0 LTS series has neither.
        assert_eq!(plain_support((24, 9, 2)), Plain::Implicit);
        assert_eq!(plain_support((24, 0, 23)), Plain::Unsupported);
        assert_eq!(plain_support((25, 0, 1)), Plain::Flag);
        assert_eq!(
            parse_version("$CondorVersion: 25.14.1 2026-10-16 PackageID: 25.14.1+dfsg-1 $"),
            Some((25, 14, 1))
        );
    }

    #[test]
    fn early_renewal_adds_the_refresh_interval() {
        let exp = crate::token::now() + 3600;
        let e = EarlyRenewal {
            refresh: 30,
            minsecs: Some(60),
        };
        assert_eq!(e.minsecs(exp), 90);
        let off = EarlyRenewal {
            refresh: -1,
            minsecs: Some(60),
        };
        assert_eq!(off.minsecs(exp), 60);
        let huge = EarlyRenewal {
            refresh: i64::MAX,
            minsecs: Some(60),
        };
        assert_eq!(huge.minsecs(exp), i64::MAX);
        // Without --minsecs: half a 1-hour token's lifetime, plus the interval.
        let default = EarlyRenewal {
            refresh: 300,
            minsecs: None,
        };
        assert_eq!(default.minsecs(exp), 1800 + 300);
    }

    #[test]
    fn log_stamps() {
        assert_eq!(
            strip_log_stamp("12/06/26 20:46:25 ERROR: SECMAN:2010:Received"),
            "ERROR: SECMAN:2010:Received"
        );
        assert_eq!(strip_log_stamp("Operation failed."), "Operation failed.");
        assert_eq!(strip_log_stamp("a b c"), "a b c");
    }

    #[test]
    fn gettoken_opts() {
        let o = parse_gettoken_opts("--credkey=robot --role=prod --vaultserver=vault.ligo.org");
        assert_eq!(o.credkey.as_deref(), Some("robot"));
        assert_eq!(o.role.as_deref(), Some("prod"));
        assert_eq!(o.vaultserver.as_deref(), Some("vault.ligo.org"));
        let o = parse_gettoken_opts("-a vault.ligo.org -r prod --credkey robot --nooidc");
        assert_eq!(o.vaultserver.as_deref(), Some("vault.ligo.org"));
        assert_eq!(o.role.as_deref(), Some("prod"));
        assert_eq!(o.credkey.as_deref(), Some("robot"));
        let o = parse_gettoken_opts("-avault.example:8443");
        assert_eq!(o.vaultserver.as_deref(), Some("vault.example:8443"));
        assert_eq!(parse_gettoken_opts(""), GettokenOpts::default());
    }

    #[test]
    fn vault_servers_compare_as_htgettoken_resolves_them() {
        let n = normalize_vault;
        assert_eq!(n("vault.ligo.org"), n("https://vault.ligo.org:8200/"));
        assert_eq!(n("Vault.LIGO.org:8200"), n("vault.ligo.org"));
        assert_ne!(n("vault.ligo.org:8443"), n("vault.ligo.org"));
        assert_eq!(
            vaultserver_arg("https://vault.ligo.org:8200"),
            "vault.ligo.org"
        );
        assert_eq!(vaultserver_arg("vault.example:8443"), "vault.example:8443");
    }

    #[test]
    fn names() {
        assert!(check_name("--condor-service", "robot_svc-1.x").is_ok());
        assert!(check_name("--condor-service", "-P").is_err());
        assert!(check_name("--condor-service", "a/b").is_err());
        assert!(check_name("--condor-service", "").is_err());
        assert!(check_name("--condor-service", "a b").is_err());
    }

    #[test]
    fn idtokens_dirs() {
        assert!(in_idtokens_dir(Path::new("/home/r/.condor/tokens.d/t")).is_some());
        assert!(in_idtokens_dir(Path::new("/etc/condor/tokens.d/t")).is_some());
        assert!(in_idtokens_dir(Path::new("/home/r/.condor/t")).is_none());
        assert!(in_idtokens_dir(Path::new("/tmp/tokens.d/t")).is_none());
    }

    #[test]
    fn redaction() {
        let jwt = token::tests::make("{\"exp\":1}");
        let line = format!("got token {jwt}, vault token hvs.CAESIabcdefghijklmnopqrstu ok");
        let r = redact(&line);
        assert!(!r.contains(&jwt) && !r.contains("hvs.CAES"), "{r}");
        assert!(
            r.contains("got token [redacted], vault token [redacted] ok"),
            "{r}"
        );
        assert_eq!(redact("Operation failed."), "Operation failed.");
    }

    #[test]
    fn store_cred_failures() {
        let ran = |code, out: &str, err: &str| Ran {
            code: Some(code),
            timed_out: false,
            timeout: Duration::from_secs(1),
            stdout: out.into(),
            stderr: err.into(),
        };
        assert!(matches!(
            classify_store_cred(&ran(
                1,
                "",
                "STORE_CRED: Failed to start STORE_CRED command. Unable to contact local credd"
            )),
            Failure::Unreachable(_)
        ));
        assert!(matches!(
            classify_store_cred(&ran(
                1,
                "",
                "ERROR: Unrecognized option - '-P'\n\nUsage: condor_store_cred"
            )),
            Failure::Config(_)
        ));
        assert_eq!(
            classify_store_cred(&ran(
                1,
                "Operation failed.\n    Make sure your ALLOW_WRITE setting includes this host.\n",
                ""
            )),
            Failure::Unknown
        );
        assert!(matches!(
            classify_store_cred(&ran(2, "", "")),
            Failure::Config(_)
        ));
        // HTCondor 25.14.1's `query-oauth -d` when the credd's policy denies the user
        // (seen on a real pool): it also says "Unable to contact local credd".
        let denied = "12/06/26 20:46:25 Can't open directory \"/etc/condor/passwords.d\" as PRIV_ROOT, errno: 13 (Permission denied)\n\
             12/06/26 20:46:25 SECMAN: FAILED: Received \"DENIED\" from server for user robot@localhost using method FS.\n\
             12/06/26 20:46:25 ERROR: SECMAN:2010:Received \"DENIED\" from server for user robot@localhost using method FS.\n\
             12/06/26 20:46:25 STORE_CRED: Failed to start STORE_CRED command. Unable to contact local credd\n";
        assert_eq!(
            classify_store_cred(&ran(1, "Operation failed.\n", denied)),
            Failure::Denied(
                "SECMAN: FAILED: Received \"DENIED\" from server for user robot@localhost using \
                 method FS."
                    .into()
            )
        );
        // ...and when the credd is down: the same noise, no denial.
        let down = "12/06/26 20:46:32 Can't open directory \"/etc/condor/passwords.d\" as PRIV_ROOT, errno: 13 (Permission denied)\n\
             12/06/26 20:46:32 Can't find address for credd localhost\n\
             12/06/26 20:46:32 STORE_CRED: Failed to start STORE_CRED command. Unable to contact local credd\n";
        assert_eq!(
            classify_store_cred(&ran(0, "Operation failed.\n", down)),
            Failure::Unreachable("Can't find address for credd localhost".into())
        );
    }
}
