//! Safe files: every file robot-token reads or writes (token file, credential file,
//! lock, state) goes through here.
//!
//! - Reads never follow a symlink and refuse files another user owns: `/tmp/bt_u<uid>`
//!   is a fixed name in a world-writable directory.
//! - Writes replace atomically: a private temp file (O_EXCL, 0600) in the same
//!   directory, fsync, rename over the target, fsync the directory. Never unlink
//!   first, so a reader sees the old content or the new, never none or a part.
//! - Locks live where no other user can pre-create them.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::io_reason;

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
fn passwd_home(uid: u32) -> Option<PathBuf> {
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

/// Read a file we own, without following a symlink at its last component.
/// `Ok(None)` when it does not exist. Refuses other owners, non-regular files and
/// anything over `max` bytes.
pub fn read_own(path: &Path, max: usize) -> Result<Option<Vec<u8>>, FileError> {
    read_own_by(path, max, None)
}

/// [`read_own`], also accepting a file owned by `also` (a token file that root
/// keeps for a service user).
pub fn read_own_by(
    path: &Path,
    max: usize,
    also: Option<u32>,
) -> Result<Option<Vec<u8>>, FileError> {
    let file = match OpenOptions::new()
        .read(true)
        // O_NONBLOCK: a FIFO planted at the path must not hang the cron job.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(FileError::Symlink(path.to_path_buf()))
        }
        Err(e) => return Err(FileError::io(path, "read", e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| FileError::io(path, "read", e))?;
    check_meta_by(path, &meta, also)?;
    if meta.len() > max as u64 {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            max,
        });
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    // Bounded even if the file grows between fstat and read.
    file.take(max as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| FileError::io(path, "read", e))?;
    if data.len() > max {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            max,
        });
    }
    Ok(Some(data))
}

fn check_meta(path: &Path, meta: &fs::Metadata) -> Result<(), FileError> {
    check_meta_by(path, meta, None)
}

fn check_meta_by(path: &Path, meta: &fs::Metadata, also: Option<u32>) -> Result<(), FileError> {
    if meta.file_type().is_symlink() {
        return Err(FileError::Symlink(path.to_path_buf()));
    }
    if !meta.file_type().is_file() {
        return Err(FileError::NotRegular(path.to_path_buf()));
    }
    if meta.uid() != euid() && Some(meta.uid()) != also {
        return Err(FileError::ForeignOwner {
            path: path.to_path_buf(),
            uid: meta.uid(),
        });
    }
    Ok(())
}

/// Refuse a file with group or other permission bits (as ssh does for keys).
pub fn check_private(path: &Path, meta: &fs::Metadata) -> Result<(), FileError> {
    if meta.uid() != euid() {
        return Err(FileError::ForeignSecret {
            path: path.to_path_buf(),
            uid: meta.uid(),
        });
    }
    if meta.mode() & 0o077 != 0 {
        return Err(FileError::UnsafeMode {
            path: path.to_path_buf(),
            mode: meta.mode(),
        });
    }
    Ok(())
}

/// Open a file for reading without ever waiting on it: `O_NONBLOCK`, so a FIFO or
/// device at the path cannot hang a cron job, then refuse anything but a regular file
/// (judged on the open descriptor, so it cannot be swapped after the check).
/// Symlinks are followed; owner and mode are the caller's to check on the metadata.
pub fn open_regular(path: &Path) -> Result<(File, fs::Metadata), FileError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| FileError::io(path, "read", e))?;
    let meta = file
        .metadata()
        .map_err(|e| FileError::io(path, "read", e))?;
    if !meta.is_file() {
        return Err(FileError::NotRegular(path.to_path_buf()));
    }
    Ok((file, meta))
}

