//! `inspect`'s arguments: which token to decode, and what `--verify` checks.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args, Clone)]
pub struct InspectArgs {
    /// Token file, or - for stdin [default: $BEARER_TOKEN, $BEARER_TOKEN_FILE, WLCG discovery].
    #[arg(value_name = "FILE|-")]
    pub file: Option<PathBuf>,

    /// Print {"header":…,"claims":…,"expires_in":N} (with --verify, also "verify":{…}).
    #[arg(long)]
    pub json: bool,

    /// Verify the token: signature against the JWKS of the issuer in its iss (https),
    /// iss, exp and nbf. Exit 0 valid, 1 expired, 77 a check failed, 75 keys unreachable;
    /// 65 (with or without --verify) a token whose exp is unusable.
    #[arg(long, env = "ROBOT_TOKEN_VERIFY")]
    pub verify: bool,

    /// With --verify: the token must come from this issuer.
    #[arg(long, env = "ROBOT_TOKEN_VERIFY_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,

    /// With --verify: the token's aud must hold A (or the WLCG "any" audience); repeatable.
    #[arg(
        long,
        env = "ROBOT_TOKEN_VERIFY_AUDIENCE",
        value_delimiter = ' ',
        value_name = "A"
    )]
    pub audience: Vec<String>,

    /// With --verify: the token's scopes must allow S (WLCG rules: storage.read:/foo allows
    /// storage.read:/foo/bar); repeatable, or space-separated.
    #[arg(
        long,
        env = "ROBOT_TOKEN_VERIFY_SCOPE",
        value_delimiter = ' ',
        value_name = "S"
    )]
    pub require_scope: Vec<String>,

    /// With --verify: hashed CA directory trusted on top of the system store [default: $X509_CERT_DIR].
    #[arg(long, env = "ROBOT_TOKEN_CAPATH", value_name = "DIR")]
    pub capath: Option<PathBuf>,

    /// With --verify: PEM file of CA certificates trusted on top of the system store.
    #[arg(long, env = "ROBOT_TOKEN_CAFILE", value_name = "FILE")]
    pub cafile: Option<PathBuf>,

    /// With --verify: timeout of each network step.
    #[arg(
        long,
        env = "ROBOT_TOKEN_TIMEOUT",
        default_value = "30s",
        value_name = "DURATION"
    )]
    pub timeout: String,
}
