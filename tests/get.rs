//! `robot-token get` against a real oidc-provider on 127.0.0.1.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::*;
use serde_json::{json, Value};

fn cred_json(p: &std::path::Path) -> Value {
    serde_json::from_str(&read(p)).unwrap()
}

#[test]
fn fresh_token_is_a_no_op_without_network_or_credential() {
    let iss = Issuer::start();
    let env = Env::new();
    let (_, at) = iss.mint("robot-basic", "openid offline_access storage.read:/", None);
    let out = env.path("bt");
    fs::write(&out, format!("{at}\n")).unwrap();
    // A credential that would fail if read proves the fresh path never reads it.
    let cred = env.write_private("cred.json", "{ not json");
    iss.reset();
    let r = run(env
        .cmd()
        .args(["get", "-m", "60", "-o"])
        .arg(&out)
        .arg("-c")
        .arg(&cred));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "", "silent on success");
    assert_eq!(r.stdout, "");
    assert_eq!(iss.requests("token") + iss.requests("discovery"), 0);
    assert_eq!(read(&out), format!("{at}\n"));
    // The same with the token file found by WLCG discovery, the crontab's usual form.
    let r = run(env
        .cmd()
        .args(["get", "-m", "60", "-c"])
        .arg(&cred)
        .env("BEARER_TOKEN_FILE", &out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "");
    assert_eq!(iss.requests("token") + iss.requests("discovery"), 0);
}

#[test]
fn renews_an_expired_token_and_persists_the_rotated_refresh_token() {
    let iss = Issuer::start();
    let env = Env::new();
    let (rt, _) = iss.mint("robot-basic", "openid offline_access storage.read:/", None);
    let cred = env.credential(&iss, "robot-basic", Some(&rt));
    let out = env.path("bt");
    fs::write(&out, iss.mint_expired() + "\n").unwrap();
    iss.reset();

    let r = run(env
        .cmd()
        .args(["get", "-m", "60", "-o"])
        .arg(&out)
        .arg("-c")
        .arg(&cred));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.requests("token"), 1);
    let tok = read(&out);
    assert!(tok.ends_with('\n') && !tok.ends_with("\r\n") && tok.matches('\n').count() == 1);
    assert!(lifetime(&tok) > 60);
    assert_eq!(fs::metadata(&out).unwrap().mode() & 0o777, 0o600);

    // Rotation: a new refresh token on disk, unknown fields kept, mode still 0600.
    let c = cred_json(&cred);
    let new_rt = c["refresh_token"].as_str().unwrap();
    assert_ne!(new_rt, rt);
    assert_eq!(c["x-unknown-field"], json!({"kept": true}));
    assert_eq!(fs::metadata(&cred).unwrap().mode() & 0o777, 0o600);
    // The old refresh token is dead at the issuer.
    let (status, body) = iss.refresh_status("robot-basic", "robot-basic-secret", &rt);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
}

