//! Command-line definitions: exactly what the user can type. Every option is defined
//! once here; help, man page and completions come from these definitions.
//! Validation and defaults that need thought live in `config`.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

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

/// Shown by `robot-token --help`: the commands an operator types most.
const MAIN_EXAMPLES: &str = "\
Examples:
  robot-token get -c ~/.config/robot-token/robot.json     # one robot, from cron
  robot-token get --all                                   # every profile of the config file
  robot-token get --all --dry-run                         # check them without renewing
  robot-token status                                      # what every token looks like now
  robot-token check --all --warning 2h --critical 30m     # Nagios/Icinga plugin
  robot-token inspect /tmp/bt_u$(id -u)                   # decode a token
  robot-token revoke -c ~/.config/robot-token/robot.json  # retire a robot";

#[derive(Debug, Parser)]
#[command(
    name = "robot-token",
    version,
    about = "Keep a robot's OAuth2 bearer token fresh: one safe, stateless command for cron",
    after_help = MAIN_EXAMPLES,
    after_long_help = LONG_MAIN_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// Configuration file with [profile.NAME] tables
    /// [default: $XDG_CONFIG_HOME/robot-token/config.toml, then /etc/robot-token/config.toml].
    #[arg(long, env = "ROBOT_TOKEN_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// More output on stderr: -v info, -vv debug. Secrets are never printed.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Only errors on stderr, no warnings.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// `--help` (long) shows the examples and the exit codes (`Exit::TABLE`, kept equal by a test).
const LONG_MAIN_HELP: &str = concat!(
    "\
Examples:
  robot-token get -c ~/.config/robot-token/robot.json     # one robot, from cron
  robot-token get --all                                   # every profile of the config file
  robot-token get --all --dry-run                         # check them without renewing
  robot-token status                                      # what every token looks like now
  robot-token check --all --warning 2h --critical 30m     # Nagios/Icinga plugin
  robot-token inspect /tmp/bt_u$(id -u)                   # decode a token
  robot-token revoke -c ~/.config/robot-token/robot.json  # retire a robot

",
    crate::exit_table!(),
    "

`check` follows the monitoring-plugin convention instead: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."
);

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make sure the token file holds a token with enough time left; renew it if not.
    #[command(after_help = GET_HELP)]
    Get(Box<GetCmd>),
    /// Decode a token: header, claims, times and remaining lifetime.
    Inspect(InspectArgs),
    /// One line per profile (or the default token file): who, for what, until when, last run.
    Status(StatusArgs),
    /// Monitoring plugin (Nagios/Icinga): exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    #[command(after_help = CHECK_HELP)]
    Check(CheckArgs),
    /// Get a robot's first credential: a person approves a device login once (RFC 8628).
    #[command(after_help = INIT_HELP)]
    Init(Box<InitArgs>),
    /// Retire a robot: revoke its refresh token at the issuer (or its Vault token), remove
    /// its token files, and mark the credential file revoked.
    #[command(after_help = REVOKE_HELP)]
    Revoke(Box<Deferred<RevokeCmd>>),
    /// Write the man pages or shell completions (for packagers).
    #[command(hide = true)]
    Generate(GenerateArgs),
}

/// A subcommand whose arguments clap builds only when it is the one that runs (or
/// for its help and man page). `revoke` repeats all of `get`'s options: built
/// eagerly, they cost every fresh `get` a sixth of its instructions.
#[derive(Debug, Clone)]
pub struct Deferred<T>(pub T);

impl<T: Args> Args for Deferred<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_args)
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_args_for_update)
    }
}

impl<T: clap::FromArgMatches> clap::FromArgMatches for Deferred<T> {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(m).map(Deferred)
    }
    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }
}

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

/// Which tokens `status` and `check` look at.
#[derive(Debug, Args, Clone)]
pub struct Selection {
    /// Token file [default: the profiles of the configuration file if there is one, else WLCG discovery].
    #[arg(value_name = "FILE", conflicts_with_all = ["profile", "all"])]
    pub file: Option<PathBuf>,

    /// Only this profile.
    #[arg(long, value_name = "NAME", conflicts_with = "all")]
    pub profile: Option<String>,

    /// Every profile of the configuration file.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args, Clone)]
pub struct StatusArgs {
    #[command(flatten)]
    pub select: Selection,

