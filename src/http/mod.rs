//! The HTTP client: TLS trust, timeouts, size caps, and the retry policy.
//!
//! Built only when a renewal needs the network: the fresh-token path never gets here.
//! Two rules matter more than speed:
//! - a request that changes state at the issuer (a refresh-token redemption) is sent
//!   at most once per run; it is retried only when it provably never left, and
//! - idempotent requests are retried with exponential backoff and full jitter,
//!   honouring `Retry-After`, all within one overall deadline.
//!
//! This file is the client and its retry loop; beside it: which proxy a URL goes
//! through (`proxy`), which URLs may be used at all (`loopback`), the trusted CAs
//! (`tls`), and what a failed request means (`failure`).

mod failure;
mod loopback;
mod proxy;
mod tls;

use std::cell::OnceCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq::tls::{RootCerts, TlsConfig};
use ureq::Agent;

use crate::error::{Error, Result};
use crate::store::random_fraction;

pub use self::failure::{Failure, FailureKind};
pub use self::loopback::{check_url, is_loopback_host};
pub use self::proxy::{no_proxy_matches, proxy_for};
pub use self::tls::{check_trust, TrustOptions, MAX_CA_FILE_LEN};

use self::failure::classify;
use self::proxy::VIA_PROXY;
use self::tls::load_roots;

/// Largest response body we read: discovery documents and token responses are a few KiB.
pub const MAX_BODY: u64 = 1024 * 1024;
const MAX_ATTEMPTS: u32 = 4;
const USER_AGENT: &str = concat!("robot-token/", env!("CARGO_PKG_VERSION"));

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
