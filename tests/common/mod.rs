//! Shared test harness: a real `oidc-provider` issuer on 127.0.0.1 (tests/peer) and a
//! scrubbed environment in a fresh temporary directory for each run of the binary.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

pub mod vault;

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Start a test peer that prints one JSON ready line on stdout and exits when its
/// stdin closes; its log goes to stderr only with PEER_LOG set. Returns the child, its
/// stdin (hold it to keep the peer alive) and the ready line.
pub fn spawn_peer(cmd: &mut Command, what: &str) -> (Child, Option<ChildStdin>, Value) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(if std::env::var_os("PEER_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let stdin = child.stdin.take();
    // The ready line within a time limit: a peer that hangs while starting fails
    // the test instead of hanging it.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let r = BufReader::new(stdout).read_line(&mut line).map(|_| line);
        let _ = tx.send(r);
    });
    let line = match rx.recv_timeout(CHILD_TIMEOUT) {
        Ok(Ok(line)) => line,
        Ok(Err(e)) => panic!("{what}: no ready line: {e}"),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: no ready line within {} s", CHILD_TIMEOUT.as_secs())
        }
    };
    let ready: Value =
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("{what} did not start: {line:?}"));
    (child, stdin, ready)
}

/// A running test issuer. Killed on drop; it also exits when our end of its stdin closes.
pub struct Issuer {
    child: Child,
    _stdin: ChildStdin,
    pub url: String,
    agent: ureq::Agent,
}

