//! `robot-token inspect`: decode, times, exit codes.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::*;
use serde_json::Value;

#[test]
fn inspects_files_stdin_and_environment() {
    let iss = Issuer::start();
    let env = Env::new();
    let (_, at) = iss.mint(
        "robot-basic",
        "openid storage.read:/",
        Some("https://storage.example.org"),
    );
    let f = env.path("tok");
    std::fs::write(&f, format!("{at}\r\n")).unwrap();

    let r = run(env.cmd().args(["inspect", "--json"]).arg(&f));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["header"]["alg"], "RS256");
    assert_eq!(v["claims"]["aud"], "https://storage.example.org");
    let left = v["expires_in"].as_i64().unwrap();
    assert!(left > 3000 && left <= 3600, "{left}");

    let r = run(env.cmd().arg("inspect").arg(&f));
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("exp: ") && r.stdout.contains(" UTC"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("expires in "), "{}", r.stdout);

    let jti = |stdout: &str| -> Value {
        let v: Value = serde_json::from_str(stdout).unwrap();
        v["claims"]["jti"].clone()
    };
    let want = jti(&r_json(&env, &f));
    assert!(want.is_string());

    // $BEARER_TOKEN comes first in discovery: its token is the one shown, not the
    // one in $BEARER_TOKEN_FILE.
    let other = env.path("other");
    std::fs::write(&other, iss.mint_expired() + "\n").unwrap();
    let r = run(env
        .cmd()
        .args(["inspect", "--json"])
        .env("BEARER_TOKEN", &at)
        .env("BEARER_TOKEN_FILE", &other));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(jti(&r.stdout), want, "{}", r.stdout);

    // stdin
    let mut child = env
        .cmd()
        .args(["inspect", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(at.as_bytes())
        .unwrap();
    let out = wait_output(child, CHILD_TIMEOUT);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(jti(&stdout), want, "{stdout}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["claims"]["aud"], "https://storage.example.org");
    assert!(v["expires_in"].as_i64().unwrap() > 3000);
}

fn r_json(env: &Env, f: &std::path::Path) -> String {
    let r = run(env.cmd().args(["inspect", "--json"]).arg(f));
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout
}

#[test]
fn expired_is_1_and_garbage_is_65() {
    let iss = Issuer::start();
    let env = Env::new();
    let f = env.path("tok");
    std::fs::write(&f, iss.mint_expired()).unwrap();
    let r = run(env.cmd().arg("inspect").arg(&f));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("expired "), "{}", r.stdout);

    std::fs::write(&f, "<html>login</html>").unwrap();
    let r = run(env.cmd().arg("inspect").arg(&f));
    assert_eq!(r.code, 65);
    assert_eq!(r.stderr.lines().count(), 1);
}
