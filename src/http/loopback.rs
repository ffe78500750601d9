//! Loopback: the one kind of host that plain http may reach, and that no proxy
//! ever sees. Its own file because both the URL check and proxy selection ask it,
//! and one rule for "is this loopback?" must serve both.

use std::net::IpAddr;

use crate::error::{Error, Result};

/// Is `host` a loopback name or address? Plain http is allowed only there.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// Check that `url` is https, or http to a loopback host. `what` names it in errors.
pub fn check_url(url: &str, what: &str) -> Result<url::Url> {
    // The URL parser silently drops tabs and newlines and escapes other control
    // characters, so the URL checked would not be the one later sent (or printed).
    if let Some(c) = url.chars().find(|c| c.is_control()) {
        return Err(Error::config(format!(
            "{what} {url:?} contains the control character {:?}: fix the URL",
            c
        )));
    }
    let parsed = url::Url::parse(url)
        .map_err(|e| Error::config(format!("{what} {url:?} is not a valid URL: {e}")))?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if parsed.host_str().is_some_and(is_loopback_host) => Ok(parsed),
        "http" => Err(Error::config(format!(
            "{what} {url} uses plain http; only https is allowed (http only for loopback test issuers)"
        ))),
        s => Err(Error::config(format!("{what} {url} has unsupported scheme {s:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_rules() {
        for (url, ok) in [
            ("http://127.0.0.1:8080/", true),
            ("http://localhost/", true),
            ("http://[::1]:99/", true),
            ("https://iam.example.org/", true),
            ("http://iam.example.org/", false),
            ("http://127.0.0.1.evil.org/", false),
            ("ftp://x/", false),
            ("not a url", false),
        ] {
            assert_eq!(check_url(url, "issuer").is_ok(), ok, "{url}");
        }
        for bad in [
            "http://127.0.0.1:1/\u{1}",
            "https://a\t.example/",
            "https://a.example/\n",
            "https://a.example/\u{7f}",
            "https://a.example/\u{85}",
        ] {
            let e = check_url(bad, "issuer").unwrap_err();
            assert_eq!(e.exit(), crate::error::Exit::Config, "{bad:?}");
            assert!(!e.message().chars().any(char::is_control), "{e}");
        }
    }
}
