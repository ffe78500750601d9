//! The long-lived credential: a version-1 JSON file (see README, "Credential file").
//!
//! The file is parsed into typed fields for use and kept as its original bytes for
//! rewriting: a rotation changes the `refresh_token` value and nothing else, so
//! unknown fields, number spellings, escapes and layout survive (see `json_edit`).

pub mod json_edit;

use std::fs;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::error::{io_reason, Error, Result};
use crate::secret::Secret;
use crate::source::credential::json_edit::Edit;
use crate::source::exec::ExecSettings;
use crate::source::oauth::exchange::Subject;
use crate::source::oauth::ClientAuth;
use crate::store::{self, FileError, WriteMode};

/// A credential file larger than this is not a credential file.
pub const MAX_CREDENTIAL_LEN: usize = 1024 * 1024;

/// Every top-level field robot-token reads or writes in a credential file (the exec
/// grant's and the Vault section's included).
pub const KNOWN_FIELDS: [&str; 22] = [
    "revoked_at",
    "version",
    "issuer",
    "token_endpoint",
    "client_id",
    "client_secret",
    "client_auth",
    "private_key_file",
    "kid",
    "refresh_token",
    "grant",
    "subject_token_file",
    "subject_token_env",
    "subject_token_type",
    "requested_token_type",
    "scope",
    "audience",
    "command",
    "timeout",
    "env",
    "pass_env",
    "vault",
];

