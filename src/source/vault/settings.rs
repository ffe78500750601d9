//! What the Vault source runs with: the typed options merged over the credential
//! file's `vault` section, with htgettoken's defaults (server, issuer, role, credkey,
//! the Kerberos and secret paths, the Vault token file and its lifetimes).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::http;
use crate::secret;
use crate::source::interface::Source;
use crate::store;

use super::keytab;
use super::options::VaultOptions;

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
pub(super) const MAX_VAULT_TOKEN_LEN: usize = 16 * 1024;

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

    pub(super) fn url(&self, path: &str) -> String {
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
