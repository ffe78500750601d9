//! A new user's first week (issue 17): typos are errors that name the fix, every error
//! line says what to do next, and the documentation agrees with the binary.

mod common;

use common::*;
use serde_json::json;

#[test]
fn a_misspelt_output_option_is_a_usage_error_not_a_file() {
    let Robot { iss, env, cred, .. } = Robot::start();
    let before = read(&cred);
    iss.reset();
    for (arg, words) in [
        (
            "bt:ownr=nobody",
            "unknown option \"ownr\": did you mean owner?",
        ),
        (
            "bt:color=red",
            "unknown option \"color\" (known: owner, group, mode)",
        ),
        ("bt:mode=0600,gruop=x", "did you mean group?"),
    ] {
        let r = env.get(arg, &cred).run();
        assert_eq!(r.code, 64, "{arg}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.contains(words), "{arg}: {}", r.stderr);
        assert!(r.stderr.contains("trailing ':'"), "{}", r.stderr);
    }
    assert_eq!(iss.requests("token"), 0);
    assert_eq!(read(&cred), before);
    assert!(
        !env.names().iter().any(|n| n.starts_with("bt")),
        "{:?}",
        env.names()
    );
    // A path that really has such a name is written with a trailing ':'; other colons
    // stay in the path.
    let r = run(env
        .cmd()
        .args([
            "get",
            "-o",
            "bt:ownr=nobody:",
            "-o",
            "run:2026-12-01T10:00",
            "-c",
        ])
        .arg(&cred));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(lifetime(&read(&env.path("bt:ownr=nobody"))) > 3000);
    assert!(lifetime(&read(&env.path("run:2026-12-01T10:00"))) > 3000);
}

#[test]
fn a_misspelt_key_in_a_profile_token_file_table_names_the_key() {
    let Robot { iss, env, cred, .. } = Robot::start();
    let c = env.write_private(
        "config.toml",
        &format!(
            "[profile.storage]\ncredential = {cred:?}\n\
             outputs = [{{path = \"storage.token\", onwer = \"nobody\"}}]\n"
        ),
    );
    iss.reset();
    let r = env.profiles("get", &c).run();
    // A configuration file's mistake is a configuration error (78) with file and line.
    assert_eq!(r.code, 78, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("config.toml:3: profile storage: key outputs: unknown option \"onwer\": did you mean owner?"),
        "{}",
        r.stderr
    );
    assert_eq!(iss.requests("token"), 0);
    assert!(!env.names().iter().any(|n| n.contains("onwer")));
}

#[test]
fn a_credential_field_near_a_known_one_is_an_error_naming_it() {
    let iss = Issuer::start();
    let env = Env::new();
    let rt = iss.refresh_token("robot-basic");
    for (typo, meant) in [
        ("refresh_tokn", "refresh_token"),
        ("client_secert", "client_secret"),
    ] {
        let mut v = json!({
            "version": 1, "issuer": iss.url, "client_id": "robot-basic",
            "client_secret": "robot-basic-secret", "refresh_token": rt, "scope": SCOPE,
            "comment": "storage robot, kept as written",
        });
        let value = v.as_object_mut().unwrap().remove(meant).unwrap();
        v[typo] = value;
        let cred = env.write_private("cred.json", &v.to_string());
        let before = read(&cred);
        iss.reset();
        let r = env.get("bt", &cred).run();
        assert_eq!(r.code, 78, "{typo}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(
            r.stderr.contains(&format!(
                "unknown field \"{typo}\": did you mean \"{meant}\"?"
            )),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains(&rt) && !r.stderr.contains("robot-basic-secret"));
        assert_eq!(iss.requests("token"), 0, "{typo}: nothing sent");
        assert_eq!(read(&cred), before);
    }
    // Fields far from every known one are kept through a rotation.
    let cred = env.credential(&iss, "robot-basic", Some(&rt));
    let r = env.get("bt", &cred).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(read(&cred).contains("x-unknown-field"));
}

#[test]
fn clap_keeps_its_similar_argument_tip_on_the_one_line() {
    let env = Env::new();
    let r = run(env.cmd().args(["get", "--credentials", "robot.json"]));
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "unexpected argument '--credentials' found; a similar argument exists: '--credential'"
        ),
        "{}",
        r.stderr
    );
    let r = run(env.cmd().args(["check", "--warnin", "5m"]));
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(r.stdout.contains("'--warning'"), "{}", r.stdout);
}

