//! The long-lived credential: a version-1 JSON file (see README, "Credential file").
//!
//! The file is parsed into typed fields for use and kept as its raw JSON object for
//! rewriting, so fields we do not know survive a refresh-token rotation.

use std::fs;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{io_reason, Error, Result};
use crate::exec::ExecSettings;
use crate::secret::Secret;
use crate::store::{self, FileError, WriteMode};

/// A credential file larger than this is not a credential file.
pub const MAX_CREDENTIAL_LEN: usize = 1024 * 1024;

/// How the client proves its identity at the token endpoint (RFC 6749 2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with client_id and client_secret.
    Basic,
    /// client_id and client_secret in the form body.
    Post,
    /// A public client: client_id only.
    None,
    /// A JWT signed with the client's private key (RFC 7523 client assertion).
    PrivateKeyJwt,
}

impl ClientAuth {
    pub fn parse(s: &str) -> Option<ClientAuth> {
        match s {
            "basic" | "client_secret_basic" => Some(ClientAuth::Basic),
            "post" | "client_secret_post" => Some(ClientAuth::Post),
            "none" => Some(ClientAuth::None),
            "private_key_jwt" => Some(ClientAuth::PrivateKeyJwt),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct Credential {
    /// Where it was read from, symlinks resolved, so a rewrite replaces the real file.
    pub path: PathBuf,
    raw: Map<String, Value>,
    pub issuer: Option<String>,
    pub token_endpoint: Option<String>,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub client_auth: Option<ClientAuth>,
    pub refresh_token: Option<Secret>,
    pub scope: Vec<String>,
    pub audience: Vec<String>,
    /// `"grant"`: which grant to use when there is no refresh token.
    pub grant: Option<CredGrant>,
    /// Where a token exchange finds its subject token.
    pub subject: Option<Subject>,
    pub subject_token_type: Option<String>,
    pub requested_token_type: Option<String>,
    /// The private key for `private_key_jwt`, resolved against the file's directory.
    pub private_key_file: Option<PathBuf>,
    pub kid: Option<String>,
    /// `"grant": "exec"`: how to run the command that obtains the token.
    pub exec: Option<ExecSettings>,
}

/// The `"grant"` field of a credential file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredGrant {
    RefreshToken,
    ClientCredentials,
    TokenExchange,
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

impl std::fmt::Debug for Credential {
    // The raw JSON holds secrets: show only what identifies the credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("path", &self.path)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("refresh_token", &self.refresh_token)
            .finish_non_exhaustive()
    }
}

impl Drop for Credential {
    // The typed secrets zeroize themselves; wipe their copies in the raw JSON too.
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for key in ["client_secret", "refresh_token"] {
            if let Some(Value::String(s)) = self.raw.get_mut(key) {
                s.zeroize();
            }
        }
    }
}

/// A space-separated string or an array of strings, as a list.
pub fn string_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(s.split_whitespace().map(str::to_string).collect()),
        Value::Array(a) => {
            let mut out = Vec::new();
            for item in a {
                out.extend(item.as_str()?.split_whitespace().map(str::to_string));
            }
            Some(out)
        }
        _ => None,
    }
}

impl Credential {
    /// Read and check a credential file: owned by the caller, no group or other bits.
    pub fn load(path: &Path) -> Result<Credential> {
        let (real, data) = read_file(path)?;
        Credential::parse(&data, &real)
    }

