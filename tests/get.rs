//! `robot-token get` against a real oidc-provider on 127.0.0.1.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::*;
use serde_json::json;

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
    let r = env.get(&out, &cred).args(["-m", "60"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "", "silent on success");
    assert_eq!(r.stdout, "");
    assert_eq!(iss.requests("token") + iss.requests("discovery"), 0);
    assert_eq!(read(&out), format!("{at}\n"));
    // The same with the token file found by WLCG discovery, the crontab's usual form.
    let r = env
        .get_discovered(&cred)
        .args(["-m", "60"])
        .env("BEARER_TOKEN_FILE", &out)
        .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "");
    assert_eq!(iss.requests("token") + iss.requests("discovery"), 0);
}

#[test]
fn renews_an_expired_token_and_persists_the_rotated_refresh_token() {
    let s = Robot::start();
    s.expire();

    let r = s.get(&["-m", "60"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s.iss.requests("token"), 1);
    let tok = read(&s.out);
    assert!(tok.ends_with('\n') && !tok.ends_with("\r\n") && tok.matches('\n').count() == 1);
    assert!(lifetime(&tok) > 60);
    assert_eq!(fs::metadata(&s.out).unwrap().mode() & 0o777, 0o600);

    // Rotation: a new refresh token on disk, unknown fields kept, mode still 0600.
    let c = read_json(&s.cred);
    let new_rt = c["refresh_token"].as_str().unwrap();
    assert_ne!(new_rt, s.rt);
    assert_eq!(c["x-unknown-field"], json!({"kept": true}));
    assert_eq!(fs::metadata(&s.cred).unwrap().mode() & 0o777, 0o600);
    // The old refresh token is dead at the issuer.
    let (status, body) = s
        .iss
        .refresh_status("robot-basic", "robot-basic-secret", &s.rt);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
}

#[test]
fn rotated_token_keeps_working_across_runs() {
    let iss = Issuer::start_with(&["--access-ttl", "5"]);
    let env = Env::new();
    let (cred, _) = env.minted_credential(&iss, "robot-post");
    let out = env.path("bt");
    let mut seen = Vec::new();
    for i in 0..3 {
        // Lifetime 5 s and minsecs 60: every run must renew.
        let r = env.get(&out, &cred).args(["-m", "60"]).run();
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
            read_json(&cred)["refresh_token"]
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
    let (cred, _) = env.minted_credential(&iss, "robot-basic");
    let r = env.get("new-token", &cred).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(lifetime(&read(&env.path("new-token"))) > 3000);
}

#[test]
fn client_credentials_from_options_with_audience_and_scope() {
    let iss = Issuer::start();
    let env = Env::new();
    let secret = env.write_private("secret", "robot-post-secret\n");
    let out = env.path("bt");
    let r = env
        .get_client(&iss, "robot-post", &out)
        .args(["--client-auth", "post"])
        .arg("--client-secret-file")
        .arg(&secret)
        .args([
            "--scope",
            "storage.read:/data compute.read",
            "--scope",
            "storage.modify:/data/out",
        ])
        .args(["--audience", "https://storage.example.org"])
        .run();
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
    assert_eq!(iss.grants("client_credentials"), 1);
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
    let r = env
        .get(&out, &cred)
        .args(["--scope", "storage.read:/ forbidden.scope"])
        .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("narrowed") && r.stderr.contains("forbidden.scope"),
        "{}",
        r.stderr
    );
    // The narrowed token is the one installed: what was granted, not what was asked.
    let jwt = assert_issued_token(&out, &iss, "robot-basic");
    assert_eq!(jwt.scopes(), vec!["storage.read:/".to_string()]);
    assert_eq!(iss.requests("token"), 1);
}

#[test]
fn default_location_follows_wlcg_discovery() {
    let iss = Issuer::start();
    let env = Env::new();
    let cred = env.credential(&iss, "robot-basic", None);
    let runtime = env.path("run");
    fs::create_dir(&runtime).unwrap();
    fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).unwrap();
    let r = env
        .get_discovered(&cred)
        .env("XDG_RUNTIME_DIR", &runtime)
        .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let uid = robot_token::store::euid();
    let default = runtime.join(format!("bt_u{uid}"));
    let first = assert_issued_token(&default, &iss, "robot-basic");
    assert_eq!(iss.requests("token"), 1);
    // BEARER_TOKEN_FILE wins over XDG_RUNTIME_DIR: a new token there, none written
    // to the default file.
    let before = read(&default);
    let r = env
        .get_discovered(&cred)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("BEARER_TOKEN_FILE", env.path("explicit"))
        .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let second = assert_issued_token(&env.path("explicit"), &iss, "robot-basic");
    assert_ne!(first.str_claim("jti"), second.str_claim("jti"));
    assert_eq!(read(&default), before, "the default file is left alone");
    assert_eq!(iss.requests("token"), 2);
}

