//! The exec source: a site's own command obtains the token (a site SSO helper, a
//! secrets manager, `oidc-token` of a running oidc-agent, `htgettoken`), in the manner
//! of kubectl's exec credential plugins and AWS `credential_process`.
//!
//! The command runs without a shell, with stdin on /dev/null, in its own process
//! group (killed whole on timeout), with a cleaned environment plus `ROBOT_TOKEN_EXEC_*`
//! context variables, and with its output capped. It prints either a raw JWT, or JSON
//! `{"access_token": …, "refresh_token": …, "expires_in": …}`; with only a refresh
//! token the caller redeems it at the configured issuer.
//!
//! Its stderr may hold secrets: it is shown only at `-v`, and in errors only its first
//! line, both passed through [`redact`].

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::{io_reason, Error, Result};
use crate::secret::{fingerprint, Secret};
use crate::token;

/// Default time the command may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Most of stdout we read: a JSON answer with two tokens is a few KiB.
pub const MAX_STDOUT: usize = 256 * 1024;
/// Most of stderr we keep.
pub const MAX_STDERR: usize = 64 * 1024;

/// Variables copied from robot-token's environment to the command's, when set:
/// what a helper needs to find its tools, its home and a Kerberos cache, nothing
/// that holds a token.
pub const PASSED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "XDG_RUNTIME_DIR",
    "KRB5CCNAME",
];

/// How to run the command: the same fields in a JSON credential file or a TOML profile.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ExecSettings {
    /// Program and arguments, run without a shell; the program is looked up in `PATH`.
    pub command: Vec<String>,
    /// `"30s"`, `"2m"`, or seconds.
    #[serde(default, deserialize_with = "de_timeout")]
    pub timeout: Option<Duration>,
    /// Fixed variables for the command (not secrets: they show in `ps e`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Names of further variables to copy from robot-token's environment (e.g. OIDC_SOCK).
    #[serde(default)]
    pub pass_env: Vec<String>,
}

fn de_timeout<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Duration>, D::Error> {
    use serde::de::Error as _;
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => crate::clock::parse_duration(&s)
            .map(Some)
            .map_err(D::Error::custom),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| D::Error::custom("timeout must be a whole number of seconds"))
            .and_then(|s| crate::clock::duration_secs(s).map_err(D::Error::custom))
            .map(Some),
        Some(_) => Err(D::Error::custom(
            "timeout must be a duration such as \"30s\"",
        )),
    }
}

impl ExecSettings {
    /// Check what serde cannot: a non-empty command, a positive timeout, sane names.
    pub fn validate(&self) -> std::result::Result<(), String> {
        match self.command.first() {
            None => return Err("\"command\" must name a program".into()),
            Some(p) if p.is_empty() => return Err("\"command\" must name a program".into()),
            _ => {}
        }
        if self.timeout.is_some_and(|t| t.is_zero()) {
            return Err("\"timeout\" must be positive".into());
        }
        for name in self.env.keys().chain(self.pass_env.iter()) {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                return Err(format!("{name:?} is not an environment variable name"));
            }
        }
        Ok(())
    }

    pub fn program(&self) -> &str {
        self.command.first().map(String::as_str).unwrap_or("")
    }
}

/// What the run tells the command through `ROBOT_TOKEN_EXEC_*`.
#[derive(Debug, Default)]
pub struct ExecContext {
    pub issuer: Option<String>,
    pub scope: Vec<String>,
    pub audience: Vec<String>,
    pub minsecs: i64,
    pub credential: Option<PathBuf>,
    pub outfile: Option<PathBuf>,
}

/// What the command printed.
#[derive(Debug)]
pub enum Printed {
    Access {
        token: Secret,
        expires_in: Option<i64>,
    },
    /// Only a refresh token: the caller redeems it.
    Refresh(Secret),
}

