//! A hostile local environment: the robot runs as an unprivileged user created by the
//! test; another user plants files in a shared sticky directory (a stand-in for /tmp).
//! Every case gets a clear error, or succeeds safely, without touching the victim's
//! files or the attacker's plants. Needs root (to create users, deleted
//! when each test ends): marked `ignore = "needs root"`, which scripts/test.sh runs as
//! root (as CI is) with `--include-ignored`.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{chown, symlink, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

struct World {
    _base: tempfile::TempDir,
    bin: PathBuf,
    shared: PathBuf,
    home: PathBuf,
    victim: (u32, u32),
    attacker: (u32, u32),
    // Deleted when the test ends (after _base, which holds their files).
    _users: [TestUser; 2],
}

impl World {
    fn new() -> World {
        let victim_user = TestUser::create("v");
        let attacker_user = TestUser::create("a");
        let victim = (victim_user.uid, victim_user.gid);
        let attacker = (attacker_user.uid, attacker_user.gid);
        let base = tempfile::Builder::new()
            .prefix("rt-hostile")
            .tempdir()
            .unwrap();
        fs::set_permissions(base.path(), fs::Permissions::from_mode(0o755)).unwrap();
        // A copy of the binary the victim can surely execute.
        let bin = binary_copy(base.path());
        let shared = base.path().join("tmp");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
        let home = base.path().join("home");
        fs::create_dir(&home).unwrap();
        fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).unwrap();
        chown(&home, Some(victim.0), Some(victim.1)).unwrap();
        World {
            _base: base,
            bin,
            shared,
            home,
            victim,
            attacker,
            _users: [victim_user, attacker_user],
        }
    }

    fn victim_name(&self) -> &str {
        &self._users[0].name
    }

    fn attacker_name(&self) -> &str {
        &self._users[1].name
    }

    fn token_path(&self) -> PathBuf {
        self.shared.join(format!("bt_u{}", self.victim.0))
    }

    /// A file in the victim's home, owned by the victim.
    fn victim_file(&self, name: &str, content: &str, mode: u32) -> PathBuf {
        let p = self.home.join(name);
        fs::write(&p, content).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        chown(&p, Some(self.victim.0), Some(self.victim.1)).unwrap();
        p
    }

    fn plant(&self, p: &Path, content: &str, mode: u32) {
        fs::write(p, content).unwrap();
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
        chown(p, Some(self.attacker.0), Some(self.attacker.1)).unwrap();
    }

    fn credential(&self, iss: &Issuer) -> PathBuf {
        self.victim_file(
            "cred.json",
            &serde_json::json!({"version":1,"issuer":iss.url,"client_id":"robot-basic","client_secret":"robot-basic-secret"}).to_string(),
            0o600,
        )
    }

    /// A world, an issuer, and the victim's client_credentials credential for it.
    fn with_credential() -> (World, Issuer, PathBuf) {
        let w = World::new();
        let iss = Issuer::start();
        let cred = w.credential(&iss);
        (w, iss, cred)
    }

    /// Refused (77, one line) as a file the attacker owns.
    fn refused_as_the_attackers(&self, r: &Output) {
        assert_one_line(r, 77);
        assert!(
            r.stderr
                .contains(&format!("owned by {}", self.attacker_name())),
            "{}",
            r.stderr
        );
    }

    /// The binary as the victim, with the victim's HOME and nothing else set.
    fn as_victim(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &self.home)
            .current_dir(&self.home)
            .uid(self.victim.0)
            .gid(self.victim.1);
        c
    }

    /// Run as the victim, with the victim's HOME.
    fn get(&self, cred: &Path, extra: &[&str]) -> Output {
        self.as_victim()
            .args(line("get", self.token_path(), cred))
            .args(["--deadline", "10s"])
            .args(extra)
            .run()
    }
}

#[test]
#[ignore = "needs root"]
fn planted_symlink_is_refused_and_the_target_untouched() {
    let (w, iss, cred) = World::with_credential();
    let precious = w.victim_file("precious", "do not clobber", 0o600);
    symlink(&precious, w.token_path()).unwrap();
    let r = w.get(&cred, &[]);
    assert_one_line(&r, 73);
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
    assert_eq!(read(&precious), "do not clobber");
    assert_eq!(iss.requests("token"), 0, "refused before any request");
}

