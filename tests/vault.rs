//! The Vault (htvault-config) source against a real MIT KDC and the htvault-config
//! look-alike of tests/vault, through the real binary: the fresh no-op without any
//! traffic, Kerberos login, Vault token reuse and expiry, and every failure with its
//! exit code, the old token kept and no secret in the output.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use common::vault::{jwt, Kdc, VaultRobot, VaultStub};
use common::*;
use serde_json::json;

/// A KDC, a stub serving a JWT with 2 h left, a private directory.
fn setup() -> VaultRobot {
    VaultRobot::start()
}

/// [`setup`] with an expired token in the token file; returns the file's content.
fn with_old_token() -> (VaultRobot, String) {
    let s = setup();
    let old = s.write_old_token();
    (s, old)
}

fn setup_with(stub_args: &[&str]) -> VaultRobot {
    VaultRobot::serving(&jwt(7200, "from-vault"), stub_args)
}

impl VaultRobot {
    /// `robot-token VERB` for the robot, with `keytab`, plus `extra`.
    fn run_line(&self, verb: &str, keytab: &std::path::Path, extra: &[&str]) -> Output {
        self.line(verb, keytab)
            .args(["--timeout", "10s", "--deadline", "30s"])
            .args(extra)
            .run()
    }

    /// `robot-token get` for the robot, with `keytab`, plus `extra`.
    fn get_with(&self, keytab: &std::path::Path, extra: &[&str]) -> Output {
        self.run_line("get", keytab, extra)
    }

    /// A credential file `robot.json` whose "vault" section names this Vault, issuer
    /// igwn and the Vault token file, and `key` = `value`.
    fn vault_credential(&self, key: &str, value: serde_json::Value) -> PathBuf {
        let mut vault =
            json!({"server": self.stub.server(), "issuer": "igwn", "token_file": self.vt});
        vault[key] = value;
        self.env.write_private(
            "robot.json",
            &serde_json::to_string(&json!({"version": 1, "vault": vault})).unwrap(),
        )
    }

    fn get(&self, extra: &[&str]) -> Output {
        self.get_with(&self.kdc.robot_keytab(), extra)
    }

