//! Profiles: the `[profile.NAME]` tables of a TOML configuration file. A profile holds
//! what the `get` command line can say, spelled the same way:
//!
//! ```toml
//! [defaults]                 # applies to every profile
//! minsecs = "2h"
//!
//! [profile.storage]
//! credential = "/var/lib/robot-token/storage.json"
//! outfile = "/tmp/storage.token"
//! scope = ["storage.read:/", "storage.modify:/data"]
//! deploy_hook = "systemctl reload xrootd"
//! ```
//!
//! A key is a long option of `get` (`deploy_hook` or `deploy-hook`); its value is a
//! string, number, boolean (for a flag) or array (for a repeatable option). A profile
//! is turned into the very same `GetArgs` as a command line, by clap itself, from a
//! synthetic argument list built in this process (never passed to `exec`, so nothing
//! reaches a real argv). So every `get` option works in a profile without code here,
//! and `GetConfig::from_args` stays the one place that validates.
//!
//! Precedence: the command line, then the profile, then `[defaults]`, then the built-in
//! defaults. `ROBOT_TOKEN_*` environment variables of `get` options do NOT apply to
//! profiles: one variable would set the same value for every profile of `--all` (one
//! `ROBOT_TOKEN_OUTFILE` would make them all write one file). `[defaults]` is their place.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Read;
use std::ops::Range;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, FromArgMatches};
use toml::de::{DeTable, DeValue};

use crate::cli::GetArgs;
use crate::config::GetConfig;
use crate::error::{io_reason, Error, Result};
use crate::store;

mod argv;

use self::argv::entries;

/// A configuration file larger than this is a mistake (1,000 profiles are ~200 KiB).
const MAX_CONFIG_LEN: u64 = 16 * 1024 * 1024;

/// The file used when `--config` is not given: `$XDG_CONFIG_HOME/robot-token/config.toml`
/// (`~/.config/...`), else `/etc/robot-token/config.toml`, whichever exists first.
pub fn default_path() -> Option<PathBuf> {
    let user = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })
        .map(|d| d.join("robot-token/config.toml"));
    user.into_iter()
        .chain([PathBuf::from("/etc/robot-token/config.toml")])
        .find(|p| p.exists())
}

/// One `key = value` of a profile, already in command-line form.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// The key as written, for messages.
    key: String,
    /// The clap id of the option it sets.
    id: String,
    /// `--long=value` arguments (none for a flag set to false).
    argv: Vec<OsString>,
    span: Range<usize>,
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    span: Range<usize>,
    entries: Vec<Entry>,
}

/// A parsed configuration file.
#[derive(Debug)]
pub struct ConfigFile {
    pub path: PathBuf,
    text: String,
    defaults: Vec<Entry>,
    pub profiles: Vec<Profile>,
}

/// What a `get` option looks like to the profile parser.
pub(super) struct OptionInfo {
    id: String,
    long: String,
    takes_value: bool,
}

/// The `get` options a profile may set: every long option of `GetArgs`.
fn options() -> Vec<OptionInfo> {
    let cmd = GetArgs::augment_args(clap::Command::new("get"));
    cmd.get_arguments()
        .filter_map(|a| {
            Some(OptionInfo {
                id: a.get_id().to_string(),
                long: a.get_long()?.to_string(),
                takes_value: a.get_action().takes_values(),
            })
        })
        .filter(|o| o.long != "help" && o.long != "version")
        .collect()
}

/// The parser for a profile's synthetic argument list: `get`'s options without their
/// environment variables (see the module comment).
pub fn profile_command() -> clap::Command {
    GetArgs::augment_args(clap::Command::new("profile").no_binary_name(true))
        .mut_args(|a| a.env(None))
}

impl ConfigFile {
    /// 1-based line of a byte offset, for messages.
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn at(&self, span: &Range<usize>) -> String {
        format!("{}:{}", self.path.display(), self.line(span.start))
    }

    /// A configuration error at a place of the file: exit 78.
    fn error(&self, span: &Range<usize>, what: impl std::fmt::Display) -> Error {
        Error::config(format!("{}: {what}", self.at(span)))
    }

    /// The profile `name`, or every profile (`--all`); a file without any is an error.
    pub fn select(&self, name: Option<&str>) -> Result<Vec<&Profile>> {
        let which: Vec<&Profile> = match name {
            Some(name) => vec![self.profile(name)?],
            None => self.profiles.iter().collect(),
        };
        if which.is_empty() {
            return Err(Error::config(format!(
                "{}: no [profile.NAME] tables",
                self.path.display()
            )));
        }
        Ok(which)
    }

