//! robot-token: keep a robot's OAuth2 bearer token fresh from cron.
//!
//! The folders are the roles of the data path (`get`: what was typed → settings → is
//! the token fresh? → a source → the token files → HTCondor and the hook):
//!
//! - `cli/`: what can be typed (clap); `config/`: what a run runs with, built in one
//!   place from options, environment and profiles (`config::profile`);
//! - `commands/`: one module per command; `renew` holds the renewal's steps, `dryrun`
//!   the same steps as checks;
//! - `source/`: where a token comes from, behind `source::obtain`: `credential` (the
//!   file), `oauth` (grants, client authentication, exchange, device flow,
//!   revocation), `vault` (htvault-config with a keytab), `exec` (a site's command);
//! - `output/`: where it goes: token files (`target`, `discovery`), `condor`, `hook`,
//!   and `state` for `status`;
//! - shared, at the top: `store/` (every file read or written safely, and locks),
//!   `token`, `scope`, `secret`, `error`, `http`, `issuer`, `verify`, `jws`, `clock`,
//!   `signals`, `logging`.
//!
//! Imports point one way: commands → config → cli, sources, outputs → shared; a
//! source or output never reads the whole configuration (tests/layout.rs checks it).

pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod error;
pub mod http;
pub mod issuer;
pub mod jws;
pub mod logging;
pub mod output;
pub mod scope;
pub mod secret;
pub mod signals;
pub mod source;
pub mod store;
pub mod token;
pub mod verify;

use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command};
use crate::commands::{generate, get, init, inspect, monitor, revoke, version};
use crate::error::{Error, Exit, Result};

/// Parse, run, print the one-line error, return the exit code.
pub fn main() -> ExitCode {
    // Not dumpable: no core file (which would hold the refresh token and the Basic
    // header), no ptrace and no /proc/PID/environ for other processes of this user.
    // SAFETY: prctl with PR_SET_DUMPABLE takes plain integers.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    // Matches as well as the parsed struct: profiles need to know which options were
    // typed on the command line (they override the profile) and which are defaults.
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => return clap_exit(e),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return clap_exit(e),
    };
    logging::init(cli.verbose, cli.quiet);
    let code = match run(&cli, &matches) {
        Ok(code) => code,
        Err(e) => {
            logging::error_line(e.message());
            e.exit().code()
        }
    };
    ExitCode::from(code)
}

/// Run the command; the exit code (`check` has the monitoring-plugin codes, 0-3).
fn run(cli: &Cli, matches: &ArgMatches) -> Result<u8> {
    let config = cli.config.as_ref();
    match &cli.command {
        Command::Get(cmd) => {
            get::run(config, cmd, matches.subcommand_matches("get")).map(Exit::code)
        }
        Command::Inspect(args) => inspect::run(args).map(Exit::code),
        Command::Status(args) => monitor::status(config, args).map(Exit::code),
        Command::Check(args) => Ok(monitor::check(config, args)),
        Command::Init(args) => init::run(args).map(|_| Exit::Ok.code()),
        Command::Revoke(cmd) => {
            revoke::run(config, &cmd.0, matches.subcommand_matches("revoke")).map(Exit::code)
        }
        Command::Generate(args) => generate::run(args).map(Exit::code),
    }
}

/// Help and version are success; every other parse failure is a usage error (64),
/// reported on one line.
fn clap_exit(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        // Our own text: it probes for the GSSAPI library, which only --version does.
        ErrorKind::DisplayVersion => {
            logging::stdout(&version::text());
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(Exit::Usage.code())
        }
        _ if monitor::is_check_invocation() => {
            // A monitoring plugin's usage error is UNKNOWN (3), on stdout as one status line.
            let first = clap_line(&e);
            logging::stdout(&format!(
                "ROBOT-TOKEN UNKNOWN - {first} (see robot-token check --help)\n"
            ));
            ExitCode::from(monitor::UNKNOWN)
        }
        _ => {
            let first = clap_line(&e);
            let err = Error::usage(format!("{first} (see robot-token --help)"));
            logging::error_line(err.message());
            ExitCode::from(Exit::Usage.code())
        }
    }
}

/// clap's error as one line: its first line, and its tips ("a similar argument exists:
/// '--credential'"), which come on lines of their own.
pub fn clap_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut out = lines
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_string();
    for tip in lines.filter_map(|l| l.strip_prefix("tip: ")) {
        out.push_str("; ");
        out.push_str(tip);
    }
    out
}