    fn private_ccaches(&self) -> Vec<PathBuf> {
        fs::read_dir(self.env.path(".cache/robot-token/krb5"))
            .map(|d| {
                d.map(|e| e.unwrap().path())
                    .filter(|p| {
                        p.file_name()
                            .unwrap()
                            .to_string_lossy()
                            .starts_with("krb5cc_")
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A failed run: the exit code, one line on stderr, the old token unchanged.
    fn assert_failed(&self, r: &Output, code: i32, old: &str, words: &[&str]) {
        assert_eq!(r.code, code, "stderr: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "one line: {:?}", r.stderr);
        assert!(r.stderr.starts_with("robot-token: error: "), "{}", r.stderr);
        for w in words {
            assert!(r.stderr.contains(w), "{w:?} not in {}", r.stderr);
        }
        assert_eq!(read(&self.out), old, "old token kept byte for byte");
    }

    fn write_old_token(&self) -> String {
        let old = jwt(-60, "expired") + "\n";
        fs::write(&self.out, &old).unwrap();
        old
    }
}

#[test]
fn fresh_token_is_a_no_op_without_vault_or_kdc_traffic() {
    let s = setup();
    let fresh = jwt(7200, "fresh") + "\n";
    fs::write(&s.out, &fresh).unwrap();
    let kdc_before = s.kdc.requests();
    let r = s.get(&["-m", "3600", "-v"]);
    assert_exit(&r, 0, "nothing to do");
    assert_eq!(read(&s.out), fresh);
    assert_eq!(s.stub.total_requests(), 0, "no request to Vault");
    assert_eq!(s.kdc.requests(), kdc_before, "no request to the KDC");
    assert!(!s.vt.exists(), "no Vault token file written");
    assert!(
        s.private_ccaches().is_empty(),
        "no Kerberos ticket acquired"
    );
}

#[test]
fn login_reuse_then_expiry_logs_in_again() {
    let s = setup();
    assert_eq!(s.kdc.requests(), 0);

    // 1. No token, no Vault token: Kerberos login, shorter child token, creds.
    let r = s.get(&["-m", "1800"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(read(&s.out), format!("{}\n", s.served));
    let st = s.stub.stats();
    assert_eq!(st["requests"]["login"], 1);
    assert_eq!(
        st["requests"]["lookup_self"], 0,
        "no Vault token to look up yet"
    );
    assert_eq!(st["requests"]["token_create"], 1, "32-day login lease > 7d");
    assert_eq!(st["last_create_ttl"], "604800s");
    assert_eq!(st["requests"]["creds"], 1);
    assert_eq!(
        st["last_minimum_seconds"], 1800,
        "minimum_seconds = --minsecs"
    );
    assert_eq!(st["principals"], json!([s.kdc.robot_principal()]));
    assert_eq!(st["login_mechs"], json!(["spnego"]));
    let kdc_after_login = s.kdc.requests();
    assert!(kdc_after_login >= 2, "AS and TGS requests reached the KDC");
    // The Vault token: stored 0600, the 7-day child, not the 32-day login token.
    assert_eq!(
        fs::metadata(&s.vt).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let vt = read(&s.vt).trim().to_string();
    let (status, ttl) = s.stub.lookup(&vt);
    assert_eq!(status, 200);
    assert!(ttl <= 604800 && ttl > 604000, "child ttl {ttl}");
    // Tickets went to the private cache, never to the default one.
    let caches = s.private_ccaches();
    assert_eq!(caches.len(), 1, "{caches:?}");
    assert_eq!(
        fs::metadata(&caches[0]).unwrap().permissions().mode() & 0o077,
        0
    );
    assert!(!s.kdc.default_ccache().exists(), "default ccache untouched");
    // As htgettoken: rdns = false first in KRB5_CONFIG, the realm's file still read
    // (the login above needed it).
    let rdns = read(&s.env.path(".cache/robot-token/krb5/rdns.conf"));
    assert!(rdns.contains("rdns = false"), "{rdns}");

    // 2. Token gone, Vault token still good: lookup-self and creds only, no KDC.
    fs::remove_file(&s.out).unwrap();
    s.stub.reset();
    let r = s.get(&["-m", "1800", "-v"]);
    assert_exit(&r, 0, "reusing the cached Vault token");
    let st = s.stub.stats();
    assert_eq!(st["requests"]["lookup_self"], 1);
    assert_eq!(st["requests"]["login"], 0);
    assert_eq!(st["requests"]["creds"], 1);
    assert_eq!(s.kdc.requests(), kdc_after_login, "no Kerberos on reuse");
    assert_eq!(read(&s.vt).trim(), vt, "Vault token file unchanged");

    // 3. Vault token with less than --vault-token-minttl (24 h) left: log in again.
    fs::remove_file(&s.out).unwrap();
    s.stub.reset();
    s.stub.expire_tokens(Some(3600));
    let r = s.get(&["-m", "1800", "-v"]);
    assert_exit(&r, 0, "less than --vault-token-minttl");
    assert_eq!(s.stub.requests("login"), 1);
    let vt2 = read(&s.vt).trim().to_string();
    assert_ne!(vt2, vt, "a new Vault token was stored");
    // The ticket in the private cache was still valid: no new AS exchange.
    assert_eq!(s.kdc.tgts_issued(), 1, "TGT reused from the private cache");

    // 4. Vault token expired (Vault says 403): log in again.
    fs::remove_file(&s.out).unwrap();
    s.stub.reset();
    s.stub.expire_tokens(None);
    let r = s.get(&["-m", "1800", "-v"]);
    assert_exit(&r, 0, "no longer valid");
    let st = s.stub.stats();
    assert_eq!(st["requests"]["lookup_self"], 1);
    assert_eq!(st["requests"]["login"], 1);
    assert_eq!(st["requests"]["creds"], 1);
    assert_eq!(read(&s.out), format!("{}\n", s.served));
}

#[test]
fn vault_token_ttl_is_honoured_and_short_leases_are_kept() {
    // A login lease of 1 h is below --vault-token-ttl: no exchange.
    let s = setup_with(&["--login-ttl", "90000"]);
    let r = s.get(&["--vault-token-ttl", "2d"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s.stub.requests("token_create"), 0);
    fs::remove_file(&s.out).unwrap();
    fs::remove_file(&s.vt).unwrap();
    let r = s.get(&["--vault-token-ttl", "3h"]);
    assert_eq!(r.code, 64, "minttl 24h >= ttl 3h: {}", r.stderr);
    assert!(r.stderr.contains("--vault-token-minttl"), "{}", r.stderr);
    let r = s.get(&["--vault-token-ttl", "3h", "--vault-token-minttl", "1h"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s.stub.stats()["last_create_ttl"], "10800s");
}

#[test]
fn wrong_key_keytab_is_77() {
    let (s, old) = with_old_token();
    let r = s.get_with(&s.kdc.wrongkey_keytab(), &[]);
    s.assert_failed(&r, 77, &old, &["keytab", "kinit -kt"]);
    assert_eq!(s.stub.total_requests(), 0, "no login without a ticket");
    assert!(!s.vt.exists());
}

#[test]
fn unsafe_keytab_mode_is_77_before_any_traffic() {
    let (s, old) = with_old_token();
    let kt = s.env.path("robot.keytab");
    fs::copy(s.kdc.robot_keytab(), &kt).unwrap();
    fs::set_permissions(&kt, fs::Permissions::from_mode(0o640)).unwrap();
    let r = s.get_with(&kt, &[]);
    s.assert_failed(&r, 77, &old, &["unsafe keytab", "chmod 600"]);
    assert_eq!(s.stub.total_requests(), 0);
    assert_eq!(s.kdc.requests(), 0);
}

#[test]
fn keytab_from_krb5_ktname_and_credential_file_section() {
    let s = setup();
    let cred = s.vault_credential("token_minttl", json!("1h"));
    let r = s
        .cmd()
        .args(line("get", &s.out, &cred))
        .env(
            "KRB5_KTNAME",
            format!("FILE:{}", s.kdc.robot_keytab().display()),
        )
        .env(
            "KRB5CCNAME",
            format!("FILE:{}", s.env.path("user-ccache").display()),
        )
        .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(read(&s.out), format!("{}\n", s.served));
    assert_eq!(s.stub.requests("login"), 1);
    assert!(
        !s.env.path("user-ccache").exists(),
        "the user's KRB5CCNAME cache is never written"
    );
    assert_eq!(s.private_ccaches().len(), 1);
}

#[test]
fn vault_down_is_75_and_keeps_the_token() {
    let mut s = setup();
    // With a cached Vault token (lookup-self fails) and without (login fails).
    let r = s.get(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    s.stub.stop();
    // A fresh token needs no Vault: exit 0 (htgettoken and igwn-robot-get exit 1).
    let r = s.get(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let old = s.write_old_token();
    let r = s.get(&[]);
    s.assert_failed(&r, 75, &old, &["Vault", "connection refused"]);
    fs::remove_file(&s.vt).unwrap();
    let r = s.get(&[]);
    s.assert_failed(&r, 75, &old, &["Kerberos login", "connection refused"]);
    // 5xx answers are temporary too.
    let (s, old) = with_old_token();
    s.stub
        .fail(json!({"status": 503, "times": 10, "path": "/v1/auth/"}));
    let r = s.get(&[]);
    s.assert_failed(&r, 75, &old, &["503"]);
}

#[test]
fn kdc_down_is_75() {
    let (s, old) = with_old_token();
    s.kdc.stop();
    let r = s.get(&[]);
    s.assert_failed(&r, 75, &old, &["KDC"]);
}

#[test]
fn refused_principal_and_refused_credential_are_77_with_the_bootstrap_hint() {
    let (s, old) = with_old_token();
    // A valid Kerberos principal that Vault does not allow: login 403.
    let r = s.get_with(&s.kdc.intruder_keytab(), &["--role", "robot"]);
    s.assert_failed(
        &r,
        77,
        &old,
        &[
            "refused the Kerberos login",
            "intruder@ROBOT.TEST",
            "htgettoken -a http://localhost:",
            "-i igwn -r robot --credkey intruder",
        ],
    );
    assert_eq!(
        s.stub.stats()["denied_principals"],
        json!(["intruder@ROBOT.TEST"])
    );
    assert!(!s.vt.exists());
    // Logged in, but no access to that credential: creds 403.
    let r = s.get(&["--credkey", "someone-else"]);
    s.assert_failed(&r, 77, &old, &["refused to read", "re-bootstrap", "OIDC"]);
    // A role Vault has no Kerberos login for: configuration.
    let r = s.get(&["--role", "nosuch"]);
    s.assert_failed(&r, 78, &old, &["no Kerberos login", "--role nosuch"]);
}

#[test]
fn debug_output_holds_no_token_vault_token_or_spnego_blob() {
    let s = setup();
    let r = s.get(&["-vv"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(s.stub.requests("login") == 1 && s.stub.requests("token_create") == 1);
    // And a reuse run, which sends the cached Vault token.
    fs::remove_file(&s.out).unwrap();
    let r2 = s.get(&["-vv"]);
    assert_eq!(r2.code, 0, "{}", r2.stderr);
    let all = format!("{}{}{}{}", r.stdout, r.stderr, r2.stdout, r2.stderr);
    assert!(all.contains("debug:"), "debug output expected: {all}");
    assert!(!all.contains(&s.served), "access token leaked");
    let vt = read(&s.vt);
    assert!(!all.contains(vt.trim()), "Vault token leaked");
    // Every Vault token (login token, child) starts with "hvs.".
    assert!(!all.contains("hvs."), "a Vault token leaked: {all}");
    // A GSSAPI token is base64 of DER starting 0x60 0x82: "YII"; and no long base64
    // run of any kind (tokens, blobs) appears.
    assert!(!all.contains("YII"), "SPNEGO blob leaked: {all}");
    assert!(!all.contains("Negotiate "), "{all}");
    let longest = all
        .split(|c: char| c.is_whitespace() || "\"'(),;".contains(c))
        .filter(|w| !w.contains("/tmp/") && !w.starts_with("http"))
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(longest < 64, "a long opaque string in the output: {all}");
}

#[test]
fn vault_options_are_validated() {
    let env = Env::new();
    let r = run(env
        .cmd()
        .args(["get", "-o", "bt", "--credkey", "x", "--role", "robot"]));
    assert_exit(&r, 64, "--vault-server");
    let r = run(env.cmd().args([
        "get",
        "-o",
        "bt",
        "-a",
        "vault.example.org",
        "--client-id",
        "x",
    ]));
    assert_eq!(r.code, 64, "{}", r.stderr);
    let r = run(env.cmd().args([
        "get",
        "-o",
        "bt",
        "-a",
        "vault.example.org",
        "--vault-token-ttl",
        "soon",
    ]));
    assert_eq!(r.code, 64, "{}", r.stderr);
    // No keytab and no credkey: nothing to name the credential with.
    let r = run(env
        .cmd()
        .args(["get", "-o", "bt", "-a", "http://vault.example.org"]));
    assert_eq!(r.code, 78, "plain http off loopback: {}", r.stderr);
}

#[cfg(feature = "test-hooks")]
#[test]
fn missing_gssapi_library_says_what_to_install() {
    let (s, old) = with_old_token();
    let r = s
        .line("get", &s.kdc.robot_keytab())
        .env(
            "ROBOT_TOKEN_TEST_GSSAPI_LIBRARY",
            "libgssapi_krb5_absent.so.9",
        )
        .run();
    s.assert_failed(&r, 78, &old, &["install libgssapi-krb5-2", "krb5-libs"]);
    assert_eq!(s.stub.total_requests(), 0);
}

#[test]
fn https_vault_with_a_test_ca() {
    let kdc = Kdc::start();
    let env = Env::new();
    let served = jwt(7200, "over-https");
    let source = env.write_private("src.jwt", &served);
    let stub = VaultStub::start_tls(&kdc, &source);
    let get = |extra: &[&str]| {
        run(env
            .cmd()
            .env("KRB5_CONFIG", kdc.krb5_config())
            .args(["get", "-o", "bt", "--vault-token-file", "vt", "-i", "igwn"])
            .args(["-a", &stub.server(), "-k"])
            .arg(kdc.robot_keytab())
            .args(extra))
    };
    // Without the CA the certificate is not trusted: configuration, nothing sent.
    let r = get(&[]);
    assert_exit(&r, 78, "certificate");
    assert_eq!(stub.requests("login"), 0);
    let r = get(&["--cafile", test_ca().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(read(&env.path("bt")), format!("{served}\n"));
}

#[test]
fn vault_token_file_symlink_is_refused_and_its_target_kept() {
    let (s, old) = with_old_token();
    let victim = s.env.write_private("victim", "precious\n");
    std::os::unix::fs::symlink(&victim, &s.vt).unwrap();
    let r = s.get(&[]);
    s.assert_failed(&r, 73, &old, &["Vault token file", "symbolic link"]);
    assert_eq!(read(&victim), "precious\n");
    assert_eq!(s.stub.total_requests(), 0, "nothing sent");
}

#[test]
fn minsecs_beyond_what_vault_can_give_is_77() {
    // The stub's token lives 2 h; htvault-config answers 400 "token expired" when it
    // cannot satisfy minimum_seconds.
    let (s, old) = with_old_token();
    let r = s.get(&["-m", "3h"]);
    s.assert_failed(
        &r,
        77,
        &old,
        &["10800 s", "lower --minsecs", "token expired"],
    );
    assert_eq!(s.stub.stats()["last_minimum_seconds"], 10800);
}

/// A JWT issued now that lives `secs` (with `iat`, as WLCG tokens have).
fn jwt_issued_now(secs: i64, marker: &str) -> String {
    use base64::Engine;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    let now = robot_token::token::now();
    format!(
        "{}.{}.c2ln",
        b64(json!({"alg": "RS256", "typ": "JWT"})),
        b64(
            json!({"iss": "https://issuer.example.org", "sub": marker, "iat": now, "exp": now + secs})
        )
    )
}

#[test]
fn without_minsecs_one_hour_vault_tokens_work_from_the_first_run() {
    // Vault's tokens live 1 h: the default margin's first guess (1 h, no token on disk
    // yet) is more than it can give, so robot-token takes the one it has; then the token
    // on disk says its lifetime, and the next run is a no-op.
    let s = VaultRobot::serving(&jwt_issued_now(3600, "one-hour"), &[]);
    let r = s.get(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "", "quiet");
    assert_eq!(read(&s.out), format!("{}\n", s.served));
    assert_eq!(s.stub.stats()["minimum_seconds_seen"], json!([3600, 60]));
    let before = s.stub.total_requests();
    let r = s.get(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s.stub.total_requests(), before, "fresh: no Vault traffic");
    // An explicit --minsecs is not lowered.
    fs::write(&s.out, jwt(-60, "expired") + "\n").unwrap();
    let r = s.get(&["-m", "1h"]);
    assert_eq!(r.code, 77, "{}", r.stderr);
}

impl VaultRobot {
    /// `robot-token revoke` with the options of the robot's `get` line, plus `extra`.
    fn revoke(&self, extra: &[&str]) -> Output {
        self.run_line("revoke", &self.kdc.robot_keytab(), extra)
    }
}

#[test]
fn revoke_kills_the_cached_vault_token_and_removes_the_files() {
    let s = setup();
    let r = s.get(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let vault_token = read(&s.vt).trim().to_string();
    assert_eq!(s.stub.lookup(&vault_token).0, 200);
    assert_eq!(s.private_ccaches().len(), 1);

    s.stub.reset();
    let r = s.revoke(&["-vv"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s.stub.requests("revoke_self"), 1);
    assert_eq!(s.stub.requests("creds_delete"), 0, "no --force");
    assert_eq!(s.stub.requests("login"), 0);
    // Vault refuses the revoked token now.
    assert_eq!(s.stub.lookup(&vault_token).0, 403);
    assert!(!s.vt.exists() && !s.out.exists());
    assert!(
        s.private_ccaches().is_empty(),
        "the private ticket cache is removed"
    );
    assert!(
        r.stdout.contains("revoked the Vault token sha256:"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("--force"),
        "says the refresh token stays: {}",
        r.stdout
    );
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(!all.contains(&vault_token) && !all.contains(&s.served));

    // Again: nothing cached, nothing sent.
    s.stub.reset();
    let r = s.revoke(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s.stub.total_requests(), 0);
    assert!(
        r.stdout.contains("nothing to revoke in Vault"),
        "{}",
        r.stdout
    );
}

#[test]
fn revoke_force_deletes_the_refresh_token_in_vault_as_htdestroytoken_f() {
    let s = setup();
    let r = s.get(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let vault_token = read(&s.vt).trim().to_string();

    // Vault refuses the delete, also after a fresh login (a 403 may only mean the cached
    // token died): 77, the token file kept, nothing revoked.
    let out_before = read(&s.out);
    s.stub.fail(
        json!({"status": 403, "path": "/v1/secret/oauth/creds/", "times": 2,
                        "errors": ["permission denied"]}),
    );
    let r = s.revoke(&["--force"]);
    assert_exit(&r, 77, "refused to delete");
    assert_eq!(read(&s.out), out_before);
    assert!(s.vt.exists(), "the Vault token file is kept");
    assert_eq!(s.stub.lookup(&vault_token).0, 200, "not revoked");
    let vault_token = read(&s.vt).trim().to_string();

    s.stub.reset();
    let r = s.revoke(&["--force"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // htdestroytoken -f: DELETE <server>/v1/<secret path> with the cached Vault token.
    assert_eq!(s.stub.requests("creds_delete"), 1);
    assert_eq!(s.stub.requests("login"), 0, "the cached token sufficed");
    assert_eq!(
        s.stub.stats()["deleted_creds"],
        json!(["igwn/robot/ci.example.org:robot"])
    );
    assert_eq!(s.stub.requests("revoke_self"), 1);
    assert_eq!(s.stub.lookup(&vault_token).0, 403);
    assert!(!s.vt.exists() && !s.out.exists());

    // The keytab still logs in, but Vault holds no refresh token for the robot now.
    let r = s.get(&[]);
    assert_exit(&r, 77, "holds no credential");
    fs::remove_file(&s.vt).unwrap();

    // Without a cached Vault token, --force logs in with the keytab to delete.
    s.stub.reset();
    let r = s.revoke(&["--force"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        (s.stub.requests("login"), s.stub.requests("creds_delete")),
        (1, 1)
    );
    assert_eq!(
        s.stub.requests("revoke_self"),
        1,
        "the login's token is revoked too"
    );
    assert!(!s.vt.exists());
}

#[test]
fn revoke_marks_a_vault_credential_file_and_get_refuses_it() {
    let s = setup();
    let cred = s.vault_credential("keytab", json!(s.kdc.robot_keytab()));
    let with_cred = |verb: &str| s.cmd().args(line(verb, &s.out, &cred)).run();
    assert_eq!(with_cred("get").code, 0);
    let r = with_cred("revoke");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let c = read_json(&cred);
    assert!(c["revoked_at"].is_string(), "{c}");
    assert_eq!(c["vault"]["issuer"], json!("igwn"), "the rest is kept");
    s.stub.reset();
    let r = with_cred("get");
    assert_exit(&r, 77, "was revoked at");
    assert_eq!(s.stub.total_requests(), 0);
    let r = with_cred("revoke");
    assert_eq!((r.code, s.stub.total_requests()), (0, 0), "{}", r.stderr);
}
