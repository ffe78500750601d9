//! The htvault-config source: HashiCorp Vault holding the refresh token, a Kerberos
//! keytab to log in with. What `htgettoken -a HOST -i ISSUER` and
//! `igwn-robot-get --keytab FILE` do, in the same HTTP steps:
//!
//! 1. reuse the Vault token cached in `--vault-token-file` when
//!    `GET /v1/auth/token/lookup-self` says it has at least `--vault-token-minttl` left;
//! 2. else log in: a SPNEGO token for `host@<vault host>` (then `HTTP@`) made from the
//!    keytab in a private credential cache, `POST /v1/<kerberos-path>/login` with
//!    `Authorization: Negotiate …`; a login lease longer than `--vault-token-ttl` is
//!    exchanged for a shorter, non-renewable child (`POST /v1/auth/token/create`); the
//!    Vault token is stored atomically, mode 0600;
//! 3. `GET /v1/<secret-path>?minimum_seconds=<minsecs>`: `data.access_token` is the
//!    bearer token.
//!
//! `renew` runs this only when the token file is not fresh, so a fresh run makes no
//! Vault or KDC traffic at all (unlike htgettoken). The user's default credential
//! cache is never read or written.

pub mod gssapi;
pub mod keytab;
pub mod options;

pub use options::VaultOptions;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::http::{self, Body, Reply, Retry};
use crate::secret::{self, Secret};
use crate::source::interface::{Context, Issued, Source};
use crate::source::vault::gssapi::GssErrorKind;
use crate::store::{self, FileError, WriteMode};

pub const DEFAULT_PORT: u16 = 8200;
pub const DEFAULT_ISSUER: &str = "default";
pub const DEFAULT_ROLE: &str = "default";
/// htgettoken's `--kerbpath` default.
pub const DEFAULT_KERBEROS_PATH: &str = "auth/kerberos-%issuer_%role";
/// htgettoken's `--secretpath` default.
pub const DEFAULT_SECRET_PATH: &str = "secret/oauth/creds/%issuer/%credkey:%role";
/// igwn-robot-get's `--vaulttokenminttl` default.
pub const DEFAULT_TOKEN_MINTTL: Duration = Duration::from_secs(24 * 3600);
/// htgettoken's `--vaulttokenttl` default.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Vault tokens are ~100 bytes; a cached file larger than this is not one.
const MAX_VAULT_TOKEN_LEN: usize = 16 * 1024;

/// Everything a Vault run uses, resolved: options over the credential file's `vault`
/// section over the defaults. Public so that other integrations (HTCondor's
/// `condor_vault_storer`) can compare them with their own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `https://host:8200` (scheme and port always present, no trailing slash).
    pub server: String,
    /// The host name in `server`, for the Kerberos service name.
    pub host: String,
    /// The Vault issuer name (htgettoken `-i`).
    pub issuer: String,
    pub role: String,
    pub credkey: String,
    pub keytab: Option<PathBuf>,
    /// The Kerberos principal: given, else the keytab's first.
    pub principal: Option<String>,
    pub token_file: PathBuf,
    pub token_minttl: Duration,
    pub token_ttl: Duration,
    /// Vault path of the Kerberos login mount, templates expanded (`auth/kerberos-igwn_robot`).
    pub kerberos_path: String,
    /// Vault path of the token, templates expanded.
    pub secret_path: String,
}

/// `HOST`, `HOST:PORT` or a URL → `https://HOST:8200`-style URL and the host name.
/// `https://` is added when no scheme is given and `:8200` when no port is, as
/// htgettoken does; plain `http://` is accepted only for loopback test servers.
pub fn normalize_server(s: &str) -> Result<(String, String)> {
    let s = s.trim().trim_end_matches('/');
    let (scheme, authority) = match s.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("https".to_string(), s),
    };
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err(Error::usage(format!(
            "--vault-server {s:?}: give HOST, HOST:PORT or https://HOST:PORT, without a path"
        )));
    }
    let has_port = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').is_some_and(|(_, r)| r.starts_with(':')),
        None => authority.contains(':'),
    };
    let url = if has_port {
        format!("{scheme}://{authority}")
    } else {
        format!("{scheme}://{authority}:{DEFAULT_PORT}")
    };
    let parsed = http::check_url(&url, "Vault server")?;
    let host = parsed
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok((url, host))
}

/// The defaults igwn-robot-get derives from a principal: credkey is the principal
/// before `@`; role is that before the first `/`.
pub fn principal_defaults(principal: &str) -> (String, String) {
    let credkey = principal.split('@').next().unwrap_or(principal).to_string();
    let role = credkey.split('/').next().unwrap_or(&credkey).to_string();
    (credkey, role)
}

fn expand(template: &str, issuer: &str, role: &str, credkey: &str) -> String {
    template
        .trim_matches('/')
        .replace("%issuer", issuer)
        .replace("%role", role)
        .replace("%credkey", credkey)
}

/// `/tmp/vt_u<euid>`, htgettoken's default, so both tools share one cached token.
pub fn default_token_file() -> PathBuf {
    PathBuf::from(format!("/tmp/vt_u{}", store::euid()))
}

