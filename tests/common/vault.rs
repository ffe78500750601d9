//! The Kerberos/Vault peers of tests/vault: a real MIT KDC (`kdc.sh`, realm
//! ROBOT.TEST on 127.0.0.1) and the htvault-config look-alike (`vault_stub.py`, which
//! accepts SPNEGO for real with python3-gssapi and the service keytab). Both are
//! started per test in a private directory and stopped on drop. Missing packages
//! fail loudly: scripts/install-peers.sh installs them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use serde_json::{json, Value};

use super::{manifest_dir, test_ca, test_keys, Env};

fn vault_dir() -> PathBuf {
    manifest_dir().join("tests/vault")
}

/// A running KDC for ROBOT.TEST.
pub struct Kdc {
    pub dir: tempfile::TempDir,
    pub info: Value,
}

impl Kdc {
    pub fn start() -> Kdc {
        let dir = tempfile::Builder::new()
            .prefix("robot-token-kdc")
            .tempdir()
            .unwrap();
        let out = super::output_of(
            Command::new(vault_dir().join("kdc.sh"))
                .arg("start")
                .arg(dir.path().join("kdc"))
                .stdin(Stdio::null()),
        );
        assert!(
            out.status.success(),
            "the test KDC did not start (run scripts/install-peers.sh: krb5-kdc krb5-admin-server krb5-user): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let info: Value = serde_json::from_slice(&out.stdout).expect("kdc.sh JSON line");
        Kdc { dir, info }
    }

    fn path_of(&self, key: &str) -> PathBuf {
        PathBuf::from(self.info[key].as_str().unwrap())
    }
    pub fn krb5_config(&self) -> PathBuf {
        self.path_of("krb5_config")
    }
    pub fn robot_keytab(&self) -> PathBuf {
        self.path_of("robot_keytab")
    }
    pub fn wrongkey_keytab(&self) -> PathBuf {
        self.path_of("wrongkey_keytab")
    }
    pub fn intruder_keytab(&self) -> PathBuf {
        self.path_of("intruder_keytab")
    }
    pub fn service_keytab(&self) -> PathBuf {
        self.path_of("service_keytab")
    }
    pub fn robot_principal(&self) -> String {
        self.info["robot_principal"].as_str().unwrap().to_string()
    }
    /// The default credential cache of this realm's krb5.conf: the "user's" cache,
    /// which robot-token must never create or change.
    pub fn default_ccache(&self) -> PathBuf {
        self.path_of("dir").join("ccache")
    }

    /// Requests the KDC has answered so far (AS_REQ and TGS_REQ lines of its log).
    pub fn requests(&self) -> usize {
        let log = std::fs::read_to_string(self.path_of("dir").join("kdc.log")).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("AS_REQ") || l.contains("TGS_REQ"))
            .count()
    }
    /// Initial tickets (TGTs) the KDC has issued: AS_REQ lines that say ISSUE (a
    /// login also logs one NEEDED_PREAUTH round first).
    pub fn tgts_issued(&self) -> usize {
        let log = std::fs::read_to_string(self.path_of("dir").join("kdc.log")).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("AS_REQ") && l.contains("ISSUE"))
            .count()
    }
}

