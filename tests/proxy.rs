//! Proxies, by curl's rules, through a real Debian `tinyproxy` (installed by
//! scripts/install-peers.sh) that the tests start on 127.0.0.1: an https renewal goes
//! through it with CONNECT (counted in its log), `no_proxy` bypasses it, loopback never
//! uses it.
//!
//! Loopback URLs are never proxied, so the https issuer must be reached by a URL whose
//! host does not look like loopback: a name of this host that resolves to a loopback
//! address (this host's own name, `ip6-localhost`, `localhost.localdomain`, from
//! /etc/hosts). The issuer listens on that address only; the proxy resolves the name.

mod common;

use std::net::{IpAddr, TcpListener, ToSocketAddrs};
use std::path::PathBuf;

use common::proxy::Tinyproxy;
use common::tls::TestCa;
use common::*;
use serde_json::json;

/// A name that resolves to a loopback address but is not loopback by robot-token's
/// rule (`localhost`, 127.0.0.0/8, ::1 written in the URL): (name, address).
fn loopback_alias() -> (String, IpAddr) {
    let mut names = Vec::new();
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        names.push(h.trim().to_string());
    }
    if let Ok(hosts) = std::fs::read_to_string("/etc/hosts") {
        for line in hosts.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            if let Some(addr) = words.next().and_then(|a| a.parse::<IpAddr>().ok()) {
                if addr.is_loopback() {
                    names.extend(words.map(str::to_string));
                }
            }
        }
    }
    for name in names {
        if name.is_empty() || robot_token::http::is_loopback_host(&name) {
            continue;
        }
        let Ok(addrs) = (name.as_str(), 443).to_socket_addrs() else {
            continue;
        };
        let addrs: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
        if let Some(ip) = addrs
            .iter()
            .find(|ip| ip.is_ipv4() && ip.is_loopback())
            .or_else(|| addrs.iter().find(|ip| ip.is_loopback()))
        {
            // The issuer must be able to listen there.
            if TcpListener::bind((*ip, 0)).is_ok() {
                return (name, *ip);
            }
        }
    }
    panic!(
        "no name of this host resolves to a loopback address other than `localhost`: the \
         proxy tests need one (Debian's /etc/hosts has `127.0.1.1 <hostname>` and \
         `::1 ip6-localhost`)"
    );
}

/// An https issuer reached as `https://NAME:PORT`, with its CA's PEM file.
struct NamedIssuer {
    iss: Issuer,
    ca: PathBuf,
    name: String,
}

fn named_issuer(env: &Env) -> NamedIssuer {
    let (name, ip) = loopback_alias();
    let ca = TestCa::new();
    let ca_file = env.write_private("ca.pem", &ca.pem());
    let (cert, key) = ca.leaf(env.dir.path(), "leaf", &[&name], false, None);
    let mut iss = Issuer::start_https(
        &cert,
        &key,
        &["--bind", &ip.to_string(), "--url-host", &name],
    );
    iss.trust(&ca.pem());
    NamedIssuer {
        iss,
        ca: ca_file,
        name,
    }
}

/// `get` renewing from a fresh credential of `iss`, with these variables.
fn get(env: &Env, n: &NamedIssuer, vars: &[(&str, &str)]) -> Output {
    let (cred, _) = env.minted_credential(&n.iss, "robot-basic");
    let _ = std::fs::remove_file(env.path("bt"));
    env.get("bt", &cred)
        .args(["--deadline", "20s", "--cafile"])
        .arg(&n.ca)
        .envs(vars.iter().copied())
        .run()
}

#[test]
fn https_renewal_goes_through_the_proxy_with_connect() {
    let env = Env::new();
    let n = named_issuer(&env);
    let proxy = Tinyproxy::start(env.dir.path());
    let target = format!("{}:{}", n.name, n.iss.url.rsplit(':').next().unwrap());
    for var in ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"] {
        let before = proxy.connects().len();
        n.iss.reset();
        let r = get(&env, &n, &[(var, &proxy.url)]);
        assert_eq!(r.code, 0, "{var}: {}", r.stderr);
        assert!(lifetime(&read(&env.path("bt"))) > 3000);
        let connects = proxy.connects();
        let new = &connects[before..];
        assert!(!new.is_empty(), "{var}: the proxy saw no CONNECT");
        assert!(new.iter().all(|c| *c == target), "{var}: {new:?}");
        // Discovery and the token request, over the tunnels the proxy opened.
        assert_eq!(n.iss.requests("discovery") + n.iss.requests("token"), 2);
    }
    // The scheme's own variable wins over all_proxy, lower case over upper case, and
    // http_proxy does not apply to https: each time the dead proxy is not used.
    for vars in [
        vec![
            ("https_proxy", proxy.url.as_str()),
            ("all_proxy", "http://127.0.0.1:1"),
        ],
        vec![
            ("https_proxy", proxy.url.as_str()),
            ("HTTPS_PROXY", "http://127.0.0.1:1"),
        ],
        vec![("http_proxy", "http://127.0.0.1:1")],
    ] {
        let r = get(&env, &n, &vars);
        assert_eq!(r.code, 0, "{vars:?}: {}", r.stderr);
    }
}

