//! Token exchange (RFC 8693), private_key_jwt client authentication (RFC 7523), the CI
//! bootstrap (`--ci github|gitlab|auto`) and `--require-scope`, against the real
//! oidc-provider on 127.0.0.1.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::{json, Value};

const CI_SUB: &str = "repo:octo-org/octo-repo:ref:refs/heads/main";

fn claims(tok: &str) -> robot_token::token::Jwt {
    robot_token::token::decode(robot_token::token::trim(tok)).unwrap()
}

fn has_scope(tok: &str, s: &str) -> bool {
    claims(tok).scopes().iter().any(|g| g == s)
}

/// A CI identity token signed by the test issuer's CI key (iss
/// https://token.actions.githubusercontent.com), as GitHub or GitLab would issue.
fn ci_token(iss: &Issuer, aud: &str) -> String {
    iss.sign(
        "ci",
        json!({"sub": CI_SUB, "aud": aud, "repository": "octo-org/octo-repo"}),
    )
}

/// The documented exit code and exactly one error line (after any -v log lines).
fn assert_one_line_error(r: &Output, code: i32) {
    assert_eq!(r.code, code, "{}", r.stderr);
    let errors = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("robot-token: error: "));
    assert_eq!(errors.count(), 1, "{}", r.stderr);
    assert!(
        r.stderr.lines().all(|l| l.starts_with("robot-token: ")),
        "{}",
        r.stderr
    );
}

/// Nothing secret in what the run printed, and no JWT at all.
fn assert_no_secrets(r: &Output, secrets: &[&str]) {
    let all = format!("{}{}", r.stdout, r.stderr);
    for s in secrets {
        assert!(!all.contains(s), "a secret leaked into the output");
        if let Some(sig) = s.split('.').nth(2) {
            assert!(!all.contains(sig), "a signature leaked into the output");
        }
    }
    assert!(!all.contains("eyJ"), "a JWT leaked into the output: {all}");
}

#[test]
fn exchange_from_a_credential_narrows_scopes_and_keeps_the_refresh_token() {
    let iss = Issuer::start();
    let env = Env::new();
    let (_, subject) = iss.mint(
        "robot-basic",
        "openid offline_access storage.read:/ storage.modify:/data",
        None,
    );
    env.write_private("subject.jwt", &format!("{subject}\n"));
    let cred = env.write_private(
        "cred.json",
        &serde_json::to_string_pretty(&json!({
            "version": 1,
            "issuer": iss.url,
            "client_id": "robot-basic",
            "client_secret": "robot-basic-secret",
            "grant": "token_exchange",
            "subject_token_file": "subject.jwt",
            "scope": "offline_access storage.read:/data/run1 storage.modify:/elsewhere",
            "audience": "https://fts.example.org",
        }))
        .unwrap(),
    );
    let out = env.path("bt");
    let r = env.get(&out, &cred).arg("-vv").run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.grants("token_exchange"), 1);
    let tok = read(&out);
    let jwt = claims(&tok);
    assert_eq!(jwt.audiences(), vec!["https://fts.example.org"]);
    assert_eq!(
        jwt.str_claim("sub"),
        Some("robot-user"),
        "the subject's sub"
    );
    assert!(has_scope(&tok, "storage.read:/data/run1"));
    assert!(!has_scope(&tok, "storage.modify:/elsewhere"), "narrowed");
    assert!(
        r.stderr.contains("narrowed the scope") && r.stderr.contains("storage.modify:/elsewhere"),
        "{}",
        r.stderr
    );
    // The refresh token of the answer is in the credential, everything else kept.
    let c = read_json(&cred);
    let rt = c["refresh_token"]
        .as_str()
        .expect("refresh token stored")
        .to_string();
    assert_eq!(c["grant"], "token_exchange");
    assert_eq!(c["subject_token_file"], "subject.jwt");
    assert_eq!(fs::metadata(&cred).unwrap().mode() & 0o777, 0o600);
    assert_no_secrets(&r, &[&subject, &tok, &rt, "robot-basic-secret"]);

    // The next run uses the refresh_token grant: the subject token is not needed.
    fs::remove_file(env.path("subject.jwt")).unwrap();
    let r = env.get(&out, &cred).args(["-m", "100000"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.grants("token_exchange"), 1);
    assert_eq!(iss.grants("refresh_token"), 1);
    let c = read_json(&cred);
    assert_ne!(
        c["refresh_token"].as_str().unwrap(),
        rt,
        "rotated and saved"
    );
    assert_eq!(
        claims(&read(&out)).audiences(),
        vec!["https://fts.example.org"]
    );

    // The family revoked (the spent token replayed): the message says how to go back
    // to the exchange; the credential stays as it was.
    let (status, _) = iss.refresh_status("robot-basic", "robot-basic-secret", &rt);
    assert_eq!(status, 400);
    let before = read(&cred);
    let r = env.get(&out, &cred).args(["-m", "100000"]).run();
    assert_one_line_error(&r, 77);
    assert!(
        r.stderr.contains("delete \"refresh_token\""),
        "{}",
        r.stderr
    );
    assert_eq!(read(&cred), before);
}