impl Kdc {
    /// Stop the KDC now (the KDC down); it is stopped on drop too.
    pub fn stop(&self) {
        let _ = Command::new(vault_dir().join("kdc.sh"))
            .arg("stop")
            .arg(self.dir.path().join("kdc"))
            .stdin(Stdio::null())
            .output();
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running htvault-config look-alike for issuer `igwn`, role `robot`, serving the
/// JWT in `token_source`. It exits when its stdin closes (on drop) and is killed too.
pub struct VaultStub {
    child: Child,
    _stdin: Option<ChildStdin>,
    pub port: u16,
    scheme: &'static str,
    agent: ureq::Agent,
}

impl VaultStub {
    pub fn start(kdc: &Kdc, token_source: &Path, extra: &[&str]) -> VaultStub {
        VaultStub::start_with(kdc, token_source, extra, false)
    }

    /// The stub over https, with the certificate of tests/peer/keys (see [`test_ca`]).
    pub fn start_tls(kdc: &Kdc, token_source: &Path) -> VaultStub {
        VaultStub::start_with(kdc, token_source, &[], true)
    }

    fn start_with(kdc: &Kdc, token_source: &Path, extra: &[&str], tls: bool) -> VaultStub {
        let keys = test_keys();
        let tls_args: Vec<PathBuf> = if tls {
            vec![
                "--tls-cert".into(),
                keys.join("tls.pem"),
                "--tls-key".into(),
                keys.join("tls.key.pem"),
            ]
        } else {
            Vec::new()
        };
        let py = Path::new("/usr/bin/python3");
        assert!(
            py.exists(),
            "/usr/bin/python3 is missing (Debian python3 with python3-gssapi)"
        );
        let mut cmd = Command::new(py);
        cmd.arg(vault_dir().join("vault_stub.py"))
            .args(["--port", "0", "--issuer", "igwn", "--role", "robot"])
            .arg("--service-keytab")
            .arg(kdc.service_keytab())
            .arg("--krb5-config")
            .arg(kdc.krb5_config())
            .arg("--token-source")
            .arg(token_source)
            .args(extra)
            .args(&tls_args)
            .env("KRB5_CONFIG", kdc.krb5_config());
        // The ready line is JSON only when the stub started (python3-gssapi installed).
        let (child, stdin, ready) = super::spawn_peer(
            &mut cmd,
            "tests/vault/vault_stub.py (apt-get install python3-gssapi)",
        );
        let mut config = ureq::Agent::config_builder().http_status_as_error(false);
        if tls {
            let pem = std::fs::read(test_ca()).unwrap();
            let ca = ureq::tls::Certificate::from_pem(&pem).unwrap().to_owned();
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                        ca,
                    ])))
                    .build(),
            );
        }
        VaultStub {
            child,
            _stdin: stdin,
            port: ready["port"].as_u64().unwrap() as u16,
            scheme: if tls { "https" } else { "http" },
            agent: config.build().into(),
        }
    }

    /// The URL robot-token is given: the host must be `localhost`, the name of the
    /// stub's service principals (HTTP/localhost, host/localhost).
    pub fn server(&self) -> String {
        format!("{}://localhost:{}", self.scheme, self.port)
    }

    fn base(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    fn control(&self, path: &str, body: Value) {
        self.agent
            .post(&format!("{}{path}", self.base()))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap();
    }

    pub fn stats(&self) -> Value {
        let mut r = self
            .agent
            .get(&format!("{}/__stub/stats", self.base()))
            .call()
            .unwrap();
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
    }

    /// Requests to one endpoint: login, lookup_self, token_create, revoke_self, creds.
    pub fn requests(&self, endpoint: &str) -> u64 {
        self.stats()["requests"][endpoint].as_u64().unwrap()
    }

    /// Requests to every Vault endpoint together.
    pub fn total_requests(&self) -> u64 {
        self.stats()["requests"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum()
    }

    pub fn reset(&self) {
        self.control("/__stub/reset", json!({}));
    }

    /// Every token invalid (`None`) or with `ttl` seconds left.
    pub fn expire_tokens(&self, ttl: Option<u64>) {
        let body = match ttl {
            Some(t) => json!({ "ttl": t }),
            None => json!({}),
        };
        self.control("/__stub/expire-tokens", body);
    }

    pub fn fail(&self, spec: Value) {
        self.control("/__stub/fail", spec);
    }

    /// Look a Vault token up as a client would: (HTTP status, data.ttl).
    pub fn lookup(&self, vault_token: &str) -> (u16, i64) {
        let mut r = self
            .agent
            .get(&format!("{}/v1/auth/token/lookup-self", self.base()))
            .header("X-Vault-Token", vault_token)
            .call()
            .unwrap();
        let status = r.status().as_u16();
        let v: Value =
            serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap_or(Value::Null);
        (status, v["data"]["ttl"].as_i64().unwrap_or(-1))
    }

    /// Stop the stub now (Vault down).
    pub fn stop(&mut self) {
        self._stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for VaultStub {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An unsigned-but-well-formed JWT expiring `secs` from now (the stub serves it; the
/// renewal checks only its form and `exp`).
pub fn jwt(secs: i64, marker: &str) -> String {
    use base64::Engine;
    let b64 = |v: Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    let exp = robot_token::token::now() + secs;
    format!(
        "{}.{}.{}",
        b64(json!({"alg": "RS256", "typ": "JWT", "kid": "test"})),
        b64(
            json!({"iss": "https://issuer.example.org", "sub": marker, "exp": exp, "scope": "compute.read"})
        ),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("signature-{marker}"))
    )
}

/// A robot whose token comes from Vault: a KDC, the look-alike serving `served`, a
/// private directory, and the token file `bt` and Vault token file `vt` its `get`
/// line names.
pub struct VaultRobot {
    pub kdc: Kdc,
    pub stub: VaultStub,
    pub env: Env,
    pub out: PathBuf,
    pub vt: PathBuf,
    pub served: String,
}

impl VaultRobot {
    /// The look-alike serves a token with 2 h left.
    pub fn start() -> VaultRobot {
        VaultRobot::serving(&jwt(7200, "from-vault"), &[])
    }

    /// The look-alike (started with `stub_args`) serves `served`.
    pub fn serving(served: &str, stub_args: &[&str]) -> VaultRobot {
        let kdc = Kdc::start();
        let env = Env::new();
        let source = env.write_private("vault-source.jwt", served);
        let stub = VaultStub::start(&kdc, &source, stub_args);
        VaultRobot {
            out: env.path("bt"),
            vt: env.path("vt"),
            kdc,
            stub,
            env,
            served: served.to_string(),
        }
    }

    /// The binary in the robot's environment, with the test realm's krb5.conf.
    pub fn cmd(&self) -> Command {
        let mut c = self.env.cmd();
        c.env("KRB5_CONFIG", self.kdc.krb5_config());
        c
    }

    /// The options of the robot's `get` line, logging in with `keytab`:
    /// `-o bt --vault-server URL -i igwn -k KEYTAB --vault-token-file vt`.
    pub fn args(&self, keytab: &Path) -> Vec<OsString> {
        let mut v: Vec<OsString> = vec!["-o".into(), self.out.clone().into()];
        v.extend(["--vault-server".into(), self.stub.server().into()]);
        v.extend(["-i".into(), "igwn".into(), "-k".into(), keytab.into()]);
        v.extend(["--vault-token-file".into(), self.vt.clone().into()]);
        v
    }

    /// `robot-token VERB` (get, revoke) with [`VaultRobot::args`]; add the rest.
    pub fn line(&self, verb: &str, keytab: &Path) -> Command {
        let mut c = self.cmd();
        c.arg(verb).args(self.args(keytab));
        c
    }
}
