//! `--condor`: the hand-off to HTCondor. HTCondor's commands are replaced by fake
//! `condor_version`, `condor_store_cred`, `condor_config_val` and `condor_vault_storer`
//! scripts first on PATH that record their argv, stdin and environment and answer
//! with a chosen output and exit code. (scripts/condor-real.sh runs a real HTCondor.)

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use common::htcondor::Fakes;
use common::vault::VaultRobot;
use common::{assert_exit, read, Env, Issuer, Output, Run};
use robot_token::output::condor::{self, Handoff, Tools, VaultStorer};

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// A JWT that lives for `secs` more: the fresh path reuses it without any network.
fn jwt(secs: i64, sub: &str) -> String {
    let exp = robot_token::token::now() + secs;
    format!(
        "{}.{}.c2ln",
        b64(r#"{"alg":"RS256","typ":"JWT"}"#),
        b64(&format!(
            r#"{{"exp":{exp},"sub":"{sub}","scope":"condor:/WRITE"}}"#
        ))
    )
}

/// A robot whose token file already holds a fresh token.
struct Robot {
    env: Env,
    fakes: Fakes,
    token_file: PathBuf,
    token: String,
}

impl Robot {
    fn fresh() -> Robot {
        let env = Env::new();
        let fakes = Fakes::new(&env);
        let token = format!("{}\n", jwt(7200, "robot"));
        let token_file = env.write_private("bt", &token);
        // Never read on the fresh path, but the options need a credential.
        env.write_private("cred.json", r#"{"version":1,"client_id":"x"}"#);
        Robot {
            env,
            fakes,
            token_file,
            token,
        }
    }

    /// `get -o OUT -c cred.json`.
    fn line(&self, out: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        self.env.get(out, "cred.json")
    }

    /// `get` of the token file with the fake tools, `-m 60` and `extra`.
    fn get(&self, extra: &[&str]) -> Output {
        self.line(&self.token_file)
            .env("PATH", self.fakes.path_var())
            .args(["-m", "60"])
            .args(extra)
            .run()
    }

    /// HTCondor `version` whose condor_store_cred fails: add-oauth prints what it
    /// prints whatever the cause, and query-oauth -d says why on stderr: `why`.
    fn failing_credd(&self, version: &str, why: &str) {
        self.fakes
            .version(version)
            .tool("condor_store_cred")
            .set("condor_store_cred.exit", "1")
            .set("condor_store_cred.add-oauth.out", ADD_OAUTH_FAILED)
            .set("condor_store_cred.query-oauth.err", why);
    }

    fn assert_token_intact(&self) {
        assert_eq!(read(&self.token_file), self.token, "token file changed");
    }
}

// --- file -------------------------------------------------------------------

#[test]
fn file_mode_with_v_prints_the_lines_to_use_and_leaves_tokens_d_alone() {
    let r = Robot::fresh();
    let tokens_d = r.env.path(".condor/tokens.d");
    std::fs::create_dir_all(&tokens_d).unwrap();
    std::fs::write(tokens_d.join("pool.idtoken"), "idtoken-of-the-pool\n").unwrap();

    let out = r.get(&["--condor", "-v"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let abs = r.token_file.display();
    assert!(
        out.stdout
            .lines()
            .any(|l| l == format!("export _CONDOR_SCITOKENS_FILE={abs}")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l == format!("scitokens_file = {abs}")),
        "{}",
        out.stdout
    );
    r.assert_token_intact();
    let names: Vec<_> = std::fs::read_dir(&tokens_d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["pool.idtoken"]);
    assert_eq!(
        read(&tokens_d.join("pool.idtoken")),
        "idtoken-of-the-pool\n"
    );

    // Without -v: silent, as cron wants.
    let out = r.get(&["--condor=file"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "");
}

#[test]
fn file_mode_refuses_a_token_file_in_tokens_d() {
    let r = Robot::fresh();
    let dir = r.env.path(".condor/tokens.d");
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("robot.token");
    let out = r.line(&target).arg("--condor").run();
    assert_exit(&out, 64, "IDTOKENS");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);

    // Also as the second of several token files.
    let out = r
        .line(&r.token_file)
        .args(["--condor", "-o"])
        .arg(&target)
        .run();
    assert_exit(&out, 64, "IDTOKENS");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    r.assert_token_intact();
}

#[test]
fn file_mode_warns_when_the_xdg_runtime_file_shadows_the_written_one() {
    let r = Robot::fresh();
    let run_dir = r.env.path("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::set_permissions(&run_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let xdg = run_dir.join(format!("bt_u{}", robot_token::store::euid()));
    std::fs::write(&xdg, format!("{}\n", jwt(600, "someone-else"))).unwrap();

    let get = |r: &Robot| {
        r.line(&r.token_file)
            .env("PATH", r.fakes.path_var())
            .env("XDG_RUNTIME_DIR", &run_dir)
            .args(["-m", "60", "--condor"])
            .run()
    };
    let out = get(&r);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("warning") && out.stderr.contains(&xdg.display().to_string()),
        "{}",
        out.stderr
    );
    r.assert_token_intact();

    // The same token there shadows nothing.
    std::fs::write(&xdg, &r.token).unwrap();
    let out = get(&r);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");

    // Nor does the written file itself.
    let out = r
        .line(&xdg)
        .env("XDG_RUNTIME_DIR", &run_dir)
        .args(["-m", "60", "--condor"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
}

#[test]
fn file_mode_rewrites_a_reused_file_into_the_form_htcondor_reads() {
    let r = Robot::fresh();
    let tok = r.token.trim().to_string();
    std::fs::write(&r.token_file, format!("  {tok}\r\n")).unwrap();
    let out = r.get(&["--condor"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(read(&r.token_file), format!("{tok}\n"));
    let mode = std::fs::metadata(&r.token_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

// --- credd ------------------------------------------------------------------

/// What condor_store_cred add-oauth prints when it fails, whatever the cause.
const ADD_OAUTH_FAILED: &str = "Account: <current> (robot)\nCredType: oauth\n\nOperation failed.\n    Make sure your ALLOW_WRITE setting includes this host.\n";

fn store_args(extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["add-oauth", "-s", "robotsvc"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[test]
fn credd_after_a_renewal_pipes_the_new_token_with_dash_p_on_24_10_2() {
    let issuer = Issuer::start();
    let env = Env::new();
    let fakes = Fakes::new(&env);
    fakes.version("24.10.2").tool("condor_store_cred");
    let rt = issuer.refresh_token("robot-basic");
    env.credential(&issuer, "robot-basic", Some(&rt));
    let tf = env.path("bt");
    let mut c = env.get(&tf, "cred.json");
    c.env("PATH", fakes.path_var()).args(["-m", "60"]).args([
        "--condor=credd",
        "--condor-service",
        "robotsvc",
        "--condor-handle",
        "prod",
    ]);
    let out = c.run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let written = read(&tf);
    assert_eq!(issuer.requests("token"), 1, "a real renewal happened");
    assert_eq!(
        fakes.calls("condor_store_cred"),
        vec![store_args(&["-H", "prod", "-P", "-i", "-"])]
    );
    assert_eq!(fakes.calls("condor_version"), vec![Vec::<String>::new()]);
    // The token reaches condor_store_cred only on stdin, exactly as in the file.
    assert_eq!(fakes.recorded("condor_store_cred.stdin"), written);
    fakes.assert_no_token_outside_stdin(&written);
    assert_eq!(fakes.recorded("condor_version.stdin"), "");
}

#[test]
fn credd_argv_for_each_version_band() {
    for (version, want) in [
        ("24.10.2", Some(store_args(&["-P", "-i", "-"]))),
        ("25.0.1", Some(store_args(&["-P", "-i", "-"]))),
        ("24.10.1", Some(store_args(&["-i", "-"]))),
        ("24.7.3", Some(store_args(&["-i", "-"]))),
        ("24.7.2", None),
        ("23.9.6", None),
    ] {
        let r = Robot::fresh();
        r.fakes.version(version).tool("condor_store_cred");
        let out = r.get(&["--condor=credd", "--condor-service", "robotsvc"]);
        match want {
            Some(argv) => {
                assert_eq!(out.code, 0, "{version}: {}", out.stderr);
                assert_eq!(r.fakes.calls("condor_store_cred"), vec![argv], "{version}");
                assert_eq!(r.fakes.recorded("condor_store_cred.stdin"), r.token);
                r.fakes.assert_no_token_outside_stdin(&r.token);
            }
            None => {
                assert_eq!(out.code, 78, "{version}: {}", out.stderr);
                assert!(
                    out.stderr.contains(&format!("HTCondor {version} "))
                        && out.stderr.contains("24.7.3 or later"),
                    "{}",
                    out.stderr
                );
                assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
                assert!(r.fakes.calls("condor_store_cred").is_empty(), "{version}");
            }
        }
        r.assert_token_intact();
    }
}

#[test]
fn credd_unreachable_is_a_temporary_failure_and_the_token_file_stays() {
    let r = Robot::fresh();
    r.failing_credd(
        "24.10.2",
        "12/01/26 08:28:28 Can't find address for credd vm\n12/01/26 08:28:28 STORE_CRED: Failed to start STORE_CRED command. Unable to contact local credd\n",
    );
    let out = r.get(&["--condor=credd", "--condor-service", "robotsvc"]);
    assert_exit(&out, 75, "could not reach the credd");
    assert!(out.stderr.contains("is up to date"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    let calls = r.fakes.calls("condor_store_cred");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1], vec!["query-oauth", "-s", "robotsvc", "-d"]);
    // The diagnosis carries no token.
    assert_eq!(r.fakes.recorded("condor_store_cred.stdin"), r.token);
    r.assert_token_intact();
}

#[test]
fn credd_refusal_is_a_configuration_error_and_the_token_file_stays() {
    for (out_file, text) in [
        (
            "condor_store_cred.add-oauth.err",
            "ERROR: Unrecognized option - '-P'\n",
        ),
        (
            "condor_store_cred.add-oauth.err",
            "Operation failed because of a configuration error\n",
        ),
        // Generic failure, but the credd answers: it refused.
        (
            "condor_store_cred.add-oauth.out",
            "Operation failed.\n    Make sure your ALLOW_WRITE setting includes this host.\n",
        ),
    ] {
        let r = Robot::fresh();
        r.fakes
            .version("24.10.2")
            .tool("condor_store_cred")
            .set("condor_store_cred.exit", "1")
            .set(out_file, text)
            .set(
                "condor_store_cred.query-oauth.out",
                "No credential is stored.\n",
            );
        let out = r.get(&["--condor=credd", "--condor-service", "robotsvc"]);
        assert_eq!(out.code, 78, "{text}: {}", out.stderr);
        assert!(out.stderr.contains("refused"), "{}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        r.assert_token_intact();
    }
}

#[test]
fn credd_stuck_is_killed_after_the_timeout_and_exits_75() {
    let r = Robot::fresh();
    r.fakes
        .version("24.10.2")
        .tool("condor_store_cred")
        .set("condor_store_cred.sleep", "60");
    let started = std::time::Instant::now();
    let out = r.get(&[
        "--condor=credd",
        "--condor-service",
        "robotsvc",
        "--timeout",
        "1s",
    ]);
    assert_exit(&out, 75, "no answer within 1 s");
    // Not a timing assertion: a bound that only a hang would exceed.
    assert!(started.elapsed() < Duration::from_secs(50));
    r.assert_token_intact();
}

#[test]
fn credd_without_htcondor_is_a_configuration_error() {
    let r = Robot::fresh();
    let out = r
        .line(&r.token_file)
        .env("PATH", "/nonexistent")
        .args(["-m", "60"])
        .args(["--condor=credd", "--condor-service", "robotsvc"])
        .run();
    assert_exit(&out, 78, "condor_version is not on PATH");
    r.assert_token_intact();
}

#[test]
fn credd_with_v_shows_condor_output_without_the_token() {
    let r = Robot::fresh();
    let tok = r.token.trim().to_string();
    r.fakes
        .version("24.10.2")
        .tool("condor_store_cred")
        // A tool that echoes what it got must not make us print the token.
        .set(
            "condor_store_cred.out",
            &format!("Operation succeeded.\nstored {tok}\n"),
        );
    let out = r.get(&["--condor=credd", "--condor-service", "robotsvc", "-vv"]);
    assert_exit(&out, 0, "condor_store_cred: Operation succeeded.");
    assert!(!out.stderr.contains(&tok), "{}", out.stderr);
    assert!(!out.stdout.contains(&tok));
    // Without -v the tool's output is not shown.
    let out = r.get(&["--condor=credd", "--condor-service", "robotsvc"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
}

/// A robot with a real grant at `issuer` whose token file holds a token with `left`
/// seconds to live.
fn robot_with_grant(issuer: &Issuer, left: i64) -> Robot {
    let env = Env::new();
    let fakes = Fakes::new(&env);
    let rt = issuer.refresh_token("robot-basic");
    env.credential(issuer, "robot-basic", Some(&rt));
    let token = format!("{}\n", jwt(left, "robot"));
    let token_file = env.write_private("bt", &token);
    Robot {
        env,
        fakes,
        token_file,
        token,
    }
}

#[test]
fn credd_renews_earlier_by_sec_credential_refresh() {
    let issuer = Issuer::start();
    let credd = ["--condor=credd", "--condor-service", "robotsvc", "-v"];
    // (SEC_CREDENTIAL_REFRESH, seconds left, renewed?) with --minsecs 60.
    for (refresh, left, renewed) in [
        (Some("10"), 80, false),
        (Some("30"), 80, true),
        (None, 200, true),
        (Some("0"), 80, false),
        // An expression condor_config_val does not evaluate: HTCondor's default.
        (Some("5 * 60"), 200, true),
    ] {
        issuer.reset();
        let r = robot_with_grant(&issuer, left);
        r.fakes.version("25.14.1").tool("condor_store_cred");
        if let Some(v) = refresh {
            r.fakes.refresh(v);
        }
        let out = r.get(&credd);
        let what = format!("SEC_CREDENTIAL_REFRESH {refresh:?}, {left} s left");
        assert_eq!(out.code, 0, "{what}: {}", out.stderr);
        assert_eq!(
            issuer.requests("token"),
            u64::from(renewed),
            "{what}: {}",
            out.stderr
        );
        assert_eq!(
            r.fakes.calls("condor_config_val"),
            vec![vec!["SEC_CREDENTIAL_REFRESH"]],
            "{what}"
        );
        // Whatever was decided, the credd gets what the token file holds.
        assert_eq!(
            r.fakes.recorded("condor_store_cred.stdin"),
            read(&r.token_file)
        );
        assert_eq!(read(&r.token_file) != r.token, renewed, "{what}");
        let want = match refresh {
            Some("0") => "HTCondor never gives running jobs a renewed token",
            Some("5 * 60") => "is not a number of seconds: assuming HTCondor's default, 300 s",
            Some(v) => &format!("SEC_CREDENTIAL_REFRESH {v} s"),
            None => "SEC_CREDENTIAL_REFRESH 300 s",
        };
        assert!(out.stderr.contains(want), "{what}: {}", out.stderr);
    }
}

#[test]
fn credd_warns_when_tokens_cannot_outlive_the_refresh_interval() {
    // The test issuer's tokens live 3600 s.
    let issuer = Issuer::start();
    for (refresh, want) in [
        ("4000", "not longer than SEC_CREDENTIAL_REFRESH (4000 s)"),
        ("3580", "every run renews it; lower --minsecs below"),
        ("600", ""),
    ] {
        let r = robot_with_grant(&issuer, -10);
        r.fakes
            .version("25.14.1")
            .tool("condor_store_cred")
            .refresh(refresh);
        let out = r.get(&["--condor=credd", "--condor-service", "robotsvc"]);
        assert_eq!(out.code, 0, "{refresh}: {}", out.stderr);
        assert_ne!(read(&r.token_file), r.token, "{refresh}: renewed");
        if want.is_empty() {
            assert_eq!(out.stderr, "", "{refresh}");
        } else {
            assert!(out.stderr.contains(want), "{refresh}: {}", out.stderr);
            assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
            // Not renew's generic advice, which ignores SEC_CREDENTIAL_REFRESH.
            assert!(
                !out.stderr.contains("less than --minsecs 60:"),
                "{}",
                out.stderr
            );
        }
    }
}

#[test]
fn credd_service_with_underscore_warns_and_names_the_handle_option() {
    let r = Robot::fresh();
    r.fakes.version("25.14.1").tool("condor_store_cred");
    let out = r.get(&["--condor=credd", "--condor-service", "robot_svc"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("warning")
            && out
                .stderr
                .contains("--condor-service robot --condor-handle svc"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    // Stored as asked all the same.
    assert_eq!(
        r.fakes.calls("condor_store_cred"),
        vec![vec!["add-oauth", "-s", "robot_svc", "-P", "-i", "-"]]
    );
    let out = r.get(&[
        "--condor=credd",
        "--condor-service",
        "robot",
        "--condor-handle",
        "svc",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
}

#[test]
fn credd_v_prints_the_sha256sum_of_the_token_file() {
    use sha2::{Digest, Sha256};
    let issuer = Issuer::start();
    let r = robot_with_grant(&issuer, -10);
    r.fakes.version("25.14.1").tool("condor_store_cred");
    let out = r.get(&["--condor=credd", "--condor-service", "robotsvc", "-v"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let file = std::fs::read(&r.token_file).unwrap();
    let sum: String = Sha256::digest(&file)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // What `sha256sum FILE` prints begins with what both lines say.
    let said = |what: &str| {
        out.stderr
            .lines()
            .find(|l| l.contains(what))
            .and_then(|l| l.split("sha256sum begins ").nth(1))
            .map(|rest| {
                rest.chars()
                    .take_while(char::is_ascii_hexdigit)
                    .collect::<String>()
            })
            .unwrap_or_else(|| panic!("no {what:?} line with a sha256sum: {}", out.stderr))
    };
    for what in ["wrote", "stored"] {
        let fp = said(what);
        assert!(
            fp.len() >= 8 && sum.starts_with(&fp),
            "{what}: {fp} vs {sum}"
        );
    }
    assert_eq!(r.fakes.recorded("condor_store_cred.stdin").as_bytes(), file);
}

#[test]
fn credd_denied_by_its_policy_is_a_configuration_error() {
    let r = Robot::fresh();
    // HTCondor 25.14.1's -d output when the credd's ALLOW_WRITE/DENY_WRITE refuses
    // the user (from a real pool): a denial, then "Unable to contact local credd".
    r.failing_credd(
        "25.14.1",
        "12/06/26 20:46:25 Can't open directory \"/etc/condor/passwords.d\" as PRIV_ROOT, errno: 13 (Permission denied)\n\
             12/06/26 20:46:25 SECMAN: FAILED: Received \"DENIED\" from server for user robot@localhost using method FS.\n\
             12/06/26 20:46:25 ERROR: SECMAN:2010:Received \"DENIED\" from server for user robot@localhost using method FS.\n\
             12/06/26 20:46:25 STORE_CRED: Failed to start STORE_CRED command. Unable to contact local credd\n",
        );
    let out = r.get(&["--condor=credd", "--condor-service", "robotsvc"]);
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(
        out.stderr.contains("the credd denied")
            && out.stderr.contains("Received \"DENIED\" from server")
            && out.stderr.contains("ALLOW_WRITE")
            && !out.stderr.contains("12/06/26"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    r.assert_token_intact();
}

#[test]
fn condor_options_are_checked_before_anything_runs() {
    let r = Robot::fresh();
    r.fakes.version("24.10.2").tool("condor_store_cred");
    for (args, needle) in [
        (vec!["--condor=credd"], "--condor-service"),
        (vec!["--condor-service", "x"], "--condor=credd"),
        (vec!["--condor", "--condor-service", "x"], "--condor=credd"),
        (
            vec!["--condor=credd", "--condor-service=-P"],
            "--condor-service",
        ),
        (
            vec!["--condor=credd", "--condor-service", "a/b"],
            "--condor-service",
        ),
        (
            vec![
                "--condor=credd",
                "--condor-service",
                "s",
                "--condor-handle",
                "x y",
            ],
            "--condor-handle",
        ),
        (vec!["--condor=vault-storer"], "Vault"),
        (vec!["--condor=bogus"], "bogus"),
    ] {
        let out = r.get(&args);
        assert_eq!(out.code, 64, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    }
    assert!(r.fakes.calls("condor_version").is_empty());
    r.assert_token_intact();
}

#[test]
fn condor_mode_from_the_environment() {
    let r = Robot::fresh();
    r.fakes.version("24.8.1").tool("condor_store_cred");
    let out = r
        .line(&r.token_file)
        .env("PATH", r.fakes.path_var())
        .env("ROBOT_TOKEN_CONDOR", "credd")
        .env("ROBOT_TOKEN_CONDOR_SERVICE", "robotsvc")
        .args(["-m", "60"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        r.fakes.calls("condor_store_cred"),
        vec![store_args(&["-i", "-"])]
    );
}

// --- vault-storer (through the library until the Vault source lands) --------

fn storer(ccache: &Path) -> VaultStorer {
    VaultStorer {
        vault_server: "vault.example.org".into(),
        issuer: "igwn".into(),
        role: "prod".into(),
        credkey: "robot".into(),
        ccache: ccache.to_path_buf(),
    }
}

fn tools(f: &Fakes) -> Tools {
    Tools {
        path: f.path_var().into(),
        timeout: Duration::from_secs(20),
    }
}

#[test]
fn vault_storer_runs_the_storer_with_our_kerberos_cache_when_options_match() {
    let r = Robot::fresh();
    let cc = r.env.path("krb5cc_robot");
    r.fakes
        .tool("condor_config_val")
        .set(
            "condor_config_val.out",
            "--credkey=robot --role=prod --vaultserver=https://vault.example.org:8200\n",
        )
        .tool("condor_vault_storer");
    condor::hand_off(
        &Handoff::VaultStorer(storer(&cc)),
        &r.token_file,
        &tools(&r.fakes),
    )
    .unwrap();
    assert_eq!(
        r.fakes.calls("condor_config_val"),
        vec![vec!["SEC_CREDENTIAL_GETTOKEN_OPTS"]]
    );
    assert_eq!(
        r.fakes.calls("condor_vault_storer"),
        vec![vec!["-v", "igwn"]]
    );
    let env = r.fakes.recorded("condor_vault_storer.env");
    assert!(
        env.lines()
            .any(|l| l == format!("KRB5CCNAME=FILE:{}", cc.display())),
        "{env}"
    );
    // Its htgettoken gets a throwaway bearer token file, never our --outfile.
    let bt = env
        .lines()
        .find_map(|l| l.strip_prefix("BEARER_TOKEN_FILE="))
        .expect("BEARER_TOKEN_FILE set for the storer");
    assert_ne!(Path::new(bt), r.token_file);
    assert!(!Path::new(bt).exists(), "the scratch directory is removed");
    assert_eq!(r.fakes.recorded("condor_vault_storer.stdin"), "");
    r.fakes.assert_no_token_outside_stdin(&r.token);
    r.assert_token_intact();
}

#[test]
fn vault_storer_prefers_condor_credential_storer() {
    let r = Robot::fresh();
    r.fakes
        .tool("condor_config_val")
        .set(
            "condor_config_val.out",
            "-a vault.example.org -r prod --credkey robot\n",
        )
        .tool("condor_vault_storer")
        .tool("condor_credential_storer");
    let cc = PathBuf::from("KCM:1000");
    condor::hand_off(
        &Handoff::VaultStorer(storer(&cc)),
        &r.token_file,
        &tools(&r.fakes),
    )
    .unwrap();
    assert_eq!(
        r.fakes.calls("condor_credential_storer"),
        vec![vec!["-v", "igwn"]]
    );
    assert!(r.fakes.calls("condor_vault_storer").is_empty());
    assert!(r
        .fakes
        .recorded("condor_credential_storer.env")
        .lines()
        .any(|l| l == "KRB5CCNAME=KCM:1000"));
}

#[test]
fn vault_storer_mismatch_names_the_line_for_user_config() {
    for (have, code) in [
        (
            "--credkey=other --role=prod --vaultserver=vault.example.org\n",
            0,
        ),
        (
            "--credkey=robot --role=dev --vaultserver=vault.example.org\n",
            0,
        ),
        (
            "--credkey=robot --role=prod --vaultserver=vault.example.org:8443\n",
            0,
        ),
        ("", 1),
    ] {
        let r = Robot::fresh();
        r.fakes
            .tool("condor_config_val")
            .tool("condor_vault_storer")
            .set("condor_config_val.exit", &code.to_string());
        if code == 0 {
            r.fakes.set("condor_config_val.out", have);
        } else {
            r.fakes.set(
                "condor_config_val.err",
                "Not defined: SEC_CREDENTIAL_GETTOKEN_OPTS\n",
            );
        }
        let e = condor::hand_off(
            &Handoff::VaultStorer(storer(Path::new("/tmp/cc"))),
            &r.token_file,
            &tools(&r.fakes),
        )
        .unwrap_err();
        assert_eq!(e.exit().code(), 78, "{have}: {e}");
        assert!(
            e.message().contains(
                "add this line to ~/.condor/user_config: SEC_CREDENTIAL_GETTOKEN_OPTS = \
                 --credkey=robot --role=prod --vaultserver=vault.example.org"
            ),
            "{e}"
        );
        assert!(r.fakes.calls("condor_vault_storer").is_empty(), "{have}");
        r.assert_token_intact();
    }
}

#[test]
fn vault_storer_failures_map_to_exit_codes_and_keep_the_token_file() {
    for (err, code, exit) in [
        (
            "condor_vault_storer: Failed to store condor credentials for igwn\n",
            1,
            75,
        ),
        ("condor_vault_storer: htgettoken failed\n", 1, 75),
        ("line 12: htgettoken: command not found\n", 1, 78),
    ] {
        let r = Robot::fresh();
        r.fakes
            .tool("condor_config_val")
            .set(
                "condor_config_val.out",
                "--credkey=robot --role=prod --vaultserver=vault.example.org\n",
            )
            .tool("condor_vault_storer")
            .set("condor_vault_storer.err", err)
            .set("condor_vault_storer.exit", &code.to_string());
        let e = condor::hand_off(
            &Handoff::VaultStorer(storer(Path::new("/tmp/cc"))),
            &r.token_file,
            &tools(&r.fakes),
        )
        .unwrap_err();
        assert_eq!(e.exit().code(), exit, "{err}: {e}");
        assert!(e.message().contains("is up to date"), "{e}");
        r.assert_token_intact();
    }
}

/// A Vault robot, and fake HTCondor tools whose `condor_config_val` gives the Vault
/// options of that robot (credkey, role, server), with the storer `storer`.
fn vault_robot_with(storer: &str) -> (VaultRobot, Fakes) {
    let v = VaultRobot::start();
    let fakes = Fakes::new(&v.env);
    let (credkey, role) = robot_token::source::vault::principal_defaults(&v.kdc.robot_principal());
    fakes
        .tool("condor_config_val")
        .set(
            "condor_config_val.out",
            &format!(
                "--credkey={credkey} --role={role} --vaultserver={}\n",
                v.stub.server()
            ),
        )
        .tool(storer);
    (v, fakes)
}

/// The robot's `get --condor=vault-storer` with the fake tools, plus `extra`.
fn get_vault_storer(v: &VaultRobot, fakes: &Fakes, extra: &[&str]) -> Output {
    v.line("get", &v.kdc.robot_keytab())
        .env("PATH", fakes.path_var())
        .args(["--timeout", "5s", "--condor=vault-storer"])
        .args(extra)
        .run()
}

#[test]
fn vault_storer_after_a_vault_renewal_through_the_binary() {
    let (v, fakes) = vault_robot_with("condor_vault_storer");
    let (env, served, out_file) = (&v.env, &v.served, &v.out);
    let get = || get_vault_storer(&v, &fakes, &[]);
    let out = get();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(read(out_file).trim(), served.trim());
    assert_eq!(fakes.calls("condor_vault_storer"), vec![vec!["-v", "igwn"]]);
    let storer_env = fakes.recorded("condor_vault_storer.env");
    let cc = storer_env
        .lines()
        .find_map(|l| l.strip_prefix("KRB5CCNAME=FILE:"))
        .expect("KRB5CCNAME=FILE:<our cache>");
    assert!(
        cc.starts_with(&env.path(".cache/robot-token/krb5").display().to_string()),
        "{cc}"
    );
    assert!(Path::new(cc).is_file(), "the keytab login's cache exists");
    fakes.assert_no_token_outside_stdin(served);

    // Reuse: the token is fresh, the storer runs again, with a ticket in the cache.
    let out = get();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(fakes.calls("condor_vault_storer").len(), 2);
    assert!(Path::new(cc).is_file());
}

#[test]
fn vault_storer_failures_through_the_binary_say_what_failed() {
    let (v, fakes) = vault_robot_with("condor_credential_storer");
    fakes.set("condor_credential_storer.exit", "1");
    let (served, out_file) = (&v.served, &v.out);
    let get = |extra: &[&str]| get_vault_storer(&v, &fakes, extra);
    // HTCondor 25's storer without htgettoken: what its bash prints.
    fakes.set(
        "condor_credential_storer.err",
        "/usr/bin/condor_credential_storer: line 433: htgettoken: command not found\n\
         Authentication needed for igwn\n\
         /usr/bin/condor_credential_storer: line 440: htgettoken: command not found\n\
         condor_credential_storer: htgettoken failed\n",
    );
    let out = get(&[]);
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("condor_credential_storer -v igwn failed")
            && out.stderr.contains("htgettoken is not installed"),
        "{}",
        out.stderr
    );
    assert_eq!(
        read(out_file).trim(),
        served.trim(),
        "the token file is written"
    );

    // A failure a later run may not see: how to see its output, unless -v shows it.
    fakes.set(
        "condor_credential_storer.err",
        "condor_credential_storer: Failed to store condor credentials for igwn\n",
    );
    let out = get(&[]);
    assert_exit(&out, 75, "run with -v to see its output");
    let out = get(&["-v"]);
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(!out.stderr.contains("run with -v"), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "condor_credential_storer: condor_credential_storer: Failed to store condor credentials"
        ) && out.stderr.contains("its output is above"),
        "{}",
        out.stderr
    );
}

#[test]
#[ignore = "needs root"]
fn root_hands_off_a_token_file_it_keeps_for_another_user() {
    common::require_root();
    use std::os::unix::fs::MetadataExt;
    let r = Robot::fresh();
    let nobody = 65534;
    // Written by another tool, in a form HTCondor may refuse, for user nobody.
    std::fs::write(&r.token_file, format!("  {}\r\n", r.token.trim())).unwrap();
    std::os::unix::fs::chown(&r.token_file, Some(nobody), Some(nobody)).unwrap();
    std::fs::set_permissions(&r.token_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = r
        .line(format!("{}:owner=nobody,mode=0640", r.token_file.display()))
        .args(["-m", "60", "--condor"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(read(&r.token_file), r.token);
    let m = std::fs::metadata(&r.token_file).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o777), (nobody, 0o640));
}