/// Read at most `max` bytes of a file opened by [`open_regular`]; more is an error,
/// even if the file grew after it was checked. The bytes are wiped on drop (and the
/// buffer is sized up front, so no reallocation leaves a copy behind).
pub fn read_capped(
    path: &Path,
    (file, meta): (File, fs::Metadata),
    max: usize,
) -> Result<zeroize::Zeroizing<Vec<u8>>, FileError> {
    let mut data = zeroize::Zeroizing::new(Vec::with_capacity(
        usize::try_from(meta.len()).unwrap_or(max).min(max) + 1,
    ));
    file.take(max as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| FileError::io(path, "read", e))?;
    if data.len() > max {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            max,
        });
    }
    Ok(data)
}

/// Check that a write may replace `path`: absent, or a regular file we own.
pub fn check_target(path: &Path) -> Result<(), FileError> {
    check_target_by(path, None)
}

/// [`check_target`], also accepting a file owned by `also`.
pub fn check_target_by(path: &Path, also: Option<u32>) -> Result<(), FileError> {
    match fs::symlink_metadata(path) {
        Ok(meta) => check_meta_by(path, &meta, also),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(FileError::io(path, "inspect", e)),
    }
}

fn random_u64() -> u64 {
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

fn file_name(path: &Path) -> OsString {
    path.file_name()
        .map(OsString::from)
        .unwrap_or_else(|| OsString::from("token"))
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn temp_prefix(target: &Path) -> OsString {
    let mut s = OsString::from(".");
    s.push(file_name(target));
    s.push(".tmp.");
    s
}

/// Deletes the temp file unless the rename consumed it.
struct TempGuard<'a>(Option<&'a Path>);

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.0 {
            let _ = fs::remove_file(p);
        }
    }
}

/// Options for a private file write.
#[derive(Clone, Copy, Debug)]
pub struct WriteMode {
    pub mode: u32,
    /// Owner and group to give the file before it appears (root only).
    pub owner: Option<(u32, u32)>,
}

impl Default for WriteMode {
    fn default() -> Self {
        WriteMode {
            mode: 0o600,
            owner: None,
        }
    }
}