    pub fn profile(&self, name: &str) -> Result<&Profile> {
        self.profiles
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.profiles.iter().map(|p| p.name.as_str()).collect();
                Error::config(format!(
                    "{}: no profile {name:?} (profiles: {})",
                    self.path.display(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ))
            })
    }

    /// Read and parse a configuration file. It may name commands (deploy hooks) that
    /// run as the caller, so, like sudoers, it must not be writable by anyone else.
    pub fn load(path: &Path) -> Result<ConfigFile> {
        let cant = |e: std::io::Error| {
            Error::config(format!(
                "cannot read configuration file {}: {}",
                path.display(),
                io_reason(&e)
            ))
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(cant)?;
        let meta = file.metadata().map_err(cant)?;
        if !meta.is_file() {
            return Err(Error::config(format!(
                "configuration file {} is not a regular file",
                path.display()
            )));
        }
        if meta.uid() != store::euid() && meta.uid() != 0 {
            return Err(Error::perm(format!(
                "unsafe configuration file {}: owned by {}, not by you or root; its deploy hooks would run as you",
                path.display(),
                store::user_name(meta.uid())
            )));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(Error::perm(format!(
                "unsafe configuration file {}: writable by others (mode {:04o}); its deploy hooks would run as you: run `chmod go-w {}`",
                path.display(),
                meta.mode() & 0o7777,
                path.display()
            )));
        }
        let mut text = String::new();
        file.take(MAX_CONFIG_LEN + 1)
            .read_to_string(&mut text)
            .map_err(cant)?;
        if text.len() as u64 > MAX_CONFIG_LEN {
            return Err(Error::config(format!(
                "configuration file {} is larger than 16 MiB",
                path.display()
            )));
        }
        ConfigFile::parse(path, text)
    }

    /// Parse the text of a configuration file: syntax, names and keys. Values are
    /// checked later, by clap and `GetConfig::from_args`, when a profile is resolved.
    pub fn parse(path: &Path, text: String) -> Result<ConfigFile> {
        let mut cfg = ConfigFile {
            path: path.to_path_buf(),
            text: String::new(),
            defaults: Vec::new(),
            profiles: Vec::new(),
        };
        let (defaults, profiles) = {
            let doc = match DeTable::parse(&text) {
                Ok(d) => d,
                Err(e) => {
                    cfg.text = text.clone();
                    let span = e.span().unwrap_or(0..0);
                    return Err(cfg.error(&span, format!("invalid TOML: {}", e.message().trim())));
                }
            };
            let opts = options();
            let by_long: HashMap<&str, &OptionInfo> =
                opts.iter().map(|o| (o.long.as_str(), o)).collect();
            let mut defaults = Vec::new();
            let mut profiles = Vec::new();
            let mut problem: Option<(Range<usize>, String)> = None;
            for (key, value) in doc.get_ref() {
                match (key.get_ref().as_ref(), value.get_ref()) {
                    ("defaults", DeValue::Table(t)) => match entries(t, &by_long) {
                        Ok(e) => defaults = e,
                        Err(p) => {
                            problem = Some(p);
                            break;
                        }
                    },
                    ("profile", DeValue::Table(t)) => {
                        for (name, body) in t {
                            let n = name.get_ref().as_ref();
                            if n.is_empty()
                                || !n.bytes().all(|b| {
                                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
                                })
                            {
                                problem = Some((
                                    name.span(),
                                    format!("profile name {n:?}: use letters, digits, '-', '_' and '.' only"),
                                ));
                                break;
                            }
                            let DeValue::Table(body) = body.get_ref() else {
                                problem = Some((
                                    name.span(),
                                    format!("profile.{n} must be a table: [profile.{n}]"),
                                ));
                                break;
                            };
                            match entries(body, &by_long) {
                                Ok(e) => profiles.push(Profile {
                                    name: n.to_string(),
                                    span: name.span(),
                                    entries: e,
                                }),
                                Err(p) => {
                                    problem = Some((p.0, format!("profile {n}: {}", p.1)));
                                    break;
                                }
                            }
                        }
                    }
                    (k @ ("defaults" | "profile"), _) => {
                        problem = Some((key.span(), format!("{k} must be a table: [{k}]")));
                    }
                    (k, _) => {
                        problem = Some((
                            key.span(),
                            format!(
                                "unknown key {k:?}: expected [defaults] or [profile.NAME] tables"
                            ),
                        ));
                    }
                }
                if problem.is_some() {
                    break;
                }
            }
            if let Some((span, what)) = problem {
                cfg.text = text.clone();
                return Err(cfg.error(&span, what));
            }
            (defaults, profiles)
        };
        cfg.text = text;
        cfg.defaults = defaults;
        cfg.profiles = profiles;
        Ok(cfg)
    }

    /// Turn a profile into what `get` runs with: its argument list plus whatever was
    /// typed on the command line (`cli`, the matches of `get`), through clap and
    /// `GetConfig::from_args`. Errors name the file, the line and the key.
    fn resolve(
        &self,
        profile: &Profile,
        typed: &Typed,
        parser: &mut clap::Command,
        opts: &[OptionInfo],
    ) -> Result<GetConfig> {
        let is_typed = |id: &str| typed.ids.iter().any(|t| t == id);
        let in_profile = |id: &str| profile.entries.iter().any(|e| e.id == id);
        let mut argv: Vec<OsString> = Vec::new();
        let mut used: Vec<&Entry> = Vec::new();
        for e in &profile.entries {
            if !is_typed(&e.id) {
                argv.extend(e.argv.iter().cloned());
                used.push(e);
            }
        }
        for e in &self.defaults {
            if !is_typed(&e.id) && !in_profile(&e.id) {
                argv.extend(e.argv.iter().cloned());
                used.push(e);
            }
        }
        argv.extend(typed.argv.iter().cloned());
        let here = |e: Option<&&Entry>| match e {
            // A value from [defaults] is wrong there, whichever profile used it first.
            Some(e) if self.defaults.iter().any(|d| std::ptr::eq(d, *e)) => format!(
                "{}: [defaults], key {} (used by profile {})",
                self.at(&e.span),
                e.key,
                profile.name
            ),
            Some(e) => format!(
                "{}: profile {}, key {}",
                self.at(&e.span),
                profile.name,
                e.key
            ),
            None => format!("{}: profile {}", self.at(&profile.span), profile.name),
        };
        // Which entry an error message's `--option` comes from, if any.
        let culprit = |text: &str| {
            used.iter().find(|e| {
                let long = opts.iter().find(|o| o.id == e.id).map(|o| o.long.as_str());
                long.is_some_and(|l| {
                    text.match_indices(&format!("--{l}")).any(|(i, m)| {
                        !text[i + m.len()..]
                            .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
                    })
                })
            })
        };
        let matches = parser.try_get_matches_from_mut(argv).map_err(|e| {
            let text = e.render().to_string();
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid value")
                .trim_start_matches("error: ")
                .to_string();
            Error::config(format!("{}: {first}", here(culprit(&first))))
        })?;
        let args = GetArgs::from_arg_matches(&matches)
            .map_err(|e| Error::config(format!("{}: {e}", here(None))))?;
        let mut cfg = GetConfig::from_args(&args).map_err(|e| {
            Error::config(format!("{}: {}", here(culprit(e.message())), e.message()))
        })?;
        cfg.profile = Some(profile.name.clone());
        Ok(cfg)
    }

    /// Resolve the chosen profiles and refuse two that write the same token file,
    /// before anything touches the network.
    pub fn resolve_all(
        &self,
        which: &[&Profile],
        cli: Option<&ArgMatches>,
    ) -> Result<Vec<GetConfig>> {
        // Built once: 1,000 profiles must resolve in a few milliseconds.
        let mut parser = profile_command();
        let opts = options();
        let typed = Typed::new(&opts, cli);
        let mut dirs = HashMap::new();
        let mut out = Vec::with_capacity(which.len());
        let mut seen: HashMap<PathBuf, usize> = HashMap::with_capacity(which.len());
        for (i, p) in which.iter().enumerate() {
            let cfg = self.resolve(p, &typed, &mut parser, &opts)?;
            for file in cfg.token_files() {
                let key = same_file_key(&file, &mut dirs);
                match seen.get(&key) {
                    Some(&j) if j != i => {
                        let first = which[j];
                        return Err(self.error(
                            &p.span,
                            format!(
                                "profiles {} (line {}) and {} both write the token file {}: give each its own outfile",
                                first.name,
                                self.line(first.span.start),
                                p.name,
                                store::absolute(&file).display()
                            ),
                        ));
                    }
                    _ => {
                        seen.insert(key, i);
                    }
                }
            }
            out.push(cfg);
        }
        Ok(out)
    }
}

