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
    let rt = iss.refresh_token("robot-basic");
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
    as_user(&mut env.get(out, cred), uid, home)
        .args(["--deadline", "20s"])
        .args(extra)
        .run()
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
    // The fix for root: a directory only root can write (not "make it writable").
    assert!(
        r.stderr
            .contains("move the credential into a directory that only root can write"),
        "{}",
        r.stderr
    );
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

/// Root's robot whose credential is alone on a 64 KiB tmpfs (`small/cred.json`).
struct SmallDisk {
    // First: unmounted before the directory holding it is removed.
    _mount: Tmpfs,
    iss: Issuer,
    env: Env,
    fsdir: PathBuf,
    cred: PathBuf,
    out: PathBuf,
}

impl SmallDisk {
    fn new() -> SmallDisk {
        let env = Env::new();
        let iss = Issuer::start();
        let fsdir = env.path("small");
        let mount = Tmpfs::mount(&fsdir, 64);
        let cred = fsdir.join("cred.json");
        credential_at(&iss, &cred, 0);
        SmallDisk {
            _mount: mount,
            out: env.path("bt"),
            iss,
            env,
            fsdir,
            cred,
        }
    }

    fn get(&self) -> Output {
        get_as(
            &self.env,
            0,
            self.env.dir.path(),
            &self.cred,
            &self.out,
            &[],
        )
    }

    /// With the disk as the test left it, a run sends nothing (73, free space) and the
    /// credential stays `before`; once `filler` is gone, a run works.
    fn refused_until(&self, filler: PathBuf, before: &str) {
        self.iss.reset();
        let r = self.get();
        assert_eq!(r.code, 73, "{}", r.stderr);
        assert_eq!(self.iss.requests("token"), 0, "the refresh token was sent");
        assert!(r.stderr.contains("free space"), "{}", r.stderr);
        assert_eq!(read(&self.cred), before);
        fs::remove_file(filler).unwrap();
        let r = self.get();
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
}

#[test]
#[ignore = "needs root"]
fn a_full_disk_under_the_credential_sends_nothing() {
    let d = SmallDisk::new();
    let before = read(&d.cred);
    let filler = fill(&d.fsdir);
    d.refused_until(filler, &before);
    // The reservation left nothing behind: the credential and its one sidecar.
    assert_eq!(names(&d.fsdir), [".cred.json.lock", "cred.json"]);
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
        let r = env.get(&out, &cred).run();
        assert_eq!(r.code, 73, "{}", r.stderr);
        assert_eq!(iss.requests("token"), 0);
        assert_eq!(read(&cred), before);
    }
}

#[test]
#[ignore = "needs root"]
fn root_checks_the_trust_of_every_token_directory_before_sending() {
    let Robot { iss, env, cred, .. } = Robot::start();
    let before = read(&cred);
    iss.reset();
    {
        // Root writes only through directories no other user controls: checked
        // before the refresh token leaves, too.
        let udir = env.path("user-dir");
        fs::create_dir(&udir).unwrap();
        chown(&udir, ROBOT);
        let r = env.get(udir.join("bt"), &cred).run();
        assert_exit(&r, 77, "nothing was sent");
        assert_eq!(iss.requests("token"), 0);
        assert_eq!(read(&cred), before);
    }
}

/// Spawn `get` and send `sig` while the issuer sits on the refresh.
fn signal_during_a_slow_refresh(sig: libc::c_int) {
    let env = Env::new();
    let iss = Issuer::start();
    let (cred, rt) = env.minted_credential(&iss, "robot-basic");
    let out = env.path("bt");
    iss.reset();
    iss.fault(json!({"kind": "slow", "delay_ms": 1500}));
    let mut child = env.get(&out, &cred).stderr(Stdio::piped()).spawn().unwrap();
    // Wait until the request is at the issuer.
    let t = Instant::now();
    while iss.requests("token") == 0 && t.elapsed() < Duration::from_secs(10) {
        wait_ms(20);
    }
    wait_ms(200);
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, sig) };
    let status = wait_status(&mut child, Duration::from_secs(20));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(sig),
        "the held signal was not honoured: {status:?}"
    );
    // The rotated refresh token was saved before the signal took effect.
    let saved = refresh_token_in(&cred);
    assert_ne!(saved, rt, "the rotated refresh token was lost");
    // ... and it works: the next run renews with it.
    fs::remove_file(&out).ok();
    let r = env.get(&out, &cred).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(iss.requests("token"), 2);
}