    /// Parse the bytes of a credential file. Never panics; errors name the field.
    pub fn parse(data: &[u8], path: &Path) -> Result<Credential> {
        let bad = |what: String| {
            Error::data(format!(
                "malformed credential file {}: {what}",
                path.display()
            ))
        };
        let raw: Map<String, Value> = match serde_json::from_slice(data) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(bad("expected a JSON object".into())),
            Err(e) => {
                return Err(bad(format!(
                    "invalid JSON at line {} column {}",
                    e.line(),
                    e.column()
                )))
            }
        };
        match raw.get("version") {
            Some(v) if v.as_u64() == Some(1) => {}
            Some(_) => return Err(bad("\"version\" must be 1".into())),
            None => return Err(bad("missing \"version\": 1".into())),
        }
        let string = |key: &str| -> Result<Option<String>> {
            match raw.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(bad(format!("\"{key}\" must be a string"))),
            }
        };
        let list = |key: &str| -> Result<Vec<String>> {
            match raw.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(v) => string_list(v).ok_or_else(|| {
                    bad(format!("\"{key}\" must be a string or an array of strings"))
                }),
            }
        };
        // "grant": "exec": a command obtains the token; issuer and client are needed
        // only to redeem a refresh token it prints, and are checked then.
        let exec = match string("grant")?.as_deref() {
            Some("exec") => {
                let settings: ExecSettings = serde_json::from_value(Value::Object(raw.clone()))
                    .map_err(|e| bad(format!("exec grant: {e}")))?;
                settings
                    .validate()
                    .map_err(|e| bad(format!("exec grant: {e}")))?;
                Some(settings)
            }
            _ => None,
        };
        let client_id = match string("client_id")? {
            Some(id) => id,
            // Empty: the exec command's refresh token cannot be redeemed (checked then).
            None if exec.is_some() => String::new(),
            None => return Err(bad("missing \"client_id\"".into())),
        };
        let issuer = string("issuer")?;
        let token_endpoint = string("token_endpoint")?;
        if issuer.is_none() && token_endpoint.is_none() && exec.is_none() {
            return Err(bad("needs \"issuer\" or \"token_endpoint\"".into()));
        }
        let client_auth = match string("client_auth")? {
            None => None,
            Some(s) => Some(ClientAuth::parse(&s).ok_or_else(|| {
                bad(format!(
                    "\"client_auth\" is {s:?}; expected \"basic\", \"post\", \"private_key_jwt\" or \"none\""
                ))
            })?),
        };
        let grant = match string("grant")?.as_deref() {
            None => None,
            Some("refresh_token") => Some(CredGrant::RefreshToken),
            Some("client_credentials") => Some(CredGrant::ClientCredentials),
            Some("token_exchange") => Some(CredGrant::TokenExchange),
            Some("exec") => None,
            Some(g) => {
                return Err(bad(format!(
                    "\"grant\" is {g:?}; expected \"refresh_token\", \"client_credentials\", \"token_exchange\" or \"exec\""
                )))
            }
        };
        // Relative paths in the file mean relative to the file, not to cron's cwd.
        let dir = path.parent().unwrap_or(Path::new("."));
        let rel = |p: String| dir.join(p);
        let subject = match (string("subject_token_file")?, string("subject_token_env")?) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "give \"subject_token_file\" or \"subject_token_env\", not both".into(),
                ))
            }
            (Some(f), None) => Some(Subject::File(rel(f))),
            (None, Some(e)) => Some(Subject::Env(e)),
            (None, None) => None,
        };
        let private_key_file = string("private_key_file")?.map(rel);
        if client_auth == Some(ClientAuth::PrivateKeyJwt) && private_key_file.is_none() {
            return Err(bad(
                "\"client_auth\": \"private_key_jwt\" needs \"private_key_file\"".into(),
            ));
        }
        Ok(Credential {
            grant,
            subject,
            subject_token_type: string("subject_token_type")?,
            requested_token_type: string("requested_token_type")?,
            private_key_file,
            kid: string("kid")?,
            path: path.to_path_buf(),
            issuer,
            token_endpoint,
            client_id,
            client_secret: string("client_secret")?.map(Secret::new),
            client_auth,
            refresh_token: string("refresh_token")?.map(Secret::new),
            scope: list("scope")?,
            audience: list("audience")?,
            exec,
            raw,
        })
    }

    /// The file's new content with `refresh_token` replaced; every other field,
    /// known or not, is kept in its place.
    pub fn render_with_refresh_token(&self, rt: &Secret) -> Vec<u8> {
        let mut raw = self.raw.clone();
        raw.insert(
            "refresh_token".into(),
            Value::String(rt.expose().to_string()),
        );
        let mut out = serde_json::to_vec_pretty(&Value::Object(raw)).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Persist a rotated refresh token (atomically, mode 0600) and use it from now on.
    /// Prepare the rewrite of this credential before its refresh token is sent
    /// (see `store::prepare`): the temp file in its real directory, with room for
    /// the file plus a refresh token of up to 16 KiB. Fails with exit 73, or 77
    /// under the trust rule for root, naming the directory and the fix.
    pub fn prepare_rewrite(&self) -> Result<store::Prepared> {
        let len = fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        store::prepare(&self.path, len + 16 * 1024, WriteMode::default()).map_err(|e| {
            let dir = self
                .path
                .parent()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|| ".".into());
            let user = store::user_name(store::euid());
            let fix = match &e {
                store::FileError::UntrustedDir { .. } => format!(
                    "move the credential into a directory that only root can write, or run as the user who owns {dir}"
                ),
                store::FileError::Io { err, .. } if err.raw_os_error() == Some(libc::ENOSPC)
                    || err.raw_os_error() == Some(libc::EDQUOT) =>
                {
                    format!("free space on the file system of {dir}")
                }
                _ => format!(
                    "make {dir} writable by {user}, or move the credential into a directory {user} owns"
                ),
            };
            let msg = format!(
                "cannot prepare the rewrite of credential {} ({e}): the issuer replaces the refresh token \
                 on every use, so the new one must be saved; {fix}. Nothing was sent; the credential is unchanged",
                self.path.display()
            );
            match e {
                store::FileError::UntrustedDir { .. } => Error::perm(msg),
                _ => Error::write(msg),
            }
        })
    }

    /// Save a new refresh token through a prepared rewrite.
    pub fn store_refresh_token(&mut self, prepared: store::Prepared, rt: Secret) -> Result<()> {
        let bytes = zeroize::Zeroizing::new(self.render_with_refresh_token(&rt));
        prepared.commit(&bytes).map_err(|e| {
            Error::write(format!(
                "the issuer rotated the refresh token but it could not be saved ({e}); \
                 the credential {} must be re-bootstrapped",
                self.path.display()
            ))
        })?;
        self.raw.insert(
            "refresh_token".into(),
            Value::String(rt.expose().to_string()),
        );
        self.refresh_token = Some(rt);
        Ok(())
    }
}

