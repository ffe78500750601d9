//! Several token files from one renewal (`-o` repeatable, `outputs` in a profile),
//! a failing one that does not undo the others, and token files that root
//! keeps for another user (owner, group, mode), against the real test issuer.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use serde_json::json;

fn get(env: &Env, cred: &Path, outs: &[&Path]) -> Command {
    let mut c = env.get_discovered(cred);
    c.args(["-m", "600"]);
    for o in outs {
        c.arg("-o").arg(o);
    }
    c
}

fn setup() -> (Issuer, Env, PathBuf) {
    let r = Robot::start();
    (r.iss, r.env, r.cred)
}

#[test]
fn several_token_files_are_replaced_from_one_renewal() {
    let (iss, env, cred) = setup();
    let (a, b, c) = (env.path("a"), env.path("b"), env.path("c"));
    // a missing, b expired, c fresh: one renewal, and all three get the new token.
    fs::write(&b, iss.mint_expired() + "\n").unwrap();
    let (_, fresh) = iss.mint("robot-basic", "openid", None);
    fs::write(&c, format!("{fresh}\n")).unwrap();
    iss.reset();
    let r = run(&mut get(&env, &cred, &[&a, &b, &c]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.requests("token"), 1);
    let tok = read(&a);
    assert!(lifetime(&tok) > 3000);
    assert_eq!(read(&b), tok);
    assert_eq!(
        read(&c),
        tok,
        "a fresh file is rewritten with the new token too"
    );
    for p in [&a, &b, &c] {
        assert_eq!(fs::metadata(p).unwrap().mode() & 0o777, 0o600);
    }
    // All fresh: nothing is sent.
    let r = run(&mut get(&env, &cred, &[&a, &b, &c]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.requests("token"), 1);
    // One that is not fresh is enough to renew.
    fs::remove_file(&b).unwrap();
    let r = run(&mut get(&env, &cred, &[&a, &b, &c]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.requests("token"), 2);
    assert_eq!(read(&a), read(&b));
    assert_eq!(read(&c), read(&b));
}

#[test]
fn a_failing_token_file_does_not_undo_the_others() {
    let (iss, env, cred) = setup();
    let good = env.path("good");
    let victim = env.path("victim");
    fs::write(&victim, "precious").unwrap();
    let link = env.path("link");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let missing_dir = env.path("no-such-dir/bt");
    let r = run(&mut get(&env, &cred, &[&good, &link, &missing_dir]));
    assert_eq!(r.code, 73, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("2 of 3 token files failed (1 written)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
    assert!(r.stderr.contains("no-such-dir"), "{}", r.stderr);
    assert!(lifetime(&read(&good)) > 3000, "the good one was written");
    assert_eq!(read(&victim), "precious");
    assert_eq!(iss.requests("token"), 1);

    // good is fresh now; the broken ones alone do not make every run renew, but are
    // still reported.
    let r = run(&mut get(&env, &cred, &[&good, &link]));
    assert_exit(&r, 73, "symbolic link");
    assert_eq!(iss.requests("token"), 1);

    // Naming one file twice is a usage error.
    let r = run(&mut get(&env, &cred, &[&good, &good]));
    assert_eq!(r.code, 64, "{}", r.stderr);
}

#[test]
fn outputs_in_a_profile_and_never_from_the_credential() {
    let (iss, env, cred) = setup();
    let (a, b) = (env.path("a"), env.path("b"));
    let config = env.write_private(
        "config.toml",
        &format!(
            "[profile.robot]\ncredential = {cred:?}\nminsecs = \"10m\"\n\
             outputs = [{a:?}, {{ path = {b:?}, mode = \"0640\" }}]\n"
        ),
    );
    let profile = || env.profile("get", "robot", &config).run();
    let r = profile();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(read(&a), read(&b));
    assert_eq!(fs::metadata(&b).unwrap().mode() & 0o777, 0o640);
    // Fresh: no request, and the credential is not even read (unreadable now).
    let saved = read(&cred);
    fs::set_permissions(&cred, fs::Permissions::from_mode(0o000)).unwrap();
    fs::write(&cred, "{ not json").unwrap();
    let r = profile();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.requests("token"), 1);
    fs::write(&cred, saved).unwrap();
    fs::set_permissions(&cred, fs::Permissions::from_mode(0o600)).unwrap();

    // A credential's own "outputs" field is not where token files are named: the
    // fresh path would have to read the credential. It is kept, and not used.
    let mut v = read_json(&cred);
    v["outputs"] = json!([env.path("never")]);
    fs::write(&cred, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let c = env.path("c");
    let r = env
        .get_discovered(&cred)
        .args(["-m", "600"])
        .env("BEARER_TOKEN_FILE", &c)
        .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(c.exists());
    assert!(!env.path("never").exists());
}

#[test]
fn bad_output_options_are_refused_before_any_request() {
    let (iss, env, cred) = setup();
    let p = env.path("bt");
    for (spec, code, says) in [
        (format!("{}:mode=0644", p.display()), 64, "every user"),
        (
            format!("{}:owner=no-such-user-x", p.display()),
            78,
            "no user",
        ),
        (
            format!("{}:group=no-such-group-x", p.display()),
            78,
            "no group",
        ),
    ] {
        let r = env.get(&spec, &cred).run();
        assert_eq!(r.code, code, "{spec}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{spec}: {}", r.stderr);
    }
    assert_eq!(iss.requests("token") + iss.requests("discovery"), 0);
}

#[test]
fn overlapping_sets_of_token_files_never_deadlock() {
    let (iss, env, cred) = setup();
    let (a, b, c) = (env.path("a"), env.path("b"), env.path("c"));
    let sets: [[&Path; 2]; 3] = [[&a, &b], [&b, &a], [&c, &b]];
    let children: Vec<_> = (0..12)
        .map(|i| {
            let set = sets[i % 3];
            get(&env, &cred, &set).args(["--deadline", "60s"]).start()
        })
        .collect();
    for ch in children {
        wait_success(ch);
    }
    // At most one renewal per distinct set of files; every file holds a valid token.
    assert!(iss.requests("token") <= 3, "{}", iss.requests("token"));
    for p in [&a, &b, &c] {
        assert!(lifetime(&read(p)) > 3000);
    }
}

#[test]
#[ignore = "needs root"]
fn root_writes_token_files_for_a_service_user() {
    require_root();
    let (iss, env, cred) = setup();
    let user = TestUser::create("svc");
    let svc_dir = env.path("svc");
    fs::create_dir(&svc_dir).unwrap();
    std::os::unix::fs::chown(&svc_dir, Some(user.uid), Some(user.gid)).unwrap();
    fs::set_permissions(&svc_dir, fs::Permissions::from_mode(0o700)).unwrap();
    let out = svc_dir.join("bt");
    let spec = format!("{}:owner={},mode=0640", out.display(), user.name);

    // Watch the temp file while the write is held open (test hook): it already has
    // its final owner and mode before the rename, never root's.
    let child = env
        .get(&spec, &cred)
        .args(["-m", "600"])
        .env("ROBOT_TOKEN_TEST_WRITE_DELAY_MS", "1500")
        .start();
    let mut seen = None;
    for _ in 0..500 {
        if let Some(e) = fs::read_dir(&svc_dir)
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with(".bt.tmp."))
        {
            if let Ok(m) = fs::symlink_metadata(e.path()) {
                if m.len() > 0 {
                    seen = Some((m.uid(), m.gid(), m.mode() & 0o7777));
                    break;
                }
            }
        }
        wait_ms(5);
    }
    wait_success(child);
    assert_eq!(
        seen,
        Some((user.uid, user.gid, 0o640)),
        "temp file owner and mode before the rename"
    );
    let m = fs::metadata(&out).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.mode() & 0o777),
        (user.uid, user.gid, 0o640)
    );
    assert!(lifetime(&read(&out)) > 3000);

    // The next run reads the service user's file as fresh: no request.
    let r = env.get(&spec, &cred).args(["-m", "600"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.requests("token"), 1);

    // Refused, by the trust rule: a person must fix the directories (77), found
    // before sending; the message names what the service user owns.
    let refused = |r: &Output, owned: &Path| {
        assert_exit(
            r,
            77,
            &format!("{} is owned by {}", owned.display(), user.name),
        );
    };

    // A directory the service user owns, on the way to the file: it could swap the
    // next component for a symlink, so root refuses to write below it.
    let sub = svc_dir.join("sub");
    fs::create_dir(&sub).unwrap();
    let deep = sub.join("bt");
    let r = env
        .get(format!("{}:owner={}", deep.display(), user.name), &cred)
        .args(["-m", "600"])
        .run();
    refused(&r, &svc_dir);
    assert!(!deep.exists());

    // The service user's symlink in place of a directory: refused, nothing written
    // where it points.
    let rootonly = env.path("rootonly");
    fs::create_dir(&rootonly).unwrap();
    let link = svc_dir.join("tokens");
    std::os::unix::fs::symlink(&rootonly, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(user.uid), Some(user.gid)).unwrap();
    let r = env.get(link.join("bt"), &cred).args(["-m", "600"]).run();
    refused(&r, &svc_dir);
    assert!(!rootonly.join("bt").exists());
    // A symlink that root does not own is not followed, wherever it is...
    let userlink = env.path("userlink");
    std::os::unix::fs::symlink(&rootonly, &userlink).unwrap();
    std::os::unix::fs::lchown(&userlink, Some(user.uid), Some(user.gid)).unwrap();
    let r = env
        .get(userlink.join("bt"), &cred)
        .args(["-m", "600"])
        .run();
    refused(&r, &userlink);
    assert!(!rootonly.join("bt").exists());
    // ...but root's own symlink is (like /var/run -> /run).
    let rootlink = env.path("rootlink");
    std::os::unix::fs::symlink(&svc_dir, &rootlink).unwrap();
    fs::remove_file(&out).unwrap();
    let r = env
        .get(
            format!("{}/bt:owner={}", rootlink.display(), user.name),
            &cred,
        )
        .args(["-m", "600"])
        .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(fs::metadata(&out).unwrap().uid(), user.uid);

    // The same user, not root, asking for another owner: refused clearly, no request.
    let user_dir = env.path("userdir");
    fs::create_dir(&user_dir).unwrap();
    std::os::unix::fs::chown(&user_dir, Some(user.uid), Some(user.gid)).unwrap();
    let before = iss.requests("token");
    let o = output_of(
        Command::new(assert_cmd::cargo::cargo_bin!("robot-token"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &user_dir)
            .args([
                "get",
                "--issuer",
                &iss.url,
                "--client-id",
                "x",
                "--client-secret-file",
                "/nonexistent",
            ])
            .arg("-o")
            .arg(format!("{}/bt:owner=root", user_dir.display()))
            .uid(user.uid)
            .gid(user.gid)
            .stdin(Stdio::null()),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(78), "{err}");
    assert!(err.contains("owner=root needs root"), "{err}");
    assert_eq!(iss.requests("token"), before);
}