#[test]
fn exchange_from_the_command_line_with_an_env_subject() {
    let iss = Issuer::start();
    let env = Env::new();
    let (_, subject) = iss.mint("robot-post", "openid storage.read:/ compute.create", None);
    let secret = env.write_private("secret", "robot-post-secret");
    let out = env.path("bt");
    let r = env
        .get_client(&iss, "robot-post", &out)
        .arg("-vv")
        .args(["--client-auth", "post", "--subject-token-env", "MY_SUBJECT"])
        .args([
            "--scope",
            "compute.create",
            "--audience",
            "condor.example.org:9618",
        ])
        .args([
            "--requested-token-type",
            "urn:ietf:params:oauth:token-type:access_token",
        ])
        .arg("--client-secret-file")
        .arg(&secret)
        .env("MY_SUBJECT", &subject)
        .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let tok = read(&out);
    assert_eq!(claims(&tok).audiences(), vec!["condor.example.org:9618"]);
    assert!(has_scope(&tok, "compute.create"));
    assert!(!has_scope(&tok, "storage.read:/"));
    assert_eq!(iss.grants("token_exchange"), 1);
    assert_no_secrets(&r, &[&subject, &tok, "robot-post-secret"]);
}

/// An issuer, robot-basic's client secret in `secret`, and an expired token in `bt`:
/// (issuer, env, secret file, token file, old token).
fn client_with_an_old_token() -> (Issuer, Env, PathBuf, PathBuf, String) {
    let iss = Issuer::start();
    let env = Env::new();
    let secret = env.write_private("secret", "robot-basic-secret");
    let out = env.path("bt");
    let old = iss.mint_expired();
    fs::write(&out, format!("{old}\n")).unwrap();
    (iss, env, secret, out, old)
}

#[test]
fn exchange_failures_are_one_line_and_keep_the_old_token() {
    let (iss, env, secret, out, old) = client_with_an_old_token();
    let get = |extra: &[&str], envs: &[(&str, &str)]| {
        let mut c = env.get_client(&iss, "robot-basic", &out);
        c.arg("-vv")
            .arg("--client-secret-file")
            .arg(&secret)
            .args(extra)
            .envs(envs.iter().copied());
        c.run()
    };
    // An expired subject token: the issuer refuses it (a person must act).
    let expired = iss.sign(
        "provider",
        json!({"sub": "robot-user", "scope": "storage.read:/", "exp": 1_000_000}),
    );
    let r = get(&["--subject-token-env", "S"], &[("S", &expired)]);
    assert_one_line_error(&r, 77);
    assert!(r.stderr.contains("subject token"), "{}", r.stderr);
    assert_no_secrets(&r, &[&expired]);
    // Unset variable, missing file, unsafe file: configuration or permissions.
    let r = get(&["--subject-token-env", "NOPE"], &[]);
    assert_one_line_error(&r, 78);
    assert!(r.stderr.contains("$NOPE"), "{}", r.stderr);
    let r = get(&["--subject-token-file", "missing.jwt"], &[]);
    assert_one_line_error(&r, 78);
    let loose = env.write_private("loose.jwt", &expired);
    fs::set_permissions(&loose, fs::Permissions::from_mode(0o666)).unwrap();
    let r = get(&["--subject-token-file", "loose.jwt"], &[]);
    assert_one_line_error(&r, 77);
    // Both sources at once is a usage error.
    let r = get(
        &["--subject-token-file", "a", "--subject-token-env", "B"],
        &[],
    );
    assert_one_line_error(&r, 64);
    assert_eq!(read(&out), format!("{old}\n"), "old token intact");
}

