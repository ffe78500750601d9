//! `get`'s arguments: which profiles to run (`GetCmd`), then every option of one
//! robot's renewal (`GetArgs`). Its own file because `GetArgs` is the longest
//! definition of the command line, and `revoke` and the profiles reuse it whole.

use std::path::PathBuf;

use clap::Args;

use super::vault::VaultArgs;

const EXAMPLES: &str = "\
Examples:
  # every robot of this host, from ~/.config/robot-token/config.toml (4 at a time)
  robot-token get --all

  # one profile, with a deploy hook after each renewal
  robot-token get --profile storage --deploy-hook 'systemctl --user reload xrootd'

  # crontab: keep the WLCG token file valid; renewed when less than 1h (or half
  # the token's lifetime, if shorter) is left
  robot-token get -c ~/.config/robot-token/robot.json

  # before the first cron run: check that line without redeeming or writing anything
  robot-token get --dry-run -c ~/.config/robot-token/robot.json -m 3600

  # client_credentials robot, token for one storage endpoint
  robot-token get --issuer https://iam.example.org/ --client-id robot \\
      --client-secret-file ~/.secrets/robot --scope storage.read:/ \\
      --audience https://storage.example.org -o /tmp/storage.token

  # a CI job: exchange the job's OIDC identity token for a grid token
  robot-token get --ci auto --issuer https://iam.example.org/ --client-id ci-robot \\
      --client-secret-file ci.secret --scope storage.read:/data

  # once, interactively: the first credential through the device flow
  robot-token init --issuer https://iam.example.org/ --client-id robot \\
      --scope storage.read:/ -c ~/.config/robot-token/robot.json

  # look inside the current token
  robot-token inspect";

/// `get`: which profiles to run, then what the command line says for each.
#[derive(Debug, Args, Clone)]
pub struct GetCmd {
    /// Run this profile of the configuration file. (No environment variable:
    /// ROBOT_TOKEN_PROFILE is what deploy hooks receive.)
    #[arg(long, value_name = "NAME", conflicts_with = "all")]
    pub profile: Option<String>,

    /// Run every profile of the configuration file, --jobs at a time.
    #[arg(long)]
    pub all: bool,

    /// Check everything a renewal needs (credential, token file directories, issuer,
    /// TLS, clock, Vault, HTCondor, deploy hook) without redeeming anything or writing
    /// a file; exit with the code the renewal would. One line per failed check.
    #[arg(long)]
    pub dry_run: bool,

    /// How many profiles --all runs at once.
    #[arg(
        long,
        env = "ROBOT_TOKEN_JOBS",
        default_value_t = 4,
        value_name = "N",
        value_parser = clap::value_parser!(u16).range(1..=256)
    )]
    pub jobs: u16,

    #[command(flatten)]
    pub args: GetArgs,
}

pub(super) const GET_HELP: &str = "The token files are every -o (a profile's outfile or outputs), else $BEARER_TOKEN_FILE, \
else $XDG_RUNTIME_DIR/bt_u<euid>, else /tmp/bt_u<euid> (WLCG Bearer Token Discovery). One renewal, when any of \
them is due, replaces them all.\n\nEvery option can also be set by the environment variable shown.\n\n\
Exit codes: 0 ok, 64 usage, 65 bad data, 73 cannot write, 75 temporary failure, 77 a person must act, 78 configuration.";