/// Test-only hook for the crash-consistency suite: stretch the window between the
/// temp file's write and its rename so that SIGKILL lands inside it. Compiled out of
/// normal builds.
fn test_delay() {
    #[cfg(feature = "test-hooks")]
    if let Some(ms) = std::env::var("ROBOT_TOKEN_TEST_WRITE_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// Test-only hook for the crash-consistency tests: with
/// `ROBOT_TOKEN_TEST_KILL_AFTER_WRITES=N`, SIGKILL this process right after its Nth
/// durable write (a completed `Prepared::commit`/`commit_new` or `atomic_create`:
/// each rename or link made durable). Deterministic where
/// a timed kill is not: N = 1 stops a renewal after its first file is on disk, which
/// must be the rotated credential, never the token file. Compiled out of normal builds.
fn test_crash_point() {
    #[cfg(feature = "test-hooks")]
    {
        use std::sync::atomic::{AtomicU64, Ordering};
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let done = WRITES.fetch_add(1, Ordering::SeqCst) + 1;
        let kill_at = std::env::var("ROBOT_TOKEN_TEST_KILL_AFTER_WRITES")
            .ok()
            .and_then(|v| v.parse::<u64>().ok());
        if kill_at == Some(done) {
            // SAFETY: kill(2) on our own pid; nothing of ours is touched.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
    }
}

/// Atomically replace `target` with `data`.
pub fn atomic_write(target: &Path, data: &[u8], how: WriteMode) -> Result<(), FileError> {
    prepare(target, data.len() as u64, how)?.commit(data)
}

/// A replacement of `target` made ready before the data exists: the directory is
/// checked (the trust rule for root), the private temp file is created beside the
/// target and its space reserved. Used before sending a request whose answer must
/// not be lost (a rotated refresh token): every failure the write can meet, short of
/// a power cut, shows here, while nothing was sent yet. Dropped uncommitted, the
/// temp file is removed.
#[derive(Debug)]
pub struct Prepared {
    file: File,
    tmp: PathBuf,
    target: PathBuf,
    reserved: u64,
    committed: bool,
}

/// Check and prepare the replacement of `target`, reserving `reserve` bytes.
pub fn prepare(target: &Path, reserve: u64, how: WriteMode) -> Result<Prepared, FileError> {
    let other = how.owner.map(|(u, _)| u).filter(|u| *u != euid());
    // As root, write only through directories no other user controls, named by
    // their real path: then nobody can swap one for a symlink between check and rename.
    let target = if euid() == 0 {
        trusted_dir(parent_dir(target), other)?.join(file_name(target))
    } else {
        warn_open_dir(target);
        target.to_path_buf()
    };
    check_target_by(&target, other)?;
    let (file, tmp) = create_temp(&target, how)?;
    let mut p = Prepared {
        file,
        tmp,
        target,
        reserved: 0,
        committed: false,
    };
    p.reserve(reserve)?;
    Ok(p)
}

impl Prepared {
    /// Make sure `len` bytes can be written without the file system running out
    /// of space: allocate them now (fallocate; zeros where it is not supported).
    fn reserve(&mut self, len: u64) -> Result<(), FileError> {
        if len <= self.reserved {
            return Ok(());
        }
        let fail = |e| FileError::io(&self.target, "reserve space for", e);
        let n = libc::off_t::try_from(len)
            .map_err(|_| fail(io::Error::from(io::ErrorKind::FileTooLarge)))?;
        // SAFETY: fallocate on a file descriptor we own; no memory is passed.
        let rc = unsafe { libc::fallocate(std::os::fd::AsRawFd::as_raw_fd(&self.file), 0, 0, n) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EOPNOTSUPP) {
                return Err(fail(e));
            }
            // No fallocate here (some network file systems): real zeros hold the space.
            use std::os::unix::fs::FileExt;
            let zeros = vec![0u8; len as usize];
            self.file.write_all_at(&zeros, 0).map_err(fail)?;
            self.file.sync_all().map_err(fail)?;
        }
        self.reserved = len;
        Ok(())
    }

    /// Write `data` into the reserved temp file, sync it, and rename it over the
    /// target; then sync the directory so the rename survives a crash.
    pub fn commit(mut self, data: &[u8]) -> Result<(), FileError> {
        self.write_synced(data)?;
        fs::rename(&self.tmp, &self.target)
            .map_err(|e| FileError::io(&self.target, "replace", e))?;
        self.committed = true;
        sync_dir(&self.target);
        test_crash_point();
        Ok(())
    }

    /// `data` into the temp file, the reservation beyond it given back, synced.
    fn write_synced(&self, data: &[u8]) -> Result<(), FileError> {
        use std::os::unix::fs::FileExt;
        let fail = |op, e| FileError::io(&self.target, op, e);
        self.file
            .write_all_at(data, 0)
            .map_err(|e| fail("write", e))?;
        self.file
            .set_len(data.len() as u64)
            .map_err(|e| fail("write", e))?;
        self.file.sync_all().map_err(|e| fail("fsync", e))?;
        test_delay();
        Ok(())
    }

    /// Like [`Prepared::commit`], but create the target: fails with
    /// `AlreadyExists` if anything appeared at the path (a hard link never
    /// replaces, unlike a rename).
    pub fn commit_new(self, data: &[u8]) -> Result<(), FileError> {
        self.write_synced(data)?;
        fs::hard_link(&self.tmp, &self.target)
            .map_err(|e| FileError::io(&self.target, "create", e))?;
        sync_dir(&self.target);
        test_crash_point();
        // Drop removes the temp name; the data lives on under the target's.
        Ok(())
    }

    /// The file this replaces.
    pub fn target(&self) -> &Path {
        &self.target
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// A directory every user may write to, without the sticky bit that `/tmp` has,
/// lets any of them delete or replace the file robot-token keeps there. Root refuses
/// such a directory ([`trusted_dir`]); a robot user gets a warning and carries on.
fn warn_open_dir(target: &Path) {
    let dir = parent_dir(target);
    if let Ok(m) = fs::metadata(dir) {
        if m.is_dir() && m.mode() & 0o002 != 0 && m.mode() & 0o1000 == 0 {
            tracing::warn!(
                "{} is writable by every user and has no sticky bit: any of them can replace \
                 or delete {}; keep it in a private directory (or `chmod +t {}`)",
                dir.display(),
                target.display(),
                dir.display()
            );
        }
    }
}

/// Atomically create `target` with `data`; fails with `AlreadyExists` if anything is
/// at the path (a hard link never replaces, unlike a rename).
pub fn atomic_create(target: &Path, data: &[u8], how: WriteMode) -> Result<(), FileError> {
    if euid() != 0 {
        warn_open_dir(target);
    }
    let (mut file, tmp_path) = create_temp(target, how)?;
    let _guard = TempGuard(Some(&tmp_path));
    let fail = |op, e| FileError::io(target, op, e);
    file.write_all(data).map_err(|e| fail("write", e))?;
    file.sync_all().map_err(|e| fail("fsync", e))?;
    drop(file);
    test_delay();
    fs::hard_link(&tmp_path, target).map_err(|e| FileError::io(target, "create", e))?;
    sync_dir(target);
    test_crash_point();
    Ok(())
}

/// The rename or link is durable only once the directory is synced.
fn sync_dir(target: &Path) {
    if let Ok(d) = File::open(parent_dir(target)) {
        let _ = d.sync_all();
    }
}

/// A new private temp file beside `target` (O_EXCL, never a symlink), with its
/// owner and exact mode set before any byte is written.
fn create_temp(target: &Path, how: WriteMode) -> Result<(File, PathBuf), FileError> {
    let dir = parent_dir(target);
    let prefix = temp_prefix(target);
    for _ in 0..32 {
        let mut name = prefix.clone();
        name.push(format!("{:016x}", random_u64()));
        let tmp_path = dir.join(name);
        let file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp_path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(FileError::io(target, "create a temporary file beside", e)),
        };
        let guard = TempGuard(Some(&tmp_path));
        let fail = |op, e| FileError::io(target, op, e);
        // Locked while we live: another run's stale-temp cleanup leaves it alone
        // (a temp prepared long before its commit, as in `init`).
        let _ = file.try_lock();
        if let Some((uid, gid)) = how.owner {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid)).map_err(|e| fail("chown", e))?;
        }
        // fchmod: the exact mode whatever the umask, before any byte is written.
        file.set_permissions(fs::Permissions::from_mode(how.mode))
            .map_err(|e| fail("chmod", e))?;
        std::mem::forget(guard);
        return Ok((file, tmp_path));
    }
    Err(FileError::io(
        target,
        "create a temporary file beside",
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            "every temporary name was taken",
        ),
    ))
}

