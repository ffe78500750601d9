//! Profiles, `get --all`, deploy hooks and `--random-delay`, against real oidc-provider
//! issuers on 127.0.0.1.

mod common;

use std::fs;
use std::path::PathBuf;

use common::*;
use serde_json::json;

/// A credential file of its own name for `client` at `issuer`.
fn cred(env: &Env, name: &str, iss: &Issuer, client: &str, rt: Option<&str>) -> PathBuf {
    let mut v = json!({
        "version": 1,
        "issuer": iss.url,
        "client_id": client,
        "client_secret": format!("{client}-secret"),
        "scope": SCOPE,
    });
    if let Some(rt) = rt {
        v["refresh_token"] = json!(rt);
    }
    env.write_private(name, &v.to_string())
}

/// [`cred`] for robot-basic with a live refresh token: (credential, refresh token).
fn minted(env: &Env, name: &str, iss: &Issuer) -> (PathBuf, String) {
    let rt = iss.refresh_token("robot-basic");
    (cred(env, name, iss, "robot-basic", Some(&rt)), rt)
}

fn config(env: &Env, text: &str) -> PathBuf {
    env.write_private("config.toml", text)
}

fn iss_of(token_file: &std::path::Path) -> String {
    let jwt = robot_token::token::decode(robot_token::token::trim(&read(token_file))).unwrap();
    jwt.str_claim("iss").unwrap().to_string()
}

#[test]
fn all_renews_profiles_of_two_issuers_then_is_silent_and_offline() {
    let a = Issuer::start();
    let b = Issuer::start();
    let env = Env::new();
    let (ca, _) = minted(&env, "a.json", &a);
    let cb = cred(&env, "b.json", &b, "robot-post", None);
    let c = config(
        &env,
        &format!(
            "[defaults]\nminsecs = \"10m\"\n\n[profile.alpha]\ncredential = {ca:?}\noutfile = \"alpha.token\"\n\n\
             [profile.beta]\ncredential = {cb:?}\noutfile = \"beta.token\"\nclient_auth = \"post\"\naudience = [\"https://storage.example.org\"]\n"
        ),
    );
    a.reset();
    b.reset();
    let r = env.profiles("get", &c).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "", "silent on success");
    assert_eq!(iss_of(&env.path("alpha.token")), a.url);
    assert_eq!(iss_of(&env.path("beta.token")), b.url);
    assert_eq!((a.requests("token"), b.requests("token")), (1, 1));
    let jwt = robot_token::token::decode(robot_token::token::trim(&read(&env.path("beta.token"))))
        .unwrap();
    assert_eq!(jwt.audiences(), vec!["https://storage.example.org"]);

    // Second run: everything fresh, no request, a log line per profile at -v.
    a.reset();
    b.reset();
    let r = env.profiles("get", &c).arg("-v").run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(a.requests("token") + b.requests("token"), 0);
    assert_eq!(a.requests("discovery") + b.requests("discovery"), 0);
    assert!(
        r.stderr.contains("profile alpha: ") && r.stderr.contains("profile beta: "),
        "log lines say which profile: {}",
        r.stderr
    );
    assert!(r.stderr.contains("nothing to do"), "{}", r.stderr);
}

#[test]
fn one_failing_profile_does_not_stop_the_others_and_the_worst_exit_wins() {
    let iss = Issuer::start();
    let env = Env::new();
    let (good, _) = minted(&env, "good.json", &iss);
    let revoked = cred(
        &env,
        "revoked.json",
        &iss,
        "robot-basic",
        Some("not-a-refresh-token"),
    );
    let secret = env.write_private("secret", "robot-basic-secret\n");
    let c = config(
        &env,
        &format!(
            "[defaults]\nminsecs = 60\n\n[profile.down]\ntoken_endpoint = \"http://127.0.0.1:1/token\"\nclient_id = \"x\"\n\
             client_secret_file = {secret:?}\noutfile = \"down.token\"\ndeadline = \"2s\"\n\n\
             [profile.good]\ncredential = {good:?}\noutfile = \"good.token\"\n\n\
             [profile.revoked]\ncredential = {revoked:?}\noutfile = \"revoked.token\"\n"
        ),
    );
    let r = env.profiles("get", &c).args(["--jobs", "2"]).run();
    assert_eq!(
        r.code, 77,
        "a person must act outranks a temporary failure: {}",
        r.stderr
    );
    assert!(lifetime(&read(&env.path("good.token"))) > 3000);
    assert!(!env.path("down.token").exists() && !env.path("revoked.token").exists());
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stderr);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("robot-token: error: profile down: ")),
        "{}",
        r.stderr
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("robot-token: error: profile revoked: ")),
        "{}",
        r.stderr
    );
    assert_eq!(
        lines[2],
        "robot-token: error: 2 of 3 profiles failed: down (75), revoked (77)"
    );
}

