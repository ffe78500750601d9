//! The robot's Kerberos keytab, read without Kerberos: its safety check and its first
//! principal name. The principal gives the defaults igwn-robot-get derives from it
//! (credkey, role) even on runs that reuse a cached Vault token and never call GSSAPI.
//! The keys themselves are never looked at; the bytes are wiped after parsing.

use std::path::{Path, PathBuf};

use crate::error::{io_reason, Error, Result};
use crate::store::{self, FileError};

/// Keytabs are a few KiB; anything larger is not one.
const MAX_KEYTAB_LEN: u64 = 1024 * 1024;

/// The keytab file behind a keytab name: `FILE:/path`, `WRFILE:/path` or a plain path.
/// `None` for other types (`MEMORY:`, `KEYRING:`...), which have no file to check.
pub fn file_of(name: &Path) -> Option<PathBuf> {
    let s = name.to_string_lossy();
    for prefix in ["FILE:", "WRFILE:"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            return Some(PathBuf::from(rest));
        }
    }
    let typed = s
        .split_once(':')
        .is_some_and(|(t, _)| !t.is_empty() && t.chars().all(|c| c.is_ascii_uppercase()));
    (!typed).then(|| name.to_path_buf())
}

/// Check that the keytab is ours with no group or other permission bits (as
/// igwn-robot-get requires), and return its first principal (`robot/host@REALM`).
/// `Ok(None)` for a keytab type without a file.
pub fn check_and_read_principal(name: &Path) -> Result<Option<String>> {
    let Some((path, data)) = read_checked(name)? else {
        return Ok(None);
    };
    first_principal(&data).map(Some).map_err(|why| {
        Error::data(format!(
            "the keytab {} is unusable ({why}): check it with `klist -k {}`",
            path.display(),
            path.display()
        ))
    })
}

/// The keytab's file and bytes, after the checks: ours, no group or other bits, a
/// regular file, capped. `None` for a keytab type without a file.
fn read_checked(name: &Path) -> Result<Option<(PathBuf, zeroize::Zeroizing<Vec<u8>>)>> {
    let Some(path) = file_of(name) else {
        return Ok(None);
    };
    let cannot = |e: FileError| match e {
        FileError::Io { err, .. } => Error::config(format!(
            "cannot read the keytab {}: {}",
            path.display(),
            io_reason(&err)
        )),
        FileError::NotRegular(_) => Error::config(format!(
            "the keytab {} is not a regular file",
            path.display()
        )),
        e => Error::config(format!("keytab: {e}")),
    };
    let opened = store::open_regular(&path).map_err(cannot)?;
    store::check_private(&path, &opened.1)
        .map_err(|e| Error::perm(format!("unsafe keytab: {e}")))?;
    let data = store::read_capped(&path, opened, MAX_KEYTAB_LEN as usize).map_err(cannot)?;
    Ok(Some((path, data)))
}

/// The first principal of an MIT keytab (format versions 0x501 and 0x502).
pub fn first_principal(data: &[u8]) -> std::result::Result<String, &'static str> {
    principals(data)?.into_iter().next().ok_or("no entries")
}

