//! Issuer text is untrusted input (issue #13, item 5). The real oidc-provider, switched
//! to echo what it was sent (`echo` fault, `decorate` device knob of tests/peer), puts
//! the refresh token, the client secret, the Authorization header, the client
//! assertion, the subject token and the device code into its error_description and
//! its device-flow answer, wrapped in terminal escapes, bidi overrides, NULs, newlines
//! and `|`. None of those secrets may appear in stderr (at -vvv), in any file the run
//! writes, or in `check`/`status` output; no control or bidi character reaches them;
//! `check`'s perfdata stays parseable.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use common::*;
use serde_json::json;

/// Bidi controls and other invisible format characters (Unicode Cf) that reorder or
/// hide text on a terminal.
fn is_bidi_or_invisible(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// No secret, no control character (but newlines between lines), no bidi control.
fn assert_clean(what: &str, text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(
            !text.contains(s.as_str()),
            "{what}: a secret leaked: {text}"
        );
        // An issuer may cut what it echoes: no long piece of a secret either.
        let head: String = s.chars().take(16).collect();
        assert!(
            !text.contains(&head),
            "{what}: the start of a secret leaked: {text}"
        );
    }
    for c in text.chars() {
        assert!(
            c == '\n' || !c.is_control(),
            "{what}: control character {c:?} in {text:?}"
        );
        assert!(
            !is_bidi_or_invisible(c),
            "{what}: bidi/invisible character {c:?} in {text:?}"
        );
    }
}

fn basic(id: &str, secret: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
}

/// Every file the runs wrote, except the ones that hold secrets by design.
fn written_files(dir: &Path, keep_out: &[&Path]) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !keep_out.iter().any(|k| *k == p) {
                out.push((
                    p.clone(),
                    String::from_utf8_lossy(&fs::read(&p).unwrap()).into(),
                ));
            }
        }
    }
    out
}

/// A profile `p` for `cred`, so that `status`/`check` show its last run.
fn profile(env: &Env, cred: &Path) -> PathBuf {
    env.write_private(
        "config.toml",
        &format!(
            "[profile.p]\ncredential = {:?}\noutfile = {:?}\n",
            cred,
            env.path("bt")
        ),
    )
}

/// `get --profile p -vvv` against the echoing issuer, then `check` and `status`: the
/// error is the documented one, it shows the issuer's words cleaned, and no output or
/// file carries a secret or a control character.
fn run_echo(env: &Env, cred: &Path, keep_out: &[&Path], secrets: &[String], code: i32) -> String {
    let config = profile(env, cred);
    let old_cred = read(cred);
    let r = env
        .profile("get", "p", &config)
        .args(["-vvv", "--deadline", "20s"])
        .run();
    assert_eq!(r.code, code, "{}", r.stderr);
    assert_clean("stderr at -vvv", &r.stderr, secrets);
    let error = r
        .stderr
        .lines()
        .find(|l| l.starts_with("robot-token: error: "))
        .unwrap_or_else(|| panic!("no error line: {}", r.stderr));
    assert!(error.contains("you sent"), "the issuer's words: {error}");
    assert!(error.contains("[redacted]"), "{error}");
    assert!(error.chars().count() < 700, "capped: {error}");
    assert_eq!(read(cred), old_cred, "credential unchanged");

    let mut keep: Vec<&Path> = keep_out.to_vec();
    keep.push(cred);
    keep.push(&config);
    let files = written_files(env.dir.path(), &keep);
    assert!(
        files.iter().any(|(_, t)| t.contains("you sent")),
        "the state file records the failure: {:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (p, text) in &files {
        assert_clean(&p.display().to_string(), text, secrets);
    }

    let r = run(env.cmd().args(["check", "--config"]).arg(&config));
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stdout.contains("you sent"), "{}", r.stdout);
    assert_clean("check", &r.stdout, secrets);
    assert_eq!(
        r.stdout.matches('|').count(),
        1,
        "only the perfdata separator: {}",
        r.stdout
    );
    assert!(
        r.stdout.lines().next().unwrap().ends_with(";0"),
        "{}",
        r.stdout
    );

    for args in [&["status"][..], &["status", "--json"]] {
        let r = run(env.cmd().args(args).arg("--config").arg(&config));
        assert_clean("status", &r.stdout, secrets);
        assert!(r.stdout.contains("you sent"), "{}", r.stdout);
    }
    error.to_string()
}

#[test]
fn an_echoed_refresh_token_and_basic_header_are_redacted() {
    let iss = Issuer::start();
    let env = Env::new();
    let (cred, rt) = env.minted_credential(&iss, "robot-basic");
    iss.fault(json!({"kind": "echo"}));
    let secrets = vec![
        rt.clone(),
        "robot-basic-secret".to_string(),
        basic("robot-basic", "robot-basic-secret"),
    ];
    let error = run_echo(&env, &cred, &[], &secrets, 77);
    assert!(error.contains("refresh token rejected"), "{error}");
    assert!(error.contains("refresh_token=[redacted]"), "{error}");

    // A hostile `error` code too, on a 5xx: cleaned the same way.
    iss.fault(json!({"kind": "echo", "status": 503,
        "error": "temporarily_unavailable\u{1b}[2J\u{202e}|x=1;2;3\r\nFAKE LINE"}));
    let error = run_echo(&env, &cred, &[], &secrets, 75);
    assert!(error.contains("temporarily_unavailable"), "{error}");
}