#[test]
fn two_profiles_on_one_token_file_is_a_config_error_before_any_request() {
    let iss = Issuer::start();
    let env = Env::new();
    let (c1, _) = minted(&env, "one.json", &iss);
    let c2 = cred(&env, "two.json", &iss, "robot-basic", None);
    let c = config(
        &env,
        &format!(
            "[profile.one]\ncredential = {c1:?}\noutfile = \"bt\"\n\n[profile.two]\ncredential = {c2:?}\noutfile = \"./bt\"\n"
        ),
    );
    iss.reset();
    let before = read(&c1);
    let r = env.profiles("get", &c).run();
    assert_exit(
        &r,
        78,
        "config.toml:5: profiles one (line 1) and two both write the token file",
    );
    assert_eq!(iss.requests("token") + iss.requests("discovery"), 0);
    assert!(!env.path("bt").exists());
    assert_eq!(read(&c1), before);
}

#[test]
fn config_errors_name_file_line_and_key() {
    let env = Env::new();
    for (text, want) in [
        (
            "[profile.a]\ncredential = \"c.json\"\noutfil = \"x\"\n",
            "config.toml:3: profile a: unknown key \"outfil\"",
        ),
        (
            "[profile.a]\ncredential = \"c.json\"\nminsecs = \"soon\"\n",
            "config.toml:3: profile a, key minsecs: --minsecs: \"soon\" is not a duration",
        ),
        (
            "[profile.a]\ncredential = \"c.json\"\njobs = 3\n",
            "config.toml:3: profile a: unknown key \"jobs\"",
        ),
        (
            "[profile.a]\ncredential = [\"c.json\", \"d.json\"]\n",
            "config.toml:2: profile a, key credential: ",
        ),
        (
            "[profile.a]\ncredential = \"c.json\"\n[profile.a]\n",
            "config.toml:3: invalid TOML",
        ),
    ] {
        let c = config(&env, text);
        let r = env.profiles("get", &c).run();
        assert_eq!(r.code, 78, "{text}: {}", r.stderr);
        let line = r.stderr.trim_end();
        assert!(
            line.starts_with(&format!(
                "robot-token: error: {}",
                want.replace("config.toml", &c.display().to_string())
            )),
            "{text}: {line}"
        );
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    }
    // A profile that is not there, and a config file others may write.
    let c = config(&env, "[profile.a]\ncredential = \"c.json\"\n");
    let r = env.profile("get", "b", &c).run();
    assert_eq!(r.code, 78);
    assert!(
        r.stderr.contains("no profile \"b\" (profiles: a)"),
        "{}",
        r.stderr
    );
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&c, fs::Permissions::from_mode(0o666)).unwrap();
    let r = env.profiles("get", &c).run();
    assert_exit(&r, 77, "writable by others");
}

