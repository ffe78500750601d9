//! `robot-token init`: the device flow (RFC 8628) against the real oidc-provider,
//! approved or denied through its real interaction pages by tests/peer/approve.mjs.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use serde_json::json;

/// An issuer whose device flow asks for a poll every second.
fn polling_issuer() -> Issuer {
    let iss = Issuer::start();
    iss.device(json!({"interval": 1}));
    iss
}

/// Approve (or deny) a user code like a browser would, through the provider's pages.
fn approve(iss: &Issuer, user_code: &str, deny: bool) {
    let mut c = Command::new("node");
    c.arg(manifest_dir().join("tests/peer/approve.mjs"))
        .arg(&iss.url)
        .arg(user_code);
    if deny {
        c.arg("--deny");
    }
    let out = output_of(c.stdin(Stdio::null()));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "approve.mjs failed: {said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(said.trim(), if deny { "denied" } else { "approved" });
}

/// A running `init`: its user code, and the rest of its stdout when it ends.
struct Running {
    child: Child,
    user_code: String,
    complete_uri: String,
    rest: mpsc::Receiver<String>,
}

impl Running {
    fn finish(mut self) -> Output {
        let status = wait_status(&mut self.child, CHILD_TIMEOUT);
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        Output {
            code: status.code().unwrap_or(-1),
            stdout: self
                .rest
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_default(),
            stderr,
        }
    }
}

/// Read the instructions up to the complete URI; keep draining in a thread.
fn read_instructions(
    reader: impl BufRead + Send + 'static,
) -> (String, String, mpsc::Receiver<String>) {
    let mut lines = reader.lines();
    let mut seen = String::new();
    let mut code = None;
    let mut complete = None;
    for line in lines.by_ref() {
        let line = line.unwrap_or_default();
        seen.push_str(&line);
        seen.push('\n');
        let t = line.trim();
        if let Some(c) = t.strip_prefix("Code: ") {
            code = Some(c.to_string());
        } else if code.is_some() && t.contains("user_code=") {
            complete = Some(t.to_string());
            break;
        }
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rest: Vec<String> = lines.map_while(|l| l.ok()).collect();
        let _ = tx.send(rest.join("\n"));
    });
    (
        code.unwrap_or_else(|| panic!("no user code in the output: {seen:?}")),
        complete.unwrap_or_else(|| panic!("no verification_uri_complete: {seen:?}")),
        rx,
    )
}

fn init_cmd(env: &Env, iss: &Issuer, client: &str, extra: &[&str]) -> Command {
    let mut c = env.init(iss, client);
    c.args(extra);
    c
}

fn start(mut cmd: Command) -> Running {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (user_code, complete_uri, rest) =
        read_instructions(BufReader::new(child.stdout.take().unwrap()));
    Running {
        child,
        user_code,
        complete_uri,
        rest,
    }
}

