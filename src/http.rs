//! The HTTP client: TLS trust, timeouts, size caps, and the retry policy.
//!
//! Built only when a renewal needs the network: the fresh-token path never gets here.
//! Two rules matter more than speed:
//! - a request that changes state at the issuer (a refresh-token redemption) is sent
//!   at most once per run; it is retried only when it provably never left, and
//! - idempotent requests are retried with exponential backoff and full jitter,
//!   honouring `Retry-After`, all within one overall deadline.

use std::cell::OnceCell;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::Agent;

use crate::error::{Error, Result};
use crate::store::random_fraction;

/// Largest response body we read: discovery documents and token responses are a few KiB.
pub const MAX_BODY: u64 = 1024 * 1024;
const MAX_ATTEMPTS: u32 = 4;
const USER_AGENT: &str = concat!("robot-token/", env!("CARGO_PKG_VERSION"));

/// Extra trust on top of the system store.
#[derive(Clone, Debug, Default)]
pub struct TrustOptions {
    /// A hashed CA directory, as /etc/grid-security/certificates.
    pub capath: Option<PathBuf>,
    pub cafile: Option<PathBuf>,
}

/// May this request be sent again after a failure?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Safe to repeat: discovery, client_credentials, reads.
    Idempotent,
    /// Must reach the server at most once: refresh-token redemption.
    AtMostOnce,
}

/// What a request sends: a GET, or a POST with a body of one kind.
#[derive(Clone, Copy, Debug)]
pub enum Body<'a> {
    Get,
    /// `application/x-www-form-urlencoded` (OAuth2 token endpoints).
    Form(&'a str),
    /// `application/json` (Vault).
    Json(&'a str),
    /// A POST without a body (Vault logins and revocations).
    Empty,
    /// A DELETE (Vault: remove a stored secret).
    Delete,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    pub retry_after: Option<Duration>,
    pub location: Option<String>,
    /// The `Date` header: the server's clock (for `get --dry-run`'s skew check).
    pub date: Option<String>,
}

/// A transport failure, classified by whether the request may have reached the server.
#[derive(Debug)]
pub struct Failure {
    pub maybe_sent: bool,
    pub kind: FailureKind,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A passing network fault: a later run may succeed.
    Network,
    /// The server's certificate was not accepted: a trust problem a person must fix
    /// (wrong CA, wrong host, expired), not a passing network fault.
    Tls,
    /// Our own trust settings are unusable (--cafile without certificates, ...).
    Config,
}

impl Failure {
    /// The error for a failed request to `url`: `what` names the request.
    pub fn into_error(self, what: &str, url: &str) -> Error {
        match self.kind {
            FailureKind::Tls => Error::config(format!(
                "{what} {url}: TLS certificate not accepted ({}): check the URL, or trust the issuer's CA with --cafile or --capath",
                self.reason
            )),
            FailureKind::Config => Error::config(self.reason),
            FailureKind::Network => Error::temp(format!(
                "{what} {url}: {}: {}",
                self.reason,
                network_advice(&self.reason)
            )),
        }
    }
}

/// What to check after a network failure, by its reason (the texts `classify` writes,
/// and `once`'s note of the proxy it went through).
fn network_advice(reason: &str) -> &'static str {
    if reason.contains(VIA_PROXY) {
        "check that the proxy is up and lets this host CONNECT to that host and port, or \
         name the host in no_proxy if it is reachable directly (a later run retries)"
    } else if reason.starts_with("connection refused") {
        "nothing listens there: check the URL's host and port and that the server is up; \
         if this host reaches the web only through a proxy, set https_proxy (a later run retries)"
    } else if reason.starts_with("host not found") || reason.contains("lookup address") {
        "check the host name in the URL and this host's DNS; if only a proxy can resolve it, \
         set https_proxy (a later run retries)"
    } else if reason.starts_with("timed out") {
        "the server or the network is slow or a firewall drops the packets: check the URL and \
         whether a proxy is needed (https_proxy); --timeout sets the wait (a later run retries)"
    } else if reason.contains("unreachable") {
        "no route to that host: check the URL, this host's network, and whether a proxy is \
         needed (https_proxy) (a later run retries)"
    } else {
        "a later run retries; if it keeps failing, check the URL, the network and any proxy"
    }
}

pub struct Http {
    trust: TrustOptions,
    timeout: Duration,
    deadline: Instant,
    plain: OnceCell<Agent>,
    /// https through the proxy of the environment (`proxy_for`).
    tls: OnceCell<std::result::Result<Agent, String>>,
    /// https without any proxy: loopback hosts, `no_proxy` hosts, no proxy set.
    tls_direct: OnceCell<std::result::Result<Agent, String>>,
}

