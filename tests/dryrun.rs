//! `robot-token get --dry-run` against the real issuer, the Vault look-alike and fake
//! HTCondor tools: a passing run sends no token request and writes nothing; each
//! failing check exits with the code the real run then exits with (both are run).

mod common;

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::htcondor::Fakes;
use common::vault::VaultRobot;
use common::*;
use serde_json::json;

/// `get --dry-run ARGS`, then `get ARGS`: both exit with `code`; the dry run prints its
/// failure as `dry run: <check>: …` naming `words`, and sends no token request.
fn same_code(env: &Env, iss: Option<&Issuer>, args: &[OsString], code: i32, words: &[&str]) {
    same_code_with(|| env.cmd(), iss, args, code, words);
}

/// [`same_code`] with the commands `make` builds.
fn same_code_with(
    make: impl Fn() -> Command,
    iss: Option<&Issuer>,
    args: &[OsString],
    code: i32,
    words: &[&str],
) {
    if let Some(i) = iss {
        i.reset();
    }
    let dry = run(make().args(["get", "--dry-run"]).args(args));
    if let Some(i) = iss {
        assert_eq!(i.requests("token"), 0, "the dry run sent a token request");
    }
    assert_eq!(dry.code, code, "dry run: {}", dry.stderr);
    assert_eq!(dry.stdout, "", "no summary on failure");
    let line = dry
        .stderr
        .lines()
        .find(|l| {
            l.starts_with("robot-token: error: dry run: ")
                && !l.contains("the next renewal would fail")
        })
        .unwrap_or_else(|| panic!("a failed check line: {}", dry.stderr));
    for w in words {
        assert!(line.contains(w), "{w:?} not in {line}");
    }
    assert!(
        dry.stderr
            .contains(&format!("the next renewal would fail with exit {code}")),
        "{}",
        dry.stderr
    );
    let real = run(make().arg("get").args(args));
    assert_eq!(
        real.code, code,
        "the real run exits as the dry run said: {}",
        real.stderr
    );
}

fn os(v: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    v.iter().map(|s| s.as_ref().to_os_string()).collect()
}

#[test]
fn a_passing_dry_run_sends_no_token_request_and_writes_nothing() {
    let iss = Issuer::start();
    let env = Env::new();
    let cred = env.minted_credential(&iss, "robot-basic").0;
    let before = read(&cred);
    let out = env.path("bt");
    let files = names(env.dir.path());
    iss.reset();
    let r = env
        .get(&out, &cred)
        .args(["--dry-run", "--deploy-hook", "true"])
        .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "", "quiet on success");
    assert_eq!(
        r.stdout.lines().count(),
        1,
        "one summary line: {}",
        r.stdout
    );
    assert!(r.stdout.starts_with("dry run: all "), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("renews {}", out.display()))
            && r.stdout.contains("refresh_token grant"),
        "{}",
        r.stdout
    );
    assert_eq!(iss.requests("token"), 0, "no token request");
    assert_eq!(iss.requests("discovery"), 1, "discovery is a read");
    assert_eq!(read(&cred), before, "the credential is untouched");
    assert!(!out.exists());
    assert_eq!(names(env.dir.path()), files, "no file created");

    // -v: one line per check, each "ok"; nothing secret.
    let r = env.get(&out, &cred).args(["--dry-run", "-vv"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    for check in ["credential", "discovery", "token endpoint", "clock"] {
        assert!(
            r.stderr.contains(&format!("dry run: ok: {check}")),
            "{check}: {}",
            r.stderr
        );
    }
    let rt = serde_json::from_str::<serde_json::Value>(&before).unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    // The renewal's own checks before it sends: every replacement prepared.
    assert!(
        r.stderr.contains(&format!(
            "dry run: ok: token file {}: its directory takes the replacement",
            out.display()
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!(
            "dry run: ok: credential {}: its directory takes the rewrite",
            cred.display()
        )),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(&rt) && !r.stderr.contains("robot-basic-secret"));
    assert_eq!(iss.requests("token"), 0);

    // -q: nothing at all.
    let r = env.get(&out, &cred).args(["--dry-run", "-q"]).run();
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));

    // The real run then renews, as the dry run said.
    let r = env.get(&out, &cred).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.requests("token"), 1);

    // A fresh token: the summary says when the next renewal is due.
    let r = env.get(&out, &cred).args(["--dry-run", "-m", "60"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("the token is fresh for"), "{}", r.stdout);
}

