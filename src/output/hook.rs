//! Deploy hooks: a command run after a renewal actually replaced the token (never after
//! a no-op), as certbot's `--deploy-hook`.
//!
//! The command is a shell command line, run as `/bin/sh -c CMD` (certbot does the same):
//! operators write `systemctl reload x && logger renewed`, and a configuration file is
//! already trusted like a crontab (it must not be writable by others). It gets
//! `ROBOT_TOKEN_FILE`, `ROBOT_TOKEN_PROFILE` (only for a profile) and
//! `ROBOT_TOKEN_EXPIRES_AT` (seconds since the epoch), plus `BEARER_TOKEN_FILE` set to
//! the new file and `BEARER_TOKEN` removed, so that WLCG-aware tools inside the hook read
//! the new token and not a stale one from the environment. The token itself is never in
//! its argv or environment. Standard input is /dev/null; output goes where ours goes.
//!
//! A hook that outlives `--hook-timeout` is sent SIGTERM, then SIGKILL 5 s later, with
//! its whole process group. A failed hook is an error (exit 75) but the new token stays.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::{io_reason, Error, Result};

/// What the hook is told about the renewal.
pub struct Renewed<'a> {
    pub file: &'a Path,
    pub profile: Option<&'a str>,
    pub expires: i64,
}

/// The command, shortened for messages.
fn shown(cmd: &str) -> String {
    let one: String = cmd.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 60 {
        format!("{}…", one.chars().take(60).collect::<String>())
    } else {
        one
    }
}

/// Run the deploy hook and wait for it, at most `timeout`.
pub fn run(cmd: &str, r: &Renewed, timeout: Duration) -> Result<()> {
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg(cmd)
        .env("ROBOT_TOKEN_FILE", r.file)
        .env("ROBOT_TOKEN_EXPIRES_AT", r.expires.to_string())
        .env("BEARER_TOKEN_FILE", r.file)
        .env_remove("BEARER_TOKEN")
        .env_remove("ROBOT_TOKEN_PROFILE")
        .stdin(Stdio::null())
        // Its own process group, so that a timeout kills what it started too.
        .process_group(0);
    if let Some(p) = r.profile {
        c.env("ROBOT_TOKEN_PROFILE", p);
    }
    tracing::info!("running deploy hook `{}`", shown(cmd));
    let started = Instant::now();
    let mut child = c.spawn().map_err(|e| {
        Error::temp(format!(
            "the token was renewed, but the deploy hook `{}` could not start: {}",
            shown(cmd),
            io_reason(&e)
        ))
    })?;
    let pgid = child.id() as libc::pid_t;
    let status = match wait_until(&mut child, crate::clock::after(started, timeout)) {
        Some(s) => s,
        None => {
            // SAFETY: kill(2) on our own child's process group; no memory is involved.
            unsafe { libc::kill(-pgid, libc::SIGTERM) };
            let s = match wait_until(&mut child, crate::clock::from_now(Duration::from_secs(5))) {
                Some(s) => s,
                None => {
                    // SAFETY: as above.
                    unsafe { libc::kill(-pgid, libc::SIGKILL) };
                    child.wait().ok().unwrap_or_else(|| ExitStatus::from_raw(9))
                }
            };
            tracing::debug!("deploy hook ended after the timeout: {s}");
            return Err(Error::temp(format!(
                "the token was renewed, but the deploy hook `{}` did not finish within {} s and was killed; \
                 it runs again only after the next renewal",
                shown(cmd),
                timeout.as_secs()
            )));
        }
    };
    if status.success() {
        tracing::info!(
            "deploy hook finished in {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
        return Ok(());
    }
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("failed with exit status {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => "failed".to_string(),
    };
    Err(Error::temp(format!(
        "the token was renewed, but the deploy hook `{}` {how}; it runs again only after the next renewal",
        shown(cmd)
    )))
}

/// `get --dry-run`: does the hook's command resolve? `/bin/sh` must run, and the
/// hook's first word (after `NAME=value` assignments) must be a command `/bin/sh`
/// finds (`command -v`, in this environment); a compound command (`if`, `(`, `{`,
/// quoting or expansions in the first word) is not resolved further. Nothing of the
/// hook itself runs. A hook that does not resolve makes the real run exit 75.
pub fn resolves(cmd: &str) -> Result<String> {
    let word = cmd
        .split_whitespace()
        .find(|w| !is_assignment(w))
        .unwrap_or("");
    let plain = !word.is_empty()
        && !word.starts_with('-')
        && !matches!(
            word,
            "if" | "for" | "while" | "until" | "case" | "!" | "{" | "(" | "exec" | "time"
        )
        && word.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-' | b'+' | b'@' | b':')
        });
    let mut c = Command::new("/bin/sh");
    if plain {
        c.args(["-c", "command -v \"$1\"", "sh", word]);
    } else {
        c.args(["-c", ":"]);
    }
    let out = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| {
            Error::temp(format!(
                "the deploy hook `{}` cannot run: /bin/sh: {}",
                shown(cmd),
                io_reason(&e)
            ))
        })?;
    if !plain {
        return Ok(format!(
            "/bin/sh runs; `{}` is a compound command, not resolved further",
            shown(cmd)
        ));
    }
    if out.status.success() {
        let found = String::from_utf8_lossy(&out.stdout).trim().to_string();
        return Ok(format!(
            "`{word}` resolves to {}",
            if found.is_empty() || found == word {
                "a shell builtin".to_string()
            } else {
                found
            }
        ));
    }
    Err(Error::temp(format!(
        "the deploy hook `{}` would fail: /bin/sh finds no command `{word}` with this PATH \
         ({}); use an absolute path, or set PATH in the crontab",
        shown(cmd),
        std::env::var("PATH").unwrap_or_default()
    )))
}

/// `NAME=value`, a variable assignment in front of a command.
fn is_assignment(w: &str) -> bool {
    match w.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        }
        None => false,
    }
}

/// Wait for the child until `deadline`; `None` if it is still running then.
fn wait_until(child: &mut std::process::Child, deadline: Instant) -> Option<ExitStatus> {
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) => {}
            Err(_) => return child.wait().ok(),
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(now)));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