    /// One JSON array, one object per token, for scripts.
    #[arg(long)]
    pub json: bool,
}

const CHECK_HELP: &str = "Output: one status line with perfdata, e.g.\n  \
ROBOT-TOKEN OK - /tmp/bt_u1000 valid for 52m 1s | remaining=3121s;450;225;0\n\n\
Default thresholds follow each token: T is the margin `get` renews at (a profile's minsecs, \
else min(1h, half the token's lifetime exp - iat)); WARNING below T/4, CRITICAL below T/8 \
(1-hour tokens: 7m30s and 3m45s; 2 hours and longer: 15m and 7m30s).\n\n\
A missing, expired or unusable token is CRITICAL; a failed last renewal is at least WARNING; \
an unreadable configuration or token file is UNKNOWN. -c is --critical here (the \
monitoring-plugin convention): name the token file as an argument.";

#[derive(Debug, Args, Clone)]
pub struct CheckArgs {
    #[command(flatten)]
    pub select: Selection,

    /// WARNING when a token has less than this left [default: a quarter of its renewal
    /// margin: 7m30s for 1-hour tokens, 15m for 2 hours and longer].
    #[arg(short, long, value_name = "DURATION")]
    pub warning: Option<String>,

    /// CRITICAL when a token has less than this left [default: an eighth of its renewal
    /// margin: 3m45s for 1-hour tokens, 7m30s for 2 hours and longer].
    #[arg(short, long, value_name = "DURATION")]
    pub critical: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub what: Generate,
}

#[derive(Debug, Subcommand, Clone)]
pub enum Generate {
    /// Man pages (robot-token.1 and one per command) into DIR.
    Man {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// A completion script for SHELL on stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

const GET_HELP: &str = "The token files are every -o (a profile's outfile or outputs), else $BEARER_TOKEN_FILE, \
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
    /// htvault-config (Vault) server: HOST[:PORT] or URL; https:// and :8200 are added when missing.
    #[arg(
        short = 'a',
        long,
        visible_alias = "vaultserver",
        env = "ROBOT_TOKEN_VAULT_SERVER",
        value_name = "HOST[:PORT]",
        help_heading = "Vault (htvault-config) with a Kerberos keytab"
    )]
    pub vault_server: Option<String>,

    /// Issuer name configured in Vault [default: default].
    #[arg(
        short = 'i',
        long,
        env = "ROBOT_TOKEN_ISSUER_NAME",
        value_name = "NAME",
        help_heading = "Vault (htvault-config) with a Kerberos keytab"
    )]
    pub issuer_name: Option<String>,

    /// Vault role [default: the principal before the first '/', else default].
    #[arg(
        short = 'r',
        long,
        env = "ROBOT_TOKEN_ROLE",
        value_name = "ROLE",
        help_heading = "Vault (htvault-config) with a Kerberos keytab"
    )]
    pub role: Option<String>,

    /// Key of the credential in Vault [default: the principal before '@'].
    #[arg(
        long,
        env = "ROBOT_TOKEN_CREDKEY",
        value_name = "KEY",
        help_heading = "Vault (htvault-config) with a Kerberos keytab"
    )]
    pub credkey: Option<String>,

    /// Kerberos keytab of the robot (mode 0600) [default: $KRB5_KTNAME].
    #[arg(
        short = 'k',
        long,
        env = "ROBOT_TOKEN_KEYTAB",
        value_name = "FILE",
        help_heading = "Vault (htvault-config) with a Kerberos keytab"
    )]
    pub keytab: Option<PathBuf>,

    /// Kerberos principal [default: the keytab's first, with the keytab's realm].
    #[arg(
        long,
        env = "ROBOT_TOKEN_PRINCIPAL",
        value_name = "PRINCIPAL",
        help_heading = "Vault (htvault-config) with a Kerberos keytab"
    )]
    pub principal: Option<String>,

    /// Where the Vault token is cached [default: /tmp/vt_u<euid>].
    #[arg(
        long,
        visible_alias = "vaulttokenfile",
        env = "ROBOT_TOKEN_VAULT_TOKEN_FILE",
        value_name = "PATH",
        help_heading = "Vault (htvault-config) with a Kerberos keytab"
    )]
    pub vault_token_file: Option<PathBuf>,

    /// Log in again when the cached Vault token has less than this left [default: 24h].
    #[arg(
        long,
        visible_alias = "vaulttokenminttl",
        env = "ROBOT_TOKEN_VAULT_TOKEN_MINTTL",
        value_name = "DURATION",
        help_heading = "Vault (htvault-config) with a Kerberos keytab"
    )]
    pub vault_token_minttl: Option<String>,

    /// Longest life of a stored Vault token; longer logins are exchanged for a shorter one [default: 7d].
    #[arg(
        long,
        visible_alias = "vaulttokenttl",
        env = "ROBOT_TOKEN_VAULT_TOKEN_TTL",
        value_name = "DURATION",
        help_heading = "Vault (htvault-config) with a Kerberos keytab"
    )]
    pub vault_token_ttl: Option<String>,

    /// Vault path of the Kerberos login [default: auth/kerberos-%issuer_%role].
    #[arg(
        long,
        visible_alias = "kerbpath",
        env = "ROBOT_TOKEN_KERBEROS_PATH",
        value_name = "TEMPLATE",
        help_heading = "Vault (htvault-config) with a Kerberos keytab"
    )]
    pub kerberos_path: Option<String>,

    /// Vault path of the token [default: secret/oauth/creds/%issuer/%credkey:%role].
    #[arg(
        long,
        visible_alias = "secretpath",
        env = "ROBOT_TOKEN_SECRET_PATH",
        value_name = "TEMPLATE",
        help_heading = "Vault (htvault-config) with a Kerberos keytab"
    )]
    pub secret_path: Option<String>,

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
        value_parser = ["file", "credd", "vault-storer"]
    )]
    pub condor: Option<String>,

    /// --condor=credd: the service name jobs ask for (use_oauth_services = NAME).
    #[arg(long, env = "ROBOT_TOKEN_CONDOR_SERVICE", value_name = "NAME")]
    pub condor_service: Option<String>,

    /// --condor=credd: a handle, for jobs that ask for NAME_HANDLE.
    #[arg(long, env = "ROBOT_TOKEN_CONDOR_HANDLE", value_name = "H")]
    pub condor_handle: Option<String>,
}