#[test]
fn each_failing_local_check_exits_as_the_real_run() {
    let iss = Issuer::start();
    let env = Env::new();
    let out = env.path("bt");
    let cred = env.minted_credential(&iss, "robot-basic").0;

    // A credential path typo: 78.
    same_code(
        &env,
        Some(&iss),
        &os(&[&"-o", &out, &"-c", &env.path("crde.json")]),
        78,
        &["credential", "crde.json"],
    );
    // Readable by others: 77, and the chmod to run.
    fs::set_permissions(&cred, fs::Permissions::from_mode(0o644)).unwrap();
    same_code(
        &env,
        Some(&iss),
        &os(&[&"-o", &out, &"-c", &cred]),
        77,
        &["chmod 600"],
    );
    fs::set_permissions(&cred, fs::Permissions::from_mode(0o600)).unwrap();
    // Not JSON: 65.
    let bad = env.write_private("bad.json", "{\"version\": 1,");
    same_code(
        &env,
        Some(&iss),
        &os(&[&"-o", &out, &"-c", &bad]),
        65,
        &["malformed credential"],
    );
    // Retired by robot-token revoke: 77.
    let retired = env.write_private(
        "retired.json",
        &json!({"version": 1, "issuer": iss.url, "client_id": "robot-basic",
                "revoked_at": "2026-01-01T00:00:00Z"})
        .to_string(),
    );
    same_code(
        &env,
        Some(&iss),
        &os(&[&"-o", &out, &"-c", &retired]),
        77,
        &["revoked"],
    );
    // A token file in a directory that does not exist: 73.
    same_code(
        &env,
        Some(&iss),
        &os(&[&"-o", &env.path("no-such-dir/bt"), &"-c", &cred]),
        73,
        &["no-such-dir"],
    );
    // A symlink at the token file: 73, its target untouched.
    let victim = env.path("victim");
    fs::write(&victim, "precious\n").unwrap();
    let link = env.path("link");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    same_code(
        &env,
        Some(&iss),
        &os(&[&"-o", &link, &"-c", &cred]),
        73,
        &["symbolic link"],
    );
    assert_eq!(read(&victim), "precious\n");
    // An unreadable --cafile: 78.
    same_code(
        &env,
        Some(&iss),
        &os(&[
            &"-o",
            &out,
            &"-c",
            &cred,
            &"--cafile",
            &env.path("nope.pem"),
        ]),
        78,
        &["--cafile"],
    );
    // A private_key_jwt client whose key file is missing: the real run's own error.
    let pk = env.write_private(
        "pk.json",
        &json!({"version": 1, "issuer": iss.url, "client_id": "robot-pkjwt-ec",
                "client_auth": "private_key_jwt", "private_key_file": "missing.pem",
                "refresh_token": "x"})
        .to_string(),
    );
    let r = env.get(&out, &pk).run();
    same_code(
        &env,
        Some(&iss),
        &os(&[&"-o", &out, &"-c", &pk]),
        r.code,
        &["missing.pem"],
    );
    // An exec credential whose command does not exist: 78 (it is never run).
    let exec = env.write_private(
        "exec.json",
        &json!({"version": 1, "grant": "exec", "command": [env.path("no-such-helper")]})
            .to_string(),
    );
    same_code(
        &env,
        Some(&iss),
        &os(&[&"-o", &out, &"-c", &exec]),
        78,
        &["exec command", "no-such-helper"],
    );
    // A deploy hook whose command is not found: the renewal succeeds, the hook fails: 75.
    same_code(
        &env,
        Some(&iss),
        &os(&[
            &"-o",
            &out,
            &"-c",
            &cred,
            &"--deploy-hook",
            &"no-such-command-xyz --now",
        ]),
        75,
        &["deploy hook", "no-such-command-xyz"],
    );
}

#[test]
fn with_several_failures_the_first_the_renewal_meets_decides() {
    let iss = Issuer::start();
    let env = Env::new();
    let out = env.path("bt");
    let cred = env.minted_credential(&iss, "robot-basic").0;
    let lost = env.path("no-such-dir/bt");
    let hook: &dyn AsRef<std::ffi::OsStr> = &"no-such-command-xyz";
    let args = os(&[
        &"-o",
        &out,
        &"-o",
        &lost,
        &"-c",
        &cred,
        &"--deploy-hook",
        hook,
    ]);
    // A token file that cannot be written while another can, and a failing hook: the
    // renewal writes the one, fails with 73 and never runs the hook.
    same_code(&env, Some(&iss), &args, 73, &["no-such-dir"]);
    // The same with an unsafe credential: it stops at the credential (77).
    fs::remove_file(&out).unwrap();
    fs::set_permissions(&cred, fs::Permissions::from_mode(0o640)).unwrap();
    same_code(&env, Some(&iss), &args, 77, &["no-such-dir"]);
    assert!(!out.exists(), "nothing was written");
}

