//! The exec source: small scripts for every output form and failure, and the real
//! `oidc-token` of a running oidc-agent (Debian's oidc-agent-cli) against the test issuer.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};

/// A credential file with `"grant": "exec"` and extra fields.
fn exec_cred(env: &Env, command: &[&str], extra: Value) -> PathBuf {
    let mut v = json!({"version": 1, "grant": "exec", "command": command});
    if let Value::Object(m) = extra {
        for (k, x) in m {
            v[k] = x;
        }
    }
    env.write_private("cred.json", &v.to_string())
}

/// An expired token on disk, so the run renews.
fn expired_out(env: &Env, iss: &Issuer) -> (PathBuf, String) {
    let out = env.path("bt");
    let old = iss.mint_expired() + "\n";
    fs::write(&out, &old).unwrap();
    (out, old)
}

fn get(env: &Env, out: &Path, cred: &Path) -> Command {
    let mut c = env.get(out, cred);
    c.args(["-m", "600"]);
    c
}

#[test]
fn a_raw_jwt_with_a_clean_environment_and_closed_stdin() {
    let iss = Issuer::start();
    let env = Env::new();
    let (_, at) = iss.mint("robot-basic", "openid storage.read:/", None);
    let seen = env.path("seen-env");
    let stdin = env.path("seen-stdin");
    let s = env.script(
        "site-token",
        &format!(
            "env > {}\ncat > {}\necho '{at}'",
            seen.display(),
            stdin.display()
        ),
    );
    let cred = exec_cred(
        &env,
        &[s.to_str().unwrap(), "--robot", "x"],
        json!({"scope": "storage.read:/", "env": {"SITE": "fnal"}, "pass_env": ["OIDC_SOCK"], "timeout": "10s"}),
    );
    let (out, _) = expired_out(&env, &iss);
    let r = run(get(&env, &out, &cred)
        .env("SECRET_NOT_PASSED", "s3cr3t")
        .env("BEARER_TOKEN", "x.y.z")
        .env("OIDC_SOCK", "/tmp/oidc-sock"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "");
    assert_eq!(read(&out), format!("{at}\n"));
    let seen = read(&seen);
    for want in [
        "ROBOT_TOKEN_EXEC_VERSION=1",
        "ROBOT_TOKEN_EXEC_SCOPE=storage.read:/",
        "ROBOT_TOKEN_EXEC_MINSECS=600",
        "ROBOT_TOKEN_EXEC_VERBOSE=0",
        "SITE=fnal",
        "OIDC_SOCK=/tmp/oidc-sock",
        "PATH=",
    ] {
        assert!(
            seen.lines().any(|l| l.starts_with(want)),
            "{want} in {seen}"
        );
    }
    assert!(seen.contains(&format!("ROBOT_TOKEN_EXEC_OUTFILE={}", out.display())));
    assert!(seen.contains(&format!("ROBOT_TOKEN_EXEC_CREDENTIAL={}", cred.display())));
    assert!(!seen.contains("SECRET_NOT_PASSED"), "{seen}");
    assert!(!seen.contains("BEARER_TOKEN"), "{seen}");
    assert_eq!(read(&stdin), "", "stdin is closed");
    // No network was needed.
    assert_eq!(iss.requests("token"), 0);
}

#[test]
fn json_with_an_access_token() {
    let iss = Issuer::start();
    let env = Env::new();
    let (_, at) = iss.mint("robot-basic", "openid storage.read:/", None);
    let s = env.script(
        "helper",
        &format!(r#"printf '{{"access_token":"{at}","expires_in":3600,"token_type":"Bearer"}}\n'"#),
    );
    let cred = exec_cred(&env, &[s.to_str().unwrap()], json!({}));
    let (out, _) = expired_out(&env, &iss);
    let r = run(get(&env, &out, &cred).arg("-v"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(read(&out), format!("{at}\n"));
    assert!(!r.stderr.contains(&at), "{}", r.stderr);
    // Fresh now: the command is not run again.
    let marker = env.path("ran");
    let s2 = env.script("helper", &format!("touch {}; exit 1", marker.display()));
    assert_eq!(s, s2);
    let r = run(&mut get(&env, &out, &cred));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!marker.exists(), "the fresh path never runs the command");
}

#[test]
fn json_with_only_a_refresh_token_is_redeemed_at_the_issuer() {
    let iss = Issuer::start();
    let env = Env::new();
    let rt = iss.refresh_token("robot-basic");
    let s = env.script("helper", &format!(r#"echo '{{"refresh_token":"{rt}"}}'"#));
    let cred = exec_cred(
        &env,
        &[s.to_str().unwrap()],
        json!({"issuer": iss.url, "client_id": "robot-basic", "client_secret": "robot-basic-secret",
               "scope": "openid offline_access storage.read:/"}),
    );
    let before = read(&cred);
    let (out, _) = expired_out(&env, &iss);
    iss.reset();
    let r = run(get(&env, &out, &cred).arg("-v"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.requests("token"), 1);
    let tok = read(&out);
    assert!(lifetime(&tok) > 3000);
    let claims = robot_token::token::decode(robot_token::token::trim(&tok)).unwrap();
    assert_eq!(claims.str_claim("client_id"), Some("robot-basic"));
    // The command owns the credential: the file is not rewritten with a rotated token.
    assert_eq!(read(&cred), before);
    assert!(!r.stderr.contains(&rt), "{}", r.stderr);

    // Without issuer and client_id there is nothing to redeem it with: 78, old token kept.
    let cred = exec_cred(&env, &[s.to_str().unwrap()], json!({}));
    let (out, old) = expired_out(&env, &iss);
    let r = run(&mut get(&env, &out, &cred));
    assert_exit(&r, 78, "only a refresh token");
    assert_eq!(read(&out), old);
}

#[test]
fn a_hang_is_killed_with_its_children_and_is_75() {
    let iss = Issuer::start();
    let env = Env::new();
    let pidfile = env.path("child.pid");
    // A grandchild in the same process group, holding stdout open.
    let s = env.script(
        "hang",
        &format!(
            "sleep 300 &\necho $! > {}\necho 'waiting for the SSO' >&2\nwait",
            pidfile.display()
        ),
    );
    let cred = exec_cred(&env, &[s.to_str().unwrap()], json!({"timeout": "1s"}));
    let (out, old) = expired_out(&env, &iss);
    let r = run(&mut get(&env, &out, &cred));
    assert_exit(&r, 75, "did not finish within 1 s and was killed");
    assert!(r.stderr.contains("waiting for the SSO"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1);
    assert_eq!(read(&out), old, "old token kept");
    let pid: i32 = read(&pidfile).trim().parse().unwrap();
    // SAFETY: signal 0 only checks whether the process exists.
    let mut alive = unsafe { libc::kill(pid, 0) } == 0;
    for _ in 0..100 {
        if !alive {
            break;
        }
        wait_ms(20);
        // A killed child of a killed shell is reaped by init; give it a moment.
        alive = unsafe { libc::kill(pid, 0) } == 0
            && !fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ");
    }
    assert!(!alive, "the whole process group was killed");
}

#[test]
fn garbage_and_failures_keep_the_old_token() {
    let iss = Issuer::start();
    let env = Env::new();
    let jwt = iss.mint("robot-basic", "openid", None).1;
    let cases: Vec<(&str, String, i32, &str)> = vec![
        (
            "html",
            "echo '<html>Sign in</html>'".into(),
            65,
            "neither a JWT nor JSON",
        ),
        ("empty", "exit 0".into(), 65, "printed nothing"),
        (
            "json",
            r#"echo '{"token_type":"Bearer"}'"#.into(),
            65,
            "JSON without access_token",
        ),
        (
            "opaque",
            "echo opaque-token-abc".into(),
            65,
            "neither a JWT nor JSON",
        ),
        (
            "notjwt",
            r#"echo '{"access_token":"opaque-abc123"}'"#.into(),
            65,
            "unusable",
        ),
        (
            "exit3",
            format!(
                "echo 'helper: refresh {jwt} was rejected' >&2\necho 'second line' >&2\nexit 3"
            ),
            75,
            "exited with status 3",
        ),
        ("signal", "kill -9 $$".into(), 75, "killed by signal 9"),
        (
            "huge",
            "head -c 400000 /dev/zero | tr '\\0' a".into(),
            65,
            "more than 256 KiB",
        ),
    ];
    for (name, body, code, says) in cases {
        let s = env.script(name, &body);
        let cred = exec_cred(&env, &[s.to_str().unwrap()], json!({}));
        let (out, old) = expired_out(&env, &iss);
        let cred_before = read(&cred);
        let r = run(&mut get(&env, &out, &cred));
        assert_eq!(r.code, code, "{name}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{name}: {}", r.stderr);
        assert!(
            r.stderr.contains("the old token is kept"),
            "{name}: {}",
            r.stderr
        );
        assert_eq!(r.stderr.lines().count(), 1, "{name}: {}", r.stderr);
        assert_eq!(read(&out), old, "{name}");
        assert_eq!(read(&cred), cred_before, "{name}");
        if name == "exit3" {
            // The first stderr line, with the token replaced by its fingerprint.
            assert!(
                r.stderr.contains("helper: refresh [sha256:"),
                "{}",
                r.stderr
            );
            assert!(!r.stderr.contains(&jwt), "{}", r.stderr);
            assert!(!r.stderr.contains("second line"), "{}", r.stderr);
        }
    }
    // A program that does not exist: configuration, 78.
    let cred = exec_cred(&env, &["/nonexistent/site-token"], json!({}));
    let (out, old) = expired_out(&env, &iss);
    let r = run(&mut get(&env, &out, &cred));
    assert_exit(&r, 78, "cannot start the exec command");
    assert_eq!(read(&out), old);
    // A malformed exec credential: 65, naming the field.
    let cred = env.write_private(
        "cred.json",
        r#"{"version":1,"grant":"exec","command":"site-token"}"#,
    );
    let r = run(&mut get(&env, &out, &cred));
    assert_exit(&r, 65, "exec grant");
}

#[test]
fn stderr_is_shown_only_with_v_and_redacted() {
    let iss = Issuer::start();
    let env = Env::new();
    let (rt, at) = iss.mint("robot-basic", "openid offline_access", None);
    let s = env.script("chatty",
        &format!("echo 'chatty: got {rt} from the vault' >&2\necho 'chatty: token {at}' >&2\necho '{at}'"),
    );
    let cred = exec_cred(&env, &[s.to_str().unwrap()], json!({}));
    let (out, _) = expired_out(&env, &iss);
    let r = run(&mut get(&env, &out, &cred));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "", "silent without -v");

    let (out, _) = expired_out(&env, &iss);
    let r = run(get(&env, &out, &cred).arg("-v"));
    assert_exit(&r, 0, "chatty: got [sha256:");
    assert!(r.stderr.contains("chatty: token [sha256:"), "{}", r.stderr);
    assert!(!r.stderr.contains(&rt), "{}", r.stderr);
    assert!(!r.stderr.contains(&at), "{}", r.stderr);
}

/// A running oidc-agent with one account loaded from a real refresh token. Killed on drop.
struct Agent {
    pid: i32,
    sock: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        // SAFETY: signals the agent this test started, by its pid.
        unsafe {
            libc::kill(self.pid, libc::SIGTERM);
        }
    }
}

fn oidc_agent(env: &Env, iss: &Issuer) -> Agent {
    assert!(
        Command::new("oidc-agent")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok(),
        "oidc-agent is not installed: Debian package oidc-agent-cli (scripts/install-peers.sh installs it)"
    );
    let sock = env.path("oidc.sock");
    let conf = env.path("oidc-agent");
    let o = output_of(
        Command::new("oidc-agent")
            .args(["--json", "--socket-path"])
            .arg(&sock)
            .env("HOME", env.dir.path())
            .env("OIDC_CONFIG_DIR", &conf)
            .stdin(Stdio::null()),
    );
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|_| panic!("oidc-agent: {}", String::from_utf8_lossy(&o.stderr)));
    let pid: i32 = v["dpid"].as_str().unwrap().parse().unwrap();
    let agent = Agent {
        pid,
        sock: sock.clone(),
    };
    let rt = iss.refresh_token("robot-basic");
    // The refresh token goes through the environment, not argv.
    let o = output_of(
        Command::new("oidc-gen")
            .args([
                "-m",
                &format!("--iss={}", iss.url),
                "--client-id=robot-basic",
                "--client-secret=robot-basic-secret",
                "--rt-env",
                "--scope=openid offline_access storage.read:/",
                "--no-save",
                "--prompt=none",
                "--confirm-default",
                "robot",
            ])
            .env("HOME", env.dir.path())
            .env("OIDC_CONFIG_DIR", &conf)
            .env("OIDC_SOCK", &sock)
            .env("OIDC_REFRESH_TOKEN", &rt)
            .stdin(Stdio::null()),
    );
    assert!(
        o.status.success(),
        "oidc-gen: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    agent
}

#[test]
fn the_real_oidc_token_of_a_running_oidc_agent() {
    let iss = Issuer::start();
    let env = Env::new();
    let agent = oidc_agent(&env, &iss);
    let cred = exec_cred(
        &env,
        // --force-new: a new access token from the issuer, not the agent's cached one.
        &["oidc-token", "--force-new", "robot"],
        json!({"pass_env": ["OIDC_SOCK"], "timeout": "20s"}),
    );
    let (out, _) = expired_out(&env, &iss);
    iss.reset();
    let r = run(get(&env, &out, &cred).env("OIDC_SOCK", &agent.sock));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let tok = read(&out);
    assert!(lifetime(&tok) > 3000, "{tok}");
    let jwt = robot_token::token::decode(robot_token::token::trim(&tok)).unwrap();
    assert_eq!(jwt.str_claim("iss"), Some(iss.url.as_str()));
    assert_eq!(jwt.str_claim("sub"), Some("robot-user"));
    assert_eq!(
        iss.requests("token"),
        1,
        "oidc-agent refreshed at the issuer"
    );

    // Without OIDC_SOCK the real oidc-token fails: 75 with its own first stderr line.
    let (out, old) = expired_out(&env, &iss);
    let r = run(&mut get(&env, &out, &cred));
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("the exec command oidc-token exited with status 1 (stderr: Error:"),
        "{}",
        r.stderr
    );
    assert_eq!(read(&out), old);
}
