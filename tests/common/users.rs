//! System users for the tests that need root: created per test, deleted on drop.

use std::path::Path;
use std::process::{Command, Stdio};

use super::require_root;

/// A system user (with its own group) for one test, deleted with its group on drop.
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl TestUser {
    /// A new user named `rt<tag><pid>x<n>`: unique per test, so that parallel tests
    /// and test binaries never share or delete each other's users.
    pub fn create(tag: &str) -> TestUser {
        TestUser::add(
            tag,
            &[
                "--no-create-home".as_ref(),
                "--shell".as_ref(),
                "/usr/sbin/nologin".as_ref(),
            ],
        )
    }

    /// A user cron can run a job as: a login shell, and `home` (which the caller
    /// makes) as its home directory.
    pub fn with_home(tag: &str, home: &Path) -> TestUser {
        TestUser::add(
            tag,
            &[
                "--shell".as_ref(),
                "/bin/sh".as_ref(),
                "--home-dir".as_ref(),
                home.as_os_str(),
            ],
        )
    }

    fn add(tag: &str, opts: &[&std::ffi::OsStr]) -> TestUser {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        require_root();
        let name = format!(
            "rt{tag}{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let st = Command::new("useradd")
            .arg("--system")
            .args(opts)
            .arg("--user-group")
            .arg(&name)
            .status()
            .expect("useradd (Debian package passwd)");
        assert!(st.success(), "useradd {name}");
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        TestUser {
            uid: id("-u"),
            gid: id("-g"),
            name,
        }
    }

    /// Does a user of this name exist?
    pub fn exists(name: &str) -> bool {
        Command::new("id")
            .arg(name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // userdel also removes the user's own group (USERGROUPS_ENAB).
        let ok = Command::new("userdel")
            .arg(&self.name)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("warning: could not delete test user {}", self.name);
        }
    }
}