#[test]
fn device_flow_end_to_end_then_cron_renews_from_the_credential() {
    let iss = polling_issuer();
    let env = Env::new();
    let flow = start(init_cmd(
        &env,
        &iss,
        "robot-basic",
        &[
            "-vv",
            "--scope",
            "openid storage.read:/data storage.modify:/data/out compute.create",
            "--audience",
            "https://storage.example.org",
        ],
    ));
    assert!(
        flow.complete_uri.contains(&flow.user_code),
        "{}",
        flow.complete_uri
    );
    approve(&iss, &flow.user_code, false);
    let r = flow.finish();
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert!(r.stdout.contains("get -c"), "{}", r.stdout);

    // The credential: 0600, a refresh token, offline_access added, the client kept.
    let cred = env.path("cred.json");
    assert_eq!(fs::metadata(&cred).unwrap().mode() & 0o777, 0o600);
    let c = read_json(&cred);
    assert_eq!(c["version"], 1);
    assert_eq!(c["issuer"], json!(iss.url));
    assert_eq!(c["client_id"], "robot-basic");
    assert_eq!(c["client_secret"], "robot-basic-secret");
    assert!(c["refresh_token"].as_str().is_some_and(|s| !s.is_empty()));
    let scope = c["scope"].as_str().unwrap();
    assert!(scope.split(' ').any(|s| s == "offline_access"), "{scope}");
    assert_eq!(c["audience"], "https://storage.example.org");

    // The first token: WLCG scopes and the audience came back.
    let tok = read(&env.path("bt"));
    assert_eq!(fs::metadata(env.path("bt")).unwrap().mode() & 0o777, 0o600);
    let jwt = robot_token::token::decode(robot_token::token::trim(&tok)).unwrap();
    assert_eq!(jwt.audiences(), vec!["https://storage.example.org"]);
    let scopes = jwt.scopes();
    for s in [
        "storage.read:/data",
        "storage.modify:/data/out",
        "compute.create",
    ] {
        assert!(scopes.iter().any(|g| g == s), "{s} not in {scopes:?}");
    }
    assert!(lifetime(&tok) > 60);

    // Nothing secret at -vv: no token, refresh token, client secret or device code.
    let all = format!("{}{}", r.stdout, r.stderr);
    for secret in [
        tok.trim(),
        c["refresh_token"].as_str().unwrap(),
        "robot-basic-secret",
    ] {
        assert!(!all.contains(secret), "a secret leaked at -vv");
    }
    assert!(!all.contains("eyJ"), "a JWT leaked at -vv: {all}");
    assert!(!all.contains("device_code="), "{all}");

    // Redeemed exactly once: a second poll of a used code revokes the grant, so the
    // refresh token still working proves there was none.
    let polls = iss.grants("device_code");
    assert!(polls >= 1);
    let r = env.get(env.path("bt2"), &cred).args(["-m", "100000"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.grants("refresh_token"), 1);
    assert_eq!(
        iss.grants("device_code"),
        polls,
        "no poll after the redemption"
    );
    let again = read_json(&cred);
    assert_ne!(
        again["refresh_token"], c["refresh_token"],
        "rotated and saved"
    );
    let tok2 = read(&env.path("bt2"));
    let jwt2 = robot_token::token::decode(robot_token::token::trim(&tok2)).unwrap();
    assert_eq!(jwt2.audiences(), vec!["https://storage.example.org"]);
}

#[test]
fn without_an_interval_polling_waits_the_default_five_seconds() {
    let iss = Issuer::start();
    let env = Env::new();
    // A public client (client_auth none) this time.
    let flow = start(init_cmd(
        &env,
        &iss,
        "robot-public",
        &["--scope", "storage.read:/"],
    ));
    // Approved well before the first poll is due (5 s): a client that did not wait
    // would have polled, pending, several times by then.
    approve(&iss, &flow.user_code, false);
    let r = flow.finish();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.grants("device_code"), 1);
    let c = read_json(&env.path("cred.json"));
    assert_eq!(c["client_auth"], "none");
    assert!(c.get("client_secret").is_none());
    let r = env
        .get(env.path("bt"), env.path("cred.json"))
        .args(["-m", "100000"])
        .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn slow_down_adds_five_seconds() {
    let iss = Issuer::start();
    iss.device(json!({"interval": 1, "slow_down_once": true}));
    let env = Env::new();
    let flow = start(init_cmd(&env, &iss, "robot-basic", &["-v"]));
    // First poll (1 s): slow_down, interval becomes 6 s. Approve at about 3 s: a
    // client still polling every second would have polled at 2 s and 3 s too.
    wait_ms(2500);
    approve(&iss, &flow.user_code, false);
    let r = flow.finish();
    assert_exit(&r, 0, "polling every 6 s");
    assert_eq!(
        iss.grants("device_code"),
        2,
        "slow_down, then the redemption"
    );
}

#[test]
fn denial_exits_77_and_writes_nothing() {
    let iss = polling_issuer();
    let env = Env::new();
    let flow = start(init_cmd(&env, &iss, "robot-basic", &[]));
    approve(&iss, &flow.user_code, true);
    let r = flow.finish();
    assert_eq!(r.code, 77, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.starts_with("robot-token: error: "), "{}", r.stderr);
    assert!(r.stderr.contains("denied"), "{}", r.stderr);
    assert_eq!(env.names(), vec!["secret"]);
}

#[test]
fn expiry_exits_75_and_writes_nothing() {
    let iss = Issuer::start();
    iss.device(json!({"interval": 1, "expires_in": 3}));
    let env = Env::new();
    let flow = start(init_cmd(&env, &iss, "robot-basic", &[]));
    let r = flow.finish();
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("expired"), "{}", r.stderr);
    assert!(r.stderr.contains("init again"), "{}", r.stderr);
    assert_eq!(env.names(), vec!["secret"]);
    assert!(iss.grants("device_code") >= 1, "it polled until the end");
}