/// Fields robot-token does not know are kept, but one that is a near miss of a known
/// field that is absent (`refresh_tokn`, `client_secert`) is a typo that silently
/// changes the grant (no refresh token: client_credentials), so it is an error (78)
/// naming the field meant.
fn check_field_names(raw: &Map<String, Value>, path: &Path) -> Result<()> {
    for k in raw.keys() {
        if KNOWN_FIELDS.contains(&k.as_str()) {
            continue;
        }
        if let Some(meant) = crate::error::suggest(k, &KNOWN_FIELDS) {
            if !raw.contains_key(meant) {
                return Err(Error::config(format!(
                    "credential file {}: unknown field {k:?}: did you mean {meant:?}? Rename it \
                     (fields robot-token does not use are kept, but not one this close to one it uses)",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

#[derive(Clone)]
pub struct Credential {
    /// Where it was read from, symlinks resolved, so a rewrite replaces the real file.
    pub path: PathBuf,
    /// The file as read (or as last written): the base of every rewrite.
    text: Zeroizing<Vec<u8>>,
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
    /// RFC 7009 revocation endpoint, when discovery cannot name it.
    pub revocation_endpoint: Option<String>,
    /// Set by `robot-token revoke`: the robot is retired and `get` refuses the file.
    pub revoked_at: Option<String>,
}

/// The `"grant"` field of a credential file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredGrant {
    RefreshToken,
    ClientCredentials,
    TokenExchange,
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

/// The members robot-token writes itself: each may appear once at the top level, or
/// a rewrite could not tell which one to change.
pub const OWNED_FIELDS: [&str; 2] = ["refresh_token", "revoked_at"];

/// The parsed JSON while the typed fields are taken from it: its copies of the
/// secrets are wiped on the way out, like the typed ones.
struct Parsed(Map<String, Value>);

impl Drop for Parsed {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for key in ["client_secret", "refresh_token"] {
            if let Some(Value::String(s)) = self.0.get_mut(key) {
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
        let parsed = match serde_json::from_slice(data) {
            Ok(Value::Object(m)) => Parsed(m),
            Ok(_) => return Err(bad("expected a JSON object".into())),
            Err(e) => {
                return Err(bad(format!(
                    "invalid JSON at line {} column {}",
                    e.line(),
                    e.column()
                )))
            }
        };
        let raw = &parsed.0;
        // Refused now, before anything is sent: after a rotation it would be too late
        // to find that the file cannot be rewritten.
        let members = json_edit::scan(data).map_err(|e| bad(e.to_string()))?;
        for key in OWNED_FIELDS {
            if members.count(key) > 1 {
                return Err(bad(format!(
                    "\"{key}\" appears {} times; keep exactly one",
                    members.count(key)
                )));
            }
        }
        match raw.get("version") {
            Some(v) if v.as_u64() == Some(1) => {}
            Some(_) => return Err(bad("\"version\" must be 1".into())),
            None => return Err(bad("missing \"version\": 1".into())),
        }
        check_field_names(raw, path)?;
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
            revocation_endpoint: string("revocation_endpoint")?,
            revoked_at: revoked_at(&parsed.0),
            text: Zeroizing::new(data.to_vec()),
        })
    }

    /// The file's new content with the `refresh_token` value replaced (or the member
    /// added): every other byte stays as the user wrote it.
    pub fn render_with_refresh_token(&self, rt: &Secret) -> Result<Zeroizing<Vec<u8>>> {
        let value = json_edit::json_string(rt.expose());
        self.render(&[Edit::Set("refresh_token", &value)])
    }

    /// The file's new content for a retired credential: `refresh_token` removed and a
    /// `revoked_at` field (the time given, as a string) set; every other byte kept,
    /// the client secret included, since the operator may still need it.
    pub fn render_revoked(&self, revoked_at: &str) -> Result<Zeroizing<Vec<u8>>> {
        let at = json_edit::json_string(revoked_at);
        self.render(&revoked_edits(&at))
    }

    fn render(&self, edits: &[Edit]) -> Result<Zeroizing<Vec<u8>>> {
        json_edit::apply(&self.text, edits).map_err(|e| {
            Error::data(format!(
                "cannot rewrite the credential file {}: {e}",
                self.path.display()
            ))
        })
    }

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

    /// Save a new refresh token through a prepared rewrite (atomically, mode 0600)
    /// and use it from now on.
    pub fn store_refresh_token(&mut self, prepared: store::Prepared, rt: Secret) -> Result<()> {
        let bytes = match self.render_with_refresh_token(&rt) {
            Ok(b) => b,
            // `parse` scanned this very text, so this cannot happen; but the old
            // refresh token is already dead at the issuer: keep the new one, even at
            // the price of the file's layout.
            Err(e) => {
                tracing::warn!("{}; writing it out in full instead", e.message());
                self.render_full(&rt)?
            }
        };
        prepared.commit(&bytes).map_err(|e| {
            Error::write(format!(
                "the issuer rotated the refresh token but it could not be saved ({e}); \
                 the credential {} must be re-bootstrapped",
                self.path.display()
            ))
        })?;
        self.text = bytes;
        self.refresh_token = Some(rt);
        Ok(())
    }

    /// Retire the credential on disk (see [`Credential::render_revoked`]); the old
    /// file stays untouched when that fails.
    pub fn store_revoked(&mut self, revoked_at: &str) -> Result<()> {
        let bytes = self.render_revoked(revoked_at)?;
        self.write(&bytes).map_err(|e| {
            Error::write(format!(
                "cannot rewrite the credential file {}: {e}",
                self.path.display()
            ))
        })?;
        self.text = bytes;
        self.refresh_token = None;
        Ok(())
    }

    fn write(&self, bytes: &[u8]) -> std::result::Result<(), FileError> {
        store::atomic_write(&self.path, bytes, WriteMode::default())
    }

    /// The whole file written anew from its parsed values (key order kept): the last
    /// resort when a surgical edit is impossible.
    fn render_full(&self, rt: &Secret) -> Result<Zeroizing<Vec<u8>>> {
        let mut parsed = match serde_json::from_slice(&self.text) {
            Ok(Value::Object(m)) => Parsed(m),
            _ => {
                return Err(Error::data(format!(
                    "cannot rewrite the credential file {}: it is no longer a JSON object",
                    self.path.display()
                )))
            }
        };
        parsed.0.insert(
            "refresh_token".into(),
            Value::String(rt.expose().to_string()),
        );
        let mut out = Zeroizing::new(Vec::with_capacity(
            self.text.len() * 2 + rt.expose().len() * 6 + 64,
        ));
        let _ = serde_json::to_writer_pretty(&mut *out, &parsed.0);
        out.push(b'\n');
        Ok(out)
    }
}

/// The edits that retire a credential file: `refresh_token` removed, `revoked_at`
/// (`at`, JSON text) set.
fn revoked_edits(at: &[u8]) -> [Edit<'_>; 2] {
    [Edit::Remove("refresh_token"), Edit::Set("revoked_at", at)]
}

/// Retire a credential file whose bytes are `data` (`robot-token revoke`), whether or
/// not it parses as an OAuth2 credential (a `vault` section does not): the same
/// surgical edits as [`Credential::render_revoked`], written atomically (mode 0600).
pub fn mark_revoked(path: &Path, data: &[u8], revoked_at: &str) -> Result<()> {
    let at = json_edit::json_string(revoked_at);
    let bytes = json_edit::apply(data, &revoked_edits(&at)).map_err(|e| {
        Error::data(format!(
            "cannot rewrite the credential file {}: {e}",
            path.display()
        ))
    })?;
    store::atomic_write(path, &bytes, WriteMode::default()).map_err(|e| {
        Error::write(format!(
            "the credential {} could not be marked revoked ({e}); run revoke again",
            path.display()
        ))
    })
}

/// `"revoked_at"` of a credential file's JSON object: a retired robot's file.
fn revoked_at(raw: &Map<String, Value>) -> Option<String> {
    match raw.get("revoked_at")? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        v => Some(v.to_string()),
    }
}

/// When `robot-token revoke` retired the credential file whose bytes are `data`.
pub fn revoked_at_in(data: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(raw)) => {
            let parsed = Parsed(raw);
            revoked_at(&parsed.0)
        }
        _ => None, // the parser names what is wrong with it
    }
}

/// A credential file `robot-token revoke` retired: `get` refuses it (exit 77), before
/// anything is sent, and says how to give the robot a credential again.
pub fn refuse_revoked(data: &[u8], path: &Path) -> Result<()> {
    match revoked_at_in(data) {
        None => Ok(()),
        Some(at) => Err(Error::perm(format!(
            "the credential {} was revoked at {at} (robot-token revoke): this robot is retired; \
             remove its cron line, or give it a new credential with robot-token init --force",
            path.display()
        ))),
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
    let cannot = |e: std::io::Error| {
        Error::config(format!(
            "cannot read credential file {}: {}",
            real.display(),
            io_reason(&e)
        ))
    };
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&real)
        .map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(Error::config(format!(
            "credential file {} is not a regular file",
            real.display()
        )));
    }
    store::check_private(&real, &meta)
        .map_err(|e| Error::perm(format!("unsafe credential file: {e}")))?;
    let mut data = zeroize::Zeroizing::new(Vec::new());
    file.take(MAX_CREDENTIAL_LEN as u64 + 1)
        .read_to_end(&mut data)
        .map_err(cannot)?;
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
    let cannot = |e: FileError| match e {
        FileError::Io { err, .. } => Error::config(format!(
            "cannot read client secret file {}: {}{}",
            path.display(),
            io_reason(&err),
            if err.kind() == std::io::ErrorKind::NotFound {
                format!(
                    ": put the client secret there (one line, `install -m 600 /dev/stdin {}`), \
                     or check the path",
                    path.display()
                )
            } else {
                String::new()
            }
        )),
        e => Error::config(format!("client secret file: {e}")),
    };
    let opened = store::open_regular(path).map_err(cannot)?;
    store::check_private(path, &opened.1)
        .map_err(|e| Error::perm(format!("unsafe client secret file: {e}")))?;
    let data = store::read_capped(path, opened, 64 * 1024).map_err(cannot)?;
    let text = std::str::from_utf8(&data)
        .map_err(|_| Error::data(format!("client secret file {} is not text", path.display())))?;
    let secret = Secret::new(text.trim_end_matches(['\n', '\r']).to_string());
    if secret.is_empty() {
        return Err(Error::data(format!(
            "client secret file {} is empty",
            path.display()
        )));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests;
