//! HTCondor's version bands: which releases can store a plain access token in the
//! credd, and with which `condor_store_cred` arguments.

use crate::error::{Error, Result};

use super::tools::Tools;

/// What the installed HTCondor can do with a plain access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plain {
    /// 24.10.2 and later: `-P` says "plain token, store as .use".
    Flag,
    /// 24.7.3 to 24.10.1: plain tokens are stored without `-P` for unclaimed services.
    Implicit,
    /// Older: the credd cannot hold a plain access token.
    Unsupported,
}

pub type Version = (u32, u32, u32);

/// `$CondorVersion: 24.10.2 2024-10-01 BuildID: ... $` → (24, 10, 2).
pub fn parse_version(out: &str) -> Option<Version> {
    let rest = &out[out.find("$CondorVersion:")? + "$CondorVersion:".len()..];
    let word = rest.split_whitespace().next()?;
    let mut it = word.split('.').map(|n| n.parse::<u32>().ok());
    match (it.next()??, it.next()??, it.next()??, it.next()) {
        (a, b, c, None) => Some((a, b, c)),
        _ => None,
    }
}

pub fn plain_support(v: Version) -> Plain {
    if v >= (24, 10, 2) {
        Plain::Flag
    } else if v >= (24, 7, 3) {
        Plain::Implicit
    } else {
        Plain::Unsupported
    }
}

/// The exact arguments of `condor_store_cred` for this version band.
pub fn store_cred_args(service: &str, handle: Option<&str>, plain: Plain) -> Vec<String> {
    let mut a = vec!["add-oauth".to_string(), "-s".into(), service.into()];
    if let Some(h) = handle {
        a.extend(["-H".into(), h.into()]);
    }
    if plain == Plain::Flag {
        a.push("-P".into());
    }
    a.extend(["-i".into(), "-".into()]);
    a
}

pub(super) fn condor_version(tools: &Tools) -> Result<Version> {
    let ran = tools.run("condor_version", &[], None, &[])?;
    ran.show("condor_version");
    if !ran.success() {
        return Err(Error::config(format!(
            "condor_version failed ({}): check the HTCondor installation",
            ran.describe()
        )));
    }
    parse_version(&ran.stdout).ok_or_else(|| {
        Error::config(format!(
            "cannot read HTCondor's version from condor_version ({:?})",
            ran.stdout.lines().next().unwrap_or("")
        ))
    })
}