#[test]
fn errors_say_what_to_do_next() {
    let Robot { iss, env, cred, .. } = Robot::start();
    iss.reset();

    // A missing directory for the token file: named, with the fix, before any request.
    let r = env.get("no/such/dir/bt", &cred).run();
    assert_exit(
        &r,
        73,
        "the directory no/such/dir does not exist: create it (mkdir -p -m 700 no/such/dir)",
    );
    assert_eq!(iss.requests("token") + iss.requests("discovery"), 0);

    // A missing credential file: how to make one.
    let r = env.get("bt", "robot.json").run();
    assert_exit(
        &r,
        78,
        "create it with `robot-token init --issuer URL --client-id ID -c robot.json`",
    );

    // A missing client secret file.
    let r = env
        .get_client(&iss, "robot-basic", "bt")
        .args(["--client-secret-file", "robot.secret"])
        .run();
    assert_exit(&r, 78, "put the client secret there");

    // Nothing listens at the issuer's port: check the URL and port, or a proxy.
    let down = env.write_private(
        "down.json",
        r#"{"version":1,"issuer":"http://127.0.0.1:9","client_id":"x","refresh_token":"r"}"#,
    );
    let r = env.get("bt", &down).args(["--deadline", "3s"]).run();
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("connection refused: nothing listens there: check the URL's host and port")
            && r.stderr.contains("https_proxy"),
        "{}",
        r.stderr
    );
    // A host name that does not resolve: nothing was sent, so the refresh token was not
    // spent: a temporary failure, with DNS and the proxy to check.
    let nxdomain = env.write_private(
        "nx.json",
        r#"{"version":1,"token_endpoint":"https://robot-token-test.invalid/token","client_id":"x","refresh_token":"r"}"#,
    );
    let r = env.get("bt", &nxdomain).args(["--deadline", "5s"]).run();
    assert_eq!(r.code, 75, "{}", r.stderr);
    // (A host without a reachable resolver times out instead.)
    assert!(
        (r.stderr.contains("host not found")
            && r.stderr.contains("check the host name in the URL"))
            || r.stderr.contains("timed out"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("may have reached"), "{}", r.stderr);

    // inspect: a missing file is 78 (documented), with where to look.
    let r = run(env.cmd().args(["inspect", "nothere"]));
    assert_exit(&r, 78, "check the name");
    let r = run(env
        .cmd()
        .arg("inspect")
        .env("BEARER_TOKEN_FILE", env.path("none")));
    assert_eq!(r.code, 78, "{}", r.stderr);
    assert!(
        r.stderr.contains("no token there (found by WLCG discovery")
            && r.stderr.contains("robot-token get"),
        "{}",
        r.stderr
    );
}

#[test]
fn client_credentials_are_tried_at_most_4_times_as_the_readme_says() {
    let iss = Issuer::start();
    let env = Env::new();
    let cred = env.credential(&iss, "robot-basic", None);
    iss.fault(json!({"kind": "status", "status": 503, "times": 10}));
    let r = env.get("bt", &cred).args(["-v", "--deadline", "30s"]).run();
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert_eq!(iss.requests("token"), 4, "{}", r.stderr);
    assert_eq!(r.stderr.matches("retrying").count(), 3, "{}", r.stderr);
    let readme = read(&manifest_dir().join("README.md"));
    assert!(
        readme.contains("are sent up to 4 times (3 retries)"),
        "README and behaviour disagree"
    );
}

#[test]
fn help_names_every_private_key_type() {
    let env = Env::new();
    for cmd in ["get", "init"] {
        let r = run(env.cmd().args([cmd, "--help"]));
        assert_eq!(r.code, 0);
        let line = r
            .stdout
            .lines()
            .skip_while(|l| !l.contains("--private-key-file"))
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            line.contains("RSA") && line.contains("EC") && line.contains("Ed25519"),
            "{cmd}: {line}"
        );
    }
}
