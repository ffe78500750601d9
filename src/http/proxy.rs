//! Which proxy a URL goes through, by curl's rules (curl(1), "ENVIRONMENT"):
//! `https_proxy` for https URLs, `http_proxy` for http URLs, `all_proxy` when the
//! scheme's own is unset, each in lower or upper case (lower case first); `no_proxy`
//! lists hosts reached directly.
//! Loopback is never proxied: a proxy cannot reach this host's loopback, and would
//! see a plain-http request's secrets. Loopback means the URL's host is `localhost`,
//! an address in 127.0.0.0/8, or ::1; a name that merely resolves there is not.
//!
//! Separate from the client: it reads only the environment and a URL, and its rules
//! (curl's, not ureq's) are tested on their own.

use std::net::IpAddr;

use crate::error::{Error, Result};

use super::loopback::is_loopback_host;

/// Marks a failure reason as having gone through a proxy (for the advice).
pub(super) const VIA_PROXY: &str = "through the proxy";

/// The first of these variables that `get` finds set and not empty: (name, value).
fn first_env(
    names: &[&'static str],
    get: &dyn Fn(&str) -> Option<String>,
) -> Option<(&'static str, String)> {
    names.iter().find_map(|n| {
        get(n)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (*n, v.trim().to_string()))
    })
}

fn from_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The proxy variable that applies to `scheme`, by curl's order: (name, value).
fn proxy_var(scheme: &str, get: &dyn Fn(&str) -> Option<String>) -> Option<(&'static str, String)> {
    match scheme {
        "https" => first_env(
            &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"],
            get,
        ),
        "http" => first_env(&["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"], get),
        _ => None,
    }
}

