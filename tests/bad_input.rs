//! Bad options and planted files: each is refused at once, with its documented exit
//! code, before anything is sent, and never waited on. Against the real issuer.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::*;

/// A due token file and a working credential whose issuer is `issuer`.
fn setup(env: &Env, iss: &Issuer, issuer: &str) -> std::path::PathBuf {
    let rt = iss.refresh_token("robot-basic");
    let cred = env.write_private(
        "cred.json",
        &serde_json::json!({
            "version": 1, "issuer": issuer, "client_id": "robot-basic",
            "client_secret": "robot-basic-secret", "refresh_token": rt,
        })
        .to_string(),
    );
    iss.reset();
    cred
}

#[test]
fn an_issuer_url_with_a_control_character_is_a_configuration_error() {
    let iss = Issuer::start();
    let env = Env::new();
    // The URL parser drops a tab or newline and escapes the rest, so each of these
    // would otherwise reach (a variant of) the real issuer, or be retried as a
    // network failure.
    for bad in [
        format!("{}\t", iss.url),
        format!("{}/\n", iss.url),
        format!("{}/\u{1}", iss.url),
        format!("{}/\u{7f}", iss.url),
    ] {
        let cred = setup(&env, &iss, &bad);
        let t = std::time::Instant::now();
        let r = env.get(env.path("bt"), &cred).arg("-v").run_within(30);
        assert_eq!(r.code, 78, "{bad:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("control character"),
            "{bad:?}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains("retrying"), "not retried: {}", r.stderr);
        assert!(
            !r.stderr.contains(|c: char| c.is_control() && c != '\n'),
            "the message carries no control character: {:?}",
            r.stderr
        );
        assert!(t.elapsed().as_secs() < 5, "{:?}", t.elapsed());
        assert_eq!(iss.requests("discovery") + iss.requests("token"), 0);
    }
    // The same for a token endpoint given on the command line.
    let cred = setup(&env, &iss, &iss.url);
    let r = env
        .get(env.path("bt"), &cred)
        .arg("--token-endpoint")
        .arg(format!("{}/token\r", iss.url))
        .run();
    assert_one_line(&r, 78);
    assert_eq!(iss.requests("token"), 0);
}

#[test]
fn an_empty_outfile_is_a_usage_error() {
    let iss = Issuer::start();
    let env = Env::new();
    let cred = setup(&env, &iss, &iss.url);
    // Without the check, "" meant the default location: this directory's bt_u<uid>.
    let runtime = env.path("run");
    fs::create_dir(&runtime).unwrap();
    let r = env.get("", &cred).env("XDG_RUNTIME_DIR", &runtime).run();
    assert_one_line(&r, 64);
    assert!(r.stderr.contains("-o"), "{}", r.stderr);
    assert_eq!(
        fs::read_dir(&runtime).unwrap().count(),
        0,
        "nothing written"
    );
    assert_eq!(iss.requests("token"), 0);
    // One empty -o among good ones too.
    let r = run(env
        .cmd()
        .args(["get", "-o", "good", "-o", "", "-c"])
        .arg(&cred));
    assert_one_line(&r, 64);
    assert!(!env.path("good").exists());
    // And init, before it contacts the issuer.
    let r = run(env
        .cmd()
        .args(["init", "--no-tty", "--client-id", "robot-basic", "-o", ""])
        .args(["--issuer", &iss.url, "-c"])
        .arg(env.path("new-cred.json")));
    assert_one_line(&r, 64);
    assert_eq!(iss.requests("discovery") + iss.requests("device"), 0);
}

#[test]
fn a_fifo_or_runaway_cafile_is_refused_not_waited_on() {
    let iss = Issuer::start();
    let env = Env::new();
    let cred = setup(&env, &iss, &iss.url);
    let fifo = env.path("ca.fifo");
    mkfifo(&fifo);
    let r = env
        .get(env.path("bt"), &cred)
        .arg("--cafile")
        .arg(&fifo)
        .run_within(10);
    assert_one_line(&r, 78);
    assert!(r.stderr.contains("not a regular file"), "{}", r.stderr);
    // 1 GB, sparse: a read that is not capped would show in time and memory.
    let big = env.path("ca.pem");
    fs::File::create(&big).unwrap().set_len(1 << 30).unwrap();
    let r = env
        .get(env.path("bt"), &cred)
        .arg("--cafile")
        .arg(&big)
        .run_within(10);
    assert_one_line(&r, 78);
    assert!(r.stderr.contains("larger than"), "{}", r.stderr);
    // inspect --verify reads it the same way.
    let (_, at) = iss.mint("robot-basic", "openid", None);
    let tok = env.write_private("tok", &at);
    let r = run_within(
        env.cmd()
            .args(["inspect", "--verify", "--cafile"])
            .arg(&fifo)
            .arg(&tok),
        10,
    );
    assert_eq!(r.code, 78, "{}", r.stderr);
    assert_eq!(iss.requests("token"), 0);
}

#[test]
fn secret_files_that_are_fifos_are_refused_not_waited_on() {
    let iss = Issuer::start();
    let env = Env::new();
    let fifo = env.path("secret.fifo");
    mkfifo(&fifo);
    let cases: [(&str, Vec<&str>); 3] = [
        (
            "client secret",
            vec!["--client-id", "robot-basic", "--client-secret-file"],
        ),
        (
            "private key",
            vec![
                "--client-id",
                "robot-basic",
                "--client-auth",
                "private_key_jwt",
                "--private-key-file",
            ],
        ),
        (
            "subject token",
            vec!["--client-id", "robot-basic", "--subject-token-file"],
        ),
    ];
    for (what, args) in cases {
        let r = run_within(
            env.cmd()
                .args(["get", "--issuer", &iss.url, "-o"])
                .arg(env.path("bt"))
                .args(args)
                .arg(&fifo),
            10,
        );
        assert_one_line(&r, 78);
        assert!(
            r.stderr.contains("not a regular file"),
            "{what}: {}",
            r.stderr
        );
    }
    assert_eq!(iss.requests("token"), 0);
}

#[test]
fn inspect_never_waits_on_a_fifo_at_the_default_location() {
    let env = Env::new();
    let fifo = env.path("bt.fifo");
    mkfifo(&fifo);
    let r = run_within(env.cmd().arg("inspect").env("BEARER_TOKEN_FILE", &fifo), 10);
    assert_one_line(&r, 78);
    assert!(r.stderr.contains("not a regular file"), "{}", r.stderr);
    // $XDG_RUNTIME_DIR/bt_u<uid>, found by discovery.
    let runtime = env.path("run");
    fs::create_dir(&runtime).unwrap();
    mkfifo(&runtime.join(format!("bt_u{}", robot_token::store::euid())));
    let r = run_within(
        env.cmd().arg("inspect").env("XDG_RUNTIME_DIR", &runtime),
        10,
    );
    assert_one_line(&r, 78);
    assert!(r.stderr.contains("not a regular file"), "{}", r.stderr);
}

/// A run that fails before it takes any lock (here: a mistyped credential path)
/// creates nothing, not even to note the failure for `status`: no lock file and no
/// cache directory for locks, even where the token file's directory is shared.
#[test]
fn a_run_that_fails_before_any_lock_creates_nothing() {
    let env = Env::new();
    let shared = env.path("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let r = env
        .get(shared.join("bt"), env.path("no-such-credential.json"))
        .run();
    assert_exit(&r, 78, "does not exist");
    assert!(names(&shared).is_empty(), "{:?}", names(&shared));
    assert!(
        !env.path(".cache").exists(),
        "a cache directory was created"
    );
}
