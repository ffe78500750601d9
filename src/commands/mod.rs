//! The commands: each turns its settings into a run and an exit code. `get` (with
//! `renew`, the renewal's steps, and `dryrun`, the same steps as checks), `init` (the
//! device flow), `revoke`, `inspect` (and `--verify`), `status`/`check` (`monitor`),
//! `generate` and `version`. Commands may use every other folder; nothing else uses
//! them.

pub mod dryrun;
pub mod generate;
pub mod get;
pub mod init;
pub mod inspect;
pub mod monitor;
pub mod renew;
pub mod revoke;
pub mod version;

use crate::error::Exit;

/// `name (code), …` of the profiles that failed, for the summary line of `--all`.
pub fn failed_list(failed: &[(String, Exit)]) -> String {
    let list: Vec<String> = failed
        .iter()
        .map(|(name, exit)| format!("{name} ({})", exit.code()))
        .collect();
    list.join(", ")
}
