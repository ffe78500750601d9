//! Running HTCondor's commands: found on `$PATH` plus the sbin directories, stdin
//! closed or piped, a timeout, capped and redacted output (`Ran`), never a secret in
//! argv or the environment. Every mode uses it.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{io_reason, Error, Result};
use crate::token;

/// Where HTCondor's commands are found and how long each may run.
#[derive(Debug, Clone)]
pub struct Tools {
    /// Directories searched, `$PATH` style.
    pub path: OsString,
    pub timeout: Duration,
}

impl Tools {
    /// `$PATH`, then `/usr/sbin` and `/sbin`: packages put `condor_store_cred` in
    /// `/usr/sbin`, which cron's default PATH (`/usr/bin:/bin`) lacks.
    pub fn from_env(timeout: Duration) -> Tools {
        let mut path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
        path.push(":/usr/sbin:/sbin");
        Tools { path, timeout }
    }
}

/// Most output kept from one command: enough for any message, bounded for a runaway.
const OUTPUT_CAP: usize = 64 * 1024;

/// A finished (or killed) command.
#[derive(Debug)]
pub struct Ran {
    /// Exit code; None when killed by a signal (our timeout included).
    pub code: Option<i32>,
    pub timed_out: bool,
    pub timeout: Duration,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub(super) fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    pub(super) fn describe(&self) -> String {
        match (self.timed_out, self.code) {
            (true, _) => format!("no answer within {} s, killed", self.timeout.as_secs()),
            (false, Some(c)) => match self.last_line() {
                l if l.is_empty() => format!("exit {c}"),
                l => format!("exit {c}: {l}"),
            },
            (false, None) => "killed by a signal".into(),
        }
    }

    /// The last non-empty line of its output, redacted.
    pub(super) fn last_line(&self) -> String {
        let last = |t: &str| {
            t.lines()
                .rfind(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_string())
        };
        redact(
            &last(&self.stderr)
                .or_else(|| last(&self.stdout))
                .unwrap_or_default(),
        )
    }

    /// With -v, show what the command printed (it may be noisy), redacted.
    pub(super) fn show(&self, name: &str) {
        if !tracing::enabled!(tracing::Level::INFO) {
            return;
        }
        for l in self.stdout.lines().chain(self.stderr.lines()).take(200) {
            if !l.trim().is_empty() {
                tracing::info!("{name}: {}", redact(l));
            }
        }
    }
}

/// Hide anything in a line that looks like a bearer or Vault token: HTCondor's and
/// htgettoken's verbose output is shown to the user, and must never carry a secret.
pub fn redact(line: &str) -> String {
    line.split(' ')
        .map(|w| {
            let core = w.trim_matches(|c: char| "\"',;()[]{}<>".contains(c));
            let jwt =
                core.len() > 40 && core.matches('.').count() == 2 && token::split(core).is_ok();
            let vault = core.len() > 20
                && ["hvs.", "hvb.", "hvr.", "s."]
                    .iter()
                    .any(|p| core.starts_with(p))
                && core
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
            if jwt || vault {
                w.replace(core, "[redacted]")
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Tools {
    /// The executable `name` in our search path.
    pub fn find(&self, name: &str) -> Option<PathBuf> {
        std::env::split_paths(&self.path)
            .filter(|d| !d.as_os_str().is_empty())
            .map(|d| d.join(name))
            .find(|p| {
                std::fs::metadata(p)
                    .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                    .unwrap_or(false)
            })
    }

    /// Run `name args`: stdin closed, or fed `input` through a pipe (the only way a
    /// secret reaches a child); output captured and capped; killed with its process
    /// group after the timeout.
    pub fn run(
        &self,
        name: &str,
        args: &[&str],
        input: Option<&[u8]>,
        env: &[(&str, &OsStr)],
    ) -> Result<Ran> {
        let prog = self.find(name).ok_or_else(|| {
            Error::config(format!(
                "{name} is not on PATH: install HTCondor's tools on this host, or set PATH in the \
                 crontab"
            ))
        })?;
        let mut cmd = Command::new(&prog);
        cmd.args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("PATH", &self.path)
            // A token in our environment is not for HTCondor's helpers.
            .env_remove("BEARER_TOKEN")
            .process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        tracing::debug!("running {} {}", prog.display(), args.join(" "));
        let mut child = cmd.spawn().map_err(|e| {
            Error::config(format!("cannot run {}: {}", prog.display(), io_reason(&e)))
        })?;
        let pid = child.id() as libc::pid_t;
        if let (Some(mut stdin), Some(data)) = (child.stdin.take(), input) {
            let data = zeroize::Zeroizing::new(data.to_vec());
            // A thread, so that a child that never reads cannot block us past the timeout.
            std::thread::spawn(move || {
                let _ = stdin.write_all(&data);
            });
        }
        let (tx, rx) = mpsc::channel();
        for (i, pipe) in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .enumerate()
        {
            let tx = tx.clone();
            if let Some(mut pipe) = pipe {
                std::thread::spawn(move || {
                    let mut kept = Vec::new();
                    let mut buf = [0u8; 8192];
                    loop {
                        match pipe.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                let room = OUTPUT_CAP.saturating_sub(kept.len());
                                kept.extend_from_slice(&buf[..n.min(room)]);
                            }
                        }
                    }
                    let _ = tx.send((i, kept));
                });
            }
        }
        drop(tx);
        let deadline = crate::clock::from_now(self.timeout);
        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() >= deadline => {
                    timed_out = true;
                    // SAFETY: kill(2) on the child's own process group; no memory involved.
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                    break child.wait().ok();
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => break None,
            }
        };
        // Whatever the group left on its pipes; a grandchild that escaped the group
        // and holds them open does not keep us here long.
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let until = crate::clock::from_now(Duration::from_secs(2));
        while let Ok((i, data)) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            if i == 0 {
                out = data;
            } else {
                err = data;
            }
        }
        Ok(Ran {
            code: status.and_then(|s| s.code().or(s.signal().map(|_| -1)).filter(|c| *c >= 0)),
            timed_out,
            timeout: self.timeout,
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
        })
    }
}