#[test]
fn no_proxy_bypasses_the_proxy() {
    let env = Env::new();
    let n = named_issuer(&env);
    let proxy = Tinyproxy::start(env.dir.path());
    let domain = n.name.split_once('.').map(|(_, d)| d.to_string());
    let mut lists = vec![
        n.name.clone(),
        n.name.to_uppercase(),
        format!("other.example.org, {}", n.name),
        "*".to_string(),
    ];
    if let Some(d) = domain {
        lists.push(format!(".{d}"));
    }
    for var in ["no_proxy", "NO_PROXY"] {
        for list in &lists {
            let r = get(&env, &n, &[("https_proxy", &proxy.url), (var, list)]);
            assert_eq!(r.code, 0, "{var}={list}: {}", r.stderr);
        }
    }
    assert!(proxy.connects().is_empty(), "{:?}", proxy.connects());
    // A list that does not name the host leaves the proxy in use.
    let r = get(
        &env,
        &n,
        &[
            ("https_proxy", &proxy.url),
            ("no_proxy", "example.org,10.0.0.0/8"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!proxy.connects().is_empty());
}

#[test]
fn a_proxy_that_is_down_is_named_and_temporary() {
    let env = Env::new();
    let n = named_issuer(&env);
    let dead = dead_url();
    let r = get(&env, &n, &[("https_proxy", &dead)]);
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("through the proxy {dead} (https_proxy)"))
            && r.stderr.contains("check that the proxy is up")
            && r.stderr.contains("no_proxy"),
        "{}",
        r.stderr
    );
    assert_eq!(n.iss.requests("discovery") + n.iss.requests("token"), 0);
    // A refresh request whose CONNECT is refused never reached the issuer: no "may have
    // reached the issuer", and the refresh token is still good afterwards.
    let proxy = Tinyproxy::start(env.dir.path());
    let rt = n.iss.refresh_token("robot-basic");
    let meta = n.iss.get("/.well-known/openid-configuration");
    let cred = env.write_private(
        "direct.json",
        &json!({"version": 1, "token_endpoint": meta["token_endpoint"], "client_id": "robot-basic",
                "client_secret": "robot-basic-secret", "refresh_token": rt})
        .to_string(),
    );
    let _ = std::fs::remove_file(env.path("bt"));
    let r = env
        .get("bt", &cred)
        .args(["--deadline", "10s", "--cafile"])
        .arg(&n.ca)
        .env("https_proxy", &dead)
        .run();
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(!r.stderr.contains("may have reached"), "{}", r.stderr);
    let r = env
        .get("bt", &cred)
        .arg("--cafile")
        .arg(&n.ca)
        .env("https_proxy", &proxy.url)
        .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    // A proxy that cannot be used at all is a configuration error naming the variable,
    // without its password.
    let r = get(
        &env,
        &n,
        &[("https_proxy", "socks5://user:hunter2@127.0.0.1:1080")],
    );
    assert_eq!(r.code, 78, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("https_proxy=socks5://127.0.0.1:1080 cannot be used")
            && !r.stderr.contains("hunter2"),
        "{}",
        r.stderr
    );
}

#[test]
fn loopback_issuers_are_never_proxied() {
    // The usual test issuer, https on 127.0.0.1: every proxy variable points at a
    // dead proxy, and the renewal works.
    let iss = Issuer::start();
    let env = Env::new();
    let (cred, _) = env.minted_credential(&iss, "robot-basic");
    let dead = dead_url();
    let mut cmd = env.get("bt", &cred);
    for var in [
        "https_proxy",
        "HTTPS_PROXY",
        "http_proxy",
        "HTTP_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env(var, &dead);
    }
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.stderr);
}
