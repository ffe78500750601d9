//! `--condor=vault-storer`: check HTCondor's `SEC_CREDENTIAL_GETTOKEN_OPTS` against
//! our Vault options, then run HTCondor's Vault credential storer with our Kerberos
//! cache, as `igwn-robot-get --condor` does.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::error::{io_reason, Error, Result};

use super::tools::{redact, Tools};

/// What the vault-storer mode needs from the Vault source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultStorer {
    /// The Vault server: a host, `host:port` or a URL (the Vault source gives
    /// `https://host:8200`); compared as htgettoken resolves it.
    pub vault_server: String,
    /// The htvault-config issuer name (`-i`), also the credd service name.
    pub issuer: String,
    pub role: String,
    pub credkey: String,
    /// The Kerberos credential cache our keytab login used.
    pub ccache: PathBuf,
}

/// `--credkey`, `--role` and `--vaultserver` as htgettoken options in
/// `SEC_CREDENTIAL_GETTOKEN_OPTS`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GettokenOpts {
    pub credkey: Option<String>,
    pub role: Option<String>,
    pub vaultserver: Option<String>,
}

/// Parse htgettoken options the way its option parser takes them:
/// `--name=V`, `--name V`, `-a V`, `-aV`.
pub fn parse_gettoken_opts(s: &str) -> GettokenOpts {
    let words: Vec<String> = s
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_string())
        .collect();
    let mut o = GettokenOpts::default();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        let next = words.get(i + 1).cloned();
        let mut take = |long: &str, short: Option<&str>| -> Option<Option<String>> {
            if let Some(v) = w.strip_prefix(&format!("{long}=")) {
                return Some(Some(v.to_string()));
            }
            if w == long {
                i += 1;
                return Some(next.clone());
            }
            if let Some(sh) = short {
                if w == sh {
                    i += 1;
                    return Some(next.clone());
                }
                if let Some(v) = w.strip_prefix(sh) {
                    if !v.is_empty() && !w.starts_with("--") {
                        return Some(Some(v.to_string()));
                    }
                }
            }
            None
        };
        if let Some(v) = take("--credkey", None) {
            o.credkey = v;
        } else if let Some(v) = take("--role", Some("-r")) {
            o.role = v;
        } else if let Some(v) = take("--vaultserver", Some("-a")) {
            o.vaultserver = v;
        }
        i += 1;
    }
    o
}

/// A Vault server as htgettoken resolves it: `https://` and port 8200 added.
pub fn normalize_vault(s: &str) -> String {
    let s = s.trim().trim_end_matches('/');
    let s = s.strip_prefix("https://").unwrap_or(s);
    if s.contains("://") {
        return s.to_string();
    }
    let hostport = if s
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        s.to_string()
    } else {
        format!("{s}:8200")
    };
    format!("https://{}", hostport.to_ascii_lowercase())
}

/// The `--vaultserver` value htgettoken needs for our server: the bare host when
/// https and port 8200 are implied.
pub(super) fn vaultserver_arg(s: &str) -> String {
    let n = normalize_vault(s);
    match n
        .strip_prefix("https://")
        .and_then(|h| h.strip_suffix(":8200"))
    {
        Some(host) => host.to_string(),
        None => n.strip_prefix("https://").unwrap_or(&n).to_string(),
    }
}

/// The line for `~/.condor/user_config` that matches our Vault options.
pub fn user_config_line(v: &VaultStorer) -> String {
    format!(
        "SEC_CREDENTIAL_GETTOKEN_OPTS = --credkey={} --role={} --vaultserver={}",
        v.credkey,
        v.role,
        vaultserver_arg(&v.vault_server)
    )
}

/// What differs between HTCondor's options and ours (empty: they agree).
pub fn gettoken_mismatch(have: &GettokenOpts, v: &VaultStorer) -> Vec<String> {
    let mut out = Vec::new();
    if have.credkey.as_deref() != Some(v.credkey.as_str()) {
        out.push(format!(
            "--credkey is {:?}, ours {:?}",
            have.credkey.as_deref().unwrap_or("unset"),
            v.credkey
        ));
    }
    if have.role.as_deref() != Some(v.role.as_str()) {
        out.push(format!(
            "--role is {:?}, ours {:?}",
            have.role.as_deref().unwrap_or("unset"),
            v.role
        ));
    }
    if have.vaultserver.as_deref().map(normalize_vault) != Some(normalize_vault(&v.vault_server)) {
        out.push(format!(
            "--vaultserver is {:?}, ours {:?}",
            have.vaultserver.as_deref().unwrap_or("unset"),
            vaultserver_arg(&v.vault_server)
        ));
    }
    out
}