// ---------------------------------------------------------------------------
// Proxies, by curl's rules (curl(1), "ENVIRONMENT"): `https_proxy` for https URLs,
// `http_proxy` for http URLs, `all_proxy` when the scheme's own is unset, each in
// lower or upper case (lower case first); `no_proxy` lists hosts reached directly.
// Loopback is never proxied: a proxy cannot reach this host's loopback, and would
// see a plain-http request's secrets. Loopback means the URL's host is `localhost`,
// an address in 127.0.0.0/8, or ::1; a name that merely resolves there is not.

/// Marks a failure reason as having gone through a proxy (for the advice).
const VIA_PROXY: &str = "through the proxy";

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

/// Check that explicitly given CA locations are readable, without loading them.
pub fn check_trust(t: &TrustOptions) -> Result<()> {
    if let Some(f) = &t.cafile {
        // Opened, not read (that waits for the first https request): a FIFO or a
        // runaway file is refused before anything is sent, and never waited on.
        use crate::store::FileError;
        let (_, meta) = crate::store::open_regular(f).map_err(|e| match e {
            FileError::Io { err, .. } => Error::config(format!(
                "cannot read --cafile {}: {}",
                f.display(),
                crate::error::io_reason(&err)
            )),
            e => Error::config(format!("--cafile: {e}")),
        })?;
        if meta.len() > MAX_CA_FILE_LEN as u64 {
            return Err(Error::config(format!(
                "--cafile: {}",
                FileError::TooLarge {
                    path: f.clone(),
                    max: MAX_CA_FILE_LEN
                }
            )));
        }
    }
    if let Some(d) = &t.capath {
        fs::read_dir(d).map_err(|e| {
            Error::config(format!(
                "cannot read --capath {}: {}",
                d.display(),
                crate::error::io_reason(&e)
            ))
        })?;
    }
    Ok(())
}

/// A CA file larger than this is not a CA file (Debian's whole bundle is ~220 KiB).
pub const MAX_CA_FILE_LEN: usize = 4 * 1024 * 1024;

fn pem_certs(
    path: &Path,
    out: &mut Vec<Certificate<'static>>,
) -> std::result::Result<usize, crate::store::FileError> {
    let opened = crate::store::open_regular(path)?;
    let data = crate::store::read_capped(path, opened, MAX_CA_FILE_LEN)?;
    let mut n = 0;
    for item in ureq::tls::parse_pem(&data).flatten() {
        if let ureq::tls::PemItem::Certificate(c) = item {
            out.push(c);
            n += 1;
        }
    }
    Ok(n)
}

/// The system roots plus `--cafile` and every certificate in `--capath`.
fn load_roots(t: &TrustOptions) -> std::result::Result<Vec<Certificate<'static>>, String> {
    let mut roots = Vec::new();
    let native = rustls_native_certs::load_native_certs();
    for c in native.certs {
        roots.push(Certificate::from_der(c.as_ref()).to_owned());
    }
    let system = roots.len();
    if let Some(f) = &t.cafile {
        let n = pem_certs(f, &mut roots).map_err(|e| format!("--cafile: {e}"))?;
        if n == 0 {
            return Err(format!("--cafile {} holds no PEM certificate", f.display()));
        }
    }
    if let Some(d) = &t.capath {
        let entries =
            fs::read_dir(d).map_err(|e| format!("cannot read --capath {}: {e}", d.display()))?;
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            // Hashed links (abcd1234.0) and plain .pem/.crt files; skip CRLs (.r0),
            // signing policies and namespaces that share the grid CA directory.
            let is_cert = name.ends_with(".pem")
                || name.ends_with(".crt")
                || name
                    .rsplit_once('.')
                    .is_some_and(|(h, n)| h.len() == 8 && n.chars().all(|c| c.is_ascii_digit()));
            if is_cert {
                let _ = pem_certs(&e.path(), &mut roots);
            }
        }
    }
    tracing::debug!(
        "trust store: {system} system roots, {} added",
        roots.len() - system
    );
    if roots.is_empty() {
        return Err("no trusted CA certificates found; use --cafile or --capath".into());
    }
    Ok(roots)
}

