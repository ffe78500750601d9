//! `robot-token revoke` against the real oidc-provider issuer: the refresh token is dead
//! at the issuer afterwards, the token files and robot-token's own files are gone, the
//! credential is kept without its refresh token and with `revoked_at`, a second revoke
//! is a no-op, and a refused revocation changes nothing. (Vault: tests/vault.rs.)

mod common;

use std::fs;
use std::path::PathBuf;

use common::*;
use serde_json::json;

/// Nothing secret in stdout or stderr: not the refresh token, not the client secret,
/// not a JWT.
fn assert_no_secrets(r: &Output, secrets: &[&str]) {
    let all = format!("{}{}", r.stdout, r.stderr);
    for s in secrets {
        assert!(!all.contains(s), "a secret leaked into the output: {all}");
    }
    assert!(!all.contains("eyJ"), "a JWT leaked into the output: {all}");
}

/// [`Env::names`] without lock files (a failed run leaves its empty locks, as `get`
/// does).
fn files(env: &Env) -> Vec<String> {
    env.names()
        .into_iter()
        .filter(|n| !n.ends_with(".lock"))
        .collect()
}

/// A credential for `client` (secret, or private key for the private_key_jwt clients)
/// holding a refresh token minted at the issuer; returns (credential, refresh token).
fn minted(env: &Env, iss: &Issuer, client: &str) -> (PathBuf, String) {
    let (rt, _) = iss.mint(client, SCOPE, None);
    let mut v = json!({"version": 1, "issuer": iss.url, "client_id": client,
                       "scope": SCOPE, "refresh_token": rt, "x-site": {"kept": [1, 2]}});
    match client {
        "robot-pkjwt-ec" | "robot-pkjwt-rsa" => {
            let name = if client.ends_with("ec") {
                "client-ec.key.pem"
            } else {
                "client-rsa.key.pem"
            };
            let key = env.key_copy(name);
            v["client_auth"] = json!("private_key_jwt");
            v["private_key_file"] = json!(key);
            v["kid"] = json!(client);
        }
        _ => {
            v["client_secret"] = json!(format!("{client}-secret"));
            if client == "robot-post" {
                v["client_auth"] = json!("post");
            }
        }
    }
    let cred = env.write_private("cred.json", &serde_json::to_string_pretty(&v).unwrap());
    (cred, rt)
}

fn secret_of(client: &str) -> String {
    format!("{client}-secret")
}

#[test]
fn revoke_kills_the_refresh_token_at_the_issuer_and_removes_the_files() {
    let iss = Issuer::start();
    let env = Env::new();
    let (cred, rt) = minted(&env, &iss, "robot-basic");
    let out = env.path("bt");
    let r = env.get(&out, &cred).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The renewal rotated it: the refresh token to revoke is the one on disk now.
    let rt = read_json(&cred)["refresh_token"]
        .as_str()
        .map(str::to_string)
        .unwrap_or(rt);
    let access = read(&out);
    assert!(
        read(&env.path(".bt.lock")).contains("last_run"),
        "a renewal leaves its record for status: {:?}",
        env.names()
    );

    iss.reset();
    let r = env.revoke(&out, &cred).arg("-vv").run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.requests("revocation"), 1);
    assert_eq!(iss.requests("token"), 0, "revoking redeems nothing");
    assert!(
        r.stdout.contains("revoked the refresh token sha256:"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!("removed {}", out.display())),
        "{}",
        r.stdout
    );
    assert_no_secrets(&r, &[&rt, &secret_of("robot-basic"), access.trim()]);

    // The issuer refuses the old refresh token now.
    let (status, body) = iss.refresh_status("robot-basic", &secret_of("robot-basic"), &rt);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // The token file and robot-token's own files are gone; the credential is kept.
    assert_eq!(
        env.names(),
        vec!["cred.json"],
        "only the credential is left"
    );
    let c = read_json(&cred);
    assert!(c.get("refresh_token").is_none(), "{c}");
    let at = c["revoked_at"].as_str().unwrap();
    assert!(at.parse::<jiff::Timestamp>().is_ok(), "{at}");
    assert_eq!(c["client_secret"], json!(secret_of("robot-basic")));
    assert_eq!(c["x-site"], json!({"kept": [1, 2]}), "unknown fields kept");
    let mode = fs::metadata(&cred).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );

    // A second revoke is a no-op: no request, exit 0, the file as it was.
    let before = read(&cred);
    iss.reset();
    let r = env.revoke(&out, &cred).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        iss.requests("revocation") + iss.requests("discovery") + iss.requests("token"),
        0,
        "nothing sent"
    );
    assert!(r.stdout.contains("already revoked"), "{}", r.stdout);
    assert_eq!(read(&cred), before);
    assert_eq!(env.names(), vec!["cred.json"]);

    // A forgotten cron line does not bring the robot back.
    let r = env.get(&out, &cred).run();
    assert_exit(&r, 77, "was revoked at");
    assert_eq!(iss.requests("token"), 0);
    assert!(!out.exists());
}

