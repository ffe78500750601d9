//! A request that got no answer: whether it may have reached the server (which
//! decides whether a request that must go at most once can be retried), what kind
//! of problem it is (network, TLS trust, our own settings), and the one-line error
//! and advice a person reads. Separate from the client: it reads only ureq's error.

use std::io;

use crate::error::Error;

use super::proxy::VIA_PROXY;

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

pub(super) fn classify(e: ureq::Error) -> Failure {
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
