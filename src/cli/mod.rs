//! Command-line definitions: exactly what the user can type. Every option is defined
//! once here; help, man page and completions come from these definitions.
//! Validation and defaults that need thought live in `config`.
//!
//! One file per command's arguments (`get`, `revoke`, `init`, `inspect`, `monitor`
//! for `status` and `check`, `generate`; `vault`: `get`'s Vault options); this file holds the top level: global
//! options, the list of commands, and their help.

mod generate;
mod get;
mod init;
mod inspect;
mod monitor;
mod revoke;
mod vault;

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

pub use self::generate::{Generate, GenerateArgs};
pub use self::get::{GetArgs, GetCmd};
pub use self::init::InitArgs;
pub use self::inspect::InspectArgs;
pub use self::monitor::{CheckArgs, Selection, StatusArgs};
pub use self::revoke::RevokeCmd;
pub use self::vault::VaultArgs;

use self::get::GET_HELP;
use self::init::INIT_HELP;
use self::monitor::CHECK_HELP;
use self::revoke::REVOKE_HELP;

/// The commands an operator types most: `robot-token --help` shows them, and
/// `--help` (long) with the exit codes. A macro, so that `concat!` can use it.
macro_rules! main_examples {
    () => {
        "\
Examples:
  robot-token get -c ~/.config/robot-token/robot.json     # one robot, from cron
  robot-token get --all                                   # every profile of the config file
  robot-token get --all --dry-run                         # check them without renewing
  robot-token status                                      # what every token looks like now
  robot-token check --all --warning 2h --critical 30m     # Nagios/Icinga plugin
  robot-token inspect /tmp/bt_u$(id -u)                   # decode a token
  robot-token revoke -c ~/.config/robot-token/robot.json  # retire a robot"
    };
}

const MAIN_EXAMPLES: &str = main_examples!();

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
    main_examples!(),
    "\n\n",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_help_has_the_exit_code_table() {
        assert!(LONG_MAIN_HELP.contains(crate::error::Exit::TABLE));
    }

    /// The Vault options, and no others, are in the Vault section of `get --help`
    /// (clap's derive lets a flattened group's heading run on into later options).
    #[test]
    fn only_the_vault_options_are_under_the_vault_heading() {
        use clap::CommandFactory;
        let vault: Vec<String> = VaultArgs::augment_args(clap::Command::new("v"))
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .collect();
        assert_eq!(vault.len(), 11);
        let cli = Cli::command();
        let get = cli.find_subcommand("get").unwrap();
        for a in get.get_arguments() {
            let id = a.get_id().to_string();
            let under_vault = a.get_help_heading() == Some(vault::HEADING);
            assert_eq!(under_vault, vault.contains(&id), "--{id}");
        }
    }

    #[test]
    fn definitions_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