/// Read a credential file with its safety checks (owned by the caller, no group or
/// other bits, at most 1 MiB): its real path (symlinks resolved) and its bytes.
pub fn read_file(path: &Path) -> Result<(PathBuf, zeroize::Zeroizing<Vec<u8>>)> {
    let real = fs::canonicalize(path).map_err(|e| {
        Error::config(format!(
            "cannot read credential file {}: {}",
            path.display(),
            io_reason(&e)
        ))
    })?;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&real)
        .map_err(|e| {
            Error::config(format!(
                "cannot read credential file {}: {}",
                real.display(),
                io_reason(&e)
            ))
        })?;
    let meta = file.metadata().map_err(|e| {
        Error::config(format!(
            "cannot read credential file {}: {}",
            real.display(),
            io_reason(&e)
        ))
    })?;
    if !meta.is_file() {
        return Err(Error::config(format!(
            "credential file {} is not a regular file",
            real.display()
        )));
    }
    store::check_private(&real, &meta).map_err(|e| match e {
        FileError::ForeignOwner { .. } => Error::perm(format!("unsafe credential file: {e}")),
        _ => Error::perm(format!("unsafe credential file: {e}")),
    })?;
    let mut data = zeroize::Zeroizing::new(Vec::new());
    file.take(MAX_CREDENTIAL_LEN as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| {
            Error::config(format!(
                "cannot read credential file {}: {}",
                real.display(),
                io_reason(&e)
            ))
        })?;
    if data.len() > MAX_CREDENTIAL_LEN {
        return Err(Error::data(format!(
            "credential file {} is larger than 1 MiB",
            real.display()
        )));
    }
    Ok((real, data))
}

