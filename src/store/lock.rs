//! Locks, one per file identity (its canonical directory and name, or device and
//! inode in the private lock directory), each with a 4 KiB record written in place:
//! the credential's in-flight marker and the token file's last run.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::read::{check_meta, read_own};
use super::trust::{cache_dir, ensure_private_dir, is_private_dir};
use super::{absolute, file_name, parent_dir, FileError};

/// The one sidecar of `target`: its lock, whose content is a small record (the
/// in-flight marker of a credential, the last run of a token file). `.NAME.lock`
/// beside it when its directory is private; otherwise in the per-user cache
/// directory. Keyed by the file's identity, not by how its path is spelled: the
/// real directory (symlinks and `..` resolved) and, in the cache, its device and
/// inode, so every spelling of one file meets on one lock. The same target always
/// maps to the same lock, whatever the caller's environment besides `$HOME` (cron
/// and interactive shells must meet on it).
pub fn lock_path(target: &Path) -> Result<PathBuf, FileError> {
    let target = absolute(target);
    let parent = parent_dir(&target);
    let real = fs::canonicalize(parent).map_err(|e| FileError::io(parent, "use directory", e))?;
    let meta = fs::metadata(&real).map_err(|e| FileError::io(&real, "use directory", e))?;
    let name = file_name(&target);
    let keyed = || {
        let mut n = OsString::from(format!("{:x}-{:x}-", meta.dev(), meta.ino()));
        n.push(&name);
        n.push(".lock");
        n
    };
    if let Some(dir) = std::env::var_os("ROBOT_TOKEN_LOCK_DIR").filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(dir);
        ensure_private_dir(&dir)?;
        return Ok(dir.join(keyed()));
    }
    if is_private_dir(&real) {
        let mut n = OsString::from(".");
        n.push(&name);
        n.push(".lock");
        return Ok(real.join(n));
    }
    let dir = cache_dir()
        .ok_or_else(|| FileError::UnsafeDir {
            path: PathBuf::from("$HOME/.cache/robot-token"),
        })?
        .join("locks");
    ensure_private_dir(&dir)?;
    Ok(dir.join(keyed()))
}

/// An exclusive advisory lock, released on drop (the kernel releases it if we die).
#[derive(Debug)]
pub struct Lock {
    file: File,
    pub path: PathBuf,
}

/// The size of a lock file's record. Always written whole, in place (a rename would
/// give the lock a new inode and split the runs that wait on it), padded with
/// spaces: once the file has this size, rewriting the record needs no new block, so
/// a full disk cannot stop it.
pub const RECORD_LEN: usize = 4096;

impl Lock {
    /// The record this lock file holds: a JSON object, empty when there is none.
    pub fn record(&self) -> serde_json::Map<String, serde_json::Value> {
        use std::os::unix::fs::FileExt;
        let mut data = vec![0u8; RECORD_LEN];
        let mut n = 0;
        while n < RECORD_LEN {
            match self.file.read_at(&mut data[n..], n as u64) {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
        }
        data.truncate(n);
        parse_record(&data)
    }

    /// Replace the record. Fails (and changes nothing) when it does not fit.
    pub fn set_record(
        &self,
        record: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), FileError> {
        use std::os::unix::fs::FileExt;
        let mut data = serde_json::to_vec(record).unwrap_or_default();
        if data.len() >= RECORD_LEN {
            return Err(FileError::TooLarge {
                path: self.path.clone(),
                max: RECORD_LEN,
            });
        }
        data.resize(RECORD_LEN - 1, b' ');
        data.push(b'\n');
        self.file
            .write_all_at(&data, 0)
            .map_err(|e| FileError::io(&self.path, "write", e))
    }

    /// Make sure the record can later be written without new space: the first use
    /// of a lock file fills it to its full size. Called before sending a request
    /// whose outcome the record must remember.
    pub fn reserve_record(&self) -> Result<(), FileError> {
        let len = self
            .file
            .metadata()
            .map_err(|e| FileError::io(&self.path, "reserve space in", e))?
            .len();
        if len >= RECORD_LEN as u64 {
            return Ok(());
        }
        let current = self.record();
        self.set_record(&current)
            .and_then(|()| {
                self.file
                    .sync_all()
                    .map_err(|e| FileError::io(&self.path, "write", e))
            })
            .map_err(|e| match e {
                FileError::Io { path, err, .. } => FileError::Io {
                    path,
                    op: "reserve space in",
                    err,
                },
                e => e,
            })
    }
}

fn parse_record(data: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::from_slice(data.trim_ascii()) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    }
}

/// Read the record of `target`'s lock without taking the lock or creating anything
/// (for `status` and `check`). A record being rewritten at this instant may read as
/// torn: it is read again a few times.
pub fn read_record(target: &Path) -> serde_json::Map<String, serde_json::Value> {
    let Ok(p) = lock_path_existing(target) else {
        return serde_json::Map::new();
    };
    for _ in 0..3 {
        match read_own(&p, RECORD_LEN) {
            Ok(Some(d)) => {
                let m = parse_record(&d);
                if !m.is_empty() || d.trim_ascii().is_empty() {
                    return m;
                }
            }
            _ => return serde_json::Map::new(),
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    serde_json::Map::new()
}

/// Open the lock of `target` only if it exists, without waiting: for a run that
/// wants to add to a record after its locks were released. `None` when no renewal
/// ever took it (nothing to add to; nothing is created).
pub fn lock_existing(target: &Path, deadline: Instant) -> Option<Lock> {
    let p = lock_path_existing(target).ok()?;
    if fs::symlink_metadata(&p).is_err() {
        return None;
    }
    lock(&p, deadline).ok()
}

/// [`lock_path`] without creating the cache directory.
fn lock_path_existing(target: &Path) -> Result<PathBuf, FileError> {
    if std::env::var_os("ROBOT_TOKEN_LOCK_DIR").is_none()
        && cache_dir().is_none_or(|d| !d.join("locks").is_dir())
    {
        // Beside the target, or nowhere yet.
        let target = absolute(target);
        let real = fs::canonicalize(parent_dir(&target))
            .map_err(|e| FileError::io(&target, "use directory", e))?;
        if !is_private_dir(&real) {
            return Err(FileError::UnsafeDir { path: real });
        }
    }
    lock_path(target)
}

/// Take the lock at `path`, waiting until `deadline`.
pub fn lock(path: &Path, deadline: Instant) -> Result<Lock, FileError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                FileError::Symlink(path.to_path_buf())
            } else {
                FileError::io(path, "open lock file", e)
            }
        })?;
    let meta = file
        .metadata()
        .map_err(|e| FileError::io(path, "open lock file", e))?;
    check_meta(path, &meta)?;
    let mut pause = Duration::from_millis(2);
    loop {
        match file.try_lock() {
            Ok(()) => {
                return Ok(Lock {
                    file,
                    path: path.to_path_buf(),
                })
            }
            Err(fs::TryLockError::WouldBlock) => {
                if crate::clock::from_now(pause) > deadline {
                    return Err(FileError::LockTimeout(path.to_path_buf()));
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(fs::TryLockError::Error(e)) => return Err(FileError::io(path, "lock", e)),
        }
    }
}