/// The get options typed on the command line, which override every profile.
struct Typed {
    ids: Vec<String>,
    argv: Vec<OsString>,
}

impl Typed {
    fn new(opts: &[OptionInfo], cli: Option<&ArgMatches>) -> Typed {
        let mut t = Typed {
            ids: Vec::new(),
            argv: Vec::new(),
        };
        let Some(m) = cli else { return t };
        for o in opts {
            if m.value_source(&o.id) != Some(ValueSource::CommandLine) {
                continue;
            }
            t.ids.push(o.id.clone());
            if o.takes_value {
                for raw in m.get_raw(&o.id).into_iter().flatten() {
                    let mut a = OsString::from(format!("--{}=", o.long));
                    a.push(raw);
                    t.argv.push(a);
                }
            } else if m.get_flag(&o.id) {
                t.argv.push(OsString::from(format!("--{}", o.long)));
            }
        }
        t
    }
}

/// A token file path made comparable: absolute, its directory's symlinks resolved
/// (once per directory: profiles tend to share a few).
fn same_file_key(p: &Path, dirs: &mut HashMap<PathBuf, PathBuf>) -> PathBuf {
    let abs = store::absolute(p);
    let normal: PathBuf = abs.components().collect();
    match (normal.parent(), normal.file_name()) {
        (Some(dir), Some(name)) => {
            let real = dirs.entry(dir.to_path_buf()).or_insert_with(|| {
                std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
            });
            real.join(name)
        }
        _ => normal,
    }
}

#[cfg(test)]
mod tests;