#[test]
fn each_failing_issuer_check_exits_as_the_real_run() {
    let iss = Issuer::start();
    let env = Env::new();
    let out = env.path("bt");

    // Nothing listens there: 75.
    let dead = dead_url();
    let cred = env.write_private(
        "dead.json",
        &json!({"version": 1, "issuer": dead, "client_id": "robot-basic",
                "client_secret": "robot-basic-secret", "refresh_token": "x"})
        .to_string(),
    );
    same_code(
        &env,
        None,
        &os(&[&"-o", &out, &"-c", &cred, &"--deadline", &"3s"]),
        75,
        &["discovery", "connection refused"],
    );
    // No discovery document at that URL: 78.
    let cred = env.write_private(
        "wrong.json",
        &json!({"version": 1, "issuer": format!("{}/wrong", iss.url), "client_id": "robot-basic",
                "client_secret": "robot-basic-secret", "refresh_token": "x"})
        .to_string(),
    );
    same_code(
        &env,
        Some(&iss),
        &os(&[&"-o", &out, &"-c", &cred]),
        78,
        &["no discovery document"],
    );
    // A token endpoint over plain http to another host: 78, nothing sent anywhere.
    let cred = env.write_private(
        "http.json",
        &json!({"version": 1, "token_endpoint": "http://iam.example.org/token",
                "client_id": "robot-basic", "client_secret": "robot-basic-secret",
                "refresh_token": "x"})
        .to_string(),
    );
    same_code(
        &env,
        None,
        &os(&[&"-o", &out, &"-c", &cred]),
        78,
        &["plain http"],
    );
}

#[test]
fn tls_chain_is_checked_with_cafile() {
    let iss = Issuer::start_https_test_ca();
    let env = Env::new();
    let out = env.path("bt");
    let cred = env.minted_credential(&iss, "robot-basic").0;
    // The test CA is not in the system store: 78 for both, and what to do.
    same_code(
        &env,
        Some(&iss),
        &os(&[&"-o", &out, &"-c", &cred]),
        78,
        &["TLS certificate not accepted", "--cafile"],
    );
    // With --cafile the chain is trusted.
    iss.reset();
    let r = env
        .get(&out, &cred)
        .args(["--dry-run", "-v"])
        .arg("--cafile")
        .arg(test_ca())
        .run();
    assert_exit(
        &r,
        0,
        "dry run: ok: TLS: the certificate of https://127.0.0.1",
    );
    assert_eq!(iss.requests("token"), 0);
}

#[test]
fn a_skewed_clock_warns_and_passes() {
    let iss = Issuer::start();
    let env = Env::new();
    let cred = env.minted_credential(&iss, "robot-basic").0;
    let out = env.path("bt");
    iss.post("/__test/clock", json!({"skew": -600}));
    let r = env.get(&out, &cred).arg("--dry-run").run();
    assert_eq!(r.code, 0, "a warning, not a failure: {}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("robot-token: warning: dry run: clock: this host's clock is 10m"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("ahead") && r.stderr.contains("NTP"),
        "{}",
        r.stderr
    );
    // Within a minute: no warning.
    iss.post("/__test/clock", json!({"skew": 30}));
    let r = env.get(&out, &cred).arg("--dry-run").run();
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
}

