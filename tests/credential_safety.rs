//! The credential is never lost, and the tool never misleads (issue 13): everything
//! that can stop the save of a rotated refresh token is found before the old one is
//! sent; signals and a closed stderr cannot cut the window between the issuer's
//! rotation and the save; certificate failures, lost answers and rejections are
//! reported as what they are. Every test runs against the real issuer (tests/peer)
//! and counts the token requests that reached it.
//!
//! Tests that switch user or mount a file system need root (CI runs as root).

mod common;

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// A uid with no account: the robot in tests that must not run as root. No user is
/// created, so nothing is left behind.
const ROBOT: u32 = 64_913;

fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(uid)).unwrap();
}

fn mode(p: &Path, m: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
}

/// A directory owned by `uid` with `m`.
fn dir(env: &Env, name: &str, uid: u32, m: u32) -> PathBuf {
    let d = env.path(name);
    fs::create_dir_all(&d).unwrap();
    chown(&d, uid);
    mode(&d, m);
    d
}

/// A credential for the robot-basic client holding a real refresh token.
fn credential_at(iss: &Issuer, path: &Path, uid: u32) -> String {
    let (rt, _) = iss.mint("robot-basic", "openid offline_access storage.read:/", None);
    let v = json!({
        "version": 1,
        "issuer": iss.url,
        "client_id": "robot-basic",
        "client_secret": "robot-basic-secret",
        "scope": "openid offline_access storage.read:/",
        "refresh_token": rt,
    });
    fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    chown(path, uid);
    mode(path, 0o600);
    rt
}

/// `get` as `uid` (when not root), with HOME in a directory it owns.
fn get_as(env: &Env, uid: u32, home: &Path, cred: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut c = env.cmd();
    c.env("HOME", home)
        .current_dir(home)
        .args(["get", "--deadline", "20s", "-c"])
        .arg(cred)
        .arg("-o")
        .arg(out)
        .args(extra);
    if uid != 0 {
        c.uid(uid).gid(uid);
    }
    run(&mut c)
}

fn refresh_token_in(cred: &Path) -> String {
    let v: serde_json::Value = serde_json::from_str(&read(cred)).unwrap();
    v["refresh_token"].as_str().unwrap_or_default().to_string()
}

/// A world-traversable test directory, so another uid can reach what is inside.
fn open_env() -> Env {
    let env = Env::new();
    mode(env.dir.path(), 0o755);
    env
}