/// Another user's subject token or private key (root can plant one): refused,
/// whatever its mode, before any request; the old token stays.
#[test]
#[ignore = "needs root"]
fn another_users_subject_token_or_private_key_is_refused() {
    require_root();
    let (iss, env, secret, out, old) = client_with_an_old_token();
    let subject = iss.mint("robot-basic", "openid storage.read:/", None).1;
    let foreign = env.write_private("foreign.jwt", &subject);
    std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
    iss.reset();
    let r = env
        .get_client(&iss, "robot-basic", &out)
        .arg("--client-secret-file")
        .arg(&secret)
        .args(["--subject-token-file", "foreign.jwt"])
        .run();
    assert_one_line_error(&r, 77);
    assert!(r.stderr.contains("owned by"), "{}", r.stderr);

    let key = env.key_copy("client-ec.key.pem");
    std::os::unix::fs::chown(&key, Some(65534), Some(65534)).unwrap();
    let r = env
        .get_client(&iss, "robot-pkjwt-ec", &out)
        .arg("--private-key-file")
        .arg(&key)
        .run();
    assert_one_line_error(&r, 77);
    assert!(r.stderr.contains("private key"), "{}", r.stderr);
    assert_eq!(iss.requests("token"), 0);
    assert_eq!(read(&out), format!("{old}\n"), "old token intact");
}

#[test]
fn private_key_jwt_with_rsa_and_ec_keys() {
    let iss = Issuer::start();
    let env = Env::new();
    for (client, key) in [
        ("robot-pkjwt-rsa", "client-rsa.key.pem"),
        ("robot-pkjwt-ec", "client-ec.key.pem"),
    ] {
        let key = env.key_copy(key);
        let cred = env.write_private(
            "cred.json",
            &json!({"version": 1, "issuer": iss.url, "client_id": client,
                    "client_auth": "private_key_jwt", "private_key_file": key,
                    "kid": client, "scope": "storage.read:/ compute.read"})
            .to_string(),
        );
        let out = env.path(&format!("bt-{client}"));
        let r = env.get(&out, &cred).arg("-vv").run();
        assert_eq!(r.code, 0, "{client}: {}", r.stderr);
        let tok = read(&out);
        assert_eq!(claims(&tok).str_claim("client_id"), Some(client));
        assert!(has_scope(&tok, "compute.read"));
        assert!(r.stderr.contains("private_key_jwt"), "{}", r.stderr);
        assert_no_secrets(&r, &[&tok]);

        // The same from the command line; a fresh jti each time (replays are refused).
        for _ in 0..2 {
            let r = env
                .get_client(&iss, client, &out)
                .args(["-m", "100000"])
                .arg("--private-key-file")
                .arg(&key)
                .run();
            assert_eq!(r.code, 0, "{client}: {}", r.stderr);
        }
    }
    assert_eq!(iss.grants("client_credentials"), 6);

    // The wrong key for the client: rejected, one line, exit 77.
    let rsa = env.key_copy("client-rsa.key.pem");
    let r = env
        .get_client(&iss, "robot-pkjwt-ec", env.path("bt-wrong"))
        .arg("--private-key-file")
        .arg(&rsa)
        .run();
    assert_one_line_error(&r, 77);
    // A key others can read is refused before any request, like the credential.
    fs::set_permissions(&rsa, fs::Permissions::from_mode(0o644)).unwrap();
    iss.reset();
    let r = env
        .get_client(&iss, "robot-pkjwt-rsa", env.path("bt-wrong"))
        .arg("--private-key-file")
        .arg(&rsa)
        .run();
    assert_one_line_error(&r, 77);
    assert!(r.stderr.contains("private key"), "{}", r.stderr);
    assert_eq!(iss.requests("token"), 0);
    // Not a key at all.
    let junk = env.write_private(
        "junk.pem",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let r = env
        .get_client(&iss, "robot-pkjwt-rsa", env.path("bt-wrong"))
        .arg("--private-key-file")
        .arg(&junk)
        .run();
    assert_one_line_error(&r, 65);
}

/// GitHub Actions' OIDC token endpoint has no installable server, so this is a stub
/// that follows GitHub's documented protocol exactly: `GET
/// $ACTIONS_ID_TOKEN_REQUEST_URL&audience=<aud>` with `Authorization: bearer
/// $ACTIONS_ID_TOKEN_REQUEST_TOKEN` answers 200 `{"value": "<jwt>"}`; a missing or wrong
/// bearer token answers 401. The JWT itself is signed by the test issuer's CI key.
struct GitHubStub {
    url: String,
    audiences: Arc<Mutex<Vec<Option<String>>>>,
}

const RUNTIME_TOKEN: &str = "ghs-runtime-request-token-1234";

impl GitHubStub {
    fn start(iss: &Issuer) -> GitHubStub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let audiences = Arc::new(Mutex::new(Vec::new()));
        let seen = audiences.clone();
        let sign_url = format!("{}/__test/sign", iss.url);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut auth = None;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("authorization") {
                            auth = Some(v.trim().to_string());
                        }
                    }
                }
                let target = request_line.split(' ').nth(1).unwrap_or("").to_string();
                let url = url::Url::parse(&format!("http://stub{target}")).unwrap();
                let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
                let aud = q
                    .iter()
                    .find(|(k, _)| k == "audience")
                    .map(|(_, v)| v.clone());
                let ok_auth = auth.as_deref().is_some_and(|a| {
                    a.len() > 7
                        && a[..7].eq_ignore_ascii_case("bearer ")
                        && &a[7..] == RUNTIME_TOKEN
                });
                let ok_path = request_line.starts_with("GET ")
                    && url.path().ends_with("/idtoken")
                    && q.iter().any(|(k, v)| k == "api-version" && v == "2.0");
                let (status, body) = if !ok_auth {
                    ("401 Unauthorized", String::new())
                } else if !ok_path {
                    ("404 Not Found", String::new())
                } else {
                    seen.lock().unwrap().push(aud.clone());
                    let claims = json!({"sub": CI_SUB, "aud": aud.clone().unwrap_or("https://github.com/octo-org".into()),
                                        "repository": "octo-org/octo-repo", "ref": "refs/heads/main"});
                    let text = ureq::post(&sign_url)
                        .header("Content-Type", "application/json")
                        .send(json!({"key": "ci", "claims": claims}).to_string())
                        .unwrap()
                        .body_mut()
                        .read_to_string()
                        .unwrap();
                    let jwt: Value = serde_json::from_str(&text).unwrap();
                    ("200 OK", json!({"value": jwt["jwt"]}).to_string())
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        GitHubStub {
            url: format!(
                "http://127.0.0.1:{port}/00000000-0000-0000-0000-000000000000/_apis/distributedtask/hubs/Actions/plans/p1/jobs/j1/idtoken?api-version=2.0"
            ),
            audiences,
        }
    }
}