#[test]
fn profiles_all_reports_each_failure_and_the_worst_code() {
    let iss = Issuer::start();
    let env = Env::new();
    let good = env.minted_credential(&iss, "robot-basic").0;
    let open = env.write_private("open.json", &read(&good));
    fs::set_permissions(&open, fs::Permissions::from_mode(0o644)).unwrap();
    let config = env.write_private(
        "config.toml",
        &format!(
            "[profile.good]\ncredential = {good:?}\noutfile = \"good.token\"\n\n\
             [profile.open]\ncredential = {open:?}\noutfile = \"open.token\"\n\n\
             [profile.typo]\ncredential = \"/no/such.json\"\noutfile = \"typo.token\"\n"
        ),
    );
    iss.reset();
    let r = env.profiles("get", &config).arg("--dry-run").run();
    assert_eq!(r.code, 77, "the most severe: {}", r.stderr);
    assert!(
        r.stderr.contains("profile open: dry run: credential"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("profile typo: dry run: credential"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("dry run: 2 of 3 profiles would fail: open (77), typo (78)"),
        "{}",
        r.stderr
    );
    assert_eq!(iss.requests("token"), 0);
    let r = env.profile("get", "good", &config).arg("--dry-run").run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("profile good: the next run renews"),
        "{}",
        r.stdout
    );
}

// ---------------------------------------------------------------------------
// Vault: reachable, keytab readable with the right mode and the principal in it; no login.

/// The robot's Vault options, with `keytab`, short time limits, and `extra`.
fn vault_args(s: &VaultRobot, keytab: &Path, extra: &[&str]) -> Vec<OsString> {
    let mut v = s.args(keytab);
    v.extend(os(&[&"--timeout", &"5s", &"--deadline", &"10s"]));
    v.extend(extra.iter().map(OsString::from));
    v
}

#[test]
fn vault_dry_run_checks_without_logging_in() {
    let s = VaultRobot::start();
    let kt = s.env.write_private("robot.keytab", "");
    fs::copy(s.kdc.robot_keytab(), &kt).unwrap();
    let kdc_before = s.kdc.requests();
    let r = run(s
        .cmd()
        .args(["get", "--dry-run", "-v"])
        .args(vault_args(&s, &kt, &[])));
    assert_eq!(r.code, 0, "{}", r.stderr);
    for check in [
        "keytab",
        "GSSAPI library",
        "Vault http://localhost",
        "cached Vault token",
        "clock",
    ] {
        assert!(
            r.stderr.contains(&format!("dry run: ok: {check}")),
            "{check}: {}",
            r.stderr
        );
    }
    assert!(
        r.stderr.contains("holds robot/ci.example.org@ROBOT.TEST"),
        "{}",
        r.stderr
    );
    assert_eq!(s.stub.requests("login"), 0, "no login");
    assert_eq!(s.stub.requests("creds"), 0, "no token read");
    assert_eq!(s.stub.requests("health"), 1);
    assert_eq!(s.kdc.requests(), kdc_before, "no Kerberos traffic");
    assert!(!s.env.path("vt").exists() && !s.env.path("bt").exists());

    // A principal the keytab does not hold: 77 for both.
    same_code_with(
        || s.cmd(),
        None,
        &vault_args(&s, &kt, &["--principal", "someone/else@ROBOT.TEST"]),
        77,
        &["holds no key for someone/else@ROBOT.TEST"],
    );

    // The keytab readable by others: 77 for both.
    fs::set_permissions(&kt, fs::Permissions::from_mode(0o640)).unwrap();
    same_code_with(
        || s.cmd(),
        None,
        &vault_args(&s, &kt, &[]),
        77,
        &["chmod 600"],
    );
    fs::set_permissions(&kt, fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn vault_storer_settings_that_disagree_exit_78_in_both() {
    let s = VaultRobot::start();
    let fakes = Fakes::new(&s.env);
    fakes.answer(
        "condor_config_val",
        "--credkey=someone-else --role=robot --vaultserver=elsewhere.example.org\n",
        0,
    );
    fakes
        .answer("condor_vault_storer", "", 0)
        .answer("condor_store_cred", "", 0);
    let cmd = || {
        let mut c = s.cmd();
        c.env("PATH", fakes.path_var());
        c
    };
    let args = vault_args(&s, &s.kdc.robot_keytab(), &["--condor=vault-storer"]);
    same_code_with(
        cmd,
        None,
        &args,
        78,
        &[
            "SEC_CREDENTIAL_GETTOKEN_OPTS",
            "--credkey=robot/ci.example.org",
        ],
    );
    assert!(
        !fakes.dir.join("condor_vault_storer.argv").exists(),
        "the storer never ran"
    );
}

#[test]
fn vault_down_exits_75_in_both() {
    let mut s = VaultRobot::start();
    let kt = s.kdc.robot_keytab();
    let args = vault_args(&s, &kt, &[]);
    s.stub.stop();
    same_code_with(
        || s.cmd(),
        None,
        &args,
        75,
        &["Vault", "connection refused"],
    );
}

// ---------------------------------------------------------------------------
// HTCondor (--condor=credd): tools found, version band known, the credd answers.

#[test]
fn condor_credd_checks_exit_as_the_real_run() {
    let iss = Issuer::start();
    let env = Env::new();
    let fakes = Fakes::new(&env);
    let cmd = || {
        let mut c = env.cmd();
        c.env("PATH", fakes.path_var());
        c
    };
    let out = env.path("bt");
    let version = |v: &str| format!("$CondorVersion: {v} 2024-10-01 BuildID: 1 $\n");
    // A new credential each time: the real run spends the refresh token.
    let credd_args = || {
        let cred = env.minted_credential(&iss, "robot-basic").0;
        os(&[
            &"-o",
            &out,
            &"-c",
            &cred,
            &"--condor=credd",
            &"--condor-service",
            &"robot_s",
        ])
    };

    // Not installed: 78.
    let args = credd_args();
    same_code_with(cmd, Some(&iss), &args, 78, &["condor_version"]);

    // Too old for plain tokens: 78.
    fakes.answer("condor_version", &version("23.9.6"), 0);
    fakes.answer("condor_store_cred", "", 0);
    let args = credd_args();
    fs::remove_file(&out).ok();
    same_code_with(cmd, Some(&iss), &args, 78, &["23.9.6", "24.7.3"]);

    // The credd does not answer: 75.
    fakes.answer("condor_version", &version("24.10.2"), 0);
    fakes.answer("condor_store_cred", "Unable to contact local credd\n", 1);
    let args = credd_args();
    fs::remove_file(&out).ok();
    same_code_with(cmd, Some(&iss), &args, 75, &["could not reach the credd"]);
    let calls = read(&fakes.dir.join("condor_store_cred.argv"));
    assert!(
        calls.starts_with("--call\nquery-oauth\n-s\nrobot_s\n"),
        "the dry run only queries: {calls}"
    );

    // All well: the dry run stores nothing.
    fs::remove_file(fakes.dir.join("condor_store_cred.argv")).unwrap();
    fakes.answer("condor_store_cred", "", 0);
    let r = run(cmd().arg("get").arg("--dry-run").args(&args));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let calls = read(&fakes.dir.join("condor_store_cred.argv"));
    assert!(!calls.contains("add-oauth"), "{calls}");
}

// ---------------------------------------------------------------------------
// The credential's directory must take the rewrite of a rotated refresh token: the
// renewal's own pre-send check (issue 13), run by the dry run.

/// A uid with no account, for the robot that is not root.
const ROBOT: u32 = 64_914;

#[test]
#[ignore = "needs root"]
fn a_credential_directory_that_refuses_the_rewrite_exits_as_the_real_run() {
    use std::os::unix::process::CommandExt;
    let iss = Issuer::start();
    let env = Env::new();
    fs::set_permissions(env.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let own = |p: &Path, uid: u32, m: u32| {
        std::os::unix::fs::chown(p, Some(uid), Some(uid)).unwrap();
        fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    };
    // The robot's credential (0600) in a root-owned 0755 directory: 73.
    let cdir = env.path("etc-robot");
    fs::create_dir(&cdir).unwrap();
    own(&cdir, 0, 0o755);
    let rt = iss.refresh_token("robot-basic");
    let cred = cdir.join("cred.json");
    fs::write(
        &cred,
        json!({"version": 1, "issuer": iss.url, "client_id": "robot-basic",
               "client_secret": "robot-basic-secret", "refresh_token": rt})
        .to_string(),
    )
    .unwrap();
    own(&cred, ROBOT, 0o600);
    let home = env.path("home");
    fs::create_dir(&home).unwrap();
    own(&home, ROBOT, 0o700);
    let out = home.join("bt");
    let as_robot = || {
        let mut c = env.cmd();
        c.env("HOME", &home)
            .current_dir(&home)
            .uid(ROBOT)
            .gid(ROBOT);
        c
    };
    let args = os(&[&"-o", &out, &"-c", &cred]);
    same_code_with(
        as_robot,
        Some(&iss),
        &args,
        73,
        &[&cdir.display().to_string()],
    );
    assert_eq!(
        iss.requests("token"),
        0,
        "the real run refused too, before sending"
    );

    // Root, with its credential under a directory a user may write: 77 for both.
    own(&cdir, ROBOT, 0o755);
    own(&cred, 0, 0o600);
    let out = env.path("bt");
    let args = os(&[&"-o", &out, &"-c", &cred]);
    same_code(&env, Some(&iss), &args, 77, &["credential"]);
}
