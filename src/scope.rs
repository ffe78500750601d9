//! WLCG scope matching (WLCG Common JWT Profile, section "Scope-based authorization"):
//! does a token's granted scope allow a required one?
//!
//! - A scope without a path (`compute.read`, `wlcg`) allows only itself.
//! - `AUTHZ:PATH` allows the same `AUTHZ` on `PATH` and below it, whole path
//!   components only: `storage.read:/foo` allows `storage.read:/foo/bar`, not
//!   `storage.read:/foobar`.
//! - `storage.modify` is a superset of `storage.create` (the profile says so).
//! - A path with `..` never matches, so a token cannot be stretched upwards.
//!
//! One function for every caller: `get --require-scope` and `inspect --verify`. Also
//! what an issuer granted after a renewal or `init`: narrowed (a warning) or short of
//! `--require-scope` (an error).

use crate::error::{Error, Result};
use crate::token;

/// Does the granted scope `granted` allow the required scope `required`?
pub fn allows(granted: &str, required: &str) -> bool {
    if granted == required {
        return !has_dot_dot(required);
    }
    let (Some((g_authz, g_path)), Some((r_authz, r_path))) = (split(granted), split(required))
    else {
        return false;
    };
    let authz_ok =
        g_authz == r_authz || (g_authz == "storage.modify" && r_authz == "storage.create");
    authz_ok && path_covers(g_path, r_path)
}

/// Is `required` allowed by any of the granted scopes?
pub fn any_allows<S: AsRef<str>>(granted: &[S], required: &str) -> bool {
    granted.iter().any(|g| allows(g.as_ref(), required))
}

/// The required scopes that none of the granted scopes allow, in the order given.
pub fn missing<'a, G: AsRef<str>, R: AsRef<str>>(granted: &[G], required: &'a [R]) -> Vec<&'a str> {
    required
        .iter()
        .map(AsRef::as_ref)
        .filter(|r| !any_allows(granted, r))
        .collect()
}

/// `AUTHZ:PATH` with an absolute path; anything else has no path.
fn split(scope: &str) -> Option<(&str, &str)> {
    let (authz, path) = scope.split_once(':')?;
    (!authz.is_empty() && path.starts_with('/')).then_some((authz, path))
}

fn has_dot_dot(scope: &str) -> bool {
    scope
        .split_once(':')
        .is_some_and(|(_, p)| p.split('/').any(|c| c == ".."))
}

/// Does the granted path cover the required path, component by component?
/// Empty components and `.` are ignored (`/foo//bar/` is `/foo/bar`).
fn path_covers(granted: &str, required: &str) -> bool {
    let parts = |p: &str| -> Option<Vec<String>> {
        let mut out = Vec::new();
        for c in p.split('/') {
            match c {
                "" | "." => {}
                ".." => return None,
                c => out.push(c.to_string()),
            }
        }
        Some(out)
    };
    let (Some(g), Some(r)) = (parts(granted), parts(required)) else {
        return false;
    };
    g.len() <= r.len() && g.iter().zip(&r).all(|(a, b)| a == b)
}

/// What the issuer granted: the response's `scope`, else the JWT's `scope`/`scp`.
pub fn granted_scopes(response_scope: Option<&str>, access: &str) -> Option<Vec<String>> {
    match response_scope {
        Some(s) => Some(s.split_whitespace().map(str::to_string).collect()),
        None => token::decode(access).ok().map(|jwt| jwt.scopes()),
    }
}

/// Warn, without failing, when the issuer granted fewer scopes than asked for.
pub fn warn_narrowed(requested: &[String], granted: Option<&[String]>) {
    let Some(granted) = granted else { return };
    let missing: Vec<&str> = requested
        .iter()
        .filter(|s| !granted.contains(s))
        // Protocol scopes are not repeated in access tokens.
        .filter(|s| {
            !matches!(
                s.as_str(),
                "openid" | "offline_access" | "profile" | "email" | "wlcg"
            )
        })
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        tracing::warn!(
            "the issuer narrowed the scope: not granted: {}",
            missing.join(" ")
        );
    }
}

/// `--require-scope`: a scope the issuer did not grant is an error a person must
/// look at (exit 77); the new token is not installed.
pub fn check_required(required: &[String], granted: Option<&[String]>, from: &str) -> Result<()> {
    if required.is_empty() {
        return Ok(());
    }
    let granted = granted.unwrap_or(&[]);
    // WLCG matching: `storage.read:/` grants `storage.read:/data`.
    let missing = crate::scope::missing(granted, required);
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::perm(format!(
        "{from} did not grant the required scope {} (granted: {}); the old token is kept: ask the issuer's admins for it, or drop --require-scope",
        missing.join(" "),
        if granted.is_empty() {
            "nothing".to_string()
        } else {
            granted.join(" ")
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wlcg_scope_table() {
        // (granted, required, allowed)
        let table: &[(&str, &str, bool)] = &[
            ("storage.read:/", "storage.read:/", true),
            ("storage.read:/", "storage.read:/anything/deep", true),
            ("storage.read:/foo", "storage.read:/foo", true),
            ("storage.read:/foo", "storage.read:/foo/", true),
            ("storage.read:/foo", "storage.read:/foo/bar", true),
            ("storage.read:/foo/", "storage.read:/foo/bar", true),
            ("storage.read:/foo", "storage.read:/foobar", false),
            ("storage.read:/foo", "storage.read:/fo", false),
            ("storage.read:/foo/bar", "storage.read:/foo", false),
            ("storage.read:/foo", "storage.read:/", false),
            ("storage.read:/foo", "storage.read:/foo//bar", true),
            ("storage.read:/foo", "storage.read:/foo/./bar", true),
            ("storage.read:/foo", "storage.read:/foo/../etc", false),
            ("storage.read:/foo/..", "storage.read:/foo/../x", false),
            ("storage.read:/", "storage.read:/a/../b", false),
            ("storage.read:/foo", "storage.create:/foo", false),
            ("storage.create:/foo", "storage.modify:/foo", false),
            ("storage.modify:/foo", "storage.create:/foo/x", true),
            ("storage.modify:/foo", "storage.read:/foo", false),
            ("storage.read:/foo", "storage.readx:/foo", false),
            ("compute.read", "compute.read", true),
            ("compute.read", "compute.create", false),
            ("compute.read", "compute.read:/", false),
            ("condor:/READ", "condor:/READ", true),
            ("condor:/READ", "condor:/WRITE", false),
            ("openid", "openid", true),
            ("", "storage.read:/", false),
            ("storage.read:foo", "storage.read:foo/bar", false),
            ("storage.read:/Foo", "storage.read:/foo", false),
        ];
        for (g, r, want) in table {
            assert_eq!(allows(g, r), *want, "granted {g:?}, required {r:?}");
        }
    }

    #[test]
    fn missing_lists_what_no_grant_allows() {
        let granted = ["storage.read:/data", "compute.read"];
        let required = [
            "storage.read:/data/x",
            "storage.read:/database",
            "compute.read",
        ];
        assert_eq!(missing(&granted, &required), vec!["storage.read:/database"]);
        assert!(missing(&granted, &[] as &[&str]).is_empty());
    }
}
