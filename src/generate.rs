//! `robot-token generate man DIR | completions SHELL`: man pages and shell completions
//! made from the clap definitions, so they never disagree with `--help`. Hidden; used
//! by scripts/package.sh.

use clap::CommandFactory;

use crate::cli::{Cli, Generate, GenerateArgs};
use crate::error::{io_reason, Error, Exit, Result};

pub fn run(args: &GenerateArgs) -> Result<Exit> {
    match &args.what {
        Generate::Man { dir } => {
            let fail = |e: std::io::Error| {
                Error::write(format!(
                    "cannot write man pages to {}: {}",
                    dir.display(),
                    io_reason(&e)
                ))
            };
            std::fs::create_dir_all(dir).map_err(fail)?;
            // One page for robot-token and one per visible command (robot-token-get.1, ...).
            clap_mangen::generate_to(Cli::command(), dir).map_err(fail)?;
        }
        Generate::Completions { shell } => {
            let mut cmd = Cli::command();
            // Into memory first: clap_complete panics on a failed write.
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "robot-token", &mut buf);
            crate::logging::stdout(&String::from_utf8_lossy(&buf));
        }
    }
    Ok(Exit::Ok)
}
