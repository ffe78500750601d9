//! What every source is given (`Settings`, `Context`) and gives back (`Issued`):
//! the interface between the renewal and the sources, apart from the dispatch in
//! `source/mod.rs`, so that a source can use it without a cycle.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::http::Http;
use crate::secret::Secret;
use crate::source::exec::ExecSettings;
use crate::source::oauth::exchange::ExchangeOptions;
use crate::source::oauth::ClientAuth;
use crate::source::vault::options::VaultOptions;
use crate::store::{self, FileError};

/// Where the long-lived credential comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A version-1 credential file.
    File(PathBuf),
    /// A client given by options: issuer, client id and a secret file or private
    /// key; client_credentials, or a token exchange when a subject token is given.
    Client {
        issuer: Option<String>,
        client_id: String,
        secret_file: Option<PathBuf>,
    },
    /// A command obtains the token (profiles; a credential file says `"grant": "exec"`).
    Exec(Box<ExecSettings>),
    /// An htvault-config (Vault) server, logged in to with a Kerberos keytab
    /// (see `vault`). The settings typed; a credential file (`vault` section) may
    /// add the rest when the run needs it.
    Vault(VaultOptions),
}

/// What a source is given: which source, and what the request asks for.
#[derive(Debug, Clone)]
pub struct Settings {
    pub kind: Source,
    pub token_endpoint: Option<String>,
    pub client_auth: Option<ClientAuth>,
    pub scope: Vec<String>,
    pub audience: Vec<String>,
    pub private_key_file: Option<PathBuf>,
    pub kid: Option<String>,
    pub exchange: ExchangeOptions,
}

/// A token a source obtained, not yet checked or installed.
#[derive(Debug)]
pub struct Issued {
    pub access_token: Secret,
    /// What the issuer says it granted, when it says (`scope` of the response).
    pub granted_scope: Option<String>,
    /// What was asked for, for the narrowing check.
    pub requested_scope: Vec<String>,
    /// Where it came from, for messages (a token endpoint or Vault URL).
    pub from: String,
}

/// What a source needs from the run besides its configuration.
pub struct Context<'a> {
    pub http: &'a Http,
    /// Locks already held for the token files: a credential with one of these lock
    /// paths must not be locked twice.
    pub token_locks: &'a [PathBuf],
    /// The first token file (for an exec command's context).
    pub outfile: &'a Path,
    pub deadline: std::time::Instant,
    /// Seconds the new token must have left, for sources that decide that themselves
    /// (Vault's `minimum_seconds`, an exec command): `--minsecs`, else the default rule.
    pub minsecs: i64,
    /// `minsecs` is the default rule's (no `--minsecs`): a source that cannot give that
    /// much may give less rather than fail.
    pub minsecs_is_default: bool,
}

impl<'a> Context<'a> {
    /// A context with the default margin; callers set `minsecs` when they know more.
    pub fn new(
        http: &'a Http,
        token_locks: &'a [PathBuf],
        outfile: &'a Path,
        deadline: std::time::Instant,
    ) -> Context<'a> {
        Context {
            http,
            token_locks,
            outfile,
            deadline,
            minsecs: crate::token::DEFAULT_MINSECS,
            minsecs_is_default: true,
        }
    }

    /// The lock of `file` (`what` names it in errors), unless this run already holds
    /// it through a token file that shares it.
    pub fn lock(&self, file: &Path, what: &str) -> Result<Option<store::Lock>> {
        let path = store::lock_path(file).map_err(|e| Error::write(format!("{what}: {e}")))?;
        if self.holds(&path) {
            return Ok(None);
        }
        store::lock(&path, self.deadline)
            .map(Some)
            .map_err(|e| match e {
                FileError::LockTimeout(_) => Error::temp(e.to_string()),
                e => Error::write(format!("{what}: {e}")),
            })
    }

    /// Does this run already hold the lock at `path`?
    pub fn holds(&self, path: &Path) -> bool {
        self.token_locks.iter().any(|l| l == path)
    }
}
