//! `get`'s options for the Vault source (htvault-config with a Kerberos keytab, as
//! htgettoken does it): a group of their own under one help heading, read only by
//! `config::vault_options`.

use std::path::PathBuf;

use clap::Args;

/// The help section of these options.
pub(super) const HEADING: &str = "Vault (htvault-config) with a Kerberos keytab";

#[derive(Debug, Args, Clone)]
#[command(next_help_heading = HEADING)]
pub struct VaultArgs {
    /// htvault-config (Vault) server: HOST[:PORT] or URL; https:// and :8200 are added when missing.
    #[arg(
        short = 'a',
        long,
        visible_alias = "vaultserver",
        env = "ROBOT_TOKEN_VAULT_SERVER",
        value_name = "HOST[:PORT]"
    )]
    pub vault_server: Option<String>,

    /// Issuer name configured in Vault [default: default].
    #[arg(
        short = 'i',
        long,
        env = "ROBOT_TOKEN_ISSUER_NAME",
        value_name = "NAME"
    )]
    pub issuer_name: Option<String>,

    /// Vault role [default: the principal before the first '/', else default].
    #[arg(short = 'r', long, env = "ROBOT_TOKEN_ROLE", value_name = "ROLE")]
    pub role: Option<String>,

    /// Key of the credential in Vault [default: the principal before '@'].
    #[arg(long, env = "ROBOT_TOKEN_CREDKEY", value_name = "KEY")]
    pub credkey: Option<String>,

    /// Kerberos keytab of the robot (mode 0600) [default: $KRB5_KTNAME].
    #[arg(short = 'k', long, env = "ROBOT_TOKEN_KEYTAB", value_name = "FILE")]
    pub keytab: Option<PathBuf>,

    /// Kerberos principal [default: the keytab's first, with the keytab's realm].
    #[arg(long, env = "ROBOT_TOKEN_PRINCIPAL", value_name = "PRINCIPAL")]
    pub principal: Option<String>,

    /// Where the Vault token is cached [default: /tmp/vt_u<euid>].
    #[arg(
        long,
        visible_alias = "vaulttokenfile",
        env = "ROBOT_TOKEN_VAULT_TOKEN_FILE",
        value_name = "PATH"
    )]
    pub vault_token_file: Option<PathBuf>,

    /// Log in again when the cached Vault token has less than this left [default: 24h].
    #[arg(
        long,
        visible_alias = "vaulttokenminttl",
        env = "ROBOT_TOKEN_VAULT_TOKEN_MINTTL",
        value_name = "DURATION"
    )]
    pub vault_token_minttl: Option<String>,

    /// Longest life of a stored Vault token; longer logins are exchanged for a shorter one [default: 7d].
    #[arg(
        long,
        visible_alias = "vaulttokenttl",
        env = "ROBOT_TOKEN_VAULT_TOKEN_TTL",
        value_name = "DURATION"
    )]
    pub vault_token_ttl: Option<String>,

    /// Vault path of the Kerberos login [default: auth/kerberos-%issuer_%role].
    #[arg(
        long,
        visible_alias = "kerbpath",
        env = "ROBOT_TOKEN_KERBEROS_PATH",
        value_name = "TEMPLATE"
    )]
    pub kerberos_path: Option<String>,

    /// Vault path of the token [default: secret/oauth/creds/%issuer/%credkey:%role].
    #[arg(
        long,
        visible_alias = "secretpath",
        env = "ROBOT_TOKEN_SECRET_PATH",
        value_name = "TEMPLATE"
    )]
    pub secret_path: Option<String>,
}