#[test]
fn refuses_without_a_terminal_and_refuses_to_overwrite() {
    let iss = Issuer::start();
    let env = Env::new();
    let secret = env.write_private("secret", "robot-basic-secret");
    let base = |c: &mut Command| {
        c.args(["init", "--issuer", &iss.url, "--client-id", "robot-basic"])
            .arg("--client-secret-file")
            .arg(&secret)
            .arg("-c")
            .arg(env.path("cred.json"))
            .arg("-o")
            .arg(env.path("bt"));
    };
    // No terminal (stdin /dev/null, stdout a pipe) and no --no-tty.
    let mut c = env.cmd();
    base(&mut c);
    let r = run(&mut c);
    assert_exit(&r, 64, "--no-tty");
    assert_eq!(r.stderr.lines().count(), 1);

    // An existing credential is kept byte for byte without --force.
    let old = env.write_private("cred.json", "{\"version\":1}\n");
    let mut c = env.cmd();
    base(&mut c);
    c.arg("--no-tty");
    let r = run(&mut c);
    assert_exit(&r, 73, "--force");
    assert_eq!(read(&old), "{\"version\":1}\n");
    assert_eq!(
        iss.requests("device") + iss.requests("token"),
        0,
        "checked before any request"
    );

    // With --force it is replaced.
    iss.device(json!({"interval": 1}));
    let mut c = env.cmd();
    base(&mut c);
    c.args(["--no-tty", "--force"]);
    let run_ = start(c);
    approve(&iss, &run_.user_code, false);
    let r = run_.finish();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(read_json(&old)["refresh_token"].is_string());
}

#[test]
fn get_never_starts_an_interactive_flow() {
    let iss = Issuer::start();
    let env = Env::new();
    // A public device-flow client with no refresh token: get has nothing to redeem.
    let cred = env.write_private(
        "cred.json",
        &json!({"version":1,"issuer":iss.url,"client_id":"robot-public"}).to_string(),
    );
    let r = env.get(env.path("bt"), &cred).run();
    assert_ne!(r.code, 0);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert_eq!(iss.requests("device"), 0);
    assert_eq!(iss.grants("device_code"), 0);
}

#[test]
fn ctrl_c_while_waiting_leaves_no_file() {
    let iss = polling_issuer();
    let env = Env::new();
    let flow = start(init_cmd(&env, &iss, "robot-basic", &[]));
    wait_ms(1500);
    // SAFETY: signalling our own child by pid.
    unsafe { libc::kill(flow.child.id() as i32, libc::SIGINT) };
    let mut child = flow.child;
    let status = wait_status(&mut child, CHILD_TIMEOUT);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGINT));
    assert_eq!(env.names(), vec!["secret"]);
}

#[test]
fn private_key_jwt_client_in_the_device_flow() {
    let iss = polling_issuer();
    let env = Env::new();
    let key = env.key_copy("client-ec.key.pem");
    let mut c = init_cmd(&env, &iss, "robot-pkjwt-ec", &["--kid", "robot-pkjwt-ec"]);
    c.arg("--private-key-file").arg(&key);
    let run_ = start(c);
    approve(&iss, &run_.user_code, false);
    let r = run_.finish();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let c = read_json(&env.path("cred.json"));
    assert_eq!(c["client_auth"], "private_key_jwt");
    assert_eq!(c["private_key_file"], json!(key.to_string_lossy()));
    assert!(c.get("client_secret").is_none());
    // And cron renews with a fresh assertion.
    let r = env
        .get(env.path("bt"), env.path("cred.json"))
        .args(["-m", "100000"])
        .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.grants("refresh_token"), 1);
}

/// An issuer that accepts a client assertion only when its `aud` is exactly the URL
/// being called: the device authorization endpoint during `init` (the token endpoint
/// was refused there), then the token endpoint for the poll and for cron.
#[test]
fn private_key_jwt_init_with_an_issuer_strict_about_assertion_audiences() {
    let iss = Issuer::start_with(&["--deviate", "strict-assertion-aud"]);
    iss.device(json!({"interval": 1}));
    let env = Env::new();
    let key = env.key_copy("client-rsa.key.pem");
    let mut c = init_cmd(&env, &iss, "robot-pkjwt-rsa", &["--kid", "robot-pkjwt-rsa"]);
    c.arg("--private-key-file").arg(&key);
    let run_ = start(c);
    approve(&iss, &run_.user_code, false);
    let r = run_.finish();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.requests("device"), 1, "accepted at the first try");
    let r = env
        .get(env.path("bt"), env.path("cred.json"))
        .args(["-m", "2h"])
        .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.grants("refresh_token"), 1, "{}", r.stderr);
}

/// A pseudo-terminal pair: (controller, the terminal the child gets).
fn openpty() -> (OwnedFd, OwnedFd) {
    let (mut m, mut s) = (0, 0);
    // SAFETY: openpty writes two new descriptors into m and s.
    let rc = unsafe {
        libc::openpty(
            &mut m,
            &mut s,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty failed");
    // SAFETY: both are fresh descriptors we own.
    unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) }
}