#[test]
#[ignore = "needs root"]
fn credential_in_a_directory_the_robot_cannot_write_sends_nothing() {
    let env = open_env();
    let iss = Issuer::start();
    // The credential is the robot's, 0600, in a root-owned 0755 directory.
    let cdir = dir(&env, "etc-robot", 0, 0o755);
    let cred = cdir.join("cred.json");
    let rt = credential_at(&iss, &cred, ROBOT);
    let before = read(&cred);
    let home = dir(&env, "home", ROBOT, 0o700);
    let out = home.join("bt");
    iss.reset();
    let r = get_as(&env, ROBOT, &home, &cred, &out, &[]);
    assert_eq!(r.code, 73, "{}", r.stderr);
    assert_eq!(iss.requests("token"), 0, "the refresh token was sent");
    assert!(
        r.stderr.contains(&cdir.display().to_string()),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Nothing was sent"), "{}", r.stderr);
    // The fix for a directory it cannot write, not the one for a full disk.
    assert!(r.stderr.contains("writable by"), "{}", r.stderr);
    assert!(!r.stderr.contains("free space"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(!r.stderr.contains(&rt));
    assert_eq!(read(&cred), before, "the credential changed");
    assert!(!out.exists());
    // The fix the message names works, and the credential still does.
    chown(&cdir, ROBOT);
    let r = get_as(&env, ROBOT, &home, &cred, &out, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.requests("token"), 1);
    assert_ne!(
        refresh_token_in(&cred),
        rt,
        "the rotated refresh token was not saved"
    );
    assert!(lifetime(&read(&out)) > 0);
}

#[test]
#[ignore = "needs root"]
fn root_with_a_credential_under_a_user_writable_directory_sends_nothing() {
    let env = open_env();
    let iss = Issuer::start();
    let cdir = dir(&env, "user-dir", ROBOT, 0o755);
    let cred = cdir.join("cred.json");
    credential_at(&iss, &cred, 0);
    let before = read(&cred);
    let out = env.path("bt");
    iss.reset();
    let r = get_as(&env, 0, env.dir.path(), &cred, &out, &[]);
    assert_eq!(r.code, 77, "{}", r.stderr);
    assert_eq!(iss.requests("token"), 0, "the refresh token was sent");
    assert!(r.stderr.contains("Nothing was sent"), "{}", r.stderr);
    assert_eq!(read(&cred), before);
    // Moved under root's trust, it works.
    chown(&cdir, 0);
    let r = get_as(&env, 0, env.dir.path(), &cred, &out, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// A tmpfs of `kib` KiB mounted at `at`; unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, kib: u32) -> Tmpfs {
        fs::create_dir_all(at).unwrap();
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k,mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs");
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Fill the file system of `dir` to the last block.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let p = dir.join("filler");
    let mut f = fs::File::create(&p).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    while f.write_all(&[0]).is_ok() {}
    let _ = f.sync_all();
    p
}

#[test]
#[ignore = "needs root"]
fn a_full_disk_under_the_credential_sends_nothing() {
    let env = Env::new();
    let iss = Issuer::start();
    let fsdir = env.path("small");
    let _m = Tmpfs::mount(&fsdir, 64);
    let cred = fsdir.join("cred.json");
    credential_at(&iss, &cred, 0);
    let before = read(&cred);
    let out = env.path("bt");
    let filler = fill(&fsdir);
    iss.reset();
    let r = get_as(&env, 0, env.dir.path(), &cred, &out, &[]);
    assert_eq!(r.code, 73, "{}", r.stderr);
    assert_eq!(iss.requests("token"), 0, "the refresh token was sent");
    assert!(r.stderr.contains("free space"), "{}", r.stderr);
    assert_eq!(read(&cred), before);
    fs::remove_file(filler).unwrap();
    let r = get_as(&env, 0, env.dir.path(), &cred, &out, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The reservation left nothing behind: the credential and its one sidecar.
    let mut names: Vec<String> = fs::read_dir(&fsdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [".cred.json.lock", "cred.json"]);
}

#[test]
fn no_token_file_writable_means_nothing_is_redeemed() {
    let env = Env::new();
    let iss = Issuer::start();
    let cred = env.credential(
        &iss,
        "robot-basic",
        Some(
            &iss.mint("robot-basic", "openid offline_access storage.read:/", None)
                .0,
        ),
    );
    let before = read(&cred);
    iss.reset();
    // The output's directory does not exist; or a directory sits at its name.
    fs::create_dir(env.path("bt")).unwrap();
    for out in [env.path("missing-dir/bt"), env.path("bt")] {
        let r = run(env.cmd().args(["get", "-c"]).arg(&cred).arg("-o").arg(&out));
        assert_eq!(r.code, 73, "{}", r.stderr);
        assert_eq!(iss.requests("token"), 0);
        assert_eq!(read(&cred), before);
    }
}

#[test]
#[ignore = "needs root"]
fn root_checks_the_trust_of_every_token_directory_before_sending() {
    let env = Env::new();
    let iss = Issuer::start();
    let (rt, _) = iss.mint("robot-basic", "openid offline_access storage.read:/", None);
    let cred = env.credential(&iss, "robot-basic", Some(&rt));
    let before = read(&cred);
    iss.reset();
    {
        // Root writes only through directories no other user controls: checked
        // before the refresh token leaves, too.
        let udir = env.path("user-dir");
        fs::create_dir(&udir).unwrap();
        chown(&udir, ROBOT);
        let r = run(env
            .cmd()
            .args(["get", "-c"])
            .arg(&cred)
            .arg("-o")
            .arg(udir.join("bt")));
        assert_eq!(r.code, 77, "{}", r.stderr);
        assert!(r.stderr.contains("nothing was sent"), "{}", r.stderr);
        assert_eq!(iss.requests("token"), 0);
        assert_eq!(read(&cred), before);
    }
}
