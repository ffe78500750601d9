//! Token files to keep fresh: several per run (`-o` repeatable, or `outputs` in the
//! credential file), each optionally for another user (`owner`, `group`, `mode`,
//! root only). Parsing and resolving here; the writing rules are `store`'s.
//!
//! Command-line syntax: `-o PATH[:owner=USER,group=GROUP,mode=0640]`. The part after
//! the last `:` is options when it is a list of `key=value` (or a bare known key);
//! then every key must be known, so `bt:ownr=nobody` is an error ("did you mean
//! owner?"), not a file of that name. Other colons stay in the path (`/data/a:b`); a
//! path that itself ends in `:key=value` text is written with a trailing `:`.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::store::{self, euid};

/// One token file as configured, names not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "SpecRepr")]
pub struct OutputSpec {
    pub path: PathBuf,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<u32>,
}

/// The option keys of a token file, and the keys of its table form.
pub const KEYS: [&str; 3] = ["owner", "group", "mode"];
pub const TABLE_KEYS: [&str; 4] = ["path", "owner", "group", "mode"];

/// An unknown key of a token file's options or table, with a suggestion.
pub fn unknown_key(key: &str, known: &[&str]) -> String {
    match crate::error::suggest(key, known) {
        Some(k) => format!("unknown option {key:?}: did you mean {k}?"),
        None => format!("unknown option {key:?} (known: {})", known.join(", ")),
    }
}

/// In a JSON file: `"PATH[:opts]"` or
/// `{"path": "...", "owner": "...", "group": "...", "mode": "0640"}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum SpecRepr {
    Text(String),
    Table(serde_json::Map<String, Value>),
}

impl TryFrom<SpecRepr> for OutputSpec {
    type Error = String;
    fn try_from(r: SpecRepr) -> std::result::Result<Self, String> {
        match r {
            SpecRepr::Text(s) => OutputSpec::parse(&s),
            SpecRepr::Table(mut t) => {
                if let Some(k) = t.keys().find(|k| !TABLE_KEYS.contains(&k.as_str())) {
                    return Err(unknown_key(k, &TABLE_KEYS));
                }
                let text = |v: Option<Value>, what: &str| match v {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s)),
                    Some(_) => Err(format!("{what} must be a string")),
                };
                let path = text(t.remove("path"), "path")?
                    .map(PathBuf::from)
                    .ok_or_else(|| "a token file table needs a path".to_string())?;
                let owner = text(t.remove("owner"), "owner")?;
                let group = text(t.remove("group"), "group")?;
                let mode = t.remove("mode");
                let mode = match mode {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(parse_mode(&s)?),
                    // A TOML/JSON number is taken as written in octal digits: 640 is 0640.
                    Some(Value::Number(n)) => Some(parse_mode(&n.to_string())?),
                    Some(_) => return Err("mode must be a string such as \"0640\"".into()),
                };
                let spec = OutputSpec {
                    path,
                    owner: owner.filter(|s| !s.is_empty()),
                    group: group.filter(|s| !s.is_empty()),
                    mode,
                };
                spec.check()?;
                Ok(spec)
            }
        }
    }
}

fn parse_mode(s: &str) -> std::result::Result<u32, String> {
    let m = u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .map_err(|_| format!("mode {s:?} is not an octal mode such as 0640"))?;
    if m > 0o777 {
        return Err(format!(
            "mode {s} has bits beyond 0777 (setuid, setgid, sticky)"
        ));
    }
    if m & 0o007 != 0 {
        return Err(format!(
            "mode {s} lets every user on the host read or replace the token: use at most 0640"
        ));
    }
    if m & 0o020 != 0 {
        return Err(format!(
            "mode {s} lets the group write the token: use 0640 or 0600"
        ));
    }
    if m & 0o400 == 0 {
        return Err(format!("mode {s} does not let the owner read the token"));
    }
    Ok(m)
}

impl OutputSpec {
    pub fn plain(path: PathBuf) -> OutputSpec {
        OutputSpec {
            path,
            owner: None,
            group: None,
            mode: None,
        }
    }

