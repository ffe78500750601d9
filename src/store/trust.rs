//! Which directories may hold what root writes (a chain no other user can change),
//! and the private directories robot-token creates (the cache, the lock directory).

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{absolute, euid, passwd_home, FileError};

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
