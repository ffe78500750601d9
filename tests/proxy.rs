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

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
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
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = p.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![name.clone()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let ca_file = env.write_private("ca.pem", &ca.pem());
    let cert = env.write_private("leaf.pem", &leaf.pem());
    let key = env.write_private("leaf.key", &leaf_key.serialize_pem());
    let mut iss = Issuer::start_with(&[
        "--https",
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--bind",
        &ip.to_string(),
        "--url-host",
        &name,
    ]);
    iss.trust(&ca.pem());
    NamedIssuer {
        iss,
        ca: ca_file,
        name,
    }
}

/// A running tinyproxy on 127.0.0.1, killed on drop.
struct Tinyproxy {
    child: Child,
    log: PathBuf,
    url: String,
}

impl Tinyproxy {
    fn start(dir: &Path) -> Tinyproxy {
        // A free port: tinyproxy cannot be told to pick one.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("tinyproxy.log");
        let conf = dir.join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogFile \"{}\"\nLogLevel Connect\n\
                 MaxClients 20\nAllow 127.0.0.1\n",
                log.display()
            ),
        )
        .unwrap();
        let child = Command::new("tinyproxy")
            .args(["-d", "-c"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "tinyproxy is missing: run scripts/install-peers.sh (Debian package tinyproxy)",
            );
        let t = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "tinyproxy did not start"
            );
            wait_ms(20);
        }
        Tinyproxy {
            child,
            log,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The CONNECT requests the proxy received, as "host:port".
    fn connects(&self) -> Vec<String> {
        let Ok(f) = std::fs::File::open(&self.log) else {
            return Vec::new();
        };
        BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| {
                l.split_once("): CONNECT ")
                    .map(|(_, rest)| rest.split(' ').next().unwrap_or("").to_string())
            })
            .collect()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port where nothing listens: a proxy that is down.
fn dead_proxy() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

/// `get` renewing from a fresh credential of `iss`, with these variables.
fn get(env: &Env, n: &NamedIssuer, vars: &[(&str, &str)]) -> Output {
    let (rt, _) = n
        .iss
        .mint("robot-basic", "openid offline_access storage.read:/", None);
    let cred = env.credential(&n.iss, "robot-basic", Some(&rt));
    let _ = std::fs::remove_file(env.path("bt"));
    let mut cmd = env.cmd();
    cmd.args(["get", "-o", "bt", "--deadline", "20s", "--cafile"])
        .arg(&n.ca)
        .arg("-c")
        .arg(&cred);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    run(&mut cmd)
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
    let dead = dead_proxy();
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
    let (rt, _) = n
        .iss
        .mint("robot-basic", "openid offline_access storage.read:/", None);
    let meta = n.iss.get("/.well-known/openid-configuration");
    let cred = env.write_private(
        "direct.json",
        &json!({"version": 1, "token_endpoint": meta["token_endpoint"], "client_id": "robot-basic",
                "client_secret": "robot-basic-secret", "refresh_token": rt})
        .to_string(),
    );
    let _ = std::fs::remove_file(env.path("bt"));
    let r = run(env
        .cmd()
        .args(["get", "-o", "bt", "--deadline", "10s", "--cafile"])
        .arg(&n.ca)
        .arg("-c")
        .arg(&cred)
        .env("https_proxy", &dead));
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(!r.stderr.contains("may have reached"), "{}", r.stderr);
    let r = run(env
        .cmd()
        .args(["get", "-o", "bt", "--cafile"])
        .arg(&n.ca)
        .arg("-c")
        .arg(&cred)
        .env("https_proxy", &proxy.url));
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
    let env = Env::new();
    let iss = Issuer::start();
    let (rt, _) = iss.mint("robot-basic", "openid offline_access storage.read:/", None);
    let cred = env.credential(&iss, "robot-basic", Some(&rt));
    let dead = dead_proxy();
    let mut cmd = env.cmd();
    cmd.args(["get", "-o", "bt", "-c"]).arg(&cred);
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
