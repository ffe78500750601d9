//! The credential file is the user's: a refresh-token rotation against the real
//! issuer changes the `refresh_token` value and not one other byte.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::*;
use serde_json::Value;

/// A hand-written credential: numbers serde would respell, escapes it would undo,
/// tabs, CRLF, odd spacing, a nested `refresh_token` that is not ours, a trailing
/// blank line.
fn handwritten(issuer: &str, rt: &str) -> String {
    format!(
        "{{\r\n    \"version\": 1,\n    \"issuer\":\"{issuer}\",\n\t\"client_id\" : \"robot-basic\",\n    \
         \"client_secret\": \"robot\\u002dbasic-secret\",\n    \"x-big\": 12345678901234567890123,\n    \
         \"x-exp\": 1e3, \"x-zero\": -0, \"x-frac\": 1.50,\n    \"x-text\": \"caf\\u00e9 \\/ \\ud83d\\ude00\",\n    \
         \"refresh_token\"   :   \"{rt}\",\n    \"x-tail\": [ {{\"refresh_token\": \"not ours\"}} ]\n}}\n\n"
    )
}

#[test]
fn rotation_changes_only_the_refresh_token_value() {
    let iss = Issuer::start();
    let env = Env::new();
    let rt = iss.refresh_token("robot-basic");
    let original = handwritten(&iss.url, &rt);
    let cred = env.write_private("cred.json", &original);
    let out = env.path("bt");
    let r = env.get(&out, &cred).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.requests("token"), 1);
    let now = read(&cred);
    let v: Value = serde_json::from_str(&now).unwrap();
    let new_rt = v["refresh_token"].as_str().unwrap();
    assert_ne!(new_rt, rt, "the issuer rotated it");
    assert_eq!(
        now,
        original.replace(
            &format!("\"{rt}\""),
            &serde_json::to_string(new_rt).unwrap()
        ),
        "only the refresh token's value changed"
    );
    assert_eq!(
        fs::metadata(&cred).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // And the rewritten file works for the next rotation.
    fs::remove_file(&out).unwrap();
    let r = env.get(&out, &cred).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let again = read_json(&cred);
    assert_ne!(again["refresh_token"], v["refresh_token"]);
}

#[test]
fn a_duplicate_refresh_token_is_refused_before_any_request() {
    let iss = Issuer::start();
    let env = Env::new();
    let rt = iss.refresh_token("robot-basic");
    let content = format!(
        "{{\"version\": 1, \"issuer\": \"{}\", \"client_id\": \"robot-basic\", \
         \"client_secret\": \"robot-basic-secret\", \"refresh_token\": \"{rt}\", \
         \"refresh\\u005ftoken\": \"{rt}\"}}\n",
        iss.url
    );
    let cred = env.write_private("cred.json", &content);
    iss.reset();
    let r = env.get(env.path("bt"), &cred).run();
    assert_eq!(r.code, 65, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("\"refresh_token\" appears 2 times"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(&rt), "no secret in the message");
    assert_eq!(iss.requests("token"), 0, "refused before anything was sent");
    assert_eq!(read(&cred), content, "the file is untouched");
    // The refresh token still works.
    let (status, _) = iss.refresh_status("robot-basic", "robot-basic-secret", &rt);
    assert_eq!(status, 200);
}