/// Replace what may be a secret in a line of the command's output by its fingerprint.
///
/// A word (a run of letters, digits and `-_.+/=~`) is replaced by `[sha256:XXXXXXXX]`
/// when it starts with `eyJ` (a JWT or base64 JSON), or when one of its `/`-separated
/// parts is at least 20 characters long and mixes letters and digits (base64, hex,
/// UUID-like tokens). Paths and ordinary words stay readable.
pub fn redact(line: &str) -> String {
    fn secret_like(w: &str) -> bool {
        if w.len() >= 8 && w.starts_with("eyJ") {
            return true;
        }
        w.split('/').any(|p| {
            p.len() >= 20
                && p.bytes().any(|b| b.is_ascii_digit())
                && p.bytes().any(|b| b.is_ascii_alphabetic())
        })
    }
    let is_word = |c: char| c.is_ascii_alphanumeric() || "-_.+/=~".contains(c);
    let mut out = String::with_capacity(line.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if secret_like(word) {
            out.push_str(&format!("[sha256:{}]", fingerprint(word.as_bytes())));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in line.chars() {
        if is_word(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(if c.is_control() { ' ' } else { c });
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The first non-empty line of stderr, redacted, as a message suffix.
fn stderr_hint(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    match text.lines().map(str::trim).find(|l| !l.is_empty()) {
        Some(l) => {
            let l: String = l.chars().take(300).collect();
            format!(" (stderr: {})", redact(&l))
        }
        None => String::new(),
    }
}

/// Read a pipe into a capped buffer on a thread; `true` when the cap was passed.
fn reader<R: Read + Send + 'static>(mut r: R, cap: usize) -> mpsc::Receiver<(Vec<u8>, bool)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let mut over = false;
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) if buf.len() + n > cap => {
                    buf.extend_from_slice(&chunk[..cap - buf.len()]);
                    over = true;
                    break;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let _ = tx.send((buf, over));
    });
    rx
}

fn kill_group(pid: u32) {
    // SAFETY: kill(2) with a negative pid signals the process group we created
    // (process_group(0) makes the child its leader); no memory is involved.
    unsafe {
        libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
    }
}

/// Run the command and parse what it printed. The old token is never touched here.
pub fn run(s: &ExecSettings, ctx: &ExecContext, deadline: Instant) -> Result<Printed> {
    let program = s.program().to_string();
    let timeout = s
        .timeout
        .unwrap_or(DEFAULT_TIMEOUT)
        .min(deadline.saturating_duration_since(Instant::now()));
    let mut cmd = Command::new(&program);
    cmd.args(&s.command[1..])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for name in PASSED_ENV
        .iter()
        .copied()
        .chain(s.pass_env.iter().map(String::as_str))
    {
        if let Some(v) = std::env::var_os(name) {
            cmd.env(name, v);
        }
    }
    cmd.envs(&s.env);
    let verbose = tracing::enabled!(tracing::Level::INFO);
    let mut context = vec![
        ("ROBOT_TOKEN_EXEC_VERSION", "1".to_string()),
        ("ROBOT_TOKEN_EXEC_MINSECS", ctx.minsecs.to_string()),
        ("ROBOT_TOKEN_EXEC_VERBOSE", u8::from(verbose).to_string()),
    ];
    let mut opt = |k, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            context.push((k, v));
        }
    };
    opt("ROBOT_TOKEN_EXEC_ISSUER", ctx.issuer.clone());
    opt("ROBOT_TOKEN_EXEC_SCOPE", Some(ctx.scope.join(" ")));
    opt("ROBOT_TOKEN_EXEC_AUDIENCE", Some(ctx.audience.join(" ")));
    opt(
        "ROBOT_TOKEN_EXEC_CREDENTIAL",
        ctx.credential.as_ref().map(|p| p.display().to_string()),
    );
    opt(
        "ROBOT_TOKEN_EXEC_OUTFILE",
        ctx.outfile.as_ref().map(|p| p.display().to_string()),
    );
    cmd.envs(context);

    tracing::info!(
        "running the exec command {program} (timeout {} s)",
        timeout.as_secs()
    );
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| {
        Error::config(format!(
            "cannot start the exec command {program:?}: {}; check \"command\"",
            io_reason(&e)
        ))
    })?;
    let pid = child.id();
    let out_rx = reader(child.stdout.take().expect("piped stdout"), MAX_STDOUT);
    let err_rx = reader(child.stderr.take().expect("piped stderr"), MAX_STDERR);
    let (status_tx, status_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = status_tx.send(child.wait());
    });
    let end = crate::clock::after(started, timeout);
    let left = || end.saturating_duration_since(Instant::now());
    let status = status_rx.recv_timeout(left());
    // The command has exited (or not): its output must close before the time is up
    // too, or a background child of it holds the pipes.
    let stdout = status
        .as_ref()
        .ok()
        .and_then(|_| out_rx.recv_timeout(left()).ok());
    let stderr_now = stdout
        .as_ref()
        .and_then(|_| err_rx.recv_timeout(left()).ok());
    let timed_out = status.is_err() || stdout.is_none() || stderr_now.is_none();
    if timed_out {
        // Only now: the group still exists (its leader is unreaped or a member holds
        // a pipe), so its id cannot have been reused.
        kill_group(pid);
    }
    let stderr = match stderr_now {
        Some(e) => e.0,
        None => err_rx
            .recv_timeout(Duration::from_millis(500))
            .map(|e| e.0)
            .unwrap_or_default(),
    };
    if verbose {
        for line in String::from_utf8_lossy(&stderr).lines().take(50) {
            tracing::info!("exec {program}: {}", redact(line));
        }
    }
    let hint = stderr_hint(&stderr);
    if timed_out {
        return Err(Error::temp(format!(
            "the exec command {program} did not finish within {} s and was killed{hint}; the old token is kept",
            timeout.as_secs()
        )));
    }
    let (out, over) = stdout.unwrap_or_default();
    let out = zeroize::Zeroizing::new(out);
    // Checked before the exit status: a command cut off at the cap dies of SIGPIPE.
    if over {
        return Err(Error::data(format!(
            "the exec command {program} printed more than {} KiB, not a token{hint}; the old token is kept",
            MAX_STDOUT / 1024
        )));
    }
    let status = match status {
        Ok(Ok(st)) => st,
        _ => {
            return Err(Error::temp(format!(
                "cannot wait for the exec command {program}{hint}; the old token is kept"
            )))
        }
    };
    if !status.success() {
        let how = match (status.code(), status.signal()) {
            (Some(c), _) => format!("exited with status {c}"),
            (None, Some(sig)) => format!("was killed by signal {sig}"),
            _ => "failed".to_string(),
        };
        return Err(Error::temp(format!(
            "the exec command {program} {how}{hint}; the old token is kept"
        )));
    }
    tracing::debug!(
        "the exec command {program} finished in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    parse_output(&out).map_err(|what| {
        Error::data(format!(
            "the exec command {program} printed {what}: it must print a JWT, or JSON with \
             access_token or refresh_token{hint}; the old token is kept"
        ))
    })
}