#[test]
#[ignore = "needs root"]
fn token_file_precreated_by_another_user_is_refused() {
    let (w, _iss, cred) = World::with_credential();
    w.plant(&w.token_path(), "attacker's token", 0o644);
    let r = w.get(&cred, &[]);
    assert_one_line(&r, 73);
    assert!(
        r.stderr
            .contains(&format!("owned by {}", w.attacker_name()))
            && r.stderr.contains("BEARER_TOKEN_FILE"),
        "{}",
        r.stderr
    );
    assert_eq!(read(&w.token_path()), "attacker's token");
    assert_eq!(fs::metadata(w.token_path()).unwrap().uid(), w.attacker.0);
}

#[test]
#[ignore = "needs root"]
fn precreated_lock_and_temp_names_do_not_block_or_redirect() {
    let (w, _iss, cred) = World::with_credential();
    let name = format!("bt_u{}", w.victim.0);
    // A lock beside the token would be the attacker's to hold: it is not used.
    let lock = w.shared.join(format!(".{name}.lock"));
    w.plant(&lock, "", 0o600);
    // Guessable temp names, one a symlink to the victim's file.
    let precious = w.victim_file("precious", "do not clobber", 0o600);
    for i in 0..4 {
        w.plant(
            &w.shared.join(format!(".{name}.tmp.{i:016x}")),
            "plant",
            0o666,
        );
    }
    let link = w.shared.join(format!(".{name}.tmp.ffffffffffffffff"));
    symlink(&precious, &link).unwrap();
    let r = w.get(&cred, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let tok = read(&w.token_path());
    assert!(lifetime(&tok) > 3000);
    let meta = fs::metadata(w.token_path()).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (w.victim.0, 0o600));
    // The plants are untouched: not used, not deleted, not followed.
    assert_eq!(fs::metadata(&lock).unwrap().uid(), w.attacker.0);
    for i in 0..4 {
        assert_eq!(
            read(&w.shared.join(format!(".{name}.tmp.{i:016x}"))),
            "plant"
        );
    }
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(read(&precious), "do not clobber");
}

#[test]
#[ignore = "needs root"]
fn unsafe_or_foreign_credential_files_are_refused() {
    let (w, iss, cred) = World::with_credential();
    for mode in [0o640, 0o604, 0o644] {
        fs::set_permissions(&cred, fs::Permissions::from_mode(mode)).unwrap();
        let r = w.get(&cred, &[]);
        assert_one_line(&r, 77);
        assert!(r.stderr.contains("chmod 600"), "{}", r.stderr);
    }
    fs::set_permissions(&cred, fs::Permissions::from_mode(0o644)).unwrap();
    chown(&cred, Some(w.attacker.0), Some(w.attacker.1)).unwrap();
    let r = w.get(&cred, &[]);
    w.refused_as_the_attackers(&r);
    // The credential's fix, not the token file's.
    assert!(!r.stderr.contains("BEARER_TOKEN_FILE"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("chown {} {}", w.victim_name(), cred.display())),
        "{}",
        r.stderr
    );
    assert_eq!(iss.requests("token"), 0);
    assert!(!w.token_path().exists());
}

#[test]
#[ignore = "needs root"]
fn huge_and_garbage_token_files_are_replaced_with_bounded_reads() {
    let (w, _iss, cred) = World::with_credential();
    // 1 GB, sparse: a read that is not capped would show in time and memory.
    let f = fs::File::create(w.token_path()).unwrap();
    f.set_len(1 << 30).unwrap();
    drop(f);
    chown(w.token_path(), Some(w.victim.0), Some(w.victim.1)).unwrap();
    let r = w.get(&cred, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(lifetime(&read(&w.token_path())) > 3000);

    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    fs::write(w.token_path(), &garbage).unwrap();
    let r = w.get(&cred, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(lifetime(&read(&w.token_path())) > 3000);
}

#[test]
#[ignore = "needs root"]
fn wrong_json_types_are_bad_data() {
    let w = World::new();
    for content in [
        r#"{"version":"1","issuer":"http://127.0.0.1:9","client_id":"x"}"#,
        r#"{"version":1,"issuer":["http://127.0.0.1:9"],"client_id":"x"}"#,
        r#"{"version":1,"issuer":"http://127.0.0.1:9","client_id":"x","refresh_token":{"a":1}}"#,
        r#"{"version":1,"issuer":"http://127.0.0.1:9","client_id":"x","audience":[1,2]}"#,
    ] {
        let cred = w.victim_file("cred.json", content, 0o600);
        let r = w.get(&cred, &[]);
        assert_one_line(&r, 65);
        assert_eq!(read(&cred), content);
    }
}

#[test]
#[ignore = "needs root"]
fn plain_http_to_a_remote_issuer_is_refused() {
    let w = World::new();
    let cred = w.victim_file(
        "cred.json",
        r#"{"version":1,"issuer":"http://iam.example.org","client_id":"x","refresh_token":"r"}"#,
        0o600,
    );
    let r = w.get(&cred, &[]);
    assert_one_line(&r, 78);
    assert!(r.stderr.contains("only https"), "{}", r.stderr);
}

/// Serves one fixed discovery document on 127.0.0.1. Not an OpenID provider: the
/// hostile document it serves is the point, and no real provider would serve it.
fn serve_discovery(doc: String) -> (String, std::thread::JoinHandle<()>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let issuer = url.clone();
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let body = doc.replace("ISSUER", &issuer);
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    });
    (url, h)
}

