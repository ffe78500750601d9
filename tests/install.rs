//! The install story as a new user meets it: every example finds the binary the same
//! way, and the README's crontab line, pasted for a non-root user against an issuer of
//! 1-hour tokens, renews once per half lifetime, mails nothing, and `check` says OK.

mod common;

use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use serde_json::json;

fn repo(p: &str) -> String {
    read(&manifest_dir().join(p))
}

/// Pairs of strings: (NAME, value) or (schedule, command).
type Pairs = Vec<(String, String)>;

/// The `NAME=value` lines and the job lines (schedule, command) of a crontab file.
fn crontab(text: &str) -> (Pairs, Pairs) {
    let mut vars = Vec::new();
    let mut jobs = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.splitn(6, ' ').collect();
        if fields.len() == 6 && !fields[0].contains('=') {
            jobs.push((fields[..5].join(" "), fields[5].to_string()));
        } else if let Some((k, v)) = line.split_once('=') {
            vars.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    (vars, jobs)
}

#[test]
fn every_example_finds_the_binary_the_same_way() {
    // The install command and the packages put the binary where the examples look.
    let readme = repo("README.md");
    for want in [
        "cargo install --locked --path . --root /usr/local",
        "/usr/local/bin/robot-token",
        "/usr/bin/robot-token",
    ] {
        assert!(readme.contains(want), "README: {want}");
    }
    let cargo = repo("Cargo.toml");
    assert!(cargo.contains(r#"["target/release/robot-token", "usr/bin/", "755"]"#));
    assert!(cargo.contains(r#"dest = "/usr/bin/robot-token""#));
    // Crontabs: a PATH with both, and robot-token called by name.
    for f in ["cron/crontab", "cron/crontab-all"] {
        let (vars, jobs) = crontab(&repo(f));
        let path = vars
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{f}: no PATH line"));
        let dirs: Vec<&str> = path.split(':').collect();
        assert!(
            dirs.contains(&"/usr/local/bin") && dirs.contains(&"/usr/bin"),
            "{f}: {path}"
        );
        assert!(!jobs.is_empty(), "{f}");
        for (_, cmd) in &jobs {
            assert!(cmd.starts_with("robot-token "), "{f}: {cmd}");
        }
        assert!(
            !vars.iter().any(|(k, _)| k == "BEARER_TOKEN_FILE"),
            "{f}: a BEARER_TOKEN_FILE line names one uid"
        );
    }
    // The README's crontab is cron/crontab's.
    let (vars, jobs) = crontab(&repo("cron/crontab"));
    for (k, v) in &vars {
        assert!(readme.contains(&format!("{k}={v}")), "README lacks {k}={v}");
    }
    for (when, cmd) in &jobs {
        assert!(
            readme.contains(&format!("{when} {cmd}")),
            "README lacks the crontab line {when} {cmd}"
        );
    }
    // Nowhere a path to the binary other than the install locations (packages,
    // --root /usr/local, ~/.cargo/bin), and no example that works for uid 1000 only.
    let re = regex::Regex::new(r"(/[\w.-]+)+/robot-token\b").unwrap();
    let mut texts = vec![("README.md".to_string(), readme.clone())];
    for dir in ["cron", "cron/user", "docs", "examples", "examples/ci"] {
        for e in std::fs::read_dir(manifest_dir().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                texts.push((
                    p.display().to_string(),
                    std::fs::read_to_string(&p).unwrap_or_default(),
                ));
            }
        }
    }
    for (name, text) in &texts {
        for m in re.find_iter(text) {
            let m = m.as_str();
            let binary = m.contains("/bin/");
            let known = [
                "/usr/bin/robot-token",
                "/usr/local/bin/robot-token",
                "/.cargo/bin/robot-token",
            ];
            assert!(!binary || known.contains(&m), "{name}: {m}");
        }
        for line in text.lines() {
            assert!(
                !(line.contains("BEARER_TOKEN_FILE=/tmp/bt_u1000")),
                "{name}: {line}"
            );
        }
    }
}

/// A user cron can run the crontab line as, with a home directory holding
/// ~/.config/robot-token; removed on drop, with its token file.
struct User {
    user: TestUser,
    home: PathBuf,
}

impl std::ops::Deref for User {
    type Target = TestUser;
    fn deref(&self) -> &TestUser {
        &self.user
    }
}

impl User {
    fn create(home: &Path) -> User {
        let user = TestUser::with_home("cron", home);
        std::fs::create_dir_all(home.join(".config/robot-token")).unwrap();
        for d in [
            home.to_path_buf(),
            home.join(".config"),
            home.join(".config/robot-token"),
        ] {
            chown(&d, Some(user.uid), Some(user.gid)).unwrap();
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        User {
            user,
            home: home.to_path_buf(),
        }
    }

    /// A file of the user's, mode 0600.
    fn write(&self, p: &Path, content: &str) {
        std::fs::write(p, content).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
        chown(p, Some(self.uid), Some(self.gid)).unwrap();
    }

    fn token_file(&self) -> PathBuf {
        PathBuf::from(format!("/tmp/bt_u{}", self.uid))
    }
}

impl Drop for User {
    fn drop(&mut self) {
        // Before the user goes (the field's own drop).
        let _ = std::fs::remove_file(self.token_file());
    }
}

#[test]
#[ignore = "needs root"]
fn the_readme_crontab_line_for_a_new_user_with_one_hour_tokens() {
    // Creates a user to run the crontab line as.
    require_root();
    // The binary under test in a directory any user can reach, standing in for
    // /usr/local/bin (the test puts it first on the crontab's own PATH).
    let top = tempfile::Builder::new()
        .prefix("robot-token-cron")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = top.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    binary_copy(&bin);
    let user = User::create(&top.path().join("home"));
    let _ = std::fs::remove_file(user.token_file());

    // INDIGO IAM's default: 1-hour access tokens.
    let iss = Issuer::start_with(&["--access-ttl", "3600"]);
    let rt = iss.refresh_token("robot-basic");
    let cred = user.home.join(".config/robot-token/robot.json");
    user.write(
        &cred,
        &json!({"version": 1, "issuer": iss.url, "client_id": "robot-basic",
                "client_secret": "robot-basic-secret", "refresh_token": rt,
                "scope": "storage.read:/"})
        .to_string(),
    );
    iss.reset();

    // cron/crontab as pasted: its variables, its line, run by /bin/sh as the user in
    // cron's environment (HOME, LOGNAME, SHELL, the crontab's PATH; no XDG_RUNTIME_DIR).
    let (vars, jobs) = crontab(&repo("cron/crontab"));
    let (when, line) = jobs.first().expect("a job line").clone();
    assert_eq!(when, "*/15 * * * *");
    let cron = |args: Option<&str>| {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(args.unwrap_or(&line));
        c.env_clear()
            .env("HOME", &user.home)
            .env("LOGNAME", &user.name)
            .env("SHELL", "/bin/sh");
        for (k, v) in &vars {
            if k == "PATH" {
                c.env(k, format!("{}:{v}", bin.display()));
            } else {
                c.env(k, v);
            }
        }
        c.current_dir(&user.home)
            .uid(user.uid)
            .gid(user.gid)
            .stdin(Stdio::null());
        run(&mut c)
    };
    let silent = |r: &Output, what: &str| {
        assert_eq!(r.code, 0, "{what}: {}", r.stderr);
        assert_eq!(
            (r.stdout.as_str(), r.stderr.as_str()),
            ("", ""),
            "{what}: cron would mail this"
        );
    };

    // The first run gets the token, into /tmp/bt_u<uid>.
    let r = cron(None);
    silent(&r, "first run");
    assert_eq!(iss.requests("token"), 1);
    let tok = read(&user.token_file());
    assert!(
        (3500..=3600).contains(&lifetime(&tok)),
        "{}",
        lifetime(&tok)
    );
    // The next runs are no-ops: the token is fresh for half its lifetime.
    for i in 0..2 {
        wait_ms(1100);
        silent(&cron(None), &format!("run {}", i + 2));
    }
    assert_eq!(iss.requests("token"), 1, "no renewal while fresh");
    assert_eq!(read(&user.token_file()), tok);
    // 29 minutes later (a token of that age): still a no-op; 31 minutes: renewed, once.
    let now = robot_token::token::now();
    let aged = |age: i64| {
        let jwt = iss.sign_raw(json!({"iss": iss.url, "sub": "robot-user",
                                      "iat": now - age, "exp": now - age + 3600}));
        user.write(&user.token_file(), &format!("{jwt}\n"));
    };
    aged(29 * 60);
    silent(&cron(None), "29 minutes in");
    assert_eq!(iss.requests("token"), 1);
    aged(31 * 60);
    silent(&cron(None), "31 minutes in");
    assert_eq!(
        iss.requests("token"),
        2,
        "renewed once past half its lifetime"
    );
    silent(&cron(None), "right after");
    assert_eq!(iss.requests("token"), 2);

    // check, with its defaults, as the user: OK.
    let r = cron(Some("robot-token check"));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("ROBOT-TOKEN OK - "), "{}", r.stdout);
}

#[test]
fn the_demo_needs_no_root_and_keeps_its_token() {
    let demo = repo("examples/demo.sh");
    let ok = Command::new("bash")
        .arg("-n")
        .arg(manifest_dir().join("examples/demo.sh"))
        .status()
        .unwrap();
    assert!(ok.success());
    assert!(
        demo.contains("scripts/install-peers.sh --issuer"),
        "only the issuer"
    );
    for no in ["sudo", "apt-get", "--quiet"] {
        assert!(!demo.contains(no), "{no}");
    }
    assert!(
        demo.contains("target/demo"),
        "the token stays in target/demo"
    );
}