impl Issuer {
    pub fn start() -> Issuer {
        Issuer::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Issuer {
        let peer = manifest_dir().join("tests/peer");
        assert!(
            peer.join("node_modules").is_dir(),
            "the test issuer is not installed: run `npm ci --prefix tests/peer` (scripts/test.sh does)"
        );
        let mut cmd = Command::new("node");
        cmd.arg(peer.join("issuer.mjs"))
            .args(["--port", "0"])
            .args(args);
        let (child, stdin, ready) = spawn_peer(&mut cmd, "node tests/peer/issuer.mjs");
        let stdin = stdin.unwrap();
        let url = ready["issuer"].as_str().unwrap().to_string();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Issuer {
            child,
            _stdin: stdin,
            url,
            agent,
        }
    }

    /// Talk to an https issuer whose certificate chains to `ca_pem`.
    pub fn trust(&mut self, ca_pem: &str) {
        let ca = ureq::tls::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                ca,
            ])))
            .build();
        self.agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .build()
            .into();
    }

    pub fn post(&self, path: &str, body: Value) -> Value {
        let mut r = self
            .agent
            .post(&format!("{}{}", self.url, path))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap();
        let text = r.body_mut().read_to_string().unwrap();
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    pub fn get(&self, path: &str) -> Value {
        let mut r = self
            .agent
            .get(&format!("{}{}", self.url, path))
            .call()
            .unwrap();
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
    }

    /// Requests that reached the issuer, by endpoint: discovery, token, jwks, device.
    pub fn requests(&self, endpoint: &str) -> u64 {
        self.get("/__test/stats")["requests"][endpoint]
            .as_u64()
            .unwrap_or(0)
    }

    /// Refresh-token requests since the last reset that presented a refresh token
    /// the issuer had seen before: a replay, which revokes the whole family.
    pub fn refresh_reused(&self) -> u64 {
        self.get("/__test/stats")["refresh_reused"]
            .as_u64()
            .unwrap_or(0)
    }

    pub fn reset(&self) {
        self.post("/__test/reset", json!({}));
    }

    /// A real grant at the issuer: returns (refresh_token, access_token).
    pub fn mint(&self, client_id: &str, scope: &str, audience: Option<&str>) -> (String, String) {
        let mut body = json!({"client_id": client_id, "scope": scope});
        if let Some(a) = audience {
            body["audience"] = json!(a);
        }
        let v = self.post("/__test/mint", body);
        (
            v["refresh_token"]
                .as_str()
                .expect("mint refresh_token")
                .to_string(),
            v["access_token"]
                .as_str()
                .expect("mint access_token")
                .to_string(),
        )
    }

    /// A correctly signed access token that has already expired.
    pub fn mint_expired(&self) -> String {
        let v = self.post(
            "/__test/mint",
            json!({"client_id": "robot-basic", "scope": "openid offline_access storage.read:/", "expired": true}),
        );
        v["access_token"].as_str().unwrap().to_string()
    }

    pub fn fault(&self, spec: Value) {
        self.post("/__test/fault", spec);
    }

    /// Redeem a refresh token directly, as an attacker or a second client would.
    pub fn refresh_status(&self, client_id: &str, secret: &str, rt: &str) -> (u16, Value) {
        let meta = self.get("/.well-known/openid-configuration");
        let ep = meta["token_endpoint"].as_str().unwrap();
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", rt)
            .append_pair("client_id", client_id)
            .append_pair("client_secret", secret)
            .finish();
        let mut r = self
            .agent
            .post(ep)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(body)
            .unwrap();
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

    /// Write a file with mode 0600.
    pub fn write_private(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    /// A version-1 credential file for `client` holding `refresh_token`.
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
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// How long one child may run before a test calls it hung: far above any honest
/// run on a loaded 2-core machine, far below a CI budget.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

/// `child`'s output, or a panic (after killing it) when it outlives `limit`: a test
/// must fail on a hang, not wait for CI's budget to run out.
pub fn wait_output(mut child: Child, limit: Duration) -> std::process::Output {
    use std::io::Read;
    // Drain both pipes in threads, so a chatty child cannot block on a full pipe.
    let drain = |p: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = p {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for a child") {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err.join().unwrap_or_default();
            panic!(
                "child process {} still running after {} s: killed; its stderr:\n{}",
                child.id(),
                limit.as_secs(),
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Wait for `child` (whose pipes the caller handles) at most `limit`; kill it and
/// panic when it is still running then.
pub fn wait_status(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait for a child") {
            return s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "child process {} still running after {} s: killed",
                child.id(),
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `cmd.output()` with [`CHILD_TIMEOUT`]. Unlike `output()` it leaves stdin as the
/// caller set it (inherited by default): set it.
pub fn output_of(cmd: &mut Command) -> std::process::Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()));
    wait_output(child, CHILD_TIMEOUT)
}

/// Run `cmd` to completion (at most [`CHILD_TIMEOUT`]), capturing its output.
pub fn run(cmd: &mut Command) -> Output {
    run_limited(cmd, CHILD_TIMEOUT)
}

/// [`run`] with another time limit.
pub fn run_limited(cmd: &mut Command, limit: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = retry_busy(|| cmd.spawn())
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()));
    let out = wait_output(child, limit);
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Seconds until a JWT's exp.
pub fn lifetime(token: &str) -> i64 {
    robot_token::token::expiry(robot_token::token::trim(token)).unwrap() - robot_token::token::now()
}

/// What robot-token writes after a renewal: one access token that `iss` issued to
/// `client`, fresh (the issuer's 1 h lifetime), a single `\n`, mode 0600. Returns
/// the decoded token for further checks.
pub fn assert_issued_token(path: &Path, iss: &Issuer, client: &str) -> robot_token::token::Jwt {
    use std::os::unix::fs::MetadataExt;
    let text = read(path);
    let what = path.display();
    assert!(
        text.ends_with('\n') && text.matches('\n').count() == 1 && !text.contains('\r'),
        "{what}: not one line ending in \\n: {text:?}"
    );
    let jwt = robot_token::token::decode(text.trim_end())
        .unwrap_or_else(|e| panic!("{what}: not a JWT ({e:?}): {text:?}"));
    assert_eq!(jwt.str_claim("iss"), Some(iss.url.as_str()), "{what}: iss");
    assert_eq!(
        jwt.str_claim("client_id"),
        Some(client),
        "{what}: client_id"
    );
    let left = lifetime(&text);
    assert!(left > 3000 && left <= 3600, "{what}: {left} s left");
    let mode = std::fs::metadata(path).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o600, "{what}: mode {mode:o}");
    jwt
}

pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

pub fn is_root() -> bool {
    robot_token::store::euid() == 0
}

/// For the tests marked `#[ignore = "needs root"]` (scripts/test.sh runs them with
/// `--include-ignored` as root, as CI is): fail loudly, never pass by skipping.
pub fn require_root() {
    assert!(
        is_root(),
        "this test needs root (it creates users or chowns files); run it as root"
    );
}

/// A system user (with its own group) for one test, deleted with its group on drop.
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl TestUser {
    /// A new user named `rt<tag><pid><n>`: unique per test, so that parallel tests
    /// and test binaries never share or delete each other's users.
    pub fn create(tag: &str) -> TestUser {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        require_root();
        let name = format!(
            "rt{tag}{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let st = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "--user-group",
            ])
            .arg(&name)
            .status()
            .expect("useradd (Debian package passwd)");
        assert!(st.success(), "useradd {name}");
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        TestUser {
            uid: id("-u"),
            gid: id("-g"),
            name,
        }
    }

    /// Does a user of this name exist?
    pub fn exists(name: &str) -> bool {
        Command::new("id")
            .arg(name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // userdel also removes the user's own group (USERGROUPS_ENAB).
        let ok = Command::new("userdel")
            .arg(&self.name)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("warning: could not delete test user {}", self.name);
        }
    }
}

pub fn wait_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// Run the binary, failing the test if it is still running after `secs`: for cases
/// where the bug is a hang (a FIFO waited on).
pub fn run_within(cmd: &mut Command, secs: u64) -> Output {
    run_limited(cmd, Duration::from_secs(secs))
}

/// A FIFO at `p` (mode 0600): whatever opens it for reading blocks until a writer comes.
pub fn mkfifo(p: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Tests that copy the binary (tests/hostile.rs) can hit ETXTBSY: a child forked by
/// another test thread briefly holds the copy's write descriptor until it execs.
fn retry_busy<T>(mut f: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    for _ in 0..100 {
        match f() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            r => return r,
        }
    }
    f()
}
