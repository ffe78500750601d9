//! The robot's side: a private directory with a scrubbed environment for each run of
//! the binary, the credential files the tests write there, and [`Robot`], the usual
//! issuer + credential + token file.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;

use super::{line, names, read, test_keys, Issuer, Output, Run};

/// A fresh private directory and a scrubbed environment for the binary.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("robot-token-test")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        Env { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The binary with an environment holding nothing that changes its behaviour.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin!("robot-token"));
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    /// `robot-token get -o OUT -c CRED`, as a crontab line has it; add the rest:
    /// `env.get(&out, &cred).args(["-m", "60"]).run()`.
    pub fn get(&self, out: impl AsRef<OsStr>, cred: impl AsRef<OsStr>) -> Command {
        let mut c = self.cmd();
        c.args(line("get", out, cred));
        c
    }

    /// `robot-token get -c CRED`: the token file found by WLCG discovery
    /// (`BEARER_TOKEN_FILE`, `XDG_RUNTIME_DIR`), as the README's crontab line has it.
    pub fn get_discovered(&self, cred: impl AsRef<OsStr>) -> Command {
        let mut c = self.cmd();
        c.args(["get", "-c"]).arg(cred);
        c
    }

    /// `robot-token revoke -o OUT -c CRED`: the same robot, retired.
    pub fn revoke(&self, out: impl AsRef<OsStr>, cred: impl AsRef<OsStr>) -> Command {
        let mut c = self.cmd();
        c.args(line("revoke", out, cred));
        c
    }

    /// `robot-token VERB --issuer URL --client-id ID -o OUT`: the client on the
    /// command line, no credential file; add its secret or key.
    pub fn client_line(
        &self,
        verb: &str,
        iss: &Issuer,
        client: &str,
        out: impl AsRef<OsStr>,
    ) -> Command {
        let mut c = self.cmd();
        c.args([verb, "--issuer", &iss.url, "--client-id", client])
            .arg("-o")
            .arg(out);
        c
    }

    /// [`Env::client_line`] for `get`.
    pub fn get_client(&self, iss: &Issuer, client: &str, out: impl AsRef<OsStr>) -> Command {
        self.client_line("get", iss, client, out)
    }

    /// `robot-token VERB --all --config CONFIG`: every profile of a configuration file.
    pub fn profiles(&self, verb: &str, config: &Path) -> Command {
        let mut c = self.cmd();
        c.args([verb, "--all", "--config"]).arg(config);
        c
    }

    /// `robot-token VERB --profile NAME --config CONFIG`: one profile.
    pub fn profile(&self, verb: &str, name: &str, config: &Path) -> Command {
        let mut c = self.cmd();
        c.args([verb, "--profile", name, "--config"]).arg(config);
        c
    }

    /// `robot-token init --no-tty` for `client` at `iss`, writing `cred.json` and `bt`
    /// here; `robot-basic` (a confidential client) reads its secret from `secret`.
    pub fn init(&self, iss: &Issuer, client: &str) -> Command {
        let mut c = self.cmd();
        c.args([
            "init",
            "--no-tty",
            "--issuer",
            &iss.url,
            "--client-id",
            client,
        ]);
        if client == "robot-basic" {
            let secret = self.write_private("secret", "robot-basic-secret\n");
            c.arg("--client-secret-file").arg(secret);
        }
        c.arg("-c")
            .arg(self.path("cred.json"))
            .arg("-o")
            .arg(self.path("bt"));
        c
    }

    /// The names in the directory, sorted (hidden files included).
    pub fn names(&self) -> Vec<String> {
        names(self.dir.path())
    }

    /// Write a file with mode 0600.
    pub fn write_private(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    /// An executable shell script (mode 0700) running `body`.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
        p
    }

    /// A private copy of a key of tests/peer/keys, under its own name.
    pub fn key_copy(&self, name: &str) -> PathBuf {
        self.write_private(name, &read(&test_keys().join(name)))
    }

    /// A version-1 credential file `cred.json` for `client` holding `refresh_token`.
    pub fn credential(
        &self,
        issuer: &Issuer,
        client: &str,
        refresh_token: Option<&str>,
    ) -> PathBuf {
        let mut v = json!({
            "version": 1,
            "issuer": issuer.url,
            "client_id": client,
            "client_secret": format!("{client}-secret"),
            "scope": "openid offline_access storage.read:/",
            "x-unknown-field": {"kept": true},
        });
        if client == "robot-post" {
            v["client_auth"] = json!("post");
        }
        if let Some(rt) = refresh_token {
            v["refresh_token"] = json!(rt);
        }
        self.write_private("cred.json", &serde_json::to_string_pretty(&v).unwrap())
    }

    /// [`Env::credential`] with a live refresh token of `client`, minted at `issuer`:
    /// returns (credential, refresh token).
    pub fn minted_credential(&self, issuer: &Issuer, client: &str) -> (PathBuf, String) {
        let rt = issuer.refresh_token(client);
        (self.credential(issuer, client, Some(&rt)), rt)
    }
}