/// Is this TLS failure one that only the handshake produces (certificate, protocol
/// negotiation)? Then the request was never sent.
fn handshake_error(e: &ureq::Error) -> bool {
    use rustls::Error as R;
    let r = match e {
        ureq::Error::Rustls(r) => Some(r),
        ureq::Error::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<R>()),
        ureq::Error::Tls(_) => return true,
        _ => None,
    };
    matches!(
        r,
        Some(
            R::InvalidCertificate(_)
                | R::InvalidCertRevocationList(_)
                | R::NoCertificatesPresented
                | R::PeerIncompatible(_)
                | R::UnsupportedNameType
                | R::AlertReceived(_)
                | R::InappropriateHandshakeMessage { .. }
                | R::InvalidMessage(_)
        )
    )
}

fn classify(e: ureq::Error) -> Failure {
    use ureq::Error as E;
    use ureq::Timeout as T;
    let reason = e.to_string();
    // The system resolver's failure reaches us as a plain I/O error: nothing was sent.
    let lookup = matches!(&e, E::Io(io) if io.to_string().contains("failed to lookup address"));
    let maybe_sent = !lookup
        && match &e {
            E::HostNotFound
            | E::ConnectionFailed
            | E::BadUri(_)
            | E::Http(_)
            | E::InvalidProxyUrl
            | E::ConnectProxyFailed(_) => false,
            E::Tls(_) | E::Rustls(_) => false,
            E::Timeout(T::Resolve | T::Connect) => false,
            E::Io(io) => !matches!(
                io.kind(),
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::HostUnreachable
                    | io::ErrorKind::NetworkUnreachable
                    | io::ErrorKind::AddrNotAvailable
                    | io::ErrorKind::NotFound
            ),
            _ => true,
        };
    // ureq reports a refused certificate as an I/O error wrapping the rustls error.
    let in_io = |e: &ureq::Error| match e {
        E::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()),
        _ => false,
    };
    let kind = if matches!(&e, E::Rustls(_) | E::Tls(_)) || in_io(&e) {
        FailureKind::Tls
    } else {
        FailureKind::Network
    };
    // A refused certificate ends the handshake: no byte of the request left. Only a
    // TLS failure after the handshake (a bad record mid-answer) may follow a send.
    let maybe_sent = maybe_sent && !(kind == FailureKind::Tls && handshake_error(&e));
    let reason = match &e {
        E::Timeout(_) => "timed out".to_string(),
        E::Io(io) if io.kind() == io::ErrorKind::ConnectionRefused => "connection refused".into(),
        E::Io(io) if lookup => format!("host not found ({})", crate::error::io_reason(io)),
        E::Io(io) if kind == FailureKind::Tls => io
            .get_ref()
            .map(|inner| inner.to_string())
            .unwrap_or_else(|| io.to_string()),
        E::Io(io) => format!("connection failed: {}", crate::error::io_reason(io)),
        E::HostNotFound => "host not found".into(),
        E::Rustls(r) => format!("TLS: {r}"),
        _ => reason,
    };
    Failure {
        maybe_sent,
        kind,
        reason,
    }
}