/// For root: the real path of `dir`, after checking every directory from `/` down
/// to it, along the path as given. Each directory on the way must be owned by root
/// and not writable by group or others (sticky, as `/tmp`, is fine): otherwise its
/// owner could rename the next component and put a symlink in its place. A symlink
/// on the way is followed only when root owns it (it then sits in a checked
/// directory) and its target passes the same check. `dir` itself may also belong
/// to `owner`, the user the file is for (`/home/svc/tokens`): renames inside it only
/// ever replace the one name we write.
pub fn trusted_dir(dir: &Path, owner: Option<u32>) -> Result<PathBuf, FileError> {
    trusted_walk(&absolute(dir), owner, 0)
}

fn trusted_walk(dir: &Path, owner: Option<u32>, depth: u32) -> Result<PathBuf, FileError> {
    use std::path::Component;
    let untrusted = |path: &Path, uid: u32| FileError::UntrustedDir {
        path: path.to_path_buf(),
        uid,
    };
    let check = |path: &Path, meta: &fs::Metadata, last: bool| {
        let mine = last && Some(meta.uid()) == owner;
        let open = meta.mode() & 0o022 != 0 && meta.mode() & 0o1000 == 0;
        if !meta.is_dir() {
            return Err(FileError::io(
                path,
                "use directory",
                io::Error::from(io::ErrorKind::NotADirectory),
            ));
        }
        if !(mine || (meta.uid() == 0 && !open)) {
            return Err(untrusted(path, meta.uid()));
        }
        Ok(())
    };
    let comps: Vec<Component> = dir.components().collect();
    let mut cur = PathBuf::from("/");
    let root_meta = fs::metadata(&cur).map_err(|e| FileError::io(&cur, "inspect", e))?;
    check(&cur, &root_meta, comps.len() <= 1)?;
    for (i, c) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
            Component::ParentDir => {
                cur.pop();
                continue;
            }
            Component::Normal(name) => cur.push(name),
        }
        let meta = fs::symlink_metadata(&cur).map_err(|e| FileError::io(&cur, "inspect", e))?;
        if meta.file_type().is_symlink() {
            if meta.uid() != 0 || depth > 16 {
                return Err(untrusted(&cur, meta.uid()));
            }
            let target = fs::canonicalize(&cur).map_err(|e| FileError::io(&cur, "inspect", e))?;
            cur = trusted_walk(&target, if last { owner } else { None }, depth + 1)?;
            continue;
        }
        check(&cur, &meta, last)?;
    }
    Ok(cur)
}