#[derive(Debug, Args, Clone)]
#[command(after_long_help = EXAMPLES)]
pub struct GetArgs {
    /// Token file to keep fresh; repeatable: all are replaced from one renewal. As root,
    /// PATH:owner=USER,group=GROUP,mode=0640 writes it for another user
    /// [default: WLCG discovery].
    #[arg(
        short = 'o',
        long,
        env = "ROBOT_TOKEN_OUTFILE",
        value_name = "PATH[:owner=U,group=G,mode=M]"
    )]
    pub outfile: Vec<String>,

    /// Renew when the token has less than this left: seconds, or a duration like 1h
    /// [default: 1h, or half the token's lifetime (exp - iat) when shorter].
    #[arg(short = 'm', long, env = "ROBOT_TOKEN_MINSECS", value_name = "SECS")]
    pub minsecs: Option<String>,

    /// Credential file (JSON, version 1): refresh token or client credentials.
    #[arg(short = 'c', long, env = "ROBOT_TOKEN_CREDENTIAL", value_name = "FILE")]
    pub credential: Option<PathBuf>,

    /// Issuer URL, for a client_credentials robot without a credential file.
    #[arg(long, env = "ROBOT_TOKEN_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,

    /// Token endpoint, to skip OpenID discovery.
    #[arg(long, env = "ROBOT_TOKEN_TOKEN_ENDPOINT", value_name = "URL")]
    pub token_endpoint: Option<String>,

    /// OAuth2 client id, for a client_credentials robot without a credential file.
    #[arg(long, env = "ROBOT_TOKEN_CLIENT_ID", value_name = "ID")]
    pub client_id: Option<String>,

    /// File holding the client secret (mode 0600).
    #[arg(long, env = "ROBOT_TOKEN_CLIENT_SECRET_FILE", value_name = "FILE")]
    pub client_secret_file: Option<PathBuf>,

    /// How the client authenticates: basic, post or private_key_jwt [default: the credential's, else basic].
    #[arg(long, env = "ROBOT_TOKEN_CLIENT_AUTH", value_parser = ["basic", "post", "private_key_jwt"], value_name = "METHOD")]
    pub client_auth: Option<String>,

    /// PEM private key (RSA, EC P-256/P-384 or Ed25519; mode 0600) for private_key_jwt
    /// client authentication.
    #[arg(long, env = "ROBOT_TOKEN_PRIVATE_KEY_FILE", value_name = "FILE")]
    pub private_key_file: Option<PathBuf>,

    /// Key id (`kid`) to put in the client assertion's header [default: the credential's].
    #[arg(long, env = "ROBOT_TOKEN_KID", value_name = "KID")]
    pub kid: Option<String>,

    /// Token exchange (RFC 8693): read the subject token from this file.
    #[arg(
        long,
        env = "ROBOT_TOKEN_SUBJECT_TOKEN_FILE",
        value_name = "FILE",
        conflicts_with = "subject_token_env"
    )]
    pub subject_token_file: Option<PathBuf>,

    /// Token exchange (RFC 8693): read the subject token from this environment variable.
    #[arg(long, env = "ROBOT_TOKEN_SUBJECT_TOKEN_ENV", value_name = "NAME")]
    pub subject_token_env: Option<String>,

    /// subject_token_type of the exchange [default: urn:ietf:params:oauth:token-type:jwt].
    #[arg(long, env = "ROBOT_TOKEN_SUBJECT_TOKEN_TYPE", value_name = "URN")]
    pub subject_token_type: Option<String>,

    /// requested_token_type of the exchange [default: none sent].
    #[arg(long, env = "ROBOT_TOKEN_REQUESTED_TOKEN_TYPE", value_name = "URN")]
    pub requested_token_type: Option<String>,

    /// Exchange the CI job's OIDC identity token: github, gitlab (with --subject-token-env) or auto.
    #[arg(long, env = "ROBOT_TOKEN_CI", value_parser = ["github", "gitlab", "auto"], value_name = "SYSTEM")]
    pub ci: Option<String>,

    /// Audience of the GitHub Actions identity token [default: the issuer URL].
    #[arg(long, env = "ROBOT_TOKEN_CI_AUDIENCE", value_name = "A")]
    pub ci_audience: Option<String>,

    /// Fail (exit 77, old token kept) unless the issuer grants this scope; repeatable.
    #[arg(
        long,
        env = "ROBOT_TOKEN_REQUIRE_SCOPE",
        value_delimiter = ' ',
        value_name = "S"
    )]
    pub require_scope: Vec<String>,

    /// Scope to request; repeatable, or space-separated. Overrides the credential's.
    #[arg(
        long,
        env = "ROBOT_TOKEN_SCOPE",
        value_delimiter = ' ',
        value_name = "S"
    )]
    pub scope: Vec<String>,

    /// Audience to request; repeatable, or space-separated. Overrides the credential's.
    #[arg(
        long,
        env = "ROBOT_TOKEN_AUDIENCE",
        value_delimiter = ' ',
        value_name = "A"
    )]
    pub audience: Vec<String>,

    /// Hashed CA directory trusted on top of the system store [default: $X509_CERT_DIR].
    #[arg(long, env = "ROBOT_TOKEN_CAPATH", value_name = "DIR")]
    pub capath: Option<PathBuf>,

    /// PEM file of CA certificates trusted on top of the system store.
    #[arg(long, env = "ROBOT_TOKEN_CAFILE", value_name = "FILE")]
    pub cafile: Option<PathBuf>,

    /// Timeout of each network step (connect, send, answer).
    #[arg(
        long,
        env = "ROBOT_TOKEN_TIMEOUT",
        default_value = "30s",
        value_name = "DURATION"
    )]
    pub timeout: String,

    /// Give up on the whole run, retries and lock waits included, after this long.
    #[arg(
        long,
        env = "ROBOT_TOKEN_DEADLINE",
        default_value = "5m",
        value_name = "DURATION"
    )]
    pub deadline: String,

    /// Shell command run (sh -c) after a renewal replaced the token; gets ROBOT_TOKEN_FILE,
    /// ROBOT_TOKEN_PROFILE, ROBOT_TOKEN_EXPIRES_AT, never the token.
    #[arg(long, env = "ROBOT_TOKEN_DEPLOY_HOOK", value_name = "CMD")]
    pub deploy_hook: Option<String>,

    /// Kill the deploy hook if it runs longer than this.
    #[arg(
        long,
        env = "ROBOT_TOKEN_HOOK_TIMEOUT",
        default_value = "2m",
        value_name = "DURATION"
    )]
    pub hook_timeout: String,

    /// When a renewal is needed, first sleep a random time up to this long (spreads the
    /// load of many hosts whose cron fires at the same minute). A fresh token never waits.
    #[arg(
        long,
        env = "ROBOT_TOKEN_RANDOM_DELAY",
        default_value = "0",
        value_name = "DURATION"
    )]
    pub random_delay: String,

    /// The Vault source, in a help section of its own.
    #[command(flatten)]
    pub vault: VaultArgs,

    /// After each successful run, hand the token to HTCondor: file (the default for a
    /// bare --condor: check the file and show how HTCondor finds it), credd (store it for
    /// jobs' use_oauth_services), vault-storer (HTCondor's Vault credmon).
    #[arg(
        long,
        env = "ROBOT_TOKEN_CONDOR",
        value_name = "MODE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "file",
        value_parser = ["file", "credd", "vault-storer"],
        // Back to the main section: clap's derive leaves the Vault heading set for the
        // options after the flattened group.
        help_heading = None::<&str>
    )]
    pub condor: Option<String>,

    /// --condor=credd: the service name jobs ask for (use_oauth_services = NAME).
    #[arg(long, env = "ROBOT_TOKEN_CONDOR_SERVICE", value_name = "NAME", help_heading = None::<&str>)]
    pub condor_service: Option<String>,

    /// --condor=credd: a handle, for jobs that ask for NAME_HANDLE.
    #[arg(long, env = "ROBOT_TOKEN_CONDOR_HANDLE", value_name = "H", help_heading = None::<&str>)]
    pub condor_handle: Option<String>,
}