/// Read a client secret from its own file (same safety rules as the credential).
pub fn read_secret_file(path: &Path) -> Result<Secret> {
    let meta = fs::metadata(path).map_err(|e| {
        Error::config(format!(
            "cannot read client secret file {}: {}",
            path.display(),
            io_reason(&e)
        ))
    })?;
    store::check_private(path, &meta)
        .map_err(|e| Error::perm(format!("unsafe client secret file: {e}")))?;
    let mut data = String::new();
    fs::File::open(path)
        .and_then(|f| f.take(64 * 1024).read_to_string(&mut data))
        .map_err(|e| {
            Error::config(format!(
                "cannot read client secret file {}: {}",
                path.display(),
                io_reason(&e)
            ))
        })?;
    let secret = Secret::new(data.trim_end_matches(['\n', '\r']).to_string());
    data.clear();
    if secret.is_empty() {
        return Err(Error::data(format!(
            "client secret file {} is empty",
            path.display()
        )));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Credential> {
        Credential::parse(s.as_bytes(), Path::new("cred.json"))
    }

    #[test]
    fn full_example() {
        let c = parse(
            r#"{"version":1,"issuer":"https://iam.example.org/","client_id":"robot",
               "client_secret":"s","client_auth":"post","refresh_token":"r",
               "scope":"storage.read:/ compute.create","audience":["https://a","b"],
               "x-site":{"keep":true}}"#,
        )
        .unwrap();
        assert_eq!(c.client_auth, Some(ClientAuth::Post));
        assert_eq!(c.scope, vec!["storage.read:/", "compute.create"]);
        assert_eq!(c.audience, vec!["https://a", "b"]);
        let out = String::from_utf8(c.render_with_refresh_token(&Secret::new("r2"))).unwrap();
        assert!(out.contains("\"x-site\""), "{out}");
        assert!(out.contains("\"r2\""));
        // Field order survives.
        assert!(out.find("\"version\"").unwrap() < out.find("\"x-site\"").unwrap());
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(r#"{"version":1,"issuer":"https://x","client_id":5}"#).unwrap_err();
        assert!(e.message().contains("client_id"), "{e}");
        let e =
            parse(r#"{"version":1,"issuer":"https://x","client_id":"a","scope":7}"#).unwrap_err();
        assert!(e.message().contains("scope"), "{e}");
        let e = parse(r#"{"version":2}"#).unwrap_err();
        assert!(e.message().contains("version"), "{e}");
        let e = parse(r#"{"version":1,"client_id":"a"}"#).unwrap_err();
        assert!(e.message().contains("issuer"), "{e}");
        assert!(parse("[").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn exchange_and_private_key_fields() {
        let c = Credential::parse(
            br#"{"version":1,"issuer":"https://x","client_id":"a","grant":"token_exchange",
                "subject_token_file":"sub.jwt","subject_token_type":"urn:t","requested_token_type":"urn:r",
                "client_auth":"private_key_jwt","private_key_file":"keys/k.pem","kid":"k1"}"#,
            Path::new("/etc/robot/cred.json"),
        )
        .unwrap();
        assert_eq!(c.grant, Some(CredGrant::TokenExchange));
        assert_eq!(c.subject, Some(Subject::File("/etc/robot/sub.jwt".into())));
        assert_eq!(c.private_key_file, Some("/etc/robot/keys/k.pem".into()));
        assert_eq!(c.client_auth, Some(ClientAuth::PrivateKeyJwt));
        assert_eq!(c.kid.as_deref(), Some("k1"));
        assert_eq!(c.subject_token_type.as_deref(), Some("urn:t"));
        let c = parse(
            r#"{"version":1,"issuer":"https://x","client_id":"a","subject_token_env":"ID_TOKEN"}"#,
        )
        .unwrap();
        assert_eq!(c.subject, Some(Subject::Env("ID_TOKEN".into())));
        for bad in [
            r#"{"version":1,"issuer":"https://x","client_id":"a","grant":"magic"}"#,
            r#"{"version":1,"issuer":"https://x","client_id":"a","subject_token_file":"f","subject_token_env":"E"}"#,
            r#"{"version":1,"issuer":"https://x","client_id":"a","client_auth":"private_key_jwt"}"#,
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.exit(), crate::error::Exit::Data, "{bad}");
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let c = parse(
            r#"{"version":1,"issuer":"https://x","client_id":"a","client_secret":"TOPSECRET","refresh_token":"REFRESHME"}"#,
        )
        .unwrap();
        let dbg = format!("{:?}", c.client_secret);
        assert!(!dbg.contains("TOPSECRET"));
        let dbg = format!("{:?}", c.refresh_token);
        assert!(!dbg.contains("REFRESHME"));
    }
}