/// Does `no_proxy` (curl's syntax) name `host`? Entries are separated by commas (and
/// spaces); `*` alone matches every host; a name matches itself and every name under
/// it (`example.org` and `.example.org` both match `iam.example.org`); an IP address
/// matches itself and a CIDR range (`10.0.0.0/8`, `fd00::/8`) its addresses. Case is
/// ignored, and so is a `:port` on an entry.
pub fn no_proxy_matches(list: &str, host: &url::Host<&str>) -> bool {
    let entries = list
        .split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|e| !e.is_empty());
    let ip = match host {
        url::Host::Ipv4(a) => Some(IpAddr::V4(*a)),
        url::Host::Ipv6(a) => Some(IpAddr::V6(*a)),
        url::Host::Domain(_) => None,
    };
    for e in entries {
        if e == "*" {
            return true;
        }
        // An IPv6 entry may come bracketed; a port after a name or IPv4 address is
        // dropped (an unbracketed IPv6 address has several colons and no port).
        let e = e.trim_start_matches('[');
        let e = match e.split_once(']') {
            Some((addr, _)) => addr,
            None if e.matches(':').count() == 1 => e.split(':').next().unwrap_or(e),
            None => e,
        };
        match (ip, host) {
            (Some(ip), _) => {
                let (net, bits) = match e.split_once('/') {
                    Some((n, b)) => (n, b.parse::<u32>().ok()),
                    None => (e, None),
                };
                if let Ok(net) = net.parse::<IpAddr>() {
                    if in_network(ip, net, bits) {
                        return true;
                    }
                }
            }
            (None, url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                let e = e
                    .trim_start_matches("*.")
                    .trim_start_matches('.')
                    .trim_end_matches('.')
                    .to_ascii_lowercase();
                if !e.is_empty()
                    && (name == e
                        || name
                            .strip_suffix(&e)
                            .is_some_and(|prefix| prefix.ends_with('.')))
                {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// Is `ip` in `net`/`bits` (all bits when `bits` is `None`)?
fn in_network(ip: IpAddr, net: IpAddr, bits: Option<u32>) -> bool {
    let (ip, net, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u32::from(a) as u128, u32::from(n) as u128, 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    let bits = bits.unwrap_or(width).min(width);
    if bits == 0 {
        return true;
    }
    let shift = width - bits;
    (ip >> shift) == (net >> shift)
}

/// A proxy URL for messages and logs: without a user name or password.
fn shown_proxy(value: &str) -> String {
    match url::Url::parse(value) {
        Ok(mut u) if u.has_host() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string().trim_end_matches('/').to_string()
        }
        _ => match value.rsplit_once('@') {
            Some((_, host)) => host.to_string(),
            None => value.to_string(),
        },
    }
}

/// The proxy `url` goes through, if any: (the variable it came from, the proxy as
/// shown in messages, the proxy). `None` for loopback hosts, hosts in `no_proxy`
/// (`NO_PROXY`), and when no variable applies. A proxy that cannot be used is a
/// configuration error (78) naming the variable.
pub fn proxy_for(url: &url::Url) -> Result<Option<(&'static str, String, ureq::Proxy)>> {
    let Some(host) = url.host() else {
        return Ok(None);
    };
    if url.host_str().is_some_and(is_loopback_host) {
        return Ok(None);
    }
    if let Some((_, list)) = first_env(&["no_proxy", "NO_PROXY"], &from_env) {
        if no_proxy_matches(&list, &host) {
            return Ok(None);
        }
    }
    let Some((var, value)) = proxy_var(url.scheme(), &from_env) else {
        return Ok(None);
    };
    let shown = shown_proxy(&value);
    let bad = |why: &str| {
        Error::config(format!(
            "{var}={shown} cannot be used: {why}; set it to the proxy's URL, e.g. \
             {var}=http://proxy.example.org:3128, or unset it"
        ))
    };
    // Like curl, a value without a scheme is an http proxy.
    let scheme = value
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_else(|| "http".into());
    if scheme != "http" && scheme != "https" {
        return Err(bad(&format!(
            "{scheme}:// proxies are not supported (only http:// and https:// proxies, which CONNECT)"
        )));
    }
    let proxy = ureq::Proxy::new(&value).map_err(|_| bad("not a proxy URL"))?;
    Ok(Some((var, shown, proxy)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_variables_by_curls_rules() {
        // `vars`: the environment, as `name=value` pairs separated by commas.
        let var = |scheme, vars: &'static str| {
            let get = move |n: &str| {
                vars.split(',')
                    .filter_map(|kv| kv.split_once('='))
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            };
            proxy_var(scheme, &get).map(|(n, _)| n)
        };
        // The scheme's own variable, lower case first, then all_proxy.
        for (scheme, vars, want) in [
            ("https", "https_proxy=a,HTTPS_PROXY=b", Some("https_proxy")),
            ("https", "HTTPS_PROXY=b,all_proxy=c", Some("HTTPS_PROXY")),
            ("https", "http_proxy=a,ALL_PROXY=c", Some("ALL_PROXY")),
            ("https", "http_proxy=a", None),
            ("http", "http_proxy=a,https_proxy=b", Some("http_proxy")),
            ("https", "https_proxy= ,all_proxy=c", Some("all_proxy")),
        ] {
            assert_eq!(var(scheme, vars), want, "{scheme} {vars}");
        }
    }

    #[test]
    fn no_proxy_by_curls_rules() {
        let m = |list: &str, url: &str| {
            let u = url::Url::parse(url).unwrap();
            no_proxy_matches(list, &u.host().unwrap())
        };
        for (list, url, matches) in [
            ("*", "https://iam.example.org/", true),
            ("example.org", "https://iam.example.org/", true),
            ("example.org", "https://example.org/", true),
            (".example.org", "https://iam.example.org/", true),
            ("*.example.org", "https://iam.example.org/", true),
            (
                "other.net, EXAMPLE.org:443",
                "https://Iam.Example.Org./x",
                true,
            ),
            ("example.org", "https://badexample.org/", false),
            ("iam.example.org", "https://example.org/", false),
            ("", "https://iam.example.org/", false),
            ("10.0.0.0/8", "https://10.1.2.3/", true),
            ("10.1.2.3", "https://10.1.2.3:8443/", true),
            ("10.0.0.0/8", "https://11.1.2.3/", false),
            ("fd00::/8", "https://[fd12::1]/", true),
            ("[fd12::1]", "https://[fd12::1]/", true),
            ("fd00::/8", "https://[fe80::1]/", false),
            ("10.0.0.0/8", "https://ten.example.org/", false),
        ] {
            assert_eq!(m(list, url), matches, "{list:?} {url}");
        }
    }

    #[test]
    fn proxies_are_shown_without_credentials() {
        assert_eq!(
            shown_proxy("http://user:pw@proxy:3128"),
            "http://proxy:3128"
        );
        assert_eq!(shown_proxy("user:pw@proxy:3128"), "proxy:3128");
    }
}