#[test]
fn on_a_terminal_it_draws_a_qr_code() {
    let iss = polling_issuer();
    let env = Env::new();
    let (ctl, term) = openpty();
    let secret = env.write_private("secret", "robot-basic-secret\n");
    let mut c = env.cmd();
    c.args(["init", "--issuer", &iss.url, "--client-id", "robot-basic"])
        .arg("--client-secret-file")
        .arg(&secret)
        .arg("-c")
        .arg(env.path("cred.json"))
        .arg("-o")
        .arg(env.path("bt"))
        .stdin(Stdio::from(term.try_clone().unwrap()))
        .stdout(Stdio::from(term.try_clone().unwrap()))
        .stderr(Stdio::from(term));
    let mut child = c.spawn().unwrap();
    drop(c); // our copies of the terminal side, so EOF arrives when the child ends
    let (user_code, _, rest) = read_instructions(BufReader::new(fs::File::from(ctl)));
    approve(&iss, &user_code, false);
    let status = wait_status(&mut child, CHILD_TIMEOUT);
    let after = rest
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_default();
    assert_eq!(status.code(), Some(0), "{after}");
    assert!(
        after.contains('█') || after.contains('▀') || after.contains('▄'),
        "no QR code on the terminal: {after}"
    );
    assert!(read_json(&env.path("cred.json"))["refresh_token"].is_string());
}

#[test]
fn a_server_error_while_polling_is_waited_out_and_bad_answers_write_nothing() {
    let iss = polling_issuer();
    let env = Env::new();
    // A 503 redeemed nothing: polling goes on, and the approval still lands.
    iss.fault(json!({"kind": "status", "status": 503}));
    let flow = start(init_cmd(&env, &iss, "robot-basic", &[]));
    wait_ms(1500);
    approve(&iss, &flow.user_code, false);
    let r = flow.finish();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(iss.grants("device_code") >= 2);
    assert!(read_json(&env.path("cred.json"))["refresh_token"].is_string());

    // An answer that is not a token, and one without a refresh token: one line each,
    // documented codes, nothing written.
    for (fault, code) in [("truncated_json", 65), ("expired_jwt", 78)] {
        let env = Env::new();
        iss.fault(json!({"kind": fault}));
        let r = run(&mut init_cmd(&env, &iss, "robot-basic", &[]));
        assert_eq!(r.code, code, "{fault}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.starts_with("robot-token: error: "), "{}", r.stderr);
        assert_eq!(env.names(), vec!["secret"]);
    }
}

#[test]
fn ctrl_c_during_the_writes_takes_effect_after_them() {
    let iss = polling_issuer();
    let env = Env::new();
    let mut c = init_cmd(&env, &iss, "robot-basic", &[]);
    // test-hooks: each atomic write pauses between its temp file and the rename.
    c.env("ROBOT_TOKEN_TEST_WRITE_DELAY_MS", "1500");
    let flow = start(c);
    approve(&iss, &flow.user_code, false);
    // Wait until the credential's temp file holds the credential (it was prepared,
    // with 64 KiB reserved, before the login): the writes have begun.
    let mut began = false;
    for _ in 0..200 {
        let writing = fs::read_dir(env.dir.path()).unwrap().flatten().any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".cred.json.tmp.")
                && e.metadata()
                    .is_ok_and(|m| m.len() > 0 && m.len() < 64 * 1024)
        });
        if writing {
            began = true;
            break;
        }
        wait_ms(50);
    }
    assert!(began, "the credential write never started");
    // SAFETY: signalling our own child by pid.
    unsafe { libc::kill(flow.child.id() as i32, libc::SIGINT) };
    let mut child = flow.child;
    let status = wait_status(&mut child, CHILD_TIMEOUT);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGINT), "Ctrl-C still ends it");
    // Both files complete, no temp file left.
    assert!(read_json(&env.path("cred.json"))["refresh_token"].is_string());
    assert!(lifetime(&read(&env.path("bt"))) > 60);
    let names = env.names();
    assert!(!names.iter().any(|n| n.contains(".tmp.")), "{names:?}");
}

#[test]
fn require_scope_writes_nothing_when_the_issuer_narrows() {
    let iss = polling_issuer();
    let env = Env::new();
    let flow = start(init_cmd(
        &env,
        &iss,
        "robot-basic",
        &[
            "--scope",
            "storage.read:/ forbidden.scope",
            "--require-scope",
            "storage.read:/data",
            "--require-scope",
            "forbidden.scope",
        ],
    ));
    approve(&iss, &flow.user_code, false);
    let r = flow.finish();
    assert_eq!(r.code, 77, "{}", r.stderr);
    let errors: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("robot-token: error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{}", r.stderr);
    assert!(errors[0].contains("forbidden.scope"), "{}", r.stderr);
    assert!(
        !errors[0].contains("storage.read:/data"),
        "WLCG matching: / covers /data"
    );
    assert_eq!(env.names(), vec!["secret"]);
}