fn ci_cmd(env: &Env, iss: &Issuer, ci: &str) -> Command {
    let secret = env.write_private("secret", "robot-basic-secret");
    let mut c = env.get_client(iss, "robot-basic", env.path("bt"));
    c.args(["-vv", "--ci", ci])
        .args([
            "--scope",
            "storage.read:/ storage.create:/ci compute.create",
        ])
        .args(["--audience", "https://storage.example.org"])
        .arg("--client-secret-file")
        .arg(secret);
    c
}

#[test]
fn ci_github_exchanges_the_job_identity_token() {
    let iss = Issuer::start();
    let stub = GitHubStub::start(&iss);
    let env = Env::new();
    for (ci, aud) in [("github", None), ("auto", Some("robot-token-test"))] {
        let mut c = ci_cmd(&env, &iss, ci);
        c.env("GITHUB_ACTIONS", "true")
            .env("ACTIONS_ID_TOKEN_REQUEST_URL", &stub.url)
            .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", RUNTIME_TOKEN);
        if let Some(a) = aud {
            c.args(["--ci-audience", a]);
        }
        let _ = fs::remove_file(env.path("bt"));
        let r = run(&mut c);
        assert_eq!(r.code, 0, "{ci}: {}", r.stderr);
        let tok = read(&env.path("bt"));
        let jwt = claims(&tok);
        assert_eq!(jwt.str_claim("sub"), Some(CI_SUB));
        assert_eq!(jwt.audiences(), vec!["https://storage.example.org"]);
        for s in ["storage.read:/", "storage.create:/ci", "compute.create"] {
            assert!(has_scope(&tok, s), "{s}");
        }
        assert_no_secrets(&r, &[&tok, RUNTIME_TOKEN, "robot-basic-secret"]);
    }
    // The identity token was asked for the issuer (default), then for --ci-audience.
    assert_eq!(
        *stub.audiences.lock().unwrap(),
        vec![Some(iss.url.clone()), Some("robot-token-test".to_string())]
    );
    assert_eq!(iss.grants("token_exchange"), 2);

    // A refused runtime token, and a job without id-token permission.
    fs::remove_file(env.path("bt")).unwrap();
    let mut c = ci_cmd(&env, &iss, "github");
    c.env("ACTIONS_ID_TOKEN_REQUEST_URL", &stub.url)
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "wrong");
    let r = run(&mut c);
    assert_one_line_error(&r, 77);
    assert!(r.stderr.contains("id-token: write"), "{}", r.stderr);
    let r = run(&mut ci_cmd(&env, &iss, "github"));
    assert_one_line_error(&r, 78);
    assert!(
        r.stderr.contains("ACTIONS_ID_TOKEN_REQUEST_URL"),
        "{}",
        r.stderr
    );
    // auto outside any CI.
    let r = run(&mut ci_cmd(&env, &iss, "auto"));
    assert_one_line_error(&r, 78);
}

