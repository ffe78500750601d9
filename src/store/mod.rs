//! Safe files: every file robot-token reads or writes (token file, credential file,
//! lock, state) goes through here.
//!
//! - Reads never follow a symlink and refuse files another user owns: `/tmp/bt_u<uid>`
//!   is a fixed name in a world-writable directory.
//! - Writes replace atomically: a private temp file (O_EXCL, 0600) in the same
//!   directory, fsync, rename over the target, fsync the directory. Never unlink
//!   first, so a reader sees the old content or the new, never none or a part.
//! - Locks live where no other user can pre-create them.
//!
//! Here: `FileError` and the small helpers the parts share. Beside it: `read`,
//! `atomic` (writes, removal), `trust` (trusted and private directories) and `lock`.

use std::ffi::OsString;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::path::{Path, PathBuf};

use crate::error::io_reason;

mod atomic;
mod lock;
mod read;
mod trust;

pub use self::atomic::{
    atomic_write, prepare, remove_own, remove_own_by, remove_stale_temps, remove_stale_temps_by,
    write_marker, Prepared, WriteMode,
};
pub use self::lock::{lock, lock_existing, lock_path, read_record, Lock, RECORD_LEN};
pub use self::read::{
    check_private, check_target, check_target_by, open_regular, read_capped, read_own, read_own_by,
};
pub use self::trust::{cache_dir, ensure_private_dir, is_private_dir, trusted_dir};

/// What can go wrong with a file, with enough detail for a message that says
/// what to do. Callers pick the exit code.
#[derive(Debug)]
pub enum FileError {
    Symlink(PathBuf),
    ForeignOwner {
        path: PathBuf,
        uid: u32,
    },
    /// A secret (credential, key, client secret, keytab) that another user owns.
    ForeignSecret {
        path: PathBuf,
        uid: u32,
    },
    NotRegular(PathBuf),
    TooLarge {
        path: PathBuf,
        max: usize,
    },
    UnsafeMode {
        path: PathBuf,
        mode: u32,
    },
    UnsafeDir {
        path: PathBuf,
    },
    Io {
        path: PathBuf,
        op: &'static str,
        err: io::Error,
    },
    LockTimeout(PathBuf),
    /// A directory on the way to a file root writes that another user controls.
    UntrustedDir {
        path: PathBuf,
        uid: u32,
    },
}

impl FileError {
    /// The same error about a secret file: another owner gets the secret's fix, not
    /// the token file's.
    pub fn secret(self) -> FileError {
        match self {
            FileError::ForeignOwner { path, uid } => FileError::ForeignSecret { path, uid },
            e => e,
        }
    }

    pub fn io(path: &Path, op: &'static str, err: io::Error) -> FileError {
        FileError::Io {
            path: path.to_path_buf(),
            op,
            err,
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Symlink(p) => write!(f, "{} is a symbolic link; refusing to follow it: remove it", p.display()),
            FileError::ForeignOwner { path, uid } => write!(
                f,
                "{} is owned by {} (uid {uid}), not by you ({}): have it removed, or set BEARER_TOKEN_FILE to a path you own",
                path.display(),
                user_name(*uid),
                user_name(euid())
            ),
            FileError::ForeignSecret { path, uid } => write!(
                f,
                "{} is owned by {} (uid {uid}), not by you ({}): a secret must belong to the \
                 account robot-token runs as: run robot-token as {}, or have root give it to you \
                 (`chown {} {}`)",
                path.display(),
                user_name(*uid),
                user_name(euid()),
                user_name(*uid),
                user_name(euid()),
                path.display()
            ),
            FileError::NotRegular(p) => write!(
                f,
                "{} is not a regular file (a FIFO, device or directory is never waited on)",
                p.display()
            ),
            FileError::TooLarge { path, max } => {
                write!(f, "{} is larger than {} KiB", path.display(), max / 1024)
            }
            FileError::UnsafeMode { path, mode } => write!(
                f,
                "{} has mode {:04o}, readable or writable by others: run `chmod 600 {}`",
                path.display(),
                mode & 0o7777,
                path.display()
            ),
            FileError::UnsafeDir { path } => write!(
                f,
                "{} is not a private directory (it must be owned by you and not writable by others)",
                path.display()
            ),
            FileError::Io { path, op, err } => {
                write!(f, "cannot {op} {}: {}", path.display(), io_reason(err))
            }
            FileError::UntrustedDir { path, uid } => write!(
                f,
                "{} is owned by {} or writable by others: every directory on the way to a file \
                 that root writes must be owned by root and not writable by others (only the \
                 last may belong to the file's owner), so no user can swap it for a symlink",
                path.display(),
                user_name(*uid)
            ),
            FileError::LockTimeout(p) => write!(
                f,
                "another robot-token run still holds the lock {}; try again later",
                p.display()
            ),
        }
    }
}

pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The login name of a uid, or the number when there is none.
pub fn user_name(uid: u32) -> String {
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to live, correctly sized storage owned here;
    // getpwuid_r writes only within `buf` and sets `result` to `&pwd` or null.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return uid.to_string();
    }
    // SAFETY: on success pw_name points to a NUL-terminated string inside `buf`.
    unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) }
        .to_string_lossy()
        .into_owned()
}

/// The home directory from the password database, for when `$HOME` is unset.
pub(super) fn passwd_home(uid: u32) -> Option<PathBuf> {
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: as in `user_name`.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() || pwd.pw_dir.is_null() {
        return None;
    }
    // SAFETY: on success pw_dir points to a NUL-terminated string inside `buf`.
    let dir = unsafe { std::ffi::CStr::from_ptr(pwd.pw_dir) };
    Some(PathBuf::from(dir.to_string_lossy().into_owned()))
}

pub(super) fn random_u64() -> u64 {
    // RandomState is seeded from the OS once per process and varied per instance:
    // enough for unpredictable temp names, which O_EXCL makes safe anyway.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// A uniformly distributed fraction in [0, 1), for backoff jitter and random delays.
pub fn random_fraction() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

pub(super) fn file_name(path: &Path) -> OsString {
    path.file_name()
        .map(OsString::from)
        .unwrap_or_else(|| OsString::from("token"))
}

pub(super) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests;