#[test]
fn command_line_beats_profile_and_environment_does_not_leak_into_profiles() {
    let iss = Issuer::start();
    let env = Env::new();
    let (cr, _) = minted(&env, "c.json", &iss);
    let c = config(
        &env,
        &format!(
            "[profile.a]\ncredential = {cr:?}\noutfile = \"a.token\"\nminsecs = 60\n[profile.b]\ncredential = {cr:?}\noutfile = \"b.token\"\nminsecs = 60\n"
        ),
    );
    // One ROBOT_TOKEN_OUTFILE for every profile would be a collision: it is ignored.
    let r = env
        .profiles("get", &c)
        .env("ROBOT_TOKEN_OUTFILE", env.path("env.token"))
        .env("ROBOT_TOKEN_MINSECS", "999d")
        .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(env.path("a.token").exists() && env.path("b.token").exists());
    assert!(!env.path("env.token").exists());

    // Fresh for profile a's minsecs (60 s), not for the 2 h typed on the command line.
    iss.reset();
    let r = env.profile("get", "a", &c).run();
    assert_eq!((r.code, iss.requests("token")), (0, 0), "{}", r.stderr);
    let r = env.profile("get", "a", &c).args(["--minsecs", "2h"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.requests("token"), 1, "the command line's --minsecs won");
    // The config file also comes from ROBOT_TOKEN_CONFIG.
    let r = run(env
        .cmd()
        .args(["get", "--profile", "b"])
        .env("ROBOT_TOKEN_CONFIG", &c));
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn profiles_sharing_one_rotating_credential_take_turns() {
    let iss = Issuer::start();
    let env = Env::new();
    let (cr, _) = minted(&env, "shared.json", &iss);
    let mut text = String::new();
    for (i, aud) in [
        "https://a.example.org",
        "https://b.example.org",
        "https://c.example.org",
    ]
    .iter()
    .enumerate()
    {
        text.push_str(&format!(
            "[profile.p{i}]\ncredential = {cr:?}\noutfile = \"p{i}.token\"\naudience = {aud:?}\n"
        ));
    }
    let c = config(&env, &text);
    iss.reset();
    let r = env.profiles("get", &c).args(["--jobs", "3"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.requests("token"), 3);
    for (i, aud) in [
        "https://a.example.org",
        "https://b.example.org",
        "https://c.example.org",
    ]
    .iter()
    .enumerate()
    {
        let p = env.path(&format!("p{i}.token"));
        let jwt = robot_token::token::decode(robot_token::token::trim(&read(&p))).unwrap();
        assert_eq!(jwt.audiences(), vec![aud.to_string()]);
    }
    // The refresh token on disk is the live one: the rotations did not race.
    let v = read_json(&cr);
    let (status, body) = iss.refresh_status(
        "robot-basic",
        "robot-basic-secret",
        v["refresh_token"].as_str().unwrap(),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn deploy_hook_runs_after_a_renewal_with_its_environment_and_never_after_a_no_op() {
    let iss = Issuer::start();
    let env = Env::new();
    let (cr, rt) = minted(&env, "c.json", &iss);
    let hook = "printf '%s|%s|%s' \"$ROBOT_TOKEN_FILE\" \"$ROBOT_TOKEN_PROFILE\" \"$ROBOT_TOKEN_EXPIRES_AT\" > hook.out; env > hook.env; echo \"$@\" > hook.argv";
    // minsecs below the issuer's 3600 s lifetime, so that the second run is a no-op
    // even when a second ticks between the two.
    let c = config(
        &env,
        &format!(
            "[profile.web]\ncredential = {cr:?}\noutfile = \"web.token\"\nminsecs = 60\ndeploy_hook = {hook:?}\n"
        ),
    );
    let r = env.profile("get", "web", &c).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let token = read(&env.path("web.token"));
    let exp = robot_token::token::expiry(robot_token::token::trim(&token)).unwrap();
    let seen = read(&env.path("hook.out"));
    assert_eq!(seen, format!("web.token|web|{exp}"));
    // Never the token, nor the refresh token, in the hook's environment or argv.
    let hook_env = read(&env.path("hook.env"));
    let new_rt = read_json(&cr);
    for secret in [
        robot_token::token::trim(&token),
        &rt,
        new_rt["refresh_token"].as_str().unwrap(),
    ] {
        assert!(
            !hook_env.contains(secret),
            "a secret reached the hook's environment"
        );
        assert!(!read(&env.path("hook.argv")).contains(secret));
    }
    assert!(
        hook_env.contains("BEARER_TOKEN_FILE=web.token"),
        "{hook_env}"
    );

    // A no-op run does not run the hook.
    fs::remove_file(env.path("hook.out")).unwrap();
    let r = env.profile("get", "web", &c).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!env.path("hook.out").exists(), "hook ran after a no-op");

    // From the command line too, without a profile: no ROBOT_TOKEN_PROFILE then.
    fs::remove_file(env.path("web.token")).unwrap();
    let r = env
        .get("web.token", &cr)
        .args(["--deploy-hook", hook])
        .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(read(&env.path("hook.out")).starts_with("web.token||"));
}

#[test]
fn failing_or_hanging_hook_is_reported_and_the_new_token_stays() {
    let iss = Issuer::start();
    let env = Env::new();
    let cr = cred(&env, "c.json", &iss, "robot-basic", None);
    for (hook, timeout, want) in [
        (
            "echo hook says hi >&2; exit 3",
            "1m",
            "deploy hook `echo hook says hi >&2; exit 3` failed with exit status 3",
        ),
        (
            "sleep 60",
            "1s",
            "deploy hook `sleep 60` did not finish within 1 s and was killed",
        ),
    ] {
        let out = env.path("bt");
        let _ = fs::remove_file(&out);
        let r = env
            .get(&out, &cr)
            .args(["--deploy-hook", hook, "--hook-timeout", timeout])
            .run();
        assert_exit(&r, 75, want);
        assert!(r.stderr.contains("the token was renewed"), "{}", r.stderr);
        assert!(lifetime(&read(&out)) > 3000, "the new token stays");
    }
}

#[test]
fn random_delay_never_delays_the_fresh_path() {
    let iss = Issuer::start();
    let env = Env::new();
    let cr = cred(&env, "c.json", &iss, "robot-basic", None);
    let out = env.path("bt");
    // Needs work: the delay is taken (bounded to 300 ms here) and logged at -vv.
    let r = env
        .get(&out, &cr)
        .args(["-vv", "--random-delay", "300ms"])
        .run();
    assert_exit(&r, 0, "random delay: sleeping");
    // Fresh: an hour of allowed delay, and none taken.
    let r = env
        .get(&out, &cr)
        .args(["-vv", "-m", "60", "--random-delay", "1h"])
        .run();
    assert_exit(&r, 0, "nothing to do");
    assert!(!r.stderr.contains("random delay"), "{}", r.stderr);
}
