//! Many simultaneous runs on an expired token: exactly one request reaches the issuer,
//! every run exits 0 and sees the same valid token.

mod common;

use common::*;

#[test]
fn fifty_simultaneous_runs_send_one_request() {
    let s = Robot::start();
    s.expire();
    // -m below the issuer's 3600 s lifetime: with -m 3600 a run that starts a second
    // after the renewal sees 3599 s left and renews again (a flake under load).
    let children: Vec<_> = (0..50)
        .map(|_| s.cmd().args(["-m", "600"]).start())
        .collect();
    for c in children {
        let o = wait_success(c);
        assert!(
            o.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert_eq!(s.iss.requests("token"), 1, "exactly one token request");
    assert_eq!(s.iss.requests("discovery"), 1);
    let tok = read(&s.out);
    assert!(lifetime(&tok) > 3000);
    // Every later reader sees that same token; the credential holds the rotated one.
    let c = read_json(&s.cred);
    assert_ne!(c["refresh_token"].as_str().unwrap(), s.rt);
    let r = s.get(&["-m", "600"]);
    assert_eq!(r.code, 0);
    assert_eq!(read(&s.out), tok);
}

#[test]
fn two_token_files_sharing_one_credential_never_reuse_a_refresh_token() {
    // Two cron lines, two token files, one refresh-token credential: the credential's
    // own lock makes the second run read the rotated token, not the spent one.
    let Robot { iss, env, cred, .. } = Robot::start();
    let children: Vec<_> = (0..8)
        .map(|i| env.get(env.path(&format!("bt{i}")), &cred).start())
        .collect();
    for c in children {
        wait_success(c);
    }
    assert_eq!(iss.requests("token"), 8);
    // Each token file holds its own fresh token from this issuer: eight renewals,
    // eight different tokens.
    let mut jtis: Vec<String> = (0..8)
        .map(|i| {
            let jwt = assert_issued_token(&env.path(&format!("bt{i}")), &iss, "robot-basic");
            assert!(jwt.scopes().contains(&"storage.read:/".to_string()));
            jwt.str_claim("jti").unwrap().to_string()
        })
        .collect();
    jtis.sort();
    jtis.dedup();
    assert_eq!(jtis.len(), 8, "eight distinct tokens");
    // The family is alive: the current refresh token still works.
    let c = read_json(&cred);
    let (status, body) = iss.refresh_status(
        "robot-basic",
        "robot-basic-secret",
        c["refresh_token"].as_str().unwrap(),
    );
    assert_eq!(status, 200, "{body}");
}