impl Http {
    pub fn new(trust: TrustOptions, timeout: Duration, deadline: Instant) -> Http {
        Http {
            trust,
            timeout,
            deadline,
            plain: OnceCell::new(),
            tls: OnceCell::new(),
            tls_direct: OnceCell::new(),
        }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// An agent; `proxy`: the proxy it goes through (see `proxy_for`; never for
    /// loopback). ureq's own reading of the environment is not used: its order and
    /// its `NO_PROXY` rules are not curl's.
    fn config(tls: Option<TlsConfig>, proxy: Option<ureq::Proxy>) -> Agent {
        let mut b = Agent::config_builder()
            .proxy(proxy)
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(USER_AGENT)
            .max_response_header_size(64 * 1024)
            // Servers drop idle keep-alive connections after a few seconds (Node and
            // Apache: 5 s). Reusing one after a device-flow poll interval or a backoff
            // ends in a reset that looks like a lost answer; a fresh connection costs
            // one handshake. Discovery followed by the token request still shares one.
            .max_idle_age(Duration::from_secs(2));
        if let Some(t) = tls {
            b = b.tls_config(t);
        }
        b.build().into()
    }

    /// The agent for `url`, and the proxy it goes through (for messages); TLS roots
    /// are loaded only when an https URL is used.
    fn agent(&self, url: &str) -> Result<(&Agent, Option<String>)> {
        let parsed = url::Url::parse(url).ok();
        let proxy = match &parsed {
            Some(u) => proxy_for(u)?,
            None => None,
        };
        let via = proxy
            .as_ref()
            .map(|(var, shown, _)| format!("{VIA_PROXY} {shown} ({var})"));
        if url.starts_with("https://") {
            let cell = if proxy.is_some() {
                &self.tls
            } else {
                &self.tls_direct
            };
            let r = cell.get_or_init(|| {
                let roots = load_roots(&self.trust)?;
                let tls = TlsConfig::builder()
                    .root_certs(RootCerts::Specific(Arc::new(roots)))
                    .build();
                Ok(Http::config(Some(tls), proxy.map(|(_, _, p)| p)))
            });
            if let Some(v) = &via {
                tracing::debug!("{url} goes {v}");
            }
            r.as_ref()
                .map(|a| (a, via))
                .map_err(|m| Error::config(m.clone()))
        } else {
            // Plain http is only ever allowed to loopback hosts (check_url), which are
            // never proxied.
            Ok((self.plain.get_or_init(|| Http::config(None, None)), None))
        }
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn once(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
    ) -> std::result::Result<Reply, Failure> {
        let (agent, via) = self.agent(url).map_err(|e| Failure {
            maybe_sent: false,
            kind: FailureKind::Config,
            reason: e.message().to_string(),
        })?;
        let classify = |e: ureq::Error| {
            let mut f = classify(e);
            if let Some(v) = &via {
                f.reason = format!("{} {v}", f.reason);
            }
            f
        };
        let t = Some(
            self.timeout
                .min(self.remaining())
                .max(Duration::from_millis(1)),
        );
        let resp = match body {
            Body::Get | Body::Delete => {
                let mut req = match body {
                    Body::Delete => agent.delete(url),
                    _ => agent.get(url),
                };
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                req.config()
                    .timeout_connect(t)
                    .timeout_send_request(t)
                    .timeout_recv_response(t)
                    .timeout_recv_body(t)
                    .build()
                    .call()
            }
            Body::Form(_) | Body::Json(_) | Body::Empty => {
                let mut req = agent.post(url);
                match body {
                    Body::Form(_) => {
                        req = req.header("Content-Type", "application/x-www-form-urlencoded")
                    }
                    Body::Json(_) => req = req.header("Content-Type", "application/json"),
                    _ => {}
                }
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                let req = req
                    .config()
                    .timeout_connect(t)
                    .timeout_send_request(t)
                    .timeout_send_body(t)
                    .timeout_recv_response(t)
                    .timeout_recv_body(t)
                    .build();
                match body {
                    Body::Form(b) | Body::Json(b) => req.send(b),
                    _ => req.send_empty(),
                }
            }
        };
        let mut resp = resp.map_err(classify)?;
        let status = resp.status().as_u16();
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header("content-type");
        let location = header("location");
        let date = header("date");
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| {
                // The status line arrived, so the server has the request.
                let mut f = classify(e);
                f.maybe_sent = true;
                f.reason = format!("response cut off ({})", f.reason);
                f
            })?;
        Ok(Reply {
            status,
            body,
            content_type,
            retry_after,
            location,
            date,
        })
    }

    /// Send with the retry policy. Returns the final reply (any status) or the final
    /// transport failure. A 5xx or 429 reply is retried only when `Idempotent`.
    /// `form` is a POST body (`application/x-www-form-urlencoded`); `None` is a GET.
    pub fn send(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        form: Option<&str>,
        retry: Retry,
    ) -> std::result::Result<Reply, Failure> {
        let body = match form {
            Some(f) => Body::Form(f),
            None => Body::Get,
        };
        self.request(url, headers, body, retry)
    }

    /// Like [`Http::send`], for any [`Body`] (JSON APIs such as Vault's).
    pub fn request(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
        retry: Retry,
    ) -> std::result::Result<Reply, Failure> {
        // Whatever secret this request carries is noted before it leaves, so that an
        // answer echoing it is redacted (`secret::untrusted_text`, error messages, logs).
        crate::secret::note_request(
            headers,
            match body {
                Body::Form(f) => Some(f),
                _ => None,
            },
            match body {
                Body::Json(j) => Some(j),
                _ => None,
            },
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let result = self.once(url, headers, body);
            tracing::debug!(
                "{} {} -> {} in {:.1} ms (attempt {attempt})",
                match body {
                    Body::Get => "GET",
                    Body::Delete => "DELETE",
                    _ => "POST",
                },
                url,
                match &result {
                    Ok(r) => r.status.to_string(),
                    Err(f) => f.reason.clone(),
                },
                started.elapsed().as_secs_f64() * 1e3
            );
            let (retryable, hint) = match &result {
                Ok(r)
                    if r.status == 429
                        || r.status == 502
                        || r.status == 503
                        || r.status == 504
                        || r.status == 500 =>
                {
                    (retry == Retry::Idempotent, r.retry_after)
                }
                Ok(_) => (false, None),
                Err(f) if f.kind != FailureKind::Network => (false, None),
                Err(f) => (retry == Retry::Idempotent || !f.maybe_sent, None),
            };
            if !retryable || attempt >= MAX_ATTEMPTS {
                return result;
            }
            // Full jitter: spread a fleet's retries instead of synchronising them.
            let backoff = Duration::from_millis(250 << (attempt - 1)).mul_f64(random_fraction());
            let wait = hint.unwrap_or(backoff);
            // Saturating: a Retry-After of 2^64-1 s must not overflow.
            if wait.saturating_add(Duration::from_millis(50)) >= self.remaining() {
                tracing::debug!("no time left for another attempt within the deadline");
                return result;
            }
            tracing::info!("retrying {url} in {:.1} s", wait.as_secs_f64());
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_variables_by_curls_rules() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |n: &str| {
                vars.iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            }
        };
        let var = |scheme, vars| proxy_var(scheme, &env(vars)).map(|(n, _)| n);
        // The scheme's own variable, lower case first, then all_proxy.
        assert_eq!(
            var("https", &[("https_proxy", "a"), ("HTTPS_PROXY", "b")]),
            Some("https_proxy")
        );
        assert_eq!(
            var("https", &[("HTTPS_PROXY", "b"), ("all_proxy", "c")]),
            Some("HTTPS_PROXY")
        );
        assert_eq!(
            var("https", &[("http_proxy", "a"), ("ALL_PROXY", "c")]),
            Some("ALL_PROXY")
        );
        assert_eq!(var("https", &[("http_proxy", "a")]), None);
        assert_eq!(
            var("http", &[("http_proxy", "a"), ("https_proxy", "b")]),
            Some("http_proxy")
        );
        assert_eq!(
            var("https", &[("https_proxy", " "), ("all_proxy", "c")]),
            Some("all_proxy")
        );
    }

    #[test]
    fn no_proxy_by_curls_rules() {
        let m = |list: &str, url: &str| {
            let u = url::Url::parse(url).unwrap();
            no_proxy_matches(list, &u.host().unwrap())
        };
        assert!(m("*", "https://iam.example.org/"));
        assert!(m("example.org", "https://iam.example.org/"));
        assert!(m("example.org", "https://example.org/"));
        assert!(m(".example.org", "https://iam.example.org/"));
        assert!(m("*.example.org", "https://iam.example.org/"));
        assert!(m(
            "other.net, EXAMPLE.org:443",
            "https://Iam.Example.Org./x"
        ));
        assert!(!m("example.org", "https://badexample.org/"));
        assert!(!m("iam.example.org", "https://example.org/"));
        assert!(!m("", "https://iam.example.org/"));
        assert!(m("10.0.0.0/8", "https://10.1.2.3/"));
        assert!(m("10.1.2.3", "https://10.1.2.3:8443/"));
        assert!(!m("10.0.0.0/8", "https://11.1.2.3/"));
        assert!(m("fd00::/8", "https://[fd12::1]/"));
        assert!(m("[fd12::1]", "https://[fd12::1]/"));
        assert!(!m("fd00::/8", "https://[fe80::1]/"));
        assert!(!m("10.0.0.0/8", "https://ten.example.org/"));
    }

    #[test]
    fn proxies_are_shown_without_credentials() {
        assert_eq!(
            shown_proxy("http://user:pw@proxy:3128"),
            "http://proxy:3128"
        );
        assert_eq!(shown_proxy("user:pw@proxy:3128"), "proxy:3128");
    }

    #[test]
    fn loopback_rules() {
        assert!(check_url("http://127.0.0.1:8080/", "issuer").is_ok());
        assert!(check_url("http://localhost/", "issuer").is_ok());
        assert!(check_url("http://[::1]:99/", "issuer").is_ok());
        assert!(check_url("https://iam.example.org/", "issuer").is_ok());
        assert!(check_url("http://iam.example.org/", "issuer").is_err());
        assert!(check_url("http://127.0.0.1.evil.org/", "issuer").is_err());
        assert!(check_url("ftp://x/", "issuer").is_err());
        assert!(check_url("not a url", "issuer").is_err());
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
