//! Absurd token claims and absurd durations (issue #13, item 4 and the time arithmetic
//! of item 2): a JWT whose `exp` is missing, not a number, negative or after the year
//! 9999 is unusable for every command alike; a token with such an `exp` from the
//! issuer or an exec command is never installed; a duration past 10 years is a usage
//! error; and durations an issuer sends (Retry-After, device-flow `expires_in` and
//! `interval`) never abort the run. Against the real oidc-provider on 127.0.0.1.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use serde_json::json;

/// `exp` values (as JSON text, `None` for no `exp`) that no real token carries, and
/// the words that name the problem.
const ABSURD: &[(Option<&str>, &str)] = &[
    (Some("-9223372036854775808"), "negative"),
    (Some("-1"), "negative"),
    (Some("9223372036854775807"), "year 9999 or later"),
    (Some("18446744073709551615"), "year 9999 or later"),
    (Some("253370764800"), "year 9999 or later"),
    (Some("1e300"), "year 9999 or later"),
    (Some("\"soon\""), "not a number"),
    (Some("\"4102444800\""), "not a number"),
    (Some("null"), "no exp"),
    (None, "no exp"),
];

/// The claims of a token, as JSON text, with `exp` spelled exactly as given.
fn payload(exp: Option<&str>) -> String {
    match exp {
        Some(e) => format!(r#"{{"sub":"robot-user","scope":"storage.read:/","exp":{e}}}"#),
        None => r#"{"sub":"robot-user","scope":"storage.read:/"}"#.to_string(),
    }
}

/// A well-formed (unsigned) JWT with these claims: what a token file may hold.
fn jwt(claims: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.{}",
        b64(r#"{"alg":"RS256","typ":"JWT"}"#),
        b64(claims),
        b64("signature")
    )
}

/// An issuer and a refresh-token credential; no token file yet.
fn setup() -> Robot {
    Robot::start().with_opts(&["--timeout", "5s", "--deadline", "30s"])
}

#[test]
fn get_renews_a_token_file_whose_exp_is_absurd() {
    let s = setup();
    for (exp, _) in ABSURD {
        let bad = jwt(&payload(*exp)) + "\n";
        fs::write(&s.out, &bad).unwrap();
        s.iss.reset();
        let r = s.get(&["-v"]);
        assert_eq!(r.code, 0, "exp {exp:?}: {}", r.stderr);
        assert!(r.stderr.contains("unusable"), "exp {exp:?}: {}", r.stderr);
        assert_eq!(s.iss.requests("token"), 1, "exp {exp:?}: renewed");
        let now = read(&s.out);
        assert_ne!(now, bad, "exp {exp:?}: replaced");
        assert!(lifetime(&now) > 3000, "exp {exp:?}");
    }
}

#[test]
fn check_status_and_inspect_call_an_absurd_exp_unusable() {
    let env = Env::new();
    let file = env.path("bt");
    for (exp, why) in ABSURD {
        fs::write(&file, jwt(&payload(*exp)) + "\n").unwrap();

        let r = run(env.cmd().arg("check").arg(&file));
        assert_eq!(r.code, 2, "check, exp {exp:?}: {}", r.stdout);
        assert!(
            r.stdout.starts_with("ROBOT-TOKEN CRITICAL - ") && r.stdout.contains("unusable"),
            "check, exp {exp:?}: {}",
            r.stdout
        );
        assert!(r.stdout.contains(why), "check, exp {exp:?}: {}", r.stdout);
        assert!(r.stdout.contains("| remaining=U;"), "{}", r.stdout);

        let r = run(env.cmd().arg("status").arg(&file));
        assert_eq!(r.code, 1, "status, exp {exp:?}: {}", r.stdout);
        assert!(
            r.stdout.contains("unusable"),
            "status, exp {exp:?}: {}",
            r.stdout
        );
        assert!(!r.stdout.contains("never expires"), "{}", r.stdout);
        let r = run(env.cmd().args(["status", "--json"]).arg(&file));
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v[0]["state"], "unusable", "status --json, exp {exp:?}: {v}");

        // inspect still shows what the token says, then names the problem: exit 65.
        let r = run(env.cmd().arg("inspect").arg(&file));
        assert_eq!(r.code, 65, "inspect, exp {exp:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("robot-user"), "{}", r.stdout);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(
            r.stderr.contains("unusable") && r.stderr.contains(why),
            "inspect, exp {exp:?}: {}",
            r.stderr
        );
        assert!(!r.stdout.contains("never expires"), "{}", r.stdout);
        let r = run(env.cmd().args(["inspect", "--json"]).arg(&file));
        assert_eq!(r.code, 65, "inspect --json, exp {exp:?}");
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert!(v["unusable"].as_str().unwrap().contains(why), "{v}");
    }
}

