//! Issuers that bend the RFCs: each deviation is a switch of the test issuer
//! (`--deviate NAME`, tests/peer/README.md), and robot-token answers each with the
//! right exit class and advice. (`strict-assertion-aud` in `init` is in tests/init.rs.)

mod common;

use std::fs;
use std::path::PathBuf;

use common::*;
use serde_json::json;

/// An issuer with `deviation`, an expired token on disk and a refresh-token credential.
fn setup(deviation: &str, client: &str) -> Robot {
    let s = Robot::of(Issuer::start_with(&["--deviate", deviation]), client, true);
    s.expire();
    s
}

/// A used refresh token answered with HTTP 400 and an empty body: the credential was
/// refused (77, re-bootstrap), not a configuration error (78).
#[test]
fn refresh_refused_with_an_empty_400_needs_a_new_credential() {
    let s = setup("refresh-400-empty", "robot-basic");
    let old_rt = read_json(&s.cred)["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    // A run renews (and rotates); the old refresh token comes back from a stale copy.
    let copy = s.env.write_private("copy.json", &read(&s.cred));
    let r = s.get(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    fs::write(&s.out, s.iss.mint_expired() + "\n").unwrap();
    let (status, _) =
        s.iss
            .refresh_status("robot-basic", "robot-basic-secret", "not-a-refresh-token");
    assert_eq!(status, 400, "the deviation is on");
    let before = read(&copy);
    let r = s.env.get(&s.out, &copy).run();
    assert_eq!(r.code, 77, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("HTTP 400 with empty body; the issuer gave no reason")
            && r.stderr
                .contains("bootstrap a new credential (robot-token init)"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(&old_rt));
    assert_eq!(read(&copy), before, "credential kept as it was");
}

/// `scope_invalid` instead of `invalid_scope`: the scope problem is named.
#[test]
fn a_non_standard_scope_error_names_the_scope_problem() {
    let s = setup("scope-invalid", "robot-basic");
    let r = s.get(&["--scope", "storage.modify:/elsewhere"]);
    assert_eq!(r.code, 78, "{}", r.stderr);
    assert!(
        r.stderr.contains("the issuer refused the requested scope")
            && r.stderr.contains("scope_invalid")
            && r.stderr.contains("--scope"),
        "{}",
        r.stderr
    );
}

/// A bare 403 for client_credentials: wrong secret or missing scope, both named.
#[test]
fn an_empty_403_for_client_credentials_names_both_possibilities() {
    let iss = Issuer::start_with(&["--deviate", "cc-403-empty"]);
    let env = Env::new();
    let secret = env.write_private("secret", "robot-basic-secret\n");
    let wrong = env.write_private("wrong", "not-the-secret\n");
    let get = |secret: &PathBuf, scope: &[&str]| {
        env.get_client(&iss, "robot-basic", "bt")
            .arg("--client-secret-file")
            .arg(secret)
            .args(scope)
            .run()
    };
    for (secret, scope) in [
        (&wrong, &["--scope", "storage.read:/"][..]),
        (&secret, &[][..]),
    ] {
        let r = get(secret, scope);
        assert_eq!(r.code, 77, "{}", r.stderr);
        assert!(
            r.stderr
                .contains("HTTP 403 with empty body; the issuer gave no reason")
                && r.stderr
                    .contains("either the client secret or key is wrong")
                && r.stderr.contains("or the issuer requires a scope"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("robot-basic-secret") && !r.stderr.contains("not-the-secret"));
    }
    // With both right, the same issuer gives a token.
    let r = get(&secret, &["--scope", "storage.read:/"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// Lower-case `bearer`, `iat` in the response, `aud` = the scope string, no
/// `wlcg.ver`: all accepted, by get, status, check and inspect.
#[test]
fn token_response_quirks_are_accepted() {
    let s = setup("token-quirks", "robot-basic");
    let r = s.get(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "");
    let tok = read(&s.out);
    let jwt = robot_token::token::decode(robot_token::token::trim(&tok)).unwrap();
    assert_eq!(
        jwt.claims["aud"],
        json!(jwt.claims["scope"]),
        "the deviation is on"
    );
    assert!(jwt.claims.get("wlcg.ver").is_none());
    // The second run is a no-op.
    let r = s.get(&[]);
    assert_eq!((r.code, s.iss.requests("token")), (0, 1), "{}", r.stderr);
    let r = run(s.env.cmd().arg("inspect").arg(&s.out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(s.env.cmd().arg("status").arg(&s.out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("aud openid offline_access storage.read:/"),
        "{}",
        r.stdout
    );
    let r = run(s.env.cmd().arg("check").arg(&s.out));
    assert_eq!(r.code, 0, "{}", r.stdout);
    let r = run(s.env.cmd().args(["inspect", "--verify"]).arg(&s.out));
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// A strict issuer takes a client assertion only with `aud` = the called URL: for
/// cron's token requests that is the token endpoint.
#[test]
fn strict_assertion_audience_at_the_token_endpoint() {
    let iss = Issuer::start_with(&["--deviate", "strict-assertion-aud"]);
    let env = Env::new();
    let key = env.key_copy("client-ec.key.pem");
    let r = env
        .get_client(&iss, "robot-pkjwt-ec", "bt")
        .args(["--kid", "robot-pkjwt-ec", "--scope", "storage.read:/"])
        .arg("--private-key-file")
        .arg(&key)
        .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.requests("token"), 1);
}
