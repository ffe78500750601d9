//! WLCG Bearer Token Discovery: where a token lives by default.
//!
//! Writing: `$BEARER_TOKEN_FILE`, else `$XDG_RUNTIME_DIR/bt_u<euid>`, else
//! `/tmp/bt_u<euid>`. Reading adds `$BEARER_TOKEN` (the token itself) in front.

use std::path::PathBuf;

use crate::store::euid;

/// Where a reader finds the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// `$BEARER_TOKEN` holds the token itself.
    Env,
    File(PathBuf),
}

fn var(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// The file a writer replaces when no `--outfile` is given.
pub fn token_file() -> PathBuf {
    if let Some(p) = var("BEARER_TOKEN_FILE") {
        return PathBuf::from(p);
    }
    default_file()
}

/// The discovery default without `$BEARER_TOKEN_FILE`.
pub fn default_file() -> PathBuf {
    let name = format!("bt_u{}", euid());
    match var("XDG_RUNTIME_DIR") {
        Some(dir) => PathBuf::from(dir).join(name),
        None => PathBuf::from("/tmp").join(name),
    }
}

/// The location a reader uses: the first of `$BEARER_TOKEN`, `$BEARER_TOKEN_FILE`,
/// `$XDG_RUNTIME_DIR/bt_u<euid>` and `/tmp/bt_u<euid>` that is set, or exists.
pub fn reader_location() -> Found {
    if var("BEARER_TOKEN").is_some() {
        return Found::Env;
    }
    if let Some(p) = var("BEARER_TOKEN_FILE") {
        return Found::File(PathBuf::from(p));
    }
    let name = format!("bt_u{}", euid());
    if let Some(dir) = var("XDG_RUNTIME_DIR") {
        let p = PathBuf::from(dir).join(&name);
        if p.exists() {
            return Found::File(p);
        }
    }
    Found::File(PathBuf::from("/tmp").join(name))
}

/// The interactive-session default that shadows a cron-written `/tmp` file.
pub fn xdg_runtime_file() -> Option<PathBuf> {
    var("XDG_RUNTIME_DIR").map(|d| PathBuf::from(d).join(format!("bt_u{}", euid())))
}