#[test]
fn revoke_authenticates_as_every_client_kind() {
    let iss = Issuer::start();
    for client in ["robot-post", "robot-pkjwt-ec", "robot-pkjwt-rsa"] {
        let env = Env::new();
        let (cred, rt) = minted(&env, &iss, client);
        let copy = env.write_private("copy.json", &read(&cred));
        let out = env.path("bt");
        fs::write(&out, "old token\n").unwrap();
        let r = env.revoke(&out, &cred).run();
        assert_eq!(r.code, 0, "{client}: {}", r.stderr);
        assert!(!out.exists(), "{client}");
        assert!(read_json(&cred)["revoked_at"].is_string(), "{client}");
        assert_no_secrets(&r, &[&rt]);
        // The issuer refuses the revoked refresh token, from the same client.
        let r = env.get(&out, &copy).run();
        assert_eq!(r.code, 77, "{client}: {}", r.stderr);
        assert!(r.stderr.contains("refresh token rejected"), "{}", r.stderr);
    }
}

#[test]
fn a_refused_revocation_exits_77_and_changes_nothing() {
    let iss = Issuer::start();
    let env = Env::new();
    let (cred, rt) = minted(&env, &iss, "robot-basic");
    // A wrong client secret: the real issuer refuses the client (invalid_client).
    let mut v = read_json(&cred);
    v["client_secret"] = json!("not-the-secret");
    let cred = env.write_private("cred.json", &serde_json::to_string_pretty(&v).unwrap());
    let out = env.path("bt");
    fs::write(&out, "old token\n").unwrap();
    let before = (read(&cred), read(&out), files(&env));

    let r = env.revoke(&out, &cred).run();
    assert_eq!(r.code, 77, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("invalid_client"), "{}", r.stderr);
    assert!(r.stderr.contains("no file was changed"), "{}", r.stderr);
    assert_no_secrets(&r, &[&rt, "not-the-secret"]);
    assert_eq!((read(&cred), read(&out), files(&env)), before);

    // An issuer that does not revoke refresh tokens: 77, files kept.
    v["client_secret"] = json!(secret_of("robot-basic"));
    let cred = env.write_private("cred.json", &serde_json::to_string_pretty(&v).unwrap());
    let before = (read(&cred), read(&out), files(&env));
    iss.fault(json!({"kind": "unsupported_token_type", "path": "revocation"}));
    let r = env.revoke(&out, &cred).run();
    assert_exit(&r, 77, "does not revoke refresh tokens");
    assert_eq!((read(&cred), read(&out), files(&env)), before);

    // The issuer down (503 on every retry): 75, files kept, run it again later.
    iss.fault(json!({"kind": "status", "status": 503, "times": 4, "path": "revocation"}));
    let r = env.revoke(&out, &cred).args(["--deadline", "20s"]).run();
    assert_exit(&r, 75, "run revoke again");
    assert_eq!((read(&cred), read(&out), files(&env)), before);

    // Then it works, and the refresh token is dead.
    let r = env.revoke(&out, &cred).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (status, _) = iss.refresh_status("robot-basic", &secret_of("robot-basic"), &rt);
    assert_eq!(status, 400);
}

