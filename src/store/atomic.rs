//! Writing safely: a private temp file (O_EXCL, 0600, flock'ed while alive) in the
//! target's directory, space reserved before anything is sent (`prepare`), fsync,
//! rename over the target, fsync the directory. Never unlink first: a reader sees the
//! old content or the new, never none or a part. Also removal and stale temp files.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::read::{check_meta_by, check_target_by};
use super::trust::trusted_dir;
use super::{euid, file_name, parent_dir, random_u64, FileError};

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
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// Test-only hook for the crash-consistency tests: with
/// `ROBOT_TOKEN_TEST_KILL_AFTER_WRITES=N`, SIGKILL this process right after its Nth
/// durable write (a completed `Prepared::commit` or `commit_new`:
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