#[test]
fn a_good_exp_is_usable_everywhere() {
    // The boundary: the last second before the year 9999 is still a time; a
    // fractional NumericDate (RFC 7519 2) is a time too.
    let env = Env::new();
    let file = env.path("bt");
    for exp in ["253370764799", "253370764799.5"] {
        fs::write(&file, jwt(&payload(Some(exp))) + "\n").unwrap();
        let r = run(env.cmd().arg("check").arg(&file));
        assert_eq!(r.code, 0, "{}", r.stdout);
        let r = run(env.cmd().arg("status").arg(&file));
        assert_eq!(r.code, 0, "{}", r.stdout);
        assert!(r.stdout.contains("9998-12-31 23:59:59 UTC"), "{}", r.stdout);
        let r = run(env.cmd().arg("inspect").arg(&file));
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    }
}

#[test]
fn an_issued_token_with_an_absurd_exp_is_not_installed() {
    let s = setup();
    let old = s.iss.mint_expired() + "\n";
    let old_cred = read(&s.cred);
    // A negative `exp` near now would be "expired", not absurd: use the ones that are
    // far from any real time, and the ones that are not times at all.
    for (exp, why) in ABSURD {
        fs::write(&s.out, &old).unwrap();
        s.iss.reset();
        s.iss
            .fault(json!({"kind": "claims_jwt", "payload": payload(*exp)}));
        let r = s.get(&[]);
        assert_eq!(r.code, 65, "exp {exp:?}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(
            r.stderr.contains("unusable") && r.stderr.contains(why),
            "exp {exp:?}: {}",
            r.stderr
        );
        assert!(r.stderr.contains("the old token is kept"), "{}", r.stderr);
        assert_eq!(read(&s.out), old, "exp {exp:?}: old token kept");
        assert_eq!(read(&s.cred), old_cred, "exp {exp:?}: credential kept");
    }
}

#[test]
fn an_exec_command_token_with_an_absurd_exp_is_not_installed() {
    let iss = Issuer::start();
    let env = Env::new();
    let out = env.path("bt");
    let old = iss.mint_expired() + "\n";
    for (exp, why) in ABSURD {
        fs::write(&out, &old).unwrap();
        let tok = jwt(&payload(*exp));
        let script = env.script("site-token", &format!("echo '{tok}'"));
        let cred = env.write_private(
            "cred.json",
            &json!({"version": 1, "grant": "exec", "command": [script]}).to_string(),
        );
        let r = env.get(&out, &cred).run();
        assert_eq!(r.code, 65, "exp {exp:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("unusable") && r.stderr.contains(why),
            "exp {exp:?}: {}",
            r.stderr
        );
        assert_eq!(read(&out), old, "exp {exp:?}: old token kept");
    }
}

