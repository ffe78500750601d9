//! `robot-token inspect --verify` against the real test issuer's discovery document
//! and JWKS: exit 0 valid, 1 expired, 77 a check failed (naming it), 75 keys
//! unreachable.

mod common;

use common::*;
use serde_json::{json, Value};

const AUD: &str = "https://storage.example.org";

fn verify(env: &Env, token: &str, extra: &[&str]) -> Output {
    let f = env.path("tok");
    std::fs::write(&f, format!("{token}\n")).unwrap();
    run(env.cmd().args(["inspect", "--verify"]).args(extra).arg(&f))
}

#[test]
fn a_good_token_verifies_with_audience_and_scope() {
    let iss = Issuer::start();
    let env = Env::new();
    let (_, at) = iss.mint(
        "robot-basic",
        "openid storage.read:/data compute.read",
        Some(AUD),
    );
    iss.reset();
    let r = verify(
        &env,
        &at,
        &[
            "--audience",
            AUD,
            "--require-scope",
            "storage.read:/data/run1 compute.read",
            "--issuer",
            &iss.url,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("signature: valid (RS256, key robot-token-test-provider"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("verified: signature, iss, exp, nbf, aud, scope"),
        "{}",
        r.stdout
    );
    assert_eq!(r.stderr, "");
    assert_eq!(iss.requests("discovery"), 1);
    assert_eq!(iss.requests("jwks"), 1);
    assert_eq!(iss.requests("token"), 0);

    let r = verify(&env, &at, &["--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["verify"]["valid"], true, "{v}");
    assert_eq!(v["verify"]["kid"], "robot-token-test-provider");
}

#[test]
fn the_wlcg_any_audience_is_accepted_with_a_note() {
    let iss = Issuer::start();
    let env = Env::new();
    let (_, at) = iss.mint("robot-basic", "openid storage.read:/", None);
    let r = verify(&env, &at, &["--audience", AUD]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("https://wlcg.cern.ch/jwt/v1/any"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_token_signed_by_another_key_is_77() {
    let iss = Issuer::start();
    let env = Env::new();
    // The CI key, with this issuer's iss: its kid is not in the issuer's JWKS.
    let t = iss.sign("ci", json!({"iss": iss.url, "sub": "x"}));
    let r = verify(&env, &t, &[]);
    assert_exit(&r, 77, "signature check failed");
    assert!(r.stderr.contains("robot-token-test-ci"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);

    // Another key that claims the provider's kid: the signature itself fails.
    robot_token::jws::install();
    let pem = std::fs::read(manifest_dir().join("tests/peer/keys/ci.key.pem")).unwrap();
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("robot-token-test-provider".into());
    let now = robot_token::token::now();
    let forged = jsonwebtoken::encode(
        &header,
        &json!({"iss": iss.url, "sub": "robot-user", "exp": now + 600, "iat": now}),
        &key,
    )
    .unwrap();
    let r = verify(&env, &forged, &[]);
    assert_exit(&r, 77, "does not verify");

    // A real token whose claims were altered after signing.
    let (_, at) = iss.mint("robot-basic", "openid storage.read:/data", None);
    let parts: Vec<&str> = at.split('.').collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    claims["scope"] = json!("storage.modify:/");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(claims.to_string()),
        parts[2]
    );
    let r = verify(&env, &tampered, &[]);
    assert_exit(&r, 77, "does not verify");

    // alg none or HMAC cannot be verified with a JWKS.
    let none = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none"}"#),
        b64.encode(json!({"iss": iss.url, "exp": now + 600}).to_string())
    );
    let r = verify(&env, &none, &[]);
    assert_exit(&r, 77, "\"none\" is not accepted");
}

#[test]
fn a_wrong_iss_is_77() {
    let iss = Issuer::start();
    let env = Env::new();
    let (_, at) = iss.mint("robot-basic", "openid", None);
    // Not the issuer the caller expects.
    let r = verify(&env, &at, &["--issuer", "https://iam.example.org"]);
    assert_exit(&r, 77, "iss check failed");
    // Signed by the provider, but iss names a path with no discovery document.
    let t = iss.sign(
        "provider",
        json!({"iss": format!("{}/other", iss.url), "sub": "x"}),
    );
    let r = verify(&env, &t, &[]);
    assert_eq!(r.code, 77, "{}", r.stderr);
    assert!(
        r.stderr.contains("iss check failed") && r.stderr.contains("HTTP 404"),
        "{}",
        r.stderr
    );
    // A trailing slash is another issuer as far as the discovery document goes.
    let t = iss.sign(
        "provider",
        json!({"iss": format!("{}/", iss.url), "sub": "x"}),
    );
    let r = verify(&env, &t, &[]);
    assert_exit(&r, 77, "names issuer");
    // Plain http to a non-loopback host is never fetched.
    let t = iss.sign(
        "provider",
        json!({"iss": "http://iam.example.org", "sub": "x"}),
    );
    let r = verify(&env, &t, &[]);
    assert_exit(&r, 77, "plain http");
    // No iss at all.
    let t = iss.sign_raw(json!({"sub":"x","exp": robot_token::token::now()+600}));
    let r = verify(&env, &t, &[]);
    assert_exit(&r, 77, "no iss claim");
}

#[test]
fn a_wrong_audience_or_a_missing_scope_is_77_and_says_which() {
    let iss = Issuer::start();
    let env = Env::new();
    let (_, at) = iss.mint("robot-basic", "openid storage.read:/foo", Some(AUD));
    let r = verify(&env, &at, &["--audience", "https://other.example.org"]);
    assert_exit(&r, 77, "aud: the token is for https://storage.example.org");
    // storage.read:/foo allows /foo/bar, not /foobar.
    let r = verify(&env, &at, &["--require-scope", "storage.read:/foo/bar"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = verify(&env, &at, &["--require-scope", "storage.read:/foobar"]);
    assert_exit(&r, 77, "scope: storage.read:/foobar not granted");
    let r = verify(&env, &at, &["--require-scope", "storage.modify:/foo"]);
    assert_eq!(r.code, 77, "{}", r.stderr);
    // Both wrong: both named.
    let r = verify(
        &env,
        &at,
        &["--audience", "x", "--require-scope", "compute.read"],
    );
    assert_eq!(r.code, 77, "{}", r.stderr);
    assert!(
        r.stderr.contains("aud:") && r.stderr.contains("scope:"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_expired_token_with_a_good_signature_is_1() {
    let iss = Issuer::start();
    let env = Env::new();
    let r = verify(&env, &iss.mint_expired(), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("signature: valid"), "{}", r.stdout);
    assert!(r.stdout.contains("expired "), "{}", r.stdout);
    // A token not yet valid is a failed check, not an expiry.
    let now = robot_token::token::now();
    let t = iss.sign("provider", json!({"nbf": now + 3600, "exp": now + 7200}));
    let r = verify(&env, &t, &[]);
    assert_exit(&r, 77, "nbf:");
    // Within the leeway, a token just past exp still verifies.
    let t = iss.sign("provider", json!({"iat": now - 100, "exp": now - 5}));
    let r = verify(&env, &t, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn unreachable_keys_are_75() {
    let env = Env::new();
    let (at, url) = {
        let iss = Issuer::start();
        let (_, at) = iss.mint("robot-basic", "openid", None);
        (at, iss.url.clone())
    }; // the issuer is gone now
    let r = verify(&env, &at, &["--timeout", "2s"]);
    assert_exit(&r, 75, &url);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
}

#[test]
fn verify_options_need_verify() {
    let env = Env::new();
    let f = env.path("tok");
    std::fs::write(&f, "x.y.z").unwrap();
    let r = run(env.cmd().args(["inspect", "--audience", "a"]).arg(&f));
    assert_exit(&r, 64, "--verify");
}

#[test]
fn over_https_the_issuer_ca_must_be_trusted() {
    let iss = Issuer::start_https_test_ca();
    let ca = test_ca();
    assert!(iss.url.starts_with("https://"), "{}", iss.url);
    let env = Env::new();
    let (_, at) = iss.mint("robot-basic", "openid storage.read:/", None);
    let r = verify(&env, &at, &["--cafile", ca.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("signature: valid"), "{}", r.stdout);
    // Without the CA: a trust problem to fix (78), not a failed check.
    let r = verify(&env, &at, &[]);
    assert_exit(&r, 78, "--cafile");
}