const REVOKE_HELP: &str = "Give it the same options as the robot's `get` line (or its --profile). \
OAuth: the refresh token is revoked at the issuer's revocation_endpoint (RFC 7009) with the client's \
authentication; then the token files and robot-token's own files (each file's lock and its record) are removed, and the \
credential file is kept (it may hold a client secret) without its refresh_token and with \"revoked_at\": \
`get` refuses it from then on. Vault: the cached Vault token is revoked (auth/token/revoke-self); with \
--force the refresh token stored in Vault is deleted first, as `htdestroytoken -f` does. A robot without a \
refresh token (client_credentials) has nothing to revoke at the issuer: only its files are removed. \
A second revoke does nothing and exits 0.\n\n\
Exit codes: 0 ok, 64 usage, 65 bad data, 73 cannot write, 75 temporary failure (nothing changed; run \
it again), 77 the issuer or Vault refused (local files kept), 78 configuration.";

/// The `get` options that `revoke` accepts (so that a crontab line can be reused)
/// but does not use: hidden from its help.
const UNUSED_BY_REVOKE: [&str; 18] = [
    "minsecs",
    "subject_token_file",
    "subject_token_env",
    "subject_token_type",
    "requested_token_type",
    "ci",
    "ci_audience",
    "require_scope",
    "scope",
    "audience",
    "deploy_hook",
    "hook_timeout",
    "random_delay",
    "vault_token_minttl",
    "vault_token_ttl",
    "condor",
    "condor_service",
    "condor_handle",
];

fn hide_unused_by_revoke(a: clap::Arg) -> clap::Arg {
    if UNUSED_BY_REVOKE.contains(&a.get_id().as_str()) {
        a.hide(true)
    } else {
        a
    }
}

// `revoke`: which robot, then the options of its `get` line. (No doc comment: it
// would replace the subcommand's about text when the deferred arguments are built.)
#[derive(Debug, Args, Clone)]
#[command(
    // Not get's examples, which the flattened options would bring.
    after_long_help = REVOKE_HELP,
    // One pass over the arguments: a mut_arg per option re-inserts each one, which
    // costs every run (even a fresh `get`) a third of its instructions.
    mut_args(hide_unused_by_revoke)
)]
pub struct RevokeCmd {
    /// Revoke this profile of the configuration file.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// Vault: also delete the refresh token stored in Vault (what `htdestroytoken -f`
    /// does); the robot then needs htgettoken's interactive OIDC flow to work again.
    #[arg(long)]
    pub force: bool,

    // The options of the robot's `get` line: those revoke does not use are hidden and
    // ignored, so that `get` can be replaced by `revoke` in a crontab line.
    #[command(flatten)]
    pub args: GetArgs,
}

const INIT_HELP: &str = "Prints the verification URL and a user code (and, on a terminal, a QR code); \
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_help_has_the_exit_code_table() {
        assert!(LONG_MAIN_HELP.contains(crate::error::Exit::TABLE));
    }

    #[test]
    fn definitions_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
