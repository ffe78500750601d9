//! `generate`'s arguments: man pages or shell completions, for packagers.

use std::path::PathBuf;

use clap::{Args, Subcommand};

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