#[test]
fn two_concurrent_runs_send_exactly_one_request() {
    let iss = Issuer::start();
    let env = Env::new();
    let (cred, _) = env.minted_credential(&iss, "robot-basic");
    let out = env.path("bt");
    iss.reset();
    // Slow the issuer so that the second run starts while the first is in flight.
    iss.fault(json!({"kind": "slow", "delay_ms": 700}));
    // -m below the issuer's 1 h lifetime: the second run's re-check under the lock
    // must find the first run's token fresh even when a second ticks in between.
    let spawn = || env.get(&out, &cred).args(["-m", "600"]).start();
    let a = spawn();
    wait_ms(150);
    let b = spawn();
    wait_success(a);
    wait_success(b);
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
    let r = env.get(&link, &cred).run();
    assert_exit(&r, 73, "symbolic link");
    assert_eq!(r.stderr.lines().count(), 1);
    assert_eq!(read(&victim), "precious");
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
#[ignore = "needs root"]
fn refuses_a_token_file_owned_by_another_user() {
    require_root();
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
    let r = env.get(&planted, &cred).run();
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
    let r = env.get("bt", &cred).run();
    assert_exit(&r, 77, &format!("chmod 600 {}", cred.display()));
}

#[test]
fn secrets_never_appear_at_maximum_verbosity() {
    let iss = Issuer::start();
    let env = Env::new();
    let (cred, rt) = env.minted_credential(&iss, "robot-basic");
    let out = env.path("bt");
    let r = env.get(&out, &cred).arg("-vvv").run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("requesting a token"),
        "-vv logs: {}",
        r.stderr
    );
    let new_rt = read_json(&cred)["refresh_token"]
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

/// The token file and the credential are replaced by a rename, never rewritten in
/// place: a reader that opened the old file keeps reading the old, complete token
/// (an in-place rewrite would show it a truncated or mixed file), and the path names
/// a new inode. No delay hook: this holds for every write, not only slow ones.
#[test]
fn token_file_and_credential_are_replaced_by_rename_never_in_place() {
    use std::io::Read;
    let iss = Issuer::start();
    let env = Env::new();
    let (cred, rt) = env.minted_credential(&iss, "robot-basic");
    let out = env.path("bt");
    let old_token = iss.mint_expired() + "\n";
    fs::write(&out, &old_token).unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o600)).unwrap();
    let old_cred = read(&cred);
    let mut token_reader = fs::File::open(&out).unwrap();
    let mut cred_reader = fs::File::open(&cred).unwrap();
    let (token_ino, cred_ino) = (
        fs::metadata(&out).unwrap().ino(),
        fs::metadata(&cred).unwrap().ino(),
    );

    let r = env.get(&out, &cred).args(["-m", "60"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_issued_token(&out, &iss, "robot-basic");
    assert_ne!(read_json(&cred)["refresh_token"], rt.as_str());

    let mut seen = String::new();
    token_reader.read_to_string(&mut seen).unwrap();
    assert_eq!(seen, old_token, "an open reader sees the old token, whole");
    let mut seen = String::new();
    cred_reader.read_to_string(&mut seen).unwrap();
    assert_eq!(
        seen, old_cred,
        "an open reader sees the old credential, whole"
    );
    assert_ne!(
        fs::metadata(&out).unwrap().ino(),
        token_ino,
        "token file inode"
    );
    assert_ne!(
        fs::metadata(&cred).unwrap().ino(),
        cred_ino,
        "credential inode"
    );
    let temps = temp_files(env.dir.path());
    assert!(temps.is_empty(), "{temps:?}");
}

/// The locks are taken, not assumed: while another holder has the token file's lock,
/// or the credential's, a renewal waits for it until its deadline, then gives up
/// with exit 75 having sent nothing.
#[test]
fn a_held_token_file_or_credential_lock_blocks_the_renewal() {
    use robot_token::store;
    use std::time::{Duration, Instant};
    let Robot { iss, env, cred, .. } = Robot::start();
    let old_cred = read(&cred);
    let out = env.path("bt");
    let old_token = iss.mint_expired() + "\n";
    fs::write(&out, &old_token).unwrap();
    iss.reset();
    let get = |file: &std::path::Path| {
        env.get(file, &cred)
            .args(["--deadline", "1s", "-m", "60"])
            .run()
    };
    for (held, file) in [(&out, &out), (&cred, &env.path("bt2"))] {
        let lock = store::lock(
            &store::lock_path(held).unwrap(),
            Instant::now() + Duration::from_secs(5),
        )
        .unwrap();
        let t = Instant::now();
        let r = get(file);
        assert_eq!(r.code, 75, "{} held: {}", held.display(), r.stderr);
        assert!(r.stderr.contains("still holds the lock"), "{}", r.stderr);
        assert!(t.elapsed() >= Duration::from_millis(900), "waited for it");
        assert_eq!(
            iss.requests("token"),
            0,
            "{} held: nothing sent",
            held.display()
        );
        assert_eq!(read(&out), old_token);
        assert_eq!(read(&cred), old_cred);
        drop(lock);
    }
    // Released: the same run goes through.
    let r = get(&out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_issued_token(&out, &iss, "robot-basic");
}

/// --minsecs decides: a token with about 30 min left is fresh for -m 20m (no request,
/// file untouched) and due for -m 1h (renewed).
#[test]
fn minsecs_decides_between_the_fresh_path_and_a_renewal() {
    let iss = Issuer::start();
    let env = Env::new();
    let (cred, _) = env.minted_credential(&iss, "robot-basic");
    let out = env.path("bt");
    let v = iss.post(
        "/__test/mint",
        json!({"client_id": "robot-basic", "scope": "openid storage.read:/", "access_ttl": 1800}),
    );
    let half_hour = format!("{}\n", v["access_token"].as_str().unwrap());
    fs::write(&out, &half_hour).unwrap();
    iss.reset();
    let get = |m: &str| env.get(&out, &cred).args(["-m", m]).run();
    for fresh_enough in ["60", "20m", "1700"] {
        let r = get(fresh_enough);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(iss.requests("token"), 0, "-m {fresh_enough}: fresh");
        assert_eq!(read(&out), half_hour);
    }
    // -v says how long it is still valid: about half an hour.
    let r = env.get(&out, &cred).args(["-v", "-m", "60"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("is valid for 29m") || r.stderr.contains("is valid for 30m 0s"),
        "{}",
        r.stderr
    );
    let r = get("1h");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.requests("token"), 1, "-m 1h: due");
    assert_ne!(read(&out), half_hour);
    assert_issued_token(&out, &iss, "robot-basic");
    // And through the environment.
    let renewed = read(&out);
    let r = env.get(&out, &cred).env("ROBOT_TOKEN_MINSECS", "2h").run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.requests("token"), 2, "ROBOT_TOKEN_MINSECS=2h: due");
    assert_ne!(read(&out), renewed);
}

/// The write path's building blocks, directly: a replacement prepared and then
/// abandoned leaves no temp file; a commit leaves exactly the target; a create never
/// replaces what is there (init's credential).
#[test]
fn prepared_writes_leave_no_temp_file_and_creates_never_replace() {
    use robot_token::store::{self, WriteMode};
    let env = Env::new();
    let files = || env.names();
    let target = env.path("bt");
    fs::write(&target, "old\n").unwrap();
    // Abandoned (the issuer failed, the run stopped): the temp file goes.
    let p = store::prepare(&target, 4096, WriteMode::default()).unwrap();
    assert_eq!(files().len(), 2, "{:?}", files());
    drop(p);
    assert_eq!(files(), vec!["bt"]);
    assert_eq!(read(&target), "old\n");
    // Committed: the new content, mode 0600, nothing else.
    store::prepare(&target, 4096, WriteMode::default())
        .unwrap()
        .commit(b"new\n")
        .unwrap();
    assert_eq!(files(), vec!["bt"]);
    assert_eq!(read(&target), "new\n");
    assert_eq!(fs::metadata(&target).unwrap().mode() & 0o777, 0o600);
    // Create: only where nothing is; the existing file is never replaced.
    let cred = env.path("cred.json");
    store::prepare(&cred, 64, WriteMode::default())
        .unwrap()
        .commit_new(b"{}\n")
        .unwrap();
    assert_eq!(read(&cred), "{}\n");
    assert!(store::prepare(&cred, 64, WriteMode::default())
        .unwrap()
        .commit_new(b"other\n")
        .is_err());
    assert_eq!(read(&cred), "{}\n");
    let fresh = env.path("new.json");
    store::prepare(&fresh, 64, WriteMode::default())
        .unwrap()
        .commit_new(b"created\n")
        .unwrap();
    assert_eq!(read(&fresh), "created\n");
    assert_eq!(files(), vec!["bt", "cred.json", "new.json"]);
}

/// A temp file that cannot be created says why (here: its name is too long for the
/// file system), before anything is sent; it is not mistaken for a name collision.
#[test]
fn a_temp_file_that_cannot_be_created_is_a_clear_error_and_nothing_is_sent() {
    let Robot { iss, env, cred, .. } = Robot::start();
    let before = read(&cred);
    iss.reset();
    // 240 bytes: the lock's ".NAME.lock" fits in 255, the temp's ".NAME.tmp.<16 hex>" not.
    let out = env.path(&"b".repeat(240));
    let r = env.get(&out, &cred).run();
    assert_exit(&r, 73, "File name too long");
    assert!(r.stderr.contains("nothing was sent"), "{}", r.stderr);
    assert_eq!(iss.requests("token"), 0);
    assert_eq!(read(&cred), before);
}

/// ROBOT_TOKEN_LOCK_DIR puts the locks in one private directory, named by the file's
/// directory identity; empty, it is ignored.
#[test]
fn robot_token_lock_dir_holds_the_locks_when_set() {
    let iss = Issuer::start();
    let env = Env::new();
    let (cred, _) = env.minted_credential(&iss, "robot-basic");
    let locks = env.path("locks");
    let get = |dir: &std::path::Path, out: &str| {
        env.get(out, &cred).env("ROBOT_TOKEN_LOCK_DIR", dir).run()
    };
    let r = get(&locks, "bt");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let names = names(&locks);
    assert!(names.iter().any(|n| n.ends_with("-bt.lock")), "{names:?}");
    assert!(!env.path(".bt.lock").exists());
    assert_eq!(fs::metadata(&locks).unwrap().mode() & 0o777, 0o700);
    // Empty: as if unset, the lock sits beside the file in its private directory.
    let r = get(std::path::Path::new(""), "bt2");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(env.path(".bt2.lock").exists());
}

/// With ROBOT_TOKEN_LOCK_DIR, a run that fails before it takes its locks is still
/// noted for `status`, in the lock's record, also for a token file in a shared
/// directory (where nothing may be created beside it).
#[test]
fn with_a_lock_dir_a_failure_is_noted_for_a_file_in_a_shared_directory() {
    let iss = Issuer::start();
    let env = Env::new();
    let (cred, _) = env.minted_credential(&iss, "robot-basic");
    let locks = env.path("locks");
    let shared = env.path("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let out = shared.join("bt");
    let with_dir = |mut c: std::process::Command| c.env("ROBOT_TOKEN_LOCK_DIR", &locks).run();
    let r = with_dir(env.get(&out, &cred));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Due (-m above the token's lifetime), and the credential path mistyped.
    let mut typo = env.get(&out, env.path("typo.json"));
    typo.args(["-m", "20h"]);
    let r = with_dir(typo);
    assert_exit(&r, 78, "does not exist");
    let mut status = env.cmd();
    status.args(["status", "--json"]).arg(&out);
    let s = with_dir(status);
    let v: serde_json::Value = serde_json::from_str(&s.stdout).expect(&s.stdout);
    assert_eq!(v[0]["last_run"]["exit"], 78, "{}", s.stdout);
    assert_eq!(names(&shared), ["bt"]);
}

/// The fresh-path decision reads `exp` as RFC 7519 says (seconds, maybe fractional)
/// and never trusts an absurd one: such a token is replaced, not kept for ever.
#[test]
fn fractional_exp_is_fresh_and_an_absurd_exp_is_replaced() {
    use base64::Engine;
    let iss = Issuer::start();
    let env = Env::new();
    let (cred, _) = env.minted_credential(&iss, "robot-basic");
    let out = env.path("bt");
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwt = |exp: &str| {
        format!(
            "{}.{}.c2ln\n",
            b64.encode(r#"{"alg":"RS256"}"#),
            b64.encode(format!(r#"{{"sub":"x","exp":{exp}}}"#))
        )
    };
    let get = || env.get(&out, &cred).args(["-m", "60"]).run();
    iss.reset();
    let fractional = jwt(&format!("{}.5", robot_token::token::now() + 3000));
    fs::write(&out, &fractional).unwrap();
    let r = get();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.requests("token"), 0, "fractional exp: fresh");
    assert_eq!(read(&out), fractional);
    for (n, absurd) in ["1e15", "1.0e300", "-1e16"].iter().enumerate() {
        fs::write(&out, jwt(absurd)).unwrap();
        let r = get();
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(iss.requests("token"), n as u64 + 1, "exp {absurd}: renewed");
        assert_issued_token(&out, &iss, "robot-basic");
    }
}

/// Only a credential whose refresh token is about to be redeemed must prove its
/// rewrite can be saved: a client_credentials credential never is rewritten, so a
/// directory where its temp file cannot be made (here: a name too long for one) does
/// not stop it; a refresh-token credential there stops before sending.
#[test]
fn only_a_credential_about_to_rotate_must_prove_its_rewrite() {
    let iss = Issuer::start();
    let env = Env::new();
    let name = "c".repeat(240);
    let cc = env.credential(&iss, "robot-basic", None);
    let long = env.path(&name);
    fs::rename(&cc, &long).unwrap();
    let get = |out: &str| env.get(out, &long).run();
    iss.reset();
    let r = get("bt1");
    assert_eq!(r.code, 0, "client_credentials: {}", r.stderr);
    assert_eq!(iss.grants("client_credentials"), 1);
    assert_issued_token(&env.path("bt1"), &iss, "robot-basic");

    let (rotating, _) = env.minted_credential(&iss, "robot-basic");
    fs::rename(&rotating, &long).unwrap();
    let before = read(&long);
    iss.reset();
    let r = get("bt2");
    assert_eq!(r.code, 73, "refresh token: {}", r.stderr);
    assert_eq!(iss.requests("token"), 0, "nothing sent");
    assert!(
        r.stderr
            .starts_with("robot-token: error: cannot prepare the rewrite of credential"),
        "{}",
        r.stderr
    );
    assert_eq!(read(&long), before);
}

/// An issuer that does not rotate refresh tokens: the credential is left alone, not
/// rewritten with the same content (same bytes, same inode).
#[test]
fn a_credential_is_not_rewritten_when_the_issuer_does_not_rotate() {
    let iss = Issuer::start_with(&["--no-rotate"]);
    let env = Env::new();
    let (cred, _) = env.minted_credential(&iss, "robot-basic");
    let before = (read(&cred), fs::metadata(&cred).unwrap().ino());
    let out = env.path("bt");
    for _ in 0..2 {
        fs::write(&out, iss.mint_expired() + "\n").unwrap();
        let r = env.get(&out, &cred).arg("-v").run();
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(!r.stderr.contains("saved it to"), "{}", r.stderr);
        assert_issued_token(&out, &iss, "robot-basic");
        assert_eq!(
            (read(&cred), fs::metadata(&cred).unwrap().ino()),
            before,
            "credential rewritten"
        );
    }
}

/// A symbolic link planted at the lock's name is refused as one, and its target is
/// not touched (the lock is opened with O_NOFOLLOW).
#[test]
fn a_symlink_at_the_lock_is_refused_by_name() {
    let env = Env::new();
    let cred = env.write_private(
        "cred.json",
        r#"{"version":1,"issuer":"http://127.0.0.1:9","client_id":"x","refresh_token":"r"}"#,
    );
    let victim = env.path("victim");
    fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, env.path(".bt.lock")).unwrap();
    let r = env.get("bt", &cred).run();
    assert_exit(&r, 73, "is a symbolic link");
    assert_eq!(read(&victim), "precious");
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
    iss.sign_raw(claims)
}

#[test]
fn default_margin_follows_the_token_lifetime_and_an_explicit_one_is_exact() {
    // Renewals install 3-hour tokens, longer than every -m below: no warning.
    let iss = Issuer::start_with(&["--access-ttl", "10800"]);
    let env = Env::new();
    let (cred, _) = env.minted_credential(&iss, "robot-basic");
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
        let mut cmd = env.get(&out, &cred);
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
    let r = env.get(&out, "unused.json").arg("-v").run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("nothing to do; it is renewed when less than 30m 0s (half its 1h 0m 0s lifetime) is left"),
        "{}",
        r.stderr
    );
}