/// The usual robot: an issuer, a private directory, a credential `cred.json` and a
/// token file `bt` (not written yet), with the counters zeroed. `opts` go on every
/// [`Robot::get`] (e.g. a short `--timeout`). A test that wants the parts takes them:
/// `let Robot { iss, env, cred, .. } = Robot::start();`.
pub struct Robot {
    pub iss: Issuer,
    pub env: Env,
    pub out: PathBuf,
    pub cred: PathBuf,
    /// The credential's refresh token ("" for a client_credentials robot).
    pub rt: String,
    pub opts: Vec<String>,
}

impl Robot {
    /// A refresh-token credential of `robot-basic` at a new issuer.
    pub fn start() -> Robot {
        Robot::of(Issuer::start(), "robot-basic", true)
    }

    /// A credential of `client` at `iss`, with a refresh token or without (then the
    /// run asks for client_credentials).
    pub fn of(iss: Issuer, client: &str, refresh: bool) -> Robot {
        let env = Env::new();
        let rt = refresh.then(|| iss.refresh_token(client));
        let cred = env.credential(&iss, client, rt.as_deref());
        iss.reset();
        Robot {
            out: env.path("bt"),
            iss,
            env,
            cred,
            rt: rt.unwrap_or_default(),
            opts: Vec::new(),
        }
    }

    /// The same robot with `opts` on every `get`.
    pub fn with_opts(mut self, opts: &[&str]) -> Robot {
        self.opts = opts.iter().map(|o| o.to_string()).collect();
        self
    }

    /// An expired token (signed by the issuer) in the token file, so that a run
    /// renews; returns the file's content.
    pub fn expire(&self) -> String {
        let old = self.iss.mint_expired() + "\n";
        std::fs::write(&self.out, &old).unwrap();
        old
    }

    /// `get -o bt -c cred.json` with the robot's options.
    pub fn cmd(&self) -> Command {
        let mut c = self.env.get(&self.out, &self.cred);
        c.args(&self.opts);
        c
    }

    /// Run [`Robot::cmd`] with `extra`.
    pub fn get(&self, extra: &[&str]) -> Output {
        self.cmd().args(extra).run()
    }
}

/// `c` as another user's cron line: run as `uid` (unless 0: root stays itself), with
/// HOME and the working directory at `home`.
pub fn as_user<'a>(c: &'a mut Command, uid: u32, home: &Path) -> &'a mut Command {
    c.env("HOME", home).current_dir(home);
    if uid != 0 {
        c.uid(uid).gid(uid);
    }
    c
}

/// A copy of the binary under test in `dir`, mode 0755: one that users other than
/// the one running the tests can surely execute.
pub fn binary_copy(dir: &Path) -> PathBuf {
    let bin = dir.join("robot-token");
    std::fs::copy(assert_cmd::cargo::cargo_bin!("robot-token"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}
