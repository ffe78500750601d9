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
//! One function for every caller: `get --require-scope` and `inspect --verify`.

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
