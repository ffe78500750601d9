//! The integration-test harness, one way to do each thing:
//! - [`Env`]: a private directory and a scrubbed environment for each run of the
//!   binary; `env.get(&out, &cred).args(["-m", "60"]).run()` is a crontab line;
//! - [`Robot`]: the usual issuer + credential + token file;
//! - the peers, each started one way and stopped on drop: [`Issuer`] (tests/peer,
//!   oidc-provider), [`vault`] (tests/vault: MIT KDC and the htvault-config
//!   look-alike), [`htcondor`] (fake HTCondor tools), [`proxy`] (tinyproxy),
//!   [`tls`] (a test CA);
//! - [`process`]: children run with a time limit, so a hang fails the test;
//! - [`users`]: system users for the tests that need root.
// Each test binary compiles the whole harness and uses a part of it.
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};

use serde_json::Value;

mod env;
pub mod htcondor;
mod issuer;
pub mod process;
pub mod proxy;
pub mod tls;
mod users;
pub mod vault;

pub use env::*;
pub use issuer::*;
pub use process::*;
pub use users::*;

/// The scope of the credentials most tests write (`Env::credential`).
pub const SCOPE: &str = "openid offline_access storage.read:/";

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

/// A JSON file (a credential) as a value.
pub fn read_json(p: &Path) -> Value {
    serde_json::from_str(&read(p)).unwrap()
}

/// The refresh token a credential file holds ("" when it holds none).
pub fn refresh_token_in(cred: &Path) -> String {
    read_json(cred)["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The names in `dir`, sorted (hidden files included).
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The temp files (`.NAME.tmp.<hex>`) left in `dir`.
pub fn temp_files(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.contains(".tmp."))
        .collect()
}

/// The documented exit code, and stderr says `words`.
#[track_caller]
pub fn assert_exit(r: &Output, code: i32, words: &str) {
    assert_eq!(r.code, code, "{}", r.stderr);
    assert!(r.stderr.contains(words), "{}", r.stderr);
}

/// The documented exit code and exactly one line on stderr.
#[track_caller]
pub fn assert_one_line(r: &Output, code: i32) {
    assert_eq!(r.code, code, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
}

/// Seconds until a JWT's exp.
pub fn lifetime(token: &str) -> i64 {
    robot_token::token::expiry(robot_token::token::trim(token)).unwrap() - robot_token::token::now()
}

/// What robot-token writes after a renewal: one access token that `iss` issued to
/// `client`, fresh (the issuer's 1 h lifetime), a single `\n`, mode 0600. Returns
/// the decoded token for further checks.
pub fn assert_issued_token(path: &Path, iss: &Issuer, client: &str) -> robot_token::token::Jwt {
    use std::os::unix::fs::MetadataExt;
    let text = read(path);
    let what = path.display();
    assert!(
        text.ends_with('\n') && text.matches('\n').count() == 1 && !text.contains('\r'),
        "{what}: not one line ending in \\n: {text:?}"
    );
    let jwt = robot_token::token::decode(text.trim_end())
        .unwrap_or_else(|e| panic!("{what}: not a JWT ({e:?}): {text:?}"));
    assert_eq!(jwt.str_claim("iss"), Some(iss.url.as_str()), "{what}: iss");
    assert_eq!(
        jwt.str_claim("client_id"),
        Some(client),
        "{what}: client_id"
    );
    let left = lifetime(&text);
    assert!(left > 3000 && left <= 3600, "{what}: {left} s left");
    let mode = std::fs::metadata(path).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o600, "{what}: mode {mode:o}");
    jwt
}

pub fn is_root() -> bool {
    robot_token::store::euid() == 0
}

/// For the tests marked `#[ignore = "needs root"]` (scripts/test.sh runs them with
/// `--include-ignored` as root, as CI is): fail loudly, never pass by skipping.
pub fn require_root() {
    assert!(
        is_root(),
        "this test needs root (it creates users or chowns files); run it as root"
    );
}

/// A FIFO at `p` (mode 0600): whatever opens it for reading blocks until a writer comes.
pub fn mkfifo(p: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}
