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
            let mut cmd = Cli::command().disable_help_subcommand(true);
            cmd.build();
            man_pages(cmd, dir).map_err(fail)?;
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

/// clap_mangen's pages, each with a synopsis that names every option's value
/// (`[-o|--outfile PATH]...`): clap_mangen's own lists bare option names.
fn man_pages(cmd: clap::Command, dir: &std::path::Path) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        man_pages(sub, dir)?;
    }
    let usage = synopsis(&cmd);
    clap_mangen::Man::new(cmd.override_usage(usage)).generate_to(dir)?;
    Ok(())
}

/// `robot-token get [-o|--outfile PATH]... [-m|--minsecs SECS] ... [FILE]`.
pub fn synopsis(cmd: &clap::Command) -> String {
    use clap::ArgAction;
    let mut words = vec![cmd
        .get_bin_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_string()];
    let value = |a: &clap::Arg| {
        a.get_value_names()
            .map(|v| v.join(" "))
            .unwrap_or_else(|| a.get_id().as_str().to_uppercase())
    };
    let (positionals, options): (Vec<&clap::Arg>, Vec<&clap::Arg>) = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .partition(|a| a.is_positional());
    for a in options {
        let name = match (a.get_short(), a.get_long()) {
            (Some(s), Some(l)) => format!("-{s}|--{l}"),
            (Some(s), None) => format!("-{s}"),
            (None, Some(l)) => format!("--{l}"),
            (None, None) => continue,
        };
        let takes = a.get_num_args().is_some_and(|n| n.takes_values());
        let optional_value = a.get_num_args().is_some_and(|n| n.min_values() == 0);
        let mut w = match (takes, optional_value) {
            (false, _) => name,
            (true, true) => format!("{name}[={}]", value(a)),
            (true, false) => format!("{name} {}", value(a)),
        };
        if !a.is_required_set() {
            w = format!("[{w}]");
        }
        if matches!(a.get_action(), ArgAction::Append | ArgAction::Count) {
            w.push_str("...");
        }
        words.push(w);
    }
    for a in positionals {
        let v = value(a);
        words.push(if a.is_required_set() {
            v
        } else {
            format!("[{v}]")
        });
    }
    if cmd.has_subcommands() {
        words.push("COMMAND".into());
    }
    words.join(" ")
}