#[test]
fn sigterm_during_a_refresh_waits_for_the_save() {
    signal_during_a_slow_refresh(libc::SIGTERM);
}

#[test]
fn sigint_and_sighup_during_a_refresh_wait_for_the_save() {
    signal_during_a_slow_refresh(libc::SIGINT);
    signal_during_a_slow_refresh(libc::SIGHUP);
}

#[test]
fn a_closed_stderr_does_not_abort_a_renewal() {
    let env = Env::new();
    let iss = Issuer::start();
    let (cred, rt) = env.minted_credential(&iss, "robot-basic");
    let out = env.path("bt");
    // `robot-token get -vv ... 2>&1 | true`: every write to stderr fails with EPIPE.
    let mut child = env
        .get(&out, &cred)
        .arg("-vv")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    drop(child.stdout.take());
    let status = wait_status(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_ne!(refresh_token_in(&cred), rt);
    assert!(lifetime(&read(&out)) > 0, "the token was not written");
    // And a failing run still exits with its own code, not an abort.
    let mut child = env
        .get(env.path("bt2"), "missing.json")
        .arg("-vv")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let status = wait_status(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(78), "{status:?}");
}

#[test]
#[ignore = "needs root"]
fn the_process_is_not_dumpable() {
    let env = open_env();
    let iss = Issuer::start();
    let home = dir(&env, "home", ROBOT, 0o700);
    let cred = home.join("cred.json");
    credential_at(&iss, &cred, ROBOT);
    iss.reset();
    iss.fault(json!({"kind": "slow", "delay_ms": 1500}));
    let mut child = as_user(&mut env.get(home.join("bt"), &cred), ROBOT, &home)
        .spawn()
        .unwrap();
    let t = Instant::now();
    while iss.requests("token") == 0 && t.elapsed() < Duration::from_secs(10) {
        wait_ms(20);
    }
    // A dumpable process's /proc files belong to its user, who may read its
    // environment and ptrace it; a non-dumpable one's belong to root.
    let meta = fs::metadata(format!("/proc/{}/environ", child.id())).unwrap();
    let status = wait_status(&mut child, Duration::from_secs(20));
    assert_eq!(meta.uid(), 0, "robot-token is dumpable");
    assert!(status.success());
}

#[test]
fn an_untrusted_certificate_is_a_configuration_error_and_nothing_was_sent() {
    let env = Env::new();
    let pki = env.path("pki");
    fs::create_dir(&pki).unwrap();
    // A certificate from a CA nobody trusts.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    p.subject_alt_names
        .push(rcgen::SanType::IpAddress(std::net::IpAddr::V4(
            std::net::Ipv4Addr::LOCALHOST,
        )));
    let cert = p.self_signed(&key).unwrap();
    fs::write(pki.join("c.pem"), cert.pem()).unwrap();
    fs::write(pki.join("c.key"), key.serialize_pem()).unwrap();
    let mut iss = Issuer::start_https(&pki.join("c.pem"), &pki.join("c.key"), &[]);
    iss.trust(&cert.pem());
    let rt = iss.refresh_token("robot-basic");
    // The issuer's discovery is cached nowhere: name the token endpoint directly,
    // so the refresh itself is the first request that meets the certificate.
    let cred = env.credential(&iss, "robot-basic", Some(&rt));
    let out = env.path("bt");
    let r = env
        .get(&out, &cred)
        .arg("--token-endpoint")
        .arg(format!("{}/token", iss.url))
        .run();
    assert_exit(&r, 78, "certificate");
    assert!(!r.stderr.contains("may have reached"), "{}", r.stderr);
    assert_eq!(refresh_token_in(&cred), rt);
    // With the CA trusted, the same refresh token works, and no run claims that an
    // earlier one sent it.
    let r = env
        .get(&out, &cred)
        .args(["-v", "--cafile"])
        .arg(pki.join("c.pem"))
        .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("earlier run"), "{}", r.stderr);
}

#[test]
fn a_rejected_refresh_token_never_reads_as_a_lost_answer() {
    let iss = Issuer::start();
    let env = Env::new();
    let (cred, _) = env.minted_credential(&iss, "robot-basic");
    let copy = env.write_private("copy.json", &read(&cred));
    let out = env.path("bt");
    let get = |c: &Path| env.get(&out, c).run();
    // The copy renews first: the original's refresh token is dead.
    assert_eq!(get(&copy).code, 0);
    fs::remove_file(&out).unwrap();
    for _ in 0..3 {
        let r = get(&cred);
        assert_exit(&r, 77, "rejected");
        assert!(
            !r.stderr.contains("never got the answer") && !r.stderr.contains("earlier run"),
            "a false claim: {}",
            r.stderr
        );
    }
}