#[test]
fn rotated_token_keeps_working_across_runs() {
    let iss = Issuer::start_with(&["--access-ttl", "5"]);
    let env = Env::new();
    let (rt, _) = iss.mint("robot-post", "openid offline_access storage.read:/", None);
    let cred = env.credential(&iss, "robot-post", Some(&rt));
    let out = env.path("bt");
    let mut seen = Vec::new();
    for i in 0..3 {
        // Lifetime 5 s and minsecs 60: every run must renew.
        let r = run(env
            .cmd()
            .args(["get", "-m", "60", "-o"])
            .arg(&out)
            .arg("-c")
            .arg(&cred));
        assert_eq!(r.code, 0, "{}", r.stderr);
        // Said once, with what to set: cron mails it once, not every 15 minutes.
        if i == 0 {
            assert!(
                r.stderr.contains("not more than --minsecs")
                    && r.stderr
                        .contains("Set --minsecs below the lifetime (e.g. -m 2)"),
                "warns: {}",
                r.stderr
            );
            assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        } else {
            assert_eq!(r.stderr, "", "run {i} is quiet");
        }
        seen.push(
            cred_json(&cred)["refresh_token"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    seen.dedup();
    assert_eq!(seen.len(), 3, "each run rotated the refresh token");
}

#[test]
fn missing_token_file_is_created() {
    let iss = Issuer::start();
    let env = Env::new();
    let (rt, _) = iss.mint("robot-basic", "openid offline_access storage.read:/", None);
    let cred = env.credential(&iss, "robot-basic", Some(&rt));
    let r = run(env
        .cmd()
        .args(["get", "-o", "new-token"])
        .arg("-c")
        .arg(&cred));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(lifetime(&read(&env.path("new-token"))) > 3000);
}

#[test]
fn client_credentials_from_options_with_audience_and_scope() {
    let iss = Issuer::start();
    let env = Env::new();
    let secret = env.write_private("secret", "robot-post-secret\n");
    let out = env.path("bt");
    let r = run(env
        .cmd()
        .args([
            "get",
            "--issuer",
            &iss.url,
            "--client-id",
            "robot-post",
            "--client-auth",
            "post",
        ])
        .arg("--client-secret-file")
        .arg(&secret)
        .args([
            "--scope",
            "storage.read:/data compute.read",
            "--scope",
            "storage.modify:/data/out",
        ])
        .args(["--audience", "https://storage.example.org"])
        .arg("-o")
        .arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let jwt = robot_token::token::decode(robot_token::token::trim(&read(&out))).unwrap();
    assert_eq!(jwt.audiences(), vec!["https://storage.example.org"]);
    let scopes = jwt.scopes();
    for s in [
        "storage.read:/data",
        "compute.read",
        "storage.modify:/data/out",
    ] {
        assert!(scopes.contains(&s.to_string()), "{s} in {scopes:?}");
    }
    assert_eq!(iss.get("/__test/stats")["grants"]["client_credentials"], 1);
}

#[test]
fn client_credentials_from_environment_and_credential_file() {
    let iss = Issuer::start();
    let env = Env::new();
    let cred = env.credential(&iss, "robot-basic", None);
    let out = env.path("bt");
    let r = run(env
        .cmd()
        .arg("get")
        .env("ROBOT_TOKEN_CREDENTIAL", &cred)
        .env("BEARER_TOKEN_FILE", &out)
        .env("ROBOT_TOKEN_AUDIENCE", "condor.example.org:9618")
        .env("ROBOT_TOKEN_MINSECS", "1h"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let jwt = robot_token::token::decode(robot_token::token::trim(&read(&out))).unwrap();
    assert_eq!(jwt.audiences(), vec!["condor.example.org:9618"]);
    assert!(jwt.scopes().contains(&"storage.read:/".to_string()));
}

#[test]
fn narrowed_scope_warns_but_installs() {
    let iss = Issuer::start();
    let env = Env::new();
    let cred = env.credential(&iss, "robot-basic", None);
    let out = env.path("bt");
    let r = run(env
        .cmd()
        .args(["get", "--scope", "storage.read:/ forbidden.scope", "-o"])
        .arg(&out)
        .arg("-c")
        .arg(&cred));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("narrowed") && r.stderr.contains("forbidden.scope"),
        "{}",
        r.stderr
    );
    assert!(out.exists());
}

#[test]
fn default_location_follows_wlcg_discovery() {
    let iss = Issuer::start();
    let env = Env::new();
    let cred = env.credential(&iss, "robot-basic", None);
    let runtime = env.path("run");
    fs::create_dir(&runtime).unwrap();
    fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).unwrap();
    let r = run(env
        .cmd()
        .args(["get", "-c"])
        .arg(&cred)
        .env("XDG_RUNTIME_DIR", &runtime));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let uid = robot_token::store::euid();
    assert!(runtime.join(format!("bt_u{uid}")).exists());
    // BEARER_TOKEN_FILE wins over XDG_RUNTIME_DIR.
    let r = run(env
        .cmd()
        .args(["get", "-c"])
        .arg(&cred)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("BEARER_TOKEN_FILE", env.path("explicit")));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(env.path("explicit").exists());
}

#[test]
fn two_concurrent_runs_send_exactly_one_request() {
    let iss = Issuer::start();
    let env = Env::new();
    let (rt, _) = iss.mint("robot-basic", "openid offline_access storage.read:/", None);
    let cred = env.credential(&iss, "robot-basic", Some(&rt));
    let out = env.path("bt");
    iss.reset();
    // Slow the issuer so that the second run starts while the first is in flight.
    iss.fault(json!({"kind": "slow", "delay_ms": 700}));
    // -m below the issuer's 1 h lifetime: the second run's re-check under the lock
    // must find the first run's token fresh even when a second ticks in between.
    let spawn = || {
        env.cmd()
            .args(["get", "-m", "600", "-o"])
            .arg(&out)
            .arg("-c")
            .arg(&cred)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn();
    wait_ms(150);
    let b = spawn();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    assert_eq!(iss.requests("token"), 1);
    assert!(lifetime(&read(&out)) > 3000);
}

#[test]
fn refuses_a_symlink_at_the_token_path() {
    let env = Env::new();
    let victim = env.path("victim");
    fs::write(&victim, "precious").unwrap();
    let link = env.path("bt");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let cred = env.write_private(
        "cred.json",
        r#"{"version":1,"issuer":"http://127.0.0.1:9","client_id":"x"}"#,
    );
    let r = run(env
        .cmd()
        .args(["get", "-o"])
        .arg(&link)
        .arg("-c")
        .arg(&cred));
    assert_eq!(r.code, 73, "{}", r.stderr);
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1);
    assert_eq!(read(&victim), "precious");
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn refuses_a_token_file_owned_by_another_user() {
    if !is_root() {
        eprintln!("SKIPPED: needs root to create a file owned by another user");
        return;
    }
    let env = Env::new();
    let shared = env.path("tmp");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let planted = shared.join("bt_u0");
    fs::write(&planted, "planted").unwrap();
    std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).unwrap();
    let cred = env.write_private(
        "cred.json",
        r#"{"version":1,"issuer":"http://127.0.0.1:9","client_id":"x"}"#,
    );
    let r = run(env
        .cmd()
        .args(["get", "-o"])
        .arg(&planted)
        .arg("-c")
        .arg(&cred));
    assert_eq!(r.code, 73, "{}", r.stderr);
    assert!(
        r.stderr.contains("owned by nobody") && r.stderr.contains("BEARER_TOKEN_FILE"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1);
    assert_eq!(read(&planted), "planted");
}

#[test]
fn unsafe_credential_permissions_need_a_person() {
    let env = Env::new();
    let cred = env.write_private(
        "cred.json",
        r#"{"version":1,"issuer":"http://127.0.0.1:9","client_id":"x"}"#,
    );
    fs::set_permissions(&cred, fs::Permissions::from_mode(0o644)).unwrap();
    let r = run(env.cmd().args(["get", "-o", "bt", "-c"]).arg(&cred));
    assert_eq!(r.code, 77, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("chmod 600 {}", cred.display())),
        "{}",
        r.stderr
    );
}

#[test]
fn secrets_never_appear_at_maximum_verbosity() {
    let iss = Issuer::start();
    let env = Env::new();
    let (rt, _) = iss.mint("robot-basic", "openid offline_access storage.read:/", None);
    let cred = env.credential(&iss, "robot-basic", Some(&rt));
    let out = env.path("bt");
    let r = run(env
        .cmd()
        .args(["get", "-vvv", "-o"])
        .arg(&out)
        .arg("-c")
        .arg(&cred));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("requesting a token"),
        "-vv logs: {}",
        r.stderr
    );
    let new_rt = cred_json(&cred)["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let at = read(&out).trim().to_string();
    let all = format!("{}{}", r.stdout, r.stderr);
    for secret in [
        rt.as_str(),
        new_rt.as_str(),
        at.as_str(),
        "robot-basic-secret",
    ] {
        assert!(!all.contains(secret), "a secret leaked into the output");
    }
    // The signature and payload parts of the token do not leak either.
    for part in at.split('.') {
        assert!(!all.contains(part), "a token segment leaked");
    }
    assert!(!all.to_lowercase().contains("authorization: basic"));
}

/// A token signed by the test issuer with `iat` and `exp` this many seconds from now
/// (no `iat` claim at all for `None`).
fn signed(iss: &Issuer, iat: Option<i64>, exp: i64) -> String {
    let now = robot_token::token::now();
    let mut claims = json!({
        "iss": iss.url, "sub": "robot-user", "exp": now + exp, "scope": "storage.read:/",
    });
    if let Some(i) = iat {
        claims["iat"] = json!(now + i);
    }
    let v = iss.post(
        "/__test/sign",
        json!({"key": "provider", "claims": claims, "raw": true}),
    );
    v["jwt"].as_str().unwrap().to_string()
}

#[test]
fn default_margin_follows_the_token_lifetime_and_an_explicit_one_is_exact() {
    // Renewals install 3-hour tokens, longer than every -m below: no warning.
    let iss = Issuer::start_with(&["--access-ttl", "10800"]);
    let env = Env::new();
    let (rt, _) = iss.mint("robot-basic", "openid offline_access storage.read:/", None);
    let cred = env.credential(&iss, "robot-basic", Some(&rt));
    let out = env.path("bt");
    // (iat, exp) from now, the options, and whether the run must renew.
    let cases: [(Option<i64>, i64, &[&str], bool); 12] = [
        // A 1-hour token: renewed when less than half its lifetime (30 min) is left.
        (Some(-1740), 1860, &[], false),
        (Some(-1860), 1740, &[], true),
        // Just renewed: the second cron run is a no-op (it renewed on every run with
        // the old fixed default of 1 h).
        (Some(-5), 3595, &[], false),
        // A 3-hour token: the classic hour, as igwn-robot-get --minsecs 3600 ...
        (Some(-7140), 3660, &[], false),
        (Some(-7260), 3540, &[], true),
        // ... and with --minsecs 3600 given, the same.
        (Some(-7140), 3660, &["--minsecs", "3600"], false),
        (Some(-7260), 3540, &["--minsecs", "3600"], true),
        // An explicit -m is honoured exactly, even beyond half the lifetime.
        (Some(-1740), 1860, &["-m", "1900"], true),
        (Some(-1740), 1860, &["-m", "31m"], false),
        // So is ROBOT_TOKEN_MINSECS (below: set for these two through the variable).
        (Some(-1740), 1860, &["env:1900"], true),
        // No iat: the lifetime is unknown, so one hour.
        (None, 3000, &[], true),
        (None, 3700, &[], false),
    ];
    for (iat, exp, opts, renews) in cases {
        fs::write(&out, signed(&iss, iat, exp) + "\n").unwrap();
        iss.reset();
        let mut cmd = env.cmd();
        cmd.args(["get", "-o"]).arg(&out).arg("-c").arg(&cred);
        for o in opts {
            match o.strip_prefix("env:") {
                Some(v) => {
                    cmd.env("ROBOT_TOKEN_MINSECS", v);
                }
                None => {
                    cmd.arg(o);
                }
            }
        }
        let r = run(&mut cmd);
        let what = format!("iat {iat:?}, exp {exp}, {opts:?}");
        assert_eq!(r.code, 0, "{what}: {}", r.stderr);
        assert_eq!(r.stderr, "", "{what}: quiet");
        assert_eq!(iss.requests("token"), u64::from(renews), "{what}");
    }
}

#[test]
fn the_margin_is_explained_with_v() {
    let iss = Issuer::start();
    let env = Env::new();
    let out = env.path("bt");
    fs::write(&out, signed(&iss, Some(-60), 3540) + "\n").unwrap();
    let r = run(env
        .cmd()
        .args(["get", "-v", "-c", "unused.json", "-o"])
        .arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("nothing to do; it is renewed when less than 30m 0s (half its 1h 0m 0s lifetime) is left"),
        "{}",
        r.stderr
    );
}