#[test]
fn durations_past_ten_years_are_usage_errors() {
    let s = setup();
    let old = s.iss.mint_expired() + "\n";
    let huge = "18446744073709551615";
    let cases: &[&[&str]] = &[
        // i64::MAX + 1: once wrapped to a negative --minsecs, an expired token was "fresh".
        &["-m", "9223372036854775808"],
        &["-m", huge],
        &["-m", "3654d"],
        &["--deadline", huge],
        &["--hook-timeout", huge, "--deploy-hook", "true"],
        &["--timeout", huge],
        &["--random-delay", huge],
        &[
            "--vault-token-ttl",
            huge,
            "--vault-server",
            "https://vault.example.org",
        ],
    ];
    let get = |extra: &[&str]| s.env.get(&s.out, &s.cred).args(extra).run();
    for extra in cases {
        fs::write(&s.out, &old).unwrap();
        s.iss.reset();
        let r = get(extra);
        assert_eq!(r.code, 64, "{extra:?}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.contains("10 years"), "{extra:?}: {}", r.stderr);
        assert_eq!(s.iss.requests("token"), 0, "{extra:?}: nothing sent");
        assert_eq!(read(&s.out), old);
    }
    // Ten years is still accepted (a --minsecs that long renews every time).
    fs::write(&s.out, &old).unwrap();
    let r = get(&["-m", "3652d"]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    let tok = env_token(&s.env, &s.iss);
    let r = run(s
        .env
        .cmd()
        .args(["inspect", "--verify", "--timeout", huge])
        .arg(&tok));
    assert_eq!(r.code, 64, "inspect --timeout: {}", r.stderr);
    assert!(r.stderr.contains("10 years"), "{}", r.stderr);
    for flag in ["--warning", "--critical"] {
        let r = run(s.env.cmd().args(["check", flag, huge]).arg(&tok));
        assert_eq!(r.code, 3, "check {flag}: {}", r.stdout);
        assert!(r.stdout.contains("10 years"), "{}", r.stdout);
    }
    let r = run(s
        .env
        .cmd()
        .args([
            "init",
            "--no-tty",
            "--issuer",
            &s.iss.url,
            "--client-id",
            "robot-public",
            "--timeout",
            huge,
            "-c",
        ])
        .arg(s.env.path("new-cred.json")));
    assert_eq!(r.code, 64, "init --timeout: {}", r.stderr);
    assert!(r.stderr.contains("10 years"), "{}", r.stderr);
}

/// A fresh token in its own file.
fn env_token(env: &Env, iss: &Issuer) -> PathBuf {
    let (_, at) = iss.mint("robot-basic", "openid storage.read:/", None);
    env.write_private("fresh.jwt", &format!("{at}\n"))
}

#[test]
fn a_retry_after_of_2_64_seconds_does_not_abort_init() {
    // The first device-code poll is answered 429 with Retry-After: 2^64-1.
    let iss = Issuer::start();
    let env = Env::new();
    iss.device(json!({"interval": 1}));
    iss.fault(json!({"kind": "429", "retry_after": "18446744073709551615"}));
    let t = Instant::now();
    let r = env.init(&iss, "robot-public").run();
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("asked to wait"), "{}", r.stderr);
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert!(!env.path("cred.json").exists() && !env.path("bt").exists());
}

/// `init --no-tty` with the issuer's device-flow answer spelled by `answer`; returns
/// the instructions it printed, after checking that it is still polling 1.5 s later.
fn init_keeps_polling(answer: serde_json::Value) -> String {
    let iss = Issuer::start();
    let env = Env::new();
    iss.device(json!({"answer": answer}));
    let mut child = env
        .init(&iss, "robot-public")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("Waiting for approval") {
            break;
        }
    }
    wait_ms(1500);
    let still = child.try_wait().unwrap();
    let _ = child.kill();
    let status = child.wait().unwrap();
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
    assert!(
        still.is_none(),
        "init ended ({status}) instead of polling: {seen}{err}"
    );
    seen
}

#[test]
fn device_flow_durations_of_2_64_seconds_do_not_abort_init() {
    let huge = "18446744073709551615";
    let seen = init_keeps_polling(json!({"expires_in": huge, "interval": huge}));
    // The code's lifetime is capped at a day: what robot-token waits for at most.
    assert!(seen.contains("the code expires in 1d 0h 0m 0s"), "{seen}");
    let seen = init_keeps_polling(json!({"interval": huge}));
    assert!(seen.contains("the code expires in 10m 0s"), "{seen}");
    let seen = init_keeps_polling(json!({"expires_in": "1e300", "interval": "1e300"}));
    assert!(seen.contains("the code expires in 1d 0h 0m 0s"), "{seen}");
}

#[test]
fn a_vault_token_with_an_absurd_exp_is_not_installed() {
    // The Vault look-alike serves whatever its token source holds: here a token that
    // claims to live until the year 9999.
    let v = common::vault::VaultRobot::serving(&jwt(&payload(Some("253370764800"))), &[]);
    let old = common::vault::jwt(-60, "expired") + "\n";
    fs::write(&v.out, &old).unwrap();
    let r = v
        .line("get", &v.kdc.robot_keytab())
        .args(["--timeout", "10s", "--deadline", "30s"])
        .run();
    assert_eq!(r.code, 65, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("unusable") && r.stderr.contains("year 9999"),
        "{}",
        r.stderr
    );
    assert_eq!(read(&v.out), old, "old token kept");
}
