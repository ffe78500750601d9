//! robot-token: keep a robot's OAuth2 bearer token fresh from cron.
//!
//! The data path, one module per step:
//! `cli` → `config` → `discovery` → `token` (fresh? stop) → `store` (lock) →
//! `source` (`credential` → `oauth` over `http`, or `vault` with `keytab` and
//! `gssapi`) → `store` (atomic replace) → `condor` (`--condor`: hand the token to
//! HTCondor).

pub mod assertion;
pub mod cli;
pub mod condor;
pub mod config;
pub mod credential;
pub mod discovery;
pub mod error;
pub mod exchange;
pub mod exec;
pub mod gssapi;
pub mod http;
pub mod init;
pub mod inspect;
pub mod keytab;
pub mod logging;
pub mod oauth;
pub mod output;
pub mod renew;
pub mod scope;
pub mod secret;
pub mod source;
pub mod store;
pub mod token;
pub mod vault;
pub mod verify;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::{Error, Exit, Result};

/// Parse, run, print the one-line error, return the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return clap_exit(e),
    };
    logging::init(cli.verbose, cli.quiet);
    let exit = match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("robot-token: error: {}", e.message());
            e.exit()
        }
    };
    ExitCode::from(exit.code())
}

fn run(cli: &Cli) -> Result<Exit> {
    match &cli.command {
        Command::Get(args) => {
            let cfg = config::GetConfig::from_args(args)?;
            let outcome = renew::run(&cfg)?;
            // After a renewal or a reuse: the token file is fresh, and stays so
            // whatever the hand-off does. The first token file is the one handed off.
            if let Some(mode) = &cfg.condor {
                let mut cfg = cfg.clone();
                if let Some(first) = outcome.files.first() {
                    cfg.outfile = first.clone();
                }
                condor::run(&cfg, mode)?;
            }
            Ok(Exit::Ok)
        }
        Command::Inspect(args) => inspect::run(args),
        Command::Init(args) => init::run(args).map(|_| Exit::Ok),
    }
}

/// Help and version are success; every other parse failure is a usage error (64),
/// reported on one line.
fn clap_exit(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(Exit::Usage.code())
        }
        _ => {
            let text = e.render().to_string();
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            let err = Error::usage(format!("{first} (see robot-token --help)"));
            eprintln!("robot-token: error: {}", err.message());
            ExitCode::from(Exit::Usage.code())
        }
    }
}
