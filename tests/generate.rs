//! Help, version, man pages and completions come from the clap definitions.

mod common;

use std::process::Command;

use common::*;

#[test]
fn man_pages_and_completions_are_generated() {
    let env = Env::new();
    let r = run(env.cmd().args(["generate", "man", "man"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    for page in [
        "robot-token.1",
        "robot-token-get.1",
        "robot-token-status.1",
        "robot-token-check.1",
        "robot-token-inspect.1",
        "robot-token-revoke.1",
    ] {
        let text = read(&env.path("man").join(page));
        assert!(text.starts_with(".ie \\n(.g .ds Aq"), "{page} is roff");
    }
    let get = read(&env.path("man/robot-token-get.1"));
    for opt in [
        "deploy\\-hook",
        "random\\-delay",
        "profile",
        "jobs",
        "dry\\-run",
    ] {
        assert!(get.contains(opt), "{opt} in robot-token-get.1");
    }
    // The synopsis names each option's value, as --help does.
    let synopsis = get
        .lines()
        .skip_while(|l| *l != ".SH SYNOPSIS")
        .nth(1)
        .unwrap_or_default();
    for want in [
        "\\fBrobot\\-token get\\fR ",
        "[\\-o|\\-\\-outfile PATH[:owner=U,group=G,mode=M]]...",
        "[\\-m|\\-\\-minsecs SECS]",
        "[\\-\\-condor[=MODE]]",
        "[\\-v|\\-\\-verbose]...",
    ] {
        assert!(synopsis.contains(want), "{want} in {synopsis}");
    }
    let check = read(&env.path("man/robot-token-check.1"));
    assert!(
        check.contains("[\\-c|\\-\\-critical DURATION]") && check.contains(" [FILE]"),
        "{check}"
    );
    let revoke = read(&env.path("man/robot-token-revoke.1"));
    for opt in ["force", "profile", "credential", "revocation_endpoint"] {
        assert!(revoke.contains(opt), "{opt} in robot-token-revoke.1");
    }
    // Options a get line has but revoke does not use are accepted, not documented.
    assert!(
        !revoke.contains("deploy\\-hook"),
        "hidden in robot-token-revoke.1"
    );
    assert!(
        !env.path("man/robot-token-generate.1").exists(),
        "hidden command"
    );

    for (shell, check) in [("bash", Some("bash")), ("zsh", None), ("fish", None)] {
        let r = run(env.cmd().args(["generate", "completions", shell]));
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains("deploy-hook"), "{shell}");
        assert!(
            r.stdout.contains("dry-run") && r.stdout.contains("revoke"),
            "{shell}"
        );
        if let Some(sh) = check {
            let f = env.path("completion");
            std::fs::write(&f, &r.stdout).unwrap();
            let ok = Command::new(sh).arg("-n").arg(&f).status().unwrap();
            assert!(ok.success(), "{shell} completion parses");
        }
    }
}

#[test]
fn help_has_examples_and_version_has_features_and_gssapi() {
    let env = Env::new();
    let r = run(env.cmd().arg("--help"));
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("Examples:") && r.stdout.contains("robot-token get --all"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Exit codes:"), "{}", r.stdout);
    let r = run(env.cmd().args(["get", "--help"]));
    assert!(
        r.stdout
            .contains("robot-token get --profile storage --deploy-hook"),
        "{}",
        r.stdout
    );

    let r = run(env.cmd().arg("--version"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!("robot-token {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(lines[1].starts_with("features: "), "{}", r.stdout);
    assert_eq!(
        lines[1].contains("test-hooks"),
        cfg!(feature = "test-hooks"),
        "{}",
        r.stdout
    );
    let found = robot_token::commands::version::gssapi_found();
    assert_eq!(
        lines[2].contains("libgssapi_krb5.so.2 found"),
        found,
        "{}",
        r.stdout
    );
}