#[test]
fn a_lost_answer_is_named_at_the_next_run_and_only_then() {
    let env = Env::new();
    let iss = Issuer::start();
    let (cred, _) = env.minted_credential(&iss, "robot-basic");
    let out = env.path("bt");
    let get = || env.get(&out, &cred).run();
    iss.fault(json!({"kind": "reset_after_processing"}));
    let r = get();
    assert_eq!(r.code, 75, "{}", r.stderr);
    let r = get();
    assert_exit(&r, 77, "never got the answer");
    // Said once: the answer to the resend settled it.
    let r = get();
    assert_eq!(r.code, 77, "{}", r.stderr);
    assert!(!r.stderr.contains("never got the answer"), "{}", r.stderr);
}

#[test]
fn one_token_file_one_lock_however_its_path_is_spelled() {
    let env = Env::new();
    let iss = Issuer::start();
    // A shared directory (as /tmp): the locks live in the per-user cache, where
    // each spelling used to get a lock of its own.
    let shared = env.path("shared");
    fs::create_dir(&shared).unwrap();
    mode(&shared, 0o1777);
    fs::create_dir(shared.join("sub")).unwrap();
    std::os::unix::fs::symlink(&shared, env.path("link")).unwrap();
    let spellings = [
        shared.join("bt"),
        env.path("link").join("bt"),
        shared.join("sub/../bt"),
    ];
    let secret = env.write_private("secret", "robot-basic-secret");
    iss.reset();
    iss.fault(json!({"kind": "slow", "delay_ms": 300}));
    let handles: Vec<_> = (0..12)
        .map(|i| {
            env.get_client(&iss, "robot-basic", &spellings[i % 3])
                .args(["-m", "60"])
                .args(["--scope", "storage.read:/", "--client-secret-file"])
                .arg(&secret)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut h in handles {
        let s = wait_status(&mut h, Duration::from_secs(60));
        let mut e = String::new();
        h.stderr.take().unwrap().read_to_string(&mut e).unwrap();
        assert!(s.success(), "{e}");
    }
    assert_eq!(iss.requests("token"), 1, "one file, one renewal");
}

#[test]
fn loopback_requests_never_go_through_a_proxy() {
    let iss = Issuer::start();
    let env = Env::new();
    let (cred, _) = env.minted_credential(&iss, "robot-basic");
    // A listener standing in for a proxy: anything that connects is a leak (it
    // would see the refresh token and the Basic header in clear text).
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = proxy.local_addr().unwrap();
    proxy.set_nonblocking(true).unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let s2 = seen.clone();
    let stop = Arc::new(AtomicUsize::new(0));
    let stop2 = stop.clone();
    let t = std::thread::spawn(move || {
        while stop2.load(Ordering::SeqCst) == 0 {
            if let Ok((c, _)) = proxy.accept() {
                s2.fetch_add(1, Ordering::SeqCst);
                drop(c);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let url = format!("http://{addr}");
    let r = env
        .get(env.path("bt"), &cred)
        .env("http_proxy", &url)
        .env("HTTP_PROXY", &url)
        .env("all_proxy", &url)
        .env("ALL_PROXY", &url)
        .env("https_proxy", &url)
        .run();
    stop.store(1, Ordering::SeqCst);
    t.join().unwrap();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "a loopback request went to the proxy"
    );
}

#[test]
fn the_deadline_bounds_every_phase() {
    let env = Env::new();
    let iss = Issuer::start();
    let (cred, _) = env.minted_credential(&iss, "robot-basic");
    let out = env.path("bt");
    iss.fault(json!({"kind": "slow", "delay_ms": 1000}));
    // A random delay, a slow issuer and a deploy hook that never ends: the run
    // still ends within --deadline (plus the hook's 5 s SIGTERM grace, kept inside).
    let t = Instant::now();
    let r = env
        .get(&out, &cred)
        .args(["--deadline", "8s", "--random-delay", "4s"])
        .args(["--deploy-hook", "sleep 60", "--hook-timeout", "1m"])
        .run();
    let took = t.elapsed();
    assert!(
        took < Duration::from_millis(9500),
        "ran {took:?} with --deadline 8s"
    );
    assert_exit(&r, 75, "deploy hook");
    assert!(lifetime(&read(&out)) > 0, "the token was written");
}

#[test]
fn one_sidecar_per_file_and_none_without_a_renewal() {
    let env = Env::new();
    let iss = Issuer::start();
    let d = env.path("robot");
    fs::create_dir(&d).unwrap();
    mode(&d, 0o700);
    let out = d.join("bt");
    // A mistyped credential path: an error, and no file anywhere.
    let r = env.get(&out, d.join("cred.jsn")).run();
    assert_exit(&r, 78, "robot-token init");
    assert!(names(&d).is_empty(), "{:?}", names(&d));
    assert!(!env.path(".cache").exists());
    // A renewal: the credential, the token file, and one lock each.
    let rt = iss.refresh_token("robot-basic");
    let cred = d.join("cred.json");
    fs::copy(env.credential(&iss, "robot-basic", Some(&rt)), &cred).unwrap();
    let get = || env.get(&out, &cred).args(["-m", "60"]).run();
    assert_eq!(get().code, 0);
    assert_eq!(
        names(&d),
        [".bt.lock", ".cred.json.lock", "bt", "cred.json"]
    );
    // status reads the last run from the token file's sidecar.
    let r = run(env.cmd().arg("status").arg(&out));
    assert!(
        r.stdout.contains("last renewal") && r.stdout.contains("rotated"),
        "{}",
        r.stdout
    );
    // A no-op run creates nothing.
    let e = env.path("elsewhere");
    fs::create_dir(&e).unwrap();
    mode(&e, 0o700);
    let fresh = e.join("bt");
    fs::copy(&out, &fresh).unwrap();
    mode(&fresh, 0o600);
    let r = env.get(&fresh, &cred).args(["-m", "60"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(names(&e), ["bt"]);
    // Read-only inputs get no sidecar: a client secret file.
    let s = env.path("secrets");
    fs::create_dir(&s).unwrap();
    mode(&s, 0o700);
    let secret = s.join("secret");
    fs::write(&secret, "robot-basic-secret").unwrap();
    mode(&secret, 0o600);
    let r = env
        .get_client(&iss, "robot-basic", e.join("bt2"))
        .arg("--client-secret-file")
        .arg(&secret)
        .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(names(&s), ["secret"]);
}

#[test]
#[ignore = "needs root"]
fn init_proves_both_files_can_be_written_before_the_login() {
    let env = open_env();
    let iss = Issuer::start();
    let secret = env.write_private("secret", "robot-basic-secret\n");
    let home = dir(&env, "home", ROBOT, 0o700);
    chown(&secret, ROBOT);
    // The robot cannot write the credential's directory: the device code is never
    // asked for, so nobody approves a login whose refresh token would be lost.
    let cdir = dir(&env, "etc-robot", 0, 0o755);
    iss.reset();
    let mut c = env.client_line("init", &iss, "robot-basic", home.join("bt"));
    c.arg("--no-tty")
        .arg("--client-secret-file")
        .arg(&secret)
        .arg("-c")
        .arg(cdir.join("cred.json"));
    let r = as_user(&mut c, ROBOT, &home).run();
    assert_exit(&r, 73, "nothing was sent");
    assert_eq!(iss.requests("device"), 0);
    assert_eq!(iss.requests("discovery"), 0);
    assert!(names(&cdir).is_empty() && names(&home).is_empty());
}

/// The credential's rewrite reserves room for a refresh token of up to 16 KiB before
/// the refresh token leaves: with only 8 KiB free under the credential, nothing is
/// sent (a rotated token that could not be saved would be lost); with room, it works.
#[test]
#[ignore = "needs root"]
fn less_room_than_a_rotated_refresh_token_may_need_sends_nothing() {
    let d = SmallDisk::new();
    // A first renewal creates the credential's sidecar (its lock and record).
    let r = d.get();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let before = read(&d.cred);
    let filler = fill(&d.fsdir);
    let full = fs::metadata(&filler).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(full.saturating_sub(8 * 1024))
        .unwrap();
    fs::write(&d.out, d.iss.mint_expired() + "\n").unwrap();
    d.refused_until(filler, &before);
    assert_eq!(d.iss.requests("token"), 1);
}