/// Parse the command's stdout. Never quotes it: it may hold a secret.
pub fn parse_output(out: &[u8]) -> std::result::Result<Printed, String> {
    let Ok(text) = std::str::from_utf8(out) else {
        return Err("output that is not text".into());
    };
    let text = token::trim(text);
    if text.is_empty() {
        return Err("nothing".into());
    }
    if text.starts_with('{') {
        let resp = crate::source::oauth::parse_token_response(text.as_bytes())
            .map_err(|e| format!("JSON that is unusable ({e})"))?;
        return match (resp.access_token, resp.refresh_token) {
            (Some(token), _) => Ok(Printed::Access {
                token,
                expires_in: resp.expires_in,
            }),
            (None, Some(rt)) => Ok(Printed::Refresh(rt)),
            (None, None) => Err("JSON without access_token or refresh_token".into()),
        };
    }
    if text.lines().count() > 1 {
        return Err(format!(
            "{} lines of text, neither a JWT nor JSON",
            text.lines().count()
        ));
    }
    token::split(text)
        .map_err(|_| format!("{} bytes that are neither a JWT nor JSON", text.len()))?;
    Ok(Printed::Access {
        token: Secret::new(text),
        expires_in: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_rule() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let r = redact(&format!("error: token {jwt} rejected"));
        assert!(!r.contains("eyJ"), "{r}");
        assert!(
            r.starts_with("error: token [sha256:") && r.ends_with("] rejected"),
            "{r}"
        );
        let r = redact("refresh=Zk3j9aQ2LmP0xY7wV5tR8sN1 at /usr/local/bin/site-token");
        assert!(!r.contains("Zk3j9aQ2"), "{r}");
        assert!(r.contains("/usr/local/bin/site-token"), "{r}");
        let r = redact("uuid 123e4567-e89b-12d3-a456-426614174000 x");
        assert!(!r.contains("426614174000"), "{r}");
        for keep in [
            "cannot connect to vault.example.org:8200: connection refused",
            "no such file /home/robot2/.config/site/robot.conf",
            "Error: agent not running (OIDC_SOCK unset)",
        ] {
            assert_eq!(redact(keep), keep);
        }
        assert_eq!(redact("a\tb\x1b[31m"), "a b [31m");
    }

    #[test]
    fn output_forms() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjF9.c2ln";
        assert!(matches!(
            parse_output(format!("{jwt}\n").as_bytes()),
            Ok(Printed::Access { .. })
        ));
        let j = format!(r#"{{"access_token":"{jwt}","expires_in":"60"}}"#);
        match parse_output(j.as_bytes()) {
            Ok(Printed::Access { token, expires_in }) => {
                assert_eq!(token.expose(), jwt);
                assert_eq!(expires_in, Some(60));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_output(br#"{"refresh_token":"r"}"#),
            Ok(Printed::Refresh(_))
        ));
        // Both: the access token is used; the refresh token stays the command's.
        let both = format!(r#"{{"access_token":"{jwt}","refresh_token":"r"}}"#);
        assert!(matches!(
            parse_output(both.as_bytes()),
            Ok(Printed::Access { .. })
        ));
        for bad in [
            &b""[..],
            b"\n\n",
            b"<html>login</html>",
            b"{\"access_token\": 5}",
            b"{\"token_type\":\"Bearer\"}",
            b"{\"access_token\": \"ey",
            b"a.b.c\nd.e.f",
            b"\xff\xfe",
        ] {
            let e = parse_output(bad).unwrap_err();
            assert!(!e.contains("login"), "{e}");
        }
    }

    #[test]
    fn settings_from_json_and_validation() {
        let s: ExecSettings = serde_json::from_str(
            r#"{"version":1,"grant":"exec","command":["/bin/x","-r"],"timeout":"2m","env":{"A":"b"},"pass_env":["OIDC_SOCK"]}"#,
        )
        .unwrap();
        assert_eq!(s.timeout, Some(Duration::from_secs(120)));
        assert_eq!(s.pass_env, vec!["OIDC_SOCK"]);
        assert!(s.validate().is_ok());
        let s: ExecSettings = serde_json::from_str(r#"{"command":["x"],"timeout":5}"#).unwrap();
        assert_eq!(s.timeout, Some(Duration::from_secs(5)));
        assert!(
            serde_json::from_str::<ExecSettings>(r#"{"command":["x"],"timeout":"soon"}"#).is_err()
        );
        let s: ExecSettings = serde_json::from_str(r#"{"command":[]}"#).unwrap();
        assert!(s.validate().is_err());
        let s: ExecSettings =
            serde_json::from_str(r#"{"command":["x"],"env":{"A=B":"c"}}"#).unwrap();
        assert!(s.validate().is_err());
    }
}