#[test]
fn ci_gitlab_exchanges_the_id_tokens_variable() {
    let iss = Issuer::start();
    let env = Env::new();
    let id_token = ci_token(&iss, &iss.url);
    for ci in ["gitlab", "auto"] {
        let mut c = ci_cmd(&env, &iss, ci);
        c.args(["--subject-token-env", "ROBOT_ID_TOKEN"])
            .env("GITLAB_CI", "true")
            .env("ROBOT_ID_TOKEN", &id_token);
        let _ = fs::remove_file(env.path("bt"));
        let r = run(&mut c);
        assert_eq!(r.code, 0, "{ci}: {}", r.stderr);
        let tok = read(&env.path("bt"));
        assert_eq!(claims(&tok).str_claim("sub"), Some(CI_SUB));
        assert!(has_scope(&tok, "storage.create:/ci"));
        assert_no_secrets(&r, &[&tok, &id_token]);
    }
    // GitLab needs the variable's name.
    let mut c = ci_cmd(&env, &iss, "gitlab");
    c.env("GITLAB_CI", "true");
    let r = run(&mut c);
    assert_one_line_error(&r, 64);
    assert!(r.stderr.contains("--subject-token-env"), "{}", r.stderr);
}

#[test]
fn require_scope_turns_a_missing_scope_into_exit_77() {
    let iss = Issuer::start();
    let env = Env::new();
    // client_credentials: the issuer silently drops `forbidden*` scopes.
    let cred = env.credential(&iss, "robot-basic", None);
    let out = env.path("bt");
    let old = iss.mint_expired();
    fs::write(&out, format!("{old}\n")).unwrap();
    // Granted: fine.
    let r = env
        .get(&out, &cred)
        .args(["--require-scope", "storage.read:/"])
        .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let good = read(&out);
    // Asked for but silently dropped by the issuer: exit 77, the token file untouched.
    fs::write(&out, format!("{old}\n")).unwrap();
    let r = env
        .get(&out, &cred)
        .args(["--scope", "storage.read:/ forbidden.scope"])
        .args([
            "--require-scope",
            "storage.read:/",
            "--require-scope",
            "forbidden.scope",
        ])
        .run();
    assert_one_line_error(&r, 77);
    assert!(r.stderr.contains("forbidden.scope"), "{}", r.stderr);
    assert_eq!(read(&out), format!("{old}\n"));
    assert_ne!(good, read(&out));
    // The same check for a token exchange.
    let (_, subject) = iss.mint("robot-basic", "openid storage.read:/", None);
    let secret = env.write_private("secret", "robot-basic-secret");
    let r = env
        .get_client(&iss, "robot-basic", &out)
        .args([
            "--subject-token-env",
            "S",
            "--require-scope",
            "storage.modify:/",
        ])
        .arg("--client-secret-file")
        .arg(&secret)
        .env("S", &subject)
        .run();
    assert_one_line_error(&r, 77);
    assert_eq!(read(&out), format!("{old}\n"));
}

#[test]
fn the_example_credentials_parse() {
    for name in ["credential.json", "credential-exchange.json"] {
        let p = manifest_dir().join("examples").join(name);
        let c = robot_token::source::credential::Credential::parse(read(&p).as_bytes(), &p)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!c.client_id.is_empty(), "{name}");
    }
}