/// Every principal of an MIT keytab, in file order, once each.
pub fn principals(data: &[u8]) -> std::result::Result<Vec<String>, &'static str> {
    let version = match data {
        [5, 1, ..] => 1,
        [5, 2, ..] => 2,
        _ => return Err("not a keytab file"),
    };
    let mut r = Reader {
        data,
        pos: 2,
        big_endian: version == 2,
    };
    let mut found: Vec<String> = Vec::new();
    while r.pos < data.len() {
        match r.entry(version) {
            Ok(Some(p)) if !found.contains(&p) => found.push(p),
            Ok(Some(_)) => {}
            Ok(None) => break,
            // A damaged entry after good ones (as MIT's own reader, stop there).
            Err(_) if !found.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    if found.is_empty() {
        return Err("no entries");
    }
    Ok(found)
}

/// `get --dry-run`: does the keytab hold a key for `principal`? `Ok(None)` for a keytab
/// type without a file. Reads it with the same checks as [`check_and_read_principal`].
pub fn holds(name: &Path, principal: &str) -> Result<Option<bool>> {
    check_and_read_principal(name)?;
    let Some((_, data)) = read_checked(name)? else {
        return Ok(None);
    };
    let all = principals(&data).unwrap_or_default();
    // A principal given without a realm matches the keytab's entry in any realm.
    Ok(Some(all.iter().any(|p| {
        p == principal || (!principal.contains('@') && p.split('@').next() == Some(principal))
    })))
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    big_endian: bool,
}

impl Reader<'_> {
    /// The principal of the next entry (`None`: the end), skipping holes and keys.
    fn entry(&mut self, version: u8) -> std::result::Result<Option<String>, &'static str> {
        loop {
            if self.pos >= self.data.len() {
                return Ok(None);
            }
            let size = self.u32().ok_or("truncated")? as i32;
            if size < 0 {
                // A hole left by a deleted entry.
                self.skip(size.unsigned_abs() as usize).ok_or("truncated")?;
                continue;
            }
            if size == 0 {
                return Ok(None);
            }
            let end = self.pos.checked_add(size as usize).ok_or("truncated")?;
            if end > self.data.len() {
                return Err("truncated");
            }
            let mut count = self.u16().ok_or("truncated")? as usize;
            if version == 1 {
                // Version 1 counts the realm as a component.
                count = count.checked_sub(1).ok_or("bad principal")?;
            }
            let realm = self.string().ok_or("truncated")?;
            let mut parts = Vec::with_capacity(count.min(64));
            for _ in 0..count {
                parts.push(self.string().ok_or("truncated")?);
            }
            if parts.is_empty() || parts.iter().any(|p| p.is_empty()) {
                return Err("bad principal");
            }
            let mut principal = parts.join("/");
            if !realm.is_empty() {
                principal.push('@');
                principal.push_str(&realm);
            }
            // The rest of the entry (name type, timestamp, kvno, key) is not looked at.
            self.pos = end;
            return Ok(Some(principal));
        }
    }

    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }
    /// The next `N` bytes, in big-endian order (a version 0x0501 keytab is in the
    /// host's order: reversed here on a little-endian host).
    fn int<const N: usize>(&mut self) -> Option<[u8; N]> {
        let mut b: [u8; N] = self.take(N)?.try_into().ok()?;
        if !self.big_endian && cfg!(target_endian = "little") {
            b.reverse();
        }
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        self.int().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.int().map(u32::from_be_bytes)
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u16()? as usize;
        let b = self.take(n)?;
        // Principal names are text; anything else is not a name we can use.
        String::from_utf8(b.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-2 entry as MIT writes it.
    fn entry(realm: &str, parts: &[&str]) -> Vec<u8> {
        let mut e = Vec::new();
        e.extend_from_slice(&(parts.len() as u16).to_be_bytes());
        for s in std::iter::once(&realm).chain(parts) {
            e.extend_from_slice(&(s.len() as u16).to_be_bytes());
            e.extend_from_slice(s.as_bytes());
        }
        e.extend_from_slice(&1u32.to_be_bytes()); // KRB5_NT_PRINCIPAL
        e.extend_from_slice(&0u32.to_be_bytes()); // timestamp
        e.push(3); // kvno
        e.extend_from_slice(&18u16.to_be_bytes()); // aes256
        e.extend_from_slice(&32u16.to_be_bytes());
        e.extend_from_slice(&[0xAA; 32]);
        let mut out = (e.len() as u32).to_be_bytes().to_vec();
        out.extend(e);
        out
    }

    /// Version 0x0501 is in the host's byte order and counts the realm as a component.
    #[test]
    fn version_1_in_host_order() {
        let mut e = Vec::new();
        e.extend_from_slice(&3u16.to_ne_bytes());
        for s in ["ROBOT.TEST", "robot", "ci.example.org"] {
            e.extend_from_slice(&(s.len() as u16).to_ne_bytes());
            e.extend_from_slice(s.as_bytes());
        }
        e.extend_from_slice(&[0; 12]);
        let mut kt = vec![5, 1];
        kt.extend_from_slice(&(-4i32).to_ne_bytes());
        kt.extend_from_slice(&[0; 4]);
        kt.extend_from_slice(&(e.len() as u32).to_ne_bytes());
        kt.extend(e);
        assert_eq!(
            first_principal(&kt).unwrap(),
            "robot/ci.example.org@ROBOT.TEST"
        );
    }

    #[test]
    fn first_entry_after_holes() {
        let mut kt = vec![5, 2];
        kt.extend_from_slice(&(-8i32).to_be_bytes());
        kt.extend_from_slice(&[0; 8]);
        kt.extend(entry("ROBOT.TEST", &["robot", "ci.example.org"]));
        kt.extend(entry("ROBOT.TEST", &["other"]));
        assert_eq!(
            first_principal(&kt).unwrap(),
            "robot/ci.example.org@ROBOT.TEST"
        );
    }

    #[test]
    fn every_principal_once() {
        let mut kt = vec![5, 2];
        kt.extend(entry("ROBOT.TEST", &["robot", "ci.example.org"]));
        kt.extend(entry("ROBOT.TEST", &["robot", "ci.example.org"]));
        kt.extend(entry("ROBOT.TEST", &["other"]));
        assert_eq!(
            principals(&kt).unwrap(),
            vec!["robot/ci.example.org@ROBOT.TEST", "other@ROBOT.TEST"]
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(first_principal(b"").is_err());
        assert!(first_principal(b"hello").is_err());
        assert!(first_principal(&[5, 2]).is_err());
        let mut kt = vec![5, 2];
        let e = entry("R", &["a"]);
        kt.extend_from_slice(&e[..e.len() - 5]);
        assert!(first_principal(&kt).is_err());
    }

    #[test]
    fn keytab_names() {
        assert_eq!(
            file_of(Path::new("FILE:/k/robot.keytab")),
            Some(PathBuf::from("/k/robot.keytab"))
        );
        assert_eq!(
            file_of(Path::new("/k/robot.keytab")),
            Some(PathBuf::from("/k/robot.keytab"))
        );
        assert_eq!(file_of(Path::new("MEMORY:kt")), None);
    }
}