/// The `vault` section of a credential file, as options (the file's values are used
/// only where the command line gave none).
fn file_options(section: &Map<String, Value>, path: &Path) -> Result<VaultOptions> {
    let bad = |what: String| {
        Error::data(format!(
            "malformed credential file {}: \"vault\": {what}",
            path.display()
        ))
    };
    let string = |key: &str| -> Result<Option<String>> {
        match section.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(format!("\"{key}\" must be a string"))),
        }
    };
    let duration = |key: &str| -> Result<Option<Duration>> {
        match section.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .ok_or_else(|| bad(format!("\"{key}\" must be a whole number of seconds")))
                .and_then(|n| {
                    crate::clock::duration_secs(n)
                        .map(Some)
                        .map_err(|e| bad(format!("\"{key}\": {e}")))
                }),
            Some(Value::String(s)) => crate::clock::parse_duration(s)
                .map(Some)
                .map_err(|e| bad(format!("\"{key}\": {e}"))),
            Some(_) => Err(bad(format!("\"{key}\" must be seconds or a duration"))),
        }
    };
    for key in section.keys() {
        if !matches!(
            key.as_str(),
            "server"
                | "issuer"
                | "role"
                | "credkey"
                | "keytab"
                | "principal"
                | "token_file"
                | "token_minttl"
                | "token_ttl"
                | "kerberos_path"
                | "secret_path"
        ) {
            return Err(bad(format!("unknown setting \"{key}\"")));
        }
    }
    Ok(VaultOptions {
        server: string("server")?,
        issuer_name: string("issuer")?,
        role: string("role")?,
        credkey: string("credkey")?,
        keytab: string("keytab")?.map(PathBuf::from),
        principal: string("principal")?,
        token_file: string("token_file")?.map(PathBuf::from),
        token_minttl: duration("token_minttl")?,
        token_ttl: duration("token_ttl")?,
        kerberos_path: string("kerberos_path")?,
        secret_path: string("secret_path")?,
        credential: Some(path.to_path_buf()),
    })
}

/// The `vault` section of a parsed credential file, if it has one.
pub fn section_of(data: &[u8], path: &Path) -> Result<Option<VaultOptions>> {
    let Ok(Value::Object(raw)) = serde_json::from_slice::<Value>(data) else {
        return Ok(None); // not ours to judge: the OAuth2 parser names the problem
    };
    match raw.get("vault") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(section)) => {
            if raw.get("version").and_then(Value::as_u64) != Some(1) {
                return Err(Error::data(format!(
                    "malformed credential file {}: missing \"version\": 1",
                    path.display()
                )));
            }
            file_options(section, path).map(Some)
        }
        Some(_) => Err(Error::data(format!(
            "malformed credential file {}: \"vault\" must be an object",
            path.display()
        ))),
    }
}

impl Settings {
    /// The Vault settings of `cfg`, or `None` when its source is not Vault. Reads the
    /// credential file (when one is given) for its `vault` section and the keytab
    /// for its principal, and checks the keytab's permissions; no network.
    pub fn resolve(source: &Source) -> Result<Option<Settings>> {
        match source {
            Source::Vault(opts) => {
                let file = match &opts.credential {
                    Some(path) => {
                        let (real, data) = crate::source::credential::read_file(path)?;
                        section_of(&data, &real)?
                    }
                    None => None,
                };
                Settings::from_options(opts, file.as_ref()).map(Some)
            }
            Source::File(path) => {
                let (real, data) = crate::source::credential::read_file(path)?;
                match section_of(&data, &real)? {
                    Some(file) => {
                        Settings::from_options(&VaultOptions::default(), Some(&file)).map(Some)
                    }
                    None => Ok(None),
                }
            }
            Source::Client { .. } | Source::Exec(_) => Ok(None),
        }
    }

