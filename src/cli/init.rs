//! `init`'s arguments: the device flow that makes a robot's first credential.

use std::path::PathBuf;

use clap::Args;

pub(super) const INIT_HELP: &str = "Prints the verification URL and a user code (and, on a terminal, a QR code); \
a person opens it, logs in and approves. robot-token polls the issuer meanwhile, then writes the credential \
file (mode 0600) that `robot-token get -c FILE` renews from, and the first token.\n\n\
Exit codes: 0 ok, 64 usage (also: no terminal without --no-tty), 73 cannot write, \
75 temporary failure or the code expired before approval (run init again), 77 the login was denied, 78 configuration.";

#[derive(Debug, Args, Clone)]
pub struct InitArgs {
    /// Issuer URL (its discovery document names the device authorization endpoint).
    #[arg(long, env = "ROBOT_TOKEN_ISSUER", value_name = "URL")]
    pub issuer: String,

    /// OAuth2 client id registered for the device flow.
    #[arg(long, env = "ROBOT_TOKEN_CLIENT_ID", value_name = "ID")]
    pub client_id: String,

    /// File holding the client secret (mode 0600); it is copied into the credential.
    #[arg(long, env = "ROBOT_TOKEN_CLIENT_SECRET_FILE", value_name = "FILE")]
    pub client_secret_file: Option<PathBuf>,

    /// How the client authenticates: basic, post, private_key_jwt or none [default: basic with a secret, private_key_jwt with a key, else none].
    #[arg(long, env = "ROBOT_TOKEN_CLIENT_AUTH", value_parser = ["basic", "post", "private_key_jwt", "none"], value_name = "METHOD")]
    pub client_auth: Option<String>,

    /// PEM private key (RSA, EC P-256/P-384 or Ed25519; mode 0600) for private_key_jwt;
    /// the credential names it.
    #[arg(
        long,
        env = "ROBOT_TOKEN_PRIVATE_KEY_FILE",
        value_name = "FILE",
        conflicts_with = "client_secret_file"
    )]
    pub private_key_file: Option<PathBuf>,

    /// Key id (`kid`) for the client assertion's header.
    #[arg(
        long,
        env = "ROBOT_TOKEN_KID",
        value_name = "KID",
        requires = "private_key_file"
    )]
    pub kid: Option<String>,

    /// Scope to request; repeatable, or space-separated. offline_access is added.
    #[arg(
        long,
        env = "ROBOT_TOKEN_SCOPE",
        value_delimiter = ' ',
        value_name = "S"
    )]
    pub scope: Vec<String>,

    /// Audience to request; repeatable, or space-separated.
    #[arg(
        long,
        env = "ROBOT_TOKEN_AUDIENCE",
        value_delimiter = ' ',
        value_name = "A"
    )]
    pub audience: Vec<String>,

    /// Write nothing (exit 77) unless the issuer grants this scope; repeatable.
    #[arg(
        long,
        env = "ROBOT_TOKEN_REQUIRE_SCOPE",
        value_delimiter = ' ',
        value_name = "S"
    )]
    pub require_scope: Vec<String>,

    /// Credential file to create (JSON, version 1, mode 0600).
    #[arg(short = 'c', long, env = "ROBOT_TOKEN_CREDENTIAL", value_name = "FILE")]
    pub credential: PathBuf,

    /// Token file for the first access token [default: WLCG discovery].
    #[arg(short = 'o', long, env = "ROBOT_TOKEN_OUTFILE", value_name = "PATH")]
    pub outfile: Option<PathBuf>,

    /// Replace an existing credential file.
    #[arg(long)]
    pub force: bool,

    /// Run without a terminal (print the code for someone else to approve).
    #[arg(long)]
    pub no_tty: bool,

    /// Hashed CA directory trusted on top of the system store [default: $X509_CERT_DIR].
    #[arg(long, env = "ROBOT_TOKEN_CAPATH", value_name = "DIR")]
    pub capath: Option<PathBuf>,

    /// PEM file of CA certificates trusted on top of the system store.
    #[arg(long, env = "ROBOT_TOKEN_CAFILE", value_name = "FILE")]
    pub cafile: Option<PathBuf>,

    /// Timeout of each network request.
    #[arg(
        long,
        env = "ROBOT_TOKEN_TIMEOUT",
        default_value = "30s",
        value_name = "DURATION"
    )]
    pub timeout: String,
}
