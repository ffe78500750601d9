//! Every failure: the documented exit code, one line on stderr, and nothing lost:
//! the old token file and the credential stay byte-for-byte intact.

mod common;

use std::fs;
use std::path::PathBuf;

use common::*;
use serde_json::json;

/// An issuer, an expired token on disk, and a credential (with a refresh token or
/// without), as they were before the run.
struct Setup {
    robot: Robot,
    old_token: String,
    old_cred: String,
}

impl std::ops::Deref for Setup {
    type Target = Robot;
    fn deref(&self) -> &Robot {
        &self.robot
    }
}

fn setup(client: &str, with_refresh: bool) -> Setup {
    let robot = Robot::of(Issuer::start(), client, with_refresh).with_opts(&[
        "--timeout",
        "2s",
        "--deadline",
        "20s",
    ]);
    Setup {
        old_token: robot.expire(),
        old_cred: read(&robot.cred),
        robot,
    }
}

impl Setup {
    fn assert_intact(&self, r: &Output, code: i32) {
        assert_eq!(r.code, code, "stderr: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "one line: {:?}", r.stderr);
        assert!(r.stderr.starts_with("robot-token: error: "), "{}", r.stderr);
        assert_eq!(
            read(&self.out),
            self.old_token,
            "old token kept byte for byte"
        );
        assert_eq!(read(&self.cred), self.old_cred, "credential unchanged");
        let leftovers = temp_files(self.env.dir.path());
        assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    }
}

#[test]
fn bad_responses_never_replace_the_token() {
    for (kind, code, words) in [
        ("truncated_json", 65, "truncated or invalid JSON"),
        ("empty", 65, "empty body"),
        ("html_login", 65, "HTML page"),
        ("no_access_token", 65, "without an access_token"),
        ("not_jwt", 65, "not a JWT"),
        ("expired_jwt", 65, "expired"),
        ("invalid_grant", 77, "bootstrap a new credential"),
        ("invalid_client", 77, "client rejected"),
    ] {
        let s = setup("robot-basic", true);
        s.iss.fault(json!({"kind": kind}));
        let r = s.get(&[]);
        s.assert_intact(&r, code);
        assert!(r.stderr.contains(words), "{kind}: {}", r.stderr);
        assert_eq!(
            s.iss.requests("token"),
            1,
            "{kind}: the refresh token is sent once"
        );
    }
}

#[test]
fn server_errors_are_temporary_and_not_retried_for_a_refresh_token() {
    for status in [500, 502, 503] {
        let s = setup("robot-basic", true);
        s.iss
            .fault(json!({"kind": "status", "status": status, "times": 5}));
        let r = s.get(&[]);
        s.assert_intact(&r, 75);
        assert!(r.stderr.contains(&format!("HTTP {status}")), "{}", r.stderr);
        assert_eq!(
            s.iss.requests("token"),
            1,
            "a refresh request that was answered is not resent"
        );
    }
}

#[test]
fn client_credentials_are_retried_with_backoff() {
    let s = setup("robot-basic", false);
    s.iss
        .fault(json!({"kind": "status", "status": 503, "times": 2}));
    let r = s.get(&["-v"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s.iss.requests("token"), 3);
    assert!(r.stderr.matches("retrying").count() == 2, "{}", r.stderr);
}

#[test]
fn retry_after_is_honoured() {
    let s = setup("robot-basic", false);
    s.iss.fault(json!({"kind": "429", "retry_after": 1}));
    let t = std::time::Instant::now();
    let r = s.get(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(t.elapsed() >= std::time::Duration::from_secs(1));
    assert_eq!(s.iss.requests("token"), 2);
}

#[test]
fn rate_limited_refresh_is_temporary() {
    let s = setup("robot-basic", true);
    s.iss.fault(json!({"kind": "429", "retry_after": 30}));
    let r = s.get(&[]);
    s.assert_intact(&r, 75);
    assert!(r.stderr.contains("Retry-After 30"), "{}", r.stderr);
}

#[test]
fn a_hanging_issuer_times_out() {
    let s = setup("robot-basic", true);
    s.iss.fault(json!({"kind": "hang"}));
    let r = s.get(&[]);
    s.assert_intact(&r, 75);
    assert!(
        r.stderr.contains("may have reached the issuer"),
        "{}",
        r.stderr
    );
    assert_eq!(s.iss.requests("token"), 1);
}

#[test]
fn a_slow_answer_past_the_timeout_is_a_lost_response() {
    // The issuer processes the refresh (and rotates) but answers after our timeout.
    let s = setup("robot-basic", true);
    s.iss.fault(json!({"kind": "slow", "delay_ms": 3000}));
    let r = s.get(&[]);
    s.assert_intact(&r, 75);
    assert!(
        r.stderr.contains("timed out") && r.stderr.contains("may need re-bootstrapping"),
        "{}",
        r.stderr
    );
    assert_eq!(s.iss.requests("token"), 1);
    wait_ms(1500); // let the issuer finish processing the request it received
    let r = s.get(&[]);
    s.assert_intact(&r, 77);
    assert!(
        r.stderr.contains("an earlier run sent it at"),
        "{}",
        r.stderr
    );
}

#[test]
fn lost_response_after_rotation_is_reported_and_never_resent() {
    let s = setup("robot-basic", true);
    s.iss.fault(json!({"kind": "reset_after_processing"}));
    let r = s.get(&[]);
    s.assert_intact(&r, 75);
    assert!(
        r.stderr.contains("may need re-bootstrapping"),
        "{}",
        r.stderr
    );
    assert_eq!(s.iss.requests("token"), 1, "not resent within the run");
    assert_eq!(s.iss.refresh_reused(), 0, "no replay of the refresh token");
    // The issuer did rotate it: the next run learns so, says why, and asks for a person.
    let r = s.get(&[]);
    s.assert_intact(&r, 77);
    assert!(
        r.stderr.contains("an earlier run sent it at")
            && r.stderr.contains("bootstrap a new credential"),
        "{}",
        r.stderr
    );
}

#[test]
fn unreachable_issuer_is_temporary() {
    let env = Env::new();
    // Port 9 on loopback: nothing listens (discard is not running here).
    let cred = env.write_private(
        "cred.json",
        r#"{"version":1,"issuer":"http://127.0.0.1:9","client_id":"x","refresh_token":"r"}"#,
    );
    let before = read(&cred);
    let r = env.get("bt", &cred).args(["--deadline", "3s"]).run();
    assert_exit(&r, 75, "connection refused");
    assert_eq!(read(&cred), before);
    assert!(!env.path("bt").exists());
}

#[test]
fn configuration_errors() {
    let iss = Issuer::start();
    let env = Env::new();
    let wrong_path = env.write_private(
        "wrong.json",
        &json!({"version":1,"issuer": format!("{}/nope", iss.url),"client_id":"robot-basic","client_secret":"robot-basic-secret"}).to_string(),
    );
    let r = env.get("bt", &wrong_path).run();
    assert_exit(&r, 78, "no discovery document");

    let plain = env.write_private(
        "plain.json",
        r#"{"version":1,"issuer":"http://iam.example.org/","client_id":"x"}"#,
    );
    let r = env.get("bt", &plain).run();
    assert_exit(&r, 78, "only https");

    let good = env.credential(&iss, "robot-basic", None);
    let r = env
        .get("bt", &good)
        .args(["--capath", "/nonexistent/certs"])
        .run();
    assert_exit(&r, 78, "--capath");
    assert!(!env.path("bt").exists());
}

#[test]
fn malformed_credential_is_bad_data() {
    let env = Env::new();
    for (content, words) in [
        ("{ not json", "invalid JSON"),
        (
            r#"{"version":1,"issuer":"https://x","client_id":["a"]}"#,
            "client_id",
        ),
        (r#"{"issuer":"https://x","client_id":"a"}"#, "version"),
    ] {
        let cred = env.write_private("cred.json", content);
        let r = env.get("bt", &cred).run();
        assert_exit(&r, 65, words);
        assert_eq!(read(&cred), content);
    }
}

#[test]
fn usage_errors() {
    let env = Env::new();
    for args in [
        vec!["get", "--no-such-flag"],
        vec!["get"],
        vec!["get", "--client-id", "x"],
        vec![
            "get",
            "-c",
            "c.json",
            "--client-id",
            "x",
            "--client-secret-file",
            "s",
        ],
        vec!["get", "-c", "c.json", "-m", "soon"],
        vec!["frobnicate"],
    ] {
        let r = run(env.cmd().args(&args));
        assert_eq!(r.code, 64, "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
    }
    let r = run(env.cmd().arg("--help"));
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("77  a person must act"), "{}", r.stdout);
}

#[test]
fn unwritable_token_location() {
    let iss = Issuer::start();
    let env = Env::new();
    let cred = env.credential(&iss, "robot-basic", None);
    // -m below the token's lifetime, so no "lives less than --minsecs" warning.
    let r = env.get("no/such/dir/bt", &cred).args(["-m", "600"]).run();
    assert_eq!(r.code, 73, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1);
}

#[test]
fn huge_or_binary_token_file_is_replaced() {
    let iss = Issuer::start();
    let env = Env::new();
    let cred = env.credential(&iss, "robot-basic", None);
    let out = env.path("bt");
    fs::write(&out, vec![0xffu8; 2 * 1024 * 1024]).unwrap();
    let r = env.get(&out, &cred).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(lifetime(&read(&out)) > 3000);
}

fn files_except(
    dir: &std::path::Path,
    skip: &[&std::path::Path],
    out: &mut Vec<(PathBuf, Vec<u8>)>,
) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if skip.contains(&p.as_path()) {
            continue;
        }
        let meta = fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            files_except(&p, skip, out);
        } else if meta.is_file() {
            out.push((p.clone(), fs::read(&p).unwrap()));
        }
    }
}

#[test]
fn no_secret_appears_anywhere_at_maximum_verbosity() {
    // Every fault, a success, and inspect, all at -vvv: no secret in stdout, stderr,
    // or any file but the token file and the credential.
    let kinds = [
        None,
        Some(json!({"kind": "status", "status": 503})),
        Some(json!({"kind": "429", "retry_after": 30})),
        Some(json!({"kind": "truncated_json"})),
        Some(json!({"kind": "empty"})),
        Some(json!({"kind": "html_login"})),
        Some(json!({"kind": "invalid_grant"})),
        Some(json!({"kind": "invalid_client"})),
        Some(json!({"kind": "no_access_token"})),
        Some(json!({"kind": "not_jwt"})),
        Some(json!({"kind": "expired_jwt"})),
        Some(json!({"kind": "hang"})),
        Some(json!({"kind": "reset_after_processing"})),
    ];
    for fault in kinds {
        let s = setup("robot-basic", true);
        let old_rt = serde_json::from_str::<serde_json::Value>(&s.old_cred).unwrap()
            ["refresh_token"]
            .as_str()
            .unwrap()
            .to_string();
        if let Some(f) = &fault {
            s.iss.fault(f.clone());
        }
        let mut outputs = Vec::new();
        let r = s.get(&["-vvv"]);
        outputs.push(format!("{}{}", r.stdout, r.stderr));
        let r = run(s.env.cmd().args(["inspect", "-vvv"]).arg(&s.out));
        outputs.push(format!("{}{}", r.stdout, r.stderr));
        let new_cred = read_json(&s.cred);
        let mut secrets = vec![
            old_rt.clone(),
            new_cred["refresh_token"].as_str().unwrap().to_string(),
            "robot-basic-secret".to_string(),
            "opaque-abc123".to_string(),
        ];
        let tok = read(&s.out).trim().to_string();
        secrets.push(tok.clone());
        secrets.extend(tok.split('.').skip(2).map(str::to_string)); // the signature
        let mut files = Vec::new();
        files_except(s.env.dir.path(), &[&s.out, &s.cred], &mut files);
        for secret in &secrets {
            for o in &outputs {
                assert!(
                    !o.contains(secret.as_str()),
                    "{fault:?}: a secret leaked into the output"
                );
            }
            for (p, data) in &files {
                let hit = data.windows(secret.len()).any(|w| w == secret.as_bytes());
                assert!(!hit, "{fault:?}: a secret leaked into {}", p.display());
            }
        }
    }
}

/// A lost answer the issuer never processed (it hung) leaves the marker; a later
/// server error is then still a temporary failure (75), not a claim that the
/// credential was revoked; and the same refresh token then works.
#[test]
fn a_lost_answer_the_issuer_never_processed_condemns_nothing() {
    let s = setup("robot-basic", true);
    s.iss.fault(json!({"kind": "hang"}));
    let r = s.get(&[]);
    s.assert_intact(&r, 75);
    s.iss.fault(json!({"kind": "status", "status": 503}));
    let r = s.get(&[]);
    s.assert_intact(&r, 75);
    assert!(!r.stderr.contains("an earlier run sent it"), "{}", r.stderr);
    let r = s.get(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_issued_token(&s.out, &s.iss, "robot-basic");
}

/// A plain refresh-token credential the issuer rejects: re-bootstrap, and no advice
/// meant for credentials made by a token exchange.
#[test]
fn a_rejected_refresh_token_gets_the_bootstrap_advice_only() {
    let s = setup("robot-basic", true);
    s.iss.fault(json!({"kind": "invalid_grant"}));
    let r = s.get(&[]);
    s.assert_intact(&r, 77);
    assert!(
        r.stderr.contains("bootstrap a new credential"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("subject token"), "{}", r.stderr);
}
