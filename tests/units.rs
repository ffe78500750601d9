//! The systemd units in cron/ pass `systemd-analyze verify` (installed by
//! scripts/install-peers.sh), with no warning, pointed at the binary under test.

mod common;

use std::process::{Command, Stdio};

use common::*;

fn verify(user: bool, files: &[&str]) {
    let env = Env::new();
    let bin = assert_cmd::cargo::cargo_bin!("robot-token");
    let mut paths = Vec::new();
    for f in files {
        let text = read(&manifest_dir().join("cron").join(f));
        // The units name robot-token bare, for systemd to find in /usr/local/bin or
        // /usr/bin; verify checks that the binary exists: point it at the one under test.
        assert!(
            !f.ends_with(".service") || text.contains("\nExecStart=robot-token "),
            "{f}: ExecStart= resolves robot-token from systemd's search path"
        );
        let text = text.replace(
            "\nExecStart=robot-token ",
            &format!("\nExecStart={} ", bin.display()),
        );
        let name = std::path::Path::new(f).file_name().unwrap();
        let p = env.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        paths.push(p);
    }
    let runtime = env.path("runtime");
    std::fs::create_dir(&runtime).unwrap();
    let mut cmd = Command::new("systemd-analyze");
    if user {
        cmd.arg("--user");
    }
    let out = cmd
        .args(["verify", "--man=no"])
        .args(&paths)
        .env("XDG_RUNTIME_DIR", &runtime)
        .current_dir(env.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map(|c| wait_output(c, CHILD_TIMEOUT))
        .expect(
            "systemd-analyze is missing: run scripts/install-peers.sh (Debian package systemd)",
        );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{files:?}: {stderr}");
    assert_eq!(stderr, "", "{files:?}: warnings");
}

#[test]
fn system_units_verify() {
    verify(false, &["robot-token.service", "robot-token.timer"]);
    let unit = read(&manifest_dir().join("cron/robot-token.service"));
    for needed in [
        "ProtectSystem=strict",
        "PrivateTmp=no",
        "NoNewPrivileges=yes",
        "ReadWritePaths=/tmp",
    ] {
        assert!(unit.lines().any(|l| l.starts_with(needed)), "{needed}");
    }
    let timer = read(&manifest_dir().join("cron/robot-token.timer"));
    for needed in [
        "OnCalendar=*:0/15",
        "RandomizedDelaySec=",
        "Persistent=true",
    ] {
        assert!(timer.lines().any(|l| l.starts_with(needed)), "{needed}");
    }
}

#[test]
fn user_units_verify() {
    verify(
        true,
        &["user/robot-token.service", "user/robot-token.timer"],
    );
}

/// The harness itself: a child that hangs fails its test, within the limit.
#[test]
#[should_panic(expected = "still running after 1 s")]
fn a_hung_child_fails_the_test_instead_of_hanging_it() {
    let mut c = Command::new("sleep");
    c.arg("30").stdin(Stdio::null());
    run_within(&mut c, 1);
}