    /// `PATH[:owner=U,group=G,mode=0640]`. Errors quote the argument and name the key.
    pub fn parse(s: &str) -> std::result::Result<OutputSpec, String> {
        let (path, opts) = match s.rsplit_once(':') {
            Some((p, "")) => (p, None),
            Some((p, o)) if looks_like_options(o) => (p, Some(o)),
            _ => (s, None),
        };
        if path.is_empty() {
            return Err(format!("{s:?}: no path"));
        }
        let mut spec = OutputSpec::plain(PathBuf::from(path));
        for kv in opts.into_iter().flat_map(|o| o.split(',')) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            if v.is_empty() {
                return Err(format!("{s:?}: {k} needs a value ({k}=...)"));
            }
            match k {
                "owner" => spec.owner = Some(v.to_string()),
                "group" => spec.group = Some(v.to_string()),
                "mode" => spec.mode = Some(parse_mode(v)?),
                _ => {
                    return Err(format!(
                        "{s:?}: {} (a path that really ends in \":{k}=...\" is written with a trailing ':')",
                        unknown_key(k, &KEYS)
                    ))
                }
            }
        }
        spec.check()?;
        Ok(spec)
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.path.as_os_str().is_empty() {
            return Err("an output needs a path".into());
        }
        use std::os::unix::ffi::OsStrExt;
        if self.path.file_name().is_none() || self.path.as_os_str().as_bytes().ends_with(b"/") {
            return Err(format!(
                "{} names a directory, not a file",
                self.path.display()
            ));
        }
        Ok(())
    }

    /// Resolve user and group names and check that this run may give them.
    pub fn resolve(&self) -> Result<Target> {
        let bad = |m: String| Error::config(format!("token file {}: {m}", self.path.display()));
        let me = euid();
        let owner = match &self.owner {
            None => None,
            Some(u) => {
                Some(lookup_user(u).ok_or_else(|| bad(format!("no user {u:?} on this host")))?)
            }
        };
        let group = match &self.group {
            None => None,
            Some(g) => {
                Some(lookup_group(g).ok_or_else(|| bad(format!("no group {g:?} on this host")))?)
            }
        };
        if me != 0 {
            if let Some((uid, _)) = owner.filter(|(uid, _)| *uid != me) {
                return Err(bad(format!(
                    "owner={} needs root: robot-token runs as {} here; run it as root, or drop owner=",
                    store::user_name(uid),
                    store::user_name(me)
                )));
            }
            if let Some(gid) = group.filter(|g| !in_group(*g)) {
                return Err(bad(format!(
                    "group={} needs root or membership of that group; run it as root, or drop group=",
                    gid
                )));
            }
        }
        // owner= alone gives the owner's primary group, as `chown user:` does.
        let ids = match (owner, group) {
            (None, None) => None,
            (Some((uid, gid)), None) => Some((uid, gid)),
            (Some((uid, _)), Some(g)) => Some((uid, g)),
            (None, Some(g)) => Some((me, g)),
        };
        Ok(Target {
            path: self.path.clone(),
            ids,
            mode: self.mode.unwrap_or(0o600),
        })
    }
}

/// Is the text after the last `:` options? A list of `key=value` (any key that looks
/// like a name, so that a misspelt one is reported), or a bare known key (`:mode`,
/// reported as missing its value).
fn looks_like_options(o: &str) -> bool {
    let name = |k: &str| {
        k.starts_with(|c: char| c.is_ascii_alphabetic())
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    o.split(',').all(|kv| match kv.split_once('=') {
        Some((k, _)) => name(k),
        None => KEYS.contains(&kv),
    })
}

/// A token file ready for writing: numeric owner and group, and its mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub path: PathBuf,
    /// `fchown` to these before the rename (None: the caller's own).
    pub ids: Option<(u32, u32)>,
    pub mode: u32,
}

impl Target {
    /// A uid besides ours that may own the file already (its configured owner).
    pub fn other_owner(&self) -> Option<u32> {
        self.ids.map(|(u, _)| u).filter(|u| *u != euid())
    }

    pub fn write_mode(&self) -> store::WriteMode {
        store::WriteMode {
            mode: self.mode,
            owner: self.ids,
        }
    }
}

fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16384];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to live, correctly sized storage owned here.
    let rc = unsafe {
        libc::getpwnam_r(
            c.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc == 0 && !result.is_null() {
        return Some((pwd.pw_uid, pwd.pw_gid));
    }
    // A numeric uid that has no name still works (containers).
    name.parse::<u32>().ok().map(|uid| (uid, uid))
}

fn lookup_group(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 65536];
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as in `lookup_user`.
    let rc = unsafe {
        libc::getgrnam_r(
            c.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc == 0 && !result.is_null() {
        return Some(grp.gr_gid);
    }
    name.parse::<u32>().ok()
}

fn in_group(gid: u32) -> bool {
    // SAFETY: getegid has no preconditions; getgroups writes at most `n` entries.
    unsafe {
        if libc::getegid() == gid {
            return true;
        }
        let n = libc::getgroups(0, std::ptr::null_mut());
        if n <= 0 {
            return false;
        }
        let mut v = vec![0 as libc::gid_t; n as usize];
        let n = libc::getgroups(n, v.as_mut_ptr());
        n > 0 && v[..n as usize].contains(&gid)
    }
}

/// The token files of this run, resolved: `-o`, else the credential file's
/// `outputs`, else the WLCG discovery default. A path named twice is refused.
pub fn targets(outputs: &[OutputSpec], outfile: &Path) -> Result<Vec<Target>> {
    // Only what the command line (or a profile) names: the fresh path must decide
    // without reading the credential.
    let specs = if outputs.is_empty() {
        vec![OutputSpec::plain(outfile.to_path_buf())]
    } else {
        outputs.to_vec()
    };
    let mut seen = std::collections::HashSet::new();
    for s in &specs {
        if !seen.insert(store::absolute(&s.path)) {
            return Err(Error::usage(format!(
                "the token file {} is named twice",
                s.path.display()
            )));
        }
    }
    specs.iter().map(OutputSpec::resolve).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_syntax() {
        let s = OutputSpec::parse("/run/t/bt").unwrap();
        assert_eq!(s, OutputSpec::plain("/run/t/bt".into()));
        let s = OutputSpec::parse("/var/lib/svc/bt:owner=svc,group=condor,mode=0640").unwrap();
        assert_eq!(s.path, PathBuf::from("/var/lib/svc/bt"));
        assert_eq!(s.owner.as_deref(), Some("svc"));
        assert_eq!(s.group.as_deref(), Some("condor"));
        assert_eq!(s.mode, Some(0o640));
        // Colons that are not options stay in the path; a trailing ':' escapes.
        assert_eq!(
            OutputSpec::parse("/tmp/a:b").unwrap().path,
            PathBuf::from("/tmp/a:b")
        );
        assert_eq!(
            OutputSpec::parse("/tmp/x:mode=0600:").unwrap().path,
            PathBuf::from("/tmp/x:mode=0600")
        );
        assert_eq!(
            OutputSpec::parse("bt:ownr=nobody:").unwrap().path,
            PathBuf::from("bt:ownr=nobody")
        );
        assert_eq!(
            OutputSpec::parse("/data/run:2024-01-01T10:00")
                .unwrap()
                .path,
            PathBuf::from("/data/run:2024-01-01T10:00")
        );
        // A misspelt or unknown key is an error, not a file named after it.
        let e = OutputSpec::parse("bt:ownr=nobody").unwrap_err();
        assert!(e.contains("did you mean owner?"), "{e}");
        let e = OutputSpec::parse("bt:color=red").unwrap_err();
        assert!(
            e.contains("unknown option \"color\" (known: owner, group, mode)"),
            "{e}"
        );
        assert!(e.contains("trailing ':'"), "{e}");
        let e = OutputSpec::parse("bt:mode=0600,gruop=x").unwrap_err();
        assert!(e.contains("did you mean group?"), "{e}");
        for bad in [
            "/tmp/x:mode=0644",
            "/tmp/x:mode=0666",
            "/tmp/x:mode=0660",
            "/tmp/x:mode=4600",
            "/tmp/x:mode=rw",
            "/tmp/x:owner=",
            ":mode=0600",
            "/tmp/",
        ] {
            assert!(OutputSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_syntax() {
        let v: Vec<OutputSpec> = serde_json::from_str(
            r#"["/a", {"path":"/b","owner":"svc","mode":"0640"}, {"path":"/c","mode":600}]"#,
        )
        .unwrap();
        assert_eq!(v[0].path, PathBuf::from("/a"));
        assert_eq!(v[1].mode, Some(0o640));
        assert_eq!(v[2].mode, Some(0o600));
        assert!(
            serde_json::from_str::<Vec<OutputSpec>>(r#"[{"path":"/b","mode":"0777"}]"#).is_err()
        );
        assert!(serde_json::from_str::<Vec<OutputSpec>>(r#"[5]"#).is_err());
        let e = serde_json::from_str::<Vec<OutputSpec>>(r#"[{"path":"/b","onwer":"x"}]"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean owner?"), "{e}");
    }

    #[test]
    fn non_root_cannot_give_files_away() {
        if euid() == 0 {
            return; // root may; tests/outputs.rs covers that with a real user
        }
        let s = OutputSpec::parse("/tmp/x:owner=root").unwrap();
        let e = s.resolve().unwrap_err();
        assert!(e.message().contains("needs root"), "{e}");
    }
}