#[test]
#[ignore = "needs root"]
fn discovery_pointing_to_another_host_over_http_is_refused() {
    let w = World::new();
    let (url, h) = serve_discovery(
        r#"{"issuer":"ISSUER","token_endpoint":"http://attacker.example.org/token"}"#.into(),
    );
    let cred = w.victim_file(
        "cred.json",
        &serde_json::json!({"version":1,"issuer":url,"client_id":"x","refresh_token":"secret-rt"})
            .to_string(),
        0o600,
    );
    let r = w.get(&cred, &[]);
    h.join().unwrap();
    assert_one_line(&r, 78);
    assert!(
        r.stderr.contains("attacker.example.org") && r.stderr.contains("only https"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("secret-rt"));
}

#[test]
#[ignore = "needs root"]
fn test_users_are_deleted_when_the_test_ends() {
    let w = World::new();
    let names: Vec<String> = w._users.iter().map(|u| u.name.clone()).collect();
    assert!(names.iter().all(|n| TestUser::exists(n)));
    drop(w);
    for n in names {
        assert!(!TestUser::exists(&n), "user {n} is left behind");
    }
}

#[test]
#[ignore = "needs root"]
fn inspect_refuses_another_users_token_at_the_default_location() {
    let w = World::new();
    let iss = Issuer::start();
    let (_, at) = iss.mint("robot-basic", "openid storage.read:/", None);
    // Discovery finds $XDG_RUNTIME_DIR/bt_u<uid>; here that directory is shared.
    w.plant(&w.token_path(), &at, 0o644);
    let inspect = || {
        w.as_victim()
            .arg("inspect")
            .env("XDG_RUNTIME_DIR", &w.shared)
            .run_within(10)
    };
    let r = inspect();
    w.refused_as_the_attackers(&r);
    assert_eq!(
        r.stdout, "",
        "the planted token is not shown as the victim's"
    );
    // A planted symlink (to a token the victim may read) is not followed either.
    fs::remove_file(w.token_path()).unwrap();
    let readable = w.victim_file("tok", &at, 0o644);
    symlink(&readable, w.token_path()).unwrap();
    let r = inspect();
    assert_one_line(&r, 77);
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
    // A FIFO the attacker planted does not hang it.
    fs::remove_file(w.token_path()).unwrap();
    mkfifo(&w.token_path());
    chown(w.token_path(), Some(w.attacker.0), Some(w.attacker.1)).unwrap();
    let r = inspect();
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "");
}

#[test]
#[ignore = "needs root"]
fn files_in_an_open_directory_without_sticky_bit_get_a_warning() {
    let w = World::new();
    let iss = Issuer::start();
    let rt = iss.refresh_token("robot-basic");
    // Writable by every user, and no sticky bit: anyone may delete or swap names.
    let open = w.shared.parent().unwrap().join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let cred = open.join("cred.json");
    w.plant(
        &cred,
        &serde_json::json!({"version":1,"issuer":iss.url,"client_id":"robot-basic",
            "client_secret":"robot-basic-secret","refresh_token":rt})
        .to_string(),
        0o600,
    );
    chown(&cred, Some(w.victim.0), Some(w.victim.1)).unwrap();
    let token = open.join("bt");
    let get = || w.as_victim().args(line("get", &token, &cred)).run();
    let r = get();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let warned = |r: &Output, file: &Path| {
        r.stderr.lines().any(|l| {
            l.contains("warn")
                && l.contains("no sticky bit")
                && l.contains(&format!("delete {}", file.display()))
        })
    };
    assert!(warned(&r, &token), "token file: {}", r.stderr);
    assert!(warned(&r, &cred), "credential: {}", r.stderr);
    // With the sticky bit (as /tmp has) the directory is fine: no warning.
    fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
    fs::remove_file(&token).unwrap();
    let r = get();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "", "silent");
}
