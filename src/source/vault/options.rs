//! The Vault settings as typed (or in a credential file's `vault` section), before
//! `Settings::from_options` merges them and applies the defaults. A leaf: the
//! source interface names it.

use std::path::PathBuf;
use std::time::Duration;

/// The Vault settings as given on the command line (or the environment). Every field
/// is optional here: `vault::Settings::resolve` merges them over the credential
/// file's `vault` section and applies the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VaultOptions {
    pub server: Option<String>,
    pub issuer_name: Option<String>,
    pub role: Option<String>,
    pub credkey: Option<String>,
    pub keytab: Option<PathBuf>,
    pub principal: Option<String>,
    pub token_file: Option<PathBuf>,
    pub token_minttl: Option<Duration>,
    pub token_ttl: Option<Duration>,
    pub kerberos_path: Option<String>,
    pub secret_path: Option<String>,
    /// A credential file whose `vault` section holds settings not typed.
    pub credential: Option<PathBuf>,
}

impl VaultOptions {
    /// Was any Vault option given (other than the credential file)?
    pub fn any(&self) -> bool {
        let VaultOptions { credential, .. } = self;
        *self
            != VaultOptions {
                credential: credential.clone(),
                ..VaultOptions::default()
            }
    }
}