    /// Merge typed options over the file's and apply the defaults.
    pub fn from_options(cli: &VaultOptions, file: Option<&VaultOptions>) -> Result<Settings> {
        let empty = VaultOptions::default();
        let file = file.unwrap_or(&empty);
        macro_rules! pick {
            ($f:ident) => {
                cli.$f.clone().or_else(|| file.$f.clone())
            };
        }
        let server = pick!(server).ok_or_else(|| {
            Error::usage("no Vault server: give --vault-server HOST (or \"server\" in the credential file's \"vault\" section)")
        })?;
        let (server, host) = normalize_server(&server)?;
        let keytab = pick!(keytab).or_else(|| {
            std::env::var_os("KRB5_KTNAME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let from_keytab = match &keytab {
            Some(k) => keytab::check_and_read_principal(k)?,
            None => None,
        };
        let principal = pick!(principal).or(from_keytab);
        let (def_credkey, def_role) = match &principal {
            Some(p) => {
                let (c, r) = principal_defaults(p);
                (Some(c), r)
            }
            None => (None, DEFAULT_ROLE.to_string()),
        };
        let credkey = pick!(credkey).or(def_credkey).ok_or_else(|| {
            Error::usage(
                "no credkey: give --keytab (or $KRB5_KTNAME) so that it comes from the principal, or --credkey",
            )
        })?;
        let role = pick!(role).unwrap_or(def_role);
        let issuer = pick!(issuer_name).unwrap_or_else(|| DEFAULT_ISSUER.to_string());
        for (what, v) in [
            ("--issuer-name", &issuer),
            ("--role", &role),
            ("--credkey", &credkey),
        ] {
            if v.contains(['?', '#', '%']) || v.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(Error::usage(format!(
                    "{what} {v:?} may not contain '?', '#', '%' or spaces"
                )));
            }
        }
        let kerberos_path = expand(
            &pick!(kerberos_path).unwrap_or_else(|| DEFAULT_KERBEROS_PATH.into()),
            &issuer,
            &role,
            &credkey,
        );
        let secret_path = expand(
            &pick!(secret_path).unwrap_or_else(|| DEFAULT_SECRET_PATH.into()),
            &issuer,
            &role,
            &credkey,
        );
        let token_minttl = pick!(token_minttl).unwrap_or(DEFAULT_TOKEN_MINTTL);
        let token_ttl = pick!(token_ttl).unwrap_or(DEFAULT_TOKEN_TTL);
        if token_ttl.is_zero() {
            return Err(Error::usage("--vault-token-ttl must be positive"));
        }
        if token_minttl >= token_ttl {
            // Every run would log in again (htgettoken refuses this too).
            return Err(Error::usage(format!(
                "--vault-token-minttl ({}) must be less than --vault-token-ttl ({})",
                crate::clock::human_secs(crate::clock::secs(token_minttl)),
                crate::clock::human_secs(crate::clock::secs(token_ttl))
            )));
        }
        Ok(Settings {
            server,
            host,
            issuer,
            role,
            credkey,
            keytab,
            principal,
            token_file: pick!(token_file).unwrap_or_else(default_token_file),
            token_minttl,
            token_ttl,
            kerberos_path,
            secret_path,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1/{}", self.server, path.trim_start_matches('/'))
    }

    /// Where the keytab login keeps its Kerberos tickets: a file in the per-user
    /// private cache directory (`~/.cache/robot-token/krb5/`, mode 0700, so no other
    /// user can pre-create or read it), one per principal. Never the user's default
    /// credential cache. Creates the directory.
    pub fn kerberos_ccache(&self) -> Result<PathBuf> {
        let dir = store::cache_dir()
            .ok_or_else(|| {
                Error::config("no home directory for the private Kerberos credential cache")
            })?
            .join("krb5");
        store::ensure_private_dir(&dir)
            .map_err(|e| Error::write(format!("Kerberos credential cache: {e}")))?;
        let who = match (&self.principal, &self.keytab) {
            (Some(p), _) => p.clone(),
            (None, Some(k)) => store::absolute(k).to_string_lossy().into_owned(),
            (None, None) => self.credkey.clone(),
        };
        Ok(dir.join(format!("krb5cc_{}", secret::fingerprint(who.as_bytes()))))
    }
}

/// The Vault settings of a resolved configuration (see [`Settings::resolve`]).
pub fn settings(source: &Source) -> Result<Option<Settings>> {
    Settings::resolve(source)
}

/// The private credential cache (a file path; use it as `KRB5CCNAME=FILE:<path>`)
/// that the keytab login of `cfg` uses. Errors when `cfg` is not a Vault source.
pub fn kerberos_ccache(source: &Source) -> Result<PathBuf> {
    settings(source)?
        .ok_or_else(|| Error::usage("not a Vault configuration: give --vault-server"))?
        .kerberos_ccache()
}

/// Make sure the private credential cache of `s` holds a valid ticket for the Vault
/// host (from the keytab, reusing a valid one), for tools that read the cache
/// themselves (`condor_vault_storer` runs htgettoken with `KRB5CCNAME`). Returns the
/// cache's path. The SPNEGO token made on the way is discarded unsent.
pub fn kerberos_ticket(s: &Settings) -> Result<PathBuf> {
    prefer_no_rdns();
    let (_negotiate, _principal, ccache) = spnego(s)?;
    Ok(ccache)
}

/// What `errors` a Vault error answer carries, joined; never the request's secrets.
fn vault_errors(r: &Reply) -> String {
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    // Vault's words: shown only cleaned and redacted (it may echo a token it was sent).
    let list: Vec<String> = v["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .take(10)
                .map(crate::secret::untrusted_text)
                .collect()
        })
        .unwrap_or_default();
    if list.is_empty() {
        format!("HTTP {}", r.status)
    } else {
        format!("HTTP {}: {}", r.status, list.join("; "))
    }
}

fn json_of(r: &Reply, what: &str, url: &str) -> Result<Value> {
    serde_json::from_slice(&r.body).map_err(|_| {
        Error::data(format!(
            "{what} {url}: the answer is not JSON (HTTP {}); is this a Vault server?",
            r.status
        ))
    })
}

/// A Vault request that failed in transport or with 5xx/429: temporary (75), except
/// TLS and configuration problems.
fn unavailable(
    what: &str,
    url: &str,
    r: std::result::Result<Reply, http::Failure>,
) -> Result<Reply> {
    match r {
        Err(f) => Err(f.into_error(what, url).context_if_temp("Vault unreachable")),
        Ok(r) if r.status >= 500 || r.status == 429 => Err(Error::temp(format!(
            "{what} {url}: Vault answered {}; try again later",
            vault_errors(&r)
        ))),
        Ok(r) => Ok(r),
    }
}

trait TempContext {
    fn context_if_temp(self, what: &str) -> Error;
}

impl TempContext for Error {
    fn context_if_temp(self, what: &str) -> Error {
        if self.exit() == crate::error::Exit::TempFail {
            self.context(what)
        } else {
            self
        }
    }
}

/// The htgettoken command that re-bootstraps the credential in Vault by its OIDC
/// (browser) flow, for messages.
fn bootstrap_hint(s: &Settings) -> String {
    let server = s.server.trim_start_matches("https://");
    let server = server.strip_suffix(":8200").unwrap_or(server);
    format!(
        "re-bootstrap the credential in Vault interactively (htgettoken's OIDC flow): \
         `htgettoken -a {server} -i {} -r {} --credkey {}`",
        s.issuer, s.role, s.credkey
    )
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
fn prefer_no_rdns() {
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

/// The least time left asked of Vault when the default margin is more than it can
/// give: htgettoken's own default `--minsecs`.
const VAULT_FLOOR_SECS: i64 = 60;

/// The Vault token file's lock, unless this run already holds it (through a token
/// file that shares the lock).
fn lock_token_file(s: &Settings, ctx: &Context) -> Result<Option<store::Lock>> {
    let lock_path = store::lock_path(&s.token_file)
        .map_err(|e| Error::write(format!("Vault token file lock: {e}")))?;
    if ctx.holds(&lock_path) {
        return Ok(None);
    }
    store::lock(&lock_path, ctx.deadline)
        .map(Some)
        .map_err(|e| match e {
            FileError::LockTimeout(_) => Error::temp(e.to_string()),
            e => Error::write(format!("Vault token file lock: {e}")),
        })
}

/// Get a bearer token from Vault.
pub fn obtain(s: &Settings, minsecs: i64, ctx: &Context) -> Result<Issued> {
    if s.keytab.is_some() {
        prefer_no_rdns();
    }
    // One run at a time per Vault token file: logins and token exchanges are state
    // changes at Vault, and several token files may share one Vault token.
    let _lock = lock_token_file(s, ctx)?;
    store::remove_stale_temps(&s.token_file);

    let (mut vault_token, cached) = match cached_token(s, ctx)? {
        Some(t) => (t, true),
        None => (login(s, ctx)?, false),
    };
    let mut r = creds_reply(s, &vault_token, minsecs, ctx)?;
    // A cached token may belong to another role or credkey sharing the file (the
    // default /tmp/vt_u<uid> is per user): log in once more before giving up.
    if cached && matches!(r.status, 401 | 403) && s.keytab.is_some() {
        tracing::info!(
            "Vault refused the cached Vault token for this credential ({}): logging in again",
            vault_errors(&r)
        );
        vault_token = login(s, ctx)?;
        r = creds_reply(s, &vault_token, minsecs, ctx)?;
    }
    // htvault-config answers 400 when even a refreshed token cannot have
    // `minimum_seconds` left: its tokens live less. Without --minsecs that margin was
    // only the default's guess (one hour when no token on disk says more), so take
    // the token it has; the next runs know its lifetime. An explicit --minsecs is not
    // lowered behind the user's back.
    let mut minsecs = minsecs;
    if r.status == 400 && ctx.minsecs_is_default && minsecs > VAULT_FLOOR_SECS {
        tracing::info!(
            "Vault cannot give a token with {minsecs} s left (its tokens live less); asking \
             for one with at least {VAULT_FLOOR_SECS} s"
        );
        minsecs = VAULT_FLOOR_SECS;
        r = creds_reply(s, &vault_token, minsecs, ctx)?;
    }
    issued_from(s, r, minsecs)
}

/// Retire a Vault robot. With `force`, first delete the refresh token stored in Vault:
/// `DELETE /v1/<secret path>` with `X-Vault-Token`, the request `htdestroytoken -f` sends
/// (htvault-config's Kerberos policy grants "delete" on that path); the cached Vault
/// token is used, else one from a keytab login. Then revoke the cached Vault token
/// (`POST /v1/auth/token/revoke-self`) and remove its file, its lock and the private
/// Kerberos cache. A refusal stops before any file is removed, so revoke can be run
/// again. Returns one line per thing done, for the report.
pub fn revoke(s: &Settings, force: bool, ctx: &Context) -> Result<Vec<String>> {
    if s.keytab.is_some() {
        prefer_no_rdns();
    }
    let lock = lock_token_file(s, ctx)?;
    let mut done = Vec::new();
    let mut token = read_token_file(s)?;
    if force {
        let url = creds_url(s);
        let delete = |t: &Secret| {
            let r = ctx.http.request(
                &url,
                &[("X-Vault-Token", t.expose())],
                Body::Delete,
                Retry::Idempotent,
            );
            unavailable("deleting the refresh token at", &url, r)
        };
        let mut answer = token.as_ref().map(delete).transpose()?;
        // No cached token, or Vault no longer takes it: the keytab can log in.
        let usable = matches!(&answer, Some(r) if !matches!(r.status, 401 | 403));
        if !usable && s.keytab.is_some() {
            let fresh = login(s, ctx)?;
            answer = Some(delete(&fresh)?);
            token = Some(fresh);
        }
        match answer {
            None => {
                return Err(Error::perm(format!(
                    "no Vault token in {} and no keytab to log in with, so the refresh token in \
                     Vault cannot be deleted; nothing was changed: give -k KEYTAB",
                    s.token_file.display()
                )))
            }
            Some(r) if matches!(r.status, 200 | 204) => done.push(format!(
                "deleted the refresh token stored in Vault at {url}"
            )),
            Some(r) if r.status == 404 => done.push(format!(
                "Vault holds no refresh token at {url} (already deleted)"
            )),
            Some(r) => {
                return Err(Error::perm(format!(
                    "Vault refused to delete the refresh token at {url} ({}); nothing was \
                     changed: check --credkey {} and --role {}, or ask the Vault administrators",
                    vault_errors(&r),
                    s.credkey,
                    s.role
                )))
            }
        }
    }
    match &token {
        Some(t) => {
            let url = s.url("auth/token/revoke-self");
            // Idempotent: a repeat after a lost answer finds the token already dead (403).
            let r = ctx.http.request(
                &url,
                &[("X-Vault-Token", t.expose())],
                Body::Empty,
                Retry::Idempotent,
            );
            let r = unavailable("revoking the Vault token at", &url, r)?;
            match r.status {
                200 | 204 => done.push(format!("revoked the Vault token {t} at {url}")),
                401 | 403 => done.push(format!(
                    "the Vault token {t} in {} was no longer valid",
                    s.token_file.display()
                )),
                _ => {
                    return Err(Error::perm(format!(
                        "Vault refused to revoke the Vault token at {url} ({}); no file was \
                         removed: run revoke again",
                        vault_errors(&r)
                    )))
                }
            }
        }
        None => done.push(format!(
            "no Vault token in {}: nothing to revoke in Vault",
            s.token_file.display()
        )),
    }
    match store::remove_own(&s.token_file) {
        Ok(true) => done.push(format!("removed {}", s.token_file.display())),
        Ok(false) => {}
        Err(e) => return Err(token_file_error(e)),
    }
    drop(lock);
    if let Ok(p) = store::lock_path(&s.token_file) {
        let _ = std::fs::remove_file(p);
    }
    if let Some(cc) = s.keytab.as_ref().and_then(|_| s.kerberos_ccache().ok()) {
        if std::fs::remove_file(&cc).is_ok() {
            done.push(format!(
                "removed the Kerberos ticket cache {}",
                cc.display()
            ));
        }
    }
    if !force {
        done.push(format!(
            "the refresh token stays in Vault at {}: the keytab can still log in and read tokens; \
             add --force to delete it too (as htdestroytoken -f does)",
            creds_url(s)
        ));
    }
    Ok(done)
}

/// `get --dry-run` for the Vault source: what a renewal checks and reads before its
/// login, in its order, without logging in: the keytab (mode, the principal in it),
/// the GSSAPI library, the private ticket cache, the Vault token file, Vault itself
/// (`GET /v1/sys/health`, unauthenticated), the cached Vault token
/// (`lookup-self`, a read). Stops at a check the next ones depend on. Returns the
/// checks (name, outcome) and the `Date` header Vault answered with.
pub fn preflight(s: &Settings, ctx: &Context) -> (Vec<(String, Result<String>)>, Option<String>) {
    let mut out: Vec<(String, Result<String>)> = Vec::new();
    if let Some(k) = &s.keytab {
        let who = s.principal.clone().unwrap_or_default();
        let held = match keytab::holds(k, &who) {
            Ok(Some(false)) => Err(Error::perm(format!(
                "the keytab {} holds no key for {who}: check --principal, or the keytab with \
                 `klist -k {}`",
                k.display(),
                k.display()
            ))),
            Ok(_) => Ok(format!(
                "{} is yours, mode 0600 or stricter, and holds {who}",
                k.display()
            )),
            Err(e) => Err(e),
        };
        let stop = held.is_err();
        out.push((format!("keytab {}", k.display()), held));
        if stop {
            return (out, None);
        }
        out.push((
            "GSSAPI library".into(),
            crate::source::vault::gssapi::shared()
                .map(|_| "libgssapi_krb5.so.2 loads (no login is tried)".into())
                .map_err(|e| Error::config(e.to_string())),
        ));
        out.push((
            "Kerberos ticket cache".into(),
            s.kerberos_ccache()
                .map(|p| format!("{} is private", p.parent().unwrap_or(&p).display())),
        ));
    }
    let file = store::read_own(&s.token_file, MAX_VAULT_TOKEN_LEN)
        .map(|_| format!("{} is yours or absent", s.token_file.display()))
        .map_err(token_file_error);
    let stop = file.is_err();
    out.push(("Vault token file".into(), file));
    if stop {
        return (out, None);
    }
    // Standbys answer 429/472/473 by default; these parameters make them answer 200.
    let url = s.url("sys/health?standbyok=true&perfstandbyok=true");
    let r = ctx.http.request(&url, &[], Body::Get, Retry::Idempotent);
    let date = r.as_ref().ok().and_then(|r| r.date.clone());
    let shown = s.url("sys/health");
    match unavailable("reaching Vault at", &shown, r) {
        Ok(r) => out.push((
            format!("Vault {}", s.server),
            Ok(format!("{shown} answers HTTP {}", r.status)),
        )),
        Err(e) => {
            out.push((format!("Vault {}", s.server), Err(e)));
            return (out, date);
        }
    }
    let cached = match cached_token(s, ctx) {
        Ok(Some(t)) => Ok(format!(
            "the Vault token {t} in {} is valid for at least --vault-token-minttl: a renewal \
             reuses it",
            s.token_file.display()
        )),
        Ok(None) if s.keytab.is_some() => Ok(format!(
            "no usable Vault token in {}: a renewal logs in with the keytab",
            s.token_file.display()
        )),
        Ok(None) => Err(Error::perm(format!(
            "no valid Vault token in {} and no keytab to log in with: give -k KEYTAB (or set \
             KRB5_KTNAME), or {}",
            s.token_file.display(),
            bootstrap_hint(s)
        ))),
        Err(e) => Err(e),
    };
    out.push(("cached Vault token".into(), cached));
    (out, date)
}

/// The Vault token in the token file, if there is one (no request).
fn read_token_file(s: &Settings) -> Result<Option<Secret>> {
    let data = match store::read_own(&s.token_file, MAX_VAULT_TOKEN_LEN) {
        Ok(Some(d)) => Zeroizing::new(d),
        Ok(None) | Err(FileError::TooLarge { .. }) => return Ok(None),
        Err(e) => return Err(token_file_error(e)),
    };
    let text = String::from_utf8_lossy(&data);
    let token = Secret::new(text.trim());
    if token.is_empty() || token.expose().contains(char::is_whitespace) {
        return Ok(None);
    }
    Ok(Some(token))
}

/// A Vault token file we may not use (exit 73, as for the token file), with the
/// option that moves it.
fn token_file_error(e: FileError) -> Error {
    match e {
        FileError::ForeignOwner { path, uid } => Error::write(format!(
            "Vault token file {} is owned by {} (uid {uid}), not by you: have it removed, or \
             give --vault-token-file a path you own",
            path.display(),
            store::user_name(uid)
        )),
        e => Error::write(format!("Vault token file: {e}")),
    }
}

/// The cached Vault token, if it is valid for at least `token_minttl`.
fn cached_token(s: &Settings, ctx: &Context) -> Result<Option<Secret>> {
    let data = match store::read_own(&s.token_file, MAX_VAULT_TOKEN_LEN) {
        Ok(Some(d)) => Zeroizing::new(d),
        Ok(None) => {
            tracing::info!("no cached Vault token in {}", s.token_file.display());
            return Ok(None);
        }
        Err(FileError::TooLarge { .. }) => {
            tracing::info!(
                "{} is not a Vault token file: replacing it",
                s.token_file.display()
            );
            return Ok(None);
        }
        Err(e) => return Err(token_file_error(e)),
    };
    let text = String::from_utf8_lossy(&data);
    let token = Secret::new(text.trim());
    if token.is_empty() || token.expose().contains(char::is_whitespace) {
        return Ok(None);
    }
    let url = s.url("auth/token/lookup-self");
    let r = ctx.http.request(
        &url,
        &[("X-Vault-Token", token.expose())],
        Body::Get,
        Retry::Idempotent,
    );
    let r = unavailable("looking up the Vault token at", &url, r)?;
    if r.status != 200 {
        tracing::info!(
            "the cached Vault token {token} is no longer valid ({}): logging in again",
            vault_errors(&r)
        );
        return Ok(None);
    }
    let v = json_of(&r, "looking up the Vault token at", &url)?;
    let ttl = v["data"]["ttl"].as_i64().unwrap_or(0);
    let never_expires = ttl == 0 && v["data"]["expire_time"].is_null();
    let min = crate::clock::secs(s.token_minttl);
    if never_expires || ttl >= min {
        tracing::info!(
            "reusing the cached Vault token {token} from {} ({} left)",
            s.token_file.display(),
            if never_expires {
                "no expiry".to_string()
            } else {
                crate::clock::human_secs(ttl)
            }
        );
        Ok(Some(token))
    } else {
        tracing::info!(
            "the cached Vault token {token} has {} left, less than --vault-token-minttl {}: logging in again",
            crate::clock::human_secs(ttl),
            crate::clock::human_secs(min)
        );
        Ok(None)
    }
}

/// A SPNEGO token for the Vault host from the keytab, in the private cache:
/// `(Authorization header value, principal, ccache path)`.
fn spnego(s: &Settings) -> Result<(Zeroizing<String>, Option<String>, PathBuf)> {
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

/// Log in with Kerberos, store the Vault token, return it.
fn login(s: &Settings, ctx: &Context) -> Result<Secret> {
    let (negotiate, principal, _ccache) = spnego(s)?;
    let who = principal.as_deref().unwrap_or("the keytab's principal");
    let url = s.url(&format!("{}/login", s.kerberos_path));
    // A SPNEGO token is single-use (servers keep a replay cache): never resend one
    // that may have arrived.
    let r = ctx.http.request(
        &url,
        &[("Authorization", negotiate.as_str())],
        Body::Empty,
        Retry::AtMostOnce,
    );
    drop(negotiate);
    let r = unavailable("Kerberos login at", &url, r)?;
    match r.status {
        200 => {}
        404 => {
            return Err(Error::config(format!(
                "Vault has no Kerberos login at {url} ({}): check --issuer-name {} and --role {}",
                vault_errors(&r),
                s.issuer,
                s.role
            )))
        }
        _ => {
            return Err(Error::perm(format!(
                "Vault refused the Kerberos login of {who} at {url} ({}): if this principal \
                 should be allowed, ask the Vault administrators; otherwise {}",
                vault_errors(&r),
                bootstrap_hint(s)
            )))
        }
    }
    let v = json_of(&r, "Kerberos login at", &url)?;
    let token = v["auth"]["client_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .map(Secret::new)
        .ok_or_else(|| {
            Error::data(format!(
                "Kerberos login at {url}: no auth.client_token in the answer"
            ))
        })?;
    let lease = v["auth"]["lease_duration"].as_u64().unwrap_or(0);
    tracing::info!(
        "logged in to Vault as {who}: Vault token {token}, lease {}",
        crate::clock::human_secs(crate::clock::secs_u64(lease))
    );
    let token = if lease > s.token_ttl.as_secs() || lease == 0 {
        shorter_token(s, token, ctx)?
    } else {
        token
    };
    let mut bytes = Zeroizing::new(Vec::with_capacity(token.expose().len() + 1));
    bytes.extend_from_slice(token.expose().as_bytes());
    bytes.push(b'\n');
    store::atomic_write(&s.token_file, &bytes, WriteMode::default()).map_err(token_file_error)?;
    tracing::info!(
        "stored the Vault token {token} in {}",
        s.token_file.display()
    );
    Ok(token)
}

/// Exchange a login token whose lease exceeds `--vault-token-ttl` for a
/// non-renewable child that lives `--vault-token-ttl`, as htgettoken does, so the
/// token on disk is worth less when stolen.
///
/// The parent is not revoked: Vault revokes a token's children with it, and the
/// endpoints that make a child outlive its parent (`create-orphan`, `revoke-orphan`)
/// need privileges that a robot's login policy does not grant. The parent is never
/// written anywhere and is wiped from memory here.
fn shorter_token(s: &Settings, parent: Secret, ctx: &Context) -> Result<Secret> {
    let url = s.url("auth/token/create");
    let body = serde_json::json!({
        "ttl": format!("{}s", s.token_ttl.as_secs()),
        "renewable": "false",
    })
    .to_string();
    // Not retried once it may have arrived: each success creates a token.
    let r = ctx.http.request(
        &url,
        &[("X-Vault-Token", parent.expose())],
        Body::Json(&body),
        Retry::AtMostOnce,
    );
    let r = unavailable("creating a shorter Vault token at", &url, r)?;
    let child = (r.status == 200)
        .then(|| json_of(&r, "creating a shorter Vault token at", &url).ok())
        .flatten()
        .and_then(|v| v["auth"]["client_token"].as_str().map(Secret::new))
        .filter(|t| !t.is_empty());
    match child {
        Some(child) => {
            tracing::info!(
                "exchanged it for the Vault token {child} valid {} (--vault-token-ttl)",
                crate::clock::human_secs(crate::clock::secs(s.token_ttl))
            );
            Ok(child)
        }
        None => {
            tracing::warn!(
                "Vault did not create a shorter Vault token ({}); keeping the login token",
                vault_errors(&r)
            );
            Ok(parent)
        }
    }
}

fn creds_url(s: &Settings) -> String {
    s.url(&s.secret_path)
}

/// Ask for the bearer token at the secret path: the answer, or a temporary error.
fn creds_reply(s: &Settings, vault_token: &Secret, minsecs: i64, ctx: &Context) -> Result<Reply> {
    let path_url = creds_url(s);
    let url = format!("{path_url}?minimum_seconds={}", minsecs.max(0));
    let r = ctx.http.request(
        &url,
        &[("X-Vault-Token", vault_token.expose())],
        Body::Get,
        Retry::Idempotent,
    );
    unavailable("reading the token from", &path_url, r)
}

/// The bearer token in an answer of the secret path, or what a person must do.
fn issued_from(s: &Settings, r: Reply, minsecs: i64) -> Result<Issued> {
    let path_url = creds_url(s);
    match r.status {
        200 => {}
        403 | 401 => {
            return Err(Error::perm(format!(
                "Vault refused to read {path_url} ({}): the credential is not stored or not \
                 allowed for this login; {}",
                vault_errors(&r),
                bootstrap_hint(s)
            )))
        }
        404 => {
            return Err(Error::perm(format!(
                "Vault holds no credential at {path_url} ({}): check --credkey {}, or {}",
                vault_errors(&r),
                s.credkey,
                bootstrap_hint(s)
            )))
        }
        _ => {
            return Err(Error::perm(format!(
                "Vault could not provide a token with {minsecs} s left from {path_url} ({}): \
                 lower --minsecs if it exceeds the issuer's token lifetime; otherwise {}",
                vault_errors(&r),
                bootstrap_hint(s)
            )))
        }
    }
    let v = json_of(&r, "reading the token from", &path_url)?;
    let access_token = v["data"]["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .map(Secret::new)
        .ok_or_else(|| {
            Error::data(format!(
                "{path_url} answered without data.access_token; the old token is kept"
            ))
        })?;
    Ok(Issued {
        access_token,
        granted_scope: None,
        requested_scope: Vec::new(),
        from: path_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn krb5_config_puts_ours_first() {
        let ours = Path::new("/home/r/.cache/robot-token/krb5/rdns.conf");
        assert_eq!(
            krb5_config_list(ours, None),
            "/home/r/.cache/robot-token/krb5/rdns.conf:/etc/krb5.conf"
        );
        assert_eq!(
            krb5_config_list(ours, Some(std::ffi::OsStr::new("/k/krb5.conf"))),
            "/home/r/.cache/robot-token/krb5/rdns.conf:/k/krb5.conf"
        );
    }

    #[test]
    fn server_normalisation() {
        let n = normalize_server;
        assert_eq!(
            n("vault.ligo.org").unwrap(),
            (
                "https://vault.ligo.org:8200".into(),
                "vault.ligo.org".into()
            )
        );
        assert_eq!(
            n("vault.example.org:8443").unwrap().0,
            "https://vault.example.org:8443"
        );
        assert_eq!(
            n("https://vault.example.org/").unwrap().0,
            "https://vault.example.org:8200"
        );
        assert_eq!(
            n("https://vault.example.org:443").unwrap().0,
            "https://vault.example.org:443"
        );
        assert_eq!(n("http://localhost:8200").unwrap().1, "localhost");
        assert_eq!(n("[::1]").unwrap().0, "https://[::1]:8200");
        assert_eq!(n("[::1]").unwrap().1, "::1");
        assert!(
            n("http://vault.example.org").is_err(),
            "plain http off loopback"
        );
        assert!(n("vault.example.org/v1").is_err());
        assert!(n("").is_err());
    }

    #[test]
    fn defaults_follow_igwn_robot_get() {
        assert_eq!(
            principal_defaults("robot/ci.example.org@ROBOT.TEST"),
            ("robot/ci.example.org".into(), "robot".into())
        );
        assert_eq!(
            principal_defaults("intruder@ROBOT.TEST"),
            ("intruder".into(), "intruder".into())
        );
        let opts = VaultOptions {
            server: Some("vault.example.org".into()),
            principal: Some("ligo-robot/host.example.org@LIGO.ORG".into()),
            token_file: Some("/run/vt".into()),
            ..VaultOptions::default()
        };
        let s = Settings::from_options(&opts, None).unwrap();
        assert_eq!(s.server, "https://vault.example.org:8200");
        assert_eq!(s.issuer, "default");
        assert_eq!(s.credkey, "ligo-robot/host.example.org");
        assert_eq!(s.role, "ligo-robot");
        assert_eq!(s.kerberos_path, "auth/kerberos-default_ligo-robot");
        assert_eq!(
            s.secret_path,
            "secret/oauth/creds/default/ligo-robot/host.example.org:ligo-robot"
        );
        assert_eq!(s.token_minttl, Duration::from_secs(86400));
        assert_eq!(s.token_ttl, Duration::from_secs(604800));
    }

    #[test]
    fn options_override_the_file() {
        let cli = VaultOptions {
            role: Some("cli-role".into()),
            ..VaultOptions::default()
        };
        let file = VaultOptions {
            server: Some("vault.example.org:1234".into()),
            issuer_name: Some("igwn".into()),
            role: Some("file-role".into()),
            credkey: Some("robot".into()),
            token_file: Some("/run/vt".into()),
            ..VaultOptions::default()
        };
        let s = Settings::from_options(&cli, Some(&file)).unwrap();
        assert_eq!(s.server, "https://vault.example.org:1234");
        assert_eq!(s.role, "cli-role");
        assert_eq!(s.secret_path, "secret/oauth/creds/igwn/robot:cli-role");
    }

    #[test]
    fn file_section_is_checked() {
        let p = Path::new("c.json");
        let ok = br#"{"version":1,"vault":{"server":"v.example.org","issuer":"igwn","token_ttl":"3d","token_minttl":3600}}"#;
        let o = section_of(ok, p).unwrap().unwrap();
        assert_eq!(o.issuer_name.as_deref(), Some("igwn"));
        assert_eq!(o.token_ttl, Some(Duration::from_secs(3 * 86400)));
        assert_eq!(o.token_minttl, Some(Duration::from_secs(3600)));
        assert!(section_of(br#"{"version":1,"client_id":"x"}"#, p)
            .unwrap()
            .is_none());
        let e = section_of(br#"{"version":1,"vault":{"sever":"x"}}"#, p).unwrap_err();
        assert!(e.message().contains("sever"), "{e}");
        assert!(section_of(br#"{"version":1,"vault":"x"}"#, p).is_err());
    }
}