pub(super) fn run_vault_storer(tools: &Tools, v: &VaultStorer, token_file: &Path) -> Result<()> {
    let ran = tools.run(
        "condor_config_val",
        &["SEC_CREDENTIAL_GETTOKEN_OPTS"],
        None,
        &[],
    )?;
    ran.show("condor_config_val");
    // Exit 1 with "Not defined: ..." when unset.
    let opts = if ran.success() {
        ran.stdout.trim().to_string()
    } else {
        String::new()
    };
    let diff = gettoken_mismatch(&parse_gettoken_opts(&opts), v);
    if !diff.is_empty() {
        let line = user_config_line(v);
        // The line alone on stdout, ready for `>> ~/.condor/user_config`.
        let _ = writeln!(std::io::stdout(), "{line}");
        return Err(Error::config(format!(
            "HTCondor's SEC_CREDENTIAL_GETTOKEN_OPTS ({}) does not match robot-token's Vault \
             options ({}): its Vault credmon would fetch another robot's tokens; add this line to \
             ~/.condor/user_config: {line}",
            if opts.is_empty() { "unset" } else { &opts },
            diff.join(", ")
        )));
    }
    let storer = ["condor_credential_storer", "condor_vault_storer"]
        .into_iter()
        .find(|n| tools.find(n).is_some())
        .ok_or_else(|| {
            Error::config(
                "neither condor_credential_storer nor condor_vault_storer is on PATH: install \
                 HTCondor's Vault credmon tools on this access point",
            )
        })?;

    // The storer's htgettoken writes a bearer token of its own to $BEARER_TOKEN_FILE
    // (else bt_u<euid>) with its own --minsecs: give it a private throwaway file so
    // that our --outfile stays exactly what our renewal wrote.
    let scratch = Scratch::new()?;
    let ccache = v.ccache.as_os_str();
    let ccache: OsString = if ccache.to_string_lossy().contains(':') {
        ccache.to_os_string()
    } else {
        let mut s = OsString::from("FILE:");
        s.push(ccache);
        s
    };
    let bt = scratch.0.join("bt");
    let env: [(&str, &OsStr); 2] = [
        ("KRB5CCNAME", ccache.as_os_str()),
        ("BEARER_TOKEN_FILE", bt.as_os_str()),
    ];
    let ran = tools.run(storer, &["-v", &v.issuer], None, &env)?;
    ran.show(storer);
    if ran.success() {
        tracing::info!(
            "{storer} stored Vault credentials for {} in the credd",
            v.issuer
        );
        return Ok(());
    }
    let file = token_file.display();
    let all = format!("{}\n{}", ran.stdout, ran.stderr);
    // The first line that says what is wrong (a bash script's "line 433: htgettoken:
    // command not found" comes before its own summary, "htgettoken failed").
    let config_line = all
        .lines()
        .find(|l| {
            let l = l.to_ascii_lowercase();
            STORER_MISCONFIGURED.iter().any(|p| l.contains(p))
        })
        .map(|l| redact(l.trim()));
    // With -v its output is already above; without, say how to see it.
    let see = if tracing::enabled!(tracing::Level::INFO) {
        "its output is above"
    } else {
        "run with -v to see its output"
    };
    Err(match config_line {
        Some(_) if all.contains("htgettoken: command not found") => Error::config(format!(
            "{storer} -v {} failed: htgettoken is not installed on this host ({storer} runs it \
             to get the Vault token); the token file {file} is up to date; install htgettoken",
            v.issuer
        )),
        Some(line) if !ran.timed_out => {
            let how = ran.describe();
            let why = if how.contains(&line) {
                how
            } else {
                format!("{line}; {how}")
            };
            Error::config(format!(
                "{storer} -v {} failed ({why}); the token file {file} is up to date; {see}",
                v.issuer
            ))
        }
        _ => Error::temp(format!(
            "{storer} -v {} failed ({}); the token file {file} is up to date; a later run will \
             try again; {see}",
            v.issuer,
            ran.describe()
        )),
    })
}

/// Output of HTCondor's credential storer that names a problem a retry cannot fix.
const STORER_MISCONFIGURED: &[&str] = &[
    "neither sec_credential_gettoken_opts",
    "command not found",
    "no such file",
    "only one underscore",
    "do not match the request",
    "usage:",
];

/// A private directory, removed with what is in it on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch> {
        let base = std::env::temp_dir();
        let mut last = None;
        for i in 0..16u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let p = base.join(format!(
                "robot-token-condor.{}.{:08x}{i}",
                std::process::id(),
                nanos
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&p) {
                Ok(()) => return Ok(Scratch(p)),
                Err(e) => last = Some(e),
            }
        }
        Err(Error::write(format!(
            "cannot create a private directory in {}: {}",
            base.display(),
            last.map(|e| io_reason(&e)).unwrap_or_default()
        )))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