/// Remove a file we own (or that `also` owns), never through a symlink: `Ok(false)`
/// when nothing is there. Another user's file, a symlink or a directory is refused.
pub fn remove_own_by(path: &Path, also: Option<u32>) -> Result<bool, FileError> {
    match fs::symlink_metadata(path) {
        Ok(meta) => check_meta_by(path, &meta, also)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(FileError::io(path, "inspect", e)),
    }
    match fs::remove_file(path) {
        Ok(()) => {
            sync_dir(path);
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(FileError::io(path, "remove", e)),
    }
}

/// [`remove_own_by`] for our own files.
pub fn remove_own(path: &Path) -> Result<bool, FileError> {
    remove_own_by(path, None)
}

/// Write a small advisory file in place (no rename, no fsync): for markers whose loss
/// or truncation only costs a less precise message. Never follows a symlink.
pub fn write_marker(path: &Path, data: &[u8]) -> Result<(), FileError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| FileError::io(path, "write", e))?;
    f.write_all(data)
        .map_err(|e| FileError::io(path, "write", e))
}

/// Remove temp files that a killed run left beside `target`. Call with the lock held,
/// so no live run of ours is using one.
pub fn remove_stale_temps(target: &Path) {
    remove_stale_temps_by(target, None)
}

/// [`remove_stale_temps`], also removing those owned by `also` (fchowned temp files).
pub fn remove_stale_temps_by(target: &Path, also: Option<u32>) {
    let prefix = temp_prefix(target);
    let prefix = prefix.as_encoded_bytes();
    let Ok(entries) = fs::read_dir(parent_dir(target)) else {
        return;
    };
    let me = euid();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.as_encoded_bytes().starts_with(prefix) {
            continue;
        }
        // A temp file a live run holds is locked: not stale.
        let live = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(entry.path())
            .map(|f| f.try_lock().is_err())
            .unwrap_or(false);
        if live {
            continue;
        }
        if let Ok(meta) = entry.metadata() {
            if meta.is_file() && (meta.uid() == me || Some(meta.uid()) == also) {
                tracing::debug!("removing stale temporary file {}", entry.path().display());
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// A directory is private when we own it and nobody else may write to it: then no
/// other user can plant or replace names in it.
pub fn is_private_dir(dir: &Path) -> bool {
    match fs::metadata(dir) {
        Ok(m) => m.is_dir() && m.uid() == euid() && m.mode() & 0o022 == 0,
        Err(_) => false,
    }
}

/// Create (mode 0700) or check a private directory.
pub fn ensure_private_dir(dir: &Path) -> Result<(), FileError> {
    if let Err(e) = fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        return Err(FileError::io(dir, "create directory", e));
    }
    if is_private_dir(dir) {
        Ok(())
    } else {
        Err(FileError::UnsafeDir {
            path: dir.to_path_buf(),
        })
    }
}

/// Per-user directory for locks and state when the protected file's own directory is
/// shared: `$XDG_CACHE_HOME/robot-token`, else `~/.cache/robot-token`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(x).join("robot-token"));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| passwd_home(euid()))?;
    Some(home.join(".cache").join("robot-token"))
}

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

pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn write_then_read() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("bt");
        atomic_write(&p, b"abc\n", WriteMode::default()).unwrap();
        assert_eq!(read_own(&p, 100).unwrap().unwrap(), b"abc\n");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        atomic_write(&p, b"def\n", WriteMode::default()).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"def\n");
        // Only the target remains: no temp file.
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_foreign_secret_gets_its_own_fix() {
        let token = FileError::ForeignOwner {
            path: "/tmp/bt_u1000".into(),
            uid: 4242,
        };
        assert!(token.to_string().contains("BEARER_TOKEN_FILE"), "{token}");
        let secret = token.secret().to_string();
        assert!(!secret.contains("BEARER_TOKEN_FILE"), "{secret}");
        assert!(
            secret.contains("chown ") && secret.contains("/tmp/bt_u1000"),
            "{secret}"
        );
    }

    #[test]
    fn fifos_are_refused_without_waiting() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("fifo");
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(open_regular(&p), Err(FileError::NotRegular(_))));
        assert!(matches!(read_own(&p, 10), Err(FileError::NotRegular(_))));
        let f = d.path().join("f");
        fs::write(&f, "12345").unwrap();
        assert_eq!(
            &*read_capped(&f, open_regular(&f).unwrap(), 5).unwrap(),
            b"12345"
        );
        assert!(matches!(
            read_capped(&f, open_regular(&f).unwrap(), 4),
            Err(FileError::TooLarge { .. })
        ));
    }

    #[test]
    fn refuses_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let link = d.path().join("bt");
        symlink(&victim, &link).unwrap();
        assert!(matches!(read_own(&link, 100), Err(FileError::Symlink(_))));
        assert!(matches!(
            atomic_write(&link, b"x", WriteMode::default()),
            Err(FileError::Symlink(_))
        ));
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn caps_reads() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("big");
        fs::write(&p, vec![b'a'; 1000]).unwrap();
        assert!(matches!(read_own(&p, 999), Err(FileError::TooLarge { .. })));
        assert!(read_own(&d.path().join("none"), 10).unwrap().is_none());
    }

    #[test]
    fn failed_write_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        // A directory at the target makes the rename fail after the temp file exists.
        let target = d.path().join("bt");
        fs::create_dir(&target).unwrap();
        assert!(atomic_write(&target, b"x", WriteMode::default()).is_err());
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temps_are_removed() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("bt");
        fs::write(d.path().join(".bt.tmp.0123456789abcdef"), "partial").unwrap();
        fs::write(d.path().join("other"), "keep").unwrap();
        remove_stale_temps(&target);
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("other")]);
    }

    #[test]
    fn lock_excludes_and_times_out() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l");
        let held = lock(&p, Instant::now() + Duration::from_secs(1)).unwrap();
        let t = Instant::now();
        let second = lock(&p, Instant::now() + Duration::from_millis(100));
        assert!(matches!(second, Err(FileError::LockTimeout(_))));
        assert!(t.elapsed() >= Duration::from_millis(50));
        drop(held);
        lock(&p, Instant::now() + Duration::from_millis(100)).unwrap();
    }

    #[test]
    fn lock_lives_beside_target_only_in_private_dirs() {
        let d = tempfile::tempdir().unwrap();
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let t = d.path().join("bt");
        assert_eq!(lock_path(&t).unwrap(), d.path().join(".bt.lock"));
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o1777)).unwrap();
        let l = lock_path(&t).unwrap();
        assert!(!l.starts_with(d.path()), "{}", l.display());
    }
}
