//! Fake HTCondor commands (`condor_version`, `condor_store_cred`, `condor_config_val`,
//! the Vault storers): scripts first on PATH that record how they were called and
//! answer as told. A stand-in for the tools, not for a server: the hand-off's protocol
//! is the command line, and scripts/condor-real.sh runs the real HTCondor 25.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::{read, Env};

/// A directory of fake HTCondor commands. Each records one "--call" block of argv
/// lines in `<tool>.argv`, its stdin in `<tool>.stdin` and its environment in
/// `<tool>.env`, then prints `<tool>[.<arg1>].out`/`.err` and exits with `<tool>.exit`.
pub struct Fakes {
    pub dir: PathBuf,
}

const FAKE: &str = r#"#!/bin/sh
d="$(dirname "$0")"; t="$(basename "$0")"
{ echo "--call"; for a in "$@"; do printf '%s\n' "$a"; done; } >> "$d/$t.argv"
cat >> "$d/$t.stdin"
env >> "$d/$t.env"
[ -f "$d/$t.sleep" ] && sleep "$(cat "$d/$t.sleep")"
k="$1"
if [ -f "$d/$t.$k.out" ]; then cat "$d/$t.$k.out"; elif [ -f "$d/$t.out" ]; then cat "$d/$t.out"; fi
if [ -f "$d/$t.$k.err" ]; then cat "$d/$t.$k.err" >&2; elif [ -f "$d/$t.err" ]; then cat "$d/$t.err" >&2; fi
if [ -f "$d/$t.$k.exit" ]; then exit "$(cat "$d/$t.$k.exit")"; fi
[ -f "$d/$t.exit" ] && exit "$(cat "$d/$t.exit")"
exit 0
"#;

impl Fakes {
    pub fn new(env: &Env) -> Fakes {
        let dir = env.path("fakebin");
        std::fs::create_dir_all(&dir).unwrap();
        Fakes { dir }
    }

    pub fn tool(&self, name: &str) -> &Self {
        let p = self.dir.join(name);
        std::fs::write(&p, FAKE).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        self
    }

    pub fn version(&self, v: &str) -> &Self {
        self.tool("condor_version");
        // SEC_CREDENTIAL_REFRESH unset, as condor_config_val says it (exit 1), unless a
        // test sets it: never the host's own HTCondor configuration.
        self.tool("condor_config_val")
            .set("condor_config_val.SEC_CREDENTIAL_REFRESH.exit", "1")
            .set(
                "condor_config_val.SEC_CREDENTIAL_REFRESH.err",
                "Not defined: SEC_CREDENTIAL_REFRESH\n",
            );
        self.set(
            "condor_version.out",
            &format!(
                "$CondorVersion: {v} 2024-10-01 BuildID: 1 PackageID: {v}-1 $\n$CondorPlatform: X86_64-Debian_13 $\n"
            ),
        )
    }

    /// condor_config_val says SEC_CREDENTIAL_REFRESH = `v`.
    pub fn refresh(&self, v: &str) -> &Self {
        self.set("condor_config_val.SEC_CREDENTIAL_REFRESH.exit", "0")
            .set("condor_config_val.SEC_CREDENTIAL_REFRESH.err", "")
            .set(
                "condor_config_val.SEC_CREDENTIAL_REFRESH.out",
                &format!("{v}\n"),
            )
    }

    pub fn set(&self, file: &str, content: &str) -> &Self {
        std::fs::write(self.dir.join(file), content).unwrap();
        self
    }

    /// The argv of each call of `tool`.
    pub fn calls(&self, tool: &str) -> Vec<Vec<String>> {
        let Ok(text) = std::fs::read_to_string(self.dir.join(format!("{tool}.argv"))) else {
            return vec![];
        };
        let mut calls = Vec::new();
        for l in text.lines() {
            if l == "--call" {
                calls.push(Vec::new());
            } else if let Some(c) = calls.last_mut() {
                c.push(l.to_string());
            }
        }
        calls
    }

    pub fn recorded(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file)).unwrap_or_default()
    }

    pub fn path_var(&self) -> String {
        format!(
            "{}:{}",
            self.dir.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// Nothing recorded anywhere (argv, environment) holds the token.
    pub fn assert_no_token_outside_stdin(&self, tok: &str) {
        let tok = tok.trim();
        for e in std::fs::read_dir(&self.dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".argv") || name.ends_with(".env") {
                assert!(
                    !read(&p).contains(tok),
                    "the token leaked into {name} (argv or environment)"
                );
            }
        }
    }
}

impl Fakes {
    /// `tool`, answering every call with `out` on stdout and exit code `exit`.
    pub fn answer(&self, tool: &str, out: &str, exit: i32) -> &Self {
        self.tool(tool)
            .set(&format!("{tool}.out"), out)
            .set(&format!("{tool}.exit"), &exit.to_string())
    }
}