#[test]
fn an_echoed_client_secret_in_the_body_is_redacted() {
    let iss = Issuer::start();
    let env = Env::new();
    let (cred, rt) = env.minted_credential(&iss, "robot-post");
    iss.fault(json!({"kind": "echo", "status": 401, "error": "invalid_client"}));
    let secrets = vec![rt, "robot-post-secret".to_string()];
    let error = run_echo(&env, &cred, &[], &secrets, 77);
    assert!(error.contains("client_secret=[redacted]"), "{error}");
}

#[test]
fn an_echoed_client_assertion_is_redacted() {
    let iss = Issuer::start();
    let env = Env::new();
    let key = env.key_copy("client-rsa.key.pem");
    let cred = env.write_private(
        "cred.json",
        &json!({"version": 1, "issuer": iss.url, "client_id": "robot-pkjwt-rsa",
                "client_auth": "private_key_jwt", "private_key_file": key,
                "kid": "robot-pkjwt-rsa", "scope": "storage.read:/"})
        .to_string(),
    );
    iss.fault(json!({"kind": "echo", "status": 401, "error": "invalid_client"}));
    // The assertion is a JWT made inside the run: no JWT may show at all.
    let secrets = vec!["eyJ".to_string()];
    let error = run_echo(&env, &cred, &[&key], &secrets, 77);
    assert!(error.contains("client_assertion=[redacted]"), "{error}");
}

#[test]
fn an_echoed_subject_token_is_redacted() {
    let iss = Issuer::start();
    let env = Env::new();
    let (_, subject) = iss.mint("robot-basic", "openid storage.read:/", None);
    let subject_file = env.write_private("subject.jwt", &format!("{subject}\n"));
    let cred = env.write_private(
        "cred.json",
        &json!({"version": 1, "issuer": iss.url, "client_id": "robot-basic",
                "client_secret": "robot-basic-secret", "grant": "token_exchange",
                "subject_token_file": "subject.jwt"})
        .to_string(),
    );
    iss.fault(json!({"kind": "echo"}));
    let secrets = vec![
        subject.clone(),
        "robot-basic-secret".to_string(),
        basic("robot-basic", "robot-basic-secret"),
        "eyJ".to_string(),
    ];
    let error = run_echo(&env, &cred, &[&subject_file], &secrets, 77);
    assert!(error.contains("subject token rejected"), "{error}");
    assert!(error.contains("subject_token=[redacted]"), "{error}");
}

fn init_cmd(env: &Env, iss: &Issuer) -> std::process::Command {
    let mut c = env.init(iss, "robot-basic");
    c.arg("-vvv");
    c
}

#[test]
fn init_cleans_the_user_code_the_uris_and_echoed_errors() {
    let secrets = vec![
        "robot-basic-secret".to_string(),
        basic("robot-basic", "robot-basic-secret"),
    ];
    // 1. A device authorization answer whose user code carries the echo: shown
    //    cleaned, redacted and capped.
    let iss = Issuer::start();
    let env = Env::new();
    let v = iss.post(
        "/__test/device",
        json!({"decorate": ["user_code"], "expires_in": 2}),
    );
    assert_eq!(v["ok"], true, "{v}");
    let r = run(&mut init_cmd(&env, &iss));
    assert_eq!(
        r.code, 75,
        "the code expires unapproved: {}{}",
        r.stdout, r.stderr
    );
    assert_clean("init stdout", &r.stdout, &secrets);
    assert_clean("init stderr", &r.stderr, &secrets);
    let code_line = r
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("Code: "))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(code_line.chars().count() < 120, "capped: {code_line}");
    assert!(!code_line.contains('|'), "{code_line}");
    assert!(!env.path("cred.json").exists() && !env.path("bt").exists());

    // 1b. Verification URIs that carry the echo and control characters: not a page
    //     to send a person to (65), and nothing leaks from the message.
    let iss = Issuer::start();
    let env = Env::new();
    iss.post("/__test/device", json!({"decorate": true}));
    let r = run(&mut init_cmd(&env, &iss));
    assert_eq!(r.code, 65, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("verification_uri"), "{}", r.stderr);
    assert_clean("init stdout", &r.stdout, &secrets);
    assert_clean("init stderr", &r.stderr, &secrets);
    assert!(!env.path("cred.json").exists() && !env.path("bt").exists());

    // 2. The device authorization request refused with an echo.
    let iss = Issuer::start();
    let env = Env::new();
    iss.fault(json!({"kind": "echo", "path": "device", "status": 401, "error": "invalid_client"}));
    let r = run(&mut init_cmd(&env, &iss));
    assert_eq!(r.code, 77, "{}", r.stderr);
    assert_clean("init stderr", &r.stderr, &secrets);
    assert!(r.stderr.contains("you sent"), "{}", r.stderr);

    // 3. The first device-code poll answered with an echo of the device code.
    let iss = Issuer::start();
    let env = Env::new();
    iss.post("/__test/device", json!({"interval": 1}));
    iss.fault(json!({"kind": "echo"}));
    let r = run(&mut init_cmd(&env, &iss));
    assert_eq!(r.code, 77, "{}", r.stderr);
    assert_clean("init stderr", &r.stderr, &secrets);
    assert!(r.stderr.contains("device_code=[redacted]"), "{}", r.stderr);
    assert!(!env.path("cred.json").exists() && !env.path("bt").exists());
}
