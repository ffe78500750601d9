//! Reading safely: never through a symlink, only regular files, owned by us (or by
//! the one other user root keeps a file for), private when they hold a secret, and
//! capped in size.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use super::{euid, FileError};

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
    read_at_most(path, file, max, &mut data)?;
    Ok(Some(data))
}

pub(super) fn check_meta(path: &Path, meta: &fs::Metadata) -> Result<(), FileError> {
    check_meta_by(path, meta, None)
}

pub(super) fn check_meta_by(
    path: &Path,
    meta: &fs::Metadata,
    also: Option<u32>,
) -> Result<(), FileError> {
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
    read_at_most(path, file, max, &mut data)?;
    Ok(data)
}

/// Read `file` into `data`: at most `max` bytes, bounded even if the file grew after
/// fstat; more is an error.
fn read_at_most(path: &Path, file: File, max: usize, data: &mut Vec<u8>) -> Result<(), FileError> {
    file.take(max as u64 + 1)
        .read_to_end(data)
        .map_err(|e| FileError::io(path, "read", e))?;
    if data.len() > max {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            max,
        });
    }
    Ok(())
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