#[test]
fn client_credentials_has_nothing_to_revoke_and_loses_its_token_files() {
    let iss = Issuer::start();
    let env = Env::new();
    let secret = env.write_private("secret", "robot-basic-secret\n");
    let out = env.path("bt");
    let get = |verb: &str| {
        env.client_line(verb, &iss, "robot-basic", &out)
            .arg("--client-secret-file")
            .arg(&secret)
            .run()
    };
    let r = get("get");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(out.exists());
    iss.reset();
    let r = get("revoke");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("nothing to revoke"), "{}", r.stdout);
    assert!(!out.exists(), "token file removed");
    assert_eq!(iss.requests("revocation") + iss.requests("token"), 0);
    assert_eq!(
        read(&secret),
        "robot-basic-secret\n",
        "the secret file is kept"
    );
    assert_eq!(env.names(), vec!["secret"], "no lock or state file left");

    // A credential file without a refresh token: marked, nothing sent.
    let cred = env.write_private(
        "cc.json",
        &json!({"version": 1, "issuer": iss.url, "client_id": "robot-basic",
                "client_secret": "robot-basic-secret"})
        .to_string(),
    );
    let r = env.revoke(&out, &cred).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("holds no refresh token"), "{}", r.stdout);
    assert!(read_json(&cred)["revoked_at"].is_string());
    assert_eq!(iss.requests("revocation") + iss.requests("token"), 0);
}

#[test]
fn revoke_a_profile_removes_its_outputs() {
    let iss = Issuer::start();
    let env = Env::new();
    let (cred, rt) = minted(&env, &iss, "robot-basic");
    let config = env.write_private(
        "config.toml",
        &format!(
            "[profile.storage]\ncredential = {cred:?}\noutputs = [\"a.token\", \"b.token\"]\n\n\
             [profile.other]\ncredential = \"/nonexistent.json\"\noutfile = \"c.token\"\n"
        ),
    );
    let r = env.profile("get", "storage", &config).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(env.path("a.token").exists() && env.path("b.token").exists());
    let rt = read_json(&cred)["refresh_token"]
        .as_str()
        .map(str::to_string)
        .unwrap_or(rt);
    fs::write(env.path("c.token"), "another robot's\n").unwrap();

    let r = env.profile("revoke", "storage", &config).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!env.path("a.token").exists() && !env.path("b.token").exists());
    assert_eq!(read(&env.path("c.token")), "another robot's\n");
    let (status, _) = iss.refresh_status("robot-basic", &secret_of("robot-basic"), &rt);
    assert_eq!(status, 400);

    let r = env.profile("revoke", "nope", &config).run();
    assert_eq!(r.code, 78, "{}", r.stderr);
}

#[test]
fn quiet_revoke_prints_nothing_and_a_symlinked_token_file_is_not_followed() {
    let iss = Issuer::start();
    let env = Env::new();
    let (cred, _) = minted(&env, &iss, "robot-basic");
    let victim = env.path("victim");
    fs::write(&victim, "precious\n").unwrap();
    let out = env.path("bt");
    std::os::unix::fs::symlink(&victim, &out).unwrap();
    let r = env.revoke(&out, &cred).arg("-q").run();
    // Revoked at the issuer, but the symlink is reported, not followed.
    assert_exit(&r, 73, "symbolic link");
    assert_eq!(r.stdout, "");
    assert_eq!(read(&victim), "precious\n");
    assert!(read_json(&cred)["revoked_at"].is_string());
}

#[test]
fn the_revocation_endpoint_comes_from_discovery_or_the_credential() {
    let iss = Issuer::start();
    let env = Env::new();
    let rt = iss.refresh_token("robot-basic");
    let meta = iss.get("/.well-known/openid-configuration");
    let token_endpoint = meta["token_endpoint"].as_str().unwrap().to_string();
    // Without an issuer there is no discovery: 78, nothing changed.
    let v = json!({"version": 1, "token_endpoint": token_endpoint, "client_id": "robot-basic",
                   "client_secret": "robot-basic-secret", "refresh_token": rt});
    let cred = env.write_private("cred.json", &v.to_string());
    let out = env.path("bt");
    fs::write(&out, "old\n").unwrap();
    let r = env.revoke(&out, &cred).run();
    assert_exit(&r, 78, "revocation_endpoint");
    assert_eq!(
        (read(&cred), read(&out)),
        (v.to_string(), "old\n".to_string())
    );
    // The credential names it: revoked there.
    let mut v = v;
    v["revocation_endpoint"] = meta["revocation_endpoint"].clone();
    let cred = env.write_private("cred.json", &v.to_string());
    iss.reset();
    let r = env.revoke(&out, &cred).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        (iss.requests("revocation"), iss.requests("discovery")),
        (1, 0)
    );
    let (status, _) = iss.refresh_status("robot-basic", &secret_of("robot-basic"), &rt);
    assert_eq!(status, 400);
}
